#include "router/fallback/fallback_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "router/fallback/cascade_call.h"
#include "router/fallback/generate_stream_call.h"
#include "router/fallback/unary_ops.h"

namespace slm::router {
namespace {

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

template <typename Op>
grpc::ServerUnaryReactor* ServeUnaryOnChain(std::shared_ptr<RouterMetrics> metrics,
                                            std::shared_ptr<const RouterState> state,
                                            grpc::CallbackServerContext* context, Op op,
                                            typename Op::Response* response,
                                            std::vector<FallbackTarget> chain,
                                            slmgw::v1::RouteDecision decision,
                                            AdmissionTicket ticket,
                                            std::chrono::steady_clock::time_point start) {
  const auto deadline = CallerDeadline(*context, *state);
  auto* call = new CascadeCall<Op>(std::move(metrics), std::move(state), std::move(chain),
                                   std::move(decision), std::move(op), response, context,
                                   std::move(ticket), deadline, start);
  call->Start();
  return call;
}

template <typename Op>
grpc::ServerUnaryReactor* ServeUnary(std::shared_ptr<RouterMetrics> metrics,
                                     std::shared_ptr<const RouterState> state,
                                     grpc::CallbackServerContext* context, Op op,
                                     typename Op::Response* response,
                                     slmgw::v1::RouteDecision decision, AdmissionTicket ticket,
                                     std::chrono::steady_clock::time_point start) {
  absl::StatusOr<std::vector<FallbackTarget>> chain = BuildChain(*state, decision.route());
  if (!chain.ok()) return FinishNow(context, chain.status());
  return ServeUnaryOnChain(std::move(metrics), std::move(state), context, std::move(op), response,
                           *std::move(chain), std::move(decision), std::move(ticket), start);
}

}  // namespace

bool NeedsFallbackPath(const RouterState& state, const slmgw::v1::RouteDecision& decision) {
  const slmgw::config::v1::RouteConfig* route = state.route_table->FindRoute(decision.route());
  return route != nullptr && (!route->fallback().empty() || !route->upstream().empty());
}

std::chrono::system_clock::time_point CallerDeadline(const grpc::CallbackServerContext& context,
                                                     const RouterState& state) {
  const auto now = std::chrono::system_clock::now();
  const auto deadline = context.deadline();
  if (deadline > now + std::chrono::hours(24 * 365)) {  // gRPC's "no deadline"
    return now + std::chrono::milliseconds(state.config->limits().default_deadline_ms());
  }
  return deadline;
}

grpc::ServerUnaryReactor* ServeClassify(std::shared_ptr<RouterMetrics> metrics,
                                        std::shared_ptr<const RouterState> state,
                                        grpc::CallbackServerContext* context,
                                        const slmgw::v1::ClassifyRequest& request,
                                        slmgw::v1::ClassifyResponse* response,
                                        slmgw::v1::RouteDecision decision, AdmissionTicket ticket,
                                        std::chrono::steady_clock::time_point start) {
  return ServeUnary(std::move(metrics), std::move(state), context, ClassifyOp(request), response,
                    std::move(decision), std::move(ticket), start);
}

grpc::ServerUnaryReactor* ServeExtractEntities(std::shared_ptr<RouterMetrics> metrics,
                                               std::shared_ptr<const RouterState> state,
                                               grpc::CallbackServerContext* context,
                                               const slmgw::v1::ExtractEntitiesRequest& request,
                                               slmgw::v1::ExtractEntitiesResponse* response,
                                               slmgw::v1::RouteDecision decision,
                                               AdmissionTicket ticket,
                                               std::chrono::steady_clock::time_point start) {
  absl::StatusOr<std::vector<FallbackTarget>> chain = BuildChain(*state, decision.route());
  if (!chain.ok()) return FinishNow(context, chain.status());
  if (chain->front().upstream != nullptr) {
    return FinishNow(context, absl::FailedPreconditionError(absl::StrCat(
                                  "route '", decision.route(),
                                  "' is served by an upstream, which does not extract entities")));
  }
  std::vector<FallbackTarget> pools;  // the chain's worker pools, in order
  for (FallbackTarget& target : *chain) {
    if (target.pool != nullptr) pools.push_back(std::move(target));
  }
  return ServeUnaryOnChain(std::move(metrics), std::move(state), context,
                           ExtractEntitiesOp(request), response, std::move(pools),
                           std::move(decision), std::move(ticket), start);
}

grpc::ServerUnaryReactor* ServeGenerate(std::shared_ptr<RouterMetrics> metrics,
                                        std::shared_ptr<const RouterState> state,
                                        grpc::CallbackServerContext* context,
                                        const slmgw::v1::GenerateRequest& request,
                                        slmgw::v1::GenerateResponse* response,
                                        slmgw::v1::RouteDecision decision, AdmissionTicket ticket,
                                        std::chrono::steady_clock::time_point start) {
  GenerateOp op(request.prompt(), request.messages(), request.sampling(), request.options());
  return ServeUnary(std::move(metrics), std::move(state), context, std::move(op), response,
                    std::move(decision), std::move(ticket), start);
}

grpc::ServerWriteReactor<slmgw::v1::GenerateStreamResponse>* ServeGenerateStream(
    std::shared_ptr<RouterMetrics> metrics, std::shared_ptr<const RouterState> state,
    grpc::CallbackServerContext* context, const slmgw::v1::GenerateStreamRequest& request,
    slmgw::v1::RouteDecision decision, AdmissionTicket ticket,
    std::chrono::steady_clock::time_point start) {
  absl::StatusOr<std::vector<FallbackTarget>> chain = BuildChain(*state, decision.route());
  if (!chain.ok()) return RefuseStream(chain.status());
  const auto deadline = CallerDeadline(*context, *state);
  GenerateOp op(request.prompt(), request.messages(), request.sampling(), request.options());
  auto* call = new GenerateStreamCall(std::move(metrics), std::move(state), *std::move(chain),
                                      std::move(decision), std::move(op), context,
                                      std::move(ticket), deadline, start);
  call->Start();
  return call;
}

grpc::ServerWriteReactor<slmgw::v1::GenerateStreamResponse>* RefuseStream(
    const absl::Status& status) {
  class Refusal final : public grpc::ServerWriteReactor<slmgw::v1::GenerateStreamResponse> {
   public:
    explicit Refusal(const grpc::Status& status) { Finish(status); }
    void OnDone() override { delete this; }
  };
  return new Refusal(ToGrpcStatus(status));
}

}  // namespace slm::router
