#include "kernels/decoder_ops.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/parallel_ranges.h"
#include "kernels/vector_math.h"

namespace slm::kernels {
namespace {

constexpr double kPi = 3.14159265358979323846;

SLM_KERNELS_MULTIVERSION
float SumOfSquares(const float* x, int64_t count) {
  constexpr int kLanes = 16;
  float partial[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    for (int lane = 0; lane < kLanes; ++lane) partial[lane] += x[i + lane] * x[i + lane];
  }
  float sum = 0.0f;
  for (; i < count; ++i) sum += x[i] * x[i];
  for (float value : partial) sum += value;
  return sum;
}

SLM_KERNELS_MULTIVERSION
void ScaleByWeight(const float* x, int64_t count, float factor, const float* weight, float* out) {
  for (int64_t i = 0; i < count; ++i) out[i] = x[i] * factor * weight[i];
}

SLM_KERNELS_MULTIVERSION
void AddInPlace(float* x, const float* delta, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] += delta[i];
}

SLM_KERNELS_MULTIVERSION
void SwiGluRow(const float* gate, const float* up, int64_t count, float* out) {
  for (int64_t i = 0; i < count; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + internal::FastExp(-g)) * up[i];
  }
}

// Rotates pairs (x[a_i], x[b_i]) by angles with cosines c and sines s; a and b strides below.
SLM_KERNELS_MULTIVERSION
void RotateNeox(float* x, int64_t half, const float* c, const float* s) {
  float* low = x;
  float* high = x + half;
  for (int64_t i = 0; i < half; ++i) {
    const float a = low[i], b = high[i];
    low[i] = a * c[i] - b * s[i];
    high[i] = b * c[i] + a * s[i];
  }
}

SLM_KERNELS_MULTIVERSION
void RotateInterleaved(float* x, int64_t half, const float* c, const float* s) {
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = a * c[i] - b * s[i];
    x[2 * i + 1] = b * c[i] + a * s[i];
  }
}

// One token's heads (head_dim apart from `row`) rotated by the angles' cosines c and sines s.
void RotateHeads(float* row, int64_t num_heads, int64_t head_dim, int64_t half, const float* c,
                 const float* s, RopeStyle style) {
  for (int64_t h = 0; h < num_heads; ++h) {
    if (style == RopeStyle::kNeox) {
      RotateNeox(row + h * head_dim, half, c, s);
    } else {
      RotateInterleaved(row + h * head_dim, half, c, s);
    }
  }
}

// cos/sin of position * inv_freq[i] (angle in f32, as PyTorch computes it), times magnitude.
void Angles(int64_t position, const RopeTable& table, float* c, float* s) {
  const float p = static_cast<float>(position);
  for (size_t i = 0; i < table.inv_freq.size(); ++i) {
    const double angle = static_cast<double>(p * table.inv_freq[i]);
    c[i] = static_cast<float>(std::cos(angle) * table.magnitude);
    s[i] = static_cast<float>(std::sin(angle) * table.magnitude);
  }
}

}  // namespace

// Rows are independent, so each pass is split by rows across threads (internal::ParallelRanges:
// prefill-sized passes only) with the same per-row arithmetic.
void RmsNorm(const float* x, int64_t rows, int64_t cols, const float* weight, float epsilon,
             float* out) {
  internal::ParallelRanges(rows, cols, [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      const float mean = SumOfSquares(x + r * cols, cols) / static_cast<float>(cols);
      ScaleByWeight(x + r * cols, cols, 1.0f / std::sqrt(mean + epsilon), weight,
                    out + r * cols);
    }
  });
}

void AddRmsNorm(float* residual, const float* delta, int64_t rows, int64_t cols,
                const float* weight, float epsilon, float* out) {
  internal::ParallelRanges(rows, cols, [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      float* row = residual + r * cols;
      if (delta != nullptr) AddInPlace(row, delta + r * cols, cols);
      const float mean = SumOfSquares(row, cols) / static_cast<float>(cols);
      ScaleByWeight(row, cols, 1.0f / std::sqrt(mean + epsilon), weight, out + r * cols);
    }
  });
}

void SwiGlu(const float* gate, const float* up, int64_t rows, int64_t cols,
            int64_t input_row_stride, float* out) {
  internal::ParallelRanges(rows, cols, [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      SwiGluRow(gate + r * input_row_stride, up + r * input_row_stride, cols, out + r * cols);
    }
  });
}

absl::StatusOr<RopeTable> ComputeRopeTable(int64_t rotary_dim, float theta,
                                           const RopeScaling& scaling) {
  if (rotary_dim <= 0 || rotary_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rope: rotary_dim must be positive and even; got ", rotary_dim));
  }
  if (!(theta > 1.0f) || !std::isfinite(theta)) {
    return absl::InvalidArgumentError(absl::StrCat("rope: theta (freq_base) must be > 1; got ",
                                                   theta));
  }
  if (!(scaling.factor > 0.0f) || !std::isfinite(scaling.factor)) {
    return absl::InvalidArgumentError(
        absl::StrCat("rope scaling: factor must be positive; got ", scaling.factor));
  }
  const int64_t half = rotary_dim / 2;
  if (!scaling.freq_factors.empty()) {
    if (static_cast<int64_t>(scaling.freq_factors.size()) != half) {
      return absl::InvalidArgumentError(absl::StrCat("rope scaling: freq_factors must have ",
                                                     half, " entries (rotary_dim / 2); got ",
                                                     scaling.freq_factors.size()));
    }
    for (size_t i = 0; i < scaling.freq_factors.size(); ++i) {
      if (!(scaling.freq_factors[i] > 0.0f) || !std::isfinite(scaling.freq_factors[i])) {
        return absl::InvalidArgumentError(absl::StrCat("rope scaling: freq_factors[", i,
                                                       "] must be positive; got ",
                                                       scaling.freq_factors[i]));
      }
    }
  }
  if (scaling.type == RopeScalingType::kLlama3) {
    if (scaling.original_context <= 0) {
      return absl::InvalidArgumentError(
          "rope scaling llama3: original_context must be positive");
    }
    if (!(scaling.high_freq_factor > scaling.low_freq_factor) ||
        !(scaling.low_freq_factor > 0.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("rope scaling llama3: expected 0 < low_freq_factor < high_freq_factor; got ",
                       scaling.low_freq_factor, " and ", scaling.high_freq_factor));
    }
  }
  if (scaling.type == RopeScalingType::kLongRope && scaling.original_context <= 1 &&
      scaling.factor > 1.0f) {
    return absl::InvalidArgumentError(
        "rope scaling longrope: original_context must be > 1 when factor > 1");
  }

  RopeTable table;
  table.inv_freq.resize(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    // As PyTorch: 1 / theta ** (arange(0, dim, 2).float() / dim), in f32.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rotary_dim);
    double inv = 1.0 / std::pow(static_cast<double>(theta), static_cast<double>(exponent));
    switch (scaling.type) {
      case RopeScalingType::kNone:
      case RopeScalingType::kLongRope:
        break;
      case RopeScalingType::kLinear:
        inv /= scaling.factor;
        break;
      case RopeScalingType::kLlama3: {
        const double context = static_cast<double>(scaling.original_context);
        const double low_wavelength = context / scaling.low_freq_factor;
        const double high_wavelength = context / scaling.high_freq_factor;
        const double wavelength = 2.0 * kPi / inv;
        if (wavelength > low_wavelength) {
          inv /= scaling.factor;
        } else if (wavelength >= high_wavelength) {
          const double smooth = (context / wavelength - scaling.low_freq_factor) /
                                (scaling.high_freq_factor - scaling.low_freq_factor);
          inv = (1.0 - smooth) * inv / scaling.factor + smooth * inv;
        }
        break;
      }
    }
    if (!scaling.freq_factors.empty()) inv /= scaling.freq_factors[i];
    table.inv_freq[i] = static_cast<float>(inv);
  }
  if (scaling.type == RopeScalingType::kLongRope && scaling.factor > 1.0f) {
    table.magnitude = static_cast<float>(
        std::sqrt(1.0 + std::log(static_cast<double>(scaling.factor)) /
                            std::log(static_cast<double>(scaling.original_context))));
  }
  return table;
}

void ApplyRope(float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
               int64_t row_stride, const int64_t* positions, const RopeTable& table,
               RopeStyle style) {
  const int64_t half = static_cast<int64_t>(table.inv_freq.size());
  if (2 * half > head_dim || half == 0) return;
  thread_local std::vector<float> angles;
  angles.resize(static_cast<size_t>(2 * half));
  float* c = angles.data();
  float* s = c + half;
  for (int64_t t = 0; t < num_tokens; ++t) {
    Angles(positions[t], table, c, s);
    RotateHeads(x + t * row_stride, num_heads, head_dim, half, c, s, style);
  }
}

void RopeAngles(const int64_t* positions, int64_t num_tokens, const RopeTable& table,
                float* angles) {
  const int64_t half = static_cast<int64_t>(table.inv_freq.size());
  for (int64_t t = 0; t < num_tokens; ++t) {
    Angles(positions[t], table, angles + t * 2 * half, angles + t * 2 * half + half);
  }
}

void ApplyRopeAngles(float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                     int64_t row_stride, const float* angles, const RopeTable& table,
                     RopeStyle style) {
  const int64_t half = static_cast<int64_t>(table.inv_freq.size());
  if (2 * half > head_dim || half == 0) return;
  internal::ParallelRanges(num_tokens, num_heads * head_dim, [&](int64_t first, int64_t last) {
    for (int64_t t = first; t < last; ++t) {
      const float* c = angles + t * 2 * half;
      RotateHeads(x + t * row_stride, num_heads, head_dim, half, c, c + half, style);
    }
  });
}

void ReferenceRmsNorm(const float* x, int64_t rows, int64_t cols, const float* weight,
                      float epsilon, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum += static_cast<double>(x[r * cols + c]) * x[r * cols + c];
    const double factor = 1.0 / std::sqrt(sum / static_cast<double>(cols) + epsilon);
    for (int64_t c = 0; c < cols; ++c) {
      out[r * cols + c] = static_cast<float>(x[r * cols + c] * factor * weight[c]);
    }
  }
}

void ReferenceSwiGlu(const float* gate, const float* up, int64_t rows, int64_t cols,
                     int64_t input_row_stride, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const double g = gate[r * input_row_stride + c];
      const double u = up[r * input_row_stride + c];
      out[r * cols + c] = static_cast<float>(g / (1.0 + std::exp(-g)) * u);
    }
  }
}

void ReferenceApplyRope(float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                        int64_t row_stride, const int64_t* positions, const RopeTable& table,
                        RopeStyle style) {
  const int64_t half = static_cast<int64_t>(table.inv_freq.size());
  if (2 * half > head_dim || half == 0) return;
  for (int64_t t = 0; t < num_tokens; ++t) {
    for (int64_t h = 0; h < num_heads; ++h) {
      float* head = x + t * row_stride + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const double angle =
            static_cast<double>(static_cast<float>(positions[t]) * table.inv_freq[i]);
        const double c = std::cos(angle) * table.magnitude, s = std::sin(angle) * table.magnitude;
        const int64_t a = style == RopeStyle::kNeox ? i : 2 * i;
        const int64_t b = style == RopeStyle::kNeox ? i + half : 2 * i + 1;
        const double xa = head[a], xb = head[b];
        head[a] = static_cast<float>(xa * c - xb * s);
        head[b] = static_cast<float>(xb * c + xa * s);
      }
    }
  }
}

}  // namespace slm::kernels
