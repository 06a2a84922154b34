// Fast ops against their double-precision Reference* versions. Tolerances (absolute unless said):
//   AddLayerNorm: 1e-5 * (1 + |reference|)      f32 rounding of a normalized row (|y| ~ gamma*4)
//   Softmax:      1e-6 + 1e-5 * reference        FastExp relative error ~3e-7, f32 sums
//   Gelu:         2e-6 * max(1, |x|)             FastErf absolute error 1.5e-7, times x/2
//   Tanh:         2e-6                           f32 rounding of 1 - 2/(e+1)
//   EncoderAttention: 2e-5 * max|v|              output is a convex combination of v rows
// head_dim 16/32/48/64 take the AVX-512 path where the CPU has it; 5/8/24/80 the portable one.
#include "kernels/ops.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace slm::kernels {
namespace {

std::vector<float> RandomNormal(size_t count, float stddev, uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> distribution(0.0f, stddev);
  std::vector<float> values(count);
  for (float& value : values) value = distribution(generator);
  return values;
}

TEST(OpsTest, AddLayerNormMatchesReference) {
  uint32_t seed = 1;
  for (int64_t cols : {1, 2, 3, 16, 17, 384, 768, 1000}) {
    for (int64_t rows : {1, 5}) {
      for (bool with_residual : {false, true}) {
        SCOPED_TRACE(testing::Message()
                     << "rows=" << rows << " cols=" << cols << " residual=" << with_residual);
        std::vector<float> x = RandomNormal(rows * cols, 3.0f, seed++);
        for (float& v : x) v += 5.0f;  // a large mean tests the two-pass variance
        const std::vector<float> residual = RandomNormal(rows * cols, 1.0f, seed++);
        const std::vector<float> gamma = RandomNormal(cols, 1.0f, seed++);
        const std::vector<float> beta = RandomNormal(cols, 1.0f, seed++);
        std::vector<float> expected = x;
        const float* r = with_residual ? residual.data() : nullptr;
        ReferenceAddLayerNorm(expected.data(), r, rows, cols, gamma.data(), beta.data(), 1e-12f);
        AddLayerNorm(x.data(), r, rows, cols, gamma.data(), beta.data(), 1e-12f);
        for (int64_t i = 0; i < rows * cols; ++i) {
          ASSERT_NEAR(x[i], expected[i], 1e-5f * (1.0f + std::fabs(expected[i]))) << i;
        }
      }
    }
  }
}

TEST(OpsTest, SoftmaxMatchesReferenceIncludingLargeLogits) {
  uint32_t seed = 100;
  for (int64_t cols : {1, 2, 3, 15, 16, 17, 128, 384, 513}) {
    for (float spread : {0.1f, 5.0f, 60.0f}) {
      SCOPED_TRACE(testing::Message() << "cols=" << cols << " spread=" << spread);
      const int64_t rows = 3;
      std::vector<float> x = RandomNormal(rows * cols, spread, seed++);
      x[0] += 1000.0f;  // large offsets must not overflow
      std::vector<float> expected = x;
      ReferenceSoftmax(expected.data(), rows, cols);
      Softmax(x.data(), rows, cols);
      for (int64_t i = 0; i < rows * cols; ++i) {
        ASSERT_NEAR(x[i], expected[i], 1e-6f + 1e-5f * expected[i]) << i;
      }
    }
  }
}

std::vector<float> ActivationInputs() {
  std::vector<float> x = RandomNormal(10000, 3.0f, 7);
  for (float v = -12.0f; v <= 12.0f; v += 0.001f) x.push_back(v);
  for (float v :
       {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-6f, 30.0f, -30.0f, 100.0f, -100.0f, 1e6f, -1e6f}) {
    x.push_back(v);
  }
  return x;
}

TEST(OpsTest, GeluMatchesExactErfGelu) {
  const std::vector<float> inputs = ActivationInputs();
  std::vector<float> actual = inputs, expected = inputs;
  Gelu(actual.data(), static_cast<int64_t>(actual.size()));
  ReferenceGelu(expected.data(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], 2e-6f * std::max(1.0f, std::fabs(inputs[i])))
        << "x=" << inputs[i];
  }
  // Spot values from torch.nn.functional.gelu.
  float spot[] = {1.0f, -1.0f, 2.0f};
  Gelu(spot, 3);
  EXPECT_NEAR(spot[0], 0.8413447f, 1e-6f);
  EXPECT_NEAR(spot[1], -0.1586553f, 1e-6f);
  EXPECT_NEAR(spot[2], 1.9544997f, 1e-6f);
}

TEST(OpsTest, TanhMatchesReference) {
  const std::vector<float> inputs = ActivationInputs();
  std::vector<float> actual = inputs, expected = inputs;
  Tanh(actual.data(), static_cast<int64_t>(actual.size()));
  ReferenceTanh(expected.data(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], 2e-6f) << "x=" << inputs[i];
  }
}

TEST(OpsTest, EncoderAttentionMatchesReferenceOnFusedQkv) {
  struct Case {
    int64_t seq, heads, head_dim;
  };
  uint32_t seed = 200;
  for (const Case& c : {Case{1, 1, 32}, Case{2, 12, 32}, Case{3, 2, 5}, Case{7, 4, 64},
                        Case{64, 12, 32}, Case{65, 3, 16}, Case{130, 6, 64}, Case{512, 12, 32},
                        Case{100, 2, 48}, Case{33, 2, 24}, Case{200, 3, 8}, Case{9, 1, 80}}) {
    SCOPED_TRACE(testing::Message()
                 << "seq=" << c.seq << " heads=" << c.heads << " head_dim=" << c.head_dim);
    const int64_t hidden = c.heads * c.head_dim;
    // Fused QKV rows [q | k | v] as a Linear(hidden, 3*hidden) produces them; std 2 makes the
    // scores peaky enough that a wrong scale or max-subtraction would show.
    const std::vector<float> qkv = RandomNormal(c.seq * 3 * hidden, 2.0f, seed++);
    std::vector<float> actual(c.seq * hidden, std::nanf("")), expected(c.seq * hidden);
    const float* q = qkv.data();
    EncoderAttention(q, q + hidden, q + 2 * hidden, 3 * hidden, c.seq, c.heads, c.head_dim,
                     actual.data());
    ReferenceEncoderAttention(q, q + hidden, q + 2 * hidden, 3 * hidden, c.seq, c.heads, c.head_dim,
                              expected.data());
    float max_v = 0.0f;
    for (int64_t i = 0; i < c.seq; ++i) {
      for (int64_t j = 0; j < hidden; ++j) {
        max_v = std::max(max_v, std::fabs(qkv[i * 3 * hidden + 2 * hidden + j]));
      }
    }
    for (int64_t i = 0; i < c.seq * hidden; ++i) {
      ASSERT_NEAR(actual[i], expected[i], 2e-5f * max_v) << i;
    }
  }
}

TEST(OpsTest, EncoderAttentionOfOneTokenCopiesValues) {
  const int64_t heads = 3, head_dim = 4, hidden = heads * head_dim;
  std::vector<float> q = RandomNormal(hidden, 1.0f, 1), k = RandomNormal(hidden, 1.0f, 2),
                     v = RandomNormal(hidden, 1.0f, 3), out(hidden);
  EncoderAttention(q.data(), k.data(), v.data(), hidden, 1, heads, head_dim, out.data());
  for (int64_t i = 0; i < hidden; ++i) EXPECT_FLOAT_EQ(out[i], v[i]);
}

}  // namespace
}  // namespace slm::kernels
