// decoder_bench: load time per layer type, prefill and decode tokens/s of a DecoderModel, with
// decode reported as a fraction of the memory-bandwidth roofline measured in the same run.
//
//   tools/convert_decoder.py --random llama --shape '{"vocab_size": 49152, "hidden_size": 576,
//       "num_layers": 30, "num_heads": 9, "num_kv_heads": 3, "ffn_size": 1536,
//       "context_length": 2048}' --out /tmp/smollm2-135m-random.gguf
//   OMP_WAIT_POLICY=PASSIVE decoder_bench --model /tmp/smollm2-135m-random.gguf --dtype int8
//       [--kv bf16] [--threads 1] [--steps 32]
//
// Roofline: a batch-1 decode step streams every weight once, so its floor is weight bytes /
// bandwidth (weight bytes = parameters x bytes per element of the in-memory type; scales and
// the KV cache are left out, so the fraction slightly flatters the model). Times with 1 thread
// are the thread's CPU time (a shared machine's lost time slices do not count), else wall time.
// Not a CTest test: speed is measured here, never asserted.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "kernels/dtype.h"
#include "tests/bench/bandwidth.h"
#include "workers/decoder/decoder_model.h"

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

}  // namespace

int main(int argc, char** argv) {
  absl::flat_hash_map<std::string, std::string> flags = {{"--model", ""},
                                                         {"--dtype", "int8"},
                                                         {"--kv", "bf16"},
                                                         {"--threads", "1"},
                                                         {"--steps", "32"}};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!flags.contains(argv[i])) {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
    flags[argv[i]] = argv[i + 1];
  }
  slm::workers::DecoderOptions options;
  auto dtype = slm::kernels::ParseDType(flags["--dtype"]);
  auto kv = slm::kernels::ParseDType(flags["--kv"]);
  Check(dtype.status());
  Check(kv.status());
  options.dtype = *dtype;
  options.kv_dtype = *kv;
  options.threads = std::atoi(flags["--threads"].c_str());
  options.max_batch_tokens = 512;
  const int threads = options.threads;
  const int steps = std::atoi(flags["--steps"].c_str());
  const bool cpu_time = threads == 1;

  auto process_cpu_seconds = [] {
    rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
           1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
  };
  const double load_cpu_start = process_cpu_seconds();
  auto loaded = DecoderModel::Load(flags["--model"], options);
  const double load_cpu_ms = 1e3 * (process_cpu_seconds() - load_cpu_start);
  Check(loaded.status());
  const DecoderModel& model = **loaded;
  const auto& hp = model.hparams();
  const auto& load = model.load_stats();
  std::printf(
      "model %s: %s, %lld layers, hidden %lld, ffn %lld, heads %lld/%lld, vocab %lld; "
      "weights %s, KV %s, %d thread(s)\n",
      flags["--model"].c_str(), hp.architecture.c_str(), (long long)hp.num_layers,
      (long long)hp.hidden_size, (long long)hp.ffn_size, (long long)hp.num_heads,
      (long long)hp.num_kv_heads, (long long)hp.vocab_size, flags["--dtype"].c_str(),
      flags["--kv"].c_str(), threads);
  std::printf(
      "load: total %.0f ms wall, %.0f ms CPU; per layer (thread CPU): read+dequantize %.2f ms, "
      "prepare "
      "qkv %.2f ms, "
      "attn_output %.2f ms, gate_up %.2f ms, down %.2f ms; output head %.2f ms; "
      "prepared weights %.1f MB\n",
      load.total_ms, load_cpu_ms, load.read_ms_per_layer, load.qkv_ms_per_layer,
      load.attn_output_ms_per_layer, load.gate_up_ms_per_layer, load.down_ms_per_layer,
      load.output_head_ms, load.weight_bytes / 1e6);

  const double q_dim = static_cast<double>(hp.num_heads * hp.head_dim);
  const double qkv_dim = static_cast<double>((hp.num_heads + 2 * hp.num_kv_heads) * hp.head_dim);
  const double h = static_cast<double>(hp.hidden_size), f = static_cast<double>(hp.ffn_size);
  const double parameters =
      static_cast<double>(hp.num_layers) * (qkv_dim * h + h * q_dim + 2 * f * h + h * f) +
      static_cast<double>(hp.vocab_size) * h;
  const double bytes_per_token = parameters * BytesPerElement(options.dtype);
  slm::bench::BandwidthProbe probe;
  const double bandwidth = probe.Measure(threads, 0.5);
  std::printf(
      "read bandwidth %.1f GB/s (%d thread(s)); weights streamed per decode step %.1f MB "
      "-> roofline %.1f tokens/s at batch 1\n",
      bandwidth, threads, bytes_per_token / 1e6, bandwidth * 1e9 / bytes_per_token);

  for (int prompt : {128, 512}) {
    if (prompt > model.options().max_context) continue;
    auto cache = model.NewSequenceCache(prompt);
    Check(cache.status());
    std::vector<int32_t> tokens(prompt);
    for (int i = 0; i < prompt; ++i) tokens[i] = (i * 7919 + 13) % hp.vocab_size;
    std::vector<float> logits(hp.vocab_size);
    SequenceStep step{cache->get(), tokens.data(), prompt, false};
    double best = 1e30;
    for (int repeat = 0; repeat < 2; ++repeat) {
      (*cache)->Clear();
      const double start = slm::bench::BenchClockSeconds(cpu_time);
      Check(model.Forward({&step, 1}, logits.data()));
      best = std::min(best, slm::bench::BenchClockSeconds(cpu_time) - start);
    }
    std::printf("prefill %4d tokens: %8.1f tokens/s\n", prompt, prompt / best);
  }

  double single = 0;
  for (int batch : {1, 4, 16}) {
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
    for (int s = 0; s < steps; ++s) Check(model.Forward(decode, logits.data()));
    const double seconds = slm::bench::BenchClockSeconds(cpu_time) - start;
    const double tokens_per_second = batch * steps / seconds;
    if (batch == 1) single = tokens_per_second;
    std::printf("decode batch %2d: %8.1f tokens/s (%.2fx batch 1)", batch, tokens_per_second,
                tokens_per_second / single);
    if (batch == 1) {
      std::printf(", %.0f%% of the bandwidth roofline",
                  100.0 * tokens_per_second * bytes_per_token / (bandwidth * 1e9));
    }
    std::printf("\n");
  }
  return 0;
}
