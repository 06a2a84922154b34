// Sampler against a scalar reference written from the documented pipeline: exact masks for
// top-k, top-p, min-p and their combinations; the empirical distribution of draws with fixed
// seeds; greedy ties; repetition penalty; determinism; validation of every field.
#include "workers/generation/sampler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slm::workers {
namespace {

using ::testing::HasSubstr;

// Straightforward reference: full sort, probabilities in double, masks applied one by one.
std::vector<std::pair<int32_t, double>> ReferenceCandidates(std::vector<float> logits,
                                                            const std::vector<int32_t>& history,
                                                            const SamplingConfig& config) {
  const int32_t vocab = static_cast<int32_t>(logits.size());
  std::set<int32_t> seen(history.begin(), history.end());
  for (int32_t id : seen) {
    if (logits[id] > 0) {
      logits[id] /= config.repetition_penalty;
    } else {
      logits[id] *= config.repetition_penalty;
    }
  }
  if (config.temperature == 0) {
    int32_t best = 0;
    for (int32_t i = 0; i < vocab; ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    return {{best, 1.0}};
  }
  std::vector<std::pair<float, int32_t>> ranked;
  for (int32_t i = 0; i < vocab; ++i) ranked.push_back({logits[i] / config.temperature, i});
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  if (config.top_k > 0 && config.top_k < vocab) ranked.resize(config.top_k);
  double total = 0;
  for (const auto& [logit, id] : ranked) total += std::exp(double{logit} - ranked[0].first);
  std::vector<std::pair<int32_t, double>> p;
  for (const auto& [logit, id] : ranked) {
    p.push_back({id, std::exp(double{logit} - ranked[0].first) / total});
  }
  const double p_max = p[0].second;
  size_t keep = p.size();
  if (config.top_p < 1) {
    double sum = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      sum += p[i].second;
      if (sum >= config.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  std::vector<std::pair<int32_t, double>> out;
  for (size_t i = 0; i < keep; ++i) {
    if (p[i].second >= config.min_p * p_max) out.push_back(p[i]);
  }
  double kept = 0;
  for (const auto& entry : out) kept += entry.second;
  for (auto& entry : out) entry.second /= kept;
  return out;
}

std::vector<float> RandomLogits(int32_t vocab, uint64_t seed, float scale) {
  SplitMix64 random(seed);
  std::vector<float> logits(vocab);
  for (float& value : logits) value = static_cast<float>((random.NextDouble() - 0.5) * scale);
  return logits;
}

void ExpectSameCandidates(const std::vector<float>& logits, const std::vector<int32_t>& history,
                          const SamplingConfig& config) {
  const auto expected = ReferenceCandidates(logits, history, config);
  const auto actual =
      Sampler(config).Candidates(logits.data(), static_cast<int32_t>(logits.size()), history);
  ASSERT_EQ(actual.size(), expected.size())
      << "k=" << config.top_k << " p=" << config.top_p << " min_p=" << config.min_p;
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_EQ(actual[i].first, expected[i].first) << "rank " << i;
    EXPECT_NEAR(actual[i].second, expected[i].second, 1e-6) << "rank " << i;
  }
}

TEST(SamplerTest, MasksMatchReferenceExactly) {
  const std::vector<int32_t> vocabs = {1, 2, 7, 100, 1000, 50000};
  const std::vector<int32_t> top_ks = {0, 1, 5, 40};
  const std::vector<float> top_ps = {1.0f, 0.9f, 0.5f, 0.05f};
  const std::vector<float> min_ps = {0.0f, 0.05f, 0.3f};
  const std::vector<float> temperatures = {0.3f, 1.0f, 2.5f};
  int cases = 0;
  for (int32_t vocab : vocabs) {
    for (float temperature : temperatures) {
      const std::vector<float> logits = RandomLogits(vocab, 1000 + vocab, 12.0f);
      for (int32_t k : top_ks) {
        for (float p : top_ps) {
          for (float min_p : min_ps) {
            SamplingConfig config;
            config.temperature = temperature;
            config.top_k = k;
            config.top_p = p;
            config.min_p = min_p;
            ExpectSameCandidates(logits, {}, config);
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_EQ(cases, 6 * 3 * 4 * 4 * 3);
}

TEST(SamplerTest, TopKKeepsExactlyKWithTiesByLowerId) {
  std::vector<float> logits = {1, 3, 3, 2, 3, 0};
  SamplingConfig config;
  config.temperature = 1;
  config.top_k = 2;
  const auto candidates = Sampler(config).Candidates(logits.data(), 6, {});
  ASSERT_EQ(candidates.size(), 2u);
  EXPECT_EQ(candidates[0].first, 1);
  EXPECT_EQ(candidates[1].first, 2);
  EXPECT_NEAR(candidates[0].second, 0.5, 1e-7);
}

TEST(SamplerTest, TopPAndMinPOnAHandComputedDistribution) {
  // p = softmax(log(0.5), log(0.25), log(0.15), log(0.1)) = 0.5, 0.25, 0.15, 0.1.
  std::vector<float> logits = {std::log(0.5f), std::log(0.25f), std::log(0.15f), std::log(0.1f)};
  SamplingConfig config;
  config.temperature = 1;
  config.top_p = 0.7f;  // 0.5 < 0.7 <= 0.75: the top two
  auto candidates = Sampler(config).Candidates(logits.data(), 4, {});
  ASSERT_EQ(candidates.size(), 2u);
  EXPECT_NEAR(candidates[0].second, 0.5 / 0.75, 1e-6);
  config.top_p = 1;
  config.min_p = 0.29f;  // keep p >= 0.145: three tokens
  candidates = Sampler(config).Candidates(logits.data(), 4, {});
  ASSERT_EQ(candidates.size(), 3u);
  EXPECT_EQ(candidates[2].first, 2);
  EXPECT_NEAR(candidates[2].second, 0.15 / 0.9, 1e-6);
}

TEST(SamplerTest, RepetitionPenaltyMatchesReference) {
  std::vector<float> logits = {2.0f, -1.0f, 1.9f, 0.5f};
  SamplingConfig config;
  config.repetition_penalty = 2.0f;
  // Token 0 seen: 2.0 -> 1.0, so greedy picks 2 (1.9).
  EXPECT_EQ(Sampler(config).Sample(logits.data(), 4, std::vector<int32_t>{0, 0}, false).token, 2);
  config.temperature = 1.0f;
  ExpectSameCandidates(logits, {0, 1, 1}, config);  // -1 -> -2 for token 1
  const std::vector<float> big = RandomLogits(3000, 9, 10);
  std::vector<int32_t> history;
  for (int i = 0; i < 500; ++i) history.push_back((i * 37) % 3000);
  config.top_p = 0.9f;
  ExpectSameCandidates(big, history, config);
}

TEST(SamplerTest, GreedyTakesLowestIdOnTies) {
  std::vector<float> logits = {0, 5, 1, 5};
  EXPECT_EQ(Sampler(SamplingConfig{}).Sample(logits.data(), 4, {}, false).token, 1);
}

TEST(SamplerTest, DrawsFollowTheCandidateDistribution) {
  const std::vector<float> logits = RandomLogits(50, 3, 4.0f);
  SamplingConfig config;
  config.temperature = 0.8f;
  config.top_k = 20;
  config.top_p = 0.95f;
  config.seed = 1234;
  Sampler sampler(config);
  const auto expected = ReferenceCandidates(logits, {}, config);
  std::map<int32_t, int> counts;
  const int draws = 40000;
  for (int i = 0; i < draws; ++i) ++counts[sampler.Sample(logits.data(), 50, {}, false).token];
  std::set<int32_t> allowed;
  for (const auto& [id, p] : expected) {
    allowed.insert(id);
    // Binomial standard deviation; 5 sigma plus a little keeps this from flaking.
    const double sigma = std::sqrt(p * (1 - p) / draws);
    EXPECT_NEAR(static_cast<double>(counts[id]) / draws, p, 5 * sigma + 1e-3) << "token " << id;
  }
  for (const auto& [id, count] : counts) EXPECT_TRUE(allowed.count(id)) << "masked token " << id;
}

TEST(SamplerTest, SameSeedSameTokensOtherSeedOtherTokens) {
  const std::vector<float> logits = RandomLogits(200, 5, 3.0f);
  SamplingConfig config;
  config.temperature = 1.0f;
  auto draw = [&](uint64_t seed) {
    config.seed = seed;
    Sampler sampler(config);
    std::vector<int32_t> tokens;
    for (int i = 0; i < 64; ++i)
      tokens.push_back(sampler.Sample(logits.data(), 200, {}, false).token);
    return tokens;
  };
  EXPECT_EQ(draw(7), draw(7));
  EXPECT_NE(draw(7), draw(8));
}

TEST(SamplerTest, LogProbIsLogSoftmaxOfRawLogits) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  SamplingConfig config;
  config.repetition_penalty = 1.5f;  // does not change the reported log-probability
  const SampledToken token =
      Sampler(config).Sample(logits.data(), 3, std::vector<int32_t>{2}, true);
  const double log_sum = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(token.logprob, logits[token.token] - log_sum, 1e-6);
  EXPECT_NEAR(TokenLogProb(logits.data(), 3, 0), 1.0 - log_sum, 1e-6);
}

TEST(SamplerTest, InvalidSettingsNameTheField) {
  auto error = [](SamplingConfig config) { return ValidateSamplingConfig(config); };
  SamplingConfig config;
  EXPECT_TRUE(error(config).ok());
  config.temperature = -1;
  EXPECT_THAT(error(config).message(), HasSubstr("sampling.temperature"));
  config = {};
  config.temperature = std::nanf("");
  EXPECT_THAT(error(config).message(), HasSubstr("sampling.temperature"));
  config = {};
  config.top_k = -3;
  EXPECT_THAT(error(config).message(), HasSubstr("sampling.top_k"));
  config = {};
  config.top_p = 0;
  EXPECT_THAT(error(config).message(), HasSubstr("sampling.top_p"));
  config.top_p = 1.5f;
  EXPECT_THAT(error(config).message(), HasSubstr("sampling.top_p"));
  config = {};
  config.min_p = 2;
  EXPECT_THAT(error(config).message(), HasSubstr("sampling.min_p"));
  config = {};
  config.repetition_penalty = 0;
  EXPECT_THAT(error(config).message(), HasSubstr("sampling.repetition_penalty"));
  EXPECT_EQ(error(config).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace slm::workers
