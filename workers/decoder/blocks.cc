#include "workers/decoder/blocks.h"

#include <algorithm>
#include <utility>

#include "common/status_macros.h"

namespace slm::workers::decoder {

absl::StatusOr<std::unique_ptr<KvCacheImpl>> KvCacheImpl::Create(const void* owner,
                                                                 int64_t capacity, int64_t layers,
                                                                 int64_t kv_heads, int64_t head_dim,
                                                                 kernels::DType dtype) {
  SLM_ASSIGN_OR_RETURN(std::unique_ptr<kernels::KvCacheBuffer> buffer,
                       kernels::KvCacheBuffer::Create(dtype, layers, kv_heads, head_dim, capacity));
  return std::unique_ptr<KvCacheImpl>(new KvCacheImpl(owner, std::move(buffer)));
}

void KvCacheImpl::Truncate(int64_t new_size) { size_ = std::clamp<int64_t>(new_size, 0, size_); }

}  // namespace slm::workers::decoder
