// Test doubles for the generation engine: a DecoderModel whose next-token logits are a pure
// function of the sequence's tokens so far (so a scalar reference can predict every step), a
// Detokenizer mapping ids to letters, and a sink that records what it receives.
//
// FakeDecoder logits for a sequence with tokens t_0..t_n (prompt and generated):
//   logit[j] = Noise(hash(t_0..t_n), j) in [0, 1)  +  (j == (t_n + 1) % vocab ? kBoost : 0)
// so greedy decoding counts upwards from the last prompt token. Each Forward may be held at a
// gate (AllowSteps) so tests decide exactly when steps happen, without timing.
#ifndef SLM_TESTS_WORKERS_GENERATION_FAKE_DECODER_H_
#define SLM_TESTS_WORKERS_GENERATION_FAKE_DECODER_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "workers/decoder/decoder_model.h"
#include "workers/generation/generation_engine.h"

namespace slm::workers::testing {

inline constexpr float kBoost = 3.0f;

// FNV-1a over the tokens.
inline uint64_t HashTokens(const std::vector<int32_t>& tokens) {
  uint64_t hash = 1469598103934665603ull;
  for (int32_t token : tokens) {
    hash ^= static_cast<uint32_t>(token);
    hash *= 1099511628211ull;
  }
  return hash;
}

inline float Noise(uint64_t hash, int32_t j) {
  uint64_t z = hash + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(j + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) / static_cast<float>(1 << 24);
}

// The reference: logits after `tokens`.
inline std::vector<float> ReferenceLogits(const std::vector<int32_t>& tokens, int32_t vocab) {
  std::vector<float> logits(vocab);
  const uint64_t hash = HashTokens(tokens);
  for (int32_t j = 0; j < vocab; ++j) logits[j] = Noise(hash, j);
  logits[(tokens.back() + 1) % vocab] += kBoost;
  return logits;
}

class FakeCache final : public KvCache {
 public:
  FakeCache(int64_t capacity, int64_t bytes_per_token, std::atomic<int>* live)
      : capacity_(capacity), bytes_per_token_(bytes_per_token), live_(live) {
    live_->fetch_add(1);
  }
  ~FakeCache() override { live_->fetch_sub(1); }
  int64_t size() const override { return static_cast<int64_t>(tokens.size()); }
  int64_t capacity() const override { return capacity_; }
  void Truncate(int64_t new_size) override { tokens.resize(new_size); }
  int64_t bytes() const override { return capacity_ * bytes_per_token_; }
  std::vector<int32_t> tokens;

 private:
  const int64_t capacity_;
  const int64_t bytes_per_token_;
  std::atomic<int>* live_;
};

class FakeDecoder final : public DecoderModel {
 public:
  explicit FakeDecoder(int32_t vocab = 40, int64_t context = 256, int64_t max_batch_tokens = 64) {
    hparams_.architecture = "fake";
    hparams_.vocab_size = vocab;
    hparams_.context_length = context;
    options_.max_context = context;
    options_.max_batch_tokens = max_batch_tokens;
    options_.threads = 1;
  }
  const DecoderHParams& hparams() const override { return hparams_; }
  const DecoderOptions& options() const override { return options_; }
  absl::StatusOr<std::unique_ptr<KvCache>> NewSequenceCache(int64_t max_tokens) const override {
    if (max_tokens < 1 || max_tokens > options_.max_context) {
      return absl::InvalidArgumentError("max_tokens out of range");
    }
    return std::unique_ptr<KvCache>(new FakeCache(max_tokens, KvBytesPerToken(), &live_caches_));
  }
  int64_t KvBytesPerToken() const override { return 1000; }

  absl::Status Forward(absl::Span<const SequenceStep> steps, float* logits) const override {
    {
      absl::MutexLock lock(&mutex_);
      ++waiting_;
      mutex_.Await(absl::Condition(
          +[](int64_t* allowed) { return *allowed > 0; }, &allowed_steps_));
      --waiting_;
      if (allowed_steps_ != kUnlimited) --allowed_steps_;
      batch_sizes_.push_back(static_cast<int>(steps.size()));
    }
    const int32_t vocab = static_cast<int32_t>(hparams_.vocab_size);
    int64_t rows = 0;
    for (const SequenceStep& step : steps) rows += step.n_tokens;
    if (rows > options_.max_batch_tokens) return absl::InvalidArgumentError("too many rows");
    for (const SequenceStep& step : steps) {
      auto* cache = static_cast<FakeCache*>(step.cache);
      if (cache->size() + step.n_tokens > cache->capacity()) {
        return absl::OutOfRangeError("cache full");
      }
    }
    for (const SequenceStep& step : steps) {
      auto* cache = static_cast<FakeCache*>(step.cache);
      cache->tokens.insert(cache->tokens.end(), step.tokens, step.tokens + step.n_tokens);
      const std::vector<float> row = ReferenceLogits(cache->tokens, vocab);
      std::copy(row.begin(), row.end(), logits);
      logits += vocab;
    }
    return absl::OkStatus();
  }

  // Gate: how many more Forward calls may run (kUnlimited: all).
  static constexpr int64_t kUnlimited = std::numeric_limits<int64_t>::max();
  void SetAllowedSteps(int64_t steps) {
    absl::MutexLock lock(&mutex_);
    allowed_steps_ = steps;
  }
  // Blocks until a Forward waits at the closed gate, `calls` calls having passed it before.
  void AwaitBlockedAfter(int calls) const {
    absl::MutexLock lock(&mutex_);
    auto blocked = [this, calls]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      return waiting_ > 0 && static_cast<int>(batch_sizes_.size()) == calls;
    };
    mutex_.Await(absl::Condition(&blocked));
  }
  std::vector<int> batch_sizes() const {
    absl::MutexLock lock(&mutex_);
    return batch_sizes_;
  }
  int live_caches() const { return live_caches_.load(); }

 private:
  DecoderHParams hparams_;
  DecoderOptions options_;
  mutable std::atomic<int> live_caches_{0};
  mutable absl::Mutex mutex_;
  mutable int64_t allowed_steps_ ABSL_GUARDED_BY(mutex_) = kUnlimited;
  mutable int waiting_ ABSL_GUARDED_BY(mutex_) = 0;
  mutable std::vector<int> batch_sizes_ ABSL_GUARDED_BY(mutex_);
};

// Token 0 ends generation; token j > 0 is the letter 'a' + (j - 1) % 26.
inline std::string TokenLetter(int32_t token) {
  return token == 0 ? std::string() : std::string(1, static_cast<char>('a' + (token - 1) % 26));
}

class LetterDetokenizer final : public Detokenizer {
 public:
  // -1: no token ends generation.
  explicit LetterDetokenizer(int32_t end_of_generation = 0) : end_(end_of_generation) {}
  std::unique_ptr<TokenTextStream> NewStream(const std::vector<int32_t>&) const override {
    class Stream final : public TokenTextStream {
     public:
      std::string Next(int32_t token) override { return TokenLetter(token); }
      std::string Flush() override { return ""; }
    };
    return std::make_unique<Stream>();
  }
  bool IsEndOfGeneration(int32_t token) const override { return token == end_; }

 private:
  const int32_t end_;
};

class RecordingSink final : public GenerationSink {
 public:
  void OnChunk(GenerationChunk chunk) override {
    absl::MutexLock lock(&mutex_);
    chunks_.push_back(chunk.text);
    text_ += chunk.text;
    logprobs_.insert(logprobs_.end(), chunk.logprobs.begin(), chunk.logprobs.end());
  }
  void OnFinished(const absl::Status& status, const GenerationResult& result) override {
    absl::MutexLock lock(&mutex_);
    ++done_calls_;
    status_ = status;
    result_ = result;
  }
  bool Cancelled() const override { return cancelled_.load(); }

  void Cancel() { cancelled_.store(true); }
  void AwaitDone() const {
    absl::MutexLock lock(&mutex_);
    mutex_.Await(absl::Condition(
        +[](const int* calls) { return *calls > 0; }, &done_calls_));
  }
  bool done() const {
    absl::MutexLock lock(&mutex_);
    return done_calls_ > 0;
  }
  int done_calls() const {
    absl::MutexLock lock(&mutex_);
    return done_calls_;
  }
  absl::Status status() const {
    absl::MutexLock lock(&mutex_);
    return status_;
  }
  GenerationResult result() const {
    absl::MutexLock lock(&mutex_);
    return result_;
  }
  std::string text() const {
    absl::MutexLock lock(&mutex_);
    return text_;
  }
  std::vector<float> logprobs() const {
    absl::MutexLock lock(&mutex_);
    return logprobs_;
  }

 private:
  mutable absl::Mutex mutex_;
  std::vector<std::string> chunks_ ABSL_GUARDED_BY(mutex_);
  std::string text_ ABSL_GUARDED_BY(mutex_);
  std::vector<float> logprobs_ ABSL_GUARDED_BY(mutex_);
  int done_calls_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::Status status_ ABSL_GUARDED_BY(mutex_);
  GenerationResult result_ ABSL_GUARDED_BY(mutex_);
  std::atomic<bool> cancelled_{false};
};

}  // namespace slm::workers::testing

#endif  // SLM_TESTS_WORKERS_GENERATION_FAKE_DECODER_H_
