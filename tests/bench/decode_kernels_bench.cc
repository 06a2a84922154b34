// Decode GEMV speed as a fraction of the memory-bandwidth roofline measured in the same run.
//
//   OMP_WAIT_POLICY=PASSIVE build/tests/bench/decode_kernels_bench [--quick] [--filter=ffn_up]
//       [--threads=1] [--prefetch=1024,8192]  (GEMV prefetch distances compared in one run)
//       [--tiled=0,1]  (5-16 rows without / with the register-tiled kernels, in one run)
//
// For each weight shape of SmolLM2-135M / Qwen2.5-0.5B / TinyLlama-1.1B layers, dtype (int8, bf16),
// activation rows M (1, 2, 4, 8, 12, 16) and thread count (1, 2): PackedMatrix::Multiply GB/s
// (packed bytes streamed per call / time) and that figure / MeasureReadBandwidthGBs(threads).
// Enough copies of each matrix are cycled that they never fit the last-level cache (as in a real
// model, whose layers together exceed it). Baseline in the same run: kernels::Linear (oneDNN) at
// M=1 and M=16 on the same shapes (at M=16 the figure is the same weight bytes per call, so GB/s
// compare directly). Kernel and bandwidth windows alternate and each figure is the best of its
// windows, so a ratio compares figures taken under the same load (the machine is shared). With 1
// thread both are timed in the thread's CPU time (lost time slices do not count); with 2 threads,
// wall time.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemv.h"
#include "kernels/gemv_kernels.h"
#include "kernels/linear.h"
#include "tests/bench/bandwidth.h"
#include "tests/bench/peak.h"

namespace slm::bench {
namespace {

using kernels::DType;

constexpr int64_t kWorkingSetBytes = int64_t{128} << 20;  // 4x a 32 MiB L3

struct Shape {
  const char* name;
  int64_t out, in;
};

// Alternates short windows of `call(copy_index)` (cycling through the copies) with windows of the
// bandwidth probe on the same threads; returns the best of each (calls/s, GB/s).
struct Rates {
  double calls_per_second = 0.0;
  double bandwidth = 0.0;
};
Rates Measure(BandwidthProbe& probe, int threads, int copies, int rounds, double window_seconds,
              const std::function<void(int)>& call) {
  for (int i = 0; i < copies; ++i) call(i);  // warm up
  Rates best;
  for (int round = 0; round < rounds; ++round) {
    best.bandwidth = std::max(best.bandwidth, probe.Measure(threads, window_seconds));
    const bool cpu_time = threads == 1;  // as the probe: CPU time with one thread
    const double start = BenchClockSeconds(cpu_time);
    int64_t calls = 0;
    double seconds = 0.0;
    do {
      for (int i = 0; i < copies; ++i) call(i);
      calls += copies;
      seconds = BenchClockSeconds(cpu_time) - start;
    } while (seconds < window_seconds);
    best.calls_per_second = std::max(best.calls_per_second, static_cast<double>(calls) / seconds);
  }
  return best;
}

std::vector<int64_t> ParseList(const std::string& list) {
  std::vector<int64_t> values;
  for (size_t pos = 0; pos <= list.size();) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    values.push_back(std::atoll(list.substr(pos, comma - pos).c_str()));
    pos = comma + 1;
  }
  return values;
}

int Main(int argc, char** argv) {
  bool quick = false;
  std::string filter;  // --filter=SUBSTRING: only shapes whose name contains it
  std::vector<int> thread_counts = {1, 2};
  const int64_t default_prefetch = kernels::internal::GemvPrefetchBytes();
  std::vector<int64_t> prefetches = {default_prefetch};
  std::vector<int64_t> tiled = {1};  // --tiled=0,1: 5-16 rows without / with register tiling
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strncmp(argv[i], "--filter=", 9) == 0) filter = argv[i] + 9;
    if (std::strcmp(argv[i], "--threads=1") == 0) thread_counts = {1};
    // --prefetch=1024,8192: GEMV prefetch distances (most bytes; see gemv_kernels.h).
    if (std::strncmp(argv[i], "--prefetch=", 11) == 0) prefetches = ParseList(argv[i] + 11);
    if (std::strncmp(argv[i], "--tiled=", 8) == 0) tiled = ParseList(argv[i] + 8);
  }
  const double window = quick ? 0.03 : 0.06;
  const int rounds = quick ? 3 : 6;
  const Shape shapes[] = {
      {"smollm2 attn_qkv 960x576", 960, 576},     {"smollm2 ffn_gate_up 3072x576", 3072, 576},
      {"smollm2 ffn_down 576x1536", 576, 1536},   {"smollm2 output 49152x576", 49152, 576},
      {"qwen0.5b attn_q/o 896x896", 896, 896},    {"qwen0.5b ffn_up 4864x896", 4864, 896},
      {"qwen0.5b ffn_down 896x4864", 896, 4864},  {"tinyllama attn 2048x2048", 2048, 2048},
      {"tinyllama ffn_up 5632x2048", 5632, 2048}, {"tinyllama ffn_down 2048x5632", 2048, 5632},
  };
  const int saved_threads = omp_get_max_threads();
  BandwidthProbe probe;
  for (int threads : thread_counts) {
    std::printf("read bandwidth: %.1f GB/s (%d thread(s), best of 3 x 0.3 s)\n",
                MeasureReadBandwidthGBs(threads), threads);
  }
  double peaks[3] = {0, 0, 0};  // int8 matmul peak per thread count
  for (int threads : thread_counts) {
    peaks[threads] = MeasurePeakGops(DType::kInt8, threads, threads == 1);
    std::printf("int8 matmul peak: %.0f GOP/s (%d thread(s))\n", peaks[threads], threads);
  }
  std::printf(
      "roofline = kernel GB/s / probe GB/s, both best of %d alternating windows; "
      "int8 peak = 2 x out x in x M / time over the int8 peak\n",
      rounds);
  std::printf("%-30s %-5s %2s %2s %7s %7s %9s %8s %9s\n", "shape", "dtype", "M", "T", "GB/s",
              "probe", "roofline", "us/call", "int8 peak");
  std::mt19937 generator(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (const Shape& shape : shapes) {
    if (std::string(shape.name).find(filter) == std::string::npos) continue;
    std::vector<float> weight(static_cast<size_t>(shape.out * shape.in));
    for (float& value : weight) value = uniform(generator);
    std::vector<float> x(static_cast<size_t>(16 * shape.in));
    for (float& value : x) value = uniform(generator);
    std::vector<float> y(static_cast<size_t>(16 * shape.out));
    for (DType dtype : {DType::kInt8, DType::kBF16}) {
      std::vector<std::unique_ptr<kernels::PackedMatrix>> copies;
      auto first = kernels::PackedMatrix::Create(weight.data(), shape.out, shape.in, dtype);
      if (!first.ok()) {
        std::fprintf(stderr, "%s\n", first.status().ToString().c_str());
        return 1;
      }
      const int64_t bytes = (*first)->PackedBytes();
      const std::string kernel = (*first)->KernelName();
      copies.push_back(std::move(*first));
      const int count = static_cast<int>(std::max<int64_t>(1, kWorkingSetBytes / bytes));
      while (static_cast<int>(copies.size()) < count) {
        copies.push_back(*kernels::PackedMatrix::Create(weight.data(), shape.out, shape.in, dtype));
      }
      for (int threads : thread_counts) {
        omp_set_num_threads(threads);
        for (int64_t rows : {1, 2, 4, 8, 12, 16}) {
          for (int64_t prefetch : prefetches) {
            for (int64_t tiling : tiled) {
              kernels::internal::SetGemvPrefetchBytes(prefetch);
              kernels::internal::SetGemvTiledKernels(tiling != 0);
              const Rates rates = Measure(probe, threads, count, rounds, window, [&](int i) {
                (void)copies[i]->Multiply(x.data(), rows, y.data());
              });
              const double gbs = rates.calls_per_second * static_cast<double>(bytes) / 1e9;
              const double gops = rates.calls_per_second * 2.0 * static_cast<double>(shape.out) *
                                  static_cast<double>(shape.in) * static_cast<double>(rows) / 1e9;
              std::printf(
                  "%-30s %-5s %2lld %2d %7.1f %7.1f %8.0f%% %8.1f %8.0f%%  [%s prefetch=%lld "
                  "tiled=%lld]\n",
                  shape.name, std::string(kernels::DTypeName(dtype)).c_str(),
                  static_cast<long long>(rows), threads, gbs, rates.bandwidth,
                  100.0 * gbs / rates.bandwidth, 1e6 / rates.calls_per_second,
                  dtype == DType::kInt8 ? 100.0 * gops / peaks[threads] : 0.0, kernel.c_str(),
                  static_cast<long long>(prefetch), static_cast<long long>(tiling));
            }
          }
          kernels::internal::SetGemvPrefetchBytes(default_prefetch);
          kernels::internal::SetGemvTiledKernels(true);
        }
      }
    }
    // Baseline: oneDNN (kernels::Linear) int8 and bf16 at M=1 and 16, created under each thread
    // count.
    for (DType dtype : {DType::kInt8, DType::kBF16}) {
      for (int threads : thread_counts) {
        omp_set_num_threads(threads);
        std::vector<std::unique_ptr<kernels::Linear>> copies;
        auto first = kernels::Linear::Create(weight.data(), nullptr, shape.out, shape.in, dtype,
                                             kernels::Activation::kNone, /*max_rows=*/16);
        if (!first.ok()) {
          std::fprintf(stderr, "%s\n", first.status().ToString().c_str());
          return 1;
        }
        const int64_t bytes = (*first)->PreparedWeightBytes();
        copies.push_back(std::move(*first));
        const int count = static_cast<int>(std::max<int64_t>(1, kWorkingSetBytes / bytes));
        while (static_cast<int>(copies.size()) < count) {
          copies.push_back(*kernels::Linear::Create(weight.data(), nullptr, shape.out, shape.in,
                                                    dtype, kernels::Activation::kNone, 16));
        }
        for (int64_t rows : {1, 16}) {
          const Rates rates = Measure(probe, threads, count, rounds, window, [&](int i) {
            (void)copies[i]->Forward(x.data(), rows, y.data());
          });
          const double gbs = rates.calls_per_second * static_cast<double>(bytes) / 1e9;
          std::printf("%-30s %-5s %2lld %2d %7.1f %7.1f %8.0f%% %8.1f  [oneDNN %s]\n", shape.name,
                      std::string(kernels::DTypeName(dtype)).c_str(), static_cast<long long>(rows),
                      threads, gbs, rates.bandwidth, 100.0 * gbs / rates.bandwidth,
                      1e6 / rates.calls_per_second, copies[0]->ImplementationName().c_str());
        }
      }
    }
  }
  omp_set_num_threads(saved_threads);
  return 0;
}

}  // namespace
}  // namespace slm::bench

int main(int argc, char** argv) { return slm::bench::Main(argc, argv); }
