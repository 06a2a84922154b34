// GenerationEngine: continuous batching for one decoder model. One executor thread runs steps
// over every active sequence (one DecoderModel::Forward per step carrying all sequences' rows:
// a decode token each, plus prefill chunks of new prompts), and new sequences join between steps.
//
//   GenerationEngine::Options options;
//   options.max_batch_sequences = 8;
//   options.kv_budget_bytes = 512 << 20;
//   GenerationEngine engine(model, detokenizer, options);   // both must outlive the engine
//   GenerationRequest request;
//   request.prompt = tokenizer.Encode(prompt, true);
//   request.max_tokens = 64;
//   SLM_RETURN_IF_ERROR(engine.Submit(std::move(request), sink));  // sink gets chunks, then done
//
// Admission: a request reserves KV-cache for min(prompt + max_tokens, context) tokens. A
// sequence joins the batch when fewer than max_batch_sequences run and its reservation fits in
// kv_budget_bytes (first come, first served); otherwise it waits in a queue of at most
// max_queue_depth requests, beyond which Submit answers RESOURCE_EXHAUSTED.
//
// Cancellation: between steps the engine asks each sink whether its caller went away
// (Cancelled) and checks each request's deadline; such a sequence stops at once (queued or
// running), its cache is freed, and its sink gets OnFinished with CANCELLED or DEADLINE_EXCEEDED.
//
// Ownership and threading: Submit hands the request to the engine; the sink is borrowed and must
// stay valid until its OnFinished, which is called exactly once for every accepted request (never
// for a refused one). Sink callbacks run on the executor thread and must not block (a gRPC
// reactor queues a write and returns). Submit and load() may be called from any thread. The
// destructor finishes every remaining request with CANCELLED ("worker stopping"), then joins.
#ifndef SLM_WORKERS_GENERATION_GENERATION_ENGINE_H_
#define SLM_WORKERS_GENERATION_GENERATION_ENGINE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "workers/decoder/decoder_model.h"
#include "workers/generation/sampler.h"

namespace slm::workers {

// Token ids -> text for one sequence, releasing only complete UTF-8 (a tokenizer DecodeStream).
class TokenTextStream {
 public:
  virtual ~TokenTextStream() = default;
  virtual std::string Next(int32_t token) = 0;
  virtual std::string Flush() = 0;
};

// What the engine needs from a tokenizer. Thread-safety: called from the executor thread only,
// but must be safe to share with other threads that only read it.
class Detokenizer {
 public:
  virtual ~Detokenizer() = default;
  // A stream for the text that follows `prompt` (a tokenizer may decide, e.g., whether the
  // first generated piece keeps its leading space from the prompt's last token).
  virtual std::unique_ptr<TokenTextStream> NewStream(const std::vector<int32_t>& prompt) const = 0;
  virtual bool IsEndOfGeneration(int32_t token) const = 0;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;  // token ids, not empty
  SamplingConfig sampling;      // must pass ValidateSamplingConfig
  int32_t max_tokens = 256;     // >= 1
  std::vector<std::string> stop;
  bool want_logprobs = false;
  absl::Time deadline = absl::InfiniteFuture();
};

// New output of one step for one sequence.
struct GenerationChunk {
  std::string text;             // may be empty (incomplete UTF-8, or text held for stop strings)
  std::vector<float> logprobs;  // one per token generated in this step (when asked)
};

struct GenerationResult {
  std::string finish_reason;  // "stop", "length", "cancelled" (also on errors: "")
  int32_t input_tokens = 0;
  int32_t output_tokens = 0;
  absl::Duration queue_time;           // Submit -> joined the batch
  absl::Duration time_to_first_token;  // Submit -> first generated token
  absl::Duration decode_time;          // first generated token -> done
};

class GenerationSink {
 public:
  virtual ~GenerationSink() = default;
  virtual void OnChunk(GenerationChunk chunk) = 0;
  // Last call. OK with finish_reason "stop" or "length"; CANCELLED (finish_reason "cancelled")
  // when the caller went away or the engine stops; DEADLINE_EXCEEDED; or the model's error.
  virtual void OnFinished(const absl::Status& status, const GenerationResult& result) = 0;
  // Polled between steps; true stops the sequence. Must be cheap and thread-safe.
  virtual bool Cancelled() const = 0;
};

// A snapshot of the engine's load (for load reports and gauges).
struct GenerationLoad {
  int32_t queue_depth = 0;
  int32_t active_sequences = 0;
  int64_t kv_bytes_used = 0;
  int64_t kv_budget_bytes = 0;
  int32_t max_batch_sequences = 0;
  int32_t max_queue_depth = 0;
};

// Called on the executor thread after every step (metrics). Must not block.
class GenerationObserver {
 public:
  virtual ~GenerationObserver() = default;
  virtual void OnStep(int32_t sequences, int32_t rows, absl::Duration elapsed,
                      const GenerationLoad& load) = 0;
  // After a sequence joins or leaves (so gauges drop to 0 when the last one leaves).
  virtual void OnLoadChanged(const GenerationLoad& load) = 0;
};

class GenerationEngine {
 public:
  struct Options {
    int32_t max_batch_sequences = 8;
    int64_t kv_budget_bytes = int64_t{256} << 20;
    int32_t max_queue_depth = 64;
    // Prompt tokens of one sequence per step; the rows of a step never exceed the model's
    // max_batch_tokens.
    int32_t prefill_chunk_tokens = 256;
    // A prompt longer than the context (less room for one generated token): keep its last tokens
    // (true) or refuse it with INVALID_ARGUMENT (false).
    bool truncate_long_prompts = false;
    std::string name = "generation";  // for messages
  };

  // InvalidArgument naming the option when it cannot work with this model (a budget too small
  // for one token, more sequences than the model's max_batch_tokens).
  static absl::StatusOr<std::unique_ptr<GenerationEngine>> Create(
      const DecoderModel& model, const Detokenizer& detokenizer, Options options,
      GenerationObserver* observer = nullptr);
  ~GenerationEngine();
  GenerationEngine(const GenerationEngine&) = delete;
  GenerationEngine& operator=(const GenerationEngine&) = delete;

  // Validates and queues. INVALID_ARGUMENT (empty prompt, token outside the vocabulary,
  // max_tokens < 1, bad sampling settings, prompt too long); RESOURCE_EXHAUSTED (queue full).
  absl::Status Submit(GenerationRequest request, GenerationSink* sink);

  GenerationLoad load() const;
  const Options& options() const { return options_; }

 private:
  struct Sequence;
  GenerationEngine(const DecoderModel& model, const Detokenizer& detokenizer, Options options,
                   GenerationObserver* observer);
  void Loop();
  // Finishes queued requests whose caller went away; moves what fits into active_.
  void Admit();
  // One Forward over every active sequence, then sampling; finished sequences leave.
  void Step();
  // Ends `sequence`: releases its reservation and cache, then reports OnFinished.
  void Finish(Sequence& sequence, const absl::Status& status, const std::string& reason);
  // Samples the next token from `logits`; true when the sequence finished.
  bool ProcessToken(Sequence& sequence, const float* logits);
  // CANCELLED or DEADLINE_EXCEEDED when the caller went away or the deadline passed.
  absl::Status StopReason(const Sequence& sequence, absl::Time now) const;

  const DecoderModel& model_;
  const Detokenizer& detokenizer_;
  const Options options_;
  GenerationObserver* const observer_;
  const int64_t kv_bytes_per_token_;
  const int64_t max_context_;

  mutable absl::Mutex mutex_;
  std::deque<std::unique_ptr<Sequence>> queue_ ABSL_GUARDED_BY(mutex_);
  int32_t active_count_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t kv_bytes_used_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;

  // Executor thread only.
  std::vector<std::unique_ptr<Sequence>> active_;
  std::vector<float> logits_;
  std::thread thread_;
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_GENERATION_GENERATION_ENGINE_H_
