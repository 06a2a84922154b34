#include "kernels/gemv.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/aligned_buffer.h"
#include "kernels/gemv_kernels.h"
#include "kernels/vector_math.h"

namespace slm::kernels {
namespace {

using internal::GemvIsa;
using internal::kBlockRows;

std::atomic<bool> force_portable{false};

GemvIsa DetectIsa(DType dtype) {
  if (force_portable.load(std::memory_order_relaxed)) return GemvIsa::kPortable;
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  if (dtype == DType::kInt8 && avx512 && __builtin_cpu_supports("avx512vnni")) {
    return GemvIsa::kAvx512Vnni;
  }
  if (dtype == DType::kBF16 && avx512 && __builtin_cpu_supports("avx512bf16")) {
    return GemvIsa::kAvx512Bf16;
  }
  return GemvIsa::kPortable;
}

AlignedBuffer& ThreadActivationBuffer() {
  thread_local AlignedBuffer buffer;
  return buffer;
}

AlignedBuffer& ThreadInterleavedBuffer() {
  thread_local AlignedBuffer buffer;
  return buffer;
}

// Per-row symmetric quantization of activations to u8 (q + 128), padded with 128 (zero) to
// `padded_in`; scale[r] = max|x_r| / 127, or 1 for an all-zero row. Row-major [rows][padded_in].
SLM_KERNELS_MULTIVERSION
void QuantizeActivations(const float* x, int64_t rows, int64_t in, int64_t padded_in, uint8_t* xq,
                         float* scale) {
  constexpr int kLanes = 16;  // partial maxima: the max reduction vectorizes, same result
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * in;
    float partial[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= in; i += kLanes) {
      for (int lane = 0; lane < kLanes; ++lane) {
        partial[lane] = std::max(partial[lane], std::fabs(row[i + lane]));
      }
    }
    float abs_max = 0.0f;
    for (; i < in; ++i) abs_max = std::max(abs_max, std::fabs(row[i]));
    for (float value : partial) abs_max = std::max(abs_max, value);
    const float s = abs_max > 0.0f ? abs_max / 127.0f : 1.0f;
    scale[r] = s;
    const float inverse = 1.0f / s;
    uint8_t* out = xq + r * padded_in;
    for (i = 0; i < in; ++i) {
      float value = std::min(127.0f, std::max(-127.0f, row[i] * inverse));
      value += value >= 0.0f ? 0.5f : -0.5f;
      out[i] = static_cast<uint8_t>(static_cast<int32_t>(value) + 128);
    }
    for (i = in; i < padded_in; ++i) out[i] = 128;
  }
}

// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized once inlined (see gemv_kernels.cc).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// QuantizeActivations with AVX-512 (the same rounding of each element, so the same bytes; needs
// only AVX-512 F/BW, which every VNNI CPU of the int8 kernel has), writing the group-interleaved
// layout the kernels read ([groups][rows][4]; for rows == 1 that is row-major) directly instead
// of a row-major copy plus InterleaveGroups.
//
// Four rows at a time: the four rows' 16 quantized lanes (int32 in [-127, 127]) packed with
// signed saturation (exact: no lane saturates) leave 128-bit lane l holding group i / 4 + l of
// rows r .. r + 3, which is 16 contiguous bytes of the interleaved layout; one row at a time it
// is 4 scattered 4-byte stores per 16 elements (4.5% of SmolLM2's 16-sequence decode step).
__attribute__((target("avx512f,avx512bw"))) inline __m512i QuantizeLanes(const float* row,
                                                                          int64_t i, int64_t in,
                                                                          __m512 inverse) {
  const __mmask16 mask = in - i >= 16 ? static_cast<__mmask16>(0xFFFF)
                         : in > i     ? static_cast<__mmask16>((1u << (in - i)) - 1u)
                                      : static_cast<__mmask16>(0);
  __m512 value = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, row + i), inverse);
  // max(value, -127) first: a NaN product (0 * inf) becomes -127, as std::max(-127, NaN) does.
  value = _mm512_min_ps(_mm512_set1_ps(127.0f), _mm512_max_ps(value, _mm512_set1_ps(-127.0f)));
  // + 0.5 with value's sign ((value & sign bit) | 0.5 in one vpternlogd): as value >= 0 ? 0.5 :
  // -0.5 except for -0.0, which truncates to 0 either way.
  const __m512i half = _mm512_ternarylogic_epi32(_mm512_castps_si512(value),
                                                 _mm512_set1_epi32(INT32_MIN),
                                                 _mm512_castps_si512(_mm512_set1_ps(0.5f)), 0xEA);
  return _mm512_cvttps_epi32(_mm512_add_ps(value, _mm512_castsi512_ps(half)));
}

__attribute__((target("avx512f,avx512bw"))) void QuantizeActivationsInterleavedAvx512(
    const float* x, int64_t rows, int64_t in, int64_t padded_in, uint8_t* xq, float* scale) {
  float inverses[PackedMatrix::kMaxRows];
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * in;
    __m512 maxima = _mm512_setzero_ps();
    for (int64_t i = 0; i < in; i += 16) {
      const __mmask16 mask = in - i >= 16 ? static_cast<__mmask16>(0xFFFF)
                                          : static_cast<__mmask16>((1u << (in - i)) - 1u);
      // Operand order as std::max(partial, |x|): a NaN element is skipped, as there.
      maxima = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(mask, row + i)), maxima);
    }
    const float abs_max = _mm512_reduce_max_ps(maxima);
    const float s = abs_max > 0.0f ? abs_max / 127.0f : 1.0f;
    scale[r] = s;
    inverses[r] = 1.0f / s;
  }
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* row = x + r * in;
    const __m512 inverse[4] = {_mm512_set1_ps(inverses[r]), _mm512_set1_ps(inverses[r + 1]),
                               _mm512_set1_ps(inverses[r + 2]), _mm512_set1_ps(inverses[r + 3])};
    for (int64_t i = 0; i < padded_in; i += 16) {
      const __m512i low = _mm512_packs_epi32(QuantizeLanes(row, i, in, inverse[0]),
                                             QuantizeLanes(row + in, i, in, inverse[1]));
      const __m512i high = _mm512_packs_epi32(QuantizeLanes(row + 2 * in, i, in, inverse[2]),
                                              QuantizeLanes(row + 3 * in, i, in, inverse[3]));
      // Signed bytes in [-127, 127], then + 128 as a flip of the top bit.
      const __m512i bytes = _mm512_xor_si512(_mm512_packs_epi16(low, high),
                                             _mm512_set1_epi8(static_cast<char>(0x80)));
      // Lane l: group i / 4 + l, rows r .. r + 3 (padded_in is a multiple of 4).
      uint8_t* out = xq + ((i / 4) * rows + r) * 4;
      const int64_t lane_stride = rows * 4;
      const int64_t count = std::min<int64_t>(4, (padded_in - i) / 4);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_castsi512_si128(bytes));
      if (count > 1) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + lane_stride),
                         _mm512_extracti32x4_epi32(bytes, 1));
      }
      if (count > 2) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * lane_stride),
                         _mm512_extracti32x4_epi32(bytes, 2));
      }
      if (count > 3) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 3 * lane_stride),
                         _mm512_extracti32x4_epi32(bytes, 3));
      }
    }
  }
  for (; r < rows; ++r) {
    const float* row = x + r * in;
    const __m512 inverse = _mm512_set1_ps(inverses[r]);
    for (int64_t i = 0; i < padded_in; i += 16) {
      const __m128i bytes = _mm512_cvtepi32_epi8(
          _mm512_add_epi32(QuantizeLanes(row, i, in, inverse), _mm512_set1_epi32(128)));
      // Elements [i, i + 16) are groups i / 4 .. i / 4 + 3.
      const int64_t group = i / 4, count = std::min<int64_t>(4, (padded_in - i) / 4);
      alignas(16) int32_t lanes[4];
      _mm_store_si128(reinterpret_cast<__m128i*>(lanes), bytes);
      for (int64_t k = 0; k < count; ++k) {
        std::memcpy(xq + ((group + k) * rows + r) * 4, &lanes[k], 4);
      }
    }
  }
}

#pragma GCC diagnostic pop

SLM_KERNELS_MULTIVERSION
void ActivationsToBf16(const float* x, int64_t rows, int64_t in, int64_t padded_in,
                       uint16_t* out) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < in; ++i) out[r * padded_in + i] = FloatToBf16(x[r * in + i]);
    for (int64_t i = in; i < padded_in; ++i) out[r * padded_in + i] = 0;
  }
}

// Row-major 4-byte lanes [rows][groups] -> group-interleaved [groups][rows] (the layout
// GemvArgs::activations documents): a transpose of 32-bit words.
void InterleaveGroups(const int32_t* row_major, int64_t rows, int64_t groups, int32_t* out) {
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t r = 0; r < rows; ++r) out[g * rows + r] = row_major[r * groups + g];
  }
}

SLM_KERNELS_MULTIVERSION
void F32Blocks(const float* w, const float* x, int64_t rows, int64_t in, int64_t out,
               int64_t first, int64_t last, const float* bias, float* y) {
  for (int64_t o = first; o < last; ++o) {
    const float* wo = w + o * in;
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * in;
      float sum = 0.0f;
      for (int64_t i = 0; i < in; ++i) sum += wo[i] * xr[i];
      y[r * out + o] = sum + (bias != nullptr ? bias[o] : 0.0f);
    }
  }
}

// Load-time scans, written to vectorize (reductions without early exits).
SLM_KERNELS_MULTIVERSION
bool ContainsInt8Min(const int8_t* q, int64_t count) {
  int found = 0;
  for (int64_t i = 0; i < count; ++i) found |= q[i] == -128;
  return found != 0;
}

SLM_KERNELS_MULTIVERSION
void RowSumsInt8(const int8_t* q, int64_t out, int64_t in, int32_t* sums) {
  for (int64_t o = 0; o < out; ++o) {
    int32_t sum = 0;
    for (int64_t i = 0; i < in; ++i) sum += q[o * in + i];
    sums[o] = sum;
  }
}

// int8 accumulates sum_i (x_i + 128) * q_i in int32: |sum| <= 255 * 127 * in < 2^31 needs
// in <= 65536.
constexpr int64_t kMaxInt8In = 65536;

absl::Status CheckSizes(int64_t out, int64_t in, DType dtype) {
  if (out <= 0 || in <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("PackedMatrix: out and in must be positive; got out=", out, " in=", in));
  }
  if (out > (int64_t{1} << 28) || in > (int64_t{1} << 28) ||
      (dtype == DType::kInt8 && in > kMaxInt8In)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PackedMatrix: in must be <= ", dtype == DType::kInt8 ? kMaxInt8In : int64_t{1} << 28,
        " for ", std::string(DTypeName(dtype)), " (int32 accumulation) and out <= 2^28; got out=",
        out, " in=", in));
  }
  return absl::OkStatus();
}

}  // namespace

uint16_t FloatToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float Bf16ToFloat(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof(value));
  return value;
}

// Vectorized (16 partial maxima; the clamp, the rounding select and the truncation map to
// vector instructions) with exactly the scalar formula's results.
SLM_KERNELS_MULTIVERSION
void QuantizeRowsInt8(const float* weight, int64_t out, int64_t in, int8_t* q, float* scales) {
  constexpr int kLanes = 16;
  for (int64_t o = 0; o < out; ++o) {
    const float* row = weight + o * in;
    float partial[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= in; i += kLanes) {
      for (int lane = 0; lane < kLanes; ++lane) {
        partial[lane] = std::max(partial[lane], std::fabs(row[i + lane]));
      }
    }
    float abs_max = 0.0f;
    for (; i < in; ++i) abs_max = std::max(abs_max, std::fabs(row[i]));
    for (float value : partial) abs_max = std::max(abs_max, value);
    const float scale = abs_max > 0.0f ? abs_max / 127.0f : 1.0f;
    scales[o] = scale;
    const float inverse = 1.0f / scale;
    int8_t* q_row = q + o * in;
    for (i = 0; i < in; ++i) {
      float value = std::min(127.0f, std::max(-127.0f, row[i] * inverse));
      value += value >= 0.0f ? 0.5f : -0.5f;
      q_row[i] = static_cast<int8_t>(static_cast<int32_t>(value));
    }
  }
}

struct PackedMatrix::Storage {
  GemvIsa isa = GemvIsa::kPortable;
  internal::PackedLayout layout;
  std::unique_ptr<char, internal::FreeDeleter> packed;  // int8 or bf16 blocks
  std::vector<float> scales;                            // int8: [blocks * 16], zero padded
  std::vector<int32_t> sums;                            // int8: sum_i q[o, i]
  std::vector<float> weight;                            // f32: [out, in]
};

PackedMatrix::PackedMatrix(int64_t out, int64_t in, DType dtype, std::unique_ptr<Storage> storage)
    : out_(out), in_(in), dtype_(dtype), storage_(std::move(storage)) {}
PackedMatrix::~PackedMatrix() = default;

absl::StatusOr<std::unique_ptr<PackedMatrix>> PackedMatrix::Create(const float* weight,
                                                                   int64_t out, int64_t in,
                                                                   DType dtype) {
  if (absl::Status status = CheckSizes(out, in, dtype); !status.ok()) return status;
  if (weight == nullptr) return absl::InvalidArgumentError("PackedMatrix: weight is null");
  if (const int64_t i = internal::FindNonFinite(weight, out * in); i >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("PackedMatrix: weight[", i / in, ", ", i % in, "] is not finite"));
  }
  switch (dtype) {
    case DType::kInt8: {
      // (new[] rather than std::vector<int8_t>: GCC 12 misreports a zero-size write there.)
      std::unique_ptr<int8_t[]> q(new int8_t[static_cast<size_t>(out * in)]);
      std::vector<float> scales(static_cast<size_t>(out));
      QuantizeRowsInt8(weight, out, in, q.get(), scales.data());
      return CreateFromInt8(q.get(), scales.data(), out, in);
    }
    case DType::kBF16: {
      std::vector<uint16_t> bf16(static_cast<size_t>(out * in));
      for (int64_t i = 0; i < out * in; ++i) bf16[i] = FloatToBf16(weight[i]);
      return CreateFromBf16(bf16.data(), out, in);
    }
    case DType::kF32: {
      auto storage = std::make_unique<Storage>();
      storage->weight.assign(weight, weight + out * in);
      return std::unique_ptr<PackedMatrix>(
          new PackedMatrix(out, in, DType::kF32, std::move(storage)));
    }
  }
  return absl::InvalidArgumentError("PackedMatrix: unknown dtype");
}

absl::StatusOr<std::unique_ptr<PackedMatrix>> PackedMatrix::CreateFromInt8(const int8_t* q,
                                                                           const float* scales,
                                                                           int64_t out,
                                                                           int64_t in) {
  if (absl::Status status = CheckSizes(out, in, DType::kInt8); !status.ok()) return status;
  if (q == nullptr || scales == nullptr) {
    return absl::InvalidArgumentError("PackedMatrix: int8 weights or scales are null");
  }
  if (ContainsInt8Min(q, out * in)) {
    for (int64_t i = 0; i < out * in; ++i) {
      if (q[i] == -128) {
        return absl::InvalidArgumentError(absl::StrCat("PackedMatrix: int8 weight[", i / in, ", ",
                                                       i % in, "] is -128; expected [-127, 127]"));
      }
    }
  }
  for (int64_t o = 0; o < out; ++o) {
    if (!std::isfinite(scales[o])) {
      return absl::InvalidArgumentError(
          absl::StrCat("PackedMatrix: scales[", o, "] is not finite"));
    }
  }
  auto storage = std::make_unique<Storage>();
  storage->isa = DetectIsa(DType::kInt8);
  storage->layout = internal::MakeLayout(out, in, /*k_group=*/4);
  const internal::PackedLayout& layout = storage->layout;
  storage->packed = internal::AllocateAligned(layout.PackedBytes(1));
  internal::PackInt8(q, out, in, layout, reinterpret_cast<int8_t*>(storage->packed.get()));
  storage->scales.assign(static_cast<size_t>(layout.padded_out), 0.0f);
  storage->sums.assign(static_cast<size_t>(layout.padded_out), 0);
  for (int64_t o = 0; o < out; ++o) storage->scales[o] = scales[o];
  RowSumsInt8(q, out, in, storage->sums.data());
  return std::unique_ptr<PackedMatrix>(new PackedMatrix(out, in, DType::kInt8, std::move(storage)));
}

absl::StatusOr<std::unique_ptr<PackedMatrix>> PackedMatrix::CreateFromBf16(const uint16_t* weight,
                                                                           int64_t out,
                                                                           int64_t in) {
  if (absl::Status status = CheckSizes(out, in, DType::kBF16); !status.ok()) return status;
  if (weight == nullptr) return absl::InvalidArgumentError("PackedMatrix: bf16 weight is null");
  for (int64_t i = 0; i < out * in; ++i) {
    if ((weight[i] & 0x7F80u) == 0x7F80u) {
      return absl::InvalidArgumentError(absl::StrCat("PackedMatrix: bf16 weight[", i / in, ", ",
                                                     i % in, "] is not finite"));
    }
  }
  auto storage = std::make_unique<Storage>();
  storage->isa = DetectIsa(DType::kBF16);
  storage->layout = internal::MakeLayout(out, in, /*k_group=*/2);
  const internal::PackedLayout& layout = storage->layout;
  storage->packed = internal::AllocateAligned(layout.PackedBytes(2));
  internal::PackBf16(weight, out, in, layout, reinterpret_cast<uint16_t*>(storage->packed.get()));
  return std::unique_ptr<PackedMatrix>(new PackedMatrix(out, in, DType::kBF16, std::move(storage)));
}

absl::Status PackedMatrix::Multiply(const float* x, int64_t rows, float* y,
                                    const float* bias) const {
  if (rows < 1 || rows > kMaxRows) {
    return absl::InvalidArgumentError(
        absl::StrCat("PackedMatrix::Multiply: rows must be in [1, ", kMaxRows, "]; got ", rows));
  }
  if (x == nullptr || y == nullptr) {
    return absl::InvalidArgumentError("PackedMatrix::Multiply: x or y is null");
  }
  const Storage& s = *storage_;
  const internal::PackedLayout& layout = s.layout;
  internal::GemvArgs args;
  args.layout = &layout;
  args.rows = rows;
  args.out = out_;
  args.bias = bias;
  args.y = y;
  float activation_scales[kMaxRows];
  if (dtype_ != DType::kF32) {
    // Convert row-major, then (for several rows) interleave by group for the kernels; the
    // AVX-512 int8 path quantizes straight into the interleaved layout.
    const size_t lane_bytes = static_cast<size_t>(rows * layout.padded_in) *
                              (dtype_ == DType::kInt8 ? 1 : sizeof(uint16_t));
    void* row_major = ThreadActivationBuffer().Get(lane_bytes);
    const bool interleaved_here = dtype_ == DType::kInt8 && s.isa == internal::GemvIsa::kAvx512Vnni;
    if (interleaved_here) {
      QuantizeActivationsInterleavedAvx512(x, rows, in_, layout.padded_in,
                                           static_cast<uint8_t*>(row_major), activation_scales);
      args.activation_scales = activation_scales;
      args.weight_scales = s.scales.data();
      args.weight_sums = s.sums.data();
    } else if (dtype_ == DType::kInt8) {
      QuantizeActivations(x, rows, in_, layout.padded_in, static_cast<uint8_t*>(row_major),
                          activation_scales);
      args.activation_scales = activation_scales;
      args.weight_scales = s.scales.data();
      args.weight_sums = s.sums.data();
    } else {
      ActivationsToBf16(x, rows, in_, layout.padded_in, static_cast<uint16_t*>(row_major));
    }
    args.activations = row_major;
    if (rows > 1 && !interleaved_here) {
      void* interleaved = ThreadInterleavedBuffer().Get(lane_bytes);
      InterleaveGroups(static_cast<const int32_t*>(row_major), rows, layout.groups,
                       static_cast<int32_t*>(interleaved));
      args.activations = interleaved;
    }
    args.weights = s.packed.get();
  }
  const int64_t units = dtype_ == DType::kF32 ? out_ : layout.blocks;
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  // Inside a caller's parallel region other threads share the memory bandwidth too.
  args.alone = !omp_in_parallel() && threads == 1;
  auto run = [&](int64_t first, int64_t last) {
    if (first >= last) return;
    if (dtype_ == DType::kF32) {
      F32Blocks(s.weight.data(), x, rows, in_, out_, first, last, bias, y);
    } else {
      internal::RunGemvBlocks(s.isa, dtype_, args, first, last);
    }
  };
  if (threads <= 1 || units < 2) {
    run(0, units);
  } else {
#pragma omp parallel num_threads(static_cast<int>(std::min<int64_t>(threads, units)))
    {
      const int64_t team = omp_get_num_threads();
      const int64_t id = omp_get_thread_num();
      run(units * id / team, units * (id + 1) / team);
    }
  }
  return absl::OkStatus();
}

int64_t PackedMatrix::PackedBytes() const {
  const Storage& s = *storage_;
  switch (dtype_) {
    case DType::kInt8:
      return s.layout.PackedBytes(1) + s.layout.padded_out * 8;
    case DType::kBF16:
      return s.layout.PackedBytes(2);
    case DType::kF32:
      return out_ * in_ * 4;
  }
  return 0;
}

std::string PackedMatrix::KernelName() const {
  if (dtype_ == DType::kF32) return "f32_loop";
  return std::string(internal::GemvIsaName(storage_->isa));
}

namespace internal {

SLM_KERNELS_MULTIVERSION
int64_t FindNonFinite(const float* x, int64_t count) {
  int bad = 0;  // an OR reduction without an early exit vectorizes; then find the index
  for (int64_t i = 0; i < count; ++i) bad |= !(std::fabs(x[i]) <= 3.40282347e38f);
  if (bad == 0) return -1;
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(x[i])) return i;
  }
  return -1;
}

void ForcePortableGemvForTesting(bool portable) { force_portable.store(portable); }
}  // namespace internal

}  // namespace slm::kernels
