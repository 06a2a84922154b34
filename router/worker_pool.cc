#include "router/worker_pool.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/config/endpoint.h"
#include "common/logging.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace slm::router {
namespace {

constexpr int kDefaultFailuresToOpen = 3;
constexpr int kDefaultCooldownMs = 2000;
constexpr int kDefaultResolveIntervalMs = 5000;
// A health check gets at most this long (and at most its interval).
constexpr int kMaxHealthCheckTimeoutMs = 1000;

// A cheap per-thread generator for the two random choices (SplitMix64).
uint64_t NextRandom() {
  thread_local uint64_t state = reinterpret_cast<uintptr_t>(&state) ^ 0x9E3779B97F4A7C15ull;
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// One health Check in flight.
struct HealthCheck {
  std::shared_ptr<Endpoint> endpoint;
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
};

}  // namespace

struct WorkerPool::HealthChecks {
  absl::Mutex mutex;
  bool stopped ABSL_GUARDED_BY(mutex) = false;
  absl::flat_hash_map<HealthCheck*, std::shared_ptr<HealthCheck>> live ABSL_GUARDED_BY(mutex);
};

ChannelFactory DefaultChannelFactory() {
  return [](const std::string& endpoint) -> absl::StatusOr<std::shared_ptr<grpc::Channel>> {
    if (absl::StartsWith(endpoint, "inprocess:")) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint '", endpoint, "': in-process workers exist only in slm-gateway"));
    }
    return grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials());
  };
}

Resolver SystemResolver() {
  return [](const std::string& host, uint16_t port) -> absl::StatusOr<std::vector<std::string>> {
    std::string name = host;
    if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
      name = name.substr(1, name.size() - 2);
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* results = nullptr;
    const int error = getaddrinfo(name.c_str(), nullptr, &hints, &results);
    if (error != 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot resolve '", host, "': ", gai_strerror(error)));
    }
    std::vector<std::string> addresses;
    for (addrinfo* info = results; info != nullptr; info = info->ai_next) {
      char text[INET6_ADDRSTRLEN] = {};
      if (info->ai_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(info->ai_addr)->sin_addr, text,
                  sizeof(text));
        addresses.push_back(absl::StrCat(text, ":", port));
      } else if (info->ai_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(info->ai_addr)->sin6_addr, text,
                  sizeof(text));
        addresses.push_back(absl::StrCat("[", text, "]:", port));
      }
    }
    freeaddrinfo(results);
    std::sort(addresses.begin(), addresses.end());
    addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
    return addresses;
  };
}

WorkerPool::WorkerPool(const slmgw::config::v1::PoolConfig& config, ChannelFactory channel_factory,
                       PoolOptions options)
    : config_(config),
      channel_factory_(std::move(channel_factory)),
      options_(std::move(options)),
      failures_to_open_(config.failures_to_open() > 0 ? config.failures_to_open()
                                                      : kDefaultFailuresToOpen),
      cooldown_(config.cooldown_ms() > 0 ? config.cooldown_ms() : kDefaultCooldownMs),
      retry_budget_(options_.retry_budget_ratio, options_.retry_budget_min_per_second,
                    Clock::now()),
      health_checks_(std::make_shared<HealthChecks>()),
      endpoints_(std::make_shared<const std::vector<std::shared_ptr<Endpoint>>>()) {}

absl::StatusOr<std::shared_ptr<Endpoint>> WorkerPool::MakeEndpoint(
    const std::string& address) const {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = channel_factory_(address);
  if (!channel.ok()) {
    return absl::Status(channel.status().code(),
                        absl::StrCat("pool '", name(), "': ", channel.status().message()));
  }
  auto endpoint = std::make_shared<Endpoint>(failures_to_open_, cooldown_);
  endpoint->address = address;
  endpoint->channel = *channel;
  endpoint->stub = slmgw::v1::WorkerService::NewStub(*channel);
  endpoint->health_stub = grpc::health::v1::Health::NewStub(*channel);
  return endpoint;
}

absl::StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Create(
    const slmgw::config::v1::PoolConfig& config, const ChannelFactory& channel_factory,
    PoolOptions options) {
  if (config.endpoints().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pool '", config.name(), "': needs at least one endpoint"));
  }
  auto pool =
      std::unique_ptr<WorkerPool>(new WorkerPool(config, channel_factory, std::move(options)));
  {
    absl::MutexLock lock(&pool->mutex_);
    for (const std::string& text : config.endpoints()) {
      Target target;
      target.text = text;
      if (absl::StartsWith(text, "dns:///")) {
        absl::StatusOr<config::Endpoint> parsed = config::ParseEndpoint(text);
        if (!parsed.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("pool '", config.name(), "': ", parsed.status().message()));
        }
        target.dns = true;
        target.host = parsed->address.host;
        target.port = parsed->address.port;
        pool->targets_.push_back(std::move(target));
        pool->by_target_.emplace_back();  // resolved by the Refresh below
        continue;
      }
      absl::StatusOr<std::shared_ptr<Endpoint>> endpoint = pool->MakeEndpoint(text);
      if (!endpoint.ok()) return endpoint.status();
      pool->targets_.push_back(std::move(target));
      pool->by_target_.push_back({*std::move(endpoint)});
    }
    std::vector<std::shared_ptr<Endpoint>> all;
    for (const auto& endpoints : pool->by_target_) {
      all.insert(all.end(), endpoints.begin(), endpoints.end());
    }
    pool->endpoints_ =
        std::make_shared<const std::vector<std::shared_ptr<Endpoint>>>(std::move(all));
  }
  absl::Status resolved = pool->Refresh(Clock::now(), /*force=*/true);
  if (!resolved.ok()) SLM_LOG(WARNING) << resolved.message();
  return pool;
}

std::vector<std::shared_ptr<Endpoint>> WorkerPool::Endpoints() const {
  absl::MutexLock lock(&mutex_);
  return *endpoints_;
}

std::string WorkerPool::ResolutionError() const {
  absl::MutexLock lock(&mutex_);
  return resolution_error_;
}

absl::Status WorkerPool::Refresh(Clock::time_point now, bool force) {
  std::vector<size_t> dns_targets;
  {
    absl::MutexLock lock(&mutex_);
    const auto interval =
        std::chrono::milliseconds(config_.resolve_interval_ms() > 0 ? config_.resolve_interval_ms()
                                                                    : kDefaultResolveIntervalMs);
    if (!force && now - last_resolve_ < interval) return absl::OkStatus();
    last_resolve_ = now;
  }
  for (size_t i = 0; i < targets_.size(); ++i) {
    if (targets_[i].dns) dns_targets.push_back(i);
  }
  if (dns_targets.empty()) return absl::OkStatus();

  absl::Status last_error;
  // Resolve without the lock (getaddrinfo blocks); then merge.
  std::vector<std::pair<size_t, std::vector<std::string>>> resolved;
  for (size_t i : dns_targets) {
    absl::StatusOr<std::vector<std::string>> addresses =
        options_.resolver(targets_[i].host, targets_[i].port);
    if (!addresses.ok()) {
      last_error =
          absl::UnavailableError(absl::StrCat("pool '", name(), "': endpoint '", targets_[i].text,
                                              "': ", addresses.status().message()));
      continue;
    }
    resolved.emplace_back(i, *std::move(addresses));
  }
  absl::MutexLock lock(&mutex_);
  for (auto& [index, addresses] : resolved) {
    absl::flat_hash_map<std::string, std::shared_ptr<Endpoint>> existing;
    for (auto& endpoint : by_target_[index]) existing[endpoint->address] = endpoint;
    std::vector<std::shared_ptr<Endpoint>> next;
    for (const std::string& address : addresses) {
      if (auto it = existing.find(address); it != existing.end()) {
        next.push_back(it->second);
        continue;
      }
      absl::StatusOr<std::shared_ptr<Endpoint>> endpoint = MakeEndpoint(address);
      if (!endpoint.ok()) {
        last_error = endpoint.status();
        continue;
      }
      next.push_back(*std::move(endpoint));
    }
    if (next.size() != by_target_[index].size()) {
      SLM_LOG(INFO) << "pool '" << name() << "': " << targets_[index].text << " now has "
                    << next.size() << " endpoint(s)";
    }
    by_target_[index] = std::move(next);
  }
  std::vector<std::shared_ptr<Endpoint>> all;
  for (const auto& endpoints : by_target_)
    all.insert(all.end(), endpoints.begin(), endpoints.end());
  endpoints_ = std::make_shared<const std::vector<std::shared_ptr<Endpoint>>>(std::move(all));
  resolution_error_ = last_error.ok() ? "" : std::string(last_error.message());
  return last_error;
}

void WorkerPool::CheckHealth(Clock::time_point now) {
  const uint32_t interval_ms = config_.health_check_interval_ms();
  if (interval_ms == 0) return;
  std::shared_ptr<const std::vector<std::shared_ptr<Endpoint>>> endpoints;
  {
    absl::MutexLock lock(&mutex_);
    if (now - last_health_check_ < std::chrono::milliseconds(interval_ms)) return;
    last_health_check_ = now;
    endpoints = endpoints_;
  }
  const auto timeout =
      std::chrono::milliseconds(std::min<uint32_t>(interval_ms, kMaxHealthCheckTimeoutMs));
  for (const auto& endpoint : *endpoints) {
    if (endpoint->health_check_in_flight.exchange(true)) continue;  // a stuck worker
    auto check = std::make_shared<HealthCheck>();
    check->endpoint = endpoint;
    check->context.set_deadline(std::chrono::system_clock::now() + timeout);
    {
      absl::MutexLock lock(&health_checks_->mutex);
      if (health_checks_->stopped) {
        endpoint->health_check_in_flight.store(false);
        return;
      }
      health_checks_->live.emplace(check.get(), check);
    }
    endpoint->health_stub->async()->Check(
        &check->context, &check->request, &check->response,
        [check, checks = health_checks_](grpc::Status status) {
          const bool serving =
              (status.ok() &&
               check->response.status() == grpc::health::v1::HealthCheckResponse::SERVING) ||
              status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
          // A check cancelled at shutdown says nothing about the endpoint.
          if (status.error_code() != grpc::StatusCode::CANCELLED) {
            check->endpoint->healthy.store(serving);
          }
          check->endpoint->health_check_in_flight.store(false);
          // The endpoint (and its channel) must not be released on this gRPC thread after
          // StopHealthChecks returned: let go of it before saying this check is done.
          check->endpoint.reset();
          absl::MutexLock lock(&checks->mutex);
          checks->live.erase(check.get());
        });
  }
}

void WorkerPool::StopHealthChecks(std::chrono::milliseconds timeout) {
  std::vector<std::shared_ptr<HealthCheck>> live;
  {
    absl::MutexLock lock(&health_checks_->mutex);
    health_checks_->stopped = true;
    for (const auto& [key, check] : health_checks_->live) live.push_back(check);
  }
  // Outside the lock: a cancelled call's callback may run inline, and it takes the lock.
  for (const auto& check : live) check->context.TryCancel();
  live.clear();
  HealthChecks& checks = *health_checks_;
  absl::MutexLock lock(&checks.mutex);
  auto done = [&checks]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(checks.mutex) { return checks.live.empty(); };
  checks.mutex.AwaitWithTimeout(absl::Condition(&done), absl::Milliseconds(timeout.count()));
}

std::shared_ptr<Endpoint> WorkerPool::Pick(const std::vector<const Endpoint*>& exclude,
                                           Clock::time_point now, PickFailure* failure) {
  std::shared_ptr<const std::vector<std::shared_ptr<Endpoint>>> endpoints;
  {
    absl::MutexLock lock(&mutex_);
    endpoints = endpoints_;
  }
  if (endpoints->empty()) {
    *failure = PickFailure::kNoEndpoints;
    return nullptr;
  }
  const uint32_t max_in_flight = config_.max_in_flight_per_endpoint();
  std::vector<Endpoint*> healthy;
  std::vector<Endpoint*> unhealthy;
  int cooling = 0;
  int full = 0;
  for (const auto& endpoint : *endpoints) {
    if (std::find(exclude.begin(), exclude.end(), endpoint.get()) != exclude.end()) continue;
    if (max_in_flight > 0 && endpoint->in_flight.load() >= static_cast<int>(max_in_flight)) {
      ++full;
      continue;
    }
    if (!endpoint->breaker.Available(now)) {
      ++cooling;
      continue;
    }
    (endpoint->healthy.load() ? healthy : unhealthy).push_back(endpoint.get());
  }
  std::vector<Endpoint*>& candidates = healthy.empty() ? unhealthy : healthy;
  // A half-open circuit admits one probe: a candidate can be taken by a concurrent Pick.
  while (!candidates.empty()) {
    Endpoint* chosen = candidates[0];
    if (candidates.size() > 1) {
      const uint64_t random = NextRandom();
      Endpoint* first = candidates[random % candidates.size()];
      Endpoint* second = candidates[(random >> 32) % candidates.size()];
      chosen = first->Score() <= second->Score() ? first : second;
    }
    if (chosen->breaker.TryAcquire(now)) {
      *failure = PickFailure::kNone;
      for (const auto& endpoint : *endpoints) {
        if (endpoint.get() == chosen) return endpoint;
      }
    }
    candidates.erase(std::find(candidates.begin(), candidates.end(), chosen));
    ++cooling;
  }
  *failure = full > 0      ? PickFailure::kFull
             : cooling > 0 ? PickFailure::kCoolingDown
                           : PickFailure::kAllTried;
  return nullptr;
}

bool WorkerPool::RecordOutcome(Endpoint& endpoint, CallOutcome outcome, Clock::time_point now) {
  switch (outcome) {
    case CallOutcome::kSuccess:
      endpoint.breaker.OnSuccess();
      return false;
    case CallOutcome::kFailure:
      return endpoint.breaker.OnFailure(now);
    case CallOutcome::kNeutral:
      endpoint.breaker.OnNeutral();
      return false;
  }
  return false;
}

}  // namespace slm::router
