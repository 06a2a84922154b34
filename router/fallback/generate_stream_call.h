// One GenerateStream request: a server write reactor that streams the answer of the decided
// route's worker pool (WorkerService.GenerateStream) or upstream (SSE), moving along the fallback
// chain only before its first token was handed to the caller. Internal to router/.
//
//   auto* call = new GenerateStreamCall(metrics, state, std::move(chain), decision, std::move(op),
//                                       context, std::move(ticket), caller_deadline, start);
//   call->Start();
//   return call;
//
// Before the first token: a worker that is unreachable or full (UNAVAILABLE, RESOURCE_EXHAUSTED)
// is retried on another endpoint of the pool (dispatch.max_attempts, the pool's retry budget);
// then the request escalates to the next route of the chain (fallback_chain.h). After the first
// token nothing is retried: a failure ends the stream with the source's code and a message that
// says the stream was cut after it started. Low confidence never escalates a stream (it is known
// only at the end); the last message carries ServedBy with the confidence, finish_reason and
// usage. The caller going away cancels the worker stream or upstream request.
//
// Messages are written one at a time from a queue (the source never waits for the caller;
// generation is bounded by max_tokens, so the queue is too).
// Lifecycle: Start once; finishes itself after the source ended and the queue drained; deletes
// itself in OnDone. Thread-safety: sources call in from gRPC or upstream I/O threads, writes
// complete on gRPC threads; `mutex_` guards the shared state.
#ifndef SLM_ROUTER_FALLBACK_GENERATE_STREAM_CALL_H_
#define SLM_ROUTER_FALLBACK_GENERATE_STREAM_CALL_H_

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/server_callback.h"
#include "router/fallback/fallback_chain.h"
#include "router/fallback/unary_ops.h"
#include "router/gateway_service.h"
#include "slmgw/v1/gateway.pb.h"

namespace slm::router {

class GenerateStreamCall final
    : public grpc::ServerWriteReactor<slmgw::v1::GenerateStreamResponse> {
 public:
  GenerateStreamCall(std::shared_ptr<RouterMetrics> metrics,
                     std::shared_ptr<const RouterState> state, std::vector<FallbackTarget> chain,
                     slmgw::v1::RouteDecision decision, GenerateOp op,
                     grpc::CallbackServerContext* context, AdmissionTicket ticket,
                     std::chrono::system_clock::time_point caller_deadline,
                     std::chrono::steady_clock::time_point start);

  void Start();
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  class WorkerStream;  // one worker attempt; internal

  // How to cancel the current source; safe against the source ending concurrently.
  struct CancelBox {
    absl::Mutex mutex;
    std::function<void()> cancel ABSL_GUARDED_BY(mutex);
    bool requested ABSL_GUARDED_BY(mutex) = false;
    void Set(std::function<void()> fn) {
      absl::MutexLock lock(&mutex);
      cancel = std::move(fn);
      if (requested && cancel) cancel();
    }
    void Clear() {
      absl::MutexLock lock(&mutex);
      cancel = nullptr;
    }
    void Cancel() {
      absl::MutexLock lock(&mutex);
      requested = true;
      if (cancel) cancel();
    }
  };

 private:
  // Where the current source is.
  struct Source {
    std::string model;
    std::string worker;
    slmgw::v1::Usage usage;
    uint64_t queue_us = 0;
    uint64_t compute_us = 0;
  };

  void RunStep(size_t step);
  // A new cancel box for the next source, already cancelled when the caller left.
  std::shared_ptr<CancelBox> NewSourceBox();
  void TryEndpoint();
  // From the current source (any thread). A message with a finish_reason is held for the end.
  void OnMessage(slmgw::v1::GenerateStreamResponse message, const std::vector<float>& logprobs);
  void OnWorkerDone(const std::shared_ptr<Endpoint>& endpoint, const grpc::Status& status,
                    const slmgw::v1::WorkerReport& report);
  void OnSourceDone(const absl::Status& status, Source source);
  void EndWith(const grpc::Status& status);
  void Fail(const absl::Status& status);
  void MaybeWrite();

  const std::shared_ptr<RouterMetrics> metrics_;
  const std::shared_ptr<const RouterState> state_;
  const std::vector<FallbackTarget> chain_;
  const slmgw::v1::RouteDecision decision_;
  const GenerateOp op_;
  grpc::CallbackServerContext* const context_;
  AdmissionTicket ticket_;
  const std::chrono::system_clock::time_point caller_deadline_;
  const std::chrono::steady_clock::time_point start_;

  // Touched by the current source's callbacks only (sources are serial).
  size_t step_ = 0;
  std::vector<const Endpoint*> tried_;
  int attempts_ = 0;
  std::string fallback_reason_;
  std::vector<std::string> errors_;
  std::chrono::steady_clock::time_point step_start_;

  absl::Mutex mutex_;
  std::deque<slmgw::v1::GenerateStreamResponse> queue_ ABSL_GUARDED_BY(mutex_);
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool started_streaming_ ABSL_GUARDED_BY(mutex_) = false;  // a token was handed to the caller
  std::optional<slmgw::v1::GenerateStreamResponse> held_final_ ABSL_GUARDED_BY(mutex_);
  std::vector<float> logprobs_ ABSL_GUARDED_BY(mutex_);  // of the current source
  std::optional<grpc::Status> finish_ ABSL_GUARDED_BY(mutex_);
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mutex_) = false;
  std::shared_ptr<CancelBox> source_box_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace slm::router

#endif  // SLM_ROUTER_FALLBACK_GENERATE_STREAM_CALL_H_
