// A pool of worker endpoints serving one route's model, and the choice of endpoint per call.
//
//   ChannelFactory factory = DefaultChannelFactory();
//   SLM_ASSIGN_OR_RETURN(auto pool, WorkerPool::Create(pool_config, factory));
//   Endpoint* endpoint = pool->Pick(/*exclude=*/nullptr);
//   ScopedCall call(endpoint);  // counts the router's in-flight calls on it
//
// Pick is power of two choices on load: the router's own in-flight count on each endpoint plus
// the queue depth the endpoint last reported; endpoints that failed recently are skipped while
// any other is available. Thread-safety: all methods may be called concurrently.
#ifndef SLM_ROUTER_WORKER_POOL_H_
#define SLM_ROUTER_WORKER_POOL_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "slmgw/config/v1/config.pb.h"
#include "slmgw/v1/worker.grpc.pb.h"

namespace slm::router {

// Makes the channel for an endpoint string ("host:port", "dns:///host:port", "inprocess:NAME").
using ChannelFactory =
    std::function<absl::StatusOr<std::shared_ptr<grpc::Channel>>(const std::string& endpoint)>;

// Insecure channels to host:port and dns:/// targets; refuses "inprocess:" (only the
// all-in-one binary can make those).
ChannelFactory DefaultChannelFactory();

struct Endpoint {
  std::string address;
  std::unique_ptr<slmgw::v1::WorkerService::Stub> stub;
  std::atomic<int> in_flight{0};
  std::atomic<int> reported_queue_depth{0};
  std::atomic<int> consecutive_failures{0};

  // Load as seen by the router, for the pick.
  int Score() const { return in_flight.load() + reported_queue_depth.load(); }
};

class WorkerPool {
 public:
  static absl::StatusOr<std::unique_ptr<WorkerPool>> Create(
      const slmgw::config::v1::PoolConfig& config, const ChannelFactory& channel_factory);

  const std::string& name() const { return name_; }
  size_t size() const { return endpoints_.size(); }

  // An endpoint other than `exclude` when the pool has one, else nullptr.
  Endpoint* Pick(const Endpoint* exclude);

  // Call outcomes feed the skip-failing rule of Pick.
  static void RecordOutcome(Endpoint& endpoint, bool reachable);

 private:
  WorkerPool() = default;

  std::string name_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::atomic<uint64_t> pick_counter_{0};
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
