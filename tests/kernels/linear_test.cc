// Linear (oneDNN) against ReferenceLinear (scalar, double accumulation) over many shapes.
//
// Tolerances, per output element j of row r, with L1 = |b_j| + sum_i |x_ri * w_ji| (the size of
// the dot product before cancellation) and G = 1.13 (the largest slope of GELU; 1 without it):
//   f32:  |err| <= G * (1e-4 * L1 + 1e-6). Rounding of a K-term f32 dot product is well below
//         K * 2^-24 * L1; 1e-4 leaves room for any summation order oneDNN picks.
//   bf16: |err| <= G * (2^-7 * L1 + 1e-5). x and w are each rounded to 8 significant bits (unit
//         roundoff 2^-8 each), so every product is off by at most ~2^-7 of itself. Statistically,
//         also RMS(err) <= 1e-2 * RMS(output).
//   int8: |err| <= G * (s_x/2 * sum_i |w_ji| + s_wj/2 * sum_i (|x_ri| + s_x/2)) + 1e-5, the worst
//         case of symmetric rounding (s_x = max|x| / 127 per call, s_wj = max|w_j| / 127 per
//         output channel). Statistically, each rounding error is uniform with variance s^2/12, so
//         RMS(err) / RMS(output) ~ sqrt(s_x^2 / (12 Var x) + s_w^2 / (12 Var w)): 5.6e-3 for the
//         uniform data used here, about 1.4e-2 for Gaussian data (max ~4.5 sigma); we require
//         RMS(err) <= 3e-2 * RMS(output).
#include "kernels/linear.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace slm::kernels {
namespace {

constexpr float kGeluMaxSlope = 1.13f;

std::vector<float> RandomUniform(size_t count, float low, float high, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float> values(count);
  for (float& value : values) value = distribution(generator);
  return values;
}

struct Problem {
  int64_t in_features;
  int64_t out_features;
  bool has_bias;
  Activation activation;
};

struct Errors {
  int violations = 0;
  double worst_ratio = 0.0;  // max |err| / bound
  double rms_error = 0.0;
  double rms_output = 0.0;
};

// Compares the first `rows` rows of `actual` with `expected` under the dtype's bound.
Errors Compare(DType dtype, const Problem& p, const std::vector<float>& x, int64_t rows,
               const std::vector<float>& weight, const std::vector<float>& bias,
               const std::vector<float>& expected, const std::vector<float>& actual) {
  const int64_t k = p.in_features, n = p.out_features;
  const float slope = p.activation == Activation::kGelu ? kGeluMaxSlope : 1.0f;
  float abs_max_x = 0.0f;
  for (int64_t i = 0; i < rows * k; ++i) abs_max_x = std::max(abs_max_x, std::fabs(x[i]));
  const float input_scale = abs_max_x / 127.0f;
  Errors errors;
  double squared_error = 0.0, squared_output = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    const float* w = weight.data() + j * k;
    float weight_abs_sum = 0.0f, weight_abs_max = 0.0f;
    for (int64_t i = 0; i < k; ++i) {
      weight_abs_sum += std::fabs(w[i]);
      weight_abs_max = std::max(weight_abs_max, std::fabs(w[i]));
    }
    const float weight_scale = weight_abs_max / 127.0f;
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x.data() + r * k;
      double l1 = p.has_bias ? std::fabs(bias[j]) : 0.0;
      double x_abs_sum = 0.0;
      for (int64_t i = 0; i < k; ++i) {
        l1 += std::fabs(xr[i] * w[i]);
        x_abs_sum += std::fabs(xr[i]);
      }
      double bound = 0.0;
      switch (dtype) {
        case DType::kF32:
          bound = slope * (1e-4 * l1 + 1e-6);
          break;
        case DType::kBF16:
          bound = slope * (std::ldexp(1.0, -7) * l1 + 1e-5);
          break;
        case DType::kInt8:
          bound = slope * (input_scale / 2 * weight_abs_sum +
                           weight_scale / 2 * (x_abs_sum + k * input_scale / 2)) +
                  1e-5;
          break;
      }
      const double error = std::fabs(static_cast<double>(actual[r * n + j]) - expected[r * n + j]);
      if (!(error <= bound)) ++errors.violations;
      errors.worst_ratio = std::max(errors.worst_ratio, error / bound);
      squared_error += error * error;
      squared_output += static_cast<double>(expected[r * n + j]) * expected[r * n + j];
    }
  }
  errors.rms_error = std::sqrt(squared_error / (rows * n));
  errors.rms_output = std::sqrt(squared_output / (rows * n));
  return errors;
}

class LinearTest : public ::testing::TestWithParam<DType> {};

TEST_P(LinearTest, MatchesReferenceOverShapesAndRowCounts) {
  const DType dtype = GetParam();
  const std::vector<Problem> problems = {
      {384, 384, true, Activation::kNone},  {384, 1536, true, Activation::kGelu},
      {1536, 384, true, Activation::kNone}, {768, 768, false, Activation::kNone},
      {768, 3, true, Activation::kNone},    {384, 2, true, Activation::kNone},
      {17, 3, false, Activation::kGelu},    {3, 17, true, Activation::kNone},
      {2, 2, true, Activation::kGelu},      {17, 17, true, Activation::kGelu},
  };
  const int64_t max_rows = 300;
  const std::vector<int64_t> row_counts = {1, 2, 3, 5, 8, 13, 31, 64, 100, 129, 257, 300};
  uint32_t seed = 1;
  for (const Problem& p : problems) {
    SCOPED_TRACE(testing::Message()
                 << DTypeName(dtype) << " in=" << p.in_features << " out=" << p.out_features
                 << " bias=" << p.has_bias << " gelu=" << (p.activation == Activation::kGelu));
    const int64_t k = p.in_features, n = p.out_features;
    const float weight_range = 1.0f / std::sqrt(static_cast<float>(k));  // nn.Linear's init
    const std::vector<float> weight = RandomUniform(n * k, -weight_range, weight_range, seed++);
    const std::vector<float> bias = RandomUniform(n, -0.5f, 0.5f, seed++);
    const std::vector<float> x = RandomUniform(max_rows * k, -2.0f, 2.0f, seed++);
    std::vector<float> expected(max_rows * n);
    ReferenceLinear(x.data(), max_rows, weight.data(), p.has_bias ? bias.data() : nullptr, n, k,
                    p.activation, expected.data());

    absl::StatusOr<std::unique_ptr<Linear>> linear = Linear::Create(
        weight.data(), p.has_bias ? bias.data() : nullptr, n, k, dtype, p.activation, max_rows);
    ASSERT_TRUE(linear.ok()) << linear.status();
    EXPECT_EQ((*linear)->in_features(), k);
    EXPECT_EQ((*linear)->out_features(), n);
    EXPECT_EQ((*linear)->dtype(), dtype);
    EXPECT_FALSE((*linear)->ImplementationName().empty());
    // One prepared copy of the weights: padding to oneDNN's 64-wide blocks and int8's per-column
    // compensation terms allowed (5% + 16 bytes per column), a second copy is not.
    const int64_t element_bytes = dtype == DType::kF32 ? 4 : dtype == DType::kBF16 ? 2 : 1;
    const int64_t padded_bytes = element_bytes * ((k + 63) / 64 * 64) * ((n + 63) / 64 * 64);
    EXPECT_GE((*linear)->PreparedWeightBytes(), element_bytes * k * n);
    EXPECT_LE((*linear)->PreparedWeightBytes(), padded_bytes * 105 / 100 + 16 * n + 4096);
    for (int64_t rows : row_counts) {
      SCOPED_TRACE(testing::Message() << "rows=" << rows);
      std::vector<float> actual(rows * n, std::nanf(""));
      ASSERT_TRUE((*linear)->Forward(x.data(), rows, actual.data()).ok());
      const Errors errors = Compare(dtype, p, x, rows, weight, bias, expected, actual);
      EXPECT_EQ(errors.violations, 0) << "worst |err|/bound = " << errors.worst_ratio;
      if (dtype == DType::kBF16 && rows * n >= 64) {
        EXPECT_LE(errors.rms_error, 1e-2 * errors.rms_output);
      }
      if (dtype == DType::kInt8 && rows * n >= 64) {
        EXPECT_LE(errors.rms_error, 3e-2 * errors.rms_output);
      }
    }
  }
}

TEST_P(LinearTest, GaussianInputsStayWithinStatisticalBound) {
  const DType dtype = GetParam();
  const int64_t k = 384, n = 1536, rows = 200;
  std::mt19937 generator(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> weight(n * k), x(rows * k);
  for (float& w : weight) w = normal(generator) * 0.05f;
  for (float& v : x) v = normal(generator);
  std::vector<float> expected(rows * n), actual(rows * n);
  ReferenceLinear(x.data(), rows, weight.data(), nullptr, n, k, Activation::kNone, expected.data());
  auto linear = Linear::Create(weight.data(), nullptr, n, k, dtype, Activation::kNone, 256);
  ASSERT_TRUE(linear.ok()) << linear.status();
  ASSERT_TRUE((*linear)->Forward(x.data(), rows, actual.data()).ok());
  const Errors errors =
      Compare(dtype, {k, n, false, Activation::kNone}, x, rows, weight, {}, expected, actual);
  EXPECT_EQ(errors.violations, 0);
  const double relative = errors.rms_error / errors.rms_output;
  const double allowed = dtype == DType::kF32 ? 1e-5 : dtype == DType::kBF16 ? 1e-2 : 3e-2;
  EXPECT_LE(relative, allowed);
}

TEST_P(LinearTest, ConcurrentForwardCallsAgreeWithSerialOnes) {
  const DType dtype = GetParam();
  const int64_t k = 384, n = 384, rows = 37;
  const std::vector<float> weight = RandomUniform(n * k, -0.05f, 0.05f, 11);
  const std::vector<float> bias = RandomUniform(n, -0.5f, 0.5f, 12);
  auto linear = Linear::Create(weight.data(), bias.data(), n, k, dtype, Activation::kGelu, 64);
  ASSERT_TRUE(linear.ok()) << linear.status();
  constexpr int kThreads = 4;
  std::vector<std::vector<float>> inputs, serial(kThreads), concurrent(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    inputs.push_back(RandomUniform(rows * k, -1.0f, 1.0f, 100 + t));
    serial[t].resize(rows * n);
    concurrent[t].resize(rows * n);
    ASSERT_TRUE((*linear)->Forward(inputs[t].data(), rows, serial[t].data()).ok());
  }
  std::vector<std::thread> threads;
  std::vector<absl::Status> statuses(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int repeat = 0; repeat < 20 && statuses[t].ok(); ++repeat) {
        statuses[t] = (*linear)->Forward(inputs[t].data(), rows, concurrent[t].data());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_TRUE(statuses[t].ok()) << statuses[t];
    for (int64_t i = 0; i < rows * n; ++i) {
      ASSERT_NEAR(concurrent[t][i], serial[t][i], 1e-5f) << "thread " << t << " element " << i;
    }
  }
}

TEST_P(LinearTest, RejectsBadArguments) {
  const DType dtype = GetParam();
  const std::vector<float> weight(8 * 4, 0.5f);
  EXPECT_EQ(Linear::Create(nullptr, nullptr, 8, 4, dtype, Activation::kNone, 4).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (auto [out, in, max_rows] : {std::tuple<int64_t, int64_t, int64_t>{0, 4, 4},
                                   {8, 0, 4},
                                   {8, 4, 0},
                                   {-1, 4, 4},
                                   {8, -3, 4},
                                   {8, 4, -2}}) {
    absl::StatusOr<std::unique_ptr<Linear>> linear =
        Linear::Create(weight.data(), nullptr, out, in, dtype, Activation::kNone, max_rows);
    EXPECT_EQ(linear.status().code(), absl::StatusCode::kInvalidArgument)
        << out << " " << in << " " << max_rows;
  }
  auto linear = Linear::Create(weight.data(), nullptr, 8, 4, dtype, Activation::kNone, 4);
  ASSERT_TRUE(linear.ok()) << linear.status();
  std::vector<float> x(5 * 4, 1.0f), y(5 * 8, 0.0f);
  const absl::Status too_many = (*linear)->Forward(x.data(), 5, y.data());
  EXPECT_EQ(too_many.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_many.message().find("max_rows=4"), std::string::npos) << too_many;
  EXPECT_EQ((*linear)->Forward(x.data(), 0, y.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*linear)->Forward(x.data(), -1, y.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*linear)->Forward(nullptr, 1, y.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*linear)->Forward(x.data(), 1, nullptr).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*linear)->Forward(x.data(), 4, y.data()).ok());
  for (int i = 0; i < 4 * 8; ++i) EXPECT_NEAR(y[i], 2.0f, 2e-2f) << i;
}

TEST_P(LinearTest, ZeroInputGivesBias) {
  const DType dtype = GetParam();
  const int64_t k = 16, n = 5;
  const std::vector<float> weight = RandomUniform(n * k, -1.0f, 1.0f, 3);
  const std::vector<float> bias = {1.0f, -2.0f, 0.0f, 0.25f, 3.0f};
  auto linear = Linear::Create(weight.data(), bias.data(), n, k, dtype, Activation::kNone, 8);
  ASSERT_TRUE(linear.ok()) << linear.status();
  std::vector<float> x(3 * k, 0.0f), y(3 * n);
  ASSERT_TRUE((*linear)->Forward(x.data(), 3, y.data()).ok());
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t j = 0; j < n; ++j) EXPECT_FLOAT_EQ(y[r * n + j], bias[j]);
  }
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, LinearTest,
                         ::testing::Values(DType::kF32, DType::kBF16, DType::kInt8),
                         [](const ::testing::TestParamInfo<DType>& info) {
                           return std::string(DTypeName(info.param));
                         });

// Int8 weights written straight into oneDNN's brgemm layout (linear.cc: PackInt8ForBrgemm)
// against oneDNN's own reorder: every output bit-identical over K and N that are and are not
// multiples of 4 and 64, every row bucket, with and without bias.
TEST(LinearInt8PackingTest, OwnPackingMatchesOneDnnReorderBitForBit) {
  struct Shape {
    int64_t n, k;
  };
  uint32_t seed = 500;
  for (const Shape shape : {Shape{3, 5}, Shape{50, 72}, Shape{64, 64}, Shape{200, 130},
                            Shape{129, 257}, Shape{96, 1030}}) {
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(testing::Message() << "n=" << shape.n << " k=" << shape.k
                                      << " bias=" << with_bias);
      const std::vector<float> weight = RandomUniform(shape.n * shape.k, -1.0f, 1.0f, seed++);
      const std::vector<float> bias = RandomUniform(shape.n, -0.5f, 0.5f, seed++);
      const int64_t max_rows = 40;
      internal::SetOwnInt8WeightPackingForTesting(false);
      auto reference = Linear::Create(weight.data(), with_bias ? bias.data() : nullptr, shape.n,
                                      shape.k, DType::kInt8, Activation::kNone, max_rows);
      internal::SetOwnInt8WeightPackingForTesting(true);
      auto packed = Linear::Create(weight.data(), with_bias ? bias.data() : nullptr, shape.n,
                                   shape.k, DType::kInt8, Activation::kNone, max_rows);
      ASSERT_TRUE(reference.ok()) << reference.status();
      ASSERT_TRUE(packed.ok()) << packed.status();
      for (int64_t rows : {1, 2, 7, 16, 33, 40}) {
        const std::vector<float> x = RandomUniform(rows * shape.k, -2.0f, 2.0f, seed++);
        std::vector<float> a(rows * shape.n), b(rows * shape.n);
        ASSERT_TRUE((*reference)->Forward(x.data(), rows, a.data()).ok());
        ASSERT_TRUE((*packed)->Forward(x.data(), rows, b.data()).ok());
        for (size_t i = 0; i < a.size(); ++i) {
          ASSERT_EQ(a[i], b[i]) << "rows=" << rows << " element " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace slm::kernels
