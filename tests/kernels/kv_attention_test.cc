// KV-cache attention against ReferenceCachedAttention (double math over the same dequantized
// cache) and, independently, against attention computed straight from the f32 keys and values
// (which also checks WriteKv's layout and the causal / sliding-window masks).
//
// Tolerances (outputs are convex combinations of value rows, so errors scale with max|v|):
//   fast vs reference, any cache type: |err| <= 1e-5 * max|v| (f32 softmax; FastExp < 3e-7),
//     except the bf16 cache's AVX-512 paths with bf16 products (AVX512_BF16, head_dim % 16 == 0):
//     |err| <= 4e-3 * max|v| (query rows and softmax weights rounded to bf16: 2^-9 relative;
//     see kv_attention.h). Those paths are also run with bf16 products off (f32, 1e-5).
//   f32 cache vs direct f32:   |err| <= 1e-5 * max|v|.
//   bf16 cache vs direct f32:  |err| <= 2e-2 * max|v| (keys/values rounded to 8 bits, 2^-9
//                              relative; score errors up to 2^-8 * |q||k| * scale move weights).
//   int8 cache vs direct f32:  |err| <= 4e-2 * max|v| (per-token scale max|x|/127).
#include "kernels/kv_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace slm::kernels {
namespace {

std::vector<float> RandomUniform(size_t count, float low, float high, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float> values(count);
  for (float& value : values) value = distribution(generator);
  return values;
}

struct Case {
  int64_t num_heads, num_kv_heads, head_dim, start, num_tokens, window;
};

// Attention for query token t (position start + t) straight from f32 k/v rows [positions][kv*d].
std::vector<float> DirectAttention(const Case& c, const std::vector<float>& q,
                                   const std::vector<float>& k, const std::vector<float>& v,
                                   float scale) {
  const int64_t d = c.head_dim, group = c.num_heads / c.num_kv_heads;
  const int64_t kv_width = c.num_kv_heads * d;
  std::vector<float> out(c.num_tokens * c.num_heads * d);
  for (int64_t t = 0; t < c.num_tokens; ++t) {
    const int64_t position = c.start + t;
    const int64_t first = c.window > 0 ? std::max<int64_t>(0, position - c.window + 1) : 0;
    for (int64_t h = 0; h < c.num_heads; ++h) {
      const int64_t kv = h / group;
      std::vector<double> w;
      for (int64_t j = first; j <= position; ++j) {
        double dot = 0.0;
        for (int64_t i = 0; i < d; ++i) {
          dot += double{q[t * c.num_heads * d + h * d + i]} * k[j * kv_width + kv * d + i];
        }
        w.push_back(dot * scale);
      }
      const double max = *std::max_element(w.begin(), w.end());
      double sum = 0.0;
      for (double& x : w) sum += (x = std::exp(x - max));
      for (int64_t i = 0; i < d; ++i) {
        double value = 0.0;
        for (int64_t j = first; j <= position; ++j) {
          value += w[j - first] / sum * v[j * kv_width + kv * d + i];
        }
        out[t * c.num_heads * d + h * d + i] = static_cast<float>(value);
      }
    }
  }
  return out;
}

TEST(KvAttentionTest, MatchesReferenceAndDirectComputation) {
  const Case cases[] = {
      {1, 1, 4, 0, 1, 0},      {4, 4, 16, 0, 9, 0},     {14, 2, 64, 0, 7, 0},
      {14, 2, 64, 30, 1, 0},   {8, 2, 128, 5, 4, 0},    {6, 3, 5, 11, 3, 0},
      {32, 4, 64, 40, 1, 8},   {4, 1, 32, 3, 12, 4},    {9, 3, 64, 37, 2, 0},
      {9, 3, 64, 0, 17, 0},    {3, 1, 16, 47, 1, 0},
      // Blocked prefill path (>= 8 tokens: 16-token query blocks, 8-row register blocks, keys
      // in 16-key panels): chunks not a multiple of the block, prefill after an existing cache
      // (start not a multiple of 16), GQA groups 1 / 3 / 7, head_dim not a multiple of 16, and
      // sliding windows whose start crosses key panels inside a query block.
      {9, 3, 64, 0, 8, 0},     {9, 3, 64, 0, 40, 0},    {9, 3, 64, 37, 20, 0},
      {3, 3, 32, 0, 33, 0},    {7, 1, 64, 5, 19, 0},    {14, 2, 80, 13, 31, 0},
      {6, 2, 5, 3, 10, 0},     {9, 3, 64, 21, 45, 20},  {4, 1, 128, 0, 64, 7},
  };
  const int saved = omp_get_max_threads();
  uint32_t seed = 1;
  // The AVX-512 paths (where the CPU has them) with bf16 products for the bf16 cache (prefill
  // blocked, then every call per token), the portable loops, and both AVX-512 paths with bf16
  // products off, each on 1 and 2 threads.
  double worst_bf16_products = 0.0;
  for (int run = 0; run < 10; ++run) {
    const bool portable = run >= 4 && run < 6;
    const bool blocked = run < 2 || (run >= 6 && run < 8);
    const bool bf16_products = run < 4;
    const int threads = 1 + run % 2;
    internal::ForcePortableAttentionForTesting(portable);
    internal::SetBlockedPrefillAttention(blocked);
    internal::SetBf16AttentionProducts(bf16_products);
    omp_set_num_threads(threads);
    for (DType dtype : {DType::kF32, DType::kBF16, DType::kInt8}) {
      for (const Case& c : cases) {
        SCOPED_TRACE(testing::Message()
                     << DTypeName(dtype) << " heads=" << c.num_heads << "/" << c.num_kv_heads
                     << " d=" << c.head_dim << " start=" << c.start << " n=" << c.num_tokens
                     << " window=" << c.window << " threads=" << threads
                     << " portable=" << portable << " blocked=" << blocked
                     << " bf16_products=" << bf16_products);
        const int64_t positions = c.start + c.num_tokens;
        const int64_t kv_width = c.num_kv_heads * c.head_dim;
        const auto k = RandomUniform(positions * kv_width, -1.0f, 1.0f, seed++);
        const auto v = RandomUniform(positions * kv_width, -2.0f, 2.0f, seed++);
        const auto q = RandomUniform(c.num_tokens * c.num_heads * c.head_dim, -1.0f, 1.0f,
                                     seed++);
        auto cache = KvCacheBuffer::Create(dtype, 2, c.num_kv_heads, c.head_dim, positions + 3);
        ASSERT_TRUE(cache.ok()) << cache.status();
        const KvLayerView layer = (*cache)->Layer(1);
        // The earlier positions in one call, the new tokens' in another (as decode does).
        if (c.start > 0) {
          ASSERT_TRUE(WriteKv(layer, k.data(), v.data(), kv_width, 0, c.start).ok());
        }
        ASSERT_TRUE(WriteKv(layer, k.data() + c.start * kv_width, v.data() + c.start * kv_width,
                            kv_width, c.start, c.num_tokens)
                        .ok());
        AttentionOptions options;
        options.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
        options.sliding_window = c.window;
        const int64_t width = c.num_heads * c.head_dim;
        std::vector<float> fast(c.num_tokens * width, NAN), expected(fast.size());
        ASSERT_TRUE(CachedAttention(layer, q.data(), width, c.start, c.num_tokens, c.num_heads,
                                    options, fast.data(), width)
                        .ok());
        ASSERT_TRUE(ReferenceCachedAttention(layer, q.data(), width, c.start, c.num_tokens,
                                             c.num_heads, options, expected.data(), width)
                        .ok());
        const auto direct = DirectAttention(c, q, k, v, options.scale);
        const double direct_tolerance =
            dtype == DType::kF32 ? 1e-5 : dtype == DType::kBF16 ? 2e-2 : 4e-2;
        // Whether this call may take the bf16-products path (where the CPU lacks AVX512_BF16
        // the f32 bound holds, and is still within this one).
        const bool rounded = bf16_products && dtype == DType::kBF16 && c.head_dim % 16 == 0 &&
                             (c.num_heads / c.num_kv_heads <= 8 || (blocked && c.num_tokens >= 8));
        const double tolerance = rounded ? 4e-3 : 1e-5;
        for (size_t i = 0; i < fast.size(); ++i) {
          if (rounded) {
            worst_bf16_products = std::max(worst_bf16_products,
                                           std::fabs(double{fast[i]} - expected[i]) / 2.0);
          }
          ASSERT_NEAR(fast[i], expected[i], tolerance * 2.0) << i;
          ASSERT_NEAR(fast[i], direct[i], direct_tolerance * 2.0) << i;
        }
      }
    }
  }
  internal::ForcePortableAttentionForTesting(false);
  internal::SetBlockedPrefillAttention(true);
  internal::SetBf16AttentionProducts(true);
  omp_set_num_threads(saved);
  std::printf("bf16-products attention: worst |err| / max|v| = %.2e\n",
              worst_bf16_products);
}

// bf16 bits of x by round-to-nearest-even, decided in double arithmetic (finite x).
uint16_t NearestEvenBf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  const uint32_t low = bits >> 16, high = low + 1;  // same sign: truncation and next magnitude
  auto value = [](uint32_t b16) {
    const uint32_t wide = b16 << 16;
    float f;
    std::memcpy(&f, &wide, sizeof(f));
    return static_cast<double>(f);
  };
  const double below = std::fabs(value(low) - x);
  const double above = (high & 0x7FFFu) >= 0x7F80u ? INFINITY : std::fabs(value(high) - x);
  if (below != above) return static_cast<uint16_t>(below < above ? low : high);
  return static_cast<uint16_t>(low % 2 == 0 ? low : high);
}

// The prefetch hint never changes a result: decode calls with prefetch_next set (to another
// cache, to one of another geometry, with a length past its capacity or zero) equal the same
// calls without it, bit for bit, on every cache type.
TEST(KvAttentionTest, PrefetchNextHintDoesNotChangeResults) {
  const int64_t heads = 9, kv_heads = 3, d = 64, positions = 40;
  const int64_t kv_width = kv_heads * d, width = heads * d;
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kInt8}) {
    SCOPED_TRACE(DTypeName(dtype));
    const auto k = RandomUniform(positions * kv_width, -1.0f, 1.0f, 71);
    const auto v = RandomUniform(positions * kv_width, -2.0f, 2.0f, 72);
    const auto q = RandomUniform(width, -1.0f, 1.0f, 73);
    auto cache = KvCacheBuffer::Create(dtype, 1, kv_heads, d, positions);
    auto next = KvCacheBuffer::Create(dtype, 1, kv_heads, d, 24);
    auto other = KvCacheBuffer::Create(dtype, 1, 1, 32, 8);
    ASSERT_TRUE(cache.ok() && next.ok() && other.ok());
    const KvLayerView layer = (*cache)->Layer(0);
    ASSERT_TRUE(WriteKv(layer, k.data(), v.data(), kv_width, 0, positions).ok());
    AttentionOptions plain;
    plain.scale = 0.125f;
    std::vector<float> expected(width), out(width);
    ASSERT_TRUE(CachedAttention(layer, q.data(), width, positions - 1, 1, heads, plain,
                                expected.data(), width)
                    .ok());
    const KvLayerView next_layer = (*next)->Layer(0), other_layer = (*other)->Layer(0);
    for (const auto& [view, length] : {std::pair{&next_layer, int64_t{24}},
                                       std::pair{&next_layer, int64_t{1000}},
                                       std::pair{&next_layer, int64_t{0}},
                                       std::pair{&other_layer, int64_t{8}}}) {
      AttentionOptions hinted = plain;
      hinted.prefetch_next = view;
      hinted.prefetch_next_length = length;
      std::fill(out.begin(), out.end(), NAN);
      ASSERT_TRUE(CachedAttention(layer, q.data(), width, positions - 1, 1, heads, hinted,
                                  out.data(), width)
                      .ok());
      EXPECT_EQ(0, std::memcmp(out.data(), expected.data(), out.size() * sizeof(float)))
          << "length " << length;
    }
  }
}

TEST(KvAttentionTest, WriteKvRoundsBf16ToNearestEven) {
  const int64_t heads = 2, d = 20, tokens = 3;
  auto values = RandomUniform(tokens * heads * d, -3.0f, 3.0f, 99);
  // Ties (1 + 2^-8 -> 1.0; 1 + 3 * 2^-8 -> 1 + 2^-6), just above a tie, exact, negative tie.
  const float special[] = {1.00390625f, 1.01171875f, 1.0039063f, -2.5f, -1.00390625f, 0.0f};
  std::copy(std::begin(special), std::end(special), values.begin());
  auto cache = KvCacheBuffer::Create(DType::kBF16, 1, heads, d, tokens);
  ASSERT_TRUE(cache.ok());
  const KvLayerView layer = (*cache)->Layer(0);
  ASSERT_TRUE(WriteKv(layer, values.data(), values.data(), heads * d, 0, tokens).ok());
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < d; ++i) {
        const float x = values[t * heads * d + h * d + i];
        const int64_t index = (h * tokens + t) * d + i;
        EXPECT_EQ(static_cast<const uint16_t*>(layer.keys)[index], NearestEvenBf16(x)) << x;
        EXPECT_EQ(static_cast<const uint16_t*>(layer.values)[index], NearestEvenBf16(x)) << x;
      }
    }
  }
  EXPECT_EQ(NearestEvenBf16(1.00390625f), 0x3F80u);  // the reference itself, on known ties
  EXPECT_EQ(NearestEvenBf16(1.01171875f), 0x3F82u);
}

TEST(KvAttentionTest, LayersDoNotOverlapAndBytesAreCounted) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kInt8}) {
    auto cache = KvCacheBuffer::Create(dtype, 3, 2, 8, 5);
    ASSERT_TRUE(cache.ok());
    const int64_t per_layer = KvLayerBytes(dtype, 2, 8, 5);
    EXPECT_EQ((*cache)->Bytes(), 3 * per_layer);
    EXPECT_GE(per_layer, 2 * 2 * 8 * 5 * (dtype == DType::kF32 ? 4 : dtype == DType::kBF16 ? 2 : 1));
    const auto a = (*cache)->Layer(0), b = (*cache)->Layer(1);
    EXPECT_EQ(static_cast<char*>(b.keys) - static_cast<char*>(a.keys), per_layer);
    EXPECT_EQ(a.capacity, 5);
  }
}

TEST(KvAttentionTest, RejectsBadInput) {
  auto cache = KvCacheBuffer::Create(DType::kBF16, 1, 2, 4, 6);
  ASSERT_TRUE(cache.ok());
  const KvLayerView layer = (*cache)->Layer(0);
  std::vector<float> buffer(64, 0.5f), out(64);
  EXPECT_FALSE(WriteKv(layer, buffer.data(), buffer.data(), 8, 5, 2).ok());  // past capacity
  EXPECT_FALSE(WriteKv(layer, buffer.data(), nullptr, 8, 0, 1).ok());
  EXPECT_FALSE(WriteKv(layer, buffer.data(), buffer.data(), 8, -1, 1).ok());
  ASSERT_TRUE(WriteKv(layer, buffer.data(), buffer.data(), 8, 0, 2).ok());
  auto status = CachedAttention(layer, buffer.data(), 12, 0, 1, 3, {}, out.data(), 12);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("num_heads"), std::string::npos) << status;
  EXPECT_FALSE(CachedAttention(layer, buffer.data(), 8, 5, 2, 2, {}, out.data(), 8).ok());
  EXPECT_FALSE(CachedAttention(layer, nullptr, 8, 0, 1, 2, {}, out.data(), 8).ok());
  EXPECT_FALSE(CachedAttention(layer, buffer.data(), 8, 0, 0, 2, {}, out.data(), 8).ok());
  KvLayerView broken = layer;
  broken.keys = nullptr;
  EXPECT_FALSE(CachedAttention(broken, buffer.data(), 8, 0, 1, 2, {}, out.data(), 8).ok());
  KvLayerView int8 = layer;
  int8.dtype = DType::kInt8;  // no scales
  EXPECT_FALSE(WriteKv(int8, buffer.data(), buffer.data(), 8, 0, 1).ok());
  EXPECT_FALSE(KvCacheBuffer::Create(DType::kInt8, 0, 2, 4, 6).ok());
  EXPECT_FALSE(KvCacheBuffer::Create(DType::kInt8, 1, 2, 4, -6).ok());
}

}  // namespace
}  // namespace slm::kernels
