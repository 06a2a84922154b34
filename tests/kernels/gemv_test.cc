// PackedMatrix / DecoderLinear against scalar references over many shapes, row counts, thread
// counts, and both the AVX-512 and portable kernels.
//
// Tolerances, per output element (x: activation row, w: weight row, s_x = max|x|/127 per row,
// s_w = max|w|/127 per output channel):
//   int8 vs ReferenceGemvInt8 (same quantization, exact integer dot product in int64):
//        |err| <= 1e-6 * (L1 + |b|) with L1 = sum_i (|x_i| + s_x) * |w_i|: the only differences are
//        the int32 -> f32 conversion and the f32 scale product (a few units of 2^-24).
//   int8 vs the f32 product (ReferenceLinear): RMS(err) <= 3e-2 * RMS(output), as in
//        linear_test.cc (rounding errors uniform with variance s^2/12 for x and w).
//   bf16 vs ReferenceGemvBf16 (same bf16 rounding of x and w, double accumulation):
//        |err| <= 1e-5 * L1 + 1e-6, f32 accumulation of exact bf16 products.
//   f32 vs ReferenceLinear: |err| <= 1e-5 * L1 + 1e-6.
#include "kernels/gemv.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/gemv_kernels.h"

namespace slm::kernels {
namespace {

std::vector<float> RandomUniform(size_t count, float low, float high, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float> values(count);
  for (float& value : values) value = distribution(generator);
  return values;
}

struct Shape {
  int64_t out, in;
};

const Shape kShapes[] = {{1, 1},   {1, 5},    {16, 4},   {17, 3},    {7, 64},   {33, 127},
                         {64, 96}, {100, 33}, {257, 65}, {48, 1024}, {130, 896}};

// Runs `body` once with the AVX-512 kernels (where the CPU has them) and once with the portable
// ones, each with 1 and 2 OpenMP threads.
template <typename Body>
void ForEachKernelAndThreads(Body body) {
  const int saved = omp_get_max_threads();
  for (bool portable : {false, true}) {
    internal::ForcePortableGemvForTesting(portable);
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      body(portable, threads);
    }
  }
  internal::ForcePortableGemvForTesting(false);
  omp_set_num_threads(saved);
}

TEST(GemvTest, Int8MatchesQuantizedReference) {
  ForEachKernelAndThreads([](bool portable, int threads) {
    uint32_t seed = 1;
    for (const Shape& shape : kShapes) {
      for (int64_t rows = 1; rows <= PackedMatrix::kMaxRows; ++rows) {
        for (bool with_bias : {false, true}) {
          SCOPED_TRACE(testing::Message() << "out=" << shape.out << " in=" << shape.in
                                          << " rows=" << rows << " bias=" << with_bias
                                          << " portable=" << portable << " threads=" << threads);
          const auto w = RandomUniform(shape.out * shape.in, -1.0f, 1.0f, seed++);
          const auto x = RandomUniform(rows * shape.in, -3.0f, 3.0f, seed++);
          const auto bias = RandomUniform(shape.out, -2.0f, 2.0f, seed++);
          auto matrix = PackedMatrix::Create(w.data(), shape.out, shape.in, DType::kInt8);
          ASSERT_TRUE(matrix.ok()) << matrix.status();
          if (portable || !__builtin_cpu_supports("avx512vnni")) {
            EXPECT_EQ((*matrix)->KernelName(), "portable");
          } else {
            EXPECT_EQ((*matrix)->KernelName(), "avx512_vnni");
          }
          std::vector<float> y(rows * shape.out, NAN);
          ASSERT_TRUE((*matrix)
                          ->Multiply(x.data(), rows, y.data(), with_bias ? bias.data() : nullptr)
                          .ok());
          std::vector<int8_t> q(w.size());
          std::vector<float> scales(shape.out);
          QuantizeRowsInt8(w.data(), shape.out, shape.in, q.data(), scales.data());
          std::vector<float> expected(y.size());
          ReferenceGemvInt8(x.data(), rows, q.data(), scales.data(), shape.out, shape.in,
                            expected.data());
          int violations = 0;
          for (int64_t r = 0; r < rows; ++r) {
            float abs_max = 0.0f;
            for (int64_t i = 0; i < shape.in; ++i) {
              abs_max = std::max(abs_max, std::fabs(x[r * shape.in + i]));
            }
            const double sx = abs_max / 127.0;
            for (int64_t o = 0; o < shape.out; ++o) {
              double l1 = 0.0;
              for (int64_t i = 0; i < shape.in; ++i) {
                l1 += (std::fabs(x[r * shape.in + i]) + sx) * std::fabs(w[o * shape.in + i]);
              }
              const double b = with_bias ? bias[o] : 0.0;
              const double err =
                  std::fabs(y[r * shape.out + o] - (expected[r * shape.out + o] + b));
              if (!(err <= 1e-6 * (l1 + std::fabs(b)))) ++violations;
            }
          }
          EXPECT_EQ(violations, 0);
        }
      }
    }
  });
}

TEST(GemvTest, Int8IsCloseToFloatProduct) {
  const int64_t out = 300, in = 896;
  const auto w = RandomUniform(out * in, -0.1f, 0.1f, 7);
  const auto x = RandomUniform(4 * in, -2.0f, 2.0f, 8);
  auto matrix = PackedMatrix::Create(w.data(), out, in, DType::kInt8);
  ASSERT_TRUE(matrix.ok());
  std::vector<float> y(4 * out), expected(4 * out);
  ASSERT_TRUE((*matrix)->Multiply(x.data(), 4, y.data()).ok());
  ReferenceLinear(x.data(), 4, w.data(), nullptr, out, in, Activation::kNone, expected.data());
  double error = 0.0, norm = 0.0;
  for (size_t i = 0; i < y.size(); ++i) {
    error += (y[i] - expected[i]) * (y[i] - expected[i]);
    norm += expected[i] * expected[i];
  }
  EXPECT_LE(std::sqrt(error), 3e-2 * std::sqrt(norm));
  EXPECT_GT(norm, 0.0);
}

TEST(GemvTest, Bf16MatchesRoundedReference) {
  ForEachKernelAndThreads([](bool portable, int threads) {
    uint32_t seed = 100;
    for (const Shape& shape : kShapes) {
      for (int64_t rows = 1; rows <= PackedMatrix::kMaxRows; ++rows) {
        SCOPED_TRACE(testing::Message()
                     << "out=" << shape.out << " in=" << shape.in << " rows=" << rows
                     << " portable=" << portable << " threads=" << threads);
        const auto w = RandomUniform(shape.out * shape.in, -1.0f, 1.0f, seed++);
        const auto x = RandomUniform(rows * shape.in, -3.0f, 3.0f, seed++);
        auto matrix = PackedMatrix::Create(w.data(), shape.out, shape.in, DType::kBF16);
        ASSERT_TRUE(matrix.ok()) << matrix.status();
        if (portable || !__builtin_cpu_supports("avx512bf16")) {
          EXPECT_EQ((*matrix)->KernelName(), "portable");
        } else {
          EXPECT_EQ((*matrix)->KernelName(), "avx512_bf16");
        }
        std::vector<float> y(rows * shape.out, NAN), expected(y.size());
        ASSERT_TRUE((*matrix)->Multiply(x.data(), rows, y.data()).ok());
        std::vector<uint16_t> wb(w.size());
        for (size_t i = 0; i < w.size(); ++i) wb[i] = FloatToBf16(w[i]);
        ReferenceGemvBf16(x.data(), rows, wb.data(), shape.out, shape.in, expected.data());
        int violations = 0;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t o = 0; o < shape.out; ++o) {
            double l1 = 0.0;
            for (int64_t i = 0; i < shape.in; ++i) {
              l1 += std::fabs(x[r * shape.in + i] * w[o * shape.in + i]);
            }
            const double err = std::fabs(y[r * shape.out + o] - expected[r * shape.out + o]);
            if (!(err <= 1e-5 * l1 + 1e-6)) ++violations;
          }
        }
        EXPECT_EQ(violations, 0);
      }
    }
  });
}

TEST(GemvTest, F32MatchesReferenceLinear) {
  const int64_t out = 37, in = 100;
  const auto w = RandomUniform(out * in, -1.0f, 1.0f, 3);
  const auto x = RandomUniform(3 * in, -1.0f, 1.0f, 4);
  const auto bias = RandomUniform(out, -1.0f, 1.0f, 5);
  auto matrix = PackedMatrix::Create(w.data(), out, in, DType::kF32);
  ASSERT_TRUE(matrix.ok());
  std::vector<float> y(3 * out), expected(3 * out);
  ASSERT_TRUE((*matrix)->Multiply(x.data(), 3, y.data(), bias.data()).ok());
  ReferenceLinear(x.data(), 3, w.data(), bias.data(), out, in, Activation::kNone, expected.data());
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], expected[i], 1e-5 * in);
}

TEST(GemvTest, CreateFromInt8AndBf16MatchFloatPath) {
  const int64_t out = 50, in = 70;
  const auto w = RandomUniform(out * in, -1.0f, 1.0f, 11);
  const auto x = RandomUniform(2 * in, -1.0f, 1.0f, 12);
  std::vector<int8_t> q(w.size());
  std::vector<float> scales(out);
  QuantizeRowsInt8(w.data(), out, in, q.data(), scales.data());
  std::vector<uint16_t> wb(w.size());
  for (size_t i = 0; i < w.size(); ++i) wb[i] = FloatToBf16(w[i]);
  auto from_float8 = PackedMatrix::Create(w.data(), out, in, DType::kInt8);
  auto from_int8 = PackedMatrix::CreateFromInt8(q.data(), scales.data(), out, in);
  auto from_float16 = PackedMatrix::Create(w.data(), out, in, DType::kBF16);
  auto from_bf16 = PackedMatrix::CreateFromBf16(wb.data(), out, in);
  ASSERT_TRUE(from_float8.ok() && from_int8.ok() && from_float16.ok() && from_bf16.ok());
  std::vector<float> a(2 * out), b(2 * out), c(2 * out), d(2 * out);
  ASSERT_TRUE((*from_float8)->Multiply(x.data(), 2, a.data()).ok());
  ASSERT_TRUE((*from_int8)->Multiply(x.data(), 2, b.data()).ok());
  ASSERT_TRUE((*from_float16)->Multiply(x.data(), 2, c.data()).ok());
  ASSERT_TRUE((*from_bf16)->Multiply(x.data(), 2, d.data()).ok());
  EXPECT_EQ(a, b);
  EXPECT_EQ(c, d);
  EXPECT_EQ((*from_int8)->PackedBytes(), 4 * 18 * 64 + 64 * 8);  // 4 blocks x 18 groups
}

TEST(GemvTest, ConcurrentCallsAgree) {
  const int64_t out = 200, in = 300;
  const auto w = RandomUniform(out * in, -1.0f, 1.0f, 21);
  const auto x = RandomUniform(in, -1.0f, 1.0f, 22);
  auto matrix = PackedMatrix::Create(w.data(), out, in, DType::kInt8);
  ASSERT_TRUE(matrix.ok());
  std::vector<float> expected(out);
  ASSERT_TRUE((*matrix)->Multiply(x.data(), 1, expected.data()).ok());
  std::vector<std::vector<float>> results(4, std::vector<float>(out));
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i)
        ASSERT_TRUE((*matrix)->Multiply(x.data(), 1, result.data()).ok());
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& result : results) EXPECT_EQ(result, expected);
}

TEST(GemvTest, RejectsBadInput) {
  const std::vector<float> w(12, 1.0f);
  absl::Status status;
  EXPECT_EQ(PackedMatrix::Create(nullptr, 3, 4, DType::kInt8).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PackedMatrix::Create(w.data(), 0, 4, DType::kInt8).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PackedMatrix::Create(w.data(), 3, -1, DType::kBF16).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Past the int32 accumulator's range (checked before the weight is read).
  status = PackedMatrix::Create(w.data(), 1, 65537, DType::kInt8).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("65536"), std::string::npos) << status;
  std::vector<float> bad = w;
  bad[5] = NAN;
  status = PackedMatrix::Create(bad.data(), 3, 4, DType::kBF16).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("weight[1, 1]"), std::string::npos) << status;
  std::vector<int8_t> q(12, 1);
  q[7] = -128;
  const std::vector<float> scales(3, 1.0f);
  status = PackedMatrix::CreateFromInt8(q.data(), scales.data(), 3, 4).status();
  EXPECT_NE(status.message().find("[1, 3]"), std::string::npos) << status;
  std::vector<uint16_t> inf(12, 0x7F80);
  EXPECT_FALSE(PackedMatrix::CreateFromBf16(inf.data(), 3, 4).ok());

  auto matrix = PackedMatrix::Create(w.data(), 3, 4, DType::kInt8);
  ASSERT_TRUE(matrix.ok());
  std::vector<float> x(80, 1.0f), y(80);
  EXPECT_EQ((*matrix)->Multiply(x.data(), 0, y.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*matrix)->Multiply(x.data(), PackedMatrix::kMaxRows + 1, y.data()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*matrix)->Multiply(nullptr, 1, y.data()).code(), absl::StatusCode::kInvalidArgument);
  // All-zero activations and NaN activations do not crash.
  std::vector<float> zeros(4, 0.0f);
  ASSERT_TRUE((*matrix)->Multiply(zeros.data(), 1, y.data()).ok());
  EXPECT_EQ(y[0], 0.0f);
  std::vector<float> nans(4, NAN);
  EXPECT_TRUE((*matrix)->Multiply(nans.data(), 1, y.data()).ok());
}

TEST(DecoderLinearTest, SmallAndLargeRowCountsMatchReference) {
  const int64_t out = 96, in = 160;
  const auto w = RandomUniform(out * in, -0.2f, 0.2f, 31);
  const auto bias = RandomUniform(out, -1.0f, 1.0f, 32);
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kInt8}) {
    auto layer = DecoderLinear::Create(w.data(), bias.data(), out, in, dtype, /*max_rows=*/32);
    ASSERT_TRUE(layer.ok()) << layer.status();
    for (int64_t rows : {1, 3, 8, 9, 32}) {
      SCOPED_TRACE(testing::Message() << DTypeName(dtype) << " rows=" << rows);
      const auto x = RandomUniform(rows * in, -2.0f, 2.0f, static_cast<uint32_t>(rows));
      std::vector<float> y(rows * out), expected(rows * out);
      ASSERT_TRUE((*layer)->Forward(x.data(), rows, y.data()).ok());
      ReferenceLinear(x.data(), rows, w.data(), bias.data(), out, in, Activation::kNone,
                      expected.data());
      double error = 0.0, norm = 0.0;
      for (size_t i = 0; i < y.size(); ++i) {
        error += (y[i] - expected[i]) * (y[i] - expected[i]);
        norm += expected[i] * expected[i];
      }
      const double bound = dtype == DType::kF32 ? 1e-5 : dtype == DType::kBF16 ? 1e-2 : 3e-2;
      EXPECT_LE(std::sqrt(error), bound * std::sqrt(norm));
    }
    std::vector<float> x(33 * in), y(33 * out);
    EXPECT_EQ((*layer)->Forward(x.data(), 33, y.data()).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_GT((*layer)->PreparedWeightBytes(), 0);
  }
  // Only the packed copy when max_rows fits the GEMV kernels.
  auto small = DecoderLinear::Create(w.data(), nullptr, out, in, DType::kInt8, 8);
  ASSERT_TRUE(small.ok());
  EXPECT_LT((*small)->PreparedWeightBytes(), out * in * 2);
  EXPECT_FALSE(DecoderLinear::Create(w.data(), nullptr, out, in, DType::kInt8, 0).ok());
}

// The process-wide GEMV row limit: rows above it go to oneDNN when the layer has that copy, and
// a packed-only layer runs them in chunks, giving exactly the per-row results of one call (the
// activations are quantized per row).
TEST(DecoderLinearTest, GemvRowLimitChunksOrFallsBackToOneDnn) {
  const int64_t out = 50, in = 200, rows = 16;
  const auto w = RandomUniform(out * in, -0.3f, 0.3f, 61);
  const auto x = RandomUniform(rows * in, -2.0f, 2.0f, 62);
  std::vector<int8_t> q(w.size());
  std::vector<float> scales(out);
  QuantizeRowsInt8(w.data(), out, in, q.data(), scales.data());
  std::vector<float> reference(rows * out);
  ReferenceGemvInt8(x.data(), rows, q.data(), scales.data(), out, in, reference.data());
  auto packed_only = DecoderLinear::Create(w.data(), nullptr, out, in, DType::kInt8, rows);
  auto with_onednn = DecoderLinear::Create(w.data(), nullptr, out, in, DType::kInt8, 64);
  ASSERT_TRUE(packed_only.ok() && with_onednn.ok());
  const int64_t saved = DecoderLinearGemvRowLimit();
  EXPECT_EQ(saved, PackedMatrix::kMaxRows);
  std::vector<float> whole(rows * out);
  ASSERT_TRUE((*packed_only)->Forward(x.data(), rows, whole.data()).ok());
  for (int64_t limit : {16, 8, 3, 1}) {
    SCOPED_TRACE(testing::Message() << "limit=" << limit);
    SetDecoderLinearGemvRowLimit(limit);
    EXPECT_EQ(DecoderLinearGemvRowLimit(), limit);
    std::vector<float> chunked(rows * out, NAN), either(rows * out, NAN);
    ASSERT_TRUE((*packed_only)->Forward(x.data(), rows, chunked.data()).ok());
    EXPECT_EQ(chunked, whole);
    ASSERT_TRUE((*with_onednn)->Forward(x.data(), rows, either.data()).ok());
    double error = 0.0, norm = 0.0, max_error = 0.0;
    for (size_t i = 0; i < either.size(); ++i) {
      error += (either[i] - reference[i]) * (either[i] - reference[i]);
      norm += reference[i] * reference[i];
      max_error = std::max(max_error, std::fabs(double{either[i]} - reference[i]));
    }
    if (limit >= rows) {
      // The packed kernel: the same quantized products as the reference.
      EXPECT_LE(max_error, 1e-4);
    } else {
      // oneDNN's int8 path: close to the quantized reference, not identical.
      EXPECT_LE(std::sqrt(error), 3e-2 * std::sqrt(norm));
    }
  }
  SetDecoderLinearGemvRowLimit(0);  // clamped to 1
  EXPECT_EQ(DecoderLinearGemvRowLimit(), 1);
  SetDecoderLinearGemvRowLimit(1000);  // clamped to kMaxRows
  EXPECT_EQ(DecoderLinearGemvRowLimit(), PackedMatrix::kMaxRows);
  SetDecoderLinearGemvRowLimit(saved);
}

TEST(DecoderLinearTest, FromInt8AndBf16MatchFloatCreate) {
  const int64_t out = 40, in = 72;
  const auto w = RandomUniform(out * in, -0.5f, 0.5f, 41);
  const auto bias = RandomUniform(out, -1.0f, 1.0f, 42);
  std::vector<int8_t> q(w.size());
  std::vector<float> scales(out);
  QuantizeRowsInt8(w.data(), out, in, q.data(), scales.data());
  std::vector<uint16_t> wb(w.size());
  for (size_t i = 0; i < w.size(); ++i) wb[i] = FloatToBf16(w[i]);
  for (int64_t max_rows : {4, 16}) {
    auto from_float = DecoderLinear::Create(w.data(), bias.data(), out, in, DType::kInt8, max_rows);
    auto from_int8 =
        DecoderLinear::CreateFromInt8(q.data(), scales.data(), bias.data(), out, in, max_rows);
    auto from_bf16 = DecoderLinear::CreateFromBf16(wb.data(), bias.data(), out, in, max_rows);
    ASSERT_TRUE(from_float.ok() && from_int8.ok() && from_bf16.ok());
    for (int64_t rows = 1; rows <= max_rows; rows += 3) {
      const auto x = RandomUniform(rows * in, -1.0f, 1.0f, static_cast<uint32_t>(rows + 50));
      std::vector<float> a(rows * out), b(rows * out), c(rows * out), expected(rows * out);
      ASSERT_TRUE((*from_float)->Forward(x.data(), rows, a.data()).ok());
      ASSERT_TRUE((*from_int8)->Forward(x.data(), rows, b.data()).ok());
      ASSERT_TRUE((*from_bf16)->Forward(x.data(), rows, c.data()).ok());
      ReferenceLinear(x.data(), rows, w.data(), bias.data(), out, in, Activation::kNone,
                      expected.data());
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_NEAR(a[i], b[i], 1e-5 * (1 + std::fabs(a[i]))) << "rows=" << rows;
        EXPECT_NEAR(c[i], expected[i], 2e-2 * (1 + std::fabs(expected[i]))) << "rows=" << rows;
      }
    }
  }
  EXPECT_FALSE(DecoderLinear::CreateFromInt8(q.data(), scales.data(), nullptr, out, in, 0).ok());
  EXPECT_FALSE(DecoderLinear::CreateFromBf16(nullptr, nullptr, out, in, 4).ok());
}

// The vectorized QuantizeRowsInt8 against the documented scalar formula, including exact ties
// (a row whose max is 127 has scale 1, so k + 0.5 must round away from zero) and an all-zero row.
TEST(GemvTest, QuantizeRowsInt8MatchesScalarFormula) {
  for (int64_t in : {1, 15, 16, 17, 33, 100}) {
    const int64_t out = 4;
    auto w = RandomUniform(out * in, -2.0f, 2.0f, static_cast<uint32_t>(in));
    for (int64_t i = 0; i < in; ++i) w[1 * in + i] = 0.0f;  // all-zero row: scale 1, q 0
    for (int64_t i = 0; i < in; ++i) {  // ties: -126.5 .. 126.5, then the max 127
      w[2 * in + i] = static_cast<float>((i % 254) - 127) + 0.5f;
    }
    w[2 * in + in - 1] = 127.0f;
    std::vector<int8_t> q(out * in);
    std::vector<float> scales(out);
    QuantizeRowsInt8(w.data(), out, in, q.data(), scales.data());
    for (int64_t o = 0; o < out; ++o) {
      float abs_max = 0.0f;
      for (int64_t i = 0; i < in; ++i) abs_max = std::max(abs_max, std::fabs(w[o * in + i]));
      const float scale = abs_max > 0.0f ? abs_max / 127.0f : 1.0f;
      ASSERT_EQ(scales[o], scale) << "in=" << in << " row " << o;
      for (int64_t i = 0; i < in; ++i) {
        const float value = std::min(127.0f, std::max(-127.0f, w[o * in + i] * (1.0f / scale)));
        const int expected = static_cast<int>(std::round(value));  // half away from zero
        ASSERT_EQ(q[o * in + i], expected) << "in=" << in << " [" << o << ", " << i << "]";
      }
    }
  }
}

// The packers against the layout's index formula (gemv_kernels.h), zero padding included.
TEST(GemvTest, PackersMatchLayoutFormula) {
  for (int64_t out : {1, 15, 16, 17, 40}) {
    for (int64_t in : {1, 2, 3, 4, 5, 7, 8, 9, 66}) {
      SCOPED_TRACE(testing::Message() << "out=" << out << " in=" << in);
      std::vector<int8_t> q(out * in);
      std::vector<uint16_t> h(out * in);
      for (int64_t i = 0; i < out * in; ++i) {
        q[i] = static_cast<int8_t>((i * 37) % 255 - 127);
        h[i] = static_cast<uint16_t>(i * 7 + 1);
      }
      const internal::PackedLayout l8 = internal::MakeLayout(out, in, 4);
      auto p8 = internal::AllocateAligned(l8.PackedBytes(1));
      internal::PackInt8(q.data(), out, in, l8, reinterpret_cast<int8_t*>(p8.get()));
      std::vector<int8_t> e8(l8.PackedBytes(1), 0);
      for (int64_t o = 0; o < out; ++o) {
        for (int64_t i = 0; i < in; ++i) {
          e8[(o / 16) * l8.groups * 64 + (i / 4) * 64 + (o % 16) * 4 + i % 4] = q[o * in + i];
        }
      }
      EXPECT_EQ(std::memcmp(e8.data(), p8.get(), e8.size()), 0);
      const internal::PackedLayout l16 = internal::MakeLayout(out, in, 2);
      auto p16 = internal::AllocateAligned(l16.PackedBytes(2));
      internal::PackBf16(h.data(), out, in, l16, reinterpret_cast<uint16_t*>(p16.get()));
      std::vector<uint16_t> e16(l16.PackedBytes(2) / 2, 0);
      for (int64_t o = 0; o < out; ++o) {
        for (int64_t i = 0; i < in; ++i) {
          e16[(o / 16) * l16.groups * 32 + (i / 2) * 32 + (o % 16) * 2 + i % 2] = h[o * in + i];
        }
      }
      EXPECT_EQ(std::memcmp(e16.data(), p16.get(), e16.size() * 2), 0);
    }
  }
}

// The prefetch distance changes timing only: every distance gives bit-identical results
// (a distance past the end of the weights included: prefetches never fault).
TEST(GemvTest, ResultsDoNotDependOnPrefetchDistance) {
  const int64_t out = 70, in = 300;
  const auto w = RandomUniform(out * in, -1.0f, 1.0f, 71);
  const auto x = RandomUniform(16 * in, -1.0f, 1.0f, 72);
  const int64_t saved = internal::GemvPrefetchBytes();
  for (DType dtype : {DType::kInt8, DType::kBF16}) {
    auto matrix = PackedMatrix::Create(w.data(), out, in, dtype);
    ASSERT_TRUE(matrix.ok());
    for (int64_t rows : {1, 3, 8, 16}) {
      std::vector<float> first(rows * out), y(rows * out);
      internal::SetGemvPrefetchBytes(0);
      ASSERT_TRUE((*matrix)->Multiply(x.data(), rows, first.data()).ok());
      for (int64_t bytes : {int64_t{64}, int64_t{8192}, int64_t{1} << 22}) {
        internal::SetGemvPrefetchBytes(bytes);
        ASSERT_TRUE((*matrix)->Multiply(x.data(), rows, y.data()).ok());
        EXPECT_EQ(std::memcmp(first.data(), y.data(), y.size() * sizeof(float)), 0)
            << "rows=" << rows << " prefetch=" << bytes;
      }
    }
  }
  internal::SetGemvPrefetchBytes(saved);
}

// The register-tiled kernels (13-16 rows of a 1-thread call, K up to 512 groups) add the same
// products in the same order per output as the one-block kernels, so both give the same bits
// (rows 5-12 and 2 threads, which always take the one-block kernels, ride along); the shapes cover
// whole 3-block tiles, single-block tails, a partial last block and the K limit on both sides (int8
// groups are 4 wide, bf16 2: in = 2048 is 512 int8 groups, 1024 bf16 groups).
TEST(GemvTest, TiledKernelsMatchOneBlockKernelsBitForBit) {
  const bool saved = internal::GemvTiledKernels();
  const int saved_threads = omp_get_max_threads();
  const Shape shapes[] = {{16, 4}, {48, 64}, {80, 576}, {113, 300}, {70, 2048}, {40, 2052}};
  uint32_t seed = 900;
  for (const Shape& shape : shapes) {
    const auto w = RandomUniform(shape.out * shape.in, -1.0f, 1.0f, seed++);
    const auto x = RandomUniform(16 * shape.in, -2.0f, 2.0f, seed++);
    const auto bias = RandomUniform(shape.out, -1.0f, 1.0f, seed++);
    for (DType dtype : {DType::kInt8, DType::kBF16}) {
      auto matrix = PackedMatrix::Create(w.data(), shape.out, shape.in, dtype);
      ASSERT_TRUE(matrix.ok()) << matrix.status();
      for (int threads : {1, 2}) {
        omp_set_num_threads(threads);
        for (int64_t rows = 5; rows <= 16; ++rows) {
          SCOPED_TRACE(testing::Message()
                       << "out=" << shape.out << " in=" << shape.in << " dtype=" << DTypeName(dtype)
                       << " rows=" << rows << " threads=" << threads);
          std::vector<float> tiled(rows * shape.out, NAN), one_block(rows * shape.out, NAN);
          internal::SetGemvTiledKernels(true);
          ASSERT_TRUE((*matrix)->Multiply(x.data(), rows, tiled.data(), bias.data()).ok());
          internal::SetGemvTiledKernels(false);
          ASSERT_TRUE((*matrix)->Multiply(x.data(), rows, one_block.data(), bias.data()).ok());
          EXPECT_EQ(std::memcmp(tiled.data(), one_block.data(), tiled.size() * sizeof(float)), 0);
          for (float value : tiled) ASSERT_TRUE(std::isfinite(value));
        }
      }
    }
  }
  internal::SetGemvTiledKernels(saved);
  omp_set_num_threads(saved_threads);
}

// Above the GEMV rows, DecoderLinear's oneDNN copy is built from the int8 q and scales it
// quantized once (Linear::CreateFromInt8): the same numbers as Linear::Create quantizing the
// float weights itself, bit for bit, from the float and the int8 entry points alike.
TEST(DecoderLinearTest, OneDnnCopyFromInt8MatchesLinearCreate) {
  const int64_t out = 50, in = 72, max_rows = 40;
  const auto w = RandomUniform(out * in, -0.5f, 0.5f, 81);
  const auto bias = RandomUniform(out, -1.0f, 1.0f, 82);
  std::vector<int8_t> q(out * in);
  std::vector<float> scales(out);
  QuantizeRowsInt8(w.data(), out, in, q.data(), scales.data());
  auto linear =
      Linear::Create(w.data(), bias.data(), out, in, DType::kInt8, Activation::kNone, max_rows);
  auto linear_q = Linear::CreateFromInt8(q.data(), scales.data(), bias.data(), out, in,
                                         Activation::kNone, max_rows);
  auto from_float = DecoderLinear::Create(w.data(), bias.data(), out, in, DType::kInt8, max_rows);
  auto from_int8 =
      DecoderLinear::CreateFromInt8(q.data(), scales.data(), bias.data(), out, in, max_rows);
  ASSERT_TRUE(linear.ok() && linear_q.ok() && from_float.ok() && from_int8.ok());
  for (int64_t rows : {17, 33, 40}) {
    const auto x = RandomUniform(rows * in, -1.0f, 1.0f, static_cast<uint32_t>(rows));
    std::vector<float> a(rows * out), b(rows * out), c(rows * out), d(rows * out);
    ASSERT_TRUE((*linear)->Forward(x.data(), rows, a.data()).ok());
    ASSERT_TRUE((*linear_q)->Forward(x.data(), rows, b.data()).ok());
    ASSERT_TRUE((*from_float)->Forward(x.data(), rows, c.data()).ok());
    ASSERT_TRUE((*from_int8)->Forward(x.data(), rows, d.data()).ok());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << rows;
    EXPECT_EQ(std::memcmp(a.data(), c.data(), a.size() * sizeof(float)), 0) << rows;
    EXPECT_EQ(std::memcmp(a.data(), d.data(), a.size() * sizeof(float)), 0) << rows;
  }
  EXPECT_EQ(
      Linear::CreateFromInt8(nullptr, scales.data(), nullptr, out, in, Activation::kNone, max_rows)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Linear::CreateFromInt8(q.data(), nullptr, nullptr, out, in, Activation::kNone, max_rows)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(
      Linear::CreateFromInt8(q.data(), scales.data(), nullptr, 0, in, Activation::kNone, 4).ok());
  // A non-finite weight is named on the quantize-once path too, for either row limit.
  std::vector<float> bad = w;
  bad[2 * in + 5] = INFINITY;
  for (int64_t rows : {int64_t{8}, max_rows}) {
    const absl::Status status =
        DecoderLinear::Create(bad.data(), nullptr, out, in, DType::kInt8, rows).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find("weight[2, 5]"), std::string::npos) << status;
  }
}

}  // namespace
}  // namespace slm::kernels
