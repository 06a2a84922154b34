// Dispatch, admission, hedging, tenants and reload settings: defaults and validation errors.
#include <string>

#include "absl/status/status.h"
#include "common/config/gateway_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slm::config {
namespace {

using ::testing::HasSubstr;

constexpr char kRouter[] = R"(pools:
  - name: p
    endpoints: ["dns:///workers.slm:50052"]
routes:
  - name: r
    pool: p
)";

std::string With(const std::string& extra) { return std::string(kRouter) + extra; }

std::string ErrorOf(const std::string& yaml) {
  auto config = ParseGatewayConfig(yaml, "cfg.yaml", ConfigRole::kRouter);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << yaml;
  return std::string(config.status().message());
}

TEST(DispatchConfigTest, DefaultsAreApplied) {
  auto config = ParseGatewayConfig(kRouter, "cfg.yaml", ConfigRole::kRouter);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->server().config_poll_interval_ms(), kDefaultConfigPollIntervalMs);
  EXPECT_EQ((*config)->dispatch().max_attempts(), kDefaultMaxAttempts);
  EXPECT_DOUBLE_EQ((*config)->dispatch().retry_budget_ratio(), kDefaultRetryBudgetRatio);
  EXPECT_DOUBLE_EQ((*config)->dispatch().retry_budget_min_per_second(),
                   kDefaultRetryBudgetMinPerSecond);
  const auto& pool = (*config)->pools(0);
  EXPECT_EQ(pool.resolve_interval_ms(), kDefaultResolveIntervalMs);
  EXPECT_EQ(pool.health_check_interval_ms(), kDefaultHealthCheckIntervalMs);
  EXPECT_EQ(pool.failures_to_open(), kDefaultFailuresToOpen);
  EXPECT_EQ(pool.cooldown_ms(), kDefaultCooldownMs);
  EXPECT_EQ(pool.max_in_flight_per_endpoint(), 0u);
  EXPECT_EQ((*config)->routes(0).max_concurrency(), 0u);
  EXPECT_FALSE((*config)->routes(0).has_hedge());
}

TEST(DispatchConfigTest, ExplicitZerosAndBurstDefaults) {
  auto config = ParseGatewayConfig(With(R"(    requests_per_second: 2.5
    max_concurrency: 8
    hedge: {percentile: 95, delay_ms: 5}
server: {config_poll_interval_ms: 0}
dispatch: {retry_budget_ratio: 0, retry_budget_min_per_second: 0, max_attempts: 1}
tenants:
  - name: default
    requests_per_second: 10
  - name: gold
    max_concurrency: 4
    requests_per_second: 100
    burst: 7
)"),
                                   "cfg.yaml", ConfigRole::kRouter);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->server().config_poll_interval_ms(), 0u);
  EXPECT_EQ((*config)->dispatch().retry_budget_ratio(), 0);
  EXPECT_EQ((*config)->dispatch().retry_budget_min_per_second(), 0);
  EXPECT_EQ((*config)->dispatch().max_attempts(), 1u);
  EXPECT_EQ((*config)->routes(0).burst(), 3u);  // ceil(2.5)
  EXPECT_EQ((*config)->routes(0).hedge().delay_ms(), 5u);
  EXPECT_EQ((*config)->tenants(0).burst(), 10u);
  EXPECT_EQ((*config)->tenants(1).burst(), 7u);
}

TEST(DispatchConfigTest, Errors) {
  EXPECT_THAT(ErrorOf(With("dispatch: {max_attempts: 0}\n")),
              HasSubstr("dispatch.max_attempts: expected 1..10, got 0"));
  EXPECT_THAT(ErrorOf(With("dispatch: {max_attempts: 11}\n")),
              HasSubstr("dispatch.max_attempts: expected 1..10, got 11"));
  EXPECT_THAT(ErrorOf(With("dispatch: {retry_budget_ratio: 1.5}\n")),
              HasSubstr("dispatch.retry_budget_ratio: expected 0..1, got 1.5"));
  EXPECT_THAT(ErrorOf(With("dispatch: {retry_budget_ratio: .nan}\n")),
              HasSubstr("dispatch.retry_budget_ratio: expected 0..1"));
  EXPECT_THAT(ErrorOf(With("dispatch: {retry_budget_min_per_second: -1}\n")),
              HasSubstr("dispatch.retry_budget_min_per_second: expected 0..1000000"));
  EXPECT_THAT(ErrorOf(With("server: {config_poll_interval_ms: 4000000}\n")),
              HasSubstr("server.config_poll_interval_ms: expected 0 (never) up to 3600000"));
  EXPECT_THAT(ErrorOf(With("    requests_per_second: -3\n")),
              HasSubstr("routes[0].requests_per_second: expected 0 (unlimited) up to 1000000, "
                        "got -3"));
  EXPECT_THAT(ErrorOf(With("    requests_per_second: .inf\n")),
              HasSubstr("routes[0].requests_per_second: expected 0 (unlimited)"));
  EXPECT_THAT(ErrorOf(With("    requests_per_second: 5\n    burst: 0\n")),
              HasSubstr("cfg.yaml:8:5: routes[0].burst: must be at least 1 when "
                        "requests_per_second is set"));
  EXPECT_THAT(ErrorOf(With("    hedge: {percentile: 20}\n")),
              HasSubstr("routes[0].hedge.percentile: expected 0 (fixed delay) or 50..99.9, "
                        "got 20"));
  EXPECT_THAT(ErrorOf(With("    hedge: {delay_ms: 700000}\n")),
              HasSubstr("routes[0].hedge.delay_ms: expected 0..600000, got 700000"));
  EXPECT_THAT(ErrorOf(With("    max_concurrency: -1\n")), HasSubstr("routes[0].max_concurrency"));
  EXPECT_THAT(ErrorOf(With("tenants:\n  - name: a\n  - name: a\n")),
              HasSubstr("tenants[1].name: duplicate tenant name \"a\" (also tenants[0])"));
  EXPECT_THAT(ErrorOf(With("tenants:\n  - max_concurrency: 3\n")),
              HasSubstr("tenants[0].name: required field missing"));
  EXPECT_THAT(ErrorOf(With("tenants:\n  - name: \"a b\"\n")),
              HasSubstr("tenants[0].name: expected a name of letters"));
  EXPECT_THAT(ErrorOf(With("tenants:\n  - {name: t, requests_per_second: 1e9}\n")),
              HasSubstr("tenants[0].requests_per_second: expected 0 (unlimited) up to 1000000"));
  const std::string pool_prefix = "pools:\n  - name: p\n    endpoints: [\"a:1\"]\n";
  auto pool_error = [&](const std::string& field) {
    return ErrorOf(pool_prefix + "    " + field + "\nroutes:\n  - {name: r, pool: p}\n");
  };
  EXPECT_THAT(pool_error("resolve_interval_ms: 10"),
              HasSubstr("pools[0].resolve_interval_ms: expected 100..3600000, got 10"));
  EXPECT_THAT(pool_error("health_check_interval_ms: 50"),
              HasSubstr("pools[0].health_check_interval_ms: expected 100..3600000, got 50"));
  EXPECT_THAT(pool_error("failures_to_open: 0"),
              HasSubstr("pools[0].failures_to_open: expected 1..1000, got 0"));
  EXPECT_THAT(pool_error("cooldown_ms: 0"),
              HasSubstr("pools[0].cooldown_ms: expected 1..3600000, got 0"));
  EXPECT_THAT(pool_error("max_inflight: 3"), HasSubstr("pools[0].max_inflight: unknown key"));
  // Health checks can be switched off.
  EXPECT_TRUE(ParseGatewayConfig(pool_prefix + "    health_check_interval_ms: 0\nroutes:\n  - "
                                               "{name: r, pool: p}\n",
                                 "cfg.yaml", ConfigRole::kRouter)
                  .ok());
}

}  // namespace
}  // namespace slm::config
