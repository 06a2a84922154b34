// The metric families of the router, built once at start-up (CONVENTIONS 9). Label values come
// from configuration (route, pool, model names) or fixed sets (operation, outcome, signal);
// requests that fail before a route is chosen count under route="none".
#ifndef SLM_ROUTER_ROUTER_METRICS_H_
#define SLM_ROUTER_ROUTER_METRICS_H_

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "router/request_metrics.h"

namespace slm::router {

struct RouterMetrics {
  explicit RouterMetrics(prometheus::Registry& registry);

  prometheus::Family<prometheus::Counter>& requests;          // {route, model, operation, outcome}
  prometheus::Family<prometheus::Histogram>& latency;         // {route, operation}
  prometheus::Family<prometheus::Histogram>& overhead;        // {route}
  prometheus::Gauge& in_flight;
  prometheus::Family<prometheus::Counter>& decisions;         // {route, signal}
  prometheus::Family<prometheus::Histogram>& classification;  // {signal}
  prometheus::Family<prometheus::Histogram>& confidence;      // {signal}: learned tiers
  prometheus::Family<prometheus::Counter>& retries;           // {pool}
  prometheus::Family<prometheus::Counter>& upstream_errors;   // {pool, code}
  // Dispatch, admission and reload (label values: pool and route names, fixed reason sets).
  prometheus::Family<prometheus::Gauge>& endpoints;           // {pool, state}
  prometheus::Family<prometheus::Counter>& cooldowns;         // {pool}
  prometheus::Family<prometheus::Counter>& hedges;            // {pool}
  prometheus::Family<prometheus::Counter>& budget_exhausted;  // {pool}
  prometheus::Family<prometheus::Counter>& load_shed;         // {route, reason}
  prometheus::Family<prometheus::Counter>& config_reloads;    // {outcome}
  // Fallback and cascade (router/fallback/): label values are route and upstream names, the
  // fixed reason set (low_confidence, out_of_domain, unavailable, resource_exhausted, deadline)
  // and outcome labels.
  prometheus::Family<prometheus::Counter>& fallbacks;            // {reason, source, target}
  prometheus::Family<prometheus::Counter>& cascade_escalations;  // {route, operation}
  prometheus::Family<prometheus::Counter>& upstream_requests;    // {upstream, outcome}
  prometheus::Family<prometheus::Histogram>& upstream_latency;   // {upstream}

  // The request path's series of the families above, looked up once (request_metrics.h).
  RequestMetrics per_request{requests, latency, overhead, decisions, classification};
};

}  // namespace slm::router

#endif  // SLM_ROUTER_ROUTER_METRICS_H_
