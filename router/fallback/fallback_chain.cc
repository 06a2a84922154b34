#include "router/fallback/fallback_chain.h"

#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace slm::router {

std::string FallbackTarget::Describe() const {
  if (upstream != nullptr) return absl::StrCat("upstream '", upstream->name(), "'");
  return absl::StrCat("pool '", pool == nullptr ? "" : pool->name(), "'");
}

absl::StatusOr<std::vector<FallbackTarget>> BuildChain(const RouterState& state,
                                                       const std::string& route) {
  std::vector<FallbackTarget> chain;
  absl::flat_hash_set<std::string> seen;
  auto add = [&](const std::string& name) -> absl::Status {
    if (!seen.insert(name).second) return absl::OkStatus();
    FallbackTarget target;
    target.route = state.route_table->FindRoute(name);
    if (target.route == nullptr) {
      return absl::InternalError(absl::StrCat("fallback chain: no route '", name, "'"));
    }
    if (!target.route->upstream().empty()) {
      auto it = state.upstreams.find(target.route->upstream());
      if (it == state.upstreams.end()) {
        return absl::InternalError(
            absl::StrCat("route '", name, "': no upstream '", target.route->upstream(), "'"));
      }
      target.upstream = it->second;
    } else {
      auto it = state.pools.find(target.route->pool());
      if (it == state.pools.end()) {
        return absl::InternalError(absl::StrCat("route '", name, "' has no pool"));
      }
      target.pool = it->second;
    }
    chain.push_back(std::move(target));
    return absl::OkStatus();
  };
  if (absl::Status status = add(route); !status.ok()) return status;
  for (const std::string& fallback : chain.front().route->fallback()) {
    if (absl::Status status = add(fallback); !status.ok()) return status;
  }
  return chain;
}

const char* EscalationReason(const absl::Status& status,
                             std::chrono::system_clock::time_point caller_deadline) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      return "unavailable";
    case absl::StatusCode::kResourceExhausted:
      return "resource_exhausted";
    case absl::StatusCode::kDeadlineExceeded:
      return std::chrono::system_clock::now() < caller_deadline ? "deadline" : nullptr;
    default:
      return nullptr;
  }
}

float GenerationConfidence(const google::protobuf::RepeatedField<float>& logprobs) {
  if (logprobs.empty()) return -1.0f;
  double sum = 0;
  for (float logprob : logprobs) sum += std::isfinite(logprob) ? logprob : -100.0;
  return static_cast<float>(std::exp(sum / logprobs.size()));
}

std::string DecisionFallbackReason(const slmgw::v1::RouteDecision& decision) {
  bool out_of_domain_signal = false;
  for (const auto& signal : decision.signals()) {
    out_of_domain_signal |= signal.name() == "out_of_domain";
  }
  if (!out_of_domain_signal || !absl::StrContains(decision.reason(), "fallback to route")) {
    return "";
  }
  return absl::StrContains(decision.reason(), "out-of-domain label") ? "out_of_domain"
                                                                     : "low_confidence";
}

void RecordFallback(RouterMetrics& metrics, const std::string& reason, const std::string& source,
                    const std::string& target) {
  metrics.fallbacks.Add({{"reason", reason}, {"source", source}, {"target", target}}).Increment();
}

std::string UpstreamWorkerName(const upstream::UpstreamClient& client) {
  return absl::StrCat("upstream:", client.name());
}

}  // namespace slm::router
