// Continuous batching through GenerationEngine on a GGUF decoder, against the model alone.
//
//   python3 tools/convert_decoder.py --random llama --shape '{"vocab_size": 8192, ...}' --out
//   m.gguf generation_engine_bench --model m.gguf [--dtype int8] [--threads 1] [--tokens 64]
//
// Baseline (same run): the same work for one request as a plain loop of DecoderModel::Forward
// (prefill, then batch-1 greedy decode; no engine). Then the engine with 1, 4, 8 and 16 concurrent
// requests of the same length: aggregate output tokens/s and its ratio to the baseline. Ratio ~1.0
// at 1 request shows the engine's overhead (thread hand-off, sampling, detokenizer); above 1 at N
// requests is the batching gain. Speed is printed, never asserted (not a CTest test).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "kernels/dtype.h"
#include "workers/decoder/decoder_model.h"
#include "workers/generation/generation_engine.h"

ABSL_FLAG(std::string, model, "", "GGUF decoder model (required)");
ABSL_FLAG(std::string, dtype, "int8", "weights: f32, bf16, int8");
ABSL_FLAG(std::string, kv_dtype, "bf16", "KV cache: f32, bf16, int8");
ABSL_FLAG(int, threads, 1, "OpenMP threads per Forward");
ABSL_FLAG(int, tokens, 64, "output tokens per request");
ABSL_FLAG(int, prompt, 16, "prompt tokens per request");

namespace {

using slm::workers::DecoderModel;

class SilentDetokenizer final : public slm::workers::Detokenizer {
 public:
  std::unique_ptr<slm::workers::TokenTextStream> NewStream(
      const std::vector<int32_t>&) const override {
    class Stream final : public slm::workers::TokenTextStream {
     public:
      std::string Next(int32_t) override { return ""; }
      std::string Flush() override { return ""; }
    };
    return std::make_unique<Stream>();
  }
  bool IsEndOfGeneration(int32_t) const override { return false; }
};

class CountingSink final : public slm::workers::GenerationSink {
 public:
  void OnChunk(slm::workers::GenerationChunk) override {}
  void OnFinished(const absl::Status& status,
                  const slm::workers::GenerationResult& result) override {
    absl::MutexLock lock(&mutex_);
    done_ = true;
    tokens_ = result.output_tokens;
    if (!status.ok()) std::fprintf(stderr, "request failed: %s\n", status.ToString().c_str());
  }
  bool Cancelled() const override { return false; }
  int Await() {
    absl::MutexLock lock(&mutex_);
    mutex_.Await(absl::Condition(&done_));
    return tokens_;
  }

 private:
  absl::Mutex mutex_;
  bool done_ = false;
  int tokens_ = 0;
};

std::vector<int32_t> Prompt(int length, int seed, int64_t vocab) {
  std::vector<int32_t> prompt;
  for (int i = 0; i < length; ++i)
    prompt.push_back(static_cast<int32_t>((seed * 131 + i * 7919) % vocab));
  return prompt;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  slm::workers::DecoderOptions options;
  options.dtype = *slm::kernels::ParseDType(absl::GetFlag(FLAGS_dtype));
  options.kv_dtype = *slm::kernels::ParseDType(absl::GetFlag(FLAGS_kv_dtype));
  options.threads = absl::GetFlag(FLAGS_threads);
  options.max_batch_tokens = 256 + 16;
  const int tokens = absl::GetFlag(FLAGS_tokens);
  const int prompt_length = absl::GetFlag(FLAGS_prompt);
  options.max_context = prompt_length + tokens + 8;
  auto model = DecoderModel::Load(absl::GetFlag(FLAGS_model), options);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  const int64_t vocab = (*model)->hparams().vocab_size;

  // Baseline: the model alone, one request (prefill + greedy decode); best of 3 (shared machine).
  double baseline = 0;
  for (int repeat = 0; repeat < 3; ++repeat) {
    auto cache = *(*model)->NewSequenceCache(prompt_length + tokens);
    std::vector<float> logits(vocab);
    std::vector<int32_t> prompt = Prompt(prompt_length, 0, vocab);
    const absl::Time start = absl::Now();
    slm::workers::SequenceStep prefill{cache.get(), prompt.data(), prompt_length, false};
    (void)(*model)->Forward({&prefill, 1}, logits.data());
    for (int i = 0; i < tokens - 1; ++i) {
      int32_t next =
          static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      slm::workers::SequenceStep step{cache.get(), &next, 1, false};
      (void)(*model)->Forward({&step, 1}, logits.data());
    }
    baseline = std::max(baseline, tokens / absl::ToDoubleSeconds(absl::Now() - start));
  }
  std::printf(
      "model %s (%s, %lld layers, hidden %lld, vocab %lld), weights %s, KV %s, %d threads\n",
      (*model)->hparams().name.c_str(), (*model)->hparams().architecture.c_str(),
      static_cast<long long>((*model)->hparams().num_layers),
      static_cast<long long>((*model)->hparams().hidden_size), static_cast<long long>(vocab),
      absl::GetFlag(FLAGS_dtype).c_str(), absl::GetFlag(FLAGS_kv_dtype).c_str(), options.threads);
  std::printf("baseline: model alone, one request (prefill %d + decode %d): %.1f tokens/s\n",
              prompt_length, tokens, baseline);
  std::printf("%-10s %14s %18s\n", "requests", "tokens/s", "vs baseline");

  SilentDetokenizer detokenizer;
  for (int requests : {1, 4, 8, 16}) {
    double best = 0;
    for (int repeat = 0; repeat < 3; ++repeat) {
      slm::workers::GenerationEngine::Options engine_options;
      engine_options.max_batch_sequences = 16;
      engine_options.kv_budget_bytes = int64_t{1} << 34;
      engine_options.prefill_chunk_tokens = 256;
      auto engine = slm::workers::GenerationEngine::Create(**model, detokenizer, engine_options);
      if (!engine.ok()) {
        std::fprintf(stderr, "%s\n", engine.status().ToString().c_str());
        return 1;
      }
      std::vector<std::unique_ptr<CountingSink>> sinks;
      const absl::Time start = absl::Now();
      for (int r = 0; r < requests; ++r) {
        sinks.push_back(std::make_unique<CountingSink>());
        slm::workers::GenerationRequest request;
        request.prompt = Prompt(prompt_length, r + 1, vocab);
        request.max_tokens = tokens;
        if (!(*engine)->Submit(std::move(request), sinks.back().get()).ok()) return 1;
      }
      int total = 0;
      for (auto& sink : sinks) total += sink->Await();
      best = std::max(best, total / absl::ToDoubleSeconds(absl::Now() - start));
    }
    std::printf("%-10d %14.1f %17.2fx\n", requests, best, best / baseline);
  }
  return 0;
}
