// One unary public request (Classify, Generate) served along its fallback chain: a server reactor
// that tries the decided route, then its fallback routes (fallback_chain.h says when it moves
// on), each on a worker pool (PoolCall: retries and the route's hedging within the pool) or an
// OpenAI-compatible upstream.
// Internal to router/.
//
//   auto* call = new CascadeCall<ClassifyOp>(metrics, state, std::move(chain), decision,
//                                            std::move(op), response, context, std::move(ticket),
//                                            caller_deadline, start);
//   call->Start();
//   return call;
//
// Every step gets the caller's deadline, capped by its route's deadline_ms. When a later step
// fails after an earlier one answered with low confidence, the best earlier answer is served
// (a request is never lost to its own escalation). ServedBy says which route and worker
// answered; fell_back and fallback_reason say why the request left its decided route (the first
// reason: the decision's own fallback, else the first escalation).
//
// Lifecycle: Start once; the reactor finishes itself and deletes itself in OnDone. OnCancel (the
// caller went away) cancels the step in flight. Steps are serial: their callbacks (gRPC or
// upstream I/O threads) never overlap; `mutex_` guards what OnCancel shares with them.
#ifndef SLM_ROUTER_FALLBACK_CASCADE_CALL_H_
#define SLM_ROUTER_FALLBACK_CASCADE_CALL_H_

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "grpcpp/support/server_callback.h"
#include "monitoring/metrics_server.h"
#include "router/fallback/fallback_chain.h"
#include "router/gateway_service.h"
#include "router/pool_call.h"

namespace slm::router {

// What an upstream step produced.
template <typename Response>
struct UpstreamAnswer {
  Response response;
  float confidence = -1;  // < 0: unknown (never escalates)
  std::string model;
  slmgw::v1::Usage usage;
};

template <typename Op>
class CascadeCall final : public grpc::ServerUnaryReactor {
 public:
  using Response = typename Op::Response;
  using WorkerRequest = typename Op::WorkerRequest;
  using WorkerResponse = typename Op::WorkerResponse;

  CascadeCall(std::shared_ptr<RouterMetrics> metrics, std::shared_ptr<const RouterState> state,
              std::vector<FallbackTarget> chain, slmgw::v1::RouteDecision decision, Op op,
              Response* response, grpc::CallbackServerContext* context, AdmissionTicket ticket,
              std::chrono::system_clock::time_point caller_deadline,
              std::chrono::steady_clock::time_point start)
      : metrics_(std::move(metrics)),
        state_(std::move(state)),
        chain_(std::move(chain)),
        decision_(std::move(decision)),
        op_(std::move(op)),
        response_(response),
        context_(context),
        ticket_(std::move(ticket)),
        caller_deadline_(caller_deadline),
        start_(start) {
    metrics_->in_flight.Increment();
    fallback_reason_ = DecisionFallbackReason(decision_);
  }

  void Start() { RunStep(0); }

  void OnCancel() override {
    std::function<void()> cancel;
    {
      absl::MutexLock lock(&mutex_);
      cancelled_ = true;
      cancel = cancel_step_;
    }
    if (cancel) cancel();
  }

  void OnDone() override {
    metrics_->in_flight.Decrement();
    delete this;
  }

 private:
  struct Answer {
    Response response;
    float confidence = -1;
    std::string route, model, worker;
    slmgw::v1::Usage usage;
    uint64_t queue_us = 0;
    uint64_t compute_us = 0;
    size_t step = 0;
  };

  std::chrono::system_clock::time_point StepDeadline(const FallbackTarget& target) const {
    auto deadline = caller_deadline_;
    if (target.route->deadline_ms() > 0) {
      deadline = std::min(deadline, std::chrono::system_clock::now() +
                                        std::chrono::milliseconds(target.route->deadline_ms()));
    }
    return deadline;
  }

  void RunStep(size_t step) {
    const FallbackTarget& target = chain_[step];
    const auto deadline = StepDeadline(target);
    step_start_ = std::chrono::steady_clock::now();
    {
      absl::MutexLock lock(&mutex_);
      starting_ = true;
    }
    std::function<void()> cancel;
    if (target.pool != nullptr) {
      DispatchPolicy policy;
      if (state_->config->has_dispatch()) {
        policy.max_attempts = static_cast<int>(state_->config->dispatch().max_attempts());
      }
      // Hedging as on the plain path (forward_call.h): a fixed delay, or the route's recent
      // latency percentile (at least the delay).
      policy.hedge_delay = std::chrono::milliseconds(target.route->hedge().delay_ms());
      latency_tracker_ = nullptr;
      if (auto it = state_->route_latency.find(target.route->name());
          it != state_->route_latency.end()) {
        latency_tracker_ = it->second.get();
        policy.hedge_delay =
            std::max<std::chrono::microseconds>(policy.hedge_delay, latency_tracker_->Current());
      }
      using Call = PoolCall<WorkerRequest, WorkerResponse>;
      auto call =
          Call::Start(target.pool, metrics_, policy, deadline, op_.RequestFor(*target.route),
                      &Op::Invoke, [this, step](typename Call::Result result) {
                        Deliver([this, step, result = std::move(result)]() mutable {
                          OnPoolDone(step, std::move(result));
                        });
                      });
      cancel = [call] { call->Cancel(); };
    } else {
      auto call =
          op_.CallUpstream(*target.upstream, *target.route, best_ ? &best_->response : nullptr,
                           deadline, [this, step](absl::StatusOr<UpstreamAnswer<Response>> answer) {
                             Deliver([this, step, answer = std::move(answer)]() mutable {
                               OnUpstreamDone(step, std::move(answer));
                             });
                           });
      if (call != nullptr) cancel = [call] { call->Cancel(); };
    }
    bool cancelled;
    std::function<void()> deferred;
    {
      absl::MutexLock lock(&mutex_);
      starting_ = false;
      deferred.swap(deferred_);
      if (!deferred) cancel_step_ = cancel;
      cancelled = cancelled_;
    }
    if (deferred) {  // the step ended before its start returned: go on from here
      deferred();
      return;
    }
    if (cancelled && cancel) cancel();
  }

  // Runs a step's outcome now, or hands it to RunStep when that is still starting the step (the
  // outcome arrived inline or on another thread before the cancel hook was stored).
  void Deliver(std::function<void()> process) {
    {
      absl::MutexLock lock(&mutex_);
      if (starting_) {
        deferred_ = std::move(process);
        return;
      }
    }
    process();
  }

  void OnPoolDone(size_t step, typename PoolCall<WorkerRequest, WorkerResponse>::Result result) {
    model_time_ += result.worker_time;
    if (result.status.ok() && latency_tracker_ != nullptr) {
      latency_tracker_->Record(
          std::chrono::duration_cast<std::chrono::microseconds>(result.worker_time));
    }
    if (!result.status.ok()) {
      OnStepDone(step, result.status, std::nullopt);
      return;
    }
    Answer answer;
    op_.FromWorker(result.response, &answer.response, &answer.confidence);
    const slmgw::v1::WorkerReport& report = result.response.report();
    answer.model = report.model();
    answer.worker = result.endpoint != nullptr ? result.endpoint->address : "";
    answer.usage = report.usage();
    answer.queue_us = report.queue_us();
    answer.compute_us = report.compute_us();
    OnStepDone(step, absl::OkStatus(), std::move(answer));
  }

  void OnUpstreamDone(size_t step, absl::StatusOr<UpstreamAnswer<Response>> result) {
    const FallbackTarget& target = chain_[step];
    const auto elapsed = std::chrono::steady_clock::now() - step_start_;
    model_time_ += elapsed;
    metrics_->upstream_requests
        .Add({{"upstream", target.upstream->name()},
              {"outcome", monitoring::OutcomeLabel(static_cast<int>(result.status().code()))}})
        .Increment();
    metrics_->upstream_latency
        .Add({{"upstream", target.upstream->name()}}, monitoring::LatencyBucketsSeconds())
        .Observe(std::chrono::duration<double>(elapsed).count());
    if (!result.ok()) {
      OnStepDone(step, result.status(), std::nullopt);
      return;
    }
    Answer answer;
    answer.response = std::move(result->response);
    answer.confidence = result->confidence;
    answer.model = result->model.empty() ? target.upstream->config().model() : result->model;
    answer.worker = UpstreamWorkerName(*target.upstream);
    answer.usage = result->usage;
    answer.compute_us = ToMicros(elapsed);
    OnStepDone(step, absl::OkStatus(), std::move(answer));
  }

  void OnStepDone(size_t step, const absl::Status& status, std::optional<Answer> answer) {
    bool cancelled;
    {
      absl::MutexLock lock(&mutex_);
      cancel_step_ = nullptr;
      cancelled = cancelled_;
    }
    const FallbackTarget& target = chain_[step];
    const bool more = step + 1 < chain_.size() && !cancelled &&
                      std::chrono::system_clock::now() < caller_deadline_;
    if (answer.has_value()) {
      answer->route = target.route->name();
      answer->step = step;
      const float threshold = target.route->cascade_threshold();
      const bool low = threshold > 0 && answer->confidence >= 0 && answer->confidence < threshold;
      if (low && more) {
        metrics_->cascade_escalations
            .Add({{"route", target.route->name()}, {"operation", Op::kOperation}})
            .Increment();
        if (!best_ || answer->confidence > best_->confidence) best_ = std::move(answer);
        Escalate(step, "low_confidence");
        return;
      }
      if (best_ && answer->confidence >= 0 && answer->confidence < best_->confidence) {
        answer = std::move(best_);  // the escalation answered, but less surely
      }
      Complete(std::move(*answer));
      return;
    }
    errors_.push_back(absl::StrCat("route '", target.route->name(), "': ", status.message()));
    const char* reason = EscalationReason(status, caller_deadline_);
    if (reason != nullptr && more) {
      Escalate(step, reason);
      return;
    }
    if (best_) {
      Complete(std::move(*best_));
      return;
    }
    absl::Status final_status = status;
    if (errors_.size() > 1) {  // name every route tried, the last error's code decides
      std::string message;
      for (size_t i = errors_.size(); i-- > 0;) {
        absl::StrAppend(&message, i + 1 == errors_.size() ? "" : "; before that, ", errors_[i]);
      }
      final_status = absl::Status(status.code(), message);
    }
    Fail(final_status);
  }

  void Escalate(size_t step, const char* reason) {
    if (fallback_reason_.empty()) fallback_reason_ = reason;
    RecordFallback(*metrics_, reason, chain_[step].route->name(), chain_[step + 1].route->name());
    RunStep(step + 1);
  }

  void Complete(Answer answer) {
    *response_ = std::move(answer.response);
    op_.Finalize(response_);
    slmgw::v1::ServedBy* served_by = response_->mutable_served_by();
    served_by->set_route(answer.route);
    served_by->set_model(answer.model);
    served_by->set_worker(answer.worker);
    served_by->set_confidence(std::max(answer.confidence, 0.0f));
    const bool fell_back = answer.step > 0 || !DecisionFallbackReason(decision_).empty();
    served_by->set_fell_back(fell_back);
    if (fell_back) served_by->set_fallback_reason(fallback_reason_);
    *served_by->mutable_usage() = answer.usage;
    const auto total = std::chrono::steady_clock::now() - start_;
    const auto overhead =
        std::max<std::chrono::steady_clock::duration>(total - model_time_, std::chrono::seconds(0));
    slmgw::v1::Timings* timings = served_by->mutable_timings();
    timings->set_router_us(ToMicros(overhead));
    timings->set_queue_us(answer.queue_us);
    timings->set_compute_us(answer.compute_us);
    timings->set_total_us(ToMicros(total));
    RequestMetrics& metrics = metrics_->per_request;
    metrics.RequestsOk(answer.route, answer.model, Op::kOperation).Increment();
    metrics.Latency(answer.route, Op::kOperation)
        .Observe(std::chrono::duration<double>(total).count());
    metrics.Overhead(answer.route).Observe(std::chrono::duration<double>(overhead).count());
    Finish(grpc::Status::OK);
  }

  void Fail(const absl::Status& status) {
    if (status.code() == absl::StatusCode::kResourceExhausted) {
      context_->AddTrailingMetadata(
          "retry-after-ms", std::to_string(AdmissionController::kConcurrencyRetryAfter.count()));
    }
    metrics_->requests
        .Add({{"route", decision_.route()},
              {"model", "none"},
              {"operation", Op::kOperation},
              {"outcome", monitoring::OutcomeLabel(static_cast<int>(status.code()))}})
        .Increment();
    metrics_->latency
        .Add({{"route", decision_.route()}, {"operation", Op::kOperation}},
             monitoring::LatencyBucketsSeconds())
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    Finish(ToGrpcStatus(status));
  }

  static uint64_t ToMicros(std::chrono::steady_clock::duration duration) {
    return std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
  }

  const std::shared_ptr<RouterMetrics> metrics_;
  const std::shared_ptr<const RouterState> state_;  // keeps pools, upstreams and routes alive
  const std::vector<FallbackTarget> chain_;
  const slmgw::v1::RouteDecision decision_;
  const Op op_;
  Response* const response_;
  grpc::CallbackServerContext* const context_;
  AdmissionTicket ticket_;  // held until the request is answered
  const std::chrono::system_clock::time_point caller_deadline_;
  const std::chrono::steady_clock::time_point start_;

  // Touched by the step callbacks only (serial).
  std::optional<Answer> best_;  // the surest low-confidence answer so far
  std::string fallback_reason_;
  std::vector<std::string> errors_;
  std::chrono::steady_clock::time_point step_start_;
  std::chrono::steady_clock::duration model_time_{0};
  LatencyTracker* latency_tracker_ = nullptr;  // the current step's route's; owned by state_

  absl::Mutex mutex_;
  std::function<void()> cancel_step_ ABSL_GUARDED_BY(mutex_);
  bool starting_ ABSL_GUARDED_BY(mutex_) = false;
  std::function<void()> deferred_ ABSL_GUARDED_BY(mutex_);
  bool cancelled_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace slm::router

#endif  // SLM_ROUTER_FALLBACK_CASCADE_CALL_H_
