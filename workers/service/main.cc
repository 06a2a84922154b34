// slm-worker: serves one model (the configuration's single worker) over slmgw.v1.WorkerService.
//
//   slm-worker --config worker.yaml [--listen 0.0.0.0:50061] [--metrics_listen 0.0.0.0:9465]
//   slm-worker --model smollm2.gguf [--dtype int8] [--threads 2] --listen 127.0.0.1:50061
//
// --model without --config serves one GGUF file with a one-worker configuration (name: the file
// stem; every other field at its default), e.g. to try a model with `slmctl generate --worker`.
#include <cctype>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/config/gateway_config.h"
#include "common/logging.h"
#include "common/process_config.h"
#include "common/server_lifecycle.h"
#include "common/server_tuning.h"
#include "common/serving.h"
#include "monitoring/metrics_server.h"
#include "workers/service/worker_service.h"

ABSL_FLAG(std::string, config, "", "YAML configuration file with exactly one worker (required)");
ABSL_FLAG(std::string, listen, "", "gRPC address host:port (overrides server.listen_address)");
ABSL_FLAG(std::string, metrics_listen, "",
          "metrics address host:port (overrides server.metrics_address)");
ABSL_FLAG(std::string, models_dir, "", "directory for relative model paths");
ABSL_FLAG(std::string, ready_file, "", "write {grpc_port, metrics_port} here once serving");
ABSL_FLAG(std::string, model, "",
          "serve this GGUF file without --config (a one-worker configuration)");
ABSL_FLAG(std::string, dtype, "", "with --model: in-memory weight type (f32, bf16, int8)");
ABSL_FLAG(uint32_t, threads, 0, "with --model: compute threads");

namespace {

// The configuration --model stands for; --listen / --metrics_listen apply as for --config.
absl::StatusOr<std::shared_ptr<const slmgw::config::v1::GatewayConfig>> SingleModelConfig() {
  slmgw::config::v1::GatewayConfig config;
  const std::string model = absl::GetFlag(FLAGS_model);
  slmgw::config::v1::WorkerConfig* worker = config.add_workers();
  std::string name = std::filesystem::path(model).stem().string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '-';
  }
  worker->set_name(name.empty() ? "model" : name);
  worker->set_model_path(std::filesystem::absolute(model).string());
  worker->set_dtype(absl::GetFlag(FLAGS_dtype));
  worker->set_threads(absl::GetFlag(FLAGS_threads));
  if (!absl::GetFlag(FLAGS_listen).empty()) {
    config.mutable_server()->set_listen_address(absl::GetFlag(FLAGS_listen));
  }
  if (!absl::GetFlag(FLAGS_metrics_listen).empty()) {
    config.mutable_server()->set_metrics_address(absl::GetFlag(FLAGS_metrics_listen));
  }
  return slm::config::FinalizeGatewayConfig(std::move(config), slm::config::ConfigRole::kWorker);
}

}  // namespace

int main(int argc, char** argv) {
  slm::TuneServerProcess();
  slm::BlockTerminationSignals();
  absl::SetProgramUsageMessage(
      "slm-worker --config FILE | --model FILE.gguf: serve one model over gRPC");
  absl::ParseCommandLine(argc, argv);
  const bool single_model = !absl::GetFlag(FLAGS_model).empty();
  if (absl::GetFlag(FLAGS_config).empty() == !single_model) {
    SLM_LOG(ERROR) << "give exactly one of --config (a file with one entry under workers:) and "
                      "--model (a GGUF file)";
    return 2;
  }
  if (!single_model && (!absl::GetFlag(FLAGS_dtype).empty() || absl::GetFlag(FLAGS_threads) > 0)) {
    SLM_LOG(ERROR) << "--dtype and --threads go with --model; set them in the --config file";
    return 2;
  }
  auto config = single_model
                    ? SingleModelConfig()
                    : slm::LoadProcessConfig({absl::GetFlag(FLAGS_config),
                                              absl::GetFlag(FLAGS_listen),
                                              absl::GetFlag(FLAGS_metrics_listen)},
                                             slm::config::ConfigRole::kWorker);
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
  auto metrics = std::make_shared<slm::workers::WorkerMetrics>(*(*metrics_server)->registry());
  auto service = slm::workers::WorkerServiceImpl::Create(
      (*config)->workers(0),
      single_model ? std::string() : slm::ResolveModelsDir(absl::GetFlag(FLAGS_models_dir)),
      (*config)->limits().max_text_bytes(), metrics);
  if (!service.ok()) {
    SLM_LOG(ERROR) << service.status().message();
    return 1;
  }
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
