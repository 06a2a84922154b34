// Per-request cost of the router's dispatch decisions (router/worker_pool.h, admission.h,
// retry_budget.h), next to a baseline measured in the same run: one steady_clock::now(), which
// every request already pays several times. The goal for the whole router overhead is
// p50 <= 100 us; these are the dispatch engine's share of it.
//
//   ninja -C build dispatch_bench && build/tests/bench/dispatch_bench
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "router/admission.h"
#include "router/retry_budget.h"
#include "router/worker_pool.h"

namespace slm::router {
namespace {

void BM_BaselineClockNow(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(Clock::now());
}
BENCHMARK(BM_BaselineClockNow);

// Pick among N endpoints (power of two choices, circuit and health checks) plus the in-flight
// counter a call holds.
void BM_PickAndCount(benchmark::State& state) {
  slmgw::config::v1::PoolConfig config;
  config.set_name("bench");
  config.set_max_in_flight_per_endpoint(1000);
  for (int i = 0; i < state.range(0); ++i) {
    config.add_endpoints("127.0.0.1:" + std::to_string(10000 + i));
  }
  auto pool = WorkerPool::Create(config, DefaultChannelFactory());
  if (!pool.ok()) {
    state.SkipWithError(std::string(pool.status().message()).c_str());
    return;
  }
  PickFailure failure;
  const std::vector<const Endpoint*> exclude;
  for (auto _ : state) {
    std::shared_ptr<Endpoint> endpoint = (*pool)->Pick(exclude, Clock::now(), &failure);
    ScopedCall call(endpoint.get());
    (*pool)->RecordOutcome(*endpoint, CallOutcome::kSuccess, Clock::now());
    benchmark::DoNotOptimize(endpoint);
  }
}
BENCHMARK(BM_PickAndCount)->Arg(2)->Arg(8)->Arg(64);

// Admission with a route and a tenant limit (concurrency and rate), ticket released.
void BM_Admit(benchmark::State& state) {
  slmgw::config::v1::GatewayConfig config;
  auto* route = config.add_routes();
  route->set_name("r");
  route->set_max_concurrency(1 << 20);
  route->set_requests_per_second(1e6);
  route->set_burst(1 << 20);
  auto* tenant = config.add_tenants();
  tenant->set_name("default");
  tenant->set_max_concurrency(1 << 20);
  tenant->set_requests_per_second(1e6);
  tenant->set_burst(1 << 20);
  auto admission = AdmissionController::Create(config, nullptr, Clock::now());
  for (auto _ : state) {
    AdmissionResult result = admission->Admit("r", "someone", Clock::now());
    benchmark::DoNotOptimize(result.admitted);
  }
}
BENCHMARK(BM_Admit);

void BM_RetryBudget(benchmark::State& state) {
  RetryBudget budget(0.1, 5, Clock::now());
  for (auto _ : state) {
    budget.OnRequest();
    benchmark::DoNotOptimize(budget.TryRetry(Clock::now()));
  }
}
BENCHMARK(BM_RetryBudget);

}  // namespace
}  // namespace slm::router

BENCHMARK_MAIN();
