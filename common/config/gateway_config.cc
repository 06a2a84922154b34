#include "common/config/gateway_config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config/classification_config.h"
#include "common/config/endpoint.h"
#include "common/config/string_view_compat.h"
#include "common/config/upstream_config.h"
#include "common/config/yaml_proto.h"
#include "common/status_macros.h"

namespace slm::config {
namespace {

using slmgw::config::v1::GatewayConfig;
using slmgw::config::v1::PoolConfig;
using slmgw::config::v1::RouteConfig;
using slmgw::config::v1::TenantConfig;
using slmgw::config::v1::WorkerConfig;

// Configuration files are small; this bound keeps a mistaken path (/dev/zero) from eating memory.
constexpr size_t kMaxConfigFileBytes = 16 << 20;
constexpr std::string_view kDtypes[] = {"f32", "bf16", "int8"};
// Generation defaults (WorkerConfig fields 20-25).
constexpr uint32_t kDefaultMaxBatchSequences = 8;
constexpr uint32_t kDefaultKvCacheMb = 256;
constexpr std::string_view kDefaultKvDtype = "bf16";
constexpr uint32_t kDefaultPrefillChunkTokens = 256;
constexpr uint32_t kDefaultMaxTokens = 256;

std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

std::string Indexed(absl::string_view field, int index) {
  return absl::StrCat(field, "[", index, "]");
}

// Applies defaults and validates one configuration. `positions` locates errors and tells an
// absent key from an explicit zero; for configurations built in code it is empty and `from_yaml`
// is false, so zero means absent.
class Finalizer {
 public:
  Finalizer(const YamlSourceMap& positions, bool from_yaml, ConfigRole role)
      : positions_(positions), from_yaml_(from_yaml), role_(role) {}

  void ApplyDefaults(GatewayConfig* config) const {
    slmgw::config::v1::ServerConfig& server = *config->mutable_server();
    if (Absent("server.listen_address", server.listen_address().empty())) {
      server.set_listen_address(std::string(kDefaultListenAddress));
    }
    if (Absent("server.metrics_address", server.metrics_address().empty())) {
      server.set_metrics_address(std::string(kDefaultMetricsAddress));
    }
    if (Absent("server.drain_timeout_ms", server.drain_timeout_ms() == 0)) {
      server.set_drain_timeout_ms(kDefaultDrainTimeoutMs);
    }
    if (Absent("server.config_poll_interval_ms", server.config_poll_interval_ms() == 0)) {
      server.set_config_poll_interval_ms(kDefaultConfigPollIntervalMs);
    }
    ApplyDispatchDefaults(config);
    slmgw::config::v1::LimitsConfig& limits = *config->mutable_limits();
    if (Absent("limits.max_text_bytes", limits.max_text_bytes() == 0)) {
      limits.set_max_text_bytes(kDefaultMaxTextBytes);
    }
    if (Absent("limits.default_deadline_ms", limits.default_deadline_ms() == 0)) {
      limits.set_default_deadline_ms(kDefaultDeadlineMs);
    }
    for (int i = 0; i < config->workers_size(); ++i) {
      WorkerConfig& worker = *config->mutable_workers(i);
      std::string path = Indexed("workers", i);
      if (Absent(path + ".dtype", worker.dtype().empty())) {
        worker.set_dtype(std::string(kDefaultWorkerDtype));
      }
      if (Absent(path + ".threads", worker.threads() == 0)) {
        worker.set_threads(kDefaultWorkerThreads);
      }
      if (Absent(path + ".concurrency", worker.concurrency() == 0)) {
        worker.set_concurrency(kDefaultWorkerConcurrency);
      }
      if (Absent(path + ".max_queue_depth", worker.max_queue_depth() == 0)) {
        worker.set_max_queue_depth(kDefaultWorkerMaxQueueDepth);
      }
      ApplyGenerationDefaults(path, &worker);
    }
    ApplyClassificationDefaults(config);
    ApplyUpstreamDefaults(config);
  }

  // Decoder workers: continuous batching and the KV cache (workers/generation reads these).
  void ApplyGenerationDefaults(const std::string& path, WorkerConfig* worker) const {
    if (Absent(path + ".max_batch_sequences", worker->max_batch_sequences() == 0)) {
      worker->set_max_batch_sequences(kDefaultMaxBatchSequences);
    }
    if (Absent(path + ".kv_cache_mb", worker->kv_cache_mb() == 0)) {
      worker->set_kv_cache_mb(kDefaultKvCacheMb);
    }
    if (Absent(path + ".kv_dtype", worker->kv_dtype().empty())) {
      worker->set_kv_dtype(std::string(kDefaultKvDtype));
    }
    if (Absent(path + ".prefill_chunk_tokens", worker->prefill_chunk_tokens() == 0)) {
      worker->set_prefill_chunk_tokens(kDefaultPrefillChunkTokens);
    }
    if (Absent(path + ".default_max_tokens", worker->default_max_tokens() == 0)) {
      worker->set_default_max_tokens(kDefaultMaxTokens);
    }
  }

  absl::Status ValidateGeneration(const WorkerConfig& worker, const std::string& path) const {
    SLM_RETURN_IF_ERROR(ValidateRange(worker.max_batch_sequences(), 1, 256,
                                      path + ".max_batch_sequences"));
    SLM_RETURN_IF_ERROR(ValidateRange(worker.kv_cache_mb(), 1, 1 << 20, path + ".kv_cache_mb"));
    bool known_kv_dtype = false;
    for (std::string_view dtype : kDtypes) known_kv_dtype |= worker.kv_dtype() == dtype;
    if (!known_kv_dtype) {
      return Error(path + ".kv_dtype", absl::StrCat("expected one of f32, bf16, int8, got ",
                                                    Quote(worker.kv_dtype())));
    }
    SLM_RETURN_IF_ERROR(ValidateRange(worker.prefill_chunk_tokens(), 1, 8192,
                                      path + ".prefill_chunk_tokens"));
    return ValidateRange(worker.default_max_tokens(), 1, 1 << 20, path + ".default_max_tokens");
  }

  // Router dispatch, admission and circuit breaking (router/ reads these).
  void ApplyDispatchDefaults(GatewayConfig* config) const {
    slmgw::config::v1::DispatchConfig& dispatch = *config->mutable_dispatch();
    if (Absent("dispatch.max_attempts", dispatch.max_attempts() == 0)) {
      dispatch.set_max_attempts(kDefaultMaxAttempts);
    }
    if (Absent("dispatch.retry_budget_ratio", dispatch.retry_budget_ratio() == 0)) {
      dispatch.set_retry_budget_ratio(kDefaultRetryBudgetRatio);
    }
    if (Absent("dispatch.retry_budget_min_per_second",
               dispatch.retry_budget_min_per_second() == 0)) {
      dispatch.set_retry_budget_min_per_second(kDefaultRetryBudgetMinPerSecond);
    }
    for (int i = 0; i < config->pools_size(); ++i) {
      PoolConfig& pool = *config->mutable_pools(i);
      std::string path = Indexed("pools", i);
      if (Absent(path + ".resolve_interval_ms", pool.resolve_interval_ms() == 0)) {
        pool.set_resolve_interval_ms(kDefaultResolveIntervalMs);
      }
      if (Absent(path + ".health_check_interval_ms", pool.health_check_interval_ms() == 0)) {
        pool.set_health_check_interval_ms(kDefaultHealthCheckIntervalMs);
      }
      if (Absent(path + ".failures_to_open", pool.failures_to_open() == 0)) {
        pool.set_failures_to_open(kDefaultFailuresToOpen);
      }
      if (Absent(path + ".cooldown_ms", pool.cooldown_ms() == 0)) {
        pool.set_cooldown_ms(kDefaultCooldownMs);
      }
    }
    auto default_burst = [this](const std::string& path, double rate, uint32_t burst) {
      if (!Absent(path, burst == 0) || !(rate > 0) || !std::isfinite(rate)) return burst;
      return static_cast<uint32_t>(std::max(1.0, std::ceil(std::min(rate, 1e6))));
    };
    for (int i = 0; i < config->routes_size(); ++i) {
      RouteConfig& route = *config->mutable_routes(i);
      route.set_burst(default_burst(Indexed("routes", i) + ".burst", route.requests_per_second(),
                                    route.burst()));
    }
    for (int i = 0; i < config->tenants_size(); ++i) {
      TenantConfig& tenant = *config->mutable_tenants(i);
      tenant.set_burst(default_burst(Indexed("tenants", i) + ".burst",
                                     tenant.requests_per_second(), tenant.burst()));
    }
  }

  absl::Status Validate(const GatewayConfig& config) const {
    SLM_RETURN_IF_ERROR(ValidateRole(config));
    SLM_RETURN_IF_ERROR(ValidateDispatch(config));
    SLM_RETURN_IF_ERROR(ValidateServer(config.server()));
    SLM_RETURN_IF_ERROR(ValidateLimits(config.limits()));
    absl::flat_hash_map<std::string, int> workers;  // name -> index
    for (int i = 0; i < config.workers_size(); ++i) {
      SLM_RETURN_IF_ERROR(ValidateWorker(config.workers(i), Indexed("workers", i), &workers, i));
    }
    absl::flat_hash_map<std::string, int> pools;
    for (int i = 0; i < config.pools_size(); ++i) {
      SLM_RETURN_IF_ERROR(ValidatePool(config.pools(i), Indexed("pools", i), config, &pools, i));
    }
    absl::flat_hash_map<std::string, int> routes;
    absl::flat_hash_map<std::string, std::string> task_owner;  // task -> path where first listed
    for (int i = 0; i < config.routes_size(); ++i) {
      SLM_RETURN_IF_ERROR(
          ValidateRoute(config.routes(i), Indexed("routes", i), config, &routes, &task_owner, i));
    }
    if (!config.default_route().empty() && !routes.contains(config.default_route())) {
      return Error("default_route", absl::StrCat("unknown route ", Quote(config.default_route()),
                                                 " (routes: ", NameList(config.routes()), ")"));
    }
    if (role_ == ConfigRole::kWorker && config.has_classification()) {
      return Error("classification", "must be empty for the worker");
    }
    SLM_RETURN_IF_ERROR(ValidateClassification(config, positions_));
    SLM_RETURN_IF_ERROR(ValidateUpstreams(config, positions_, role_ == ConfigRole::kWorker));
    return absl::OkStatus();
  }

 private:
  bool Absent(std::string_view path, bool is_zero) const {
    return from_yaml_ ? !positions_.HasValue(path) : is_zero;
  }

  absl::Status Error(absl::string_view path, absl::string_view message) const {
    return positions_.Error(ToStd(path), ToStd(message));
  }

  template <typename Repeated>
  static std::string NameList(const Repeated& items) {
    std::vector<absl::string_view> names;
    for (const auto& item : items) names.push_back(item.name());
    return names.empty() ? "none" : absl::StrJoin(names, ", ");
  }

  absl::Status ValidateRole(const GatewayConfig& config) const {
    std::string role = absl::StrCat(" for the ", ToAbsl(ConfigRoleName(role_)));
    switch (role_) {
      case ConfigRole::kWorker:
        if (config.workers_size() != 1) {
          return Error("workers", absl::StrCat("exactly one worker is required", role, ", found ",
                                               config.workers_size()));
        }
        if (config.pools_size() > 0) return Error("pools", "must be empty" + role);
        if (config.routes_size() > 0) return Error("routes", "must be empty" + role);
        if (!config.default_route().empty()) return Error("default_route", "must be empty" + role);
        return absl::OkStatus();
      case ConfigRole::kRouter:
        if (config.workers_size() > 0) {
          return Error("workers", "must be empty" + role + " (models run in slm-worker)");
        }
        if (config.routes_size() == 0)
          return Error("routes", "at least one route is required" + role);
        return absl::OkStatus();
      case ConfigRole::kAllInOne:
        if (config.routes_size() == 0)
          return Error("routes", "at least one route is required" + role);
        return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  absl::Status ValidateServer(const slmgw::config::v1::ServerConfig& server) const {
    absl::StatusOr<HostPort> listen = ParseHostPort(server.listen_address());
    if (!listen.ok()) return Error("server.listen_address", listen.status().message());
    absl::StatusOr<HostPort> metrics = ParseHostPort(server.metrics_address());
    if (!metrics.ok()) return Error("server.metrics_address", metrics.status().message());
    if (listen->port != 0 && listen->port == metrics->port && listen->host == metrics->host) {
      return Error("server.metrics_address",
                   absl::StrCat("must differ from server.listen_address (both ",
                                Quote(server.listen_address()), ")"));
    }
    return absl::OkStatus();
  }

  // A rate in requests per second: 0 (unlimited) or positive, finite, and with a burst.
  absl::Status ValidateRate(double rate, uint32_t burst, const std::string& path) const {
    if (!std::isfinite(rate) || rate < 0 || rate > 1e6) {
      return Error(path + ".requests_per_second",
                   absl::StrCat("expected 0 (unlimited) up to 1000000, got ", rate));
    }
    if (rate > 0 && burst == 0) {
      return Error(path + ".burst", "must be at least 1 when requests_per_second is set");
    }
    return absl::OkStatus();
  }

  absl::Status ValidateDispatch(const GatewayConfig& config) const {
    const slmgw::config::v1::DispatchConfig& dispatch = config.dispatch();
    SLM_RETURN_IF_ERROR(
        ValidateRange(dispatch.max_attempts(), 1, kMaxAttempts, "dispatch.max_attempts"));
    const double ratio = dispatch.retry_budget_ratio();
    if (!std::isfinite(ratio) || ratio < 0 || ratio > 1) {
      return Error("dispatch.retry_budget_ratio", absl::StrCat("expected 0..1, got ", ratio));
    }
    const double floor = dispatch.retry_budget_min_per_second();
    if (!std::isfinite(floor) || floor < 0 || floor > 1e6) {
      return Error("dispatch.retry_budget_min_per_second",
                   absl::StrCat("expected 0..1000000, got ", floor));
    }
    if (config.server().config_poll_interval_ms() > 3600000) {
      return Error("server.config_poll_interval_ms",
                   absl::StrCat("expected 0 (never) up to 3600000, got ",
                                config.server().config_poll_interval_ms()));
    }
    absl::flat_hash_map<std::string, int> tenants;
    for (int i = 0; i < config.tenants_size(); ++i) {
      const TenantConfig& tenant = config.tenants(i);
      std::string path = Indexed("tenants", i);
      SLM_RETURN_IF_ERROR(
          ValidateName(tenant.name(), path + ".name", "tenant", "tenants", &tenants, i));
      SLM_RETURN_IF_ERROR(ValidateRate(tenant.requests_per_second(), tenant.burst(), path));
    }
    return absl::OkStatus();
  }

  absl::Status ValidateLimits(const slmgw::config::v1::LimitsConfig& limits) const {
    if (limits.max_text_bytes() == 0) return Error("limits.max_text_bytes", "must be at least 1");
    if (limits.default_deadline_ms() == 0) {
      return Error("limits.default_deadline_ms", "must be at least 1");
    }
    return absl::OkStatus();
  }

  // A required, well-formed name that no earlier item of the same kind used.
  absl::Status ValidateName(absl::string_view name, const std::string& path, absl::string_view kind,
                            absl::string_view list, absl::flat_hash_map<std::string, int>* seen,
                            int index) const {
    if (name.empty()) {
      return Error(path,
                   positions_.HasValue(path) ? "must not be empty" : "required field missing");
    }
    if (!IsValidName(ToStd(name))) {
      return Error(path, absl::StrCat("expected a name of letters, digits, '_', '.' and '-', got ",
                                      Quote(name)));
    }
    auto [previous, inserted] = seen->emplace(std::string(name), index);
    if (!inserted) {
      return Error(path, absl::StrCat("duplicate ", kind, " name ", Quote(name), " (also ",
                                      Indexed(list, previous->second), ")"));
    }
    return absl::OkStatus();
  }

  absl::Status ValidateRange(uint32_t value, uint32_t low, uint32_t high,
                             const std::string& path) const {
    if (value < low || value > high) {
      return Error(path, absl::StrCat("expected ", low, "..", high, ", got ", value));
    }
    return absl::OkStatus();
  }

  absl::Status ValidateWorker(const WorkerConfig& worker, const std::string& path,
                              absl::flat_hash_map<std::string, int>* names, int index) const {
    SLM_RETURN_IF_ERROR(
        ValidateName(worker.name(), path + ".name", "worker", "workers", names, index));
    if (worker.model_path().empty()) {
      std::string field = path + ".model_path";
      return Error(field,
                   positions_.HasValue(field) ? "must not be empty" : "required field missing");
    }
    bool known_dtype = false;
    for (std::string_view dtype : kDtypes) known_dtype |= worker.dtype() == dtype;
    if (!known_dtype) {
      return Error(path + ".dtype",
                   absl::StrCat("expected one of f32, bf16, int8, got ", Quote(worker.dtype())));
    }
    SLM_RETURN_IF_ERROR(ValidateRange(worker.threads(), 1, kMaxWorkerThreads, path + ".threads"));
    SLM_RETURN_IF_ERROR(
        ValidateRange(worker.concurrency(), 1, kMaxWorkerThreads, path + ".concurrency"));
    return ValidateGeneration(worker, path);
  }

  absl::Status ValidatePool(const PoolConfig& pool, const std::string& path,
                            const GatewayConfig& config,
                            absl::flat_hash_map<std::string, int>* names, int index) const {
    SLM_RETURN_IF_ERROR(ValidateName(pool.name(), path + ".name", "pool", "pools", names, index));
    if (pool.endpoints_size() == 0) {
      return Error(path + ".endpoints", "at least one endpoint is required");
    }
    SLM_RETURN_IF_ERROR(ValidateRange(pool.resolve_interval_ms(), 100, 3600000,
                                      path + ".resolve_interval_ms"));
    if (pool.health_check_interval_ms() != 0) {
      SLM_RETURN_IF_ERROR(ValidateRange(pool.health_check_interval_ms(), 100, 3600000,
                                        path + ".health_check_interval_ms"));
    }
    SLM_RETURN_IF_ERROR(
        ValidateRange(pool.failures_to_open(), 1, 1000, path + ".failures_to_open"));
    SLM_RETURN_IF_ERROR(ValidateRange(pool.cooldown_ms(), 1, 3600000, path + ".cooldown_ms"));
    absl::flat_hash_map<absl::string_view, int> seen;
    for (int e = 0; e < pool.endpoints_size(); ++e) {
      const std::string& text = pool.endpoints(e);
      std::string endpoint_path = Indexed(path + ".endpoints", e);
      absl::StatusOr<Endpoint> endpoint = ParseEndpoint(text);
      if (!endpoint.ok()) return Error(endpoint_path, endpoint.status().message());
      auto [previous, inserted] = seen.emplace(text, e);
      if (!inserted) {
        return Error(endpoint_path,
                     absl::StrCat("duplicate endpoint ", Quote(text), " (also ",
                                  Indexed(path + ".endpoints", previous->second), ")"));
      }
      if (endpoint->kind != EndpointKind::kInProcess) continue;
      if (role_ != ConfigRole::kAllInOne) {
        return Error(endpoint_path,
                     absl::StrCat("inprocess endpoints are only allowed in the all-in-one "
                                  "gateway, not for the ",
                                  ToAbsl(ConfigRoleName(role_)), "; got ", Quote(text)));
      }
      bool found = false;
      for (const WorkerConfig& worker : config.workers())
        found |= worker.name() == endpoint->worker;
      if (!found) {
        return Error(endpoint_path, absl::StrCat("no worker named ", Quote(endpoint->worker),
                                                 " (workers: ", NameList(config.workers()), ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status ValidateRoute(const RouteConfig& route, const std::string& path,
                             const GatewayConfig& config,
                             absl::flat_hash_map<std::string, int>* names,
                             absl::flat_hash_map<std::string, std::string>* task_owner,
                             int index) const {
    SLM_RETURN_IF_ERROR(
        ValidateName(route.name(), path + ".name", "route", "routes", names, index));
    std::string pool_path = path + ".pool";
    if (route.pool().empty() && route.upstream().empty()) {  // upstream: upstream_config.cc
      return Error(pool_path,
                   positions_.HasValue(pool_path) ? "must not be empty" : "required field missing");
    }
    bool found = false;
    for (const PoolConfig& pool : config.pools()) found |= pool.name() == route.pool();
    if (!found && !route.pool().empty()) {
      return Error(pool_path, absl::StrCat("unknown pool ", Quote(route.pool()),
                                           " (pools: ", NameList(config.pools()), ")"));
    }
    SLM_RETURN_IF_ERROR(ValidateRate(route.requests_per_second(), route.burst(), path));
    const double percentile = route.hedge().percentile();
    if (!std::isfinite(percentile) || (percentile != 0 && (percentile < 50 || percentile > 99.9))) {
      return Error(path + ".hedge.percentile",
                   absl::StrCat("expected 0 (fixed delay) or 50..99.9, got ", percentile));
    }
    SLM_RETURN_IF_ERROR(
        ValidateRange(route.hedge().delay_ms(), 0, 600000, path + ".hedge.delay_ms"));
    for (int t = 0; t < route.tasks_size(); ++t) {
      const std::string& task = route.tasks(t);
      std::string task_path = Indexed(path + ".tasks", t);
      if (!IsValidName(task)) {
        return Error(task_path, absl::StrCat("expected a task name of letters, digits, '_', '.' "
                                             "and '-', got ",
                                             Quote(task)));
      }
      auto [owner, inserted] = task_owner->emplace(task, task_path);
      if (!inserted) {
        return Error(task_path,
                     absl::StrCat("task ", Quote(task), " already belongs to a route (",
                                  owner->second, "); a task may belong to one route only"));
      }
    }
    return absl::OkStatus();
  }

  const YamlSourceMap& positions_;
  bool from_yaml_;
  ConfigRole role_;
};

absl::StatusOr<std::shared_ptr<const GatewayConfig>> Finalize(GatewayConfig config,
                                                              const YamlSourceMap& positions,
                                                              bool from_yaml, ConfigRole role) {
  Finalizer finalizer(positions, from_yaml, role);
  finalizer.ApplyDefaults(&config);
  SLM_RETURN_IF_ERROR(finalizer.Validate(config));
  return std::make_shared<const GatewayConfig>(std::move(config));
}

}  // namespace

std::string_view ConfigRoleName(ConfigRole role) {
  switch (role) {
    case ConfigRole::kAllInOne:
      return "all-in-one";
    case ConfigRole::kRouter:
      return "router";
    case ConfigRole::kWorker:
      return "worker";
  }
  return "unknown";
}

absl::StatusOr<std::shared_ptr<const GatewayConfig>> ParseGatewayConfig(
    std::string_view yaml_text, std::string_view source_name, ConfigRole role) {
  GatewayConfig config;
  YamlSourceMap positions;
  SLM_RETURN_IF_ERROR(ParseYamlIntoMessage(yaml_text, source_name, &config, &positions));
  return Finalize(std::move(config), positions, /*from_yaml=*/true, role);
}

absl::StatusOr<std::shared_ptr<const GatewayConfig>> LoadGatewayConfigFile(const std::string& path,
                                                                           ConfigRole role) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    int error = errno;
    std::string message =
        absl::StrCat("cannot open config file ", Quote(path), ": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message) : absl::UnavailableError(message);
  }
  std::string text;
  char buffer[1 << 14];
  size_t read = 0;
  while ((read = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    text.append(buffer, read);
    if (text.size() > kMaxConfigFileBytes) break;
  }
  int error = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (error != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot read config file ", Quote(path), ": ", std::strerror(error)));
  }
  if (text.size() > kMaxConfigFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat("config file ", Quote(path), " is larger than ",
                                                   kMaxConfigFileBytes, " bytes"));
  }
  return ParseGatewayConfig(text, path, role);
}

absl::StatusOr<std::shared_ptr<const GatewayConfig>> FinalizeGatewayConfig(GatewayConfig config,
                                                                           ConfigRole role) {
  return Finalize(std::move(config), YamlSourceMap(), /*from_yaml=*/false, role);
}

}  // namespace slm::config
