// The route table: an immutable index over the configured routes that turns a request's options
// into a RouteDecision. Signals are tried cheapest first (explicit route hint, then task, then
// the default route); each signal records its own time. Learned classifiers join in a later tier.
//
//   SLM_ASSIGN_OR_RETURN(auto table, RouteTable::Create(*config));
//   absl::StatusOr<slmgw::v1::RouteDecision> decision = table->Decide(request.options());
//
// Thread-safety: immutable after Create; Decide may be called concurrently.
#ifndef SLM_ROUTER_ROUTE_TABLE_H_
#define SLM_ROUTER_ROUTE_TABLE_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "slmgw/config/v1/config.pb.h"
#include "slmgw/v1/types.pb.h"

namespace slm::router {

class RouteTable {
 public:
  // Expects a validated configuration (common/config); still refuses dangling references.
  static absl::StatusOr<std::unique_ptr<RouteTable>> Create(
      const slmgw::config::v1::GatewayConfig& config);

  // Errors: NotFound for an unknown route hint or task (the message lists what exists),
  // FailedPrecondition when the request names nothing and no default route is configured.
  absl::StatusOr<slmgw::v1::RouteDecision> Decide(const slmgw::v1::RequestOptions& options) const;

  // The route's configuration, or nullptr.
  const slmgw::config::v1::RouteConfig* FindRoute(const std::string& name) const;

 private:
  RouteTable() = default;

  absl::flat_hash_map<std::string, slmgw::config::v1::RouteConfig> routes_;
  absl::flat_hash_map<std::string, std::string> route_of_task_;
  std::string default_route_;
  std::string known_routes_;  // "a, b" for error messages
  std::string known_tasks_;
};

}  // namespace slm::router

#endif  // SLM_ROUTER_ROUTE_TABLE_H_
