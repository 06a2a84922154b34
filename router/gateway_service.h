// The public slmgw.v1.GatewayService: admission, routing, dispatch to a worker pool, and a
// response that says who served it.
//
//   auto metrics = std::make_shared<RouterMetrics>(*metrics_server->registry());
//   SLM_ASSIGN_OR_RETURN(auto service,
//       GatewayServiceImpl::Create(config, DefaultChannelFactory(), metrics));
//   builder.RegisterService(service.get());
//
// Request path: validate (size limits) -> decide the route -> admission control (route and tenant
// concurrency and rate limits; over a limit: RESOURCE_EXHAUSTED with a `retry-after-ms`
// trailer) -> PoolCall (pool_call.h): pick an endpoint of the route's pool, call the worker
// asynchronously with the caller's deadline (or the configured default, capped by the route's
// deadline), retry where safe within the pool's retry budget, hedge when the route says so ->
// fill ServedBy. A call the caller cancels is cancelled at the worker too.
// Configuration is a snapshot (RouterState) swapped atomically by Reload; a request keeps the
// snapshot it started with. A background thread re-resolves DNS endpoints, health-checks
// endpoints and sets the endpoint gauges (MaintainPools).
// Reactors never block: the worker call completes on gRPC's callback threads.
// Thread-safety: all RPCs, Reload and Snapshot may run concurrently. The service must outlive its
// grpc::Server.
#ifndef SLM_ROUTER_GATEWAY_SERVICE_H_
#define SLM_ROUTER_GATEWAY_SERVICE_H_

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "router/admission.h"
#include "router/classification/route_policy.h"
#include "router/classification/text_classifier.h"
#include "router/latency_tracker.h"
#include "router/route_table.h"
#include "router/router_metrics.h"
#include "router/upstream/openai_client.h"
#include "router/worker_pool.h"
#include "slmgw/config/v1/config.pb.h"
#include "slmgw/v1/gateway.grpc.pb.h"

namespace slm::router {

// Everything a request needs from configuration, immutable and shared by in-flight requests.
struct RouterState {
  std::shared_ptr<const slmgw::config::v1::GatewayConfig> config;
  std::unique_ptr<RouteTable> route_table;
  std::unique_ptr<RoutePolicy> policy;  // borrows route_table
  // Pools whose configuration did not change are shared with the previous snapshot on reload
  // (endpoints, circuits and retry budget carry over).
  absl::flat_hash_map<std::string, std::shared_ptr<WorkerPool>> pools;
  std::unique_ptr<AdmissionController> admission;
  // Recent worker latencies of routes that hedge after a percentile.
  absl::flat_hash_map<std::string, std::unique_ptr<LatencyTracker>> route_latency;
  // OpenAI-compatible upstreams that serve routes (router/fallback/); unchanged ones are shared
  // with the previous snapshot on reload.
  absl::flat_hash_map<std::string, std::shared_ptr<upstream::UpstreamClient>> upstreams;
};

class GatewayServiceImpl final : public slmgw::v1::GatewayService::CallbackService {
 public:
  static absl::StatusOr<std::unique_ptr<GatewayServiceImpl>> Create(
      std::shared_ptr<const slmgw::config::v1::GatewayConfig> config,
      const ChannelFactory& channel_factory, std::shared_ptr<RouterMetrics> metrics,
      const ClassifierLoader& classifier_loader = RefuseLearnedTiers(),
      const Resolver& resolver = SystemResolver());
  // Stops background work (StopBackgroundWork).
  ~GatewayServiceImpl() override;
  // Stops the pool maintenance thread and cancels the health checks in flight, waiting for them
  // (about a second at most). Call before the workers' servers stop (slm-gateway's in-process
  // workers); requests keep being served. Idempotent.
  void StopBackgroundWork();

  // Hot reload: builds a snapshot from a validated configuration and swaps it in atomically.
  // Requests in flight finish on the snapshot they started with. On error (a pool or classifier
  // that cannot be built) nothing changes. Calls are serialized.
  absl::Status Reload(std::shared_ptr<const slmgw::config::v1::GatewayConfig> config);
  // The snapshot new requests use now.
  std::shared_ptr<const RouterState> Snapshot() const;
  // One maintenance pass now (the background thread runs one every kMaintenancePeriod): DNS
  // re-resolution and health checks when due, and the endpoint-state gauges.
  void MaintainPools();
  static constexpr std::chrono::milliseconds kMaintenancePeriod{100};

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
  const std::shared_ptr<RouterMetrics>& shared_metrics() const { return metrics_; }

 private:
  GatewayServiceImpl(std::shared_ptr<const RouterState> state,
                     std::shared_ptr<RouterMetrics> metrics, ChannelFactory channel_factory,
                     ClassifierLoader classifier_loader, Resolver resolver);
  // A snapshot for `config`; reuses unchanged pools and admission state of `previous` (may be
  // null). Defined in gateway_reload.cc, as are Reload, MaintainPools and the thread.
  static absl::StatusOr<std::shared_ptr<RouterState>> BuildState(
      std::shared_ptr<const slmgw::config::v1::GatewayConfig> config,
      const ChannelFactory& channel_factory, const ClassifierLoader& classifier_loader,
      const Resolver& resolver, const RouterState* previous);
  void MaintenanceLoop();
  // Admission control of `decision`'s route and the request's tenant. When shed: counts it, puts
  // the retry-after hint in the trailing metadata and returns RESOURCE_EXHAUSTED.
  absl::Status AdmitLoad(grpc::CallbackServerContext* context, const RouterState& state,
                         const slmgw::v1::RouteDecision& decision,
                         const slmgw::v1::RequestOptions& options, AdmissionTicket* ticket);

  // Routing and admission shared by every operation; fills `decision`, `pool` and `ticket`.
  absl::Status Admit(grpc::CallbackServerContext* context, const std::string& text,
                     const slmgw::v1::RequestOptions& options, const RouterState& state,
                     slmgw::v1::RouteDecision* decision, WorkerPool** pool,
                     AdmissionTicket* ticket);
  // The deadline for the worker call: the caller's (or the default), capped by the route's.
  std::chrono::system_clock::time_point WorkerDeadline(
      const grpc::CallbackServerContext& context, const RouterState& state,
      const std::string& route) const;
  void RecordFailure(const char* operation, const std::string& route, const absl::Status& status,
                     std::chrono::steady_clock::time_point start);

  const std::shared_ptr<RouterMetrics> metrics_;
  const ChannelFactory channel_factory_;
  const ClassifierLoader classifier_loader_;
  const Resolver resolver_;

  mutable absl::Mutex state_mutex_;
  std::shared_ptr<const RouterState> state_ ABSL_GUARDED_BY(state_mutex_);
  absl::Mutex reload_mutex_;  // serializes Reload

  absl::Mutex stop_mutex_;
  bool stopping_ ABSL_GUARDED_BY(stop_mutex_) = false;
  std::thread maintenance_thread_;
  // Pools the endpoint gauges were last set for (to zero those a reload removed).
  std::vector<std::string> gauged_pools_;  // maintenance thread only

  template <typename WorkerRequest, typename WorkerResponse>
  friend class ForwardCall;
};

}  // namespace slm::router

#endif  // SLM_ROUTER_GATEWAY_SERVICE_H_
