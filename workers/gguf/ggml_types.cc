#include "workers/gguf/ggml_types.h"

#include <cmath>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace slm::workers {
namespace {

struct TypeInfo {
  GgmlType type;
  const char* name;
  int64_t block_elements;
  int64_t block_bytes;
};

// Geometry from ggml's type traits (ggml.c / ggml-common.h).
constexpr TypeInfo kTypes[] = {
    {GgmlType::kF32, "F32", 1, 4},       {GgmlType::kF16, "F16", 1, 2},
    {GgmlType::kQ4_0, "Q4_0", 32, 18},   {GgmlType::kQ4_1, "Q4_1", 32, 20},
    {GgmlType::kQ5_0, "Q5_0", 32, 22},   {GgmlType::kQ5_1, "Q5_1", 32, 24},
    {GgmlType::kQ8_0, "Q8_0", 32, 34},   {GgmlType::kQ8_1, "Q8_1", 32, 36},
    {GgmlType::kQ2_K, "Q2_K", 256, 84},  {GgmlType::kQ3_K, "Q3_K", 256, 110},
    {GgmlType::kQ4_K, "Q4_K", 256, 144}, {GgmlType::kQ5_K, "Q5_K", 256, 176},
    {GgmlType::kQ6_K, "Q6_K", 256, 210}, {GgmlType::kQ8_K, "Q8_K", 256, 292},
    {GgmlType::kI8, "I8", 1, 1},         {GgmlType::kI16, "I16", 1, 2},
    {GgmlType::kI32, "I32", 1, 4},       {GgmlType::kI64, "I64", 1, 8},
    {GgmlType::kF64, "F64", 1, 8},       {GgmlType::kBF16, "BF16", 1, 2},
};

const TypeInfo* FindType(GgmlType type) {
  for (const TypeInfo& info : kTypes) {
    if (info.type == type) return &info;
  }
  return nullptr;
}

uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace

std::string GgmlTypeName(GgmlType type) {
  const TypeInfo* info = FindType(type);
  if (info != nullptr) return info->name;
  return absl::StrCat("type(", static_cast<uint32_t>(type), ")");
}

bool GgmlTypeBlockInfo(GgmlType type, int64_t* block_elements, int64_t* block_bytes) {
  const TypeInfo* info = FindType(type);
  if (info == nullptr) return false;
  *block_elements = info->block_elements;
  *block_bytes = info->block_bytes;
  return true;
}

float HalfToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  const uint32_t mantissa = bits & 0x3ffu;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // zero or subnormal
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? INFINITY : NAN;
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400u), static_cast<int>(exponent) - 25);
  }
  uint32_t out;
  std::memcpy(&out, &magnitude, sizeof(out));
  out |= sign;
  float result;
  std::memcpy(&result, &out, sizeof(result));
  return result;
}

float BFloat16ToFloat(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float result;
  std::memcpy(&result, &widened, sizeof(result));
  return result;
}

uint16_t FloatToHalf(float value) {
  uint32_t x;
  std::memcpy(&x, &value, sizeof(x));
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // overflow (incl. inf) after rounding
  if (abs < 0x38800000u) {                        // subnormal or zero in half
    const float magnitude = std::fabs(value);
    // Units of 2^-24, rounded to nearest even by nearbyint in the default rounding mode.
    const float units = std::nearbyint(std::ldexp(magnitude, 24));
    return sign | static_cast<uint16_t>(units);
  }
  uint32_t mantissa = abs & 0x7fffffu;
  uint32_t exponent = (abs >> 23) - 112;  // rebias 127 -> 15
  uint32_t half = (exponent << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // carries into exponent
  return sign | static_cast<uint16_t>(half);
}

absl::Status DequantizeToF32(GgmlType type, const uint8_t* data, int64_t element_count,
                             float* out) {
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(out, data, static_cast<size_t>(element_count) * sizeof(float));
      return absl::OkStatus();
    case GgmlType::kF16:
      for (int64_t i = 0; i < element_count; ++i) out[i] = HalfToFloat(LoadU16(data + 2 * i));
      return absl::OkStatus();
    case GgmlType::kBF16:
      for (int64_t i = 0; i < element_count; ++i) out[i] = BFloat16ToFloat(LoadU16(data + 2 * i));
      return absl::OkStatus();
    case GgmlType::kQ8_0: {
      // block_q8_0 { ggml_half d; int8_t qs[32]; }: x = d * q.
      constexpr int64_t kBlock = 32;
      for (int64_t b = 0; b < element_count / kBlock; ++b) {
        const uint8_t* block = data + b * 34;
        const float scale = HalfToFloat(LoadU16(block));
        for (int64_t j = 0; j < kBlock; ++j) {
          out[b * kBlock + j] = scale * static_cast<float>(static_cast<int8_t>(block[2 + j]));
        }
      }
      return absl::OkStatus();
    }
    default:
      return absl::UnimplementedError(
          absl::StrCat("dequantizing ", GgmlTypeName(type),
                       " to f32 is not implemented (supported: F32, F16, BF16, Q8_0)"));
  }
}

}  // namespace slm::workers
