#include "workers/generation/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"

namespace slm::workers {
namespace {

absl::Status CheckRange(const char* field, double value, double low, bool low_inclusive,
                        double high) {
  const bool ok =
      !std::isnan(value) && (low_inclusive ? value >= low : value > low) && value <= high;
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("sampling.", field, ": expected a value in ",
                                                 low_inclusive ? "[" : "(", low, ", ", high,
                                                 "], got ", value));
}

// Working copy of the logits with the repetition penalty applied (stage 1).
std::vector<float> PenalizedLogits(const float* logits, int32_t vocab_size,
                                   absl::Span<const int32_t> history, float penalty) {
  std::vector<float> out(logits, logits + vocab_size);
  if (penalty == 1.0f || history.empty()) return out;
  std::vector<int32_t> seen(history.begin(), history.end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  for (int32_t id : seen) {
    if (id < 0 || id >= vocab_size) continue;
    out[id] = out[id] > 0 ? out[id] / penalty : out[id] * penalty;
  }
  return out;
}

int32_t Argmax(const std::vector<float>& values) {
  int32_t best = 0;
  for (int32_t i = 1; i < static_cast<int32_t>(values.size()); ++i) {
    if (values[i] > values[best]) best = i;
  }
  return best;
}

struct Distribution {
  std::vector<int32_t> ids;
  std::vector<double> weights;  // unnormalized, same order as ids
  bool ranked = false;
};

// Stages 3-7: the surviving tokens and their (unnormalized) weights.
Distribution Truncate(std::vector<float>& scaled, const SamplingConfig& config, bool want_ranked) {
  const int32_t vocab_size = static_cast<int32_t>(scaled.size());
  for (float& value : scaled) value = value / config.temperature;
  // Ranking: higher scaled logit first, ties by lower id.
  auto higher = [&scaled](int32_t a, int32_t b) {
    return scaled[a] > scaled[b] || (scaled[a] == scaled[b] && a < b);
  };
  std::vector<int32_t> ids(vocab_size);
  for (int32_t i = 0; i < vocab_size; ++i) ids[i] = i;
  bool ranked = false;
  if (config.top_k > 0 && config.top_k < vocab_size) {
    std::nth_element(ids.begin(), ids.begin() + config.top_k, ids.end(), higher);
    ids.resize(config.top_k);
  }
  float max_logit = -std::numeric_limits<float>::infinity();
  for (int32_t id : ids) max_logit = std::max(max_logit, scaled[id]);
  double total = 0;
  for (int32_t id : ids) total += std::exp(static_cast<double>(scaled[id]) - max_logit);
  auto weight = [&](int32_t id) { return std::exp(static_cast<double>(scaled[id]) - max_logit); };

  if (config.top_p < 1.0f) {
    // The shortest ranked prefix reaching top_p, sorting progressively larger prefixes.
    const double target = static_cast<double>(config.top_p) * total;
    size_t sorted = 0;
    size_t cut = ids.size();
    for (size_t n = std::min<size_t>(64, ids.size());; n = std::min(ids.size(), n * 4)) {
      std::partial_sort(ids.begin() + sorted, ids.begin() + n, ids.end(), higher);
      // Prefix [0, sorted) did not reach the target; continue the running sum from there.
      double cumulative = 0;
      size_t i = 0;
      for (; i < n; ++i) {
        cumulative += weight(ids[i]);
        if (cumulative >= target) break;
      }
      if (i < n) {
        cut = i + 1;
        break;
      }
      sorted = n;
      if (n == ids.size()) break;
    }
    ids.resize(cut);
    ranked = true;
  }
  if (config.min_p > 0.0f) {
    // max(p) is the top token's, exp(0) / total; keep p >= min_p * max(p).
    const double threshold = static_cast<double>(config.min_p);
    ids.erase(
        std::remove_if(ids.begin(), ids.end(), [&](int32_t id) { return weight(id) < threshold; }),
        ids.end());
  }
  if (want_ranked && !ranked) {
    std::sort(ids.begin(), ids.end(), higher);
    ranked = true;
  }
  Distribution out;
  out.weights.reserve(ids.size());
  for (int32_t id : ids) out.weights.push_back(weight(id));
  out.ids = std::move(ids);
  out.ranked = ranked;
  return out;
}

}  // namespace

absl::Status ValidateSamplingConfig(const SamplingConfig& config) {
  if (absl::Status s = CheckRange("temperature", config.temperature, 0, true, 100); !s.ok()) {
    return s;
  }
  if (config.top_k < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.top_k: expected >= 0, got ", config.top_k));
  }
  if (absl::Status s = CheckRange("top_p", config.top_p, 0, false, 1); !s.ok()) return s;
  if (absl::Status s = CheckRange("min_p", config.min_p, 0, true, 1); !s.ok()) return s;
  return CheckRange("repetition_penalty", config.repetition_penalty, 0, false, 100);
}

uint64_t SplitMix64::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Sampler::Sampler(const SamplingConfig& config) : config_(config), random_(config.seed) {}

std::vector<std::pair<int32_t, float>> Sampler::Candidates(
    const float* logits, int32_t vocab_size, absl::Span<const int32_t> history) const {
  std::vector<float> work =
      PenalizedLogits(logits, vocab_size, history, config_.repetition_penalty);
  if (config_.temperature == 0.0f) return {{Argmax(work), 1.0f}};
  Distribution distribution = Truncate(work, config_, /*want_ranked=*/true);
  double total = 0;
  for (double w : distribution.weights) total += w;
  std::vector<std::pair<int32_t, float>> out;
  out.reserve(distribution.ids.size());
  for (size_t i = 0; i < distribution.ids.size(); ++i) {
    out.emplace_back(distribution.ids[i], static_cast<float>(distribution.weights[i] / total));
  }
  return out;
}

SampledToken Sampler::Sample(const float* logits, int32_t vocab_size,
                             absl::Span<const int32_t> history, bool want_logprob) {
  std::vector<float> work =
      PenalizedLogits(logits, vocab_size, history, config_.repetition_penalty);
  SampledToken result;
  if (config_.temperature == 0.0f) {
    result.token = Argmax(work);
  } else {
    Distribution distribution = Truncate(work, config_, /*want_ranked=*/false);
    double total = 0;
    for (double w : distribution.weights) total += w;
    const double target = random_.NextDouble() * total;
    double cumulative = 0;
    result.token = distribution.ids.back();  // rounding: the walk may end just short of total
    for (size_t i = 0; i < distribution.ids.size(); ++i) {
      cumulative += distribution.weights[i];
      if (target < cumulative) {
        result.token = distribution.ids[i];
        break;
      }
    }
  }
  if (want_logprob) result.logprob = TokenLogProb(logits, vocab_size, result.token);
  return result;
}

float TokenLogProb(const float* logits, int32_t vocab_size, int32_t token) {
  float max_logit = logits[0];
  for (int32_t i = 1; i < vocab_size; ++i) max_logit = std::max(max_logit, logits[i]);
  double sum = 0;
  for (int32_t i = 0; i < vocab_size; ++i)
    sum += std::exp(static_cast<double>(logits[i]) - max_logit);
  return static_cast<float>(static_cast<double>(logits[token]) - max_logit - std::log(sum));
}

}  // namespace slm::workers
