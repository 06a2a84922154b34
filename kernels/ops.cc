#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/vector_math.h"

namespace slm::kernels {
namespace {

using internal::FastExp;
using internal::FastGelu;
using internal::FastTanh;

// Sixteen independent partial sums/maxima let GCC vectorize reductions without -ffast-math.
constexpr int kLanes = 16;

inline float LaneSum(const float* x, int64_t count) {
  float partial[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    for (int lane = 0; lane < kLanes; ++lane) partial[lane] += x[i + lane];
  }
  float sum = 0.0f;
  for (; i < count; ++i) sum += x[i];
  for (float value : partial) sum += value;
  return sum;
}

inline float LaneMax(const float* x, int64_t count) {
  float partial[kLanes];
  std::fill(partial, partial + kLanes, -std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    for (int lane = 0; lane < kLanes; ++lane) partial[lane] = std::max(partial[lane], x[i + lane]);
  }
  float result = -std::numeric_limits<float>::infinity();
  for (; i < count; ++i) result = std::max(result, x[i]);
  for (float value : partial) result = std::max(result, value);
  return result;
}

}  // namespace

SLM_KERNELS_MULTIVERSION
void AddLayerNorm(float* x, const float* residual, int64_t rows, int64_t cols, const float* gamma,
                  const float* beta, float epsilon) {
  for (int64_t row = 0; row < rows; ++row) {
    float* v = x + row * cols;
    if (residual != nullptr) {
      const float* r = residual + row * cols;
      for (int64_t i = 0; i < cols; ++i) v[i] += r[i];
    }
    const float mean = LaneSum(v, cols) / static_cast<float>(cols);
    // Two passes (centre, then square) avoid the cancellation of E[x^2] - E[x]^2.
    float partial[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= cols; i += kLanes) {
      for (int lane = 0; lane < kLanes; ++lane) {
        const float centred = v[i + lane] - mean;
        partial[lane] += centred * centred;
      }
    }
    float squares = 0.0f;
    for (; i < cols; ++i) squares += (v[i] - mean) * (v[i] - mean);
    for (float value : partial) squares += value;
    const float inverse_std = 1.0f / std::sqrt(squares / static_cast<float>(cols) + epsilon);
    for (int64_t j = 0; j < cols; ++j) v[j] = (v[j] - mean) * inverse_std * gamma[j] + beta[j];
  }
}

SLM_KERNELS_MULTIVERSION
void Softmax(float* x, int64_t rows, int64_t cols) {
  for (int64_t row = 0; row < rows; ++row) {
    float* v = x + row * cols;
    const float max = LaneMax(v, cols);
    for (int64_t i = 0; i < cols; ++i) v[i] = FastExp(v[i] - max);
    const float inverse_sum = 1.0f / LaneSum(v, cols);
    for (int64_t i = 0; i < cols; ++i) v[i] *= inverse_sum;
  }
}

SLM_KERNELS_MULTIVERSION
void Gelu(float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] = FastGelu(x[i]);
}

SLM_KERNELS_MULTIVERSION
void Tanh(float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] = FastTanh(x[i]);
}

void ReferenceAddLayerNorm(float* x, const float* residual, int64_t rows, int64_t cols,
                           const float* gamma, const float* beta, float epsilon) {
  for (int64_t row = 0; row < rows; ++row) {
    float* v = x + row * cols;
    double sum = 0.0;
    for (int64_t i = 0; i < cols; ++i) {
      if (residual != nullptr) v[i] += residual[row * cols + i];
      sum += v[i];
    }
    const double mean = sum / static_cast<double>(cols);
    double squares = 0.0;
    for (int64_t i = 0; i < cols; ++i) squares += (v[i] - mean) * (v[i] - mean);
    const double inverse_std = 1.0 / std::sqrt(squares / static_cast<double>(cols) + epsilon);
    for (int64_t i = 0; i < cols; ++i) {
      v[i] = static_cast<float>((v[i] - mean) * inverse_std * gamma[i] + beta[i]);
    }
  }
}

void ReferenceSoftmax(float* x, int64_t rows, int64_t cols) {
  for (int64_t row = 0; row < rows; ++row) {
    float* v = x + row * cols;
    const float max = *std::max_element(v, v + cols);
    double sum = 0.0;
    for (int64_t i = 0; i < cols; ++i) sum += std::exp(static_cast<double>(v[i]) - max);
    for (int64_t i = 0; i < cols; ++i) {
      v[i] = static_cast<float>(std::exp(static_cast<double>(v[i]) - max) / sum);
    }
  }
}

void ReferenceGelu(float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const double v = x[i];
    x[i] = static_cast<float>(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
  }
}

void ReferenceTanh(float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    x[i] = static_cast<float>(std::tanh(static_cast<double>(x[i])));
}

}  // namespace slm::kernels
