// One public request forwarded to a worker: a server reactor that owns the worker call.
// Internal to router/gateway_service.cc.
//
// Lifecycle: created by a GatewayServiceImpl RPC, Start()ed once, finishes itself when the pool
// call (pool_call.h: retries, hedging, circuit breaking) delivers its result, deletes itself in
// OnDone. OnCancel (caller went away) cancels the pool call. Holds the request's admission
// ticket until it is answered. Thread-safety: OnCancel may race with the pool call's callback;
// `mutex_` guards what they share.
#ifndef SLM_ROUTER_FORWARD_CALL_H_
#define SLM_ROUTER_FORWARD_CALL_H_

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/server_callback.h"
#include "monitoring/metrics_server.h"
#include "router/gateway_service.h"
#include "router/pool_call.h"

namespace slm::router {

template <typename WorkerRequest, typename WorkerResponse>
class ForwardCall final : public grpc::ServerUnaryReactor {
 public:
  // Starts the worker call on `stub`; `done` runs on a gRPC callback thread.
  using Invoke =
      std::function<void(slmgw::v1::WorkerService::Stub*, grpc::ClientContext*,
                         const WorkerRequest*, WorkerResponse*, std::function<void(grpc::Status)>)>;
  // Copies the worker's answer into the public response; returns its ServedBy to fill in and
  // the model's confidence.
  using Complete = std::function<slmgw::v1::ServedBy*(const WorkerResponse&, float* confidence)>;

  ForwardCall(GatewayServiceImpl* service, std::shared_ptr<const RouterState> state,
              const char* operation, slmgw::v1::RouteDecision decision, WorkerPool* pool,
              std::chrono::system_clock::time_point deadline,
              std::chrono::steady_clock::time_point start, WorkerRequest request, Invoke invoke,
              Complete complete)
      : service_(service),
        state_(std::move(state)),
        operation_(operation),
        decision_(std::move(decision)),
        pool_(pool),
        deadline_(deadline),
        start_(start),
        request_(std::make_shared<const WorkerRequest>(std::move(request))),
        invoke_(std::move(invoke)),
        complete_(std::move(complete)) {
    service_->metrics().in_flight.Increment();
  }

  // Keeps admission slots until the request is answered; `context` receives the retry-after
  // hint when the request ends RESOURCE_EXHAUSTED. Call before Start.
  void set_admission(grpc::CallbackServerContext* context, AdmissionTicket ticket) {
    server_context_ = context;
    admission_ = std::move(ticket);
  }

  void Start() {
    const slmgw::config::v1::GatewayConfig& config = *state_->config;
    DispatchPolicy policy;
    policy.max_attempts =
        config.has_dispatch() ? static_cast<int>(config.dispatch().max_attempts()) : 3;
    if (const slmgw::config::v1::RouteConfig* route =
            state_->route_table->FindRoute(decision_.route())) {
      policy.hedge_delay = std::chrono::milliseconds(route->hedge().delay_ms());
      if (auto it = state_->route_latency.find(decision_.route());
          it != state_->route_latency.end()) {
        latency_tracker_ = it->second.get();
        policy.hedge_delay =
            std::max<std::chrono::microseconds>(policy.hedge_delay, latency_tracker_->Current());
      }
    }
    auto call = PoolCall<WorkerRequest, WorkerResponse>::Start(
        pool_->shared_from_this(), service_->shared_metrics(), policy, deadline_, request_, invoke_,
        [this](typename PoolCall<WorkerRequest, WorkerResponse>::Result result) {
          OnPoolDone(std::move(result));
        });
    absl::MutexLock lock(&mutex_);
    pool_call_ = std::move(call);
    if (cancelled_) pool_call_->Cancel();
  }

  void OnCancel() override {
    std::shared_ptr<PoolCall<WorkerRequest, WorkerResponse>> call;
    {
      absl::MutexLock lock(&mutex_);
      cancelled_ = true;
      call = pool_call_;
    }
    if (call != nullptr) call->Cancel();
  }

  void OnDone() override {
    service_->metrics().in_flight.Decrement();
    delete this;
  }

 private:
  void OnPoolDone(typename PoolCall<WorkerRequest, WorkerResponse>::Result result) {
    if (!result.status.ok()) {
      Fail(result.status);
      return;
    }
    worker_time_ = result.worker_time;
    if (latency_tracker_ != nullptr) {
      latency_tracker_->Record(
          std::chrono::duration_cast<std::chrono::microseconds>(result.worker_time));
    }
    const WorkerResponse& response = result.response;
    float confidence = 0;
    slmgw::v1::ServedBy* served_by = complete_(response, &confidence);
    const slmgw::v1::WorkerReport& report = response.report();
    served_by->set_route(decision_.route());
    served_by->set_model(report.model());
    served_by->set_worker(result.endpoint->address);
    served_by->set_confidence(confidence);
    *served_by->mutable_usage() = report.usage();
    const auto total = std::chrono::steady_clock::now() - start_;
    const auto overhead = total - worker_time_;
    slmgw::v1::Timings* timings = served_by->mutable_timings();
    timings->set_router_us(ToMicros(overhead));
    timings->set_queue_us(report.queue_us());
    timings->set_compute_us(report.compute_us());
    timings->set_total_us(ToMicros(total));
    RequestMetrics& metrics = service_->metrics().per_request;
    metrics.RequestsOk(decision_.route(), report.model(), operation_).Increment();
    metrics.Latency(decision_.route(), operation_).Observe(ToSeconds(total));
    metrics.Overhead(decision_.route()).Observe(ToSeconds(overhead));
    Finish(grpc::Status::OK);
  }

  void Fail(const absl::Status& status) {
    if (status.code() == absl::StatusCode::kResourceExhausted && server_context_ != nullptr) {
      // A full pool or worker queue: tell the caller when to come back.
      server_context_->AddTrailingMetadata(
          "retry-after-ms", std::to_string(AdmissionController::kConcurrencyRetryAfter.count()));
    }
    service_->RecordFailure(operation_, decision_.route(), status, start_);
    Finish(ToGrpcStatus(status));
  }

  static uint64_t ToMicros(std::chrono::steady_clock::duration duration) {
    return std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
  }
  static double ToSeconds(std::chrono::steady_clock::duration duration) {
    return std::chrono::duration<double>(duration).count();
  }

  GatewayServiceImpl* const service_;
  const std::shared_ptr<const RouterState> state_;  // keeps the pool alive
  const char* const operation_;
  const slmgw::v1::RouteDecision decision_;
  WorkerPool* const pool_;
  const std::chrono::system_clock::time_point deadline_;
  const std::chrono::steady_clock::time_point start_;
  const std::shared_ptr<const WorkerRequest> request_;
  const Invoke invoke_;
  const Complete complete_;

  grpc::CallbackServerContext* server_context_ = nullptr;
  AdmissionTicket admission_;
  LatencyTracker* latency_tracker_ = nullptr;  // owned by state_; null: the route does not track
  // Touched only by the pool call's result callback.
  std::chrono::steady_clock::duration worker_time_{0};

  absl::Mutex mutex_;
  std::shared_ptr<PoolCall<WorkerRequest, WorkerResponse>> pool_call_ ABSL_GUARDED_BY(mutex_);
  bool cancelled_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace slm::router

#endif  // SLM_ROUTER_FORWARD_CALL_H_
