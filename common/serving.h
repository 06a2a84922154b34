// Runs a process's public gRPC server until SIGTERM/SIGINT, then drains it.
//
//   slm::BlockTerminationSignals();  // first thing in main
//   ...
//   ServeOptions options{.listen_address = "127.0.0.1:50051", .drain_timeout_ms = 10000};
//   return slm::ServeUntilTerminated({service.get()}, options, metrics->port()).ok() ? 0 : 1;
//
// Every server gets the standard grpc.health.v1 service (SERVING while up, NOT_SERVING while
// draining) and server reflection. With `ready_file` set, {"grpc_port":N,"metrics_port":M} is
// written there once the server listens (tests start binaries on port 0 and read it).
#ifndef SLM_COMMON_SERVING_H_
#define SLM_COMMON_SERVING_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace slm {

struct ServeOptions {
  std::string listen_address;
  uint32_t drain_timeout_ms = 10000;
  std::string ready_file;
  // Runs after the public server drained (e.g. to stop in-process workers).
  std::function<void()> after_drain;
};

// Applies the options every server of ours shares (message sizes, health, reflection).
void ConfigureServerBuilder(grpc::ServerBuilder& builder);

// Blocks until SIGTERM or SIGINT (BlockTerminationSignals must have run), then stops accepting,
// lets in-flight calls finish within the drain timeout, and returns OK.
// Errors: Unavailable when the address cannot be bound.
absl::Status ServeUntilTerminated(const std::vector<grpc::Service*>& services,
                                  const ServeOptions& options, int metrics_port);

}  // namespace slm

#endif  // SLM_COMMON_SERVING_H_
