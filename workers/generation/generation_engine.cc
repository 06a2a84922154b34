#include "workers/generation/generation_engine.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "workers/generation/stop_matcher.h"

namespace slm::workers {

struct GenerationEngine::Sequence {
  GenerationRequest request;
  GenerationSink* sink = nullptr;
  absl::Time submitted;
  absl::Time joined;
  absl::Time first_token;
  int64_t capacity_tokens = 0;  // the KV reservation
  int64_t reserved_bytes = 0;
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<TokenTextStream> text;
  std::unique_ptr<StopMatcher> stop;
  std::vector<int32_t> history;  // prompt, then generated tokens (repetition penalty)
  size_t prefilled = 0;          // prompt tokens in the cache
  int32_t generated = 0;
  int32_t next_token = -1;  // the last generated token, fed by the next decode step
  bool done = false;
};

absl::StatusOr<std::unique_ptr<GenerationEngine>> GenerationEngine::Create(
    const DecoderModel& model, const Detokenizer& detokenizer, Options options,
    GenerationObserver* observer) {
  const int64_t max_rows = model.options().max_batch_tokens;
  auto error = [&options](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(options.name, ": ", what));
  };
  if (options.max_batch_sequences < 1 || options.max_batch_sequences > max_rows) {
    return error(absl::StrCat("max_batch_sequences: expected 1..", max_rows,
                              " (the model's max_batch_tokens), got ",
                              options.max_batch_sequences));
  }
  if (options.max_queue_depth < 0) {
    return error(absl::StrCat("max_queue_depth: expected >= 0, got ", options.max_queue_depth));
  }
  if (options.prefill_chunk_tokens < 1) {
    return error(
        absl::StrCat("prefill_chunk_tokens: expected >= 1, got ", options.prefill_chunk_tokens));
  }
  const int64_t per_token = model.KvBytesPerToken();
  if (per_token <= 0 || options.kv_budget_bytes < 2 * per_token) {
    return error(absl::StrCat("kv_budget_bytes: ", options.kv_budget_bytes,
                              " bytes cannot hold two tokens of this model's KV cache (", per_token,
                              " bytes per token)"));
  }
  return std::unique_ptr<GenerationEngine>(
      new GenerationEngine(model, detokenizer, std::move(options), observer));
}

GenerationEngine::GenerationEngine(const DecoderModel& model, const Detokenizer& detokenizer,
                                   Options options, GenerationObserver* observer)
    : model_(model),
      detokenizer_(detokenizer),
      options_(std::move(options)),
      observer_(observer),
      kv_bytes_per_token_(model.KvBytesPerToken()),
      max_context_(model.options().max_context) {
  logits_.resize(static_cast<size_t>(options_.max_batch_sequences) * model_.hparams().vocab_size);
  thread_ = std::thread([this] { Loop(); });
}

GenerationEngine::~GenerationEngine() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  thread_.join();
}

absl::Status GenerationEngine::Submit(GenerationRequest request, GenerationSink* sink) {
  const int64_t vocab_size = model_.hparams().vocab_size;
  if (request.prompt.empty()) {
    return absl::InvalidArgumentError("prompt: empty (it must have at least one token)");
  }
  for (size_t i = 0; i < request.prompt.size(); ++i) {
    if (request.prompt[i] < 0 || request.prompt[i] >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt: token ", i, " is ", request.prompt[i],
                                                     ", outside [0, ", vocab_size, ")"));
    }
  }
  if (request.max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.max_tokens: expected >= 1, got ", request.max_tokens));
  }
  if (absl::Status valid = ValidateSamplingConfig(request.sampling); !valid.ok()) return valid;
  // The longest sequence this request may hold: the context, and what the KV budget can hold.
  const int64_t limit = std::min(max_context_, options_.kv_budget_bytes / kv_bytes_per_token_);
  const int64_t prompt_tokens = static_cast<int64_t>(request.prompt.size());
  if (prompt_tokens > limit) {
    if (!options_.truncate_long_prompts) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt: ", prompt_tokens, " tokens exceed the ", limit,
                       " tokens this worker can hold (context ", max_context_, ", KV budget ",
                       options_.kv_budget_bytes, " bytes)"));
    }
    // Keep the prompt's end and leave room for the reply: up to max_tokens, at most half of
    // what the sequence may hold (a long prompt keeps at least its last half).
    const int64_t reply_room = std::max<int64_t>(
        1, std::min<int64_t>(request.max_tokens, limit / 2));
    const int64_t keep = std::max<int64_t>(1, limit - reply_room);
    request.prompt.erase(request.prompt.begin(), request.prompt.end() - keep);
  }
  if (request.sampling.seed == 0) request.sampling.seed = std::random_device()() | 1ull << 40;

  auto sequence = std::make_unique<Sequence>();
  sequence->submitted = absl::Now();
  sequence->capacity_tokens = std::min<int64_t>(
      limit, static_cast<int64_t>(request.prompt.size()) + request.max_tokens - 1);
  sequence->reserved_bytes = sequence->capacity_tokens * kv_bytes_per_token_;
  sequence->sink = sink;
  sequence->request = std::move(request);
  absl::MutexLock lock(&mutex_);
  if (stopping_) return absl::UnavailableError(absl::StrCat(options_.name, ": stopping"));
  if (static_cast<int32_t>(queue_.size()) >= options_.max_queue_depth &&
      !(queue_.empty() && active_count_ < options_.max_batch_sequences)) {
    return absl::ResourceExhaustedError(
        absl::StrCat(options_.name, ": queue full (", queue_.size(), " requests waiting, ",
                     active_count_, " sequences running); retry later or on another worker"));
  }
  queue_.push_back(std::move(sequence));
  return absl::OkStatus();
}

GenerationLoad GenerationEngine::load() const {
  absl::MutexLock lock(&mutex_);
  GenerationLoad load;
  load.queue_depth = static_cast<int32_t>(queue_.size());
  load.active_sequences = active_count_;
  load.kv_bytes_used = kv_bytes_used_;
  load.kv_budget_bytes = options_.kv_budget_bytes;
  load.max_batch_sequences = options_.max_batch_sequences;
  load.max_queue_depth = options_.max_queue_depth;
  return load;
}

absl::Status GenerationEngine::StopReason(const Sequence& sequence, absl::Time now) const {
  if (sequence.sink->Cancelled()) {
    return absl::CancelledError(absl::StrCat(options_.name, ": the caller went away"));
  }
  if (now > sequence.request.deadline) {
    return absl::DeadlineExceededError(
        absl::StrCat(options_.name, ": deadline passed; generation stopped"));
  }
  return absl::OkStatus();
}

void GenerationEngine::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mutex_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
        return stopping_ || !queue_.empty() || !active_.empty();
      };
      mutex_.Await(absl::Condition(&ready));
      if (stopping_) break;
    }
    Admit();
    Step();
  }
  // Stopping: every request still here ends as cancelled.
  std::deque<std::unique_ptr<Sequence>> queued;
  {
    absl::MutexLock lock(&mutex_);
    queued.swap(queue_);
  }
  const absl::Status stopping = absl::CancelledError(absl::StrCat(options_.name, ": stopping"));
  for (auto& sequence : queued) Finish(*sequence, stopping, "cancelled");
  for (auto& sequence : active_) Finish(*sequence, stopping, "cancelled");
  active_.clear();
}

void GenerationEngine::Admit() {
  std::vector<std::unique_ptr<Sequence>> gone;
  std::vector<Sequence*> joined;
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mutex_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (!StopReason(**it, now).ok()) {
        gone.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    // First come, first served: the head waits for room rather than being overtaken.
    while (!queue_.empty() && active_count_ < options_.max_batch_sequences &&
           kv_bytes_used_ + queue_.front()->reserved_bytes <= options_.kv_budget_bytes) {
      kv_bytes_used_ += queue_.front()->reserved_bytes;
      ++active_count_;
      joined.push_back(queue_.front().get());
      active_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  for (auto& sequence : gone) {
    Finish(*sequence, StopReason(*sequence, now), "cancelled");
  }
  if (observer_ != nullptr && !joined.empty()) observer_->OnLoadChanged(load());
  for (Sequence* sequence : joined) {
    sequence->joined = now;
    absl::StatusOr<std::unique_ptr<KvCache>> cache =
        model_.NewSequenceCache(sequence->capacity_tokens);
    if (!cache.ok()) {
      Finish(*sequence, cache.status(), "");
      continue;
    }
    sequence->cache = *std::move(cache);
    sequence->sampler = std::make_unique<Sampler>(sequence->request.sampling);
    sequence->text = detokenizer_.NewStream(sequence->request.prompt);
    sequence->stop = std::make_unique<StopMatcher>(sequence->request.stop);
    sequence->history = sequence->request.prompt;
  }
  active_.erase(std::remove_if(active_.begin(), active_.end(),
                               [](const std::unique_ptr<Sequence>& s) { return s->done; }),
                active_.end());
}

void GenerationEngine::Finish(Sequence& sequence, const absl::Status& status,
                              const std::string& reason) {
  if (sequence.done) return;
  sequence.done = true;
  sequence.cache.reset();
  const bool was_active = sequence.joined != absl::Time();
  {
    absl::MutexLock lock(&mutex_);
    if (was_active) {
      kv_bytes_used_ -= sequence.reserved_bytes;
      --active_count_;
    }
  }
  const absl::Time now = absl::Now();
  GenerationResult result;
  result.finish_reason = reason;
  result.input_tokens = static_cast<int32_t>(sequence.request.prompt.size());
  result.output_tokens = sequence.generated;
  result.queue_time = (was_active ? sequence.joined : now) - sequence.submitted;
  if (sequence.generated > 0) {
    result.time_to_first_token = sequence.first_token - sequence.submitted;
    result.decode_time = now - sequence.first_token;
  }
  sequence.sink->OnFinished(status, result);
  if (observer_ != nullptr) observer_->OnLoadChanged(load());
}

bool GenerationEngine::ProcessToken(Sequence& sequence, const float* logits) {
  const int32_t vocab_size = static_cast<int32_t>(model_.hparams().vocab_size);
  const SampledToken sampled = sequence.sampler->Sample(logits, vocab_size, sequence.history,
                                                        sequence.request.want_logprobs);
  if (sequence.generated++ == 0) sequence.first_token = absl::Now();
  sequence.history.push_back(sampled.token);
  sequence.next_token = sampled.token;
  GenerationChunk chunk;
  if (sequence.request.want_logprobs) chunk.logprobs.push_back(sampled.logprob);
  std::string reason;
  if (detokenizer_.IsEndOfGeneration(sampled.token)) {
    reason = "stop";
  } else {
    StopMatcher::Result piece = sequence.stop->Push(sequence.text->Next(sampled.token));
    chunk.text = std::move(piece.text);
    if (piece.stopped) {
      reason = "stop";
    } else if (sequence.generated >= sequence.request.max_tokens ||
               sequence.cache->size() + 1 > sequence.cache->capacity()) {
      reason = "length";
    }
  }
  if (!reason.empty() && !sequence.stop->stopped()) {
    StopMatcher::Result tail = sequence.stop->Push(sequence.text->Flush());
    chunk.text += tail.text;
    if (!tail.stopped) chunk.text += sequence.stop->Flush();
  }
  if (!chunk.text.empty() || !chunk.logprobs.empty()) sequence.sink->OnChunk(std::move(chunk));
  if (reason.empty()) return false;
  Finish(sequence, absl::OkStatus(), reason);
  return true;
}

void GenerationEngine::Step() {
  const absl::Time now = absl::Now();
  for (auto& sequence : active_) {
    if (absl::Status stop = StopReason(*sequence, now); !stop.ok()) {
      Finish(*sequence, stop, "cancelled");
    }
  }
  active_.erase(std::remove_if(active_.begin(), active_.end(),
                               [](const std::unique_ptr<Sequence>& s) { return s->done; }),
                active_.end());
  if (active_.empty()) return;

  // Decode rows first (one each), then prompt chunks in arrival order with the rows left.
  const int64_t max_rows = model_.options().max_batch_tokens;
  int64_t rows = 0;
  std::vector<SequenceStep> steps;
  std::vector<Sequence*> owners;
  for (auto& sequence : active_) {
    if (sequence->prefilled < sequence->request.prompt.size()) continue;
    steps.push_back({sequence->cache.get(), &sequence->next_token, 1, false});
    owners.push_back(sequence.get());
    ++rows;
  }
  for (auto& sequence : active_) {
    const size_t remaining = sequence->request.prompt.size() - sequence->prefilled;
    if (remaining == 0) continue;
    const int64_t chunk = std::min<int64_t>(
        {static_cast<int64_t>(remaining), options_.prefill_chunk_tokens, max_rows - rows});
    if (chunk <= 0) break;
    steps.push_back({sequence->cache.get(), sequence->request.prompt.data() + sequence->prefilled,
                     static_cast<int32_t>(chunk), false});
    owners.push_back(sequence.get());
    rows += chunk;
  }
  const absl::Time start = absl::Now();
  const absl::Status forward = model_.Forward(steps, logits_.data());
  const absl::Duration elapsed = absl::Now() - start;
  const int64_t vocab_size = model_.hparams().vocab_size;
  for (size_t i = 0; i < owners.size(); ++i) {
    Sequence& sequence = *owners[i];
    if (!forward.ok()) {
      Finish(sequence, forward, "");
      continue;
    }
    if (sequence.prefilled < sequence.request.prompt.size()) {
      sequence.prefilled += steps[i].n_tokens;
      if (sequence.prefilled < sequence.request.prompt.size()) continue;  // more prompt to go
    }
    ProcessToken(sequence, logits_.data() + i * vocab_size);
  }
  active_.erase(std::remove_if(active_.begin(), active_.end(),
                               [](const std::unique_ptr<Sequence>& s) { return s->done; }),
                active_.end());
  if (observer_ != nullptr) {
    observer_->OnStep(static_cast<int32_t>(steps.size()), static_cast<int32_t>(rows), elapsed,
                      load());
  }
}

}  // namespace slm::workers
