// Numeric formats a Linear layer can store its weights in.
//
//   SLM_ASSIGN_OR_RETURN(DType dtype, ParseDType(config.dtype()));  // "f32" | "bf16" | "int8"
//   SLM_LOG(INFO) << "weights in " << DTypeName(dtype);
//
// Thread-safety: all functions are pure and may be called concurrently.
#ifndef SLM_KERNELS_DTYPE_H_
#define SLM_KERNELS_DTYPE_H_

#include <string_view>

#include "absl/status/statusor.h"

namespace slm::kernels {

// kF32: plain float weights. kBF16: bfloat16 weights, f32 activations in and out.
// kInt8: symmetric per-output-channel int8 weights, activations quantized per call.
enum class DType { kF32, kBF16, kInt8 };

// Parses "f32", "bf16" or "int8" (exact, lower case); anything else is InvalidArgument.
absl::StatusOr<DType> ParseDType(std::string_view name);

// The name ParseDType accepts for `dtype`.
std::string_view DTypeName(DType dtype);

}  // namespace slm::kernels

#endif  // SLM_KERNELS_DTYPE_H_
