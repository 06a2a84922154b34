// A fully connected layer y = act(x W^T + b) on oneDNN matmul, with weights prepared once.
//
//   SLM_ASSIGN_OR_RETURN(std::unique_ptr<Linear> fc1,
//                        Linear::Create(w.data(), b.data(), /*out_features=*/1536,
//                                       /*in_features=*/384, DType::kBF16, Activation::kGelu,
//                                       /*max_rows=*/512));
//   SLM_RETURN_IF_ERROR(fc1->Forward(hidden.data(), seq_len, intermediate.data()));
//
// Weights are converted and reordered ONCE in Create (f32: oneDNN f32; bf16: bf16 weights with
// f32 in/out; int8: symmetric per-output-channel int8 weights with f32 scales, activations
// quantized dynamically per call). Primitives are created in Create for row-count buckets (powers
// of two up to max_rows; inputs are padded to the bucket) and cached, so Forward never creates a
// primitive. A primitive whose impl_info_str() starts with "ref" is a load error
// (absl::FailedPrecondition): a reference implementation would be orders of magnitude slower.
//
// Ownership: Linear owns copies of the weights and bias; callers keep their buffers.
// Thread-safety: Forward is const and may be called concurrently from many threads (each call
// uses its own scratchpad). The OpenMP thread count is the caller's choice (omp_set_num_threads or
// OMP_NUM_THREADS); kernels never change it. oneDNN fixes a matmul's thread team when the
// primitive is created, so call Create under the same thread count the Forward calls will use.
#ifndef SLM_KERNELS_LINEAR_H_
#define SLM_KERNELS_LINEAR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/dtype.h"

namespace slm::kernels {

enum class Activation { kNone, kGelu /* exact erf GELU, as torch.nn.functional.gelu */ };

class Linear {
 public:
  // weight: [out_features, in_features] row-major f32 (PyTorch nn.Linear layout), copied.
  // bias: [out_features] or nullptr. Errors: InvalidArgument for non-positive sizes or a null
  // weight; FailedPrecondition when oneDNN offers only a reference implementation.
  static absl::StatusOr<std::unique_ptr<Linear>> Create(const float* weight, const float* bias,
                                                        int64_t out_features, int64_t in_features,
                                                        DType dtype, Activation activation,
                                                        int64_t max_rows);

  // Int8 from weights already quantized symmetrically per output channel (W[o, i] = scales[o] *
  // q[o, i], q [out_features, in_features] row-major, as QuantizeRowsInt8 in gemv.h makes them):
  // what Create(..., DType::kInt8, ...) does after its own quantization, without redoing it.
  // InvalidArgument for null q/scales or non-positive sizes.
  static absl::StatusOr<std::unique_ptr<Linear>> CreateFromInt8(const int8_t* q,
                                                                const float* scales,
                                                                const float* bias,
                                                                int64_t out_features,
                                                                int64_t in_features,
                                                                Activation activation,
                                                                int64_t max_rows);

  // x: [rows, in_features], y: [rows, out_features], row-major f32, 1 <= rows <= max_rows.
  // Errors: InvalidArgument for rows out of range or null buffers.
  absl::Status Forward(const float* x, int64_t rows, float* y) const;

  int64_t in_features() const;
  int64_t out_features() const;
  int64_t max_rows() const;
  DType dtype() const;
  Activation activation() const;
  std::string ImplementationName() const;  // oneDNN impl_info_str of the largest bucket
  // Bytes held by the prepared (reordered) weights, for resource estimates. Usually one copy of
  // the weights in `dtype` (plus padding); more when oneDNN needed different layouts per bucket.
  int64_t PreparedWeightBytes() const;

  ~Linear();
  Linear(const Linear&) = delete;
  Linear& operator=(const Linear&) = delete;

  struct State;  // oneDNN objects; defined in linear.cc so this header needs no dnnl.hpp.

 private:
  explicit Linear(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

namespace internal {
// Whether Linear objects created afterwards write oneDNN's int8 brgemm weight layout themselves
// (default) or always use oneDNN's reorder (tests compare the two).
void SetOwnInt8WeightPackingForTesting(bool enabled);
}  // namespace internal

// Scalar reference of the same computation (f32 math, double accumulation), used by tests.
void ReferenceLinear(const float* x, int64_t rows, const float* weight, const float* bias,
                     int64_t out_features, int64_t in_features, Activation activation, float* y);

}  // namespace slm::kernels

#endif  // SLM_KERNELS_LINEAR_H_
