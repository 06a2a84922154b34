// Causal grouped-query attention of new tokens over a sequence's key/value cache.
//
//   SLM_ASSIGN_OR_RETURN(auto cache, KvCacheBuffer::Create(DType::kBF16, num_layers,
//                                                            num_kv_heads, head_dim, capacity));
//   KvLayerView layer = cache->Layer(l);
//   SLM_RETURN_IF_ERROR(WriteKv(layer, k, v, /*row_stride=*/qkv_width, start, n));
//   SLM_RETURN_IF_ERROR(CachedAttention(layer, q, /*q_row_stride=*/qkv_width, start, n,
//                                       num_heads, AttentionOptions{1 / sqrt(head_dim)},
//                                       out, /*out_row_stride=*/num_heads * head_dim));
//
// Cache layout (one layer of one sequence): keys and values are each [num_kv_heads][capacity]
// [head_dim] elements, so one head's tokens are contiguous. Element types:
//   kF32:  float (exact; for reference comparisons)
//   kBF16: bf16 bits, round to nearest even
//   kInt8: int8 with one f32 scale per (head, token): x ~= scale * q, scale = max|x| / 127
//          (1 for an all-zero vector); scales are [num_kv_heads][capacity].
// Query head h reads kv head h / (num_heads / num_kv_heads). Token t of a call (position
// start + t) attends to cache positions [0, start + t] (minus a sliding window, if any); scores
// and softmax in f32; the cache must already hold positions up to start + n - 1 (WriteKv first).
//
// Ownership: KvCacheBuffer owns its memory; a KvLayerView borrows it (valid while the buffer
// lives) and may also describe memory the caller manages (e.g. a paged pool).
// Thread-safety: WriteKv to disjoint positions/layers and CachedAttention on any views may run
// concurrently; writing positions that another thread's attention reads is a data race.
// CachedAttention splits (head, token) work across the caller's OpenMP threads; inside an
// enclosing parallel region it runs on the calling thread. With AVX-512 and >= 8 new tokens
// (prefill) it runs blocked: each kv head's visible keys/values are widened to f32 once per call
// into scratch owned by the calling thread (thread_local, grown to the largest call: 8 x
// num_kv_heads x head_dim bytes per cached token), then (kv head, 16-token query block) items
// read them once per block.
// bf16 cache with AVX512_BF16 and head_dim a multiple of 16: both AVX-512 paths (blocked
// prefill and the per-token items of decode, groups up to 8) multiply in bf16 (`vdpbf16ps`,
// twice the f32 FMA rate; decode sums 16 keys' partial dot products together instead of one
// horizontal sum per key): query rows and the unnormalized softmax weights are rounded to bf16
// (keys and values are bf16 already; scores, softmax, sums stay f32). Extra error against
// ReferenceCachedAttention: scores move by at most 2^-9 |q| |k| scale and each weight by 2^-9
// relative, so |err| <= 4e-3 * max|v| for |q . k| scale <= 2 (tests); the f32 and int8 caches
// are computed as documented above.
#ifndef SLM_KERNELS_KV_ATTENTION_H_
#define SLM_KERNELS_KV_ATTENTION_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/dtype.h"

namespace slm::kernels {

struct KvLayerView {
  DType dtype = DType::kBF16;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t capacity = 0;          // tokens
  void* keys = nullptr;          // [num_kv_heads][capacity][head_dim]
  void* values = nullptr;        // same
  float* key_scales = nullptr;   // kInt8 only: [num_kv_heads][capacity]
  float* value_scales = nullptr; // kInt8 only
};

// Bytes one layer of one sequence needs for `capacity` tokens (keys, values and scales).
int64_t KvLayerBytes(DType dtype, int64_t num_kv_heads, int64_t head_dim, int64_t capacity);

// All layers of one sequence's cache, in one allocation (64-byte aligned, zero-filled).
class KvCacheBuffer {
 public:
  // InvalidArgument naming the field for non-positive sizes.
  static absl::StatusOr<std::unique_ptr<KvCacheBuffer>> Create(DType dtype, int64_t num_layers,
                                                               int64_t num_kv_heads,
                                                               int64_t head_dim, int64_t capacity);
  KvLayerView Layer(int64_t layer) const;  // 0 <= layer < num_layers (unchecked)
  int64_t num_layers() const { return num_layers_; }
  int64_t capacity() const { return layer_.capacity; }
  int64_t Bytes() const { return num_layers_ * layer_bytes_; }

  ~KvCacheBuffer();
  KvCacheBuffer(const KvCacheBuffer&) = delete;
  KvCacheBuffer& operator=(const KvCacheBuffer&) = delete;

 private:
  KvCacheBuffer() = default;
  int64_t num_layers_ = 0;
  int64_t layer_bytes_ = 0;
  KvLayerView layer_;  // geometry; pointers null
  char* memory_ = nullptr;
};

// Stores keys and values of tokens at positions [start, start + num_tokens): k and v are
// [num_tokens rows][num_kv_heads * head_dim], rows `row_stride` floats apart (e.g. inside a fused
// QKV buffer). InvalidArgument when start < 0 or start + num_tokens > capacity, or null buffers.
absl::Status WriteKv(const KvLayerView& cache, const float* k, const float* v, int64_t row_stride,
                     int64_t start, int64_t num_tokens);

struct AttentionOptions {
  float scale = 1.0f;          // scores = scale * q.k (usually 1/sqrt(head_dim))
  int64_t sliding_window = 0;  // > 0: token at position p sees only (p - window, p]
  // A hint, no effect on results: the cache the caller attends to next and how many positions
  // it holds then (a batched decode step walks its sequences' caches in turn, each read cold
  // from memory). The per-token AVX-512 items prefetch that cache's visible rows of their kv
  // head while they work. Ignored when null or of another geometry; never dereferenced past
  // the view's capacity.
  const KvLayerView* prefetch_next = nullptr;
  int64_t prefetch_next_length = 0;
};

// out[t, h*head_dim : (h+1)*head_dim] = sum_j softmax_j(scale * q_t,h . k_j) v_j over the causal
// range above. q: [num_tokens rows][num_heads * head_dim] with row stride q_row_stride; out rows
// out_row_stride apart. InvalidArgument naming the argument when num_heads is not a positive
// multiple of num_kv_heads, start + num_tokens > capacity, or buffers are null.
absl::Status CachedAttention(const KvLayerView& cache, const float* q, int64_t q_row_stride,
                             int64_t start, int64_t num_tokens, int64_t num_heads,
                             const AttentionOptions& options, float* out, int64_t out_row_stride);

// Scalar reference: same contract, double accumulation, reading the cache through the same
// dequantization (bf16 -> f32; int8 * scale).
absl::Status ReferenceCachedAttention(const KvLayerView& cache, const float* q,
                                      int64_t q_row_stride, int64_t start, int64_t num_tokens,
                                      int64_t num_heads, const AttentionOptions& options,
                                      float* out, int64_t out_row_stride);

namespace internal {
// Sets whether CachedAttention uses the portable loops instead of the AVX-512 path (tests;
// process-wide, set while no attention runs).
void ForcePortableAttentionForTesting(bool portable);
// Sets whether prefill chunks may take the blocked AVX-512 path (default true); false keeps the
// per-(kv head, token) AVX-512 items (benchmarks' before/after; process-wide, as above).
void SetBlockedPrefillAttention(bool enabled);
// Sets whether the bf16 cache's AVX-512 paths may multiply in bf16 (default true); false widens
// to f32 as for the other caches (tests and benchmarks; process-wide, as above).
void SetBf16AttentionProducts(bool enabled);
}  // namespace internal

}  // namespace slm::kernels

#endif  // SLM_KERNELS_KV_ATTENTION_H_
