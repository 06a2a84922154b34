// One public request forwarded to a worker: a server reactor that owns the worker call.
// Internal to router/gateway_service.cc.
//
// Lifecycle: created by a GatewayServiceImpl RPC, Start()ed once, finishes itself when the worker
// answers (or fails twice), deletes itself in OnDone. OnCancel (caller went away) cancels the
// worker call. Thread-safety: OnCancel may race with the worker callback; `mutex_` guards the
// client context they share.
#ifndef SLM_ROUTER_FORWARD_CALL_H_
#define SLM_ROUTER_FORWARD_CALL_H_

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

namespace slm::router {

template <typename WorkerRequest, typename WorkerResponse>
class ForwardCall final : public grpc::ServerUnaryReactor {
 public:
  // Starts the worker call on `stub`; `done` runs on a gRPC callback thread.
  using Invoke = std::function<void(slmgw::v1::WorkerService::Stub*, grpc::ClientContext*,
                                    const WorkerRequest*, WorkerResponse*,
                                    std::function<void(grpc::Status)>)>;
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
        request_(std::move(request)),
        invoke_(std::move(invoke)),
        complete_(std::move(complete)) {
    service_->metrics().in_flight.Increment();
  }

  void Start() { Attempt(nullptr); }

  void OnCancel() override {
    absl::MutexLock lock(&mutex_);
    cancelled_ = true;
    if (client_context_ != nullptr) client_context_->TryCancel();
  }

  void OnDone() override {
    service_->metrics().in_flight.Decrement();
    delete this;
  }

 private:
  void Attempt(const Endpoint* previous) {
    Endpoint* endpoint = pool_->Pick(previous);
    if (endpoint == nullptr) {
      Fail(absl::UnavailableError(absl::StrCat("pool '", pool_->name(), "': no worker endpoint",
                                               previous == nullptr ? "" : " left to retry",
                                               "; last error: ", last_error_)));
      return;
    }
    ++attempts_;
    endpoint_ = endpoint;
    call_counter_ = std::make_unique<ScopedCall>(endpoint);
    worker_start_ = std::chrono::steady_clock::now();
    grpc::ClientContext* context;
    {
      absl::MutexLock lock(&mutex_);
      client_context_ = std::make_unique<grpc::ClientContext>();
      client_context_->set_deadline(deadline_);
      if (cancelled_) client_context_->TryCancel();
      context = client_context_.get();
    }
    response_.Clear();
    invoke_(endpoint->stub.get(), context, &request_, &response_,
            [this](grpc::Status status) { OnWorkerDone(std::move(status)); });
  }

  void OnWorkerDone(grpc::Status status) {
    const auto worker_end = std::chrono::steady_clock::now();
    worker_time_ += worker_end - worker_start_;
    call_counter_.reset();
    const bool unreachable = status.error_code() == grpc::StatusCode::UNAVAILABLE;
    WorkerPool::RecordOutcome(*endpoint_, !unreachable);
    if (!status.ok()) {
      service_->metrics()
          .upstream_errors
          .Add({{"pool", pool_->name()},
                {"code", monitoring::OutcomeLabel(static_cast<int>(status.error_code()))}})
          .Increment();
      last_error_ = absl::StrCat(endpoint_->address, ": ", status.error_message());
      bool cancelled;
      {
        absl::MutexLock lock(&mutex_);
        cancelled = cancelled_;
      }
      if (unreachable && attempts_ < 2 && pool_->size() > 1 && !cancelled &&
          std::chrono::system_clock::now() < deadline_) {
        service_->metrics().retries.Add({{"pool", pool_->name()}}).Increment();
        Attempt(endpoint_);
        return;
      }
      if (unreachable) {
        Fail(absl::UnavailableError(absl::StrCat("pool '", pool_->name(),
                                                 "': worker unavailable (", last_error_, ")")));
      } else {
        Fail(FromGrpcStatus(status));
      }
      return;
    }
    endpoint_->reported_queue_depth.store(response_.report().load().queue_depth());
    float confidence = 0;
    slmgw::v1::ServedBy* served_by = complete_(response_, &confidence);
    const slmgw::v1::WorkerReport& report = response_.report();
    served_by->set_route(decision_.route());
    served_by->set_model(report.model());
    served_by->set_worker(endpoint_->address);
    served_by->set_confidence(confidence);
    *served_by->mutable_usage() = report.usage();
    const auto total = std::chrono::steady_clock::now() - start_;
    const auto overhead = total - worker_time_;
    slmgw::v1::Timings* timings = served_by->mutable_timings();
    timings->set_router_us(ToMicros(overhead));
    timings->set_queue_us(report.queue_us());
    timings->set_compute_us(report.compute_us());
    timings->set_total_us(ToMicros(total));
    RouterMetrics& metrics = service_->metrics();
    metrics.requests
        .Add({{"route", decision_.route()},
              {"model", report.model()},
              {"operation", operation_},
              {"outcome", "ok"}})
        .Increment();
    metrics.latency
        .Add({{"route", decision_.route()}, {"operation", operation_}},
             monitoring::LatencyBucketsSeconds())
        .Observe(ToSeconds(total));
    metrics.overhead.Add({{"route", decision_.route()}}, monitoring::LatencyBucketsSeconds())
        .Observe(ToSeconds(overhead));
    Finish(grpc::Status::OK);
  }

  void Fail(const absl::Status& status) {
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
  const WorkerRequest request_;
  const Invoke invoke_;
  const Complete complete_;

  // Touched only by the thread that runs the current attempt's callback (attempts are serial).
  WorkerResponse response_;
  Endpoint* endpoint_ = nullptr;
  std::unique_ptr<ScopedCall> call_counter_;
  int attempts_ = 0;
  std::string last_error_ = "none";
  std::chrono::steady_clock::time_point worker_start_;
  std::chrono::steady_clock::duration worker_time_{0};

  absl::Mutex mutex_;
  std::unique_ptr<grpc::ClientContext> client_context_ ABSL_GUARDED_BY(mutex_);
  bool cancelled_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace slm::router

#endif  // SLM_ROUTER_FORWARD_CALL_H_
