#include "kernels/linear.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/aligned_buffer.h"
#include "kernels/ops.h"
#include "kernels/parallel_ranges.h"
#include "kernels/vector_math.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace slm::kernels {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DataType = memory::data_type;

// Padding a remainder up to its power-of-two bucket costs little while the layer is bound by
// weight bandwidth (every primitive call streams all weights once); above this many rows the
// layer is compute-bound, so remainders are split into smaller exact buckets instead.
constexpr int64_t kMaxPaddedBucketRows = 64;

// One oneDNN engine for the process: engines are cheap to share and streams are per thread.
const dnnl::engine& CpuEngine() {
  static const dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

dnnl::stream& ThreadStream() {
  thread_local dnnl::stream stream(CpuEngine());
  return stream;
}

// Grow-only per-thread buffers: Forward allocates nothing once warm, and concurrent calls on
// different threads never share them. A Forward call never re-enters another Forward.
AlignedBuffer& ThreadSourceBuffer() {
  thread_local AlignedBuffer buffer;
  return buffer;
}
AlignedBuffer& ThreadDestinationBuffer() {
  thread_local AlignedBuffer buffer;
  return buffer;
}
AlignedBuffer& ThreadScratchpadBuffer() {
  thread_local AlignedBuffer buffer;
  return buffer;
}

// Round-to-nearest-even f32 -> bf16 (NaN payloads are not preserved; inputs are finite).
SLM_KERNELS_MULTIVERSION
void ConvertToBf16(const float* source, int64_t count, uint16_t* destination) {
  for (int64_t i = 0; i < count; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &source[i], sizeof(bits));
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    destination[i] = static_cast<uint16_t>(bits >> 16);
  }
}

// max |x| (NaNs skipped), as an integer max over the sign-cleared bit patterns (their integer
// order is the float order): GCC vectorizes that reduction, where the float form compiled to
// scalar vmaxss (~3% of SmolLM2 prefill).
SLM_KERNELS_MULTIVERSION
float AbsMax(const float* x, int64_t count) {
  int32_t result = 0;
  for (int64_t i = 0; i < count; ++i) {
    int32_t bits;
    std::memcpy(&bits, &x[i], sizeof(bits));
    bits &= 0x7FFFFFFF;
    result = std::max(result, bits > 0x7F800000 ? 0 : bits);
  }
  float value;
  std::memcpy(&value, &result, sizeof(value));
  return value;
}

// q = round(x * inverse_scale), half away from zero, clamped to the symmetric range [-127, 127].
SLM_KERNELS_MULTIVERSION
void QuantizeSymmetric(const float* x, int64_t count, float inverse_scale, int8_t* q) {
  for (int64_t i = 0; i < count; ++i) {
    float value = x[i] * inverse_scale;
    value = std::min(127.0f, std::max(-127.0f, value));
    q[i] = static_cast<int8_t>(static_cast<int32_t>(value + (value >= 0.0f ? 0.5f : -0.5f)));
  }
}

// y[r, :] = y[r, :] * scale + bias (bias may be null).
SLM_KERNELS_MULTIVERSION
void ScaleAndAddBias(float scale, const float* bias, int64_t rows, int64_t cols, float* y) {
  for (int64_t row = 0; row < rows; ++row) {
    float* out = y + row * cols;
    if (bias != nullptr) {
      for (int64_t j = 0; j < cols; ++j) out[j] = out[j] * scale + bias[j];
    } else {
      for (int64_t j = 0; j < cols; ++j) out[j] *= scale;
    }
  }
}

// Which parts of the epilogue oneDNN does; the rest is a pass of ours over the output.
struct Fusion {
  bool bias = false;
  bool gelu = false;
};

struct Bucket {
  int64_t rows = 0;
  dnnl::matmul::primitive_desc primitive_desc;
  dnnl::matmul primitive;
  int weights_index = 0;  // into State::weights
  size_t scratchpad_bytes = 0;
};

absl::Status DnnlError(const dnnl::error& error, std::string_view what) {
  return absl::InternalError(absl::StrCat("oneDNN ", std::string(what), " failed: ", error.what()));
}

}  // namespace

struct Linear::State {
  int64_t in_features = 0;
  int64_t out_features = 0;
  int64_t max_rows = 0;
  DType dtype = DType::kF32;
  Activation activation = Activation::kNone;
  Fusion fusion;
  std::vector<Bucket> buckets;       // ascending rows: 1, 2, 4, ... <= max_rows
  std::vector<memory> weights;       // one per distinct layout oneDNN asked for
  std::vector<float> bias;           // [out_features], empty when the layer has no bias
  memory bias_memory;                // wraps `bias` when fusion.bias
  std::vector<float> weight_scales;  // int8: [out_features], weight = scale * q
};

namespace {

DataType SourceType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return DataType::f32;
    case DType::kBF16:
      return DataType::bf16;
    case DType::kInt8:
      return DataType::s8;
  }
  return DataType::f32;
}

// Builds one bucket's primitive; FailedPrecondition when only a reference impl exists.
// `weights_layout` null lets oneDNN pick the weight layout (format_tag::any).
absl::StatusOr<Bucket> BuildBucket(const Linear::State& state, int64_t rows,
                                   const memory::desc* weights_layout) {
  const memory::dim m = rows, k = state.in_features, n = state.out_features;
  const DataType type = SourceType(state.dtype);
  memory::desc source({m, k}, type, Tag::ab);
  memory::desc weights =
      weights_layout != nullptr ? *weights_layout : memory::desc({k, n}, type, Tag::any);
  memory::desc destination({m, n}, DataType::f32, Tag::ab);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (state.dtype == DType::kInt8) attr.set_output_scales(1 << 1, state.weight_scales);
  if (state.fusion.gelu) {
    dnnl::post_ops post_ops;
    post_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
    attr.set_post_ops(post_ops);
  }
  Bucket bucket;
  bucket.rows = rows;
  try {
    dnnl::matmul::desc desc =
        state.fusion.bias
            ? dnnl::matmul::desc(source, weights, memory::desc({1, n}, DataType::f32, Tag::ab),
                                 destination)
            : dnnl::matmul::desc(source, weights, destination);
    bucket.primitive_desc = dnnl::matmul::primitive_desc(desc, attr, CpuEngine());
  } catch (const dnnl::error& error) {
    return DnnlError(error, absl::StrCat("matmul creation for ", rows, "x", k, "x", n));
  }
  const std::string impl = bucket.primitive_desc.impl_info_str();
  if (impl.rfind("ref", 0) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("oneDNN offers only the reference implementation \"", impl, "\" for a ",
                     std::string(DTypeName(state.dtype)), " matmul of ", rows, "x", k, "x", n));
  }
  bucket.primitive = dnnl::matmul(bucket.primitive_desc);
  bucket.scratchpad_bytes = bucket.primitive_desc.scratchpad_desc().get_size();
  return bucket;
}

// The largest bucket picks the weight layout; smaller buckets reuse it when oneDNN keeps a fast
// implementation with it, so a layer usually holds one copy of its weights (oneDNN otherwise
// prefers a different blocking for small M, which would double the weight memory).
absl::StatusOr<std::vector<Bucket>> BuildBuckets(const Linear::State& state) {
  int64_t largest = 1;
  while (largest * 2 <= state.max_rows) largest *= 2;
  std::vector<Bucket> buckets;
  SLM_ASSIGN_OR_RETURN(Bucket last, BuildBucket(state, largest, nullptr));
  const memory::desc shared_layout = last.primitive_desc.weights_desc();
  for (int64_t rows = 1; rows < largest; rows *= 2) {
    absl::StatusOr<Bucket> bucket = BuildBucket(state, rows, &shared_layout);
    if (!bucket.ok()) bucket = BuildBucket(state, rows, nullptr);
    if (!bucket.ok()) return bucket.status();
    buckets.push_back(std::move(bucket).value());
  }
  buckets.push_back(std::move(last));
  return buckets;
}

std::atomic<bool> own_int8_packing{true};

// oneDNN 2.6's reorder of s8 [N, K] row-major weights into the layout its avx512_core_vnni
// brgemm matmul asks for ("BA16a64b4a" with s8s8 compensation) is a generic element-by-element
// loop (`simple:any`, ~3 ns per weight: 70 ms for an 11264 x 2048 layer). This writes the same
// bytes directly when the descriptor is exactly that layout: dims {K, N} padded to multiples of
// 64, 64 x 64 blocks (N-block stride strides[1], K-block stride strides[0]), inside a block
// k/4 groups of [64 n][4 k], then per padded N column the int32 compensation -128 * sum_k q.
// Returns false (the caller reorders with oneDNN) for any other layout. Tested byte-for-byte
// in effect: linear_test compares the outputs of both paths bit for bit.
bool PackInt8ForBrgemm(const int8_t* q, int64_t n, int64_t k, const memory::desc& desc,
                       void* handle) {
  const dnnl_memory_desc_t& d = desc.data;
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  if (d.ndims != 2 || d.format_kind != dnnl_blocked || d.data_type != dnnl_s8 ||
      b.inner_nblks != 3 || b.inner_blks[0] != 16 || b.inner_idxs[0] != 0 ||
      b.inner_blks[1] != 64 || b.inner_idxs[1] != 1 || b.inner_blks[2] != 4 ||
      b.inner_idxs[2] != 0 || d.extra.flags != dnnl_memory_extra_flag_compensation_conv_s8s8 ||
      d.extra.compensation_mask != 2 || d.offset0 != 0 || d.padded_dims[0] % 64 != 0 ||
      d.padded_dims[1] % 64 != 0 || d.padded_dims[0] < k || d.padded_dims[1] < n) {
    return false;
  }
  const int64_t padded_k = d.padded_dims[0], padded_n = d.padded_dims[1];
  const int64_t k_stride = b.strides[0], n_stride = b.strides[1];
  if (k_stride < 4096 || n_stride < 4096 ||
      (padded_k / 64 - 1) * k_stride + (padded_n / 64 - 1) * n_stride + 4096 > padded_k * padded_n ||
      static_cast<size_t>(padded_k * padded_n + padded_n * 4) > desc.get_size()) {
    return false;
  }
  auto* out = static_cast<int8_t*>(handle);
  std::memset(out, 0, desc.get_size());
  auto* compensation = reinterpret_cast<int32_t*>(out + padded_k * padded_n);
  const int64_t n_blocks = (n + 63) / 64;
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
  for (int64_t nb = 0; nb < n_blocks; ++nb) {
    const int64_t rows = std::min<int64_t>(64, n - nb * 64);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t column = nb * 64 + r;
      const int8_t* source = q + column * k;
      int8_t* block_column = out + nb * n_stride + r * 4;
      int32_t sum = 0;
      for (int64_t i = 0; i < k; ++i) sum += source[i];
      compensation[column] = -128 * sum;
      const int64_t full = k / 4 * 4;
      for (int64_t i = 0; i < full; i += 4) {
        std::memcpy(block_column + (i / 64) * k_stride + ((i % 64) / 4) * 256, source + i, 4);
      }
      for (int64_t i = full; i < k; ++i) {
        block_column[(i / 64) * k_stride + ((i % 64) / 4) * 256 + i % 4] = source[i];
      }
    }
  }
  return true;
}

// Reorders the user weights once into every distinct layout the buckets chose.
// `quantized_weight` is the int8 copy of `weight` (int8 only; null otherwise).
absl::Status PrepareWeights(const float* weight, const int8_t* quantized_weight,
                            Linear::State& state) {
  const memory::dim k = state.in_features, n = state.out_features;
  memory user_weights;
  const dnnl::engine& engine = CpuEngine();
  try {
    if (state.dtype == DType::kInt8) {
      // PyTorch's [out, in] row-major is oneDNN's [K, N] in the transposed `ba` layout.
      user_weights = memory({{k, n}, DataType::s8, Tag::ba}, engine,
                            const_cast<int8_t*>(quantized_weight));
    } else {
      user_weights = memory({{k, n}, DataType::f32, Tag::ba}, engine, const_cast<float*>(weight));
    }
    dnnl::stream stream(engine);
    for (Bucket& bucket : state.buckets) {
      const memory::desc wanted = bucket.primitive_desc.weights_desc();
      int index = -1;
      for (size_t i = 0; i < state.weights.size(); ++i) {
        if (state.weights[i].get_desc() == wanted) index = static_cast<int>(i);
      }
      if (index < 0) {
        memory prepared(wanted, engine);
        if (state.dtype != DType::kInt8 || !own_int8_packing.load() ||
            !PackInt8ForBrgemm(quantized_weight, n, k, wanted, prepared.get_data_handle())) {
          dnnl::reorder(user_weights, prepared).execute(stream, user_weights, prepared);
          stream.wait();
        }
        state.weights.push_back(prepared);
        index = static_cast<int>(state.weights.size()) - 1;
      }
      bucket.weights_index = index;
    }
    if (state.fusion.bias) {
      state.bias_memory = memory({{1, n}, DataType::f32, Tag::ab}, engine, state.bias.data());
    }
  } catch (const dnnl::error& error) {
    return DnnlError(error, "weight reorder");
  }
  return absl::OkStatus();
}

// Picks the bucket for the next chunk of `remaining` rows (see kMaxPaddedBucketRows).
const Bucket& ChooseBucket(const std::vector<Bucket>& buckets, int64_t remaining) {
  const Bucket* best = &buckets.front();
  for (const Bucket& bucket : buckets) {
    if (bucket.rows <= remaining) best = &bucket;
    if (bucket.rows >= remaining) {
      if (bucket.rows <= kMaxPaddedBucketRows) return bucket;
      break;
    }
  }
  return *best;
}

}  // namespace

Linear::Linear(std::unique_ptr<State> state) : state_(std::move(state)) {}
Linear::~Linear() = default;

namespace {

// Shared tail of Linear::Create / CreateFromInt8: `state` has sizes, dtype, activation, bias and
// (int8) weight_scales; `weight` is the f32 weight (not int8) and `quantized` the int8 one.
absl::Status BuildAndPrepare(const float* weight, const int8_t* quantized, Linear::State& state) {
  // Fuse as much of the epilogue as oneDNN keeps on a fast implementation. Int8 never fuses:
  // the per-call activation scale must come before the bias and GELU (oneDNN 2.x adds the
  // bias before output scales).
  std::vector<Fusion> attempts;
  if (state.dtype != DType::kInt8) {
    attempts.push_back({!state.bias.empty(), state.activation == Activation::kGelu});
    if (state.activation == Activation::kGelu) attempts.push_back({!state.bias.empty(), false});
  }
  attempts.push_back({false, false});
  absl::Status last_error;
  for (const Fusion& fusion : attempts) {
    state.fusion = fusion;
    absl::StatusOr<std::vector<Bucket>> buckets = BuildBuckets(state);
    if (buckets.ok()) {
      state.buckets = std::move(buckets).value();
      break;
    }
    last_error = buckets.status();
    if (!absl::IsFailedPrecondition(last_error)) return last_error;
  }
  if (state.buckets.empty()) return last_error;
  return PrepareWeights(weight, quantized, state);
}

absl::Status CheckLinearSizes(int64_t out_features, int64_t in_features, int64_t max_rows) {
  if (out_features <= 0 || in_features <= 0 || max_rows <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Linear: out_features, in_features and max_rows must be positive; got ",
                     out_features, ", ", in_features, ", ", max_rows));
  }
  return absl::OkStatus();
}

std::unique_ptr<Linear::State> NewState(const float* bias, int64_t out_features,
                                        int64_t in_features, DType dtype, Activation activation,
                                        int64_t max_rows) {
  auto state = std::make_unique<Linear::State>();
  state->in_features = in_features;
  state->out_features = out_features;
  state->max_rows = max_rows;
  state->dtype = dtype;
  state->activation = activation;
  if (bias != nullptr) state->bias.assign(bias, bias + out_features);
  return state;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Linear>> Linear::Create(const float* weight, const float* bias,
                                                       int64_t out_features, int64_t in_features,
                                                       DType dtype, Activation activation,
                                                       int64_t max_rows) {
  if (weight == nullptr) return absl::InvalidArgumentError("Linear: weight must not be null");
  SLM_RETURN_IF_ERROR(CheckLinearSizes(out_features, in_features, max_rows));
  std::unique_ptr<State> state =
      NewState(bias, out_features, in_features, dtype, activation, max_rows);
  std::vector<int8_t> quantized_weight;
  if (dtype == DType::kInt8) {
    // Symmetric per-output-channel: row j is scale_j * q_j with q_j in [-127, 127]. The scales
    // become the primitives' constant output scales, so they must exist before BuildBuckets.
    state->weight_scales.assign(out_features, 1.0f);
    quantized_weight.resize(static_cast<size_t>(out_features * in_features));
    for (int64_t row = 0; row < out_features; ++row) {
      const float* w = weight + row * in_features;
      const float max_abs = AbsMax(w, in_features);
      const float scale = max_abs > 0.0f ? max_abs / 127.0f : 1.0f;
      state->weight_scales[row] = scale;
      QuantizeSymmetric(w, in_features, 1.0f / scale, quantized_weight.data() + row * in_features);
    }
  }
  SLM_RETURN_IF_ERROR(BuildAndPrepare(weight, quantized_weight.data(), *state));
  return std::unique_ptr<Linear>(new Linear(std::move(state)));
}

absl::StatusOr<std::unique_ptr<Linear>> Linear::CreateFromInt8(
    const int8_t* q, const float* scales, const float* bias, int64_t out_features,
    int64_t in_features, Activation activation, int64_t max_rows) {
  if (q == nullptr || scales == nullptr) {
    return absl::InvalidArgumentError("Linear::CreateFromInt8: q and scales must not be null");
  }
  SLM_RETURN_IF_ERROR(CheckLinearSizes(out_features, in_features, max_rows));
  std::unique_ptr<State> state =
      NewState(bias, out_features, in_features, DType::kInt8, activation, max_rows);
  state->weight_scales.assign(scales, scales + out_features);
  SLM_RETURN_IF_ERROR(BuildAndPrepare(nullptr, q, *state));
  return std::unique_ptr<Linear>(new Linear(std::move(state)));
}

absl::Status Linear::Forward(const float* x, int64_t rows, float* y) const {
  const State& s = *state_;
  if (x == nullptr || y == nullptr) {
    return absl::InvalidArgumentError("Linear::Forward: x and y must not be null");
  }
  if (rows < 1 || rows > s.max_rows) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Linear::Forward: rows must be in [1, max_rows=", s.max_rows, "]; got ", rows));
  }
  const int64_t k = s.in_features, n = s.out_features;

  // Int8: quantize the whole input once with one per-tensor scale.
  float input_scale = 1.0f;
  const int8_t* quantized = nullptr;
  if (s.dtype == DType::kInt8) {
    const int64_t padded_rows = rows + s.buckets.back().rows;  // room for the last chunk's pad
    auto* buffer = static_cast<int8_t*>(ThreadSourceBuffer().Get(padded_rows * k));
    // Split by rows across threads for prefill-sized inputs (the max is exact in any order;
    // non-negative floats order as their bit patterns, so ranges combine by an integer max).
    std::atomic<uint32_t> max_bits{0};
    internal::ParallelRanges(rows, k, [&](int64_t first, int64_t last) {
      const float range_max = AbsMax(x + first * k, (last - first) * k);
      uint32_t bits;
      std::memcpy(&bits, &range_max, sizeof(bits));
      uint32_t current = max_bits.load();
      while (bits > current && !max_bits.compare_exchange_weak(current, bits)) {
      }
    });
    float max_abs;
    const uint32_t bits = max_bits.load();
    std::memcpy(&max_abs, &bits, sizeof(max_abs));
    input_scale = max_abs > 0.0f ? max_abs / 127.0f : 1.0f;
    internal::ParallelRanges(rows, k, [&](int64_t first, int64_t last) {
      QuantizeSymmetric(x + first * k, (last - first) * k, 1.0f / input_scale,
                        buffer + first * k);
    });
    std::memset(buffer + rows * k, 0, static_cast<size_t>(s.buckets.back().rows * k));
    quantized = buffer;
  }

  const dnnl::engine& engine = CpuEngine();
  dnnl::stream& stream = ThreadStream();
  try {
    for (int64_t row0 = 0; row0 < rows;) {
      const Bucket& bucket = ChooseBucket(s.buckets, rows - row0);
      const int64_t chunk = std::min(bucket.rows, rows - row0);
      const bool exact = chunk == bucket.rows;
      void* source = nullptr;
      switch (s.dtype) {
        case DType::kF32:
          if (exact) {
            source = const_cast<float*>(x + row0 * k);
          } else {
            auto* padded =
                static_cast<float*>(ThreadSourceBuffer().Get(bucket.rows * k * sizeof(float)));
            std::memcpy(padded, x + row0 * k, chunk * k * sizeof(float));
            std::memset(padded + chunk * k, 0, (bucket.rows - chunk) * k * sizeof(float));
            source = padded;
          }
          break;
        case DType::kBF16: {
          auto* converted =
              static_cast<uint16_t*>(ThreadSourceBuffer().Get(bucket.rows * k * sizeof(uint16_t)));
          ConvertToBf16(x + row0 * k, chunk * k, converted);
          std::memset(converted + chunk * k, 0, (bucket.rows - chunk) * k * sizeof(uint16_t));
          source = converted;
          break;
        }
        case DType::kInt8:
          source = const_cast<int8_t*>(quantized + row0 * k);
          break;
      }
      float* destination =
          exact
              ? y + row0 * n
              : static_cast<float*>(ThreadDestinationBuffer().Get(bucket.rows * n * sizeof(float)));
      void* scratchpad = ThreadScratchpadBuffer().Get(bucket.scratchpad_bytes);

      const dnnl::matmul::primitive_desc& pd = bucket.primitive_desc;
      std::unordered_map<int, memory> args = {
          {DNNL_ARG_SRC, memory(pd.src_desc(), engine, source)},
          {DNNL_ARG_WEIGHTS, s.weights[bucket.weights_index]},
          {DNNL_ARG_DST, memory(pd.dst_desc(), engine, destination)},
          {DNNL_ARG_SCRATCHPAD, memory(pd.scratchpad_desc(), engine, scratchpad)}};
      if (s.fusion.bias) args.emplace(DNNL_ARG_BIAS, s.bias_memory);
      bucket.primitive.execute(stream, args);
      stream.wait();
      if (!exact) std::memcpy(y + row0 * n, destination, chunk * n * sizeof(float));
      row0 += chunk;
    }
  } catch (const dnnl::error& error) {
    return DnnlError(error, "matmul execution");
  }

  // Epilogue steps oneDNN did not fuse.
  const bool add_bias = !s.bias.empty() && !s.fusion.bias;
  if (s.dtype == DType::kInt8 || add_bias) {
    internal::ParallelRanges(rows, n, [&](int64_t first, int64_t last) {
      ScaleAndAddBias(input_scale, add_bias ? s.bias.data() : nullptr, last - first, n,
                      y + first * n);
    });
  }
  if (s.activation == Activation::kGelu && !s.fusion.gelu) Gelu(y, rows * n);
  return absl::OkStatus();
}

int64_t Linear::in_features() const { return state_->in_features; }
int64_t Linear::out_features() const { return state_->out_features; }
int64_t Linear::max_rows() const { return state_->max_rows; }
DType Linear::dtype() const { return state_->dtype; }
Activation Linear::activation() const { return state_->activation; }
int64_t Linear::PreparedWeightBytes() const {
  int64_t bytes = 0;
  for (const memory& weights : state_->weights) {
    bytes += static_cast<int64_t>(weights.get_desc().get_size());
  }
  return bytes;
}
std::string Linear::ImplementationName() const {
  return state_->buckets.back().primitive_desc.impl_info_str();
}

namespace internal {
void SetOwnInt8WeightPackingForTesting(bool enabled) { own_int8_packing.store(enabled); }
}  // namespace internal

void ReferenceLinear(const float* x, int64_t rows, const float* weight, const float* bias,
                     int64_t out_features, int64_t in_features, Activation activation, float* y) {
  for (int64_t row = 0; row < rows; ++row) {
    for (int64_t j = 0; j < out_features; ++j) {
      double sum = bias != nullptr ? bias[j] : 0.0;
      for (int64_t i = 0; i < in_features; ++i) {
        sum += static_cast<double>(x[row * in_features + i]) * weight[j * in_features + i];
      }
      if (activation == Activation::kGelu) sum = 0.5 * sum * (1.0 + std::erf(sum / std::sqrt(2.0)));
      y[row * out_features + j] = static_cast<float>(sum);
    }
  }
}

}  // namespace slm::kernels
