// Kernels-internal: branch-free float math that GCC vectorizes, and the run-time ISA dispatch
// macro for hot loops.
//
// SLM_KERNELS_MULTIVERSION compiles a function for x86-64-v4 (AVX-512), x86-64-v3 (AVX2+FMA) and
// baseline x86-64; the dynamic loader picks one per process from the CPU (GCC target_clones), so
// the binary itself stays baseline. Inline helpers below are inlined into each clone.
//
// Accuracy (measured against libm in tests/kernels/ops_test.cc): FastExp relative error < 3e-7 on
// [-87, 88] (inputs outside are clamped); FastErf absolute error < 5e-7.
// Thread-safety: pure functions.
#ifndef SLM_KERNELS_VECTOR_MATH_H_
#define SLM_KERNELS_VECTOR_MATH_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#define SLM_KERNELS_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

namespace slm::kernels::internal {

inline float BitsToFloat(int32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

inline int32_t FloatToBits(float value) {
  int32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

// exp(x) = 2^n * exp(r), n = round(x / ln 2), |r| <= ln(2) / 2, Cephes polynomial for exp(r).
inline float FastExp(float x) {
  x = std::min(88.0f, std::max(-87.0f, x));
  // Adding 1.5 * 2^23 rounds to the nearest integer, which lands in the low mantissa bits.
  constexpr float kShifter = 12582912.0f;
  const float shifted = x * 1.44269504088896341f + kShifter;
  const int32_t n = FloatToBits(shifted) - FloatToBits(kShifter);
  const float nf = shifted - kShifter;
  float r = x - nf * 0.693359375f;  // ln 2 split in two for an exact first product
  r = r - nf * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * BitsToFloat((n + 127) << 23);
}

// Abramowitz & Stegun 7.1.26 (absolute error 1.5e-7), made odd with copysign-free arithmetic.
inline float FastErf(float x) {
  const float ax = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * ax);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.0f - p * t * FastExp(-ax * ax);
  return x < 0.0f ? -y : y;
}

inline float FastGelu(float x) { return 0.5f * x * (1.0f + FastErf(x * 0.70710678118654752f)); }

// tanh(x) = sign(x) * (1 - 2 / (exp(2|x|) + 1)); absolute error ~1e-7.
inline float FastTanh(float x) {
  const float e = FastExp(2.0f * std::fabs(x));
  const float y = 1.0f - 2.0f / (e + 1.0f);
  return x < 0.0f ? -y : y;
}

}  // namespace slm::kernels::internal

#endif  // SLM_KERNELS_VECTOR_MATH_H_
