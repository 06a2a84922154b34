// The gateway's configuration: YAML read into slmgw.config.v1.GatewayConfig, defaults applied,
// validated once, and handed out as an immutable snapshot that every request may share.
//
//   absl::StatusOr<std::shared_ptr<const GatewayConfig>> config =
//       LoadGatewayConfigFile(flags.config_path, ConfigRole::kAllInOne);
//   if (!config.ok()) { SLM_LOG(ERROR) << config.status(); return 1; }
//   StartServer((*config)->server().listen_address(), *config);
//
// Defaults (applied when a key is absent or null; an explicit value, even 0, is kept and then
// validated): server.listen_address 127.0.0.1:50051, server.metrics_address 127.0.0.1:9464,
// server.drain_timeout_ms 10000, limits.max_text_bytes 16384, limits.default_deadline_ms 10000,
// and per worker dtype "f32", threads 1, concurrency 1, max_queue_depth 64; server
// config_poll_interval_ms 1000; per pool resolve_interval_ms 5000, health_check_interval_ms 2000,
// failures_to_open 3, cooldown_ms 2000; dispatch max_attempts 3, retry_budget_ratio 0.1,
// retry_budget_min_per_second 5; route and tenant burst = requests_per_second rounded up. Fields
// whose schema says 0 means "unset" (route deadline_ms, worker max_input_tokens, limits of
// admission) stay 0.
//
// Validation errors are absl::InvalidArgumentError naming source, line, column and field path:
//   gateway.yaml:14:11: routes[0].pool: unknown pool "sentimnet" (pools: sentiment)
//
// Thread-safety: all functions are reentrant. The returned snapshot is immutable and may be read
// from any number of threads; holders keep it alive (a reload builds a new snapshot).
#ifndef SLM_COMMON_CONFIG_GATEWAY_CONFIG_H_
#define SLM_COMMON_CONFIG_GATEWAY_CONFIG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "slmgw/config/v1/config.pb.h"

namespace slm::config {

// Which binary reads the configuration; each needs different sections.
enum class ConfigRole {
  // slm-gateway: router and in-process workers; at least one route; pools may use inprocess:.
  kAllInOne,
  // slm-router: pools and routes, no workers, no inprocess: endpoints.
  kRouter,
  // slm-worker: server and exactly one worker; no pools, routes or default_route.
  kWorker,
};

// "all-in-one", "router" or "worker", for messages.
std::string_view ConfigRoleName(ConfigRole role);

inline constexpr std::string_view kDefaultListenAddress = "127.0.0.1:50051";
inline constexpr std::string_view kDefaultMetricsAddress = "127.0.0.1:9464";
inline constexpr uint32_t kDefaultDrainTimeoutMs = 10000;
inline constexpr uint32_t kDefaultMaxTextBytes = 16384;
inline constexpr uint32_t kDefaultDeadlineMs = 10000;
inline constexpr std::string_view kDefaultWorkerDtype = "f32";
inline constexpr uint32_t kDefaultWorkerThreads = 1;
inline constexpr uint32_t kDefaultWorkerConcurrency = 1;
inline constexpr uint32_t kDefaultWorkerMaxQueueDepth = 64;
// Upper bound of worker threads and concurrency.
inline constexpr uint32_t kMaxWorkerThreads = 256;
inline constexpr uint32_t kDefaultConfigPollIntervalMs = 1000;
inline constexpr uint32_t kDefaultResolveIntervalMs = 5000;
inline constexpr uint32_t kDefaultHealthCheckIntervalMs = 2000;
inline constexpr uint32_t kDefaultFailuresToOpen = 3;
inline constexpr uint32_t kDefaultCooldownMs = 2000;
inline constexpr uint32_t kDefaultMaxAttempts = 3;
inline constexpr uint32_t kMaxAttempts = 10;
inline constexpr double kDefaultRetryBudgetRatio = 0.1;
inline constexpr double kDefaultRetryBudgetMinPerSecond = 5;

// Parses `yaml_text` (errors start with `source_name`), applies defaults and validates for
// `role`. Unknown keys, wrong types and every rule in gateway_config.cc are InvalidArgument.
absl::StatusOr<std::shared_ptr<const slmgw::config::v1::GatewayConfig>> ParseGatewayConfig(
    std::string_view yaml_text, std::string_view source_name, ConfigRole role);

// Reads the file at `path` and parses it as above; errors name `path`. A missing file is
// NotFound, another read failure Unavailable.
absl::StatusOr<std::shared_ptr<const slmgw::config::v1::GatewayConfig>> LoadGatewayConfigFile(
    const std::string& path, ConfigRole role);

// For configurations built in code (tests, tools): applies the defaults to fields that are zero
// or empty, then validates as above. Errors name the field path, without a line.
absl::StatusOr<std::shared_ptr<const slmgw::config::v1::GatewayConfig>> FinalizeGatewayConfig(
    slmgw::config::v1::GatewayConfig config, ConfigRole role);

// The configuration `make run` starts (common/config/default.yaml, embedded at build time). It
// parses and validates for ConfigRole::kAllInOne. Valid for the life of the process.
std::string_view DefaultConfigYaml();

}  // namespace slm::config

#endif  // SLM_COMMON_CONFIG_GATEWAY_CONFIG_H_
