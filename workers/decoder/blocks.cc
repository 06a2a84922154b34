#include "workers/decoder/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

namespace slm::workers::decoder {
namespace {

uint16_t FloatToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

float Bf16ToFloat(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof(value));
  return value;
}

// Softmax over scores[0..n) in place, then out[d] = sum_t scores[t] * value(t, d).
template <typename ValueAt>
void SoftmaxWeightedSum(float* scores, int64_t n, int64_t head_dim, ValueAt value_at,
                        float* out) {
  float max_score = scores[0];
  for (int64_t t = 1; t < n; ++t) max_score = std::max(max_score, scores[t]);
  double total = 0;
  for (int64_t t = 0; t < n; ++t) {
    scores[t] = std::exp(scores[t] - max_score);
    total += scores[t];
  }
  const float inverse = static_cast<float>(1.0 / total);
  std::fill(out, out + head_dim, 0.0f);
  for (int64_t t = 0; t < n; ++t) {
    const float p = scores[t] * inverse;
    value_at(t, p, out);
  }
}

}  // namespace

void RmsNorm(const float* x, int64_t rows, int64_t cols, const float* weight, float epsilon,
             float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * cols;
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += static_cast<double>(in[c]) * in[c];
    const float scale = static_cast<float>(1.0 / std::sqrt(sum / cols + epsilon));
    float* y = out + r * cols;
    for (int64_t c = 0; c < cols; ++c) y[c] = in[c] * scale * weight[c];
  }
}

void SwiGlu(const float* gate_up, int64_t rows, int64_t ffn, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* gate = gate_up + r * 2 * ffn;
    const float* up = gate + ffn;
    float* y = out + r * ffn;
    for (int64_t i = 0; i < ffn; ++i) {
      const float g = gate[i];
      y[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  }
}

Rope::Rope(RopeParams params) : params_(std::move(params)) {
  const int64_t half = params_.head_dim / 2;
  inverse_frequencies_.resize(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    double inverse = params_.freq_scale *
                     std::pow(params_.freq_base, -2.0 * static_cast<double>(i) /
                                                     static_cast<double>(params_.head_dim));
    if (!params_.freq_factors.empty()) inverse /= params_.freq_factors[static_cast<size_t>(i)];
    inverse_frequencies_[static_cast<size_t>(i)] = inverse;
  }
}

void Rope::Apply(float* x, int64_t heads, int64_t position) const {
  const int64_t d = params_.head_dim;
  const int64_t half = d / 2;
  const bool neox = params_.style == RopeStyle::kNeox;
  for (int64_t i = 0; i < half; ++i) {
    const double angle = static_cast<double>(position) * inverse_frequencies_[i];
    const float c = static_cast<float>(std::cos(angle) * params_.attn_factor);
    const float s = static_cast<float>(std::sin(angle) * params_.attn_factor);
    const int64_t first = neox ? i : 2 * i;
    const int64_t second = neox ? i + half : 2 * i + 1;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + h * d;
      const float a = v[first];
      const float b = v[second];
      v[first] = a * c - b * s;
      v[second] = a * s + b * c;
    }
  }
}

KvCacheImpl::KvCacheImpl(const void* owner, int64_t capacity, int64_t layers, int64_t kv_heads,
                         int64_t head_dim, kernels::DType dtype)
    : owner_(owner),
      capacity_(capacity),
      layers_(layers),
      kv_heads_(kv_heads),
      head_dim_(head_dim),
      kv_dim_(kv_heads * head_dim),
      dtype_(dtype) {
  const size_t elements = static_cast<size_t>(layers * 2 * capacity * kv_dim_);
  switch (dtype_) {
    case kernels::DType::kF32:
      f32_.resize(elements);
      break;
    case kernels::DType::kBF16:
      bf16_.resize(elements);
      break;
    case kernels::DType::kInt8:
      int8_.resize(elements);
      int8_scales_.resize(static_cast<size_t>(layers * 2 * capacity * kv_heads));
      break;
  }
}

void KvCacheImpl::Truncate(int64_t new_size) {
  size_ = std::clamp<int64_t>(new_size, 0, size_);
}

int64_t KvCacheImpl::BytesPerToken(int64_t layers, int64_t kv_heads, int64_t head_dim,
                                   kernels::DType dtype) {
  const int64_t elements = layers * 2 * kv_heads * head_dim;
  switch (dtype) {
    case kernels::DType::kF32:
      return elements * 4;
    case kernels::DType::kBF16:
      return elements * 2;
    case kernels::DType::kInt8:
      return elements + layers * 2 * kv_heads * 4;
  }
  return 0;
}

int64_t KvCacheImpl::bytes() const {
  return capacity_ * BytesPerToken(layers_, kv_heads_, head_dim_, dtype_);
}

int64_t KvCacheImpl::Offset(int64_t layer, int kind, int64_t position) const {
  return ((layer * 2 + kind) * capacity_ + position) * kv_dim_;
}

void KvCacheImpl::Write(int64_t layer, int64_t position, const float* k, const float* v) {
  for (int kind = 0; kind < 2; ++kind) {
    const float* row = kind == 0 ? k : v;
    const int64_t offset = Offset(layer, kind, position);
    switch (dtype_) {
      case kernels::DType::kF32:
        std::memcpy(f32_.data() + offset, row, static_cast<size_t>(kv_dim_) * sizeof(float));
        break;
      case kernels::DType::kBF16:
        for (int64_t i = 0; i < kv_dim_; ++i) bf16_[offset + i] = FloatToBf16(row[i]);
        break;
      case kernels::DType::kInt8: {
        const int64_t scale_base = ((layer * 2 + kind) * capacity_ + position) * kv_heads_;
        for (int64_t h = 0; h < kv_heads_; ++h) {
          const float* src = row + h * head_dim_;
          float amax = 0;
          for (int64_t i = 0; i < head_dim_; ++i) amax = std::max(amax, std::fabs(src[i]));
          const float scale = amax / 127.0f;
          const float inverse = scale > 0 ? 1.0f / scale : 0.0f;
          int8_t* dst = int8_.data() + offset + h * head_dim_;
          for (int64_t i = 0; i < head_dim_; ++i) {
            dst[i] = static_cast<int8_t>(std::lround(std::clamp(src[i] * inverse, -127.0f, 127.0f)));
          }
          int8_scales_[scale_base + h] = scale;
        }
        break;
      }
    }
  }
}

void KvCacheImpl::Attend(int64_t layer, int64_t kv_head, const float* q, int64_t last,
                         float* scores, float* out) const {
  const int64_t d = head_dim_;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int64_t n = last + 1;
  const int64_t k_base = Offset(layer, 0, 0) + kv_head * d;
  const int64_t v_base = Offset(layer, 1, 0) + kv_head * d;
  switch (dtype_) {
    case kernels::DType::kF32: {
      for (int64_t t = 0; t < n; ++t) {
        const float* k = f32_.data() + k_base + t * kv_dim_;
        float dot = 0;
        for (int64_t i = 0; i < d; ++i) dot += q[i] * k[i];
        scores[t] = dot * scale;
      }
      SoftmaxWeightedSum(scores, n, d, [&](int64_t t, float p, float* y) {
        const float* v = f32_.data() + v_base + t * kv_dim_;
        for (int64_t i = 0; i < d; ++i) y[i] += p * v[i];
      }, out);
      break;
    }
    case kernels::DType::kBF16: {
      for (int64_t t = 0; t < n; ++t) {
        const uint16_t* k = bf16_.data() + k_base + t * kv_dim_;
        float dot = 0;
        for (int64_t i = 0; i < d; ++i) dot += q[i] * Bf16ToFloat(k[i]);
        scores[t] = dot * scale;
      }
      SoftmaxWeightedSum(scores, n, d, [&](int64_t t, float p, float* y) {
        const uint16_t* v = bf16_.data() + v_base + t * kv_dim_;
        for (int64_t i = 0; i < d; ++i) y[i] += p * Bf16ToFloat(v[i]);
      }, out);
      break;
    }
    case kernels::DType::kInt8: {
      const int64_t k_scales = ((layer * 2 + 0) * capacity_) * kv_heads_ + kv_head;
      const int64_t v_scales = ((layer * 2 + 1) * capacity_) * kv_heads_ + kv_head;
      for (int64_t t = 0; t < n; ++t) {
        const int8_t* k = int8_.data() + k_base + t * kv_dim_;
        float dot = 0;
        for (int64_t i = 0; i < d; ++i) dot += q[i] * static_cast<float>(k[i]);
        scores[t] = dot * int8_scales_[k_scales + t * kv_heads_] * scale;
      }
      SoftmaxWeightedSum(scores, n, d, [&](int64_t t, float p, float* y) {
        const int8_t* v = int8_.data() + v_base + t * kv_dim_;
        const float pv = p * int8_scales_[v_scales + t * kv_heads_];
        for (int64_t i = 0; i < d; ++i) y[i] += pv * static_cast<float>(v[i]);
      }, out);
      break;
    }
  }
}

}  // namespace slm::workers::decoder
