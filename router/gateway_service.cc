#include "router/gateway_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "monitoring/metrics_server.h"
#include "router/fallback/fallback_service.h"
#include "router/forward_call.h"

namespace slm::router {
namespace {

using slmgw::v1::RouteDecision;

// gRPC reports "no deadline" as a time point far in the future.
bool IsInfinite(std::chrono::system_clock::time_point deadline) {
  return deadline > std::chrono::system_clock::now() + std::chrono::hours(24 * 365);
}

// Top-class probabilities of the learned tiers.
const prometheus::Histogram::BucketBoundaries& ConfidenceBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0};
  return *buckets;
}

// The text a generation request is routed and size-checked on: the prompt, or else the last
// chat message.
template <typename GenerationRequest>
const std::string& RoutingText(const GenerationRequest& request) {
  return request.prompt().empty() && request.messages_size() > 0
             ? request.messages(request.messages_size() - 1).content()
             : request.prompt();
}

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GatewayServiceImpl>> GatewayServiceImpl::Create(
    std::shared_ptr<const slmgw::config::v1::GatewayConfig> config,
    const ChannelFactory& channel_factory, std::shared_ptr<RouterMetrics> metrics,
    const ClassifierLoader& classifier_loader, const Resolver& resolver) {
  absl::StatusOr<std::shared_ptr<RouterState>> state =
      BuildState(std::move(config), channel_factory, classifier_loader, resolver, nullptr);
  if (!state.ok()) return state.status();
  return std::unique_ptr<GatewayServiceImpl>(new GatewayServiceImpl(
      *std::move(state), std::move(metrics), channel_factory, classifier_loader, resolver));
}

absl::Status GatewayServiceImpl::Admit(grpc::CallbackServerContext* context,
                                       const std::string& text,
                                       const slmgw::v1::RequestOptions& options,
                                       const RouterState& state, RouteDecision* decision,
                                       WorkerPool** pool, AdmissionTicket* ticket) {
  const uint32_t max_text_bytes = state.config->limits().max_text_bytes();
  if (text.empty()) return absl::InvalidArgumentError("text: must not be empty");
  if (text.size() > max_text_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("text: ", text.size(),
                                                   " bytes exceeds the limit of ", max_text_bytes,
                                                   " bytes (limits.max_text_bytes)"));
  }
  absl::StatusOr<RouteDecision> decided = state.policy->Decide(text, options);
  if (!decided.ok()) return decided.status();
  *decision = *std::move(decided);
  for (const slmgw::v1::RouteSignal& signal : decision->signals()) {
    metrics_->per_request.Classification(signal.name()).Observe(signal.duration_ns() * 1e-9);
    if (signal.name() == "fast" || signal.name() == "encoder") {
      metrics_->confidence.Add({{"signal", signal.name()}}, ConfidenceBuckets())
          .Observe(signal.confidence());
    }
  }
  const std::string deciding_signal =
      decision->signals().empty() ? "none" : decision->signals().rbegin()->name();
  metrics_->per_request.Decisions(decision->route(), deciding_signal).Increment();
  auto it = state.pools.find(decision->pool());
  const slmgw::config::v1::RouteConfig* route = state.route_table->FindRoute(decision->route());
  if (it == state.pools.end() && (route == nullptr || route->upstream().empty())) {
    return absl::InternalError(absl::StrCat("route '", decision->route(), "' has no pool"));
  }
  *pool = it == state.pools.end() ? nullptr : it->second.get();  // null: served by an upstream
  return AdmitLoad(context, state, *decision, options, ticket);
}

std::chrono::system_clock::time_point GatewayServiceImpl::WorkerDeadline(
    const grpc::CallbackServerContext& context, const RouterState& state,
    const std::string& route) const {
  const auto now = std::chrono::system_clock::now();
  auto deadline = context.deadline();
  if (IsInfinite(deadline)) {
    deadline = now + std::chrono::milliseconds(state.config->limits().default_deadline_ms());
  }
  const slmgw::config::v1::RouteConfig* route_config = state.route_table->FindRoute(route);
  if (route_config != nullptr && route_config->deadline_ms() > 0) {
    deadline = std::min(deadline, now + std::chrono::milliseconds(route_config->deadline_ms()));
  }
  return deadline;
}

void GatewayServiceImpl::RecordFailure(const char* operation, const std::string& route,
                                       const absl::Status& status,
                                       std::chrono::steady_clock::time_point start) {
  const std::string route_label = route.empty() ? "none" : route;
  metrics_->requests
      .Add({{"route", route_label},
            {"model", "none"},
            {"operation", operation},
            {"outcome", monitoring::OutcomeLabel(static_cast<int>(status.code()))}})
      .Increment();
  metrics_->latency
      .Add({{"route", route_label}, {"operation", operation}}, monitoring::LatencyBucketsSeconds())
      .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

grpc::ServerUnaryReactor* GatewayServiceImpl::Classify(grpc::CallbackServerContext* context,
                                                       const slmgw::v1::ClassifyRequest* request,
                                                       slmgw::v1::ClassifyResponse* response) {
  const auto start = std::chrono::steady_clock::now();
  std::shared_ptr<const RouterState> state = Snapshot();
  RouteDecision decision;
  WorkerPool* pool = nullptr;
  AdmissionTicket ticket;
  if (absl::Status admitted = Admit(context, request->text(), request->options(), *state,
                                    &decision, &pool, &ticket);
      !admitted.ok()) {
    RecordFailure("classify", decision.route(), admitted, start);
    return FinishNow(context, admitted);
  }
  if (NeedsFallbackPath(*state, decision)) {  // a fallback chain or an upstream: router/fallback
    return ServeClassify(metrics_, state, context, *request, response, std::move(decision),
                         std::move(ticket), start);
  }
  slmgw::v1::WorkerServiceClassifyRequest worker_request;
  worker_request.set_text(request->text());
  *worker_request.mutable_limits() = request->options().limits();
  const auto deadline = WorkerDeadline(*context, *state, decision.route());
  using Call = ForwardCall<slmgw::v1::WorkerServiceClassifyRequest, slmgw::v1::WorkerServiceClassifyResponse>;
  auto* call = new Call(
      this, state, "classify", std::move(decision), pool, deadline, start,
      std::move(worker_request),
      [](slmgw::v1::WorkerService::Stub* stub, grpc::ClientContext* client_context,
         const slmgw::v1::WorkerServiceClassifyRequest* worker_request,
         slmgw::v1::WorkerServiceClassifyResponse* worker_response,
         std::function<void(grpc::Status)> done) {
        stub->async()->Classify(client_context, worker_request, worker_response, std::move(done));
      },
      [response](const slmgw::v1::WorkerServiceClassifyResponse& worker_response, float* confidence) {
        *response->mutable_labels() = worker_response.labels();
        *confidence = worker_response.labels().empty() ? 0.0f : worker_response.labels(0).score();
        return response->mutable_served_by();
      });
  call->set_admission(context, std::move(ticket));
  call->Start();
  return call;
}

grpc::ServerUnaryReactor* GatewayServiceImpl::ExtractEntities(
    grpc::CallbackServerContext* context, const slmgw::v1::ExtractEntitiesRequest* request,
    slmgw::v1::ExtractEntitiesResponse* response) {
  const auto start = std::chrono::steady_clock::now();
  std::shared_ptr<const RouterState> state = Snapshot();
  RouteDecision decision;
  WorkerPool* pool = nullptr;
  AdmissionTicket ticket;
  if (absl::Status admitted = Admit(context, request->text(), request->options(), *state,
                                    &decision, &pool, &ticket);
      !admitted.ok()) {
    RecordFailure("extract_entities", decision.route(), admitted, start);
    return FinishNow(context, admitted);
  }
  if (pool == nullptr) {  // a route served by an OpenAI-compatible upstream (router/fallback)
    const absl::Status refused = absl::FailedPreconditionError(absl::StrCat(
        "route '", decision.route(), "' is served by an upstream, which does not extract entities"));
    RecordFailure("extract_entities", decision.route(), refused, start);
    return FinishNow(context, refused);
  }
  if (NeedsFallbackPath(*state, decision)) {  // a fallback chain: router/fallback
    return ServeExtractEntities(metrics_, state, context, *request, response, std::move(decision),
                                std::move(ticket), start);
  }
  slmgw::v1::WorkerServiceExtractEntitiesRequest worker_request;
  worker_request.set_text(request->text());
  *worker_request.mutable_limits() = request->options().limits();
  const auto deadline = WorkerDeadline(*context, *state, decision.route());
  using Call = ForwardCall<slmgw::v1::WorkerServiceExtractEntitiesRequest,
                           slmgw::v1::WorkerServiceExtractEntitiesResponse>;
  auto* call = new Call(
      this, state, "extract_entities", std::move(decision), pool, deadline, start,
      std::move(worker_request),
      [](slmgw::v1::WorkerService::Stub* stub, grpc::ClientContext* client_context,
         const slmgw::v1::WorkerServiceExtractEntitiesRequest* worker_request,
         slmgw::v1::WorkerServiceExtractEntitiesResponse* worker_response,
         std::function<void(grpc::Status)> done) {
        stub->async()->ExtractEntities(client_context, worker_request, worker_response,
                                       std::move(done));
      },
      [response](const slmgw::v1::WorkerServiceExtractEntitiesResponse& worker_response,
                 float* confidence) {
        *response->mutable_entities() = worker_response.entities();
        // The least certain entity bounds the answer's confidence; no entity: nothing to doubt.
        float lowest = 1.0f;
        for (const auto& entity : worker_response.entities()) {
          lowest = std::min(lowest, entity.score());
        }
        *confidence = lowest;
        return response->mutable_served_by();
      });
  call->set_admission(context, std::move(ticket));
  call->Start();
  return call;
}

grpc::ServerUnaryReactor* GatewayServiceImpl::Generate(grpc::CallbackServerContext* context,
                                                       const slmgw::v1::GenerateRequest* request,
                                                       slmgw::v1::GenerateResponse* response) {
  const auto start = std::chrono::steady_clock::now();
  const std::string& text = RoutingText(*request);
  std::shared_ptr<const RouterState> state = Snapshot();
  RouteDecision decision;
  WorkerPool* pool = nullptr;
  AdmissionTicket ticket;
  absl::Status admitted =
      Admit(context, text, request->options(), *state, &decision, &pool, &ticket);
  if (!admitted.ok()) {
    RecordFailure("generate", decision.route(), admitted, start);
    return FinishNow(context, admitted);
  }
  // Generation always runs on the fallback path (router/fallback): escalation, upstreams.
  return ServeGenerate(metrics_, state, context, *request, response, std::move(decision),
                       std::move(ticket), start);
}

grpc::ServerWriteReactor<slmgw::v1::GenerateStreamResponse>* GatewayServiceImpl::GenerateStream(
    grpc::CallbackServerContext* context, const slmgw::v1::GenerateStreamRequest* request) {
  const auto start = std::chrono::steady_clock::now();
  const std::string& text = RoutingText(*request);
  std::shared_ptr<const RouterState> state = Snapshot();
  RouteDecision decision;
  WorkerPool* pool = nullptr;
  AdmissionTicket ticket;
  absl::Status admitted =
      Admit(context, text, request->options(), *state, &decision, &pool, &ticket);
  if (!admitted.ok()) {
    RecordFailure("generate_stream", decision.route(), admitted, start);
    return RefuseStream(admitted);
  }
  return ServeGenerateStream(metrics_, state, context, *request, std::move(decision),
                             std::move(ticket), start);
}

grpc::ServerUnaryReactor* GatewayServiceImpl::Route(grpc::CallbackServerContext* context,
                                                    const slmgw::v1::RouteRequest* request,
                                                    slmgw::v1::RouteResponse* response) {
  std::shared_ptr<const RouterState> state = Snapshot();
  const uint32_t max_text_bytes = state->config->limits().max_text_bytes();
  if (request->text().size() > max_text_bytes) {
    return FinishNow(context, absl::InvalidArgumentError(absl::StrCat(
                                  "text: ", request->text().size(), " bytes exceeds the limit of ",
                                  max_text_bytes, " bytes (limits.max_text_bytes)")));
  }
  absl::StatusOr<RouteDecision> decision =
      state->policy->Decide(request->text(), request->options());
  if (!decision.ok()) return FinishNow(context, decision.status());
  *response->mutable_decision() = *std::move(decision);
  return FinishNow(context, absl::OkStatus());
}

}  // namespace slm::router
