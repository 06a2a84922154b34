// Shared building blocks of the decoder architectures: RMSNorm, RoPE (llama.cpp's "norm" and
// "neox" pair layouts, with linear / per-frequency-factor scaling and an attention factor),
// SwiGLU, the per-sequence KV cache and causal grouped-query attention over it, and the weights of
// one transformer layer as the architecture files hand them to the model.
//
// Each block is a plain loop that reads like the math; faster kernels replace them one by one
// (kernels/), each compared against these.
//
// Thread-safety: free functions are reentrant. Rope is immutable after construction. KvCacheImpl
// follows KvCache's contract (one Forward at a time).
#ifndef SLM_WORKERS_DECODER_BLOCKS_H_
#define SLM_WORKERS_DECODER_BLOCKS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "workers/decoder/decoder_model.h"

namespace slm::workers::decoder {

// x[rows, cols] -> out = x / sqrt(mean(x^2) + eps) * weight (out may alias x).
void RmsNorm(const float* x, int64_t rows, int64_t cols, const float* weight, float epsilon,
             float* out);

// gate_up[rows, 2 * ffn] = [gate | up] -> out[rows, ffn] = silu(gate) * up.
void SwiGlu(const float* gate_up, int64_t rows, int64_t ffn, float* out);

// Which elements RoPE rotates together (llama.cpp's rope types). kNorm: (2i, 2i+1) — llama and
// mistral, whose GGUF Q/K rows llama.cpp's converter permuted so this equals HF's rotate_half;
// kNeox: (i, i + d/2) — qwen2, phi3 (HF order).
enum class RopeStyle { kNorm, kNeox };

struct RopeParams {
  RopeStyle style = RopeStyle::kNorm;
  int64_t head_dim = 0;
  double freq_base = 10000.0;
  double freq_scale = 1.0;            // linear scaling: 1 / rope.scaling.factor
  std::vector<float> freq_factors;    // empty or head_dim/2: theta_i /= factor_i (llama3, longrope)
  double attn_factor = 1.0;           // cos and sin are multiplied by this (longrope mscale)
};

// Rotary position embedding: pair i of each head rotates by angle
// position * freq_scale * freq_base^(-2i/d) / freq_factors[i].
class Rope {
 public:
  explicit Rope(RopeParams params);
  // Rotates `heads` consecutive vectors of head_dim floats at x, in place, for `position`.
  void Apply(float* x, int64_t heads, int64_t position) const;
  const RopeParams& params() const { return params_; }

 private:
  RopeParams params_;
  std::vector<double> inverse_frequencies_;  // head_dim / 2
};

// The KV cache of one sequence: for each layer, keys and values of every stored position, as
// [layer][k|v][position][kv_heads * head_dim] in the cache's element type (f32, bf16, or int8
// with one f32 scale per position and kv head).
class KvCacheImpl final : public KvCache {
 public:
  KvCacheImpl(const void* owner, int64_t capacity, int64_t layers, int64_t kv_heads,
              int64_t head_dim, kernels::DType dtype);

  int64_t size() const override { return size_; }
  int64_t capacity() const override { return capacity_; }
  void Truncate(int64_t new_size) override;
  int64_t bytes() const override;

  const void* owner() const { return owner_; }
  void set_size(int64_t size) { size_ = size; }
  // Stores k and v rows (kv_heads * head_dim floats each) at `position` of `layer`.
  void Write(int64_t layer, int64_t position, const float* k, const float* v);
  // Causal attention of one query head (head_dim floats, already rotated) over positions
  // [0, last] of kv head `kv_head`: out = softmax(q k^T / sqrt(d)) v. scores: last+1 floats.
  void Attend(int64_t layer, int64_t kv_head, const float* q, int64_t last, float* scores,
              float* out) const;

  static int64_t BytesPerToken(int64_t layers, int64_t kv_heads, int64_t head_dim,
                               kernels::DType dtype);

 private:
  int64_t Offset(int64_t layer, int kind, int64_t position) const;  // element index

  const void* owner_;
  int64_t capacity_, layers_, kv_heads_, head_dim_, kv_dim_;
  kernels::DType dtype_;
  int64_t size_ = 0;
  std::vector<float> f32_;
  std::vector<uint16_t> bf16_;
  std::vector<int8_t> int8_;
  std::vector<float> int8_scales_;  // [layer][k|v][position][kv_head]
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
