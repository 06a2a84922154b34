// slm-router: serves slmgw.v1.GatewayService and dispatches to remote worker pools.
//
//   slm-router --config router.yaml [--listen 0.0.0.0:50051] [--metrics_listen 0.0.0.0:9464]
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/logging.h"
#include "common/process_config.h"
#include "common/server_lifecycle.h"
#include "common/server_tuning.h"
#include "common/serving.h"
#include "monitoring/metrics_server.h"
#include "router/config_reloader.h"
#include "router/gateway_service.h"
#include "tools/learned_tiers/learned_tiers.h"

ABSL_FLAG(std::string, config, "", "YAML configuration file with pools and routes (required)");
ABSL_FLAG(std::string, listen, "", "gRPC address host:port (overrides server.listen_address)");
ABSL_FLAG(std::string, metrics_listen, "",
          "metrics address host:port (overrides server.metrics_address)");
ABSL_FLAG(std::string, models_dir, "",
          "directory for relative model paths of learned classifier tiers");
ABSL_FLAG(std::string, ready_file, "", "write {grpc_port, metrics_port} here once serving");

int main(int argc, char** argv) {
  slm::TuneServerProcess();
  slm::BlockTerminationSignals();
  absl::SetProgramUsageMessage("slm-router --config FILE: route requests to worker pools");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_config).empty()) {
    SLM_LOG(ERROR) << "--config is required (a file with pools: and routes:)";
    return 2;
  }
  auto config = slm::LoadProcessConfig({absl::GetFlag(FLAGS_config), absl::GetFlag(FLAGS_listen),
                                        absl::GetFlag(FLAGS_metrics_listen)},
                                       slm::config::ConfigRole::kRouter);
  if (!config.ok()) {
    SLM_LOG(ERROR) << config.status().message();
    return 2;
  }
  auto metrics_server =
      slm::monitoring::MetricsServer::Start((*config)->server().metrics_address());
  if (!metrics_server.ok()) {
    SLM_LOG(ERROR) << metrics_server.status().message();
    return 1;
  }
  auto metrics = std::make_shared<slm::router::RouterMetrics>(*(*metrics_server)->registry());
  auto service = slm::router::GatewayServiceImpl::Create(
      *config, slm::router::DefaultChannelFactory(), metrics,
      slm::tools::LearnedTierLoader(slm::ResolveModelsDir(absl::GetFlag(FLAGS_models_dir))));
  if (!service.ok()) {
    SLM_LOG(ERROR) << service.status().message();
    return 1;
  }
  // Hot reload of --config (pools, routes, limits, dispatch, tenants, classification; not the
  // server section). Stops before the service is destroyed.
  auto reloader = slm::router::StartConfigReloader(
      absl::GetFlag(FLAGS_config), *config,
      [] {
        return slm::LoadProcessConfig({absl::GetFlag(FLAGS_config), absl::GetFlag(FLAGS_listen),
                                       absl::GetFlag(FLAGS_metrics_listen)},
                                      slm::config::ConfigRole::kRouter);
      },
      service->get(), metrics);
  slm::ServeOptions options;
  options.listen_address = (*config)->server().listen_address();
  options.drain_timeout_ms = (*config)->server().drain_timeout_ms();
  options.ready_file = absl::GetFlag(FLAGS_ready_file);
  absl::Status served =
      slm::ServeUntilTerminated({service->get()}, options, (*metrics_server)->port());
  if (!served.ok()) {
    SLM_LOG(ERROR) << served.message();
    return 1;
  }
  return 0;
}
