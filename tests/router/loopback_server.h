// gRPC servers on a free loopback port for router tests, and an address nothing listens on.
//
//   RunningServer worker = Serve(&fake_worker);   // worker.address() == "127.0.0.1:<port>"
//   Start({ClosedAddress(), worker.address()});
//
// The caller owns the service, which must outlive the server.
#ifndef SLM_TESTS_ROUTER_LOOPBACK_SERVER_H_
#define SLM_TESTS_ROUTER_LOOPBACK_SERVER_H_

#include <memory>
#include <string>

#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace slm::router {

struct RunningServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

inline RunningServer Serve(grpc::Service* service) {
  RunningServer running;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &running.port);
  builder.RegisterService(service);
  running.server = builder.BuildAndStart();
  return running;
}

// A port nothing listens on: bind one with a server that answers nothing, then close it.
inline std::string ClosedAddress() {
  grpc::CallbackGenericService unused;
  RunningServer running;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &running.port);
  builder.RegisterCallbackGenericService(&unused);
  running.server = builder.BuildAndStart();
  const std::string address = running.address();
  running.server->Shutdown();
  return address;
}

}  // namespace slm::router

#endif  // SLM_TESTS_ROUTER_LOOPBACK_SERVER_H_
