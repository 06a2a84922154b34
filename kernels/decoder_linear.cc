// DecoderLinear (PackedMatrix for few rows, kernels::Linear for many) and the scalar references
// of the GEMV kernels.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/gemv.h"
#include "kernels/gemv_kernels.h"

namespace slm::kernels {

DecoderLinear::~DecoderLinear() = default;

namespace {

std::atomic<int64_t> gemv_row_limit{PackedMatrix::kMaxRows};

absl::Status CheckMaxRows(int64_t max_rows) {
  if (max_rows < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("DecoderLinear: max_rows must be positive; got ", max_rows));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DecoderLinear>> DecoderLinear::Assemble(
    std::unique_ptr<PackedMatrix> packed, const float* dequantized, const int8_t* q,
    const float* scales, const float* bias, int64_t out, int64_t in, DType dtype,
    int64_t max_rows) {
  std::unique_ptr<DecoderLinear> layer(new DecoderLinear());
  layer->out_ = out;
  layer->in_ = in;
  layer->max_rows_ = max_rows;
  layer->dtype_ = dtype;
  layer->packed_ = std::move(packed);
  if (layer->packed_ != nullptr && bias != nullptr) layer->bias_.assign(bias, bias + out);
  if (dtype == DType::kF32 || max_rows > PackedMatrix::kMaxRows) {
    if (dtype == DType::kInt8) {
      SLM_ASSIGN_OR_RETURN(layer->linear_, Linear::CreateFromInt8(q, scales, bias, out, in,
                                                                  Activation::kNone, max_rows));
    } else {
      SLM_ASSIGN_OR_RETURN(layer->linear_, Linear::Create(dequantized, bias, out, in, dtype,
                                                          Activation::kNone, max_rows));
    }
  }
  return layer;
}

absl::StatusOr<std::unique_ptr<DecoderLinear>> DecoderLinear::Create(const float* weight,
                                                                     const float* bias,
                                                                     int64_t out, int64_t in,
                                                                     DType dtype,
                                                                     int64_t max_rows) {
  SLM_RETURN_IF_ERROR(CheckMaxRows(max_rows));
  if (dtype == DType::kInt8 && weight != nullptr && out > 0 && in > 0 &&
      out <= (int64_t{1} << 28) && in <= (int64_t{1} << 28)) {
    // Quantize once for both copies (the packed one and oneDNN's).
    if (const int64_t i = internal::FindNonFinite(weight, out * in); i >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("PackedMatrix: weight[", i / in, ", ", i % in, "] is not finite"));
    }
    std::unique_ptr<int8_t[]> q(new int8_t[static_cast<size_t>(out * in)]);
    std::vector<float> scales(static_cast<size_t>(out));
    QuantizeRowsInt8(weight, out, in, q.get(), scales.data());
    return CreateFromInt8(q.get(), scales.data(), bias, out, in, max_rows);
  }
  std::unique_ptr<PackedMatrix> packed;
  if (dtype != DType::kF32) {
    SLM_ASSIGN_OR_RETURN(packed, PackedMatrix::Create(weight, out, in, dtype));
  }
  return Assemble(std::move(packed), weight, nullptr, nullptr, bias, out, in, dtype, max_rows);
}

absl::StatusOr<std::unique_ptr<DecoderLinear>> DecoderLinear::CreateFromInt8(
    const int8_t* q, const float* scales, const float* bias, int64_t out, int64_t in,
    int64_t max_rows) {
  SLM_RETURN_IF_ERROR(CheckMaxRows(max_rows));
  SLM_ASSIGN_OR_RETURN(std::unique_ptr<PackedMatrix> packed,
                       PackedMatrix::CreateFromInt8(q, scales, out, in));
  return Assemble(std::move(packed), nullptr, q, scales, bias, out, in, DType::kInt8, max_rows);
}

absl::StatusOr<std::unique_ptr<DecoderLinear>> DecoderLinear::CreateFromBf16(
    const uint16_t* weight, const float* bias, int64_t out, int64_t in, int64_t max_rows) {
  SLM_RETURN_IF_ERROR(CheckMaxRows(max_rows));
  SLM_ASSIGN_OR_RETURN(std::unique_ptr<PackedMatrix> packed,
                       PackedMatrix::CreateFromBf16(weight, out, in));
  std::vector<float> dequantized;
  if (max_rows > PackedMatrix::kMaxRows) {
    dequantized.resize(static_cast<size_t>(out * in));
    for (int64_t i = 0; i < out * in; ++i) dequantized[i] = Bf16ToFloat(weight[i]);
  }
  return Assemble(std::move(packed), dequantized.data(), nullptr, nullptr, bias, out, in,
                  DType::kBF16, max_rows);
}

absl::Status DecoderLinear::Forward(const float* x, int64_t rows, float* y) const {
  if (rows < 1 || rows > max_rows_) {
    return absl::InvalidArgumentError(absl::StrCat("DecoderLinear::Forward: rows must be in [1, ",
                                                   max_rows_, "]; got ", rows));
  }
  const int64_t limit = gemv_row_limit.load(std::memory_order_relaxed);
  if (packed_ != nullptr && (rows <= limit || (linear_ == nullptr && rows <= max_rows_))) {
    const float* bias = bias_.empty() ? nullptr : bias_.data();
    for (int64_t first = 0; first < rows; first += limit) {
      const int64_t count = std::min(limit, rows - first);
      SLM_RETURN_IF_ERROR(packed_->Multiply(x + first * in_, count, y + first * out_, bias));
    }
    return absl::OkStatus();
  }
  return linear_->Forward(x, rows, y);
}

void SetDecoderLinearGemvRowLimit(int64_t rows) {
  gemv_row_limit.store(std::clamp<int64_t>(rows, 1, PackedMatrix::kMaxRows));
}

int64_t DecoderLinearGemvRowLimit() { return gemv_row_limit.load(); }

int64_t DecoderLinear::PreparedWeightBytes() const {
  return (packed_ != nullptr ? packed_->PackedBytes() : 0) +
         (linear_ != nullptr ? linear_->PreparedWeightBytes() : 0);
}

void ReferenceGemvInt8(const float* x, int64_t rows, const int8_t* q, const float* scales,
                       int64_t out, int64_t in, float* y) {
  std::vector<int32_t> xq(static_cast<size_t>(in));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * in;
    float abs_max = 0.0f;
    for (int64_t i = 0; i < in; ++i) abs_max = std::max(abs_max, std::fabs(row[i]));
    const float scale = abs_max > 0.0f ? abs_max / 127.0f : 1.0f;
    const float inverse = 1.0f / scale;
    for (int64_t i = 0; i < in; ++i) {
      const float value = std::min(127.0f, std::max(-127.0f, row[i] * inverse));
      // Round half away from zero, computed in f32 as the quantizer's contract says.
      xq[i] = static_cast<int32_t>(std::trunc(value + std::copysign(0.5f, value)));
    }
    for (int64_t o = 0; o < out; ++o) {
      int64_t dot = 0;
      for (int64_t i = 0; i < in; ++i) dot += int64_t{xq[i]} * q[o * in + i];
      y[r * out + o] = static_cast<float>(static_cast<double>(dot) * scale * scales[o]);
    }
  }
}

void ReferenceGemvBf16(const float* x, int64_t rows, const uint16_t* weight, int64_t out,
                       int64_t in, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double sum = 0.0;
      for (int64_t i = 0; i < in; ++i) {
        sum += static_cast<double>(Bf16ToFloat(FloatToBf16(x[r * in + i]))) *
               Bf16ToFloat(weight[o * in + i]);
      }
      y[r * out + o] = static_cast<float>(sum);
    }
  }
}

}  // namespace slm::kernels
