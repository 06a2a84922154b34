// RequestMetrics: each cached series is the family's own series for those labels (checked through
// the registry's text exposition, the independent reference), distinct label sets stay apart, and
// concurrent first lookups of one label set end on one series.
#include "router/request_metrics.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "router/router_metrics.h"

namespace slm::router {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Exposition(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

TEST(RequestMetricsTest, CachedSeriesAreTheFamiliesSeries) {
  prometheus::Registry registry;
  RouterMetrics metrics(registry);
  RequestMetrics& cached = metrics.per_request;
  EXPECT_EQ(&cached.RequestsOk("a", "m", "classify"),
            &metrics.requests.Add(
                {{"route", "a"}, {"model", "m"}, {"operation", "classify"}, {"outcome", "ok"}}));
  EXPECT_EQ(&cached.RequestsOk("a", "m", "classify"), &cached.RequestsOk("a", "m", "classify"));
  EXPECT_NE(&cached.RequestsOk("a", "m", "classify"), &cached.RequestsOk("a", "m2", "classify"));
  EXPECT_EQ(&cached.Overhead("a"), &metrics.overhead.Add({{"route", "a"}}, monitoring::MicroLatencyBucketsSeconds()));
  EXPECT_EQ(&cached.Decisions("a", "task"),
            &metrics.decisions.Add({{"route", "a"}, {"signal", "task"}}));
  EXPECT_EQ(&cached.Classification("fast"),
            &metrics.classification.Add({{"signal", "fast"}},
                                        monitoring::MicroLatencyBucketsSeconds()));
  EXPECT_EQ(&cached.Latency("a", "classify"),
            &metrics.latency.Add({{"route", "a"}, {"operation", "classify"}},
                                 monitoring::LatencyBucketsSeconds()));
}

TEST(RequestMetricsTest, CountsLandUnderTheirLabels) {
  prometheus::Registry registry;
  RouterMetrics metrics(registry);
  RequestMetrics& cached = metrics.per_request;
  cached.RequestsOk("a", "m", "classify").Increment();
  cached.RequestsOk("a", "m", "classify").Increment();
  cached.RequestsOk("b", "m", "generate").Increment();
  cached.Decisions("b", "default").Increment();
  // Label values that would collide if joined without a separator stay apart.
  cached.Decisions("ab", "c").Increment();
  cached.Decisions("a", "bc").Increment();
  cached.Overhead("a").Observe(20e-6);
  const std::string text = Exposition(registry);
  EXPECT_THAT(text, HasSubstr("slmgw_router_requests_total{model=\"m\",operation=\"classify\","
                              "outcome=\"ok\",route=\"a\"} 2"));
  EXPECT_THAT(text, HasSubstr("slmgw_router_requests_total{model=\"m\",operation=\"generate\","
                              "outcome=\"ok\",route=\"b\"} 1"));
  EXPECT_THAT(text, HasSubstr("slmgw_router_decisions_total{route=\"b\",signal=\"default\"} 1"));
  EXPECT_THAT(text, HasSubstr("slmgw_router_decisions_total{route=\"ab\",signal=\"c\"} 1"));
  EXPECT_THAT(text, HasSubstr("slmgw_router_decisions_total{route=\"a\",signal=\"bc\"} 1"));
  EXPECT_THAT(text, HasSubstr("slmgw_router_overhead_seconds_count{route=\"a\"} 1"));
  EXPECT_THAT(text, Not(HasSubstr("route=\"c\"")));
}

TEST(RequestMetricsTest, ConcurrentFirstLookupsShareOneSeries) {
  prometheus::Registry registry;
  RouterMetrics metrics(registry);
  constexpr int kThreads = 8;
  constexpr int kIncrements = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics] {
      for (int i = 0; i < kIncrements; ++i) {
        metrics.per_request.RequestsOk("r", "m", "classify").Increment();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(Exposition(registry),
              HasSubstr("slmgw_router_requests_total{model=\"m\",operation=\"classify\","
                        "outcome=\"ok\",route=\"r\"} 4000"));
}

}  // namespace
}  // namespace slm::router
