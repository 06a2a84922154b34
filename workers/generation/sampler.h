// Sampler: picks the next token from a row of logits (temperature, top-k, top-p, min-p,
// repetition penalty) with a seeded generator, so the same seed and inputs give the same tokens.
//
//   SamplingConfig config;
//   config.temperature = 0.8f;
//   config.top_p = 0.95f;
//   config.seed = 42;
//   SLM_RETURN_IF_ERROR(ValidateSamplingConfig(config));
//   Sampler sampler(config);
//   SampledToken next = sampler.Sample(logits.data(), vocab_size, history, /*want_logprob=*/true);
//
// The pipeline, in this order (each stage sees the previous stage's output):
//   1. repetition penalty (CTRL / Hugging Face): for every distinct token id in `history`, a
//      positive logit is divided by the penalty and a negative one multiplied by it;
//   2. temperature == 0: greedy, the highest logit (ties: the lowest id), nothing below applies;
//   3. logits are divided by the temperature;
//   4. top-k (k > 0): the k highest logits (ties broken by the lower id) stay;
//   5. softmax over the survivors gives p; tokens are ranked by p (ties: lower id first);
//   6. top-p (0 < p < 1): the shortest ranked prefix whose probability sum reaches top_p stays;
//   7. min-p (> 0): tokens with p < min_p x max(p) are dropped (computed on the same p as 6);
//   8. one token is drawn from the survivors, proportionally to p.
// The returned log-probability is the chosen token's under the model's own distribution
// (log-softmax of the raw logits, before any of the stages), which is what a cascade's
// confidence needs.
//
// Thread-safety: a Sampler is one sequence's state (its generator); not thread-safe.
#ifndef SLM_WORKERS_GENERATION_SAMPLER_H_
#define SLM_WORKERS_GENERATION_SAMPLER_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace slm::workers {

struct SamplingConfig {
  float temperature = 0.0f;         // 0: greedy
  int32_t top_k = 0;                // 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off
  float repetition_penalty = 1.0f;  // 1: off
  uint64_t seed = 0;
};

// InvalidArgument naming the field: temperature in [0, 100], top_k >= 0, top_p in (0, 1],
// min_p in [0, 1], repetition_penalty in (0, 100]; NaN anywhere is rejected.
absl::Status ValidateSamplingConfig(const SamplingConfig& config);

struct SampledToken {
  int32_t token = 0;
  float logprob = 0.0f;  // 0 unless asked for
};

// A small, fully specified generator (splitmix64), so a seed means the same thing everywhere.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, 1) with 53 random bits.
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

class Sampler {
 public:
  // `config` must be valid (ValidateSamplingConfig).
  explicit Sampler(const SamplingConfig& config);

  // `logits` has `vocab_size` entries and is not modified. `history` holds the tokens seen so far
  // (prompt and generated) for the repetition penalty.
  SampledToken Sample(const float* logits, int32_t vocab_size, absl::Span<const int32_t> history,
                      bool want_logprob);

  // Stages 1-7 only: the surviving tokens and their renormalized probabilities, ranked (highest
  // first, ties by lower id). For greedy sampling, the single argmax with probability 1.
  std::vector<std::pair<int32_t, float>> Candidates(const float* logits, int32_t vocab_size,
                                                    absl::Span<const int32_t> history) const;

  const SamplingConfig& config() const { return config_; }

 private:
  const SamplingConfig config_;
  SplitMix64 random_;
};

// log-softmax(logits)[token], computed in double.
float TokenLogProb(const float* logits, int32_t vocab_size, int32_t token);

}  // namespace slm::workers

#endif  // SLM_WORKERS_GENERATION_SAMPLER_H_
