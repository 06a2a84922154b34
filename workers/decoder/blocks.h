// Shared pieces of the decoder architectures beyond kernels/: the per-sequence KV cache (a
// kernels::KvCacheBuffer behind the KvCache interface) and the weights of one transformer layer
// as the architecture files hand them to the model. The math blocks themselves (RMSNorm, RoPE,
// SwiGLU, cached GQA attention, GEMV/matmul) are kernels/ (decoder_ops.h, kv_attention.h,
// gemv.h), each with a scalar reference and tests there.
//
// Thread-safety: KvCacheImpl follows KvCache's contract (one Forward at a time).
#ifndef SLM_WORKERS_DECODER_BLOCKS_H_
#define SLM_WORKERS_DECODER_BLOCKS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/dtype.h"
#include "kernels/kv_attention.h"
#include "workers/decoder/decoder_model.h"

namespace slm::workers::decoder {

// One sequence's cache: all layers in one kernels::KvCacheBuffer ([kv_head][position][head_dim]
// per layer, f32 / bf16 / int8 with per-token scales).
class KvCacheImpl final : public KvCache {
 public:
  static absl::StatusOr<std::unique_ptr<KvCacheImpl>> Create(const void* owner, int64_t capacity,
                                                             int64_t layers, int64_t kv_heads,
                                                             int64_t head_dim,
                                                             kernels::DType dtype);

  int64_t size() const override { return size_; }
  int64_t capacity() const override { return buffer_->capacity(); }
  void Truncate(int64_t new_size) override;
  int64_t bytes() const override { return buffer_->Bytes(); }

  const void* owner() const { return owner_; }
  void set_size(int64_t size) { size_ = size; }
  kernels::KvLayerView Layer(int64_t layer) const { return buffer_->Layer(layer); }

 private:
  KvCacheImpl(const void* owner, std::unique_ptr<kernels::KvCacheBuffer> buffer)
      : owner_(owner), buffer_(std::move(buffer)) {}
  const void* owner_;
  std::unique_ptr<kernels::KvCacheBuffer> buffer_;
  int64_t size_ = 0;
};

// One transformer layer's weights as f32 in PyTorch layout ([out, in] row-major), fused the way
// the model runs them: qkv = [q; k; v] rows (q and k rows in the GGUF's order, which decides the
// RoPE style), gate_up = [gate; up] rows. qkv_bias is empty or qkv rows long.
struct LayerTensors {
  std::vector<float> attn_norm;    // [hidden]
  std::vector<float> qkv;          // [(heads + 2 kv_heads) * head_dim, hidden]
  std::vector<float> qkv_bias;     // [] or [(heads + 2 kv_heads) * head_dim]
  std::vector<float> attn_output;  // [hidden, heads * head_dim]
  std::vector<float> ffn_norm;     // [hidden]
  std::vector<float> gate_up;      // [2 * ffn, hidden]
  std::vector<float> down;         // [hidden, ffn]
};

}  // namespace slm::workers::decoder

#endif  // SLM_WORKERS_DECODER_BLOCKS_H_
