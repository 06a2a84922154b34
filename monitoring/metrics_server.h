// The Prometheus endpoint of a process: one registry, served at http://ADDRESS/metrics.
//
//   SLM_ASSIGN_OR_RETURN(auto metrics, slm::monitoring::MetricsServer::Start("127.0.0.1:9464"));
//   auto worker_metrics = WorkerMetrics::Create(*metrics->registry(), "sentiment");
//   SLM_LOG(INFO) << "metrics on port " << metrics->port();
//
// Components build their metric families once at start-up against `registry()` (CONVENTIONS 9).
// Thread-safety: all methods may be called concurrently. Destroying the server stops serving
// (prometheus-cpp takes about 2 s to stop its HTTP threads).
#ifndef SLM_MONITORING_METRICS_SERVER_H_
#define SLM_MONITORING_METRICS_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}

namespace slm::monitoring {

class MetricsServer {
 public:
  // Binds `address` (host:port; port 0 picks a free port) and serves the registry.
  // Errors: Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& address);
  ~MetricsServer();

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }
  // The bound port (useful with port 0).
  int port() const { return port_; }

 private:
  MetricsServer(std::unique_ptr<prometheus::Exposer> exposer,
                std::shared_ptr<prometheus::Registry> registry, int port);

  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Registry> registry_;
  int port_;
};

// Histogram buckets for request latencies in seconds: 50 us to 30 s, roughly x2 apart.
const prometheus::Histogram::BucketBoundaries& LatencyBucketsSeconds();

// Finer buckets for work that takes microseconds (router overhead, routing signals):
// 1 us to 100 ms, roughly x2-2.5 apart.
const prometheus::Histogram::BucketBoundaries& MicroLatencyBucketsSeconds();

// A bounded, lower-case label value for a gRPC/absl status code ("ok", "invalid_argument", ...).
std::string OutcomeLabel(int status_code);

}  // namespace slm::monitoring

#endif  // SLM_MONITORING_METRICS_SERVER_H_
