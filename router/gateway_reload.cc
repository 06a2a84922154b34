// GatewayServiceImpl's configuration snapshots: building one (BuildState), hot reload, admission
// control, and the pool maintenance thread (DNS re-resolution, health checks, endpoint gauges).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "google/protobuf/util/message_differencer.h"
#include "router/gateway_service.h"
#include "router/pool_call.h"

namespace slm::router {
namespace {

using google::protobuf::util::MessageDifferencer;

// A configuration built in code may leave `dispatch` out (FinalizeGatewayConfig always sets it):
// then the documented defaults apply.
PoolOptions PoolOptionsFor(const slmgw::config::v1::GatewayConfig& config,
                           const Resolver& resolver) {
  PoolOptions options;
  options.resolver = resolver;
  if (config.has_dispatch()) {
    options.retry_budget_ratio = config.dispatch().retry_budget_ratio();
    options.retry_budget_min_per_second = config.dispatch().retry_budget_min_per_second();
  }
  return options;
}

// Series start at zero for every configured pool and route, so that rate() and alerts see them
// before the first event (label values are bounded by the configuration).
void InitializeSeries(RouterMetrics& metrics, const RouterState& state) {
  for (const auto& [name, pool] : state.pools) {
    metrics.retries.Add({{"pool", name}});
    metrics.cooldowns.Add({{"pool", name}});
    metrics.hedges.Add({{"pool", name}});
    metrics.budget_exhausted.Add({{"pool", name}});
  }
  for (const auto& route : state.config->routes()) {
    for (const char* reason :
         {"route_concurrency", "route_rate", "tenant_concurrency", "tenant_rate"}) {
      metrics.load_shed.Add({{"route", route.name()}, {"reason", reason}});
    }
  }
}

bool SameDispatch(const slmgw::config::v1::GatewayConfig& a,
                  const slmgw::config::v1::GatewayConfig& b) {
  return MessageDifferencer::Equals(a.dispatch(), b.dispatch());
}

}  // namespace

absl::StatusOr<std::shared_ptr<RouterState>> GatewayServiceImpl::BuildState(
    std::shared_ptr<const slmgw::config::v1::GatewayConfig> config,
    const ChannelFactory& channel_factory, const ClassifierLoader& classifier_loader,
    const Resolver& resolver, const RouterState* previous) {
  auto state = std::make_shared<RouterState>();
  absl::StatusOr<std::unique_ptr<RouteTable>> table = RouteTable::Create(*config);
  if (!table.ok()) return table.status();
  state->route_table = *std::move(table);
  absl::StatusOr<std::unique_ptr<RoutePolicy>> policy =
      RoutePolicy::Create(*config, state->route_table.get(), classifier_loader);
  if (!policy.ok()) return policy.status();
  state->policy = *std::move(policy);
  for (const auto& pool_config : config->pools()) {
    if (previous != nullptr && SameDispatch(*config, *previous->config)) {
      auto it = previous->pools.find(pool_config.name());
      if (it != previous->pools.end() &&
          MessageDifferencer::Equals(it->second->config(), pool_config)) {
        state->pools.emplace(pool_config.name(), it->second);
        continue;
      }
    }
    absl::StatusOr<std::unique_ptr<WorkerPool>> pool =
        WorkerPool::Create(pool_config, channel_factory, PoolOptionsFor(*config, resolver));
    if (!pool.ok()) return pool.status();
    state->pools.emplace(pool_config.name(), std::shared_ptr<WorkerPool>(*std::move(pool)));
  }
  for (const auto& upstream_config : config->upstreams()) {
    if (previous != nullptr) {
      auto it = previous->upstreams.find(upstream_config.name());
      if (it != previous->upstreams.end() &&
          MessageDifferencer::Equals(it->second->config(), upstream_config)) {
        state->upstreams.emplace(upstream_config.name(), it->second);
        continue;
      }
    }
    absl::StatusOr<std::unique_ptr<upstream::UpstreamClient>> client =
        upstream::UpstreamClient::Create(upstream_config);
    if (!client.ok()) return client.status();
    state->upstreams.emplace(upstream_config.name(),
                             std::shared_ptr<upstream::UpstreamClient>(*std::move(client)));
  }
  for (const auto& route : config->routes()) {
    if (!route.upstream().empty() && !state->upstreams.contains(route.upstream())) {
      return absl::InvalidArgumentError(absl::StrCat("routes: route '", route.name(),
                                                     "' names unknown upstream '",
                                                     route.upstream(), "'"));
    }
    if (route.upstream().empty() && !state->pools.contains(route.pool())) {
      return absl::InvalidArgumentError(
          absl::StrCat("routes: route '", route.name(), "' names unknown pool '", route.pool(), "'"));
    }
    if (route.hedge().percentile() > 0) {
      state->route_latency.emplace(route.name(),
                                   std::make_unique<LatencyTracker>(route.hedge().percentile()));
    }
  }
  state->admission = AdmissionController::Create(
      *config, previous != nullptr ? previous->admission.get() : nullptr, Clock::now());
  state->config = std::move(config);
  return state;
}

GatewayServiceImpl::GatewayServiceImpl(std::shared_ptr<const RouterState> state,
                                       std::shared_ptr<RouterMetrics> metrics,
                                       ChannelFactory channel_factory,
                                       ClassifierLoader classifier_loader, Resolver resolver)
    : metrics_(std::move(metrics)),
      channel_factory_(std::move(channel_factory)),
      classifier_loader_(std::move(classifier_loader)),
      resolver_(std::move(resolver)),
      state_(std::move(state)) {
  InitializeSeries(*metrics_, *Snapshot());
  maintenance_thread_ = std::thread([this] { MaintenanceLoop(); });
}

GatewayServiceImpl::~GatewayServiceImpl() {
  StopBackgroundWork();
  // Pools must not be released by a worker callback on a gRPC thread (see LivePoolCalls).
  if (!LivePoolCalls::WaitForNone(absl::Seconds(5))) {
    SLM_LOG(WARNING) << "worker calls still alive while the gateway service is destroyed";
  }
}

void GatewayServiceImpl::StopBackgroundWork() {
  {
    absl::MutexLock lock(&stop_mutex_);
    stopping_ = true;
  }
  if (maintenance_thread_.joinable()) maintenance_thread_.join();
  const std::shared_ptr<const RouterState> state = Snapshot();
  for (const auto& [name, pool] : state->pools) {
    pool->StopHealthChecks(std::chrono::milliseconds(1500));
  }
}

std::shared_ptr<const RouterState> GatewayServiceImpl::Snapshot() const {
  absl::ReaderMutexLock lock(&state_mutex_);
  return state_;
}

absl::Status GatewayServiceImpl::Reload(
    std::shared_ptr<const slmgw::config::v1::GatewayConfig> config) {
  absl::MutexLock reload_lock(&reload_mutex_);
  std::shared_ptr<const RouterState> previous = Snapshot();
  absl::StatusOr<std::shared_ptr<RouterState>> state = BuildState(
      std::move(config), channel_factory_, classifier_loader_, resolver_, previous.get());
  if (!state.ok()) return state.status();
  InitializeSeries(*metrics_, **state);
  {
    absl::MutexLock lock(&state_mutex_);
    state_ = *std::move(state);
  }
  // `previous` is released here or by the last request that still holds it.
  return absl::OkStatus();
}

absl::Status GatewayServiceImpl::AdmitLoad(grpc::CallbackServerContext* context,
                                           const RouterState& state,
                                           const slmgw::v1::RouteDecision& decision,
                                           const slmgw::v1::RequestOptions& options,
                                           AdmissionTicket* ticket) {
  AdmissionResult result = state.admission->Admit(decision.route(), options.tenant(), Clock::now());
  if (result.admitted) {
    *ticket = std::move(result.ticket);
    return absl::OkStatus();
  }
  metrics_->load_shed.Add({{"route", decision.route()}, {"reason", result.reason}}).Increment();
  const int64_t retry_after_ms = result.retry_after.count();
  context->AddTrailingMetadata("retry-after-ms", std::to_string(retry_after_ms));
  return absl::ResourceExhaustedError(absl::StrCat("route '", decision.route(),
                                                   "': load shed (", result.reason,
                                                   "); retry after ", retry_after_ms, " ms"));
}

void GatewayServiceImpl::MaintainPools() {
  std::shared_ptr<const RouterState> state = Snapshot();
  const auto now = Clock::now();
  std::vector<std::string> gauged;
  for (const auto& [name, pool] : state->pools) {
    absl::Status refreshed = pool->Refresh(now);
    if (!refreshed.ok()) SLM_LOG(WARNING) << refreshed.message();
    pool->CheckHealth(now);
    int ready = 0, unhealthy = 0, open = 0, half_open = 0;
    for (const auto& endpoint : pool->Endpoints()) {
      switch (endpoint->breaker.state(now)) {
        case CircuitState::kOpen:
          ++open;
          break;
        case CircuitState::kHalfOpen:
          ++half_open;
          break;
        case CircuitState::kClosed:
          ++(endpoint->healthy.load() ? ready : unhealthy);
          break;
      }
    }
    metrics_->endpoints.Add({{"pool", name}, {"state", "ready"}}).Set(ready);
    metrics_->endpoints.Add({{"pool", name}, {"state", "unhealthy"}}).Set(unhealthy);
    metrics_->endpoints.Add({{"pool", name}, {"state", "open"}}).Set(open);
    metrics_->endpoints.Add({{"pool", name}, {"state", "half_open"}}).Set(half_open);
    gauged.push_back(name);
  }
  for (const std::string& name : gauged_pools_) {
    if (state->pools.contains(name)) continue;
    for (const char* endpoint_state : {"ready", "unhealthy", "open", "half_open"}) {
      metrics_->endpoints.Add({{"pool", name}, {"state", endpoint_state}}).Set(0);
    }
  }
  gauged_pools_ = std::move(gauged);
}

void GatewayServiceImpl::MaintenanceLoop() {
  while (true) {
    {
      absl::MutexLock lock(&stop_mutex_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(stop_mutex_) { return stopping_; };
      stop_mutex_.AwaitWithTimeout(absl::Condition(&stopping),
                                   absl::Milliseconds(kMaintenancePeriod.count()));
      if (stopping_) return;
    }
    MaintainPools();
  }
}

}  // namespace slm::router
