// bare_proxy: the floor any gRPC proxy hop costs, as a baseline for slm-router's overhead
// (tests/bench/run_router_overhead.sh). It forwards every unary call, whatever its method, as raw
// bytes to one of its upstreams (round robin over one channel each) and answers with the
// upstream's bytes and status: no parsing, routing, metrics or retries. The caller's deadline is
// passed on (the one thing a real proxy cannot skip).
//
//   bare_proxy --upstreams 127.0.0.1:50051[,127.0.0.1:50052] --listen 127.0.0.1:0
//              [--ready_file FILE]
//
// The ready file gets {"grpc_port": P, "metrics_port": 0} once serving (as the servers' own).
// Runs until SIGINT/SIGTERM. Threading: gRPC's callback API on both sides; a reactor never blocks.
// A benchmark tool: handles unary calls only (a streaming call gets its first message forwarded
// and then ends).
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"

ABSL_FLAG(std::string, upstreams, "", "comma-separated host:port list to forward to (required)");
ABSL_FLAG(std::string, listen, "127.0.0.1:0", "gRPC address host:port");
ABSL_FLAG(std::string, ready_file, "", "write {\"grpc_port\": P, \"metrics_port\": 0} here");
ABSL_FLAG(bool, health_service, false,
          "also serve gRPC's default (synchronous) health service, as slm-router does");

namespace {

// One forwarded call: reads the request, calls the upstream, writes its answer, deletes itself.
class ForwardReactor final : public grpc::ServerGenericBidiReactor {
 public:
  ForwardReactor(grpc::GenericCallbackServerContext* context, grpc::GenericStub* stub)
      : server_context_(context), stub_(stub) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bare_proxy: no request message"));
      return;
    }
    client_context_.set_deadline(server_context_->deadline());
    stub_->UnaryCall(&client_context_, server_context_->method(), grpc::StubOptions(), &request_,
                     &response_, [this](grpc::Status status) {
                       if (status.ok()) {
                         StartWriteAndFinish(&response_, grpc::WriteOptions(), status);
                       } else {
                         Finish(status);
                       }
                     });
  }

  void OnCancel() override { client_context_.TryCancel(); }
  void OnDone() override { delete this; }

 private:
  grpc::GenericCallbackServerContext* const server_context_;
  grpc::GenericStub* const stub_;
  grpc::ClientContext client_context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

class ProxyService final : public grpc::CallbackGenericService {
 public:
  explicit ProxyService(const std::vector<std::string>& upstreams) {
    for (const std::string& address : upstreams) {
      stubs_.push_back(std::make_unique<grpc::GenericStub>(
          grpc::CreateChannel(address, grpc::InsecureChannelCredentials())));
    }
  }

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    const size_t index = next_.fetch_add(1, std::memory_order_relaxed) % stubs_.size();
    return new ForwardReactor(context, stubs_[index].get());
  }

 private:
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
  std::atomic<size_t> next_{0};
};

int Usage(const std::string& message) {
  std::fprintf(stderr, "bare_proxy: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("bare_proxy --upstreams HOST:PORT[,...] [--listen HOST:PORT]");
  absl::ParseCommandLine(argc, argv);
  std::vector<std::string> upstreams =
      absl::StrSplit(absl::GetFlag(FLAGS_upstreams), ',', absl::SkipEmpty());
  if (upstreams.empty()) return Usage("--upstreams is required (host:port[,host:port...])");

  // Block the termination signals before gRPC starts its threads; main waits for one below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // As the servers do (common/server_tuning.h): no absl::Mutex deadlock detection, which gRPC's
  // own mutexes would otherwise pay on Debian's Abseil.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (absl::GetFlag(FLAGS_health_service)) grpc::EnableDefaultHealthCheckService(true);
  ProxyService service(upstreams);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  builder.RegisterCallbackGenericService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return Usage("could not listen on " + absl::GetFlag(FLAGS_listen));
  }
  if (const std::string ready = absl::GetFlag(FLAGS_ready_file); !ready.empty()) {
    const std::string temp = ready + ".tmp";
    std::ofstream(temp) << "{\"grpc_port\": " << port << ", \"metrics_port\": 0}\n";
    std::rename(temp.c_str(), ready.c_str());
  }
  int signal = 0;
  sigwait(&signals, &signal);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}
