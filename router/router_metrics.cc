#include "router/router_metrics.h"

namespace slm::router {

RouterMetrics::RouterMetrics(prometheus::Registry& registry)
    : requests(prometheus::BuildCounter()
                   .Name("slmgw_router_requests_total")
                   .Help("Requests the router answered, by route, model, operation and outcome")
                   .Register(registry)),
      latency(prometheus::BuildHistogram()
                  .Name("slmgw_router_request_duration_seconds")
                  .Help("End-to-end time in the router, worker call included")
                  .Register(registry)),
      overhead(prometheus::BuildHistogram()
                   .Name("slmgw_router_overhead_seconds")
                   .Help("Time spent in the router excluding the worker call")
                   .Register(registry)),
      in_flight(prometheus::BuildGauge()
                    .Name("slmgw_router_in_flight")
                    .Help("Requests the router is handling now")
                    .Register(registry)
                    .Add({})),
      decisions(prometheus::BuildCounter()
                    .Name("slmgw_router_decisions_total")
                    .Help("Routing decisions, by route and the signal that decided")
                    .Register(registry)),
      classification(prometheus::BuildHistogram()
                         .Name("slmgw_router_classification_duration_seconds")
                         .Help("Time to compute each routing signal")
                         .Register(registry)),
      confidence(prometheus::BuildHistogram()
                     .Name("slmgw_router_confidence_ratio")
                     .Help("Top-class probability of each learned routing signal")
                     .Register(registry)),
      retries(prometheus::BuildCounter()
                  .Name("slmgw_router_retries_total")
                  .Help("Worker calls retried on another endpoint, by pool")
                  .Register(registry)),
      upstream_errors(prometheus::BuildCounter()
                          .Name("slmgw_router_upstream_errors_total")
                          .Help("Failed worker calls, by pool and gRPC code")
                          .Register(registry)),
      endpoints(prometheus::BuildGauge()
                    .Name("slmgw_router_endpoints")
                    .Help("Worker endpoints by pool and state (ready, unhealthy: health check "
                          "fails, open: circuit cooling down, half_open: being probed)")
                    .Register(registry)),
      cooldowns(prometheus::BuildCounter()
                    .Name("slmgw_router_endpoint_cooldowns_total")
                    .Help("Circuits opened after repeated failures, by pool")
                    .Register(registry)),
      hedges(prometheus::BuildCounter()
                 .Name("slmgw_router_hedges_total")
                 .Help("Hedged second attempts started, by pool")
                 .Register(registry)),
      budget_exhausted(prometheus::BuildCounter()
                           .Name("slmgw_router_retry_budget_exhausted_total")
                           .Help("Retries or hedges not made because the pool's retry budget "
                                 "was spent, by pool")
                           .Register(registry)),
      load_shed(prometheus::BuildCounter()
                    .Name("slmgw_router_load_shed_total")
                    .Help("Requests refused with RESOURCE_EXHAUSTED by the router, by route and "
                          "reason")
                    .Register(registry)),
      config_reloads(prometheus::BuildCounter()
                         .Name("slmgw_router_config_reloads_total")
                         .Help("Configuration reloads, by outcome (applied, invalid, rejected, "
                               "unreadable)")
                         .Register(registry)),
      fallbacks(prometheus::BuildCounter()
                    .Name("slmgw_router_fallbacks_total")
                    .Help("Requests moved to a fallback route, by reason and source -> target "
                          "route")
                    .Register(registry)),
      cascade_escalations(prometheus::BuildCounter()
                              .Name("slmgw_router_cascade_escalations_total")
                              .Help("Answers below their route's cascade_threshold that escalated "
                                    "to the next route, by route and operation")
                              .Register(registry)),
      upstream_requests(prometheus::BuildCounter()
                            .Name("slmgw_router_upstream_requests_total")
                            .Help("Requests to OpenAI-compatible upstreams, by upstream and "
                                  "outcome")
                            .Register(registry)),
      upstream_latency(prometheus::BuildHistogram()
                           .Name("slmgw_router_upstream_latency_seconds")
                           .Help("Time of upstream requests (streams: until the last chunk), by "
                                 "upstream")
                           .Register(registry)) {}

}  // namespace slm::router
