// The per-request metric series of the router, looked up once per label set and then reused.
//
//   RequestMetrics& m = metrics.per_request;
//   m.Decisions(route, signal).Increment();
//   m.Overhead(route).Observe(seconds);
//
// prometheus::Family::Add builds a std::map of labels, hashes it and takes the family's lock on
// every call: about 2,500 instructions, five times per request (callgrind, slm-router at
// 100 requests/s). Here a request pays one read-locked hash lookup per series; the family is
// asked only the first time a label set is seen. Label values are bounded (routes, models and
// signals from configuration, fixed operation names), so the cache is too.
// Thread-safety: every method may be called concurrently. The returned references live as long
// as the families (the router never removes a series). Lifetime: the families must outlive this
// object.
#ifndef SLM_ROUTER_REQUEST_METRICS_H_
#define SLM_ROUTER_REQUEST_METRICS_H_

#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "monitoring/metrics_server.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"

namespace slm::router {

class RequestMetrics {
 public:
  RequestMetrics(prometheus::Family<prometheus::Counter>& requests,
                 prometheus::Family<prometheus::Histogram>& latency,
                 prometheus::Family<prometheus::Histogram>& overhead,
                 prometheus::Family<prometheus::Counter>& decisions,
                 prometheus::Family<prometheus::Histogram>& classification)
      : requests_(requests),
        latency_(latency),
        overhead_(overhead),
        decisions_(decisions),
        classification_(classification) {}
  RequestMetrics(const RequestMetrics&) = delete;
  RequestMetrics& operator=(const RequestMetrics&) = delete;

  // slmgw_router_requests_total{route, model, operation, outcome="ok"}.
  prometheus::Counter& RequestsOk(const std::string& route, const std::string& model,
                                  const char* operation) {
    return Find<prometheus::Counter>(
        absl::StrCat("r\x1f", route, "\x1f", model, "\x1f", operation), [&] {
          return &requests_.Add(
              {{"route", route}, {"model", model}, {"operation", operation}, {"outcome", "ok"}});
        });
  }
  // slmgw_router_request_duration_seconds{route, operation}.
  prometheus::Histogram& Latency(const std::string& route, const char* operation) {
    return Find<prometheus::Histogram>(absl::StrCat("l\x1f", route, "\x1f", operation), [&] {
      return &latency_.Add({{"route", route}, {"operation", operation}},
                           monitoring::LatencyBucketsSeconds());
    });
  }
  // slmgw_router_overhead_seconds{route}.
  prometheus::Histogram& Overhead(const std::string& route) {
    return Find<prometheus::Histogram>(absl::StrCat("o\x1f", route), [&] {
      return &overhead_.Add({{"route", route}}, monitoring::MicroLatencyBucketsSeconds());
    });
  }
  // slmgw_router_decisions_total{route, signal}.
  prometheus::Counter& Decisions(const std::string& route, const std::string& signal) {
    return Find<prometheus::Counter>(absl::StrCat("d\x1f", route, "\x1f", signal), [&] {
      return &decisions_.Add({{"route", route}, {"signal", signal}});
    });
  }
  // slmgw_router_classification_duration_seconds{signal}.
  prometheus::Histogram& Classification(const std::string& signal) {
    return Find<prometheus::Histogram>(absl::StrCat("c\x1f", signal), [&] {
      return &classification_.Add({{"signal", signal}}, monitoring::MicroLatencyBucketsSeconds());
    });
  }

 private:
  // The series under `key` (a kind letter, then the label values, \x1f-separated), made by
  // `add` the first time.
  template <typename Metric, typename Add>
  Metric& Find(const std::string& key, Add add) {
    {
      absl::ReaderMutexLock lock(&mutex_);
      if (auto it = series_.find(key); it != series_.end()) return *static_cast<Metric*>(it->second);
    }
    Metric* metric = add();  // outside our lock: the family has its own
    absl::MutexLock lock(&mutex_);
    series_.emplace(key, metric);
    return *metric;
  }

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Histogram>& overhead_;
  prometheus::Family<prometheus::Counter>& decisions_;
  prometheus::Family<prometheus::Histogram>& classification_;

  absl::Mutex mutex_;
  absl::flat_hash_map<std::string, void*> series_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace slm::router

#endif  // SLM_ROUTER_REQUEST_METRICS_H_
