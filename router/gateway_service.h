// The public slmgw.v1.GatewayService: admission, routing, dispatch to a worker pool, and a
// response that says who served it.
//
//   auto metrics = std::make_shared<RouterMetrics>(*metrics_server->registry());
//   SLM_ASSIGN_OR_RETURN(auto service,
//       GatewayServiceImpl::Create(config, DefaultChannelFactory(), metrics));
//   builder.RegisterService(service.get());
//
// Request path: validate (size limits) -> RouteTable::Decide -> pick an endpoint of the route's
// pool -> call the worker asynchronously with the caller's deadline (or the configured default,
// capped by the route's deadline) -> fill ServedBy. A call the caller cancels is cancelled at the
// worker too. A worker that is unreachable (UNAVAILABLE) is retried once on another endpoint of
// the pool: classification is idempotent and nothing was returned to the caller yet.
// Reactors never block: the worker call completes on gRPC's callback threads.
// Thread-safety: all RPCs may run concurrently. The service must outlive its grpc::Server.
#ifndef SLM_ROUTER_GATEWAY_SERVICE_H_
#define SLM_ROUTER_GATEWAY_SERVICE_H_

#include <chrono>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "router/route_table.h"
#include "router/router_metrics.h"
#include "router/worker_pool.h"
#include "slmgw/config/v1/config.pb.h"
#include "slmgw/v1/gateway.grpc.pb.h"

namespace slm::router {

// Everything a request needs from configuration, immutable and shared by in-flight requests.
struct RouterState {
  std::shared_ptr<const slmgw::config::v1::GatewayConfig> config;
  std::unique_ptr<RouteTable> route_table;
  absl::flat_hash_map<std::string, std::unique_ptr<WorkerPool>> pools;
};

class GatewayServiceImpl final : public slmgw::v1::GatewayService::CallbackService {
 public:
  static absl::StatusOr<std::unique_ptr<GatewayServiceImpl>> Create(
      std::shared_ptr<const slmgw::config::v1::GatewayConfig> config,
      const ChannelFactory& channel_factory, std::shared_ptr<RouterMetrics> metrics);

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const slmgw::v1::ClassifyRequest* request,
                                     slmgw::v1::ClassifyResponse* response) override;
  grpc::ServerUnaryReactor* ExtractEntities(grpc::CallbackServerContext* context,
                                            const slmgw::v1::ExtractEntitiesRequest* request,
                                            slmgw::v1::ExtractEntitiesResponse* response) override;
  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const slmgw::v1::GenerateRequest* request,
                                     slmgw::v1::GenerateResponse* response) override;
  grpc::ServerWriteReactor<slmgw::v1::GenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext* context,
      const slmgw::v1::GenerateStreamRequest* request) override;
  grpc::ServerUnaryReactor* Route(grpc::CallbackServerContext* context,
                                  const slmgw::v1::RouteRequest* request,
                                  slmgw::v1::RouteResponse* response) override;

  RouterMetrics& metrics() { return *metrics_; }

 private:
  GatewayServiceImpl(std::shared_ptr<const RouterState> state,
                     std::shared_ptr<RouterMetrics> metrics);

  // Admission and routing shared by every operation; fills `decision` and `pool`.
  absl::Status Admit(const std::string& text, const slmgw::v1::RequestOptions& options,
                     const RouterState& state, slmgw::v1::RouteDecision* decision,
                     WorkerPool** pool);
  // The deadline for the worker call: the caller's (or the default), capped by the route's.
  std::chrono::system_clock::time_point WorkerDeadline(
      const grpc::CallbackServerContext& context, const RouterState& state,
      const std::string& route) const;
  void RecordFailure(const char* operation, const std::string& route, const absl::Status& status,
                     std::chrono::steady_clock::time_point start);

  std::shared_ptr<const RouterState> state_;
  std::shared_ptr<RouterMetrics> metrics_;

  template <typename WorkerRequest, typename WorkerResponse>
  friend class ForwardCall;
};

}  // namespace slm::router

#endif  // SLM_ROUTER_GATEWAY_SERVICE_H_
