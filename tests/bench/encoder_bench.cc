// encoder_bench: EncoderModel throughput (tokens/s) on a MiniLM-L6-like BERT at 16, 64 and 256
// tokens, f32 / bf16 / int8, 1 and 2 OpenMP threads, each beside the peak matmul rate of the
// same dtype and thread count measured in the same run (tests/bench/peak.h).
//
//   tools/.../make_bench_model.py --out /tmp/minilm.gguf     (run_encoder_bench.sh does this)
//   SLM_ENCODER_BENCH_MODEL=/tmp/minilm.gguf encoder_bench [--benchmark_format=json]
//
// Counters per run: tokens_per_s; gops (model operations per second, counting 2 * linear params
// * tokens for the matmuls plus 4 * seq^2 * hidden per layer for attention; nominal, like MFU:
// work the encoder skips, such as the last layer's FFN on non-[CLS] rows, still counts);
// peak_gops (MeasurePeakGops of that dtype and thread count); fraction_of_peak = gops / peak.
// Each (dtype, threads) gets its own model, loaded with EncoderOptions::threads = threads.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "kernels/dtype.h"
#include "tests/bench/peak.h"
#include "workers/encoder/encoder_model.h"
#include "workers/gguf/gguf_file.h"

namespace slm::bench {
namespace {

using kernels::DType;
using workers::EncoderModel;

struct ModelShape {
  int64_t hidden = 0, layers = 0, ffn = 0, vocab = 0;
  // Multiply-adds x2 of one forward pass over `seq` tokens (classifier head ignored).
  double Operations(int64_t seq) const {
    const double linear_params = layers * (4.0 * hidden * hidden + 2.0 * hidden * ffn);
    const double attention = layers * 4.0 * seq * seq * hidden;
    return 2.0 * linear_params * seq + attention;
  }
};

// The same deterministic ids run_encoder_bench.sh feeds the alternatives.
std::vector<int32_t> BenchIds(int64_t seq, int64_t vocab) {
  std::vector<int32_t> ids(seq);
  for (int64_t t = 0; t < seq; ++t) ids[t] = static_cast<int32_t>(5 + (t * 7919) % (vocab - 5));
  ids.front() = 2;  // [CLS]
  ids.back() = 3;   // [SEP]
  return ids;
}

struct Fixture {
  std::string path;
  ModelShape shape;
  // One model per (dtype, threads): oneDNN fixes a primitive's thread count when it is created.
  std::map<std::pair<DType, int>, std::unique_ptr<EncoderModel>> models;
  std::map<std::pair<DType, int>, double> peak_gops;
};

Fixture& TheFixture() {
  static Fixture* fixture = new Fixture();
  return *fixture;
}

void BM_Encoder(benchmark::State& state, DType dtype, int threads, int64_t seq) {
  Fixture& fixture = TheFixture();
  const EncoderModel& model = *fixture.models.at({dtype, threads});
  const std::vector<int32_t> ids = BenchIds(seq, fixture.shape.vocab);
  if (!model.Logits(ids).ok()) {  // warm-up (OpenMP pool, caches)
    state.SkipWithError("Logits failed");
    return;
  }
  using Clock = std::chrono::steady_clock;
  double seconds = 0;
  for (auto _ : state) {
    const Clock::time_point start = Clock::now();
    auto logits = model.Logits(ids);
    seconds += std::chrono::duration<double>(Clock::now() - start).count();
    benchmark::DoNotOptimize(logits);
  }
  const double iterations = static_cast<double>(state.iterations());
  const double gops = fixture.shape.Operations(seq) * iterations / seconds / 1e9;
  const double peak = fixture.peak_gops.at({dtype, threads});
  state.counters["tokens_per_s"] = seq * iterations / seconds;
  state.counters["gops"] = gops;
  state.counters["peak_gops"] = peak;
  state.counters["fraction_of_peak"] = peak > 0 ? gops / peak : 0;
}

int Main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  Fixture& fixture = TheFixture();
  const char* path = std::getenv("SLM_ENCODER_BENCH_MODEL");
  if (path == nullptr) {
    std::cerr << "encoder_bench: set SLM_ENCODER_BENCH_MODEL to a BERT GGUF with context >= 256 "
                 "(tests/bench/run_encoder_bench.sh makes a MiniLM-L6-like one)\n";
    return 2;
  }
  fixture.path = path;
  {
    auto file = workers::GgufFile::Open(fixture.path);
    if (!file.ok()) {
      std::cerr << file.status() << "\n";
      return 1;
    }
    auto hidden = (*file)->GetInt("bert.embedding_length");
    auto layers = (*file)->GetInt("bert.block_count");
    auto ffn = (*file)->GetInt("bert.feed_forward_length");
    auto embd = (*file)->FindTensor("token_embd.weight");
    if (!hidden.ok() || !layers.ok() || !ffn.ok() || !embd.ok()) {
      std::cerr << fixture.path << ": not a BERT GGUF\n";
      return 1;
    }
    fixture.shape = {*hidden, *layers, *ffn, (*embd)->dims[1]};
  }
  const std::vector<DType> dtypes = {DType::kF32, DType::kBF16, DType::kInt8};
  const std::vector<int> thread_counts = {1, 2};
  for (DType dtype : dtypes) {
    for (int threads : thread_counts) {
      auto model = EncoderModel::Load(fixture.path, {dtype, 256, threads});
      if (!model.ok()) {
        std::cerr << "loading " << fixture.path << " as " << kernels::DTypeName(dtype) << ": "
                  << model.status() << "\n";
        return 1;
      }
      fixture.models[{dtype, threads}] = std::move(model).value();
      // MeasurePeakGops creates its Linear before it sets `threads`; setting it here too makes
      // the peak layer's oneDNN primitive use the same thread count it is timed with.
      const int previous_threads = omp_get_max_threads();
      omp_set_num_threads(threads);
      // Best of three windows: on a shared machine a single 0.3 s window is often preempted,
      // and the fastest window is the closest to what the cores can do.
      double peak = 0;
      for (int attempt = 0; attempt < 3; ++attempt) {
        peak = std::max(peak, MeasurePeakGops(dtype, threads));
      }
      omp_set_num_threads(previous_threads);
      fixture.peak_gops[{dtype, threads}] = peak;
      std::cerr << "peak " << kernels::DTypeName(dtype) << " threads=" << threads << ": " << peak
                << " GOP/s\n";
    }
  }
  for (DType dtype : dtypes) {
    for (int threads : thread_counts) {
      for (int64_t seq : {16, 64, 256}) {
        const std::string name = std::string("encoder/") + std::string(kernels::DTypeName(dtype)) +
                                 "/threads:" + std::to_string(threads) +
                                 "/seq:" + std::to_string(seq);
        benchmark::RegisterBenchmark(name.c_str(), BM_Encoder, dtype, threads, seq)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond)
            ->MinTime(0.5);
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace slm::bench

int main(int argc, char** argv) { return slm::bench::Main(argc, argv); }
