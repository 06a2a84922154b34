// A pool of worker endpoints serving one route's model, and the choice of endpoint per call.
//
//   SLM_ASSIGN_OR_RETURN(auto pool, WorkerPool::Create(pool_config, DefaultChannelFactory()));
//   PickFailure why;
//   std::shared_ptr<Endpoint> endpoint = pool->Pick(/*exclude=*/{}, Clock::now(), &why);
//   ScopedCall call(endpoint.get());  // counts the router's in-flight calls on it
//   ... pool->RecordOutcome(*endpoint, CallOutcome::kSuccess, Clock::now());
//
// Endpoints come from the configuration: "host:port" and "inprocess:NAME" are one endpoint each;
// "dns:///name:port" becomes one endpoint per resolved address (a Kubernetes headless Service)
// and is re-resolved by Refresh. Endpoints are shared_ptr-owned: one removed by a refresh lives
// until its last call ends, so refreshing never drops a call in flight.
//
// Pick is power of two choices on load (the router's in-flight calls on an endpoint plus the queue
// depth it last reported) among the endpoints that are not excluded, whose circuit admits a call
// (circuit_breaker.h), and that are below max_in_flight_per_endpoint; endpoints whose health
// check fails are used only when no healthy one is left.
// Thread-safety: all methods may be called concurrently. Refresh and CheckHealth are meant for
// one maintenance thread (GatewayServiceImpl's).
#ifndef SLM_ROUTER_WORKER_POOL_H_
#define SLM_ROUTER_WORKER_POOL_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/channel.h"
#include "router/circuit_breaker.h"
#include "router/retry_budget.h"
#include "slmgw/config/v1/config.pb.h"
#include "slmgw/v1/worker.grpc.pb.h"

namespace slm::router {

// Makes the channel for an endpoint string ("host:port", "inprocess:NAME").
using ChannelFactory =
    std::function<absl::StatusOr<std::shared_ptr<grpc::Channel>>(const std::string& endpoint)>;

// Insecure channels to host:port targets; refuses "inprocess:" (only the all-in-one binary can
// make those).
ChannelFactory DefaultChannelFactory();

// Resolves a DNS name to "address:port" strings (IPv6 as "[address]:port"), sorted.
using Resolver =
    std::function<absl::StatusOr<std::vector<std::string>>(const std::string& host, uint16_t port)>;
// getaddrinfo. Blocks: call it off the request path (the maintenance thread).
Resolver SystemResolver();

struct Endpoint {
  Endpoint(int failures_to_open, std::chrono::nanoseconds cooldown)
      : breaker(failures_to_open, cooldown) {}

  std::string address;  // what the channel dials; also ServedBy.worker
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<slmgw::v1::WorkerService::Stub> stub;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub;
  std::atomic<int> in_flight{0};
  std::atomic<int> reported_queue_depth{0};
  std::atomic<bool> healthy{true};  // from grpc.health.v1; true until a check says otherwise
  std::atomic<bool> health_check_in_flight{false};
  CircuitBreaker breaker;

  // Load as seen by the router, for the pick.
  int Score() const { return in_flight.load() + reported_queue_depth.load(); }
};

enum class CallOutcome {
  kSuccess,  // the worker answered (any application status other than the failures below)
  kFailure,  // unreachable or timed out: UNAVAILABLE, DEADLINE_EXCEEDED
  kNeutral,  // cancelled (a lost hedge, a caller that left): says nothing about the endpoint
};

// Why Pick found no endpoint.
enum class PickFailure {
  kNone,
  kNoEndpoints,  // the pool has none (a DNS name resolved to nothing)
  kAllTried,     // every endpoint is excluded (tried by this request)
  kCoolingDown,  // every other endpoint's circuit is open
  kFull,         // every other endpoint is at max_in_flight_per_endpoint
};

struct PoolOptions {
  Resolver resolver = SystemResolver();
  double retry_budget_ratio = 0.1;
  double retry_budget_min_per_second = 5;
};

class WorkerPool : public std::enable_shared_from_this<WorkerPool> {
 public:
  // Zero fields of `config` (failures_to_open, cooldown_ms, intervals) take the documented
  // defaults. A dns:/// name that does not resolve yet leaves the pool without its endpoints
  // (Pick answers kNoEndpoints) until a Refresh resolves it.
  static absl::StatusOr<std::unique_ptr<WorkerPool>> Create(
      const slmgw::config::v1::PoolConfig& config, const ChannelFactory& channel_factory,
      PoolOptions options = PoolOptions());

  const std::string& name() const { return config_.name(); }
  const slmgw::config::v1::PoolConfig& config() const { return config_; }
  // The endpoints now (a refresh may change them).
  std::vector<std::shared_ptr<Endpoint>> Endpoints() const;
  size_t size() const { return Endpoints().size(); }
  RetryBudget& retry_budget() { return retry_budget_; }

  // An endpoint not in `exclude` for one call, or nullptr with `failure` set.
  std::shared_ptr<Endpoint> Pick(const std::vector<const Endpoint*>& exclude, Clock::time_point now,
                                 PickFailure* failure);

  // Feeds the endpoint's circuit. Returns true when this outcome opened the circuit.
  bool RecordOutcome(Endpoint& endpoint, CallOutcome outcome, Clock::time_point now);

  // Re-resolves dns:/// endpoints when resolve_interval_ms has passed since the last time (or
  // `force`). Endpoints whose address stays are kept (with their state); a name that fails to
  // resolve keeps its previous addresses. Returns the last resolution error, if any.
  absl::Status Refresh(Clock::time_point now, bool force = false);

  // Starts a grpc.health.v1 Check on every endpoint (not one already being checked) when
  // health_check_interval_ms has passed. Answers arrive on gRPC threads and set
  // Endpoint::healthy: SERVING or UNIMPLEMENTED (no health service) is healthy.
  void CheckHealth(Clock::time_point now);
  // Starts no more health checks, cancels those in flight and waits (at most `timeout`) for
  // their callbacks: call before the channels' servers go away (slm-gateway's in-process
  // workers).
  void StopHealthChecks(std::chrono::milliseconds timeout);

  // The last DNS resolution error ("" when the last Refresh resolved every name).
  std::string ResolutionError() const;

 private:
  // Health checks in flight, shared with their callbacks (which may outlive the pool).
  struct HealthChecks;

  struct Target {
    std::string text;  // as configured
    bool dns = false;
    std::string host;
    uint16_t port = 0;
  };

  WorkerPool(const slmgw::config::v1::PoolConfig& config, ChannelFactory channel_factory,
             PoolOptions options);
  absl::StatusOr<std::shared_ptr<Endpoint>> MakeEndpoint(const std::string& address) const;

  const slmgw::config::v1::PoolConfig config_;
  const ChannelFactory channel_factory_;
  const PoolOptions options_;
  const int failures_to_open_;
  const std::chrono::milliseconds cooldown_;
  std::vector<Target> targets_;
  RetryBudget retry_budget_;
  const std::shared_ptr<HealthChecks> health_checks_;

  mutable absl::Mutex mutex_;
  std::shared_ptr<const std::vector<std::shared_ptr<Endpoint>>> endpoints_ ABSL_GUARDED_BY(mutex_);
  // Per target: its current endpoints (dns targets change on Refresh).
  std::vector<std::vector<std::shared_ptr<Endpoint>>> by_target_ ABSL_GUARDED_BY(mutex_);
  std::string resolution_error_ ABSL_GUARDED_BY(mutex_);
  Clock::time_point last_resolve_ ABSL_GUARDED_BY(mutex_);
  Clock::time_point last_health_check_ ABSL_GUARDED_BY(mutex_);
};

// Counts one router call on an endpoint while it lives.
class ScopedCall {
 public:
  explicit ScopedCall(Endpoint* endpoint) : endpoint_(endpoint) { endpoint_->in_flight++; }
  ~ScopedCall() { endpoint_->in_flight--; }
  ScopedCall(const ScopedCall&) = delete;
  ScopedCall& operator=(const ScopedCall&) = delete;

 private:
  Endpoint* endpoint_;
};

}  // namespace slm::router

#endif  // SLM_ROUTER_WORKER_POOL_H_
