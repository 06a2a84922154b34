#include "router/fallback/generate_stream_call.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "monitoring/metrics_server.h"
#include "router/pool_call.h"

namespace slm::router {
namespace {

uint64_t ToMicros(std::chrono::steady_clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
}

}  // namespace

// One WorkerService.GenerateStream attempt on one endpoint. Deletes itself in OnDone.
class GenerateStreamCall::WorkerStream final
    : public grpc::ClientReadReactor<slmgw::v1::WorkerServiceGenerateStreamResponse> {
 public:
  WorkerStream(GenerateStreamCall* owner, std::shared_ptr<Endpoint> endpoint,
               std::shared_ptr<const slmgw::v1::WorkerServiceGenerateStreamRequest> request,
               std::chrono::system_clock::time_point deadline, std::shared_ptr<CancelBox> box)
      : owner_(owner),
        box_(std::move(box)),
        endpoint_(std::move(endpoint)),
        counter_(endpoint_.get()),
        request_(std::move(request)) {
    context_.set_deadline(deadline);
  }

  void Start() {
    endpoint_->stub->async()->GenerateStream(&context_, request_.get(), this);
    StartRead(&response_);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended: OnDone follows
    if (response_.has_report()) report_ = response_.report();
    slmgw::v1::GenerateStreamResponse message;
    message.set_text_delta(response_.text_delta());
    message.set_finish_reason(response_.finish_reason());
    const std::vector<float> logprobs(response_.token_logprobs().begin(),
                                      response_.token_logprobs().end());
    owner_->OnMessage(std::move(message), logprobs);
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    box_->Clear();  // no Cancel reaches this object once it is gone
    owner_->OnWorkerDone(endpoint_, status, report_);
    delete this;
  }

 private:
  GenerateStreamCall* const owner_;
  const std::shared_ptr<CancelBox> box_;
  const std::shared_ptr<Endpoint> endpoint_;
  ScopedCall counter_;
  const std::shared_ptr<const slmgw::v1::WorkerServiceGenerateStreamRequest> request_;
  grpc::ClientContext context_;
  slmgw::v1::WorkerServiceGenerateStreamResponse response_;
  slmgw::v1::WorkerReport report_;
};

GenerateStreamCall::GenerateStreamCall(std::shared_ptr<RouterMetrics> metrics,
                                       std::shared_ptr<const RouterState> state,
                                       std::vector<FallbackTarget> chain,
                                       slmgw::v1::RouteDecision decision, GenerateOp op,
                                       grpc::CallbackServerContext* context, AdmissionTicket ticket,
                                       std::chrono::system_clock::time_point caller_deadline,
                                       std::chrono::steady_clock::time_point start)
    : metrics_(std::move(metrics)),
      state_(std::move(state)),
      chain_(std::move(chain)),
      decision_(std::move(decision)),
      op_(std::move(op)),
      context_(context),
      ticket_(std::move(ticket)),
      caller_deadline_(caller_deadline),
      start_(start) {
  metrics_->in_flight.Increment();
  fallback_reason_ = DecisionFallbackReason(decision_);
}

void GenerateStreamCall::Start() { RunStep(0); }

void GenerateStreamCall::OnCancel() {
  std::shared_ptr<CancelBox> box;
  {
    absl::MutexLock lock(&mutex_);
    cancelled_ = true;
    box = source_box_;
  }
  if (box != nullptr) box->Cancel();
}

std::shared_ptr<GenerateStreamCall::CancelBox> GenerateStreamCall::NewSourceBox() {
  auto box = std::make_shared<CancelBox>();
  bool cancelled;
  {
    absl::MutexLock lock(&mutex_);
    source_box_ = box;
    cancelled = cancelled_;
  }
  if (cancelled) box->Cancel();
  return box;
}

void GenerateStreamCall::OnDone() {
  metrics_->in_flight.Decrement();
  delete this;
}

void GenerateStreamCall::RunStep(size_t step) {
  step_ = step;
  tried_.clear();
  attempts_ = 0;
  step_start_ = std::chrono::steady_clock::now();
  {
    absl::MutexLock lock(&mutex_);
    logprobs_.clear();
    held_final_.reset();
  }
  const FallbackTarget& target = chain_[step];
  if (target.pool != nullptr) {
    target.pool->retry_budget().OnRequest();
    TryEndpoint();
    return;
  }
  auto deadline = caller_deadline_;
  if (target.route->deadline_ms() > 0) {
    deadline = std::min(deadline, std::chrono::system_clock::now() +
                                      std::chrono::milliseconds(target.route->deadline_ms()));
  }
  const bool want_logprobs = op_.caller_wants_logprobs();
  std::shared_ptr<CancelBox> box = NewSourceBox();
  auto call = target.upstream->Stream(
      op_.chat(), op_.SamplingFor(*target.route), deadline,
      [this, want_logprobs](const upstream::ChatChunk& chunk) {
        slmgw::v1::GenerateStreamResponse message;
        message.set_text_delta(chunk.text_delta);
        message.set_finish_reason(chunk.finish_reason);
        OnMessage(std::move(message), chunk.token_logprobs);
        absl::MutexLock lock(&mutex_);
        return !cancelled_;
      },
      [this, &target](absl::StatusOr<upstream::ChatCompletion> completion) {
        const auto elapsed = std::chrono::steady_clock::now() - step_start_;
        metrics_->upstream_requests
            .Add({{"upstream", target.upstream->name()},
                  {"outcome",
                   monitoring::OutcomeLabel(static_cast<int>(completion.status().code()))}})
            .Increment();
        metrics_->upstream_latency
            .Add({{"upstream", target.upstream->name()}}, monitoring::LatencyBucketsSeconds())
            .Observe(std::chrono::duration<double>(elapsed).count());
        Source source;
        source.worker = UpstreamWorkerName(*target.upstream);
        source.compute_us = ToMicros(elapsed);
        if (completion.ok()) {
          source.model =
              completion->model.empty() ? target.upstream->config().model() : completion->model;
          source.usage.set_input_tokens(completion->prompt_tokens);
          source.usage.set_output_tokens(completion->completion_tokens);
        }
        OnSourceDone(completion.status(), std::move(source));
      });
  // `this` may be finished and gone by now (the upstream answered on its thread): only locals.
  box->Set([call] { call->Cancel(); });
}

void GenerateStreamCall::TryEndpoint() {
  const FallbackTarget& target = chain_[step_];
  PickFailure why = PickFailure::kNone;
  std::shared_ptr<Endpoint> endpoint = target.pool->Pick(tried_, Clock::now(), &why);
  if (endpoint == nullptr) {
    const absl::Status status =
        why == PickFailure::kFull
            ? absl::ResourceExhaustedError(absl::StrCat("pool '", target.pool->name(),
                                                        "': every endpoint is at "
                                                        "max_in_flight_per_endpoint"))
            : absl::UnavailableError(
                  absl::StrCat("pool '", target.pool->name(), "': no worker endpoint",
                               errors_.empty() || tried_.empty() ? "" : " left to try"));
    OnSourceDone(status, Source());
    return;
  }
  ++attempts_;
  tried_.push_back(endpoint.get());
  auto request = std::make_shared<slmgw::v1::WorkerServiceGenerateStreamRequest>();
  const std::shared_ptr<const slmgw::v1::WorkerServiceGenerateRequest> unary =
      op_.RequestFor(*target.route);
  request->set_prompt(unary->prompt());
  *request->mutable_messages() = unary->messages();
  *request->mutable_sampling() = unary->sampling();
  auto deadline = caller_deadline_;
  if (target.route->deadline_ms() > 0) {
    deadline = std::min(deadline, std::chrono::system_clock::now() +
                                      std::chrono::milliseconds(target.route->deadline_ms()));
  }
  std::shared_ptr<CancelBox> box = NewSourceBox();
  auto* stream = new WorkerStream(this, endpoint, std::move(request), deadline, box);
  box->Set([stream] { stream->Cancel(); });  // before Start: the stream is alive until OnDone
  stream->Start();
}

void GenerateStreamCall::OnMessage(slmgw::v1::GenerateStreamResponse message,
                                   const std::vector<float>& logprobs) {
  {
    absl::MutexLock lock(&mutex_);
    if (cancelled_) return;
    logprobs_.insert(logprobs_.end(), logprobs.begin(), logprobs.end());
    if (op_.caller_wants_logprobs())
      message.mutable_token_logprobs()->Add(logprobs.begin(), logprobs.end());
    if (!message.finish_reason().empty()) {
      held_final_ = std::move(message);  // ServedBy joins it when the source ends
      return;
    }
    if (message.text_delta().empty() && message.token_logprobs().empty()) return;
    started_streaming_ = true;
    queue_.push_back(std::move(message));
  }
  MaybeWrite();
}

void GenerateStreamCall::OnWorkerDone(const std::shared_ptr<Endpoint>& endpoint,
                                      const grpc::Status& status,
                                      const slmgw::v1::WorkerReport& report) {
  const FallbackTarget& target = chain_[step_];
  if (target.pool->RecordOutcome(*endpoint, OutcomeOf(status), Clock::now())) {
    metrics_->cooldowns.Add({{"pool", target.pool->name()}}).Increment();
  }
  bool streaming, cancelled;
  {
    absl::MutexLock lock(&mutex_);
    streaming = started_streaming_;
    cancelled = cancelled_;
  }
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    metrics_->upstream_errors
        .Add({{"pool", target.pool->name()},
              {"code", monitoring::OutcomeLabel(static_cast<int>(status.error_code()))}})
        .Increment();
  }
  // Before the first token an unreachable or full worker is retried on another endpoint.
  if (!status.ok() && !streaming && !cancelled && IsRetryable(status) &&
      std::chrono::system_clock::now() < caller_deadline_) {
    const int max_attempts = state_->config->has_dispatch()
                                 ? static_cast<int>(state_->config->dispatch().max_attempts())
                                 : 3;
    errors_.push_back(absl::StrCat(endpoint->address, ": ", status.error_message()));
    if (attempts_ < max_attempts && tried_.size() < target.pool->size()) {
      if (target.pool->retry_budget().TryRetry(Clock::now())) {
        metrics_->retries.Add({{"pool", target.pool->name()}}).Increment();
        TryEndpoint();
        return;
      }
      metrics_->budget_exhausted.Add({{"pool", target.pool->name()}}).Increment();
    }
    errors_.pop_back();
  }
  Source source;
  source.model = report.model();
  source.worker = endpoint->address;
  source.usage = report.usage();
  source.queue_us = report.queue_us();
  source.compute_us = report.compute_us();
  absl::Status result = FromGrpcStatus(status);
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    result = absl::UnavailableError(absl::StrCat("pool '", target.pool->name(),
                                                 "': worker unavailable (", endpoint->address, ": ",
                                                 status.error_message(), ")"));
  }
  OnSourceDone(result, std::move(source));
}

void GenerateStreamCall::OnSourceDone(const absl::Status& status, Source source) {
  const FallbackTarget& target = chain_[step_];
  bool streaming, cancelled;
  std::vector<float> logprobs;
  {
    absl::MutexLock lock(&mutex_);
    streaming = started_streaming_;
    cancelled = cancelled_;
    logprobs = logprobs_;
  }
  if (cancelled) {
    EndWith(grpc::Status(grpc::StatusCode::CANCELLED, "the caller cancelled the stream"));
    return;
  }
  if (status.ok()) {
    google::protobuf::RepeatedField<float> all(logprobs.begin(), logprobs.end());
    const float confidence = GenerationConfidence(all);
    slmgw::v1::GenerateStreamResponse final_message;
    {
      absl::MutexLock lock(&mutex_);
      if (held_final_.has_value()) final_message = std::move(*held_final_);
      held_final_.reset();
    }
    if (final_message.finish_reason().empty()) final_message.set_finish_reason("stop");
    slmgw::v1::ServedBy* served_by = final_message.mutable_served_by();
    served_by->set_route(target.route->name());
    served_by->set_model(source.model);
    served_by->set_worker(source.worker);
    served_by->set_confidence(std::max(confidence, 0.0f));
    const bool fell_back = step_ > 0 || !DecisionFallbackReason(decision_).empty();
    served_by->set_fell_back(fell_back);
    if (fell_back) served_by->set_fallback_reason(fallback_reason_);
    *served_by->mutable_usage() = source.usage;
    const auto total = std::chrono::steady_clock::now() - start_;
    slmgw::v1::Timings* timings = served_by->mutable_timings();
    timings->set_queue_us(source.queue_us);
    timings->set_compute_us(source.compute_us);
    timings->set_total_us(ToMicros(total));
    metrics_->requests
        .Add({{"route", target.route->name()},
              {"model", source.model},
              {"operation", "generate_stream"},
              {"outcome", "ok"}})
        .Increment();
    metrics_->latency
        .Add({{"route", target.route->name()}, {"operation", "generate_stream"}},
             monitoring::LatencyBucketsSeconds())
        .Observe(std::chrono::duration<double>(total).count());
    {
      absl::MutexLock lock(&mutex_);
      queue_.push_back(std::move(final_message));
    }
    EndWith(grpc::Status::OK);
    return;
  }
  errors_.push_back(absl::StrCat("route '", target.route->name(), "': ", status.message()));
  if (streaming) {
    // Tokens already reached the caller: a retry or another model would repeat or contradict
    // them. End the stream and say so.
    Fail(absl::Status(
        status.code(),
        absl::StrCat("route '", target.route->name(), "' (", target.Describe(),
                     ") failed after the stream started; not retried: ", status.message())));
    return;
  }
  const char* reason = EscalationReason(status, caller_deadline_);
  if (reason != nullptr && step_ + 1 < chain_.size() &&
      std::chrono::system_clock::now() < caller_deadline_) {
    if (fallback_reason_.empty()) fallback_reason_ = reason;
    RecordFallback(*metrics_, reason, target.route->name(), chain_[step_ + 1].route->name());
    RunStep(step_ + 1);
    return;
  }
  absl::Status final_status = status;
  if (errors_.size() > 1) {
    std::string message;
    for (size_t i = errors_.size(); i-- > 0;) {
      absl::StrAppend(&message, i + 1 == errors_.size() ? "" : "; before that, ", errors_[i]);
    }
    final_status = absl::Status(status.code(), message);
  }
  Fail(final_status);
}

void GenerateStreamCall::Fail(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    context_->AddTrailingMetadata(
        "retry-after-ms", std::to_string(AdmissionController::kConcurrencyRetryAfter.count()));
  }
  metrics_->requests
      .Add({{"route", decision_.route()},
            {"model", "none"},
            {"operation", "generate_stream"},
            {"outcome", monitoring::OutcomeLabel(static_cast<int>(status.code()))}})
      .Increment();
  EndWith(ToGrpcStatus(status));
}

void GenerateStreamCall::EndWith(const grpc::Status& status) {
  {
    absl::MutexLock lock(&mutex_);
    if (finish_.has_value()) return;
    finish_ = status;
    // An error ends the stream now: queued text is dropped, except a write in flight, which
    // completes first (OnWriteDone then finishes).
    while (!status.ok() && queue_.size() > (writing_ ? 1u : 0u)) queue_.pop_back();
  }
  MaybeWrite();
}

void GenerateStreamCall::MaybeWrite() {
  const slmgw::v1::GenerateStreamResponse* next = nullptr;
  std::optional<grpc::Status> finish;
  {
    absl::MutexLock lock(&mutex_);
    if (writing_ || finished_) return;
    if (!queue_.empty() && !cancelled_) {
      writing_ = true;
      next = &queue_.front();  // stays put: deque::push_back keeps references valid
    } else if (finish_.has_value()) {
      finished_ = true;
      finish = *finish_;
    }
  }
  if (next != nullptr) {
    StartWrite(next);
  } else if (finish.has_value()) {
    Finish(*finish);
  }
}

void GenerateStreamCall::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mutex_);
    writing_ = false;
    if (!queue_.empty()) queue_.pop_front();
    if (!ok) {  // the caller is gone: stop the source
      cancelled_ = true;
      queue_.clear();
    }
  }
  if (!ok) OnCancel();
  MaybeWrite();
}

}  // namespace slm::router
