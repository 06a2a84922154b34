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

// block_q4_0 { ggml_half d; uint8_t qs[16]; }: element j (< 16) is the low nibble of qs[j],
// element j + 16 the high nibble; x = d * (q - 8).
void DequantizeQ4_0(const uint8_t* data, int64_t blocks, float* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = data + b * 18;
    const float scale = HalfToFloat(LoadU16(block));
    const uint8_t* qs = block + 2;
    float* y = out + b * 32;
    for (int j = 0; j < 16; ++j) {
      y[j] = scale * static_cast<float>((qs[j] & 0x0f) - 8);
      y[j + 16] = scale * static_cast<float>((qs[j] >> 4) - 8);
    }
  }
}

// block_q4_1 { ggml_half d; ggml_half m; uint8_t qs[16]; }: nibbles as Q4_0, x = d * q + m.
// block_q5_0 { ggml_half d; uint8_t qh[4]; uint8_t qs[16]; }: the 5th bit of element j is bit j
// of the little-endian qh word, x = d * (q - 16). block_q5_1 adds ggml_half m after d:
// x = d * q + m.
void DequantizeQ4_1(const uint8_t* data, int64_t blocks, float* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = data + b * 20;
    const float d = HalfToFloat(LoadU16(block));
    const float m = HalfToFloat(LoadU16(block + 2));
    const uint8_t* qs = block + 4;
    float* y = out + b * 32;
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(qs[j] & 0x0f) * d + m;
      y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

void DequantizeQ5(const uint8_t* data, int64_t blocks, bool with_min, float* out) {
  const int64_t block_bytes = with_min ? 24 : 22;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = data + b * block_bytes;
    const float d = HalfToFloat(LoadU16(block));
    const float m = with_min ? HalfToFloat(LoadU16(block + 2)) : 0.0f;
    const uint8_t* qh_bytes = block + (with_min ? 4 : 2);
    const uint32_t qh =
        static_cast<uint32_t>(qh_bytes[0]) | (static_cast<uint32_t>(qh_bytes[1]) << 8) |
        (static_cast<uint32_t>(qh_bytes[2]) << 16) | (static_cast<uint32_t>(qh_bytes[3]) << 24);
    const uint8_t* qs = qh_bytes + 4;
    float* y = out + b * 32;
    for (int j = 0; j < 16; ++j) {
      const int q0 = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int q1 = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      if (with_min) {
        y[j] = static_cast<float>(q0) * d + m;
        y[j + 16] = static_cast<float>(q1) * d + m;
      } else {
        y[j] = static_cast<float>(q0 - 16) * d;
        y[j + 16] = static_cast<float>(q1 - 16) * d;
      }
    }
  }
}

// The 6-bit scale and min of Q4_K sub-block j (0..7) from the 12 packed bytes (ggml's
// get_scale_min_k4): sub-blocks 0-3 keep their low 6 bits in bytes j and j+4; sub-blocks 4-7
// keep their low 4 bits in byte j+4 and their top 2 bits in the top bits of bytes j-4 and j.
void Q4KScaleMin(int j, const uint8_t* scales, int* scale, int* min) {
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
    *min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

// block_q4_K { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qs[128]; } (144 bytes,
// 256 elements in 8 sub-blocks of 32): x = d * scale_j * q - dmin * min_j. Each 32 bytes of qs
// hold two sub-blocks: 2k in the low nibbles, 2k+1 in the high nibbles.
void DequantizeQ4_K(const uint8_t* data, int64_t blocks, float* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = data + b * 144;
    const float d = HalfToFloat(LoadU16(block));
    const float dmin = HalfToFloat(LoadU16(block + 2));
    const uint8_t* scales = block + 4;
    const uint8_t* qs = block + 16;
    float* y = out + b * 256;
    for (int pair = 0; pair < 4; ++pair) {
      int scale_lo, min_lo, scale_hi, min_hi;
      Q4KScaleMin(2 * pair, scales, &scale_lo, &min_lo);
      Q4KScaleMin(2 * pair + 1, scales, &scale_hi, &min_hi);
      const uint8_t* q = qs + 32 * pair;
      for (int l = 0; l < 32; ++l) {
        y[64 * pair + l] = d * scale_lo * (q[l] & 0x0f) - dmin * min_lo;
        y[64 * pair + 32 + l] = d * scale_hi * (q[l] >> 4) - dmin * min_hi;
      }
    }
  }
}

// block_q5_K { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; }
// (176 bytes): Q4_K plus a 5th bit per element: element l of sub-block 2k takes bit 2k of qh[l],
// of sub-block 2k+1 bit 2k+1 of qh[l]; x = d * scale_j * q - dmin * min_j, q in 0..31.
void DequantizeQ5_K(const uint8_t* data, int64_t blocks, float* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = data + b * 176;
    const float d = HalfToFloat(LoadU16(block));
    const float dmin = HalfToFloat(LoadU16(block + 2));
    const uint8_t* scales = block + 4;
    const uint8_t* qh = block + 16;
    const uint8_t* qs = block + 48;
    float* y = out + b * 256;
    for (int pair = 0; pair < 4; ++pair) {
      int scale_lo, min_lo, scale_hi, min_hi;
      Q4KScaleMin(2 * pair, scales, &scale_lo, &min_lo);
      Q4KScaleMin(2 * pair + 1, scales, &scale_hi, &min_hi);
      const uint8_t* q = qs + 32 * pair;
      for (int l = 0; l < 32; ++l) {
        const int lo = (q[l] & 0x0f) | (((qh[l] >> (2 * pair)) & 1) << 4);
        const int hi = (q[l] >> 4) | (((qh[l] >> (2 * pair + 1)) & 1) << 4);
        y[64 * pair + l] = d * scale_lo * lo - dmin * min_lo;
        y[64 * pair + 32 + l] = d * scale_hi * hi - dmin * min_hi;
      }
    }
  }
}

// block_q6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d; } (210 bytes,
// 256 elements in 16 sub-blocks of 16, each with an int8 scale): x = d * scale * (q - 32), q the
// 6-bit value of 4 low bits from ql and 2 high bits from qh. Per half of 128 elements (ql += 64,
// qh += 32): element l (< 32) takes ql[l] low, qh[l] bits 0-1; l+32: ql[l+32] low, bits 2-3;
// l+64: ql[l] high, bits 4-5; l+96: ql[l+32] high, bits 6-7. Element e uses scales[e / 16].
void DequantizeQ6_K(const uint8_t* data, int64_t blocks, float* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = data + b * 210;
    const float d = HalfToFloat(LoadU16(block + 208));
    const int8_t* scales = reinterpret_cast<const int8_t*>(block + 192);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = block + 64 * half;
      const uint8_t* qh = block + 128 + 32 * half;
      float* y = out + b * 256 + 128 * half;
      const int8_t* sc = scales + 8 * half;
      for (int l = 0; l < 32; ++l) {
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        const int is = l / 16;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
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
    case GgmlType::kQ4_0:
      DequantizeQ4_0(data, element_count / 32, out);
      return absl::OkStatus();
    case GgmlType::kQ4_K:
      DequantizeQ4_K(data, element_count / 256, out);
      return absl::OkStatus();
    case GgmlType::kQ4_1:
      DequantizeQ4_1(data, element_count / 32, out);
      return absl::OkStatus();
    case GgmlType::kQ5_0:
      DequantizeQ5(data, element_count / 32, /*with_min=*/false, out);
      return absl::OkStatus();
    case GgmlType::kQ5_1:
      DequantizeQ5(data, element_count / 32, /*with_min=*/true, out);
      return absl::OkStatus();
    case GgmlType::kQ5_K:
      DequantizeQ5_K(data, element_count / 256, out);
      return absl::OkStatus();
    case GgmlType::kQ6_K:
      DequantizeQ6_K(data, element_count / 256, out);
      return absl::OkStatus();
    default:
      return absl::UnimplementedError(absl::StrCat(
          "dequantizing ", GgmlTypeName(type),
          " to f32 is not implemented (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, "
          "Q4_K, Q5_K, Q6_K)"));
  }
}

}  // namespace slm::workers
