#include "workers/service/worker_metrics.h"

namespace slm::workers {

WorkerMetrics::WorkerMetrics(prometheus::Registry& registry)
    : requests(prometheus::BuildCounter()
                   .Name("slmgw_worker_requests_total")
                   .Help("Requests a worker finished, by model, operation and outcome")
                   .Register(registry)),
      latency(prometheus::BuildHistogram()
                  .Name("slmgw_worker_request_duration_seconds")
                  .Help("Time from a request's arrival at the worker to its response")
                  .Register(registry)),
      queue_time(prometheus::BuildHistogram()
                     .Name("slmgw_worker_queue_duration_seconds")
                     .Help("Time a request waited for the model")
                     .Register(registry)),
      compute_time(prometheus::BuildHistogram()
                       .Name("slmgw_worker_compute_duration_seconds")
                       .Help("Time the model computed one request")
                       .Register(registry)),
      queue_depth(prometheus::BuildGauge()
                      .Name("slmgw_worker_queue_depth")
                      .Help("Requests waiting for the model")
                      .Register(registry)),
      in_flight(prometheus::BuildGauge()
                    .Name("slmgw_worker_in_flight")
                    .Help("Requests being computed")
                    .Register(registry)),
      tokens(prometheus::BuildCounter()
                 .Name("slmgw_worker_tokens_total")
                 .Help("Tokens processed, by model and direction (input, output)")
                 .Register(registry)),
      model_info(prometheus::BuildGauge()
                     .Name("slmgw_worker_model_info")
                     .Help("Always 1; labels describe the model a worker serves")
                     .Register(registry)),
      time_to_first_token(prometheus::BuildHistogram()
                              .Name("slmgw_worker_time_to_first_token_seconds")
                              .Help("Time from a generation request's arrival to its first token")
                              .Register(registry)),
      time_per_output_token(prometheus::BuildHistogram()
                                .Name("slmgw_worker_time_per_output_token_seconds")
                                .Help("Mean time between output tokens after the first, per request")
                                .Register(registry)),
      batch_sequences(prometheus::BuildHistogram()
                          .Name("slmgw_worker_batch_sequences")
                          .Help("Sequences in each model step (continuous batching)")
                          .Register(registry)),
      active_sequences(prometheus::BuildGauge()
                           .Name("slmgw_worker_active_sequences")
                           .Help("Sequences being generated (holding KV cache)")
                           .Register(registry)),
      kv_cache_used(prometheus::BuildGauge()
                        .Name("slmgw_worker_kv_cache_used_bytes")
                        .Help("KV-cache bytes reserved by running sequences")
                        .Register(registry)),
      kv_cache_budget(prometheus::BuildGauge()
                          .Name("slmgw_worker_kv_cache_budget_bytes")
                          .Help("KV-cache bytes the worker may reserve (kv_cache_mb)")
                          .Register(registry)) {}

}  // namespace slm::workers
