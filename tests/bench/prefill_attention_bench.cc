// prefill_attention_bench: CachedAttention over a whole prompt (one prefill chunk, bf16 KV cache)
// with the shapes of SmolLM2-135M (9/3 heads), Qwen2.5-0.5B (14/2) and TinyLlama-1.1B (32/4),
// head_dim 64, at 128 and 512 tokens: the blocked AVX-512 prefill path with bf16 products (the
// default for a bf16 cache where the CPU has AVX512_BF16), the same blocked path widening to f32
// (internal::SetBf16AttentionProducts(false)), and the per-token AVX-512 items
// (internal::SetBlockedPrefillAttention(false)), alternating in the same run.
//
//   OMP_NUM_THREADS=1 prefill_attention_bench [--reps 5]
//
// Prints ms per layer (best of --reps, thread CPU time with 1 thread, else wall time) and f32
// GFLOP/s (2 x 2 x heads x head_dim x causal pairs). Not a CTest test: speed is never asserted.
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "kernels/kv_attention.h"

namespace {

double Seconds(bool cpu_time) {
  if (!cpu_time) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return now.tv_sec + 1e-9 * now.tv_nsec;
}

struct Shape {
  const char* name;
  int64_t heads, kv_heads;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace slm::kernels;
  int reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::max(1, std::atoi(argv[i + 1]));
  }
  const bool cpu_time = omp_get_max_threads() == 1;
  const Shape shapes[] = {{"smollm2-135m", 9, 3}, {"qwen2.5-0.5b", 14, 2}, {"tinyllama-1.1b", 32, 4}};
  constexpr int64_t d = 64;
  std::printf("threads %d (%s)\n", omp_get_max_threads(), cpu_time ? "thread CPU time" : "wall");
  for (const Shape& shape : shapes) {
    for (int64_t n : {128, 512}) {
      const int64_t width = (shape.heads + 2 * shape.kv_heads) * d;
      std::vector<float> qkv(static_cast<size_t>(n * width));
      std::mt19937 generator(7);
      std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
      for (float& x : qkv) x = uniform(generator);
      auto cache = KvCacheBuffer::Create(DType::kBF16, 1, shape.kv_heads, d, n);
      if (!cache.ok()) return 1;
      const KvLayerView layer = (*cache)->Layer(0);
      if (!WriteKv(layer, qkv.data() + shape.heads * d, qkv.data() + (shape.heads + shape.kv_heads) * d,
                   width, 0, n)
               .ok()) {
        return 1;
      }
      std::vector<float> out(static_cast<size_t>(n * shape.heads * d));
      AttentionOptions options;
      options.scale = 0.125f;
      double best[3] = {1e30, 1e30, 1e30};  // [blocked bf16, blocked f32, per token]
      for (int rep = 0; rep < reps; ++rep) {
        for (int variant = 0; variant < 3; ++variant) {
          internal::SetBlockedPrefillAttention(variant < 2);
          internal::SetBf16AttentionProducts(variant == 0);
          const double start = Seconds(cpu_time);
          if (!CachedAttention(layer, qkv.data(), width, 0, n, shape.heads, options, out.data(),
                               shape.heads * d)
                   .ok()) {
            return 1;
          }
          best[variant] = std::min(best[variant], Seconds(cpu_time) - start);
        }
      }
      internal::SetBlockedPrefillAttention(true);
      internal::SetBf16AttentionProducts(true);
      const double flops = 4.0 * shape.heads * d * (n * (n + 1) / 2.0);
      std::printf("%-15s %4lld tokens: blocked bf16 %7.3f ms (%5.1f GFLOP/s), blocked f32 %7.3f "
                  "ms (%5.1f), per token %7.3f ms (%5.1f): bf16/f32 %.2fx, f32/per token %.2fx\n",
                  shape.name, static_cast<long long>(n), best[0] * 1e3, flops / best[0] / 1e9,
                  best[1] * 1e3, flops / best[1] / 1e9, best[2] * 1e3, flops / best[2] / 1e9,
                  best[1] / best[0], best[2] / best[1]);
    }
  }
  // Decode: one new token per call over contexts of 32-512, SmolLM2's heads; `caches` caches
  // visited in turn (1: warm in L1/L2; 480 = 16 sequences x 30 layers: each call cold, as in a
  // batched decode step).
  std::printf("decode (1 token, smollm2-135m heads 9/3, us per call):\n");
  for (int64_t caches : {1, 480}) {
    for (int64_t n : {32, 128, 512}) {
      const int64_t heads = 9, kv_heads = 3, width = (heads + 2 * kv_heads) * d;
      std::vector<std::unique_ptr<KvCacheBuffer>> buffers;
      std::vector<float> qkv(static_cast<size_t>(n * width));
      std::mt19937 generator(11);
      std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
      for (float& x : qkv) x = uniform(generator);
      for (int64_t c = 0; c < caches; ++c) {
        auto cache = KvCacheBuffer::Create(DType::kBF16, 1, kv_heads, d, n);
        if (!cache.ok()) return 1;
        if (!WriteKv((*cache)->Layer(0), qkv.data() + heads * d,
                     qkv.data() + (heads + kv_heads) * d, width, 0, n)
                 .ok()) {
          return 1;
        }
        buffers.push_back(std::move(*cache));
      }
      std::vector<float> out(static_cast<size_t>(heads * d));
      AttentionOptions options;
      options.scale = 0.125f;
      double best[2] = {1e30, 1e30};  // [bf16 products, f32]
      const int64_t calls = std::max<int64_t>(caches, 2000 / n * 16);
      for (int rep = 0; rep < reps; ++rep) {
        for (int variant = 0; variant < 2; ++variant) {
          internal::SetBf16AttentionProducts(variant == 0);
          const double start = Seconds(cpu_time);
          for (int64_t call = 0; call < calls; ++call) {
            if (!CachedAttention(buffers[call % caches]->Layer(0), qkv.data() + (n - 1) * width,
                                 width, n - 1, 1, heads, options, out.data(), heads * d)
                     .ok()) {
              return 1;
            }
          }
          best[variant] = std::min(best[variant], (Seconds(cpu_time) - start) / calls);
        }
      }
      internal::SetBf16AttentionProducts(true);
      std::printf("  %3lld caches, context %4lld: bf16 products %7.3f us, f32 %7.3f us: %.2fx\n",
                  static_cast<long long>(caches), static_cast<long long>(n), best[0] * 1e6,
                  best[1] * 1e6, best[1] / best[0]);
    }
  }
  return 0;
}
