// Scalar helpers for ggml tensor element types: block geometry, half-precision conversion and
// dequantization to f32. These are the reference implementations; a fast kernel elsewhere must
// match them.
//
// Thread-safety: pure functions.
#ifndef SLM_WORKERS_GGUF_GGML_TYPES_H_
#define SLM_WORKERS_GGUF_GGML_TYPES_H_

#include <cstdint>

#include "absl/status/status.h"
#include "workers/gguf/gguf_file.h"

namespace slm::workers {

// IEEE 754 binary16 bits to float (handles subnormals, infinities and NaN).
float HalfToFloat(uint16_t bits);
// bfloat16 bits to float.
float BFloat16ToFloat(uint16_t bits);
// Round-to-nearest-even float to binary16 bits (used by tests and writers).
uint16_t FloatToHalf(float value);

// Dequantizes `element_count` elements of `type` from `data` into `out`.
// `element_count` must be a multiple of the type's block size and `data` must hold the
// corresponding bytes (GgufFile validates both). Unimplemented for types other than F32, F16,
// BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K (block layouts as ggml-common.h /
// ggml-quants.c; Q5_0/Q5_1 are what llama.cpp's Q4_K_M/Q5_K_M fall back to for rows that are
// not whole 256-element blocks, as in SmolLM2 and Qwen2.5-0.5B).
absl::Status DequantizeToF32(GgmlType type, const uint8_t* data, int64_t element_count, float* out);

}  // namespace slm::workers

#endif  // SLM_WORKERS_GGUF_GGML_TYPES_H_
