// RMSNorm, SwiGLU and RoPE against their scalar references (double math), plus independent
// checks: RoPE tables against values computed with PyTorch (Hugging Face's llama3 formula), the
// NeoX/interleaved relation, and rotation invariants.
//
// Tolerances (f32 outputs): RmsNorm |err| <= 1e-5 * |x * rsqrt(...) * w| + 1e-7 (f32 sum of
// squares, relative error << 1e-5 for these sizes); SwiGlu |err| <= 1e-5 * |g * u| + 1e-7
// (FastExp relative error < 3e-7); RoPE |err| <= 1e-5 * (|x_a| + |x_b|) * magnitude + 1e-6
// (identical f32 angles; f32 rotation products).
#include "kernels/decoder_ops.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/parallel_ranges.h"

namespace slm::kernels {
namespace {

std::vector<float> RandomUniform(size_t count, float low, float high, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float> values(count);
  for (float& value : values) value = distribution(generator);
  return values;
}

TEST(RmsNormTest, MatchesReference) {
  uint32_t seed = 1;
  for (int64_t cols : {1, 7, 16, 64, 576, 896, 2048, 3072}) {
    for (int64_t rows : {1, 3}) {
      const auto x = RandomUniform(rows * cols, -4.0f, 4.0f, seed++);
      const auto w = RandomUniform(cols, 0.5f, 1.5f, seed++);
      std::vector<float> fast(x.size()), expected(x.size());
      RmsNorm(x.data(), rows, cols, w.data(), 1e-6f, fast.data());
      ReferenceRmsNorm(x.data(), rows, cols, w.data(), 1e-6f, expected.data());
      for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_NEAR(fast[i], expected[i], 1e-5 * std::fabs(expected[i]) + 1e-7)
            << "cols=" << cols << " i=" << i;
      }
      // In place, and the fused residual form.
      std::vector<float> in_place = x;
      RmsNorm(in_place.data(), rows, cols, w.data(), 1e-6f, in_place.data());
      EXPECT_EQ(in_place, fast);
      std::vector<float> residual(x.size(), 0.0f), normed(x.size());
      AddRmsNorm(residual.data(), x.data(), rows, cols, w.data(), 1e-6f, normed.data());
      EXPECT_EQ(residual, x);
      EXPECT_EQ(normed, fast);
    }
  }
  // A known value: x = [3, 4], mean square 12.5, w = [1, 2].
  const float x[2] = {3.0f, 4.0f}, w[2] = {1.0f, 2.0f};
  float y[2];
  RmsNorm(x, 1, 2, w, 0.0f, y);
  EXPECT_NEAR(y[0], 3.0 / std::sqrt(12.5), 1e-6);
  EXPECT_NEAR(y[1], 8.0 / std::sqrt(12.5), 1e-6);
  // All zeros stay finite.
  const float zeros[4] = {};
  float out[4];
  RmsNorm(zeros, 1, 4, zeros, 1e-5f, out);
  for (float value : out) EXPECT_EQ(value, 0.0f);
}

TEST(SwiGluTest, MatchesReferenceSeparateAndFused) {
  uint32_t seed = 10;
  for (int64_t cols : {1, 15, 64, 4864}) {
    const int64_t rows = 3;
    const auto gate_up = RandomUniform(rows * 2 * cols, -12.0f, 12.0f, seed++);
    std::vector<float> fast(rows * cols), expected(rows * cols);
    SwiGlu(gate_up.data(), gate_up.data() + cols, rows, cols, 2 * cols, fast.data());
    ReferenceSwiGlu(gate_up.data(), gate_up.data() + cols, rows, cols, 2 * cols,
                    expected.data());
    for (int64_t i = 0; i < rows * cols; ++i) {
      const int64_t r = i / cols, c = i % cols;
      const double scale =
          std::fabs(gate_up[r * 2 * cols + c] * gate_up[r * 2 * cols + cols + c]);
      ASSERT_NEAR(fast[i], expected[i], 1e-5 * scale + 1e-7) << "cols=" << cols << " i=" << i;
    }
    // In place over the fused buffer (out == gate).
    std::vector<float> buffer = gate_up;
    SwiGlu(buffer.data(), buffer.data() + cols, rows, cols, 2 * cols, buffer.data());
    for (int64_t i = 0; i < rows * cols; ++i) EXPECT_EQ(buffer[i], fast[i]);
  }
  const float g = 2.0f, u = 3.0f;
  float y;
  SwiGlu(&g, &u, 1, 1, 1, &y);
  EXPECT_NEAR(y, 2.0 / (1.0 + std::exp(-2.0)) * 3.0, 1e-6);
}

TEST(RopeTableTest, PlainLinearAndLlama3MatchPyTorch) {
  // 1 / 500000 ** (arange(0, 16, 2) / 16) and Hugging Face's _compute_llama3_parameters with
  // factor 8, low 1, high 4, original context 64 (computed with torch 1.13).
  const double plain[8] = {1.0,         0.193922758,   0.0376060307,  0.00729266508,
                           0.00141421345, 0.000274248188, 5.31829573e-05, 1.03133852e-05};
  const double llama3[8] = {1.0,           0.079403013,   0.00470075384, 0.000911583134,
                            0.000176776681, 3.42810235e-05, 6.64786967e-06, 1.28917316e-06};
  auto table = ComputeRopeTable(16, 500000.0f, RopeScaling{});
  ASSERT_TRUE(table.ok()) << table.status();
  RopeScaling linear;
  linear.type = RopeScalingType::kLinear;
  linear.factor = 4.0f;
  auto linear_table = ComputeRopeTable(16, 500000.0f, linear);
  ASSERT_TRUE(linear_table.ok());
  RopeScaling l3;
  l3.type = RopeScalingType::kLlama3;
  l3.factor = 8.0f;
  l3.low_freq_factor = 1.0f;
  l3.high_freq_factor = 4.0f;
  l3.original_context = 64;
  auto llama3_table = ComputeRopeTable(16, 500000.0f, l3);
  ASSERT_TRUE(llama3_table.ok()) << llama3_table.status();
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(table->inv_freq[i], plain[i], 1e-6 * plain[i]) << i;
    EXPECT_NEAR(linear_table->inv_freq[i], plain[i] / 4, 1e-6 * plain[i]) << i;
    EXPECT_NEAR(llama3_table->inv_freq[i], llama3[i], 1e-6 * llama3[i]) << i;
  }
  EXPECT_EQ(table->magnitude, 1.0f);
  EXPECT_EQ(table->rotary_dim(), 16);

  // longrope: per-frequency factors and sqrt(1 + ln(factor) / ln(original_context)).
  RopeScaling longrope;
  longrope.type = RopeScalingType::kLongRope;
  longrope.factor = 32.0f;
  longrope.original_context = 4096;
  longrope.freq_factors = {1, 1, 2, 2, 4, 4, 8, 8};
  auto long_table = ComputeRopeTable(16, 500000.0f, longrope);
  ASSERT_TRUE(long_table.ok());
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(long_table->inv_freq[i], plain[i] / longrope.freq_factors[i], 1e-6 * plain[i]);
  }
  EXPECT_NEAR(long_table->magnitude, std::sqrt(1 + std::log(32.0) / std::log(4096.0)), 1e-6);
}

// Prefill-sized passes run split across threads (internal::ParallelRanges); every row is still
// computed by exactly one thread with the same arithmetic, so 1 and 2 threads agree bit for bit
// (on a machine with one core the second run still uses two OpenMP threads).
TEST(DecoderOpsThreadsTest, PrefillSizedPassesAreBitIdenticalAcrossThreadCounts) {
  const int64_t rows = 300, cols = 576, heads = 9, head_dim = 64;
  ASSERT_GE(rows * cols, internal::kMinParallelWork);
  const auto x = RandomUniform(rows * cols, -2.0f, 2.0f, 41);
  const auto delta = RandomUniform(rows * cols, -1.0f, 1.0f, 42);
  const auto weight = RandomUniform(cols, 0.5f, 1.5f, 43);
  const auto gate_up = RandomUniform(rows * 2 * cols, -4.0f, 4.0f, 44);
  auto table = ComputeRopeTable(head_dim, 10000.0f, RopeScaling{});
  ASSERT_TRUE(table.ok());
  std::vector<int64_t> positions(rows);
  for (int64_t t = 0; t < rows; ++t) positions[t] = 7 + t;
  std::vector<float> angles(static_cast<size_t>(rows * head_dim));
  RopeAngles(positions.data(), rows, *table, angles.data());
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> out(3 * rows * cols + rows * cols);
    RmsNorm(x.data(), rows, cols, weight.data(), 1e-5f, out.data());
    std::vector<float> residual = x;
    AddRmsNorm(residual.data(), delta.data(), rows, cols, weight.data(), 1e-5f,
               out.data() + rows * cols);
    SwiGlu(gate_up.data(), gate_up.data() + cols, rows, cols, 2 * cols,
           out.data() + 2 * rows * cols);
    std::vector<float> rotated(x.begin(), x.begin() + rows * heads * head_dim);
    ApplyRopeAngles(rotated.data(), rows, heads, head_dim, heads * head_dim, angles.data(),
                    *table, RopeStyle::kNeox);
    omp_set_num_threads(saved);
    out.insert(out.end(), residual.begin(), residual.end());
    out.insert(out.end(), rotated.begin(), rotated.end());
    return out;
  };
  const auto one = run(1), two = run(2);
  ASSERT_EQ(one.size(), two.size());
  EXPECT_EQ(0, std::memcmp(one.data(), two.data(), one.size() * sizeof(float)));
  // And the single-thread result is the reference's, within the tests above' bound.
  std::vector<float> expected(rows * cols);
  ReferenceRmsNorm(x.data(), rows, cols, weight.data(), 1e-5f, expected.data());
  for (int64_t i = 0; i < rows * cols; ++i) ASSERT_NEAR(two[i], expected[i], 1e-4f) << i;
}

TEST(DecoderOpsThreadsTest, ParallelRangesCoverEveryItemOnce) {
  for (int64_t count : {int64_t{0}, int64_t{1}, int64_t{5}, int64_t{1000}, int64_t{70000}}) {
    std::vector<int> hits(static_cast<size_t>(count), 0);
    internal::ParallelRanges(count, 1, [&](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) ++hits[static_cast<size_t>(i)];
    });
    for (int64_t i = 0; i < count; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << i;
  }
}

TEST(RopeTableTest, RejectsBadParameters) {
  EXPECT_FALSE(ComputeRopeTable(0, 10000.0f, {}).ok());
  EXPECT_FALSE(ComputeRopeTable(7, 10000.0f, {}).ok());
  EXPECT_FALSE(ComputeRopeTable(8, 1.0f, {}).ok());
  EXPECT_FALSE(ComputeRopeTable(8, NAN, {}).ok());
  RopeScaling bad;
  bad.factor = 0.0f;
  EXPECT_FALSE(ComputeRopeTable(8, 10000.0f, bad).ok());
  bad = RopeScaling{};
  bad.freq_factors = {1, 1, 1};
  auto status = ComputeRopeTable(8, 10000.0f, bad).status();
  EXPECT_NE(status.message().find("freq_factors"), std::string::npos) << status;
  bad.freq_factors = {1, 1, -1, 1};
  EXPECT_FALSE(ComputeRopeTable(8, 10000.0f, bad).ok());
  bad = RopeScaling{};
  bad.type = RopeScalingType::kLlama3;
  EXPECT_FALSE(ComputeRopeTable(8, 10000.0f, bad).ok());  // no original_context
  bad.original_context = 8192;
  bad.low_freq_factor = 4.0f;
  bad.high_freq_factor = 1.0f;
  EXPECT_FALSE(ComputeRopeTable(8, 10000.0f, bad).ok());
  bad = RopeScaling{};
  bad.type = RopeScalingType::kLongRope;
  bad.factor = 4.0f;
  EXPECT_FALSE(ComputeRopeTable(8, 10000.0f, bad).ok());  // no original_context
}

TEST(RopeTest, MatchesReferenceBothStyles) {
  uint32_t seed = 40;
  for (RopeStyle style : {RopeStyle::kNeox, RopeStyle::kInterleaved}) {
    for (int64_t head_dim : {2, 64, 96, 128}) {
      for (int64_t rotary_dim : {head_dim, head_dim / 2}) {
        if (rotary_dim % 2 != 0 || rotary_dim == 0) continue;
        RopeScaling scaling;
        scaling.type = RopeScalingType::kLongRope;
        scaling.factor = 16.0f;
        scaling.original_context = 4096;
        auto table = ComputeRopeTable(rotary_dim, 10000.0f, scaling);
        ASSERT_TRUE(table.ok());
        const int64_t tokens = 5, heads = 3, stride = heads * head_dim + 7;
        const std::vector<int64_t> positions = {0, 1, 17, 4095, 32767};
        const auto x = RandomUniform(tokens * stride, -2.0f, 2.0f, seed++);
        std::vector<float> fast = x, expected = x;
        ApplyRope(fast.data(), tokens, heads, head_dim, stride, positions.data(), *table, style);
        ReferenceApplyRope(expected.data(), tokens, heads, head_dim, stride, positions.data(),
                           *table, style);
        // The two-step form (angles once, rotations with them) matches the reference too.
        std::vector<float> angles(tokens * rotary_dim, NAN), two_step = x;
        RopeAngles(positions.data(), tokens, *table, angles.data());
        ApplyRopeAngles(two_step.data(), tokens, heads, head_dim, stride, angles.data(), *table,
                        style);
        for (size_t i = 0; i < x.size(); ++i) {
          ASSERT_NEAR(fast[i], expected[i], 1e-5 * 4 * table->magnitude + 1e-6)
              << "style=" << static_cast<int>(style) << " head_dim=" << head_dim << " i=" << i;
          ASSERT_NEAR(two_step[i], expected[i], 1e-5 * 4 * table->magnitude + 1e-6)
              << "two-step style=" << static_cast<int>(style) << " head_dim=" << head_dim
              << " i=" << i;
        }
        // Position 0 only scales by the magnitude; dimensions past rotary_dim and the padding
        // between rows are untouched.
        for (int64_t h = 0; h < heads; ++h) {
          for (int64_t i = 0; i < head_dim; ++i) {
            const float before = x[h * head_dim + i];
            const float after = fast[h * head_dim + i];
            if (i < rotary_dim) {
              EXPECT_NEAR(after, before * table->magnitude, 1e-6);
            } else {
              EXPECT_EQ(after, before);
            }
          }
        }
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t i = heads * head_dim; i < stride; ++i) {
            EXPECT_EQ(fast[t * stride + i], x[t * stride + i]);
          }
        }
      }
    }
  }
}

TEST(RopeTest, NeoxEqualsInterleavedOnPermutedDimensions) {
  const int64_t head_dim = 64, half = 32;
  auto table = ComputeRopeTable(head_dim, 1000000.0f, RopeScaling{});
  ASSERT_TRUE(table.ok());
  const auto x = RandomUniform(head_dim, -1.0f, 1.0f, 77);
  std::vector<float> permuted(head_dim);
  for (int64_t i = 0; i < half; ++i) {
    permuted[2 * i] = x[i];
    permuted[2 * i + 1] = x[i + half];
  }
  const int64_t position = 1234;
  std::vector<float> neox = x;
  ApplyRope(neox.data(), 1, 1, head_dim, head_dim, &position, *table, RopeStyle::kNeox);
  ApplyRope(permuted.data(), 1, 1, head_dim, head_dim, &position, *table,
            RopeStyle::kInterleaved);
  for (int64_t i = 0; i < half; ++i) {
    EXPECT_FLOAT_EQ(neox[i], permuted[2 * i]);
    EXPECT_FLOAT_EQ(neox[i + half], permuted[2 * i + 1]);
    // A rotation keeps each pair's length.
    EXPECT_NEAR(std::hypot(neox[i], neox[i + half]), std::hypot(x[i], x[i + half]), 1e-5);
  }
}

}  // namespace
}  // namespace slm::kernels
