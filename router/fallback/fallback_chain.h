// The fallback chain of a request and the rules for moving along it (cascade).
//
//   SLM_ASSIGN_OR_RETURN(std::vector<FallbackTarget> chain, BuildChain(state, decision.route()));
//   // chain[0] is the decided route; then its routes[].fallback, in order.
//
// A target is a route served by a worker pool or by an OpenAI-compatible upstream. A request
// moves to the next target when
//   - the answer's confidence is below the route's cascade_threshold ("low_confidence"; unary
//     calls only: a stream's confidence is known only after its tokens were sent),
//   - the target failed with UNAVAILABLE ("unavailable"), RESOURCE_EXHAUSTED
//     ("resource_exhausted"), or DEADLINE_EXCEEDED while the caller's own deadline has not
//     passed (the route's deadline_ms cut it short: "deadline"),
// and the caller's deadline leaves time. Other errors (INVALID_ARGUMENT, ...) end the request:
// a bigger model would refuse it too.
// Thread-safety: pure functions; FallbackTarget is an immutable value.
#ifndef SLM_ROUTER_FALLBACK_FALLBACK_CHAIN_H_
#define SLM_ROUTER_FALLBACK_FALLBACK_CHAIN_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/repeated_field.h"
#include "router/gateway_service.h"
#include "router/router_metrics.h"
#include "router/upstream/openai_client.h"
#include "slmgw/config/v1/config.pb.h"
#include "slmgw/v1/types.pb.h"

namespace slm::router {

struct FallbackTarget {
  const slmgw::config::v1::RouteConfig* route = nullptr;  // owned by the state's config
  std::shared_ptr<WorkerPool> pool;                       // exactly one of pool and upstream
  std::shared_ptr<upstream::UpstreamClient> upstream;

  // "pool 'NAME'" or "upstream 'NAME'", for messages.
  std::string Describe() const;
};

// The route `route` then its fallback routes (each once). Errors: Internal when the state lacks
// a route, pool or upstream the validated configuration names.
absl::StatusOr<std::vector<FallbackTarget>> BuildChain(const RouterState& state,
                                                       const std::string& route);

// The fallback reason for moving on after `status`, or nullptr when the request must end.
// `caller_deadline` is the caller's own deadline (not capped by a route).
const char* EscalationReason(const absl::Status& status,
                             std::chrono::system_clock::time_point caller_deadline);

// A generated answer's confidence: exp(mean token log-probability), the geometric mean of the
// token probabilities, in [0, 1]; -1 when there are no log-probabilities.
float GenerationConfidence(const google::protobuf::RepeatedField<float>& logprobs);

// Why the routing decision itself sent the request to a fallback route ("out_of_domain",
// "low_confidence"), or "" when it did not. Reads the out_of_domain signal RoutePolicy records
// when it moves a request to a fallback target.
std::string DecisionFallbackReason(const slmgw::v1::RouteDecision& decision);

// Counts a move from `source` to `target` (route names) in slmgw_router_fallbacks_total.
void RecordFallback(RouterMetrics& metrics, const std::string& reason, const std::string& source,
                    const std::string& target);

// "upstream:NAME": ServedBy.worker for answers of an upstream.
std::string UpstreamWorkerName(const upstream::UpstreamClient& client);

}  // namespace slm::router

#endif  // SLM_ROUTER_FALLBACK_FALLBACK_CHAIN_H_
