// The metric families of a worker, built once at start-up (CONVENTIONS 9).
// Labels: model (from configuration), operation (classify | extract_entities | generate |
// generate_stream), outcome (a gRPC code name), direction (input | output). All bounded.
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
  // Generation (decoder workers).
  prometheus::Family<prometheus::Histogram>& time_to_first_token;  // ..._time_to_first_token_seconds
  prometheus::Family<prometheus::Histogram>& time_per_output_token;  // ..._time_per_output_token_seconds
  prometheus::Family<prometheus::Histogram>& batch_sequences;  // slmgw_worker_batch_sequences
  prometheus::Family<prometheus::Gauge>& active_sequences;     // slmgw_worker_active_sequences
  prometheus::Family<prometheus::Gauge>& kv_cache_used;        // slmgw_worker_kv_cache_used_bytes
  prometheus::Family<prometheus::Gauge>& kv_cache_budget;      // slmgw_worker_kv_cache_budget_bytes
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_SERVICE_WORKER_METRICS_H_
