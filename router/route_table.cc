#include "router/route_table.h"

#include <chrono>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace slm::router {
namespace {

uint64_t NanosSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              start)
      .count();
}

}  // namespace

absl::StatusOr<std::unique_ptr<RouteTable>> RouteTable::Create(
    const slmgw::config::v1::GatewayConfig& config) {
  auto table = std::unique_ptr<RouteTable>(new RouteTable());
  std::vector<std::string> route_names;
  std::vector<std::string> task_names;
  for (const auto& route : config.routes()) {
    if (!table->routes_.emplace(route.name(), route).second) {
      return absl::InvalidArgumentError(absl::StrCat("routes: duplicate route '", route.name(), "'"));
    }
    route_names.push_back(route.name());
    for (const std::string& task : route.tasks()) {
      if (!table->route_of_task_.emplace(task, route.name()).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("routes: task '", task, "' belongs to more than one route"));
      }
      task_names.push_back(task);
    }
  }
  if (!config.default_route().empty() && !table->routes_.contains(config.default_route())) {
    return absl::InvalidArgumentError(
        absl::StrCat("default_route: no route named '", config.default_route(), "'"));
  }
  table->default_route_ = config.default_route();
  absl::c_sort(route_names);
  absl::c_sort(task_names);
  table->known_routes_ = absl::StrJoin(route_names, ", ");
  table->known_tasks_ = absl::StrJoin(task_names, ", ");
  return table;
}

const slmgw::config::v1::RouteConfig* RouteTable::FindRoute(const std::string& name) const {
  auto it = routes_.find(name);
  return it == routes_.end() ? nullptr : &it->second;
}

absl::StatusOr<slmgw::v1::RouteDecision> RouteTable::Decide(
    const slmgw::v1::RequestOptions& options) const {
  slmgw::v1::RouteDecision decision;
  auto finish = [&](const std::string& route, const char* signal_name,
                    std::chrono::steady_clock::time_point start, std::string reason) {
    const slmgw::config::v1::RouteConfig& config = routes_.at(route);
    slmgw::v1::RouteSignal* signal = decision.add_signals();
    signal->set_name(signal_name);
    signal->set_route(route);
    signal->set_confidence(1.0f);
    signal->set_duration_ns(NanosSince(start));
    decision.set_route(route);
    decision.set_pool(config.pool());
    decision.set_confidence(1.0f);
    decision.set_reason(std::move(reason));
    return decision;
  };

  // 1. An explicit route hint wins.
  auto start = std::chrono::steady_clock::now();
  if (!options.route_hint().empty()) {
    if (!routes_.contains(options.route_hint())) {
      return absl::NotFoundError(absl::StrCat("options.route_hint: no route named '",
                                              options.route_hint(), "' (routes: ",
                                              known_routes_, ")"));
    }
    return finish(options.route_hint(), "route_hint", start,
                  absl::StrCat("explicit route hint '", options.route_hint(), "'"));
  }
  // 2. The task the caller named.
  start = std::chrono::steady_clock::now();
  if (!options.task().empty()) {
    auto it = route_of_task_.find(options.task());
    if (it == route_of_task_.end()) {
      return absl::NotFoundError(absl::StrCat("options.task: no route serves task '",
                                              options.task(), "' (tasks: ", known_tasks_, ")"));
    }
    return finish(it->second, "task", start,
                  absl::StrCat("task '", options.task(), "' maps to route '", it->second, "'"));
  }
  // 3. The default route.
  start = std::chrono::steady_clock::now();
  if (default_route_.empty()) {
    return absl::FailedPreconditionError(
        "request names no task or route hint, and no default_route is configured");
  }
  return finish(default_route_, "default", start,
                absl::StrCat("no task or hint; default route '", default_route_, "'"));
}

}  // namespace slm::router
