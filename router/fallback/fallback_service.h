// The entry points GatewayServiceImpl calls for requests served along a fallback chain: Classify
// and ExtractEntities when the decided route has a fallback chain or an upstream, and Generate /
// GenerateStream always. Internal to router/.
//
//   if (NeedsFallbackPath(*state, decision)) {
//     return ServeClassify(metrics, state, context, *request, response, decision, ticket, start);
//   }
//
// Each returns the reactor that answers the request (already started); a chain that cannot be
// built (a route, pool or upstream missing from the snapshot) answers INTERNAL at once.
// Thread-safety: reentrant.
#ifndef SLM_ROUTER_FALLBACK_FALLBACK_SERVICE_H_
#define SLM_ROUTER_FALLBACK_FALLBACK_SERVICE_H_

#include <chrono>
#include <memory>

#include "grpcpp/support/server_callback.h"
#include "router/gateway_service.h"
#include "slmgw/v1/gateway.pb.h"

namespace slm::router {

bool NeedsFallbackPath(const RouterState& state, const slmgw::v1::RouteDecision& decision);

// The caller's deadline, or limits.default_deadline_ms from now when it set none.
std::chrono::system_clock::time_point CallerDeadline(const grpc::CallbackServerContext& context,
                                                     const RouterState& state);

grpc::ServerUnaryReactor* ServeClassify(std::shared_ptr<RouterMetrics> metrics,
                                        std::shared_ptr<const RouterState> state,
                                        grpc::CallbackServerContext* context,
                                        const slmgw::v1::ClassifyRequest& request,
                                        slmgw::v1::ClassifyResponse* response,
                                        slmgw::v1::RouteDecision decision, AdmissionTicket ticket,
                                        std::chrono::steady_clock::time_point start);

// Entities along the decided route's chain without its upstream targets (they do not extract
// entities); a route served by an upstream itself is refused with FAILED_PRECONDITION.
grpc::ServerUnaryReactor* ServeExtractEntities(std::shared_ptr<RouterMetrics> metrics,
                                               std::shared_ptr<const RouterState> state,
                                               grpc::CallbackServerContext* context,
                                               const slmgw::v1::ExtractEntitiesRequest& request,
                                               slmgw::v1::ExtractEntitiesResponse* response,
                                               slmgw::v1::RouteDecision decision,
                                               AdmissionTicket ticket,
                                               std::chrono::steady_clock::time_point start);

grpc::ServerUnaryReactor* ServeGenerate(std::shared_ptr<RouterMetrics> metrics,
                                        std::shared_ptr<const RouterState> state,
                                        grpc::CallbackServerContext* context,
                                        const slmgw::v1::GenerateRequest& request,
                                        slmgw::v1::GenerateResponse* response,
                                        slmgw::v1::RouteDecision decision, AdmissionTicket ticket,
                                        std::chrono::steady_clock::time_point start);

grpc::ServerWriteReactor<slmgw::v1::GenerateStreamResponse>* ServeGenerateStream(
    std::shared_ptr<RouterMetrics> metrics, std::shared_ptr<const RouterState> state,
    grpc::CallbackServerContext* context, const slmgw::v1::GenerateStreamRequest& request,
    slmgw::v1::RouteDecision decision, AdmissionTicket ticket,
    std::chrono::steady_clock::time_point start);

// A stream reactor that ends at once with `status`.
grpc::ServerWriteReactor<slmgw::v1::GenerateStreamResponse>* RefuseStream(
    const absl::Status& status);

}  // namespace slm::router

#endif  // SLM_ROUTER_FALLBACK_FALLBACK_SERVICE_H_
