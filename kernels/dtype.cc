#include "kernels/dtype.h"

#include <string>

#include "absl/status/status.h"

namespace slm::kernels {

absl::StatusOr<DType> ParseDType(std::string_view name) {
  if (name == "f32") return DType::kF32;
  if (name == "bf16") return DType::kBF16;
  if (name == "int8") return DType::kInt8;
  return absl::InvalidArgumentError("dtype: expected one of \"f32\", \"bf16\", \"int8\"; got \"" +
                                    std::string(name) + "\"");
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "f32";
    case DType::kBF16:
      return "bf16";
    case DType::kInt8:
      return "int8";
  }
  return "unknown";
}

}  // namespace slm::kernels
