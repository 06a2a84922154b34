#include "monitoring/metrics_server.h"

#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "prometheus/exposer.h"

namespace slm::monitoring {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& address) {
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    // CivetWeb reports bind failures by throwing; this is the one place we let it.
    exposer = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/1);
  } catch (const std::exception& error) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", address, ": ", error.what()));
  }
  auto registry = std::make_shared<prometheus::Registry>();
  exposer->RegisterCollectable(registry);
  const std::vector<int> ports = exposer->GetListeningPorts();
  const int port = ports.empty() ? 0 : ports.front();
  return std::unique_ptr<MetricsServer>(
      new MetricsServer(std::move(exposer), std::move(registry), port));
}

MetricsServer::MetricsServer(std::unique_ptr<prometheus::Exposer> exposer,
                             std::shared_ptr<prometheus::Registry> registry, int port)
    : exposer_(std::move(exposer)), registry_(std::move(registry)), port_(port) {}

MetricsServer::~MetricsServer() = default;

const prometheus::Histogram::BucketBoundaries& LatencyBucketsSeconds() {
  static const auto* const buckets = new prometheus::Histogram::BucketBoundaries{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,    0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0, 30.0};
  return *buckets;
}

const prometheus::Histogram::BucketBoundaries& MicroLatencyBucketsSeconds() {
  static const auto* const buckets = new prometheus::Histogram::BucketBoundaries{
      0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025,
      0.0005,   0.001,     0.0025,   0.005,   0.01,     0.025,   0.1};
  return *buckets;
}

std::string OutcomeLabel(int status_code) {
  const absl::StatusCode code = static_cast<absl::StatusCode>(status_code);
  if (code == absl::StatusCode::kOk) return "ok";
  std::string name = absl::StatusCodeToString(code);
  if (name.empty()) return "unknown";
  absl::AsciiStrToLower(&name);
  return name;
}

}  // namespace slm::monitoring
