// Decode-time matrix products: y[rows, out] = x[rows, in] W^T for a few rows (1..16), with the
// weights repacked once at load into the layout our AVX-512 kernels stream.
//
//   SLM_ASSIGN_OR_RETURN(std::unique_ptr<PackedMatrix> wq,
//                        PackedMatrix::Create(w.data(), /*out=*/896, /*in=*/896, DType::kInt8));
//   SLM_RETURN_IF_ERROR(wq->Multiply(x.data(), /*rows=*/1, y.data()));
//
//   // A layer that serves decode (few rows) and prefill (many rows) alike:
//   SLM_ASSIGN_OR_RETURN(auto fc, DecoderLinear::Create(w.data(), bias_or_null, 4864, 896,
//                                                       DType::kInt8, /*max_rows=*/512));
//   SLM_RETURN_IF_ERROR(fc->Forward(x.data(), rows, y.data()));
//
// Layouts and numerics (weight W is [out, in] row-major, the PyTorch nn.Linear / GGUF layout):
//   kInt8: symmetric per-output-channel int8, W[o, i] ~= scale[o] * q[o, i]. Output rows are
//          packed in blocks of 16, K in groups of 4 bytes (one `vpdpbusd` lane each); each block
//          is contiguous: [K/4][16 rows][4 bytes]. Activations are quantized per row on the fly
//          (symmetric int8, scale max|x_r|/127, round half away from zero) and offset by +128 to
//          u8, with the offset removed through precomputed per-row weight sums (exact in int32).
//   kBF16: bf16 weights (round to nearest even), blocks of 16 rows x K pairs ([K/2][16][2]), one
//          `vdpbf16ps` lane each; activations rounded to bf16, f32 accumulation.
//   kF32:  plain f32 weights (a correctness baseline; no special kernel).
// in and out need not be multiples of anything: the packing pads with zeros.
//
// Kernels are chosen once per process from the CPU (__builtin_cpu_supports): AVX-512 VNNI /
// AVX512_BF16 when present, otherwise portable C++ that computes the same quantized products
// (int8: the same exact integer dot products; bf16: the same products, f32 sums in another
// order).
//
// Threading: Multiply splits output blocks across the caller's OpenMP threads
// (omp_get_max_threads(); kernels never change the thread count). Inside an enclosing parallel
// region it runs on the calling thread.
// Ownership: PackedMatrix and DecoderLinear own their packed copies; callers keep their buffers.
// Thread-safety: Multiply / Forward are const and may be called concurrently (per-thread scratch).
#ifndef SLM_KERNELS_GEMV_H_
#define SLM_KERNELS_GEMV_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/dtype.h"
#include "kernels/linear.h"

namespace slm::kernels {

class PackedMatrix {
 public:
  // Most rows one Multiply call takes (more rows: call again per chunk, or use DecoderLinear).
  static constexpr int64_t kMaxRows = 16;

  // weight: [out, in] row-major f32, quantized/converted per `dtype`. InvalidArgument for a null
  // weight, non-positive sizes, in > 65536 for int8 (int32 accumulation), or non-finite weights.
  static absl::StatusOr<std::unique_ptr<PackedMatrix>> Create(const float* weight, int64_t out,
                                                              int64_t in, DType dtype);

  // Already-quantized int8 weights: q [out, in] row-major, scales [out] (W[o,i] = scales[o] *
  // q[o,i]); q values must lie in [-127, 127] (InvalidArgument naming the first bad element).
  static absl::StatusOr<std::unique_ptr<PackedMatrix>> CreateFromInt8(const int8_t* q,
                                                                      const float* scales,
                                                                      int64_t out, int64_t in);

  // bf16 weights given as raw bits [out, in] row-major (e.g. a GGUF BF16 tensor).
  static absl::StatusOr<std::unique_ptr<PackedMatrix>> CreateFromBf16(const uint16_t* weight,
                                                                      int64_t out, int64_t in);

  // y[r, :] = x[r, :] W^T (+ bias when non-null, [out]), for 1 <= rows <= kMaxRows.
  // x: [rows, in], y: [rows, out], row-major f32. InvalidArgument for rows out of range or null.
  absl::Status Multiply(const float* x, int64_t rows, float* y, const float* bias = nullptr) const;

  int64_t out_features() const { return out_; }
  int64_t in_features() const { return in_; }
  DType dtype() const { return dtype_; }
  // Bytes of the packed weights (+ scales and sums): what one Multiply streams from memory.
  int64_t PackedBytes() const;
  // "avx512_vnni", "avx512_bf16", "avx512f", "portable", ... : the kernel this process uses.
  std::string KernelName() const;

  ~PackedMatrix();
  PackedMatrix(const PackedMatrix&) = delete;
  PackedMatrix& operator=(const PackedMatrix&) = delete;

  struct Storage;  // defined in gemv.cc

 private:
  PackedMatrix(int64_t out, int64_t in, DType dtype, std::unique_ptr<Storage> storage);
  int64_t out_;
  int64_t in_;
  DType dtype_;
  std::unique_ptr<Storage> storage_;
};

// A decoder's linear layer: PackedMatrix for rows <= PackedMatrix::kMaxRows (decode and batched
// decode of up to 16 sequences), kernels::Linear (oneDNN brgemm, fused bias) above it (prefill).
// With max_rows > kMaxRows it holds both copies of the weights (see PreparedWeightBytes).
// For kF32 everything goes through kernels::Linear.
class DecoderLinear {
 public:
  // weight: [out, in] row-major f32; bias [out] or nullptr; 1 <= max_rows.
  // Create oneDNN's part under the OpenMP thread count Forward will run with (see linear.h).
  static absl::StatusOr<std::unique_ptr<DecoderLinear>> Create(const float* weight,
                                                               const float* bias, int64_t out,
                                                               int64_t in, DType dtype,
                                                               int64_t max_rows);

  // From already-converted weights (see PackedMatrix::CreateFromInt8 / CreateFromBf16): the
  // packed copy is made without a float round trip; the oneDNN copy (max_rows > kMaxRows) takes
  // the same int8 q and scales (Linear::CreateFromInt8), or the bf16 values widened to f32.
  // Create with kInt8 quantizes once (QuantizeRowsInt8) and goes through CreateFromInt8.
  static absl::StatusOr<std::unique_ptr<DecoderLinear>> CreateFromInt8(const int8_t* q,
                                                                       const float* scales,
                                                                       const float* bias,
                                                                       int64_t out, int64_t in,
                                                                       int64_t max_rows);
  static absl::StatusOr<std::unique_ptr<DecoderLinear>> CreateFromBf16(const uint16_t* weight,
                                                                       const float* bias,
                                                                       int64_t out, int64_t in,
                                                                       int64_t max_rows);

  // y = x W^T + b, x [rows, in], y [rows, out], 1 <= rows <= max_rows.
  absl::Status Forward(const float* x, int64_t rows, float* y) const;

  int64_t out_features() const { return out_; }
  int64_t in_features() const { return in_; }
  int64_t max_rows() const { return max_rows_; }
  DType dtype() const { return dtype_; }
  int64_t PreparedWeightBytes() const;

  ~DecoderLinear();

 private:
  DecoderLinear() = default;
  // Shared tail of the Create* functions: takes `packed`, adds bias and the oneDNN layer.
  // oneDNN's copy comes from q/scales for kInt8, else from `dequantized` (f32 values).
  static absl::StatusOr<std::unique_ptr<DecoderLinear>> Assemble(
      std::unique_ptr<PackedMatrix> packed, const float* dequantized, const int8_t* q,
      const float* scales, const float* bias, int64_t out, int64_t in, DType dtype,
      int64_t max_rows);
  int64_t out_ = 0, in_ = 0, max_rows_ = 0;
  DType dtype_ = DType::kF32;
  std::unique_ptr<PackedMatrix> packed_;  // null for kF32
  std::unique_ptr<Linear> linear_;        // null when max_rows <= kMaxRows (and not kF32)
  std::vector<float> bias_;               // for the packed path; empty when no bias
};

// Rows up to which DecoderLinear::Forward uses the packed GEMV kernels rather than oneDNN, for
// every DecoderLinear in the process (default PackedMatrix::kMaxRows; clamped to [1, kMaxRows]).
// A layer with only the packed copy (max_rows <= kMaxRows) runs more rows than the limit in
// chunks of the limit. For benchmarks comparing both paths on the same loaded model in one run;
// set it while no Forward runs.
void SetDecoderLinearGemvRowLimit(int64_t rows);
int64_t DecoderLinearGemvRowLimit();

// Symmetric per-output-channel int8 quantization as PackedMatrix::Create does it:
// scales[o] = max|W[o,:]| / 127 (1 when the row is all zero), q = round-half-away(W / scale).
void QuantizeRowsInt8(const float* weight, int64_t out, int64_t in, int8_t* q, float* scales);

// Scalar references (double accumulation) of exactly what the fast kernels compute, for tests:
// the int8 one quantizes x per row as documented above and multiplies integers exactly; the bf16
// one rounds x and W to bf16.
void ReferenceGemvInt8(const float* x, int64_t rows, const int8_t* q, const float* scales,
                       int64_t out, int64_t in, float* y);
void ReferenceGemvBf16(const float* x, int64_t rows, const uint16_t* weight, int64_t out,
                       int64_t in, float* y);

// Round-to-nearest-even f32 -> bf16 bits, and back.
uint16_t FloatToBf16(float value);
float Bf16ToFloat(uint16_t bits);

}  // namespace slm::kernels

#endif  // SLM_KERNELS_GEMV_H_
