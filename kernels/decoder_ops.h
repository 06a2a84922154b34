// Row-wise and element-wise kernels of a decoder (Llama/Qwen2/Phi-3 style) transformer, each with
// a scalar reference.
//
//   AddRmsNorm(residual, attention_out, rows, hidden, ffn_norm_weight, 1e-5f, normed);
//   SLM_ASSIGN_OR_RETURN(RopeTable rope, ComputeRopeTable(head_dim, 1e6f, RopeScaling{}));
//   ApplyRope(qkv, rows, num_heads, head_dim, /*row_stride=*/qkv_width, positions, rope,
//             RopeStyle::kNeox);
//   SwiGlu(gate_up, gate_up + ffn, rows, ffn, /*input_row_stride=*/2 * ffn, hidden_ffn);
//
// All buffers are row-major f32 owned by the caller. Fast versions are compiled for AVX-512 /
// AVX2 / baseline and picked at run time (SLM_KERNELS_MULTIVERSION); Reference* versions are
// plain scalar code with double accumulation, used by tests as the ground truth.
// Thread-safety: every function is reentrant and runs on the calling thread.
#ifndef SLM_KERNELS_DECODER_OPS_H_
#define SLM_KERNELS_DECODER_OPS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace slm::kernels {

// out[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + epsilon) * weight; out may equal x.
void RmsNorm(const float* x, int64_t rows, int64_t cols, const float* weight, float epsilon,
             float* out);
// residual += delta (delta may be nullptr), then out = RmsNorm(residual); out != residual.
void AddRmsNorm(float* residual, const float* delta, int64_t rows, int64_t cols,
                const float* weight, float epsilon, float* out);

// out[r, c] = silu(gate[r, c]) * up[r, c], silu(g) = g / (1 + exp(-g)). gate and up rows are
// `input_row_stride` floats apart (cols for separate buffers, 2*cols for Phi-3's fused gate_up
// with up = gate + cols); out is [rows, cols] contiguous and may equal gate.
void SwiGlu(const float* gate, const float* up, int64_t rows, int64_t cols,
            int64_t input_row_stride, float* out);

// How rotary position embeddings pair up the dimensions of a head (llama.cpp's rope types):
//   kInterleaved: pairs (2i, 2i+1) with frequency i (GPT-J; llama.cpp LLAMA_ROPE_TYPE_NORM, used
//                 for llama/mistral GGUF files, whose converter permutes Q/K rows to match).
//   kNeox:        pairs (i, i + rotary_dim/2) with frequency i ("rotate half"; llama.cpp
//                 LLAMA_ROPE_TYPE_NEOX: qwen2, phi3, and Hugging Face llama).
enum class RopeStyle { kInterleaved, kNeox };

enum class RopeScalingType {
  kNone,
  kLinear,   // positions divided by `factor` (inv_freq / factor)
  kLlama3,   // Llama 3.1 piecewise: low/high frequency factors around original_context
  kLongRope  // Phi-3 "longrope"/"su": per-frequency factors + attention magnitude scale
};

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  float factor = 1.0f;               // linear, llama3, longrope (context extension ratio)
  float low_freq_factor = 1.0f;      // llama3
  float high_freq_factor = 4.0f;     // llama3
  int64_t original_context = 0;      // llama3, longrope: pre-extension context length
  // Per-frequency divisors, rotary_dim/2 entries (longrope's short/long factor, or llama.cpp's
  // rope_freqs tensor): inv_freq[i] /= freq_factors[i]. Empty: none. Allowed with any type.
  std::vector<float> freq_factors;
};

// inv_freq[i] = 1 / (theta^(2i / rotary_dim)) after scaling, i < rotary_dim/2; cos and sin of
// position * inv_freq[i] are multiplied by `magnitude` (longrope: sqrt(1 + ln(factor) /
// ln(original_context)) when factor > 1; otherwise 1).
struct RopeTable {
  std::vector<float> inv_freq;
  float magnitude = 1.0f;
  int64_t rotary_dim() const { return 2 * static_cast<int64_t>(inv_freq.size()); }
};

// InvalidArgument naming the field for an odd or non-positive rotary_dim, theta <= 1, factor <= 0,
// llama3 without original_context or with high_freq_factor <= low_freq_factor, or freq_factors of
// the wrong length or with non-positive entries.
absl::StatusOr<RopeTable> ComputeRopeTable(int64_t rotary_dim, float theta,
                                           const RopeScaling& scaling);

// Rotates the first table.rotary_dim() dimensions of each head in place (the rest pass through):
// x: [num_tokens rows][num_heads * head_dim], rows `row_stride` floats apart (so Q and K inside a
// fused QKV buffer work), token t at position positions[t]. The angle is computed in f32 as
// positions[t] * inv_freq[i] (as PyTorch does), cos/sin in double then rounded.
// Requires rotary_dim <= head_dim (checked by the caller; violated: nothing is written).
void ApplyRope(float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
               int64_t row_stride, const int64_t* positions, const RopeTable& table,
               RopeStyle style);

// ApplyRope in two steps, for callers that rotate the same positions many times (every layer's
// Q and K in a decoder forward pass): RopeAngles fills angles[t][0, half) with the cosines and
// angles[t][half, 2 * half) with the sines of positions[t] (half = table.rotary_dim() / 2),
// computed exactly as ApplyRope does; ApplyRopeAngles rotates with them (bit-identical to
// ApplyRope on the same positions).
void RopeAngles(const int64_t* positions, int64_t num_tokens, const RopeTable& table,
                float* angles);
void ApplyRopeAngles(float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                     int64_t row_stride, const float* angles, const RopeTable& table,
                     RopeStyle style);

void ReferenceRmsNorm(const float* x, int64_t rows, int64_t cols, const float* weight,
                      float epsilon, float* out);
void ReferenceSwiGlu(const float* gate, const float* up, int64_t rows, int64_t cols,
                     int64_t input_row_stride, float* out);
void ReferenceApplyRope(float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                        int64_t row_stride, const int64_t* positions, const RopeTable& table,
                        RopeStyle style);

}  // namespace slm::kernels

#endif  // SLM_KERNELS_DECODER_OPS_H_
