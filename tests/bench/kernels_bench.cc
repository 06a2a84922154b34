// Throughput of kernels::Linear (GOP/s, 2 ops per multiply-add) and of the encoder ops.
//
//   build-kernels/tests/bench/kernels_bench --benchmark_filter='Linear/bf16'
//
// Linear/<dtype>/M/K/N/threads: MiniLM shapes (384x384, 384->1536, 1536->384) at
// M in {1, 16, 64, 256, 1024} and the compute-bound "peak" shape 512x2048x2048, with 1 and 2
// OpenMP threads. Counters: GOPS (billions of ops per second) and, for the weight-bound small-M
// cases, WeightGBps (weight bytes streamed per second, to compare with memory bandwidth).
// Rates use CPU time for 1 thread (all work runs on the benchmark thread, so other processes on a
// shared machine do not distort it) and wall time for 2 threads.
// Run with OMP_WAIT_POLICY=PASSIVE on shared machines.
#include <omp.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "kernels/linear.h"
#include "kernels/ops.h"
#include "tests/bench/peak.h"

namespace slm::kernels {
namespace {

std::vector<float> Random(size_t count, float scale, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(-scale, scale);
  std::vector<float> values(count);
  for (float& value : values) value = distribution(generator);
  return values;
}

int64_t WeightBytes(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kBF16:
      return 2;
    case DType::kInt8:
      return 1;
  }
  return 4;
}

void BM_Linear(benchmark::State& state, DType dtype, int64_t m, int64_t k, int64_t n, int threads) {
  const std::vector<float> weight = Random(n * k, 1.0f / 32, 1);
  const std::vector<float> bias = Random(n, 0.1f, 2);
  const std::vector<float> x = Random(m * k, 1.0f, 3);
  std::vector<float> y(m * n);
  // max_rows as an encoder deploys it (512 tokens), so small-M buckets share the large-M weight
  // layout exactly as in production.
  auto linear = Linear::Create(weight.data(), bias.data(), n, k, dtype, Activation::kNone,
                               std::max<int64_t>(m, 512));
  if (!linear.ok()) {
    state.SkipWithError(linear.status().ToString().c_str());
    return;
  }
  omp_set_num_threads(threads);
  for (auto _ : state) {
    benchmark::DoNotOptimize((*linear)->Forward(x.data(), m, y.data()));
    benchmark::ClobberMemory();
  }
  const double iterations = static_cast<double>(state.iterations());
  state.counters["GOPS"] =
      benchmark::Counter(2.0 * m * k * n * iterations / 1e9, benchmark::Counter::kIsRate);
  state.counters["WeightGBps"] =
      benchmark::Counter(static_cast<double>(WeightBytes(dtype)) * k * n * iterations / 1e9,
                         benchmark::Counter::kIsRate);
  state.SetLabel((*linear)->ImplementationName());
}

void BM_EncoderAttention(benchmark::State& state) {
  const int64_t seq = state.range(0), heads = 12, head_dim = 32, hidden = heads * head_dim;
  omp_set_num_threads(static_cast<int>(state.range(1)));
  const std::vector<float> qkv = Random(seq * 3 * hidden, 2.0f, 4);
  std::vector<float> out(seq * hidden);
  for (auto _ : state) {
    EncoderAttention(qkv.data(), qkv.data() + hidden, qkv.data() + 2 * hidden, 3 * hidden, seq,
                     heads, head_dim, out.data());
    benchmark::ClobberMemory();
  }
  // q k^T and p v: 2 * seq^2 * head_dim multiply-adds per head.
  state.counters["GOPS"] = benchmark::Counter(
      4.0 * seq * seq * head_dim * heads * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EncoderAttention)->ArgsProduct({{32, 128, 512}, {1, 2}})->UseRealTime();

void BM_Gelu(benchmark::State& state) {
  std::vector<float> x = Random(512 * 1536, 3.0f, 5);
  for (auto _ : state) {
    Gelu(x.data(), static_cast<int64_t>(x.size()));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(x.size()));
}
BENCHMARK(BM_Gelu);

void BM_AddLayerNorm(benchmark::State& state) {
  const int64_t rows = 512, cols = 384;
  std::vector<float> x = Random(rows * cols, 3.0f, 6);
  const std::vector<float> residual = Random(rows * cols, 1.0f, 7);
  const std::vector<float> gamma(cols, 1.0f), beta(cols, 0.0f);
  for (auto _ : state) {
    AddLayerNorm(x.data(), residual.data(), rows, cols, gamma.data(), beta.data(), 1e-12f);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * rows * cols);
}
BENCHMARK(BM_AddLayerNorm);

void BM_PeakGops(benchmark::State& state, DType dtype, int threads) {
  double gops = 0.0;
  for (auto _ : state) gops = bench::MeasurePeakGops(dtype, threads);
  state.counters["GOPS"] = gops;
}

void RegisterLinearBenchmarks() {
  struct Shape {
    int64_t k, n;
  };
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kInt8}) {
    for (int threads : {1, 2}) {
      for (Shape shape : {Shape{384, 384}, Shape{384, 1536}, Shape{1536, 384}}) {
        for (int64_t m : {1, 16, 64, 256, 1024}) {
          const std::string name = "Linear/" + std::string(DTypeName(dtype)) + "/M" +
                                   std::to_string(m) + "/K" + std::to_string(shape.k) + "/N" +
                                   std::to_string(shape.n) + "/threads" + std::to_string(threads);
          auto* benchmark = benchmark::RegisterBenchmark(name.c_str(), BM_Linear, dtype, m, shape.k,
                                                         shape.n, threads);
          if (threads > 1) benchmark->UseRealTime();
        }
      }
      const std::string peak = "Linear/" + std::string(DTypeName(dtype)) +
                               "/peak_M512/K2048/N2048/threads" + std::to_string(threads);
      auto* peak_benchmark =
          benchmark::RegisterBenchmark(peak.c_str(), BM_Linear, dtype, bench::kPeakRows,
                                       bench::kPeakFeatures, bench::kPeakFeatures, threads);
      if (threads > 1) peak_benchmark->UseRealTime();
      const std::string measured =
          "MeasurePeakGops/" + std::string(DTypeName(dtype)) + "/threads" + std::to_string(threads);
      benchmark::RegisterBenchmark(measured.c_str(), BM_PeakGops, dtype, threads)
          ->Iterations(1)
          ->UseRealTime();
    }
  }
}

}  // namespace
}  // namespace slm::kernels

int main(int argc, char** argv) {
  slm::kernels::RegisterLinearBenchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
