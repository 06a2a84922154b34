// The continuous-batching engine over a fake decoder whose logits a scalar reference predicts:
// greedy output, joins and leaves between steps, batch and KV-budget bounds, the queue bound,
// cancellation and deadlines (the cache is freed), determinism with a seed, stop strings across
// tokens, end-of-generation, log-probabilities, bad input. Steps are gated, never timed.
#include "workers/generation/generation_engine.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/workers/generation/fake_decoder.h"

namespace slm::workers {
namespace {

using ::slm::workers::testing::FakeDecoder;
using ::slm::workers::testing::LetterDetokenizer;
using ::slm::workers::testing::RecordingSink;
using ::slm::workers::testing::ReferenceLogits;
using ::slm::workers::testing::TokenLetter;
using ::testing::HasSubstr;

constexpr int32_t kVocab = 40;

// Greedy reference: argmax of the reference logits, token by token.
std::vector<int32_t> ReferenceGreedy(std::vector<int32_t> tokens, int max_tokens) {
  std::vector<int32_t> out;
  for (int i = 0; i < max_tokens; ++i) {
    const std::vector<float> logits = ReferenceLogits(tokens, kVocab);
    const int32_t next =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(next);
    tokens.push_back(next);
    if (next == 0) break;
  }
  return out;
}

std::string Letters(const std::vector<int32_t>& tokens) {
  std::string text;
  for (int32_t token : tokens) text += TokenLetter(token);
  return text;
}

GenerationRequest Greedy(std::vector<int32_t> prompt, int max_tokens) {
  GenerationRequest request;
  request.prompt = std::move(prompt);
  request.max_tokens = max_tokens;
  return request;
}

class EngineTest : public ::testing::Test {
 protected:
  std::unique_ptr<GenerationEngine> MakeEngine(GenerationEngine::Options options) {
    auto engine = GenerationEngine::Create(model_, detokenizer_, options);
    EXPECT_TRUE(engine.ok()) << engine.status();
    return engine.ok() ? *std::move(engine) : nullptr;
  }
  FakeDecoder model_{kVocab, 256, 64};
  LetterDetokenizer detokenizer_;
};

TEST_F(EngineTest, GreedyOutputMatchesReference) {
  auto engine = MakeEngine({});
  RecordingSink sink;
  ASSERT_TRUE(engine->Submit(Greedy({3, 4}, 5), &sink).ok());
  sink.AwaitDone();
  EXPECT_TRUE(sink.status().ok()) << sink.status();
  const std::vector<int32_t> expected = ReferenceGreedy({3, 4}, 5);
  EXPECT_EQ(expected, (std::vector<int32_t>{5, 6, 7, 8, 9}));  // the fake counts upwards
  EXPECT_EQ(sink.text(), Letters(expected));
  EXPECT_EQ(sink.result().finish_reason, "length");
  EXPECT_EQ(sink.result().input_tokens, 2);
  EXPECT_EQ(sink.result().output_tokens, 5);
  EXPECT_EQ(model_.live_caches(), 0);
  EXPECT_EQ(engine->load().kv_bytes_used, 0);
}

TEST_F(EngineTest, LongPromptIsPrefilledInChunks) {
  GenerationEngine::Options options;
  options.prefill_chunk_tokens = 4;
  auto engine = MakeEngine(options);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 11; ++i) prompt.push_back(1 + (i * 7) % 39);
  RecordingSink sink;
  ASSERT_TRUE(engine->Submit(Greedy(prompt, 3), &sink).ok());
  sink.AwaitDone();
  EXPECT_EQ(sink.text(), Letters(ReferenceGreedy(prompt, 3)));
  // 3 prefill chunks (4 + 4 + 3), then 2 decode steps.
  EXPECT_EQ(model_.batch_sizes().size(), 5u);
}

TEST_F(EngineTest, SequencesJoinBetweenStepsAndLeaveWhenDone) {
  auto engine = MakeEngine({});
  model_.SetAllowedSteps(1);
  RecordingSink a, b;
  ASSERT_TRUE(engine->Submit(Greedy({1}, 6), &a).ok());
  model_.AwaitBlockedAfter(1);  // A's prefill ran; its first decode waits at the gate
  ASSERT_TRUE(engine->Submit(Greedy({20, 21}, 2), &b).ok());
  model_.SetAllowedSteps(FakeDecoder::kUnlimited);
  a.AwaitDone();
  b.AwaitDone();
  EXPECT_EQ(a.text(), Letters(ReferenceGreedy({1}, 6)));
  EXPECT_EQ(b.text(), Letters(ReferenceGreedy({20, 21}, 2)));
  // Steps: A prefill | A decode (B still queued) | A decode + B prefill | A + B decode | A ...
  const std::vector<int> sizes = model_.batch_sizes();
  ASSERT_EQ(sizes.size(), 6u);
  EXPECT_EQ(sizes, (std::vector<int>{1, 1, 2, 2, 1, 1}));
}

TEST_F(EngineTest, BatchNeverExceedsMaxBatchSequences) {
  GenerationEngine::Options options;
  options.max_batch_sequences = 2;
  auto engine = MakeEngine(options);
  model_.SetAllowedSteps(0);
  std::vector<std::unique_ptr<RecordingSink>> sinks;
  for (int i = 0; i < 5; ++i) {
    sinks.push_back(std::make_unique<RecordingSink>());
    ASSERT_TRUE(engine->Submit(Greedy({1 + i}, 4), sinks.back().get()).ok());
  }
  model_.AwaitBlockedAfter(0);
  const GenerationLoad load = engine->load();  // the engine may have admitted before all came
  EXPECT_LE(load.active_sequences, 2);
  EXPECT_EQ(load.active_sequences + load.queue_depth, 5);
  model_.SetAllowedSteps(FakeDecoder::kUnlimited);
  for (int i = 0; i < 5; ++i) {
    sinks[i]->AwaitDone();
    EXPECT_EQ(sinks[i]->text(), Letters(ReferenceGreedy({1 + i}, 4)));
  }
  const std::vector<int> sizes = model_.batch_sizes();
  for (int size : sizes) EXPECT_LE(size, 2);
  EXPECT_EQ(*std::max_element(sizes.begin(), sizes.end()), 2);
}

TEST_F(EngineTest, KvBudgetHoldsBackWhatDoesNotFit) {
  GenerationEngine::Options options;
  options.kv_budget_bytes = 10 * 1000;  // 10 tokens of the fake's 1000 bytes each
  auto engine = MakeEngine(options);
  model_.SetAllowedSteps(0);
  RecordingSink a, b;
  ASSERT_TRUE(engine->Submit(Greedy({1, 2}, 7), &a).ok());  // reserves 2 + 7 - 1 = 8 tokens
  ASSERT_TRUE(engine->Submit(Greedy({3}, 3), &b).ok());     // 3 tokens: does not fit beside A
  model_.AwaitBlockedAfter(0);
  EXPECT_EQ(engine->load().active_sequences, 1);
  EXPECT_EQ(engine->load().queue_depth, 1);
  EXPECT_EQ(engine->load().kv_bytes_used, 8000);
  model_.SetAllowedSteps(FakeDecoder::kUnlimited);
  a.AwaitDone();
  b.AwaitDone();
  EXPECT_EQ(b.text(), Letters(ReferenceGreedy({3}, 3)));
  for (int size : model_.batch_sizes()) EXPECT_EQ(size, 1);
  EXPECT_EQ(engine->load().kv_bytes_used, 0);
  // A prompt longer than the budget can hold is refused up front.
  RecordingSink c;
  const absl::Status refused = engine->Submit(Greedy(std::vector<int32_t>(11, 1), 1), &c);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("11 tokens exceed the 10 tokens"));
}

TEST_F(EngineTest, QueueBoundAnswersResourceExhausted) {
  GenerationEngine::Options options;
  options.max_batch_sequences = 1;
  options.max_queue_depth = 2;
  auto engine = MakeEngine(options);
  model_.SetAllowedSteps(0);
  RecordingSink a, b, c, d;
  ASSERT_TRUE(engine->Submit(Greedy({1}, 2), &a).ok());
  model_.AwaitBlockedAfter(0);  // A is running
  EXPECT_TRUE(engine->Submit(Greedy({2}, 2), &b).ok());
  EXPECT_TRUE(engine->Submit(Greedy({3}, 2), &c).ok());
  const absl::Status full = engine->Submit(Greedy({4}, 2), &d);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.message(), HasSubstr("queue full"));
  model_.SetAllowedSteps(FakeDecoder::kUnlimited);
  a.AwaitDone();
  b.AwaitDone();
  c.AwaitDone();
  EXPECT_EQ(d.done_calls(), 0);  // a refused request gets no callbacks
}

TEST_F(EngineTest, CancellationStopsTheSequenceAndFreesItsCache) {
  auto engine = MakeEngine({});
  model_.SetAllowedSteps(0);
  RecordingSink running, queued_sink, other;
  ASSERT_TRUE(engine->Submit(Greedy({1}, 100), &running).ok());
  model_.AwaitBlockedAfter(0);  // step 1 (the first prefill) waits at the gate
  ASSERT_TRUE(engine->Submit(Greedy({5}, 3), &other).ok());  // joins at the next step
  model_.SetAllowedSteps(2);
  model_.AwaitBlockedAfter(2);  // both prefilled and one decode done; the next step waits
  EXPECT_EQ(model_.live_caches(), 2);
  EXPECT_EQ(engine->load().kv_bytes_used, (100 + 3) * 1000);
  running.Cancel();
  model_.SetAllowedSteps(FakeDecoder::kUnlimited);
  running.AwaitDone();
  other.AwaitDone();
  EXPECT_EQ(running.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(running.result().finish_reason, "cancelled");
  EXPECT_LT(running.result().output_tokens, 100);
  EXPECT_EQ(other.text(), Letters(ReferenceGreedy({5}, 3)));
  EXPECT_EQ(model_.live_caches(), 0);
  EXPECT_EQ(engine->load().kv_bytes_used, 0);
  EXPECT_EQ(engine->load().active_sequences, 0);
  // Cancelled while still queued: never computed.
  model_.SetAllowedSteps(0);
  RecordingSink blocker;
  GenerationEngine::Options one;
  one.max_batch_sequences = 1;
  auto single = MakeEngine(one);
  ASSERT_TRUE(single->Submit(Greedy({1}, 2), &blocker).ok());
  ASSERT_TRUE(single->Submit(Greedy({2}, 2), &queued_sink).ok());
  queued_sink.Cancel();
  model_.SetAllowedSteps(FakeDecoder::kUnlimited);
  queued_sink.AwaitDone();
  blocker.AwaitDone();
  EXPECT_EQ(queued_sink.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(queued_sink.result().output_tokens, 0);
  EXPECT_EQ(queued_sink.done_calls(), 1);
}

TEST_F(EngineTest, PassedDeadlineStopsWithDeadlineExceeded) {
  auto engine = MakeEngine({});
  RecordingSink sink;
  GenerationRequest request = Greedy({1}, 10);
  request.deadline = absl::Now() - absl::Seconds(1);
  ASSERT_TRUE(engine->Submit(std::move(request), &sink).ok());
  sink.AwaitDone();
  EXPECT_EQ(sink.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(model_.live_caches(), 0);
}

TEST_F(EngineTest, SameSeedSameOutputAloneOrBatched) {
  auto engine = MakeEngine({});
  auto sampled = [](uint64_t seed) {
    GenerationRequest request = Greedy({7, 8, 9}, 24);
    request.sampling.temperature = 1.5f;
    request.sampling.top_p = 0.95f;
    request.sampling.seed = seed;
    return request;
  };
  RecordingSink alone;
  ASSERT_TRUE(engine->Submit(sampled(42), &alone).ok());
  alone.AwaitDone();
  RecordingSink batched, neighbour, other_seed;
  ASSERT_TRUE(engine->Submit(Greedy({3}, 30), &neighbour).ok());
  ASSERT_TRUE(engine->Submit(sampled(42), &batched).ok());
  ASSERT_TRUE(engine->Submit(sampled(43), &other_seed).ok());
  batched.AwaitDone();
  other_seed.AwaitDone();
  neighbour.AwaitDone();
  EXPECT_EQ(alone.text(), batched.text());
  EXPECT_NE(alone.text(), other_seed.text());
  // The reference replays the sampler on the reference logits.
  SamplingConfig config = sampled(42).sampling;
  Sampler sampler(config);
  std::vector<int32_t> tokens = {7, 8, 9};
  std::string expected;
  for (int i = 0; i < 24; ++i) {
    const std::vector<float> logits = ReferenceLogits(tokens, kVocab);
    const int32_t next = sampler.Sample(logits.data(), kVocab, tokens, false).token;
    tokens.push_back(next);
    if (next == 0) break;
    expected += TokenLetter(next);
  }
  EXPECT_EQ(alone.text(), expected);
}

TEST_F(EngineTest, StopStringAcrossTokensEndsWithStop) {
  auto engine = MakeEngine({});
  RecordingSink sink;
  GenerationRequest request = Greedy({3}, 20);  // greedy: d e f g h ...
  request.stop = {"zz", "fgh"};
  ASSERT_TRUE(engine->Submit(std::move(request), &sink).ok());
  sink.AwaitDone();
  EXPECT_EQ(sink.text(), "de");
  EXPECT_EQ(sink.result().finish_reason, "stop");
  EXPECT_EQ(sink.result().output_tokens, 5);  // d e f g h: the stop string was generated
}

TEST_F(EngineTest, EndOfGenerationTokenStops) {
  auto engine = MakeEngine({});
  RecordingSink sink;
  ASSERT_TRUE(engine->Submit(Greedy({37}, 10), &sink).ok());  // 38, 39, then 0 (end)
  sink.AwaitDone();
  EXPECT_EQ(sink.text(), Letters({38, 39}));
  EXPECT_EQ(sink.result().finish_reason, "stop");
  EXPECT_EQ(sink.result().output_tokens, 3);
}

TEST_F(EngineTest, LogProbsMatchReferenceLogSoftmax) {
  auto engine = MakeEngine({});
  RecordingSink sink;
  GenerationRequest request = Greedy({2, 9}, 6);
  request.want_logprobs = true;
  ASSERT_TRUE(engine->Submit(std::move(request), &sink).ok());
  sink.AwaitDone();
  const std::vector<float> logprobs = sink.logprobs();
  ASSERT_EQ(logprobs.size(), 6u);
  std::vector<int32_t> tokens = {2, 9};
  for (int i = 0; i < 6; ++i) {
    const std::vector<float> logits = ReferenceLogits(tokens, kVocab);
    const int32_t next =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    double sum = 0;
    for (float l : logits) sum += std::exp(double{l});
    EXPECT_NEAR(logprobs[i], logits[next] - std::log(sum), 1e-5) << "token " << i;
    EXPECT_LT(logprobs[i], 0.0f);
    tokens.push_back(next);
  }
}

TEST_F(EngineTest, ContextLimitsGeneratedLength) {
  FakeDecoder small(kVocab, /*context=*/8, 64);
  auto engine = GenerationEngine::Create(small, detokenizer_, {});
  ASSERT_TRUE(engine.ok());
  RecordingSink sink;
  ASSERT_TRUE((*engine)->Submit(Greedy({1, 2, 3}, 100), &sink).ok());
  sink.AwaitDone();
  EXPECT_EQ(sink.result().finish_reason, "length");
  EXPECT_EQ(sink.result().output_tokens, 6);  // 3 + 6 = 9 > 8: the 6th is produced, not stored
  RecordingSink too_long;
  const absl::Status refused = (*engine)->Submit(Greedy(std::vector<int32_t>(9, 1), 1), &too_long);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("9 tokens exceed"));
  GenerationEngine::Options truncating;
  truncating.truncate_long_prompts = true;
  auto engine2 = GenerationEngine::Create(small, detokenizer_, truncating);
  ASSERT_TRUE(engine2.ok());
  RecordingSink truncated;
  std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  ASSERT_TRUE((*engine2)->Submit(Greedy(prompt, 5), &truncated).ok());
  truncated.AwaitDone();
  // Room for the 5 requested tokens, at most half of the 8-token context: the last 4 tokens stay.
  EXPECT_EQ(truncated.result().input_tokens, 4);
  EXPECT_EQ(truncated.result().output_tokens, 5);
  EXPECT_EQ(truncated.text(), Letters(ReferenceGreedy({7, 8, 9, 10}, 5)));
  // A short reply keeps more of the prompt: max_tokens 2 leaves the last 6 tokens.
  RecordingSink short_reply;
  ASSERT_TRUE((*engine2)->Submit(Greedy(prompt, 2), &short_reply).ok());
  short_reply.AwaitDone();
  EXPECT_EQ(short_reply.result().input_tokens, 6);
  EXPECT_EQ(short_reply.text(), Letters(ReferenceGreedy({5, 6, 7, 8, 9, 10}, 2)));
}

TEST_F(EngineTest, BadRequestsAreInvalidArgumentNamingTheField) {
  auto engine = MakeEngine({});
  RecordingSink sink;
  auto code_and_message = [&](GenerationRequest request) {
    return engine->Submit(std::move(request), &sink);
  };
  EXPECT_THAT(code_and_message(Greedy({}, 3)).message(), HasSubstr("prompt"));
  EXPECT_THAT(code_and_message(Greedy({1, kVocab}, 3)).message(), HasSubstr("outside [0, 40)"));
  EXPECT_THAT(code_and_message(Greedy({1}, 0)).message(), HasSubstr("max_tokens"));
  GenerationRequest bad = Greedy({1}, 3);
  bad.sampling.top_p = 2;
  const absl::Status status = code_and_message(bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("sampling.top_p"));
  EXPECT_EQ(sink.done_calls(), 0);
}

TEST_F(EngineTest, BadOptionsAreRefusedAtCreate) {
  GenerationEngine::Options options;
  options.max_batch_sequences = 0;
  EXPECT_THAT(GenerationEngine::Create(model_, detokenizer_, options).status().message(),
              HasSubstr("max_batch_sequences"));
  options = {};
  options.max_batch_sequences = 65;  // above the model's 64 rows per Forward
  EXPECT_FALSE(GenerationEngine::Create(model_, detokenizer_, options).ok());
  options = {};
  options.kv_budget_bytes = 1000;
  EXPECT_THAT(GenerationEngine::Create(model_, detokenizer_, options).status().message(),
              HasSubstr("kv_budget_bytes"));
}

TEST_F(EngineTest, DestroyingTheEngineCancelsWhatRemains) {
  RecordingSink running, queued;
  FakeDecoder long_context(kVocab, /*context=*/20000, 64);
  const LetterDetokenizer endless(-1);
  {
    GenerationEngine::Options options;
    options.max_batch_sequences = 1;
    options.kv_budget_bytes = int64_t{1} << 40;
    auto engine = GenerationEngine::Create(long_context, endless, options);
    ASSERT_TRUE(engine.ok());
    long_context.SetAllowedSteps(1);
    // 20000 tokens would take far longer than destroying the engine does.
    ASSERT_TRUE((*engine)->Submit(Greedy({1}, 20000), &running).ok());
    ASSERT_TRUE((*engine)->Submit(Greedy({2}, 20000), &queued).ok());
    long_context.AwaitBlockedAfter(1);
    long_context.SetAllowedSteps(FakeDecoder::kUnlimited);
  }
  EXPECT_EQ(running.done_calls(), 1);
  EXPECT_EQ(queued.done_calls(), 1);
  EXPECT_EQ(queued.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(running.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(long_context.live_caches(), 0);
}

}  // namespace
}  // namespace slm::workers
