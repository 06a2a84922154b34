// Token buckets, the retry budget, circuit breakers and admission control, on an injected clock:
// every expectation is counted by hand from the rates and times below.
#include <vector>

#include "gtest/gtest.h"
#include "router/admission.h"
#include "router/circuit_breaker.h"
#include "router/latency_tracker.h"
#include "router/retry_budget.h"
#include "router/token_bucket.h"

namespace slm::router {
namespace {

using std::chrono::milliseconds;

const Clock::time_point kT0 = Clock::time_point() + std::chrono::hours(1);

TEST(TokenBucket, StartsFullRefillsAtItsRateAndCapsAtCapacity) {
  TokenBucket bucket(/*rate_per_second=*/10, /*capacity=*/3, kT0);
  EXPECT_TRUE(bucket.TryTake(kT0));
  EXPECT_TRUE(bucket.TryTake(kT0));
  EXPECT_TRUE(bucket.TryTake(kT0));
  std::chrono::nanoseconds wait{0};
  EXPECT_FALSE(bucket.TryTake(kT0, &wait));
  EXPECT_EQ(wait, milliseconds(100));  // one token per 100 ms
  EXPECT_FALSE(bucket.TryTake(kT0 + milliseconds(99)));
  EXPECT_TRUE(bucket.TryTake(kT0 + milliseconds(100)));
  // A long pause refills to capacity, not beyond.
  EXPECT_DOUBLE_EQ(bucket.Available(kT0 + std::chrono::seconds(60)), 3.0);
  // Time going backwards adds nothing.
  EXPECT_DOUBLE_EQ(bucket.Available(kT0), 3.0);
}

TEST(TokenBucket, ZeroRateNeverRefills) {
  TokenBucket bucket(0, 1, kT0);
  EXPECT_TRUE(bucket.TryTake(kT0));
  std::chrono::nanoseconds wait{0};
  EXPECT_FALSE(bucket.TryTake(kT0 + std::chrono::hours(5), &wait));
  EXPECT_GE(wait, std::chrono::minutes(59));
}

TEST(RetryBudget, RetriesAreAFractionOfRequestsPlusTheFloor) {
  RetryBudget budget(/*ratio=*/0.1, /*min_per_second=*/2, kT0);
  // The floor alone: 2 at once (capacity max(1, 2)), then none until it refills.
  EXPECT_TRUE(budget.TryRetry(kT0));
  EXPECT_TRUE(budget.TryRetry(kT0));
  EXPECT_FALSE(budget.TryRetry(kT0));
  // 100 requests deposit 10 retries.
  for (int i = 0; i < 100; ++i) budget.OnRequest();
  int retries = 0;
  while (budget.TryRetry(kT0) && retries < 1000) ++retries;
  EXPECT_EQ(retries, 10);
  // Half a second later the floor gave one more.
  EXPECT_TRUE(budget.TryRetry(kT0 + milliseconds(500)));
  EXPECT_FALSE(budget.TryRetry(kT0 + milliseconds(500)));
}

TEST(RetryBudget, DepositsAreCappedSoAQuietPeriodBuildsNoBurst) {
  RetryBudget budget(/*ratio=*/0.5, /*min_per_second=*/0, kT0);
  for (int i = 0; i < 100000; ++i) budget.OnRequest();
  int retries = 0;
  while (budget.TryRetry(kT0) && retries < 100000) ++retries;
  EXPECT_EQ(retries, static_cast<int>(0.5 * RetryBudget::kMaxDepositedRequests));
}

TEST(RetryBudget, AnOutageCannotAmplifyLoadBeyondTheBudget) {
  // Every request fails and wants a retry: retries stay within 10% + floor over 10 s of traffic.
  RetryBudget budget(0.1, 1, kT0);
  int retries = 0;
  for (int i = 0; i < 10000; ++i) {
    const auto now = kT0 + milliseconds(i);  // 1000 requests/s for 10 s
    budget.OnRequest();
    retries += budget.TryRetry(now) ? 1 : 0;
  }
  EXPECT_LE(retries, 1000 + 11);
  EXPECT_GE(retries, 1000);
}

TEST(CircuitBreaker, OpensAfterConsecutiveFailuresAndProbesAfterTheCooldown) {
  CircuitBreaker breaker(/*failures_to_open=*/3, milliseconds(500));
  EXPECT_EQ(breaker.state(kT0), CircuitState::kClosed);
  EXPECT_FALSE(breaker.OnFailure(kT0));
  EXPECT_FALSE(breaker.OnFailure(kT0));
  breaker.OnSuccess();  // resets the count
  EXPECT_FALSE(breaker.OnFailure(kT0));
  EXPECT_FALSE(breaker.OnFailure(kT0));
  EXPECT_TRUE(breaker.OnFailure(kT0));  // third in a row: opens
  EXPECT_EQ(breaker.state(kT0), CircuitState::kOpen);
  EXPECT_FALSE(breaker.Available(kT0 + milliseconds(499)));
  EXPECT_FALSE(breaker.TryAcquire(kT0 + milliseconds(499)));
  // Cooled down: exactly one probe.
  EXPECT_TRUE(breaker.Available(kT0 + milliseconds(500)));
  EXPECT_TRUE(breaker.TryAcquire(kT0 + milliseconds(500)));
  EXPECT_EQ(breaker.state(kT0 + milliseconds(500)), CircuitState::kHalfOpen);
  EXPECT_FALSE(breaker.TryAcquire(kT0 + milliseconds(501)));
  // The probe fails: open again for another cooldown.
  EXPECT_TRUE(breaker.OnFailure(kT0 + milliseconds(600)));
  EXPECT_FALSE(breaker.TryAcquire(kT0 + milliseconds(1099)));
  EXPECT_TRUE(breaker.TryAcquire(kT0 + milliseconds(1100)));
  // A cancelled probe frees the slot; a successful one closes the circuit.
  breaker.OnNeutral();
  EXPECT_TRUE(breaker.TryAcquire(kT0 + milliseconds(1100)));
  breaker.OnSuccess();
  EXPECT_EQ(breaker.state(kT0 + milliseconds(1100)), CircuitState::kClosed);
  EXPECT_TRUE(breaker.TryAcquire(kT0 + milliseconds(1100)));
  EXPECT_TRUE(breaker.TryAcquire(kT0 + milliseconds(1100)));
}

slmgw::config::v1::GatewayConfig AdmissionConfig() {
  slmgw::config::v1::GatewayConfig config;
  auto* limited = config.add_routes();
  limited->set_name("limited");
  limited->set_max_concurrency(2);
  auto* rated = config.add_routes();
  rated->set_name("rated");
  rated->set_requests_per_second(4);
  rated->set_burst(2);
  config.add_routes()->set_name("free");
  auto* gold = config.add_tenants();
  gold->set_name("gold");
  gold->set_max_concurrency(1);
  auto* fallback = config.add_tenants();
  fallback->set_name("default");
  fallback->set_requests_per_second(1);
  fallback->set_burst(3);
  return config;
}

TEST(Admission, RouteConcurrencyIsReleasedByTheTicket) {
  auto admission = AdmissionController::Create(AdmissionConfig(), nullptr, kT0);
  AdmissionResult first = admission->Admit("limited", "gold2", kT0);
  AdmissionResult second = admission->Admit("limited", "", kT0);
  ASSERT_TRUE(first.admitted);
  ASSERT_TRUE(second.admitted);
  AdmissionResult third = admission->Admit("limited", "", kT0);
  EXPECT_FALSE(third.admitted);
  EXPECT_STREQ(third.reason, "route_concurrency");
  EXPECT_EQ(third.retry_after, AdmissionController::kConcurrencyRetryAfter);
  first.ticket.Release();
  EXPECT_TRUE(admission->Admit("limited", "", kT0).admitted);
}

TEST(Admission, RouteRateGivesTheTimeToTheNextToken) {
  slmgw::config::v1::GatewayConfig config = AdmissionConfig();
  config.clear_tenants();
  auto admission = AdmissionController::Create(config, nullptr, kT0);
  EXPECT_TRUE(admission->Admit("rated", "", kT0).admitted);
  EXPECT_TRUE(admission->Admit("rated", "", kT0).admitted);
  AdmissionResult shed = admission->Admit("rated", "", kT0);
  EXPECT_FALSE(shed.admitted);
  EXPECT_STREQ(shed.reason, "route_rate");
  EXPECT_EQ(shed.retry_after, milliseconds(250));
  EXPECT_TRUE(admission->Admit("rated", "", kT0 + milliseconds(250)).admitted);
  // Unlimited routes and no tenant limits: always admitted.
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(admission->Admit("free", "x", kT0).admitted);
}

TEST(Admission, ListedTenantsHaveTheirOwnLimitsAndOthersShareTheDefault) {
  auto admission = AdmissionController::Create(AdmissionConfig(), nullptr, kT0);
  AdmissionResult gold = admission->Admit("free", "gold", kT0);
  ASSERT_TRUE(gold.admitted);
  AdmissionResult gold_again = admission->Admit("free", "gold", kT0);
  EXPECT_FALSE(gold_again.admitted);
  EXPECT_STREQ(gold_again.reason, "tenant_concurrency");
  // Unknown tenants (and none) share the default tenant's bucket of 3.
  EXPECT_TRUE(admission->Admit("free", "alice", kT0).admitted);
  EXPECT_TRUE(admission->Admit("free", "bob", kT0).admitted);
  EXPECT_TRUE(admission->Admit("free", "", kT0).admitted);
  AdmissionResult shed = admission->Admit("free", "carol", kT0);
  EXPECT_FALSE(shed.admitted);
  EXPECT_STREQ(shed.reason, "tenant_rate");
  EXPECT_EQ(shed.retry_after, milliseconds(1000));
}

TEST(Admission, ARefusedRequestHoldsNoSlotAndSpendsNoToken) {
  slmgw::config::v1::GatewayConfig config;
  auto* route = config.add_routes();
  route->set_name("r");
  route->set_max_concurrency(1);
  route->set_requests_per_second(1);
  route->set_burst(2);
  auto admission = AdmissionController::Create(config, nullptr, kT0);
  AdmissionResult held = admission->Admit("r", "", kT0);
  ASSERT_TRUE(held.admitted);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(admission->Admit("r", "", kT0).admitted);
  held.ticket.Release();
  // The bucket still holds its second token: the ten refusals spent none.
  EXPECT_TRUE(admission->Admit("r", "", kT0).admitted);
}

TEST(Admission, AReloadWithTheSameLimitsKeepsTheirState) {
  slmgw::config::v1::GatewayConfig config = AdmissionConfig();
  auto before = AdmissionController::Create(config, nullptr, kT0);
  AdmissionResult held = before->Admit("limited", "", kT0);
  AdmissionResult held2 = before->Admit("limited", "", kT0);
  auto after = AdmissionController::Create(config, before.get(), kT0);
  EXPECT_FALSE(after->Admit("limited", "", kT0).admitted);  // both slots still taken
  // Changed limits start afresh.
  config.mutable_routes(0)->set_max_concurrency(3);
  auto changed = AdmissionController::Create(config, after.get(), kT0);
  EXPECT_TRUE(changed->Admit("limited", "", kT0).admitted);
}

TEST(LatencyTracker, PercentileOfRecentSamples) {
  LatencyTracker tracker(90);
  EXPECT_EQ(tracker.Current().count(), 0);
  for (int i = 1; i <= 19; ++i) tracker.Record(std::chrono::microseconds(i));
  EXPECT_EQ(tracker.Current().count(), 0);  // fewer than kMinSamples
  for (int i = 20; i <= 112; ++i) tracker.Record(std::chrono::microseconds(i));
  // Recomputed at sample 112 (a multiple of 16): sorted 1..112, rank floor(0.9 * 112) = 100
  // holds 101 µs.
  EXPECT_EQ(tracker.Current().count(), 101);
}

}  // namespace
}  // namespace slm::router
