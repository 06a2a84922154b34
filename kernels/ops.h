// Element-wise and row-wise kernels of a transformer encoder, each with a scalar reference.
//
//   AddLayerNorm(hidden, attention_out, seq, 384, gamma, beta, 1e-12f);
//   Gelu(intermediate, seq * 1536);
//   EncoderAttention(qkv, qkv + 384, qkv + 768, /*row_stride=*/1152, seq, 12, 32, context);
//
// All buffers are row-major f32 owned by the caller. Fast versions are plain loops that the
// compiler vectorizes for baseline x86-64; Reference* versions are straightforward scalar code
// (double accumulation where it matters) used by tests as the ground truth.
// Thread-safety: every function is reentrant (no shared state) and may be called concurrently.
// All run on the calling thread except EncoderAttention, which splits heads across the caller's
// OpenMP threads (omp_get_max_threads; kernels never change the thread count).
#ifndef SLM_KERNELS_OPS_H_
#define SLM_KERNELS_OPS_H_

#include <cstdint>

namespace slm::kernels {

// x[rows, cols] = LayerNorm(x + residual) * gamma + beta, in place; residual may be nullptr.
void AddLayerNorm(float* x, const float* residual, int64_t rows, int64_t cols, const float* gamma,
                  const float* beta, float epsilon);
void Softmax(float* x, int64_t rows, int64_t cols);  // row-wise, numerically stable
void Gelu(float* x, int64_t count);                  // exact erf GELU
void Tanh(float* x, int64_t count);

// Bidirectional (encoder) multi-head self-attention for one sequence, no mask:
// q,k,v: [seq, num_heads*head_dim] with row stride `row_stride` floats (so a fused QKV buffer
// [seq, 3*hidden] works with row_stride = 3*hidden); out: [seq, num_heads*head_dim] contiguous.
// scores = softmax(q k^T / sqrt(head_dim)) per head.
void EncoderAttention(const float* q, const float* k, const float* v, int64_t row_stride,
                      int64_t seq, int64_t num_heads, int64_t head_dim, float* out);

void ReferenceAddLayerNorm(float* x, const float* residual, int64_t rows, int64_t cols,
                           const float* gamma, const float* beta, float epsilon);
void ReferenceSoftmax(float* x, int64_t rows, int64_t cols);
void ReferenceGelu(float* x, int64_t count);
void ReferenceTanh(float* x, int64_t count);
void ReferenceEncoderAttention(const float* q, const float* k, const float* v, int64_t row_stride,
                               int64_t seq, int64_t num_heads, int64_t head_dim, float* out);

}  // namespace slm::kernels

#endif  // SLM_KERNELS_OPS_H_
