#include "common/serving.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/server_lifecycle.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"

namespace slm {

void ConfigureServerBuilder(grpc::ServerBuilder& builder) {
  static const bool once = [] {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    return true;
  }();
  (void)once;
  // Requests are bounded by limits.max_text_bytes long before this; keep gRPC's own cap modest.
  builder.SetMaxReceiveMessageSize(4 * 1024 * 1024);
}

absl::Status ServeUntilTerminated(const std::vector<grpc::Service*>& services,
                                  const ServeOptions& options, int metrics_port) {
  grpc::ServerBuilder builder;
  ConfigureServerBuilder(builder);
  int port = 0;
  builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(), &port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address, " (address in use or invalid)"));
  }
  SLM_LOG(INFO) << "serving gRPC on port " << port << " (" << options.listen_address
                << "), metrics on port " << metrics_port;
  if (!options.ready_file.empty()) {
    absl::Status written = WriteFileAtomically(
        options.ready_file,
        absl::StrCat("{\"grpc_port\": ", port, ", \"metrics_port\": ", metrics_port, "}\n"));
    if (!written.ok()) SLM_LOG(ERROR) << written;
  }
  const int signal_number = WaitForTerminationSignal();
  SLM_LOG(INFO) << "signal " << signal_number << ": draining for up to "
                << options.drain_timeout_ms << " ms";
  server->GetHealthCheckService()->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(options.drain_timeout_ms));
  server->Wait();
  if (options.after_drain) options.after_drain();
  SLM_LOG(INFO) << "stopped";
  return absl::OkStatus();
}

}  // namespace slm
