#include "router/worker_pool.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace slm::router {
namespace {

// An endpoint that failed this many times in a row is skipped while a healthier one exists.
constexpr int kFailuresBeforeSkip = 3;

// A cheap per-thread generator for the two random choices (SplitMix64).
uint64_t NextRandom() {
  thread_local uint64_t state = reinterpret_cast<uintptr_t>(&state) ^ 0x9E3779B97F4A7C15ull;
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

ChannelFactory DefaultChannelFactory() {
  return [](const std::string& endpoint) -> absl::StatusOr<std::shared_ptr<grpc::Channel>> {
    if (absl::StartsWith(endpoint, "inprocess:")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "endpoint '", endpoint, "': in-process workers exist only in slm-gateway"));
    }
    grpc::ChannelArguments arguments;
    // Workers in a headless Service come and go: spread calls over every resolved address.
    arguments.SetLoadBalancingPolicyName("round_robin");
    return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), arguments);
  };
}

absl::StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Create(
    const slmgw::config::v1::PoolConfig& config, const ChannelFactory& channel_factory) {
  if (config.endpoints().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pool '", config.name(), "': needs at least one endpoint"));
  }
  auto pool = std::unique_ptr<WorkerPool>(new WorkerPool());
  pool->name_ = config.name();
  for (const std::string& address : config.endpoints()) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = channel_factory(address);
    if (!channel.ok()) {
      return absl::Status(channel.status().code(), absl::StrCat("pool '", config.name(),
                                                                "': ", channel.status().message()));
    }
    auto endpoint = std::make_unique<Endpoint>();
    endpoint->address = address;
    endpoint->stub = slmgw::v1::WorkerService::NewStub(*channel);
    pool->endpoints_.push_back(std::move(endpoint));
  }
  return pool;
}

Endpoint* WorkerPool::Pick(const Endpoint* exclude) {
  std::vector<Endpoint*> candidates;
  candidates.reserve(endpoints_.size());
  for (const auto& endpoint : endpoints_) {
    if (endpoint.get() != exclude &&
        endpoint->consecutive_failures.load() < kFailuresBeforeSkip) {
      candidates.push_back(endpoint.get());
    }
  }
  if (candidates.empty()) {
    // Every other endpoint is failing: still try one (it may have recovered), round robin.
    for (const auto& endpoint : endpoints_) {
      if (endpoint.get() != exclude) candidates.push_back(endpoint.get());
    }
    if (candidates.empty()) return nullptr;
    return candidates[pick_counter_++ % candidates.size()];
  }
  if (candidates.size() == 1) return candidates[0];
  const uint64_t random = NextRandom();
  Endpoint* first = candidates[random % candidates.size()];
  Endpoint* second = candidates[(random >> 32) % candidates.size()];
  return first->Score() <= second->Score() ? first : second;
}

void WorkerPool::RecordOutcome(Endpoint& endpoint, bool reachable) {
  if (reachable) {
    endpoint.consecutive_failures.store(0);
  } else {
    endpoint.consecutive_failures++;
  }
}

}  // namespace slm::router
