// One worker call made on a pool, with retries and an optional hedge: the dispatch half of a
// request (ForwardCall is the server half). Internal to router/.
//
//   auto call = PoolCall<Req, Resp>::Start(pool, metrics, policy, deadline, request, invoke,
//                                          [](PoolCall<Req, Resp>::Result result) { ... });
//   call->Cancel();  // when the caller goes away
//
// Attempts go to distinct endpoints picked by the pool. A failed attempt is retried on another
// endpoint only when that is safe and affordable: the worker was unreachable or its queue was full
// (UNAVAILABLE, RESOURCE_EXHAUSTED: it computed nothing we would repeat), the deadline has not
// passed, fewer than `max_attempts` were made, and the pool's retry budget has a token. With a
// hedge delay, a second attempt starts when the first has not answered by then (budget
// permitting); the first answer wins and the other attempt is cancelled. Unary calls only: a
// stream that already sent tokens is never retried (the stream path does not use this class).
//
// Lifecycle: Start returns a shared_ptr; worker callbacks hold the call too, so it lives until the
// last of them ran (the hedge alarm holds a weak reference). `done` runs exactly once, on a gRPC
// thread (or inline in Start when no endpoint can be picked), never under a lock of this class.
// Thread-safety: Cancel may race with the callbacks; `mutex_` guards the shared state.
#ifndef SLM_ROUTER_POOL_CALL_H_
#define SLM_ROUTER_POOL_CALL_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "grpcpp/alarm.h"
#include "grpcpp/client_context.h"
#include "monitoring/metrics_server.h"
#include "router/router_metrics.h"
#include "router/worker_pool.h"

namespace slm::router {

struct DispatchPolicy {
  int max_attempts = 3;
  std::chrono::microseconds hedge_delay{0};  // 0: no hedge
};

// How a worker call's status counts for the endpoint's circuit.
inline CallOutcome OutcomeOf(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return CallOutcome::kFailure;
    case grpc::StatusCode::CANCELLED:
      return CallOutcome::kNeutral;
    default:
      return CallOutcome::kSuccess;
  }
}

// Whether a failed unary worker call may be repeated elsewhere: the worker did no work for it.
inline bool IsRetryable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

// PoolCall objects alive in this process. A call's worker callback may drop the last reference to
// a pool, and with it the pool's channels, on a gRPC callback thread; when that happens while the
// process shuts down, gRPC 1.51 aborts (the callback completion queue loses its last user on its
// own thread). GatewayServiceImpl's destructor therefore waits until no call is alive, and a call
// releases its pool and endpoints before it says it is gone.
class LivePoolCalls {
 public:
  static void Add() {
    absl::MutexLock lock(&Mutex());
    ++Count();
  }
  static void Remove() {
    absl::MutexLock lock(&Mutex());
    --Count();
  }
  // True when none is alive within `timeout`.
  static bool WaitForNone(absl::Duration timeout) {
    absl::MutexLock lock(&Mutex());
    auto none = [] { return Count() == 0; };
    return Mutex().AwaitWithTimeout(absl::Condition(&none), timeout);
  }

 private:
  static absl::Mutex& Mutex() {
    static absl::Mutex* mutex = new absl::Mutex();
    return *mutex;
  }
  static int& Count() {
    static int count = 0;
    return count;
  }
};

template <typename WorkerRequest, typename WorkerResponse>
class PoolCall final
    : public std::enable_shared_from_this<PoolCall<WorkerRequest, WorkerResponse>> {
 public:
  using Invoke =
      std::function<void(slmgw::v1::WorkerService::Stub*, grpc::ClientContext*,
                         const WorkerRequest*, WorkerResponse*, std::function<void(grpc::Status)>)>;
  struct Result {
    absl::Status status;
    WorkerResponse response;             // valid when status is OK
    std::shared_ptr<Endpoint> endpoint;  // the one that answered; null when none did
    Clock::duration worker_time{0};      // the answering attempt's time
    int attempts = 0;
  };
  using Done = std::function<void(Result)>;

  static std::shared_ptr<PoolCall> Start(std::shared_ptr<WorkerPool> pool,
                                         std::shared_ptr<RouterMetrics> metrics,
                                         const DispatchPolicy& policy,
                                         std::chrono::system_clock::time_point deadline,
                                         std::shared_ptr<const WorkerRequest> request,
                                         Invoke invoke, Done done) {
    auto call = std::shared_ptr<PoolCall>(new PoolCall(std::move(pool), std::move(metrics), policy,
                                                       deadline, std::move(request),
                                                       std::move(invoke), std::move(done)));
    call->pool_->retry_budget().OnRequest();
    if (policy.hedge_delay.count() > 0) {
      // Only hedged calls own an alarm: a grpc::Alarm holds a gRPC library reference, and an
      // unhedged call may be destroyed on a gRPC thread as the process exits.
      call->alarm_ = std::make_unique<grpc::Alarm>();
      {
        absl::MutexLock lock(&call->mutex_);
        call->alarm_armed_ = true;
      }
      // A weak reference: the alarm must not keep the call (which owns the alarm) alive.
      std::weak_ptr<PoolCall> weak = call;
      call->alarm_->Set(std::chrono::system_clock::now() + policy.hedge_delay, [weak](bool fired) {
        if (auto self = weak.lock()) self->OnHedgeAlarm(fired);
      });
    }
    call->Launch(nullptr);
    return call;
  }

  void Cancel() {
    std::vector<std::shared_ptr<Attempt>> attempts;
    {
      absl::MutexLock lock(&mutex_);
      cancelled_ = true;
      attempts = attempts_;
    }
    for (const auto& attempt : attempts) attempt->context.TryCancel();
  }

 private:
  struct Attempt {
    std::shared_ptr<Endpoint> endpoint;
    std::unique_ptr<ScopedCall> counter;
    grpc::ClientContext context;
    WorkerResponse response;
    Clock::time_point start;
  };

  PoolCall(std::shared_ptr<WorkerPool> pool, std::shared_ptr<RouterMetrics> metrics,
           const DispatchPolicy& policy, std::chrono::system_clock::time_point deadline,
           std::shared_ptr<const WorkerRequest> request, Invoke invoke, Done done)
      : pool_(std::move(pool)),
        metrics_(std::move(metrics)),
        policy_(policy),
        deadline_(deadline),
        request_(std::move(request)),
        invoke_(std::move(invoke)),
        done_(std::move(done)) {
    LivePoolCalls::Add();
  }

 public:
  ~PoolCall() {
    // The endpoints and the pool go first: see LivePoolCalls.
    {
      absl::MutexLock lock(&mutex_);
      attempts_.clear();
      tried_.clear();
    }
    alarm_.reset();
    pool_.reset();
    LivePoolCalls::Remove();
  }

 private:
  // Starts an attempt on an endpoint not tried yet (counting it in `counter`, when given);
  // finishes the call when there is none and no other attempt is in flight.
  void Launch(prometheus::Family<prometheus::Counter>* counter) {
    std::shared_ptr<Attempt> attempt;
    absl::Status failure;
    {
      absl::MutexLock lock(&mutex_);
      if (finished_) return;
      PickFailure why = PickFailure::kNone;
      std::shared_ptr<Endpoint> endpoint = pool_->Pick(tried_, Clock::now(), &why);
      if (endpoint == nullptr) {
        if (in_flight_ > 0) return;  // the attempt in flight may still answer
        // After a failed attempt its error says more than "nothing left to try".
        failure = attempts_.empty() ? NoEndpointError(why) : FinalError(last_status_);
        finished_ = true;
      } else {
        attempt = std::make_shared<Attempt>();
        attempt->endpoint = std::move(endpoint);
        attempt->counter = std::make_unique<ScopedCall>(attempt->endpoint.get());
        attempt->context.set_deadline(deadline_);
        attempt->start = Clock::now();
        if (cancelled_) attempt->context.TryCancel();
        tried_.push_back(attempt->endpoint.get());
        attempts_.push_back(attempt);
        ++in_flight_;
      }
    }
    if (attempt == nullptr) {
      Finish(Result{failure, WorkerResponse(), nullptr, Clock::duration(0), Attempts()});
      return;
    }
    if (counter != nullptr) counter->Add({{"pool", pool_->name()}}).Increment();
    auto self = this->shared_from_this();
    invoke_(attempt->endpoint->stub.get(), &attempt->context, request_.get(), &attempt->response,
            [self, attempt](grpc::Status status) { self->OnAttemptDone(attempt, status); });
  }

  void OnAttemptDone(const std::shared_ptr<Attempt>& attempt, const grpc::Status& status) {
    const auto now = Clock::now();
    const Clock::duration elapsed = now - attempt->start;
    attempt->counter.reset();
    if (pool_->RecordOutcome(*attempt->endpoint, OutcomeOf(status), now)) {
      metrics_->cooldowns.Add({{"pool", pool_->name()}}).Increment();
    }
    if (status.ok()) {
      attempt->endpoint->reported_queue_depth.store(
          attempt->response.report().load().queue_depth());
    } else if (status.error_code() != grpc::StatusCode::CANCELLED) {
      metrics_->upstream_errors
          .Add({{"pool", pool_->name()},
                {"code", monitoring::OutcomeLabel(static_cast<int>(status.error_code()))}})
          .Increment();
    }
    bool retry = false;
    std::vector<std::shared_ptr<Attempt>> losers;
    std::optional<Result> result;
    {
      absl::MutexLock lock(&mutex_);
      --in_flight_;
      if (finished_) return;  // a hedge that lost
      if (status.ok()) {
        finished_ = true;
        for (const auto& other : attempts_) {
          if (other != attempt) losers.push_back(other);
        }
        result = Result{absl::OkStatus(), std::move(attempt->response), attempt->endpoint, elapsed,
                        static_cast<int>(attempts_.size())};
      } else {
        last_error_ = absl::StrCat(attempt->endpoint->address, ": ", status.error_message());
        last_status_ = status;
        if (IsRetryable(status) && !cancelled_ &&
            static_cast<int>(attempts_.size()) < policy_.max_attempts &&
            std::chrono::system_clock::now() < deadline_) {
          if (pool_->retry_budget().TryRetry(now)) {
            retry = true;
          } else {
            metrics_->budget_exhausted.Add({{"pool", pool_->name()}}).Increment();
          }
        }
        if (!retry && in_flight_ == 0) {
          finished_ = true;
          result = Result{FinalError(status), WorkerResponse(), attempt->endpoint, elapsed,
                          static_cast<int>(attempts_.size())};
        }
      }
    }
    for (const auto& loser : losers) loser->context.TryCancel();
    if (result.has_value()) {
      Finish(*std::move(result));
      return;
    }
    if (retry) Launch(&metrics_->retries);
  }

  void OnHedgeAlarm(bool fired) {
    {
      absl::MutexLock lock(&mutex_);
      alarm_armed_ = false;
      if (!fired || finished_ || cancelled_ || in_flight_ != 1 ||
          static_cast<int>(attempts_.size()) >= policy_.max_attempts) {
        return;
      }
    }
    if (!pool_->retry_budget().TryRetry(Clock::now())) {
      metrics_->budget_exhausted.Add({{"pool", pool_->name()}}).Increment();
      return;
    }
    Launch(&metrics_->hedges);
  }

  void Finish(Result result) {
    bool armed;
    {
      absl::MutexLock lock(&mutex_);
      armed = alarm_armed_;
    }
    // Outside the lock: the callback (fired=false) may run before Cancel returns.
    if (armed) alarm_->Cancel();
    done_(std::move(result));
  }

  int Attempts() {
    absl::MutexLock lock(&mutex_);
    return static_cast<int>(attempts_.size());
  }

  absl::Status NoEndpointError(PickFailure why) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    const std::string pool = absl::StrCat("pool '", pool_->name(), "': ");
    switch (why) {
      case PickFailure::kNoEndpoints: {
        const std::string resolution = pool_->ResolutionError();
        return absl::UnavailableError(
            absl::StrCat(pool, "no worker endpoints",
                         resolution.empty() ? "" : absl::StrCat(" (", resolution, ")")));
      }
      case PickFailure::kFull:
        return absl::ResourceExhaustedError(
            absl::StrCat(pool, "every endpoint is at max_in_flight_per_endpoint (",
                         pool_->config().max_in_flight_per_endpoint(), ")"));
      case PickFailure::kCoolingDown:
        return absl::UnavailableError(
            absl::StrCat(pool,
                         "every worker endpoint is cooling down after failures; last "
                         "error: ",
                         last_error_));
      case PickFailure::kAllTried:
      case PickFailure::kNone:
        break;
    }
    return absl::UnavailableError(
        absl::StrCat(pool, "no worker endpoint left to try; last error: ", last_error_));
  }

  absl::Status FinalError(const grpc::Status& status) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      return absl::UnavailableError(
          absl::StrCat("pool '", pool_->name(), "': worker unavailable (", last_error_, ")"));
    }
    return FromGrpcStatus(status);
  }

  std::shared_ptr<WorkerPool> pool_;  // reset only by the destructor
  const std::shared_ptr<RouterMetrics> metrics_;
  const DispatchPolicy policy_;
  const std::chrono::system_clock::time_point deadline_;
  const std::shared_ptr<const WorkerRequest> request_;
  const Invoke invoke_;
  const Done done_;

  absl::Mutex mutex_;
  std::unique_ptr<grpc::Alarm> alarm_;  // set before the first attempt, when hedging
  bool alarm_armed_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::shared_ptr<Attempt>> attempts_ ABSL_GUARDED_BY(mutex_);
  std::vector<const Endpoint*> tried_ ABSL_GUARDED_BY(mutex_);
  int in_flight_ ABSL_GUARDED_BY(mutex_) = 0;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mutex_) = false;
  std::string last_error_ ABSL_GUARDED_BY(mutex_) = "none";
  grpc::Status last_status_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace slm::router

#endif  // SLM_ROUTER_POOL_CALL_H_
