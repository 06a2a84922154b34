// The metric families of a worker, built once at start-up (CONVENTIONS 9).
// Labels: model (from configuration), operation (classify | extract_entities | generate),
// outcome (a gRPC code name). All bounded.
#ifndef SLM_WORKERS_SERVICE_WORKER_METRICS_H_
#define SLM_WORKERS_SERVICE_WORKER_METRICS_H_

#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace slm::workers {

struct WorkerMetrics {
  explicit WorkerMetrics(prometheus::Registry& registry);

  prometheus::Family<prometheus::Counter>& requests;        // slmgw_worker_requests_total
  prometheus::Family<prometheus::Histogram>& latency;       // slmgw_worker_request_duration_seconds
  prometheus::Family<prometheus::Histogram>& queue_time;    // slmgw_worker_queue_duration_seconds
  prometheus::Family<prometheus::Histogram>& compute_time;  // slmgw_worker_compute_duration_seconds
  prometheus::Family<prometheus::Gauge>& queue_depth;       // slmgw_worker_queue_depth
  prometheus::Family<prometheus::Gauge>& in_flight;         // slmgw_worker_in_flight
  prometheus::Family<prometheus::Counter>& tokens;          // slmgw_worker_tokens_total
  prometheus::Family<prometheus::Gauge>& model_info;        // slmgw_worker_model_info
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_SERVICE_WORKER_METRICS_H_
