// The fallback chain's pure rules: chain construction, when an error may move on, the
// generation confidence, and reading the routing decision's own fallback. Reference values are
// computed by hand.
#include "router/fallback/fallback_chain.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slm::router {
namespace {

using ::testing::HasSubstr;

TEST(FallbackChain, GenerationConfidenceIsTheGeometricMeanTokenProbability) {
  google::protobuf::RepeatedField<float> logprobs;
  EXPECT_EQ(GenerationConfidence(logprobs), -1.0f);
  logprobs.Add(std::log(0.5f));
  logprobs.Add(std::log(0.125f));
  EXPECT_NEAR(GenerationConfidence(logprobs), 0.25f, 1e-6);  // sqrt(0.5 * 0.125)
  logprobs.Add(-std::numeric_limits<float>::infinity());     // a token the model ruled out
  EXPECT_GE(GenerationConfidence(logprobs), 0.0f);
  EXPECT_LT(GenerationConfidence(logprobs), 1e-10f);
}

TEST(FallbackChain, OnlyCapacityAndRouteDeadlinesEscalate) {
  const auto later = std::chrono::system_clock::now() + std::chrono::seconds(10);
  const auto passed = std::chrono::system_clock::now() - std::chrono::seconds(1);
  EXPECT_STREQ(EscalationReason(absl::UnavailableError("x"), later), "unavailable");
  EXPECT_STREQ(EscalationReason(absl::ResourceExhaustedError("x"), later), "resource_exhausted");
  EXPECT_STREQ(EscalationReason(absl::DeadlineExceededError("x"), later), "deadline");
  EXPECT_EQ(EscalationReason(absl::DeadlineExceededError("x"), passed), nullptr);
  EXPECT_EQ(EscalationReason(absl::InvalidArgumentError("x"), later), nullptr);
  EXPECT_EQ(EscalationReason(absl::FailedPreconditionError("x"), later), nullptr);
  EXPECT_EQ(EscalationReason(absl::CancelledError("x"), later), nullptr);
}

TEST(FallbackChain, ReadsTheDecisionsOwnFallback) {
  slmgw::v1::RouteDecision decision;
  decision.set_reason("task 'a' maps to route 'a'");
  EXPECT_EQ(DecisionFallbackReason(decision), "");
  decision.add_signals()->set_name("fast");
  decision.add_signals()->set_name("out_of_domain");
  decision.set_reason("fast tier: out-of-domain label 'oos' (0.91); fallback to route 'general'");
  EXPECT_EQ(DecisionFallbackReason(decision), "out_of_domain");
  decision.set_reason(
      "fast tier: 'banking' 0.41 < route 'banking' threshold 0.60; fallback to "
      "route 'general'");
  EXPECT_EQ(DecisionFallbackReason(decision), "low_confidence");
  decision.set_reason("fast tier: 'banking' 0.41 < ...; no fallback configured, staying on 'a'");
  EXPECT_EQ(DecisionFallbackReason(decision), "");
}

TEST(FallbackChain, BuildsTheRouteThenItsFallbacksOnce) {
  slmgw::config::v1::GatewayConfig config;
  auto* pool = config.add_pools();
  pool->set_name("p");
  pool->add_endpoints("127.0.0.1:1");
  auto* upstream = config.add_upstreams();
  upstream->set_name("u");
  upstream->set_base_url("http://127.0.0.1:1");
  upstream->set_model("m");
  auto* a = config.add_routes();
  a->set_name("a");
  a->set_pool("p");
  a->add_fallback("b");
  a->add_fallback("a");  // itself: skipped (validation refuses it; the chain is robust anyway)
  auto* b = config.add_routes();
  b->set_name("b");
  b->set_upstream("u");
  RouterState state;
  state.route_table = *RouteTable::Create(config);
  state.pools.emplace(
      "p", std::shared_ptr<WorkerPool>(*WorkerPool::Create(*pool, DefaultChannelFactory())));
  state.upstreams.emplace(
      "u", std::shared_ptr<upstream::UpstreamClient>(*upstream::UpstreamClient::Create(*upstream)));
  auto chain = BuildChain(state, "a");
  ASSERT_TRUE(chain.ok()) << chain.status();
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_EQ((*chain)[0].route->name(), "a");
  EXPECT_EQ((*chain)[0].Describe(), "pool 'p'");
  EXPECT_EQ((*chain)[1].Describe(), "upstream 'u'");
  EXPECT_EQ(BuildChain(state, "nope").status().code(), absl::StatusCode::kInternal);
  state.upstreams.clear();
  EXPECT_THAT(std::string(BuildChain(state, "a").status().message()), HasSubstr("no upstream 'u'"));
}

}  // namespace
}  // namespace slm::router
