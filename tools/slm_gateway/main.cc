// slm-gateway: the single-machine default. The router and every configured worker in one
// process; the router reaches its workers through gRPC in-process channels, so this binary runs
// exactly the code paths of a slm-router + slm-worker deployment.
//
//   slm-gateway                      # the embedded default configuration and models/
//   slm-gateway --config my.yaml --listen 127.0.0.1:0 --ready_file /tmp/ready.json
//
// This file is the one composition root that sees both router/ and workers/.
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/process_config.h"
#include "common/server_lifecycle.h"
#include "common/server_tuning.h"
#include "common/serving.h"
#include "monitoring/metrics_server.h"
#include "router/config_reloader.h"
#include "router/gateway_service.h"
#include "tools/learned_tiers/learned_tiers.h"
#include "workers/service/worker_service.h"

ABSL_FLAG(std::string, config, "", "YAML configuration file (default: the embedded default)");
ABSL_FLAG(std::string, listen, "", "gRPC address host:port (overrides server.listen_address)");
ABSL_FLAG(std::string, metrics_listen, "",
          "metrics address host:port (overrides server.metrics_address)");
ABSL_FLAG(std::string, models_dir, "", "directory for relative model paths");
ABSL_FLAG(std::string, ready_file, "", "write {grpc_port, metrics_port} here once serving");

namespace {

// A worker served in this process: its service and the port-less server that hosts it.
struct InProcessWorker {
  std::unique_ptr<slm::workers::WorkerServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
};

int Run() {
  auto config = slm::LoadProcessConfig({absl::GetFlag(FLAGS_config), absl::GetFlag(FLAGS_listen),
                                        absl::GetFlag(FLAGS_metrics_listen)},
                                       slm::config::ConfigRole::kAllInOne);
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
  prometheus::Registry& registry = *(*metrics_server)->registry();
  auto worker_metrics = std::make_shared<slm::workers::WorkerMetrics>(registry);
  auto router_metrics = std::make_shared<slm::router::RouterMetrics>(registry);

  const std::string models_dir = slm::ResolveModelsDir(absl::GetFlag(FLAGS_models_dir));
  absl::flat_hash_map<std::string, InProcessWorker> workers;
  for (const auto& worker_config : (*config)->workers()) {
    auto service = slm::workers::WorkerServiceImpl::Create(
        worker_config, models_dir, (*config)->limits().max_text_bytes(), worker_metrics);
    if (!service.ok()) {
      SLM_LOG(ERROR) << service.status().message();
      return 1;
    }
    grpc::ServerBuilder builder;
    slm::ConfigureServerBuilder(builder);
    builder.RegisterService(service->get());
    InProcessWorker worker{*std::move(service), builder.BuildAndStart()};
    if (worker.server == nullptr) {
      SLM_LOG(ERROR) << "worker '" << worker_config.name() << "': cannot start its server";
      return 1;
    }
    workers.emplace(worker_config.name(), std::move(worker));
  }

  slm::router::ChannelFactory default_factory = slm::router::DefaultChannelFactory();
  slm::router::ChannelFactory factory =
      [&workers, &default_factory](
          const std::string& endpoint) -> absl::StatusOr<std::shared_ptr<grpc::Channel>> {
    constexpr absl::string_view kPrefix = "inprocess:";
    if (!absl::StartsWith(endpoint, kPrefix)) return default_factory(endpoint);
    auto it = workers.find(endpoint.substr(kPrefix.size()));
    if (it == workers.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint '", endpoint, "': no worker of that name in this process"));
    }
    return it->second.server->InProcessChannel(grpc::ChannelArguments());
  };
  auto gateway = slm::router::GatewayServiceImpl::Create(
      *config, factory, router_metrics, slm::tools::LearnedTierLoader(models_dir));
  if (!gateway.ok()) {
    SLM_LOG(ERROR) << gateway.status().message();
    return 1;
  }

  // Hot reload of --config (pools, routes, limits, dispatch, tenants, classification; not the
  // server section nor in-process workers). Stops before the service is destroyed.
  auto reloader = slm::router::StartConfigReloader(
      absl::GetFlag(FLAGS_config), *config,
      [] {
        return slm::LoadProcessConfig({absl::GetFlag(FLAGS_config), absl::GetFlag(FLAGS_listen),
                                       absl::GetFlag(FLAGS_metrics_listen)},
                                      slm::config::ConfigRole::kAllInOne);
      },
      gateway->get(), router_metrics);
  slm::ServeOptions options;
  options.listen_address = (*config)->server().listen_address();
  options.drain_timeout_ms = (*config)->server().drain_timeout_ms();
  options.ready_file = absl::GetFlag(FLAGS_ready_file);
  options.after_drain = [&workers, &gateway, &reloader] {
    // No reload, maintenance or health check may reach a worker once its server stops.
    reloader.reset();
    (*gateway)->StopBackgroundWork();
    for (auto& [name, worker] : workers) worker.server->Shutdown();
  };
  absl::Status served =
      slm::ServeUntilTerminated({gateway->get()}, options, (*metrics_server)->port());
  if (!served.ok()) {
    SLM_LOG(ERROR) << served.message();
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  slm::TuneServerProcess();
  slm::BlockTerminationSignals();
  absl::SetProgramUsageMessage("slm-gateway: router and workers in one process");
  absl::ParseCommandLine(argc, argv);
  return Run();
}
