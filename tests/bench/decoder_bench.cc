// decoder_bench: the issue-3 generation matrix in one run. For each model file and thread count:
// load time per layer type, prefill tokens/s (128 and 512 tokens) as a fraction of the int8
// matmul peak, decode tokens/s at batch 1, 4 and 16 with batch 1 as a fraction of the read
// bandwidth roofline, and the batch-16 / batch-1 speed-up; the bandwidth and the int8 peak are
// measured in the same run for each thread count. tests/bench/run_decoder_bench.sh builds the
// random-weight models (SmolLM2-135M, Qwen2.5-0.5B, TinyLlama-1.1B shapes) and runs it:
//
//   OMP_WAIT_POLICY=PASSIVE decoder_bench --models /tmp/a.gguf,/tmp/b.gguf --dtype int8
//       [--kv bf16] [--threads 1,2] [--steps 32] [--compare_gemv_rows 8] [--decode_rounds 2]
//
// Roofline (decode): a batch-1 step streams every weight once, so its floor is weight bytes /
// bandwidth (weight bytes = matrix parameters x bytes per element of the in-memory type; scales
// and the KV cache are left out, so the fraction slightly flatters the model).
// Prefill: int8 ops/s = 2 x layer matrix parameters x prompt tokens / time (the head runs on the
// last token only; attention is not counted) over the int8 matmul peak (tests/bench/peak.h).
// --compare_gemv_rows R: decode batches above R are also timed with the packed GEMV limited to
// R rows (SetDecoderLinearGemvRowLimit; above it oneDNN runs, as before the 16-row kernels),
// alternating with the default on the same loaded model: a before/after in the same run.
// --decode_rounds N: each other decode figure is the best of N runs (default 2).
// --prompts 128,512 and --batches 1,4,16 (the defaults) choose the figures; fewer serve profiling
// (e.g. `perf record ... --prompts none --batches 16`; a ratio needs batch 1).
// --profile_rounds R: each decode figure repeats its steps R times after one prefill, and each
// prefill figure is the best of at least R runs (for perf).
// --attention_products bf16|f32: with a bf16 KV cache, attention multiplies in bf16 (default,
// where the CPU has AVX512_BF16) or widens to f32 (the before of a before/after).
// Times with 1 thread are the thread's CPU time (a shared machine's lost time slices do not
// count), else wall time. A prefill figure is the best of 2 runs and of as many more as fit in
// about 0.5 s (up to 20); models above 500 M parameters get one prefill repetition at least and
// half the decode steps. Not a CTest test: speed is measured here, never asserted.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_split.h"
#include "kernels/dtype.h"
#include "kernels/gemv.h"
#include "kernels/gemv_kernels.h"
#include "kernels/kv_attention.h"
#include "tests/bench/bandwidth.h"
#include "tests/bench/peak.h"
#include "workers/decoder/decoder_model.h"
#include "workers/generation/generation_engine.h"

namespace {

using slm::workers::DecoderModel;
using slm::workers::KvCache;
using slm::workers::SequenceStep;

void Check(const absl::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    std::exit(1);
  }
}

double BytesPerElement(slm::kernels::DType dtype) {
  switch (dtype) {
    case slm::kernels::DType::kF32:
      return 4;
    case slm::kernels::DType::kBF16:
      return 2;
    case slm::kernels::DType::kInt8:
      return 1;
  }
  return 4;
}

double ProcessCpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

struct Row {  // one line of the closing summary table
  std::string model;
  int threads = 0;
  double bandwidth = 0, peak = 0;
  double prefill[2] = {0, 0}, prefill_fraction[2] = {0, 0};
  double decode[3] = {0, 0, 0};
  double roofline = 0;
  double before16 = 0;  // batch 16 with the GEMV row limit of --compare_gemv_rows
  double load_max_ms = 0;
};

// Decode `steps` steps of `batch` sequences (each prefilled with 16 tokens) and returns tokens/s.
// --profile_rounds R > 1 repeats the steps R times after the one prefill (caches truncated back
// to the prompt between repeats), so that a profile of the run is mostly decode steps.
int g_profile_rounds = 1;
// --prefill_chunk N: prompts go through Forward N tokens at a time (0: whole), by default as
// the worker's GenerationEngine runs them (Options::prefill_chunk_tokens).
int g_prefill_chunk = slm::workers::GenerationEngine::Options{}.prefill_chunk_tokens;
double DecodeTokensPerSecond(const DecoderModel& model, int batch, int steps, bool cpu_time) {
  const auto& hp = model.hparams();
  std::vector<std::unique_ptr<KvCache>> caches;
  std::vector<int32_t> next(batch);
  std::vector<float> logits(static_cast<size_t>(batch) * hp.vocab_size);
  std::vector<SequenceStep> prefill;
  std::vector<int32_t> prompt(16);
  for (int i = 0; i < 16; ++i) prompt[i] = (i * 31 + 5) % hp.vocab_size;
  for (int b = 0; b < batch; ++b) {
    auto cache = model.NewSequenceCache(16 + steps + 1);
    Check(cache.status());
    caches.push_back(std::move(*cache));
    prefill.push_back({caches.back().get(), prompt.data(), 16, false});
  }
  Check(model.Forward(prefill, logits.data()));
  std::vector<SequenceStep> decode;
  for (int b = 0; b < batch; ++b) {
    next[b] = (b * 101 + 3) % hp.vocab_size;
    decode.push_back({caches[b].get(), &next[b], 1, false});
  }
  const double start = slm::bench::BenchClockSeconds(cpu_time);
  for (int round = 0; round < g_profile_rounds; ++round) {
    for (auto& cache : caches) cache->Truncate(16);
    for (int s = 0; s < steps; ++s) Check(model.Forward(decode, logits.data()));
  }
  return static_cast<double>(batch) * steps * g_profile_rounds /
         (slm::bench::BenchClockSeconds(cpu_time) - start);
}

struct Figures {  // what --prompts and --batches ask for
  std::vector<int> prompts = {128, 512};
  std::vector<int> batches = {1, 4, 16};
};

Row RunModel(const std::string& path, const slm::workers::DecoderOptions& base, int threads,
             int base_steps, int compare_rows, int decode_rounds, double bandwidth, double peak,
             const Figures& figures) {
  slm::workers::DecoderOptions options = base;
  options.threads = threads;
  const bool cpu_time = threads == 1;
  const double load_cpu_start = ProcessCpuSeconds();
  auto loaded = DecoderModel::Load(path, options);
  const double load_cpu_ms = 1e3 * (ProcessCpuSeconds() - load_cpu_start);
  Check(loaded.status());
  const DecoderModel& model = **loaded;
  const auto& hp = model.hparams();
  const auto& load = model.load_stats();
  const double q_dim = static_cast<double>(hp.num_heads * hp.head_dim);
  const double qkv_dim = static_cast<double>((hp.num_heads + 2 * hp.num_kv_heads) * hp.head_dim);
  const double h = static_cast<double>(hp.hidden_size), f = static_cast<double>(hp.ffn_size);
  const double layer_parameters =
      static_cast<double>(hp.num_layers) * (qkv_dim * h + h * q_dim + 2 * f * h + h * f);
  const double parameters = layer_parameters + static_cast<double>(hp.vocab_size) * h;
  const double bytes_per_token = parameters * BytesPerElement(options.dtype);
  const bool large = parameters > 5e8;
  const int repeats = std::max(large ? 1 : 2, g_profile_rounds);
  const int steps = large ? std::max(4, base_steps / 2) : base_steps;
  std::printf(
      "\nmodel %s: %s, %lld layers, hidden %lld, ffn %lld, heads %lld/%lld, vocab %lld, "
      "%.0f M parameters; %d thread(s)\n",
      path.c_str(), hp.architecture.c_str(), (long long)hp.num_layers, (long long)hp.hidden_size,
      (long long)hp.ffn_size, (long long)hp.num_heads, (long long)hp.num_kv_heads,
      (long long)hp.vocab_size, parameters / 1e6, threads);
  std::printf(
      "load: total %.0f ms wall, %.0f ms CPU; per layer (thread CPU): read+dequantize %.2f ms, "
      "prepare qkv %.2f ms, attn_output %.2f ms, gate_up %.2f ms, down %.2f ms; output head "
      "%.2f ms; prepared weights %.1f MB\n",
      load.total_ms, load_cpu_ms, load.read_ms_per_layer, load.qkv_ms_per_layer,
      load.attn_output_ms_per_layer, load.gate_up_ms_per_layer, load.down_ms_per_layer,
      load.output_head_ms, load.weight_bytes / 1e6);
  Row row;
  row.model = path.substr(path.find_last_of('/') + 1);
  row.threads = threads;
  row.bandwidth = bandwidth;
  row.peak = peak;
  row.load_max_ms = std::max({load.qkv_ms_per_layer, load.attn_output_ms_per_layer,
                              load.gate_up_ms_per_layer, load.down_ms_per_layer});
  std::printf("weights streamed per decode step %.1f MB -> roofline %.1f tokens/s at batch 1\n",
              bytes_per_token / 1e6, bandwidth * 1e9 / bytes_per_token);

  for (int p = 0; p < 2; ++p) {
    const int prompt = p == 0 ? 128 : 512;
    if (prompt > model.options().max_context ||
        std::find(figures.prompts.begin(), figures.prompts.end(), prompt) ==
            figures.prompts.end()) {
      continue;
    }
    auto cache = model.NewSequenceCache(prompt);
    Check(cache.status());
    std::vector<int32_t> tokens(prompt);
    for (int i = 0; i < prompt; ++i) tokens[i] = (i * 7919 + 13) % hp.vocab_size;
    std::vector<float> logits(hp.vocab_size);
    double best = 1e30;
    const int chunk = g_prefill_chunk > 0 ? std::min(g_prefill_chunk, prompt) : prompt;
    // Best of `repeats` runs and of as many more as fit in about half a second (up to 20): a
    // 28 ms SmolLM2 prefill at 2 threads varied from 50% to 62% of the peak as best of 2.
    const double window_start = slm::bench::BenchClockSeconds(false);
    for (int repeat = 0; repeat < repeats ||
                         (repeat < 20 && slm::bench::BenchClockSeconds(false) - window_start < 0.5);
         ++repeat) {
      (*cache)->Clear();
      const double start = slm::bench::BenchClockSeconds(cpu_time);
      for (int first = 0; first < prompt; first += chunk) {
        SequenceStep step{cache->get(), tokens.data() + first, std::min(chunk, prompt - first),
                          false};
        Check(model.Forward({&step, 1}, logits.data()));
      }
      best = std::min(best, slm::bench::BenchClockSeconds(cpu_time) - start);
    }
    row.prefill[p] = prompt / best;
    const double gops = 2.0 * layer_parameters * prompt / best / 1e9;
    row.prefill_fraction[p] = gops / peak;
    std::printf("prefill %4d tokens: %8.1f tokens/s, %.0f int8 GOP/s = %.0f%% of the peak\n",
                prompt, row.prefill[p], gops, 100.0 * row.prefill_fraction[p]);
  }

  const int batches[3] = {1, 4, 16};
  const int64_t default_limit = slm::kernels::DecoderLinearGemvRowLimit();
  for (int b = 0; b < 3; ++b) {
    const int batch = batches[b];
    if (std::find(figures.batches.begin(), figures.batches.end(), batch) == figures.batches.end()) {
      continue;
    }
    if (compare_rows > 0 && batch > compare_rows) {
      // Alternate the default and the limited GEMV; best of 2 each.
      double after = 0, before = 0;
      for (int round = 0; round < 2; ++round) {
        slm::kernels::SetDecoderLinearGemvRowLimit(compare_rows);
        before = std::max(before, DecodeTokensPerSecond(model, batch, steps, cpu_time));
        slm::kernels::SetDecoderLinearGemvRowLimit(default_limit);
        after = std::max(after, DecodeTokensPerSecond(model, batch, steps, cpu_time));
      }
      row.decode[b] = after;
      if (batch == 16) row.before16 = before;
      std::printf(
          "decode batch %2d: %8.1f tokens/s (%.2fx batch 1); GEMV limited to %d rows: "
          "%8.1f tokens/s (%.2fx batch 1); 16-row GEMV / limited: %.2fx\n",
          batch, after, after / row.decode[0], compare_rows, before, before / row.decode[0],
          after / before);
      continue;
    }
    // Best of `decode_rounds` (a 32-step batch-1 run of a small model is ~0.15 s, and single
    // windows of it varied by +-20% on the shared machine).
    for (int round = 0; round < decode_rounds; ++round) {
      row.decode[b] = std::max(row.decode[b], DecodeTokensPerSecond(model, batch, steps, cpu_time));
    }
    std::printf("decode batch %2d: %8.1f tokens/s (%.2fx batch 1)", batch, row.decode[b],
                row.decode[b] / row.decode[0]);
    if (batch == 1) {
      row.roofline = row.decode[0] * bytes_per_token / (bandwidth * 1e9);
      std::printf(", %.0f%% of the bandwidth roofline", 100.0 * row.roofline);
    }
    std::printf("\n");
  }
  std::fflush(stdout);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  absl::flat_hash_map<std::string, std::string> flags = {
      {"--models", ""},
      {"--model", ""},
      {"--dtype", "int8"},
      {"--kv", "bf16"},
      {"--threads", "1"},
      {"--steps", "32"},
      {"--compare_gemv_rows", "0"},
      {"--decode_rounds", "2"},
      {"--prompts", "128,512"},
      {"--batches", "1,4,16"},
      {"--attention_products", "bf16"},
      {"--profile_rounds", "1"},
      {"--gemv_tiled", "1"},
      {"--prefill_chunk", std::to_string(g_prefill_chunk)}};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!flags.contains(argv[i])) {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
    flags[argv[i]] = argv[i + 1];
  }
  std::vector<std::string> models;
  for (absl::string_view path :
       absl::StrSplit(flags["--models"] + "," + flags["--model"], ',', absl::SkipEmpty())) {
    models.emplace_back(path);
  }
  if (models.empty()) {
    std::fprintf(stderr, "usage: decoder_bench --models A.gguf[,B.gguf...] [--threads 1,2]\n");
    return 2;
  }
  std::vector<int> thread_counts;
  for (absl::string_view value : absl::StrSplit(flags["--threads"], ',', absl::SkipEmpty())) {
    thread_counts.push_back(std::atoi(std::string(value).c_str()));
    if (thread_counts.back() < 1) {
      std::fprintf(stderr, "--threads: expected positive counts, got %s\n",
                   flags["--threads"].c_str());
      return 2;
    }
  }
  if (flags["--attention_products"] != "bf16" && flags["--attention_products"] != "f32") {
    std::fprintf(stderr, "--attention_products: bf16 or f32\n");
    return 2;
  }
  slm::kernels::internal::SetBf16AttentionProducts(flags["--attention_products"] == "bf16");
  slm::kernels::internal::SetGemvTiledKernels(flags["--gemv_tiled"] != "0");
  Figures figures;
  for (auto [flag, list] :
       {std::pair{"--prompts", &figures.prompts}, std::pair{"--batches", &figures.batches}}) {
    list->clear();
    for (absl::string_view value : absl::StrSplit(flags[flag], ',', absl::SkipEmpty())) {
      list->push_back(std::atoi(std::string(value).c_str()));
    }
  }
  slm::workers::DecoderOptions options;
  auto dtype = slm::kernels::ParseDType(flags["--dtype"]);
  auto kv = slm::kernels::ParseDType(flags["--kv"]);
  Check(dtype.status());
  Check(kv.status());
  options.dtype = *dtype;
  options.kv_dtype = *kv;
  options.max_batch_tokens = 512;
  const int steps = std::atoi(flags["--steps"].c_str());
  const int compare_rows = std::atoi(flags["--compare_gemv_rows"].c_str());
  const int decode_rounds = std::max(1, std::atoi(flags["--decode_rounds"].c_str()));
  g_profile_rounds = std::max(1, std::atoi(flags["--profile_rounds"].c_str()));
  g_prefill_chunk = std::max(0, std::atoi(flags["--prefill_chunk"].c_str()));
  const int engine_chunk = slm::workers::GenerationEngine::Options{}.prefill_chunk_tokens;
  const std::string prefill =
      g_prefill_chunk == 0
          ? std::string("whole")
          : "in chunks of " + std::to_string(g_prefill_chunk) + " tokens" +
                (g_prefill_chunk == engine_chunk ? " (as the worker's GenerationEngine by default)"
                                                 : "");
  std::printf("weights %s, KV %s, prompts prefilled %s\n", flags["--dtype"].c_str(),
              flags["--kv"].c_str(), prefill.c_str());

  std::vector<Row> rows;
  slm::bench::BandwidthProbe probe;
  for (int threads : thread_counts) {
    const double bandwidth = probe.Measure(threads, 0.5);
    const double peak =
        slm::bench::MeasurePeakGops(slm::kernels::DType::kInt8, threads, threads == 1);
    std::printf("\n== %d thread(s): read bandwidth %.1f GB/s, int8 matmul peak %.0f GOP/s\n",
                threads, bandwidth, peak);
    for (const std::string& path : models) {
      rows.push_back(RunModel(path, options, threads, steps, compare_rows, decode_rounds, bandwidth,
                              peak, figures));
    }
  }

  std::printf(
      "\n| model | threads | prefill 128 tok/s (%% of int8 peak) | prefill 512 | decode b=1 tok/s "
      "(%% of roofline) | b=4 | b=16 | b=16 / b=1 | b=16 GEMV<=%d rows (x b=1) | prepare, "
      "slowest layer type |\n|---|---|---|---|---|---|---|---|---|---|\n",
      compare_rows);
  for (const Row& r : rows) {
    std::printf(
        "| %s | %d | %.0f (%.0f%%) | %.0f (%.0f%%) | %.1f (%.0f%%) | %.1f | %.1f | %.2fx | ",
        r.model.c_str(), r.threads, r.prefill[0], 100 * r.prefill_fraction[0], r.prefill[1],
        100 * r.prefill_fraction[1], r.decode[0], 100 * r.roofline, r.decode[1], r.decode[2],
        r.decode[2] / r.decode[0]);
    if (r.before16 > 0) {
      std::printf("%.1f (%.2fx) | ", r.before16, r.before16 / r.decode[0]);
    } else {
      std::printf("- | ");
    }
    std::printf("%.1f ms |\n", r.load_max_ms);
  }
  for (int threads : thread_counts) {
    for (const Row& r : rows) {
      if (r.threads == threads) {
        std::printf("%d thread(s): bandwidth %.1f GB/s, int8 peak %.0f GOP/s\n", threads,
                    r.bandwidth, r.peak);
        break;
      }
    }
  }
  return 0;
}
