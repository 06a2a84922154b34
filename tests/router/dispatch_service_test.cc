// Dispatch through the Gateway service against real worker servers on loopback: hedging, retry
// budget, load shedding with a retry-after hint, hot reload, and the config file poller.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "router/config_reloader.h"
#include "router/gateway_service.h"
#include "tests/router/loopback_server.h"

namespace slm::router {
namespace {

using std::chrono::milliseconds;

// Answers Classify after `delay` (watching for cancellation), or holds every call until
// `Release()` when `hold` is set.
class Worker final : public slmgw::v1::WorkerService::CallbackService {
 public:
  explicit Worker(std::string name) : name_(std::move(name)) {}
  ~Worker() override {
    Release();
    for (std::thread& thread : threads_) thread.join();
  }
  std::atomic<int> delay_ms{0};
  std::atomic<bool> hold{false};
  std::atomic<int> calls{0};
  std::atomic<int> cancelled{0};

  void Release() {
    absl::MutexLock lock(&mutex_);
    released_ = true;
  }

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const slmgw::v1::WorkerServiceClassifyRequest* request,
                                     slmgw::v1::WorkerServiceClassifyResponse* response) override {
    calls++;
    auto* reactor = context->DefaultReactor();
    auto answer = [this, context, response, reactor] {
      const auto until = std::chrono::steady_clock::now() + milliseconds(delay_ms.load());
      while (std::chrono::steady_clock::now() < until || hold.load()) {
        if (context->IsCancelled()) {
          cancelled++;
          reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
          return;
        }
        {
          absl::MutexLock lock(&mutex_);
          if (released_ && hold.load()) break;
        }
        std::this_thread::sleep_for(milliseconds(2));
      }
      response->add_labels()->set_label(name_);
      response->mutable_report()->set_model(name_);
      reactor->Finish(grpc::Status::OK);
    };
    absl::MutexLock lock(&mutex_);
    threads_.emplace_back(answer);
    return reactor;
  }

 private:
  const std::string name_;
  absl::Mutex mutex_;
  bool released_ = false;
  std::vector<std::thread> threads_;
};

using Running = RunningServer;  // Serve() from tests/router/loopback_server.h

slmgw::config::v1::GatewayConfig BaseConfig(const std::vector<std::string>& endpoints) {
  slmgw::config::v1::GatewayConfig config;
  config.mutable_limits()->set_max_text_bytes(64);
  config.mutable_limits()->set_default_deadline_ms(5000);
  config.mutable_dispatch()->set_max_attempts(2);
  config.mutable_dispatch()->set_retry_budget_ratio(0.1);
  config.mutable_dispatch()->set_retry_budget_min_per_second(100);
  auto* pool = config.add_pools();
  pool->set_name("p");
  pool->set_health_check_interval_ms(0);
  for (const auto& endpoint : endpoints) pool->add_endpoints(endpoint);
  auto* route = config.add_routes();
  route->set_name("r");
  route->set_pool("p");
  config.set_default_route("r");
  return config;
}

class DispatchServiceTest : public ::testing::Test {
 protected:
  void Start(const slmgw::config::v1::GatewayConfig& config) {
    metrics_ = std::make_shared<RouterMetrics>(registry_);
    auto service =
        GatewayServiceImpl::Create(std::make_shared<const slmgw::config::v1::GatewayConfig>(config),
                                   DefaultChannelFactory(), metrics_);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
    gateway_ = Serve(service_.get());
    stub_ = slmgw::v1::GatewayService::NewStub(
        grpc::CreateChannel(gateway_.address(), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Classify(slmgw::v1::ClassifyResponse* response, const std::string& tenant = "",
                        std::string* retry_after = nullptr, int timeout_ms = 5000) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + milliseconds(timeout_ms));
    slmgw::v1::ClassifyRequest request;
    request.set_text("hello");
    request.mutable_options()->set_tenant(tenant);
    grpc::Status status = stub_->Classify(&context, request, response);
    if (retry_after != nullptr) {
      auto it = context.GetServerTrailingMetadata().find("retry-after-ms");
      *retry_after = it == context.GetServerTrailingMetadata().end()
                         ? ""
                         : std::string(it->second.data(), it->second.size());
    }
    return status;
  }

  double Metric(const std::string& series) {
    const std::string text = prometheus::TextSerializer().Serialize(registry_.Collect());
    const size_t at = text.find(series + " ");
    return at == std::string::npos ? 0 : std::stod(text.substr(at + series.size() + 1));
  }

  prometheus::Registry registry_;
  std::shared_ptr<RouterMetrics> metrics_;
  std::unique_ptr<GatewayServiceImpl> service_;
  Running gateway_;
  std::unique_ptr<slmgw::v1::GatewayService::Stub> stub_;
};

TEST_F(DispatchServiceTest, AHedgeServesWhenTheFirstWorkerStallsAndTheLoserIsCancelled) {
  Worker stuck("stuck");
  stuck.hold = true;
  Worker fast("fast");
  Running stuck_server = Serve(&stuck);
  Running fast_server = Serve(&fast);
  auto config = BaseConfig({stuck_server.address(), fast_server.address()});
  config.mutable_routes(0)->mutable_hedge()->set_delay_ms(50);
  Start(config);
  int served_by_fast = 0;
  for (int i = 0; i < 6; ++i) {
    slmgw::v1::ClassifyResponse response;
    grpc::Status status = Classify(&response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.labels(0).label(), "fast");
    ++served_by_fast;
  }
  EXPECT_EQ(served_by_fast, 6);
  // Every call that reached the stuck worker was a first attempt that the hedge beat; each was
  // cancelled once the hedge answered.
  EXPECT_GE(stuck.calls.load(), 1);
  for (int i = 0; i < 200 && stuck.cancelled.load() < stuck.calls.load(); ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(stuck.cancelled.load(), stuck.calls.load());
  EXPECT_EQ(Metric("slmgw_router_hedges_total{pool=\"p\"}"), stuck.calls.load());
}

TEST_F(DispatchServiceTest, WithoutBudgetNoHedgeIsMadeAndTheDeadlineIsHonoured) {
  Worker stuck("stuck");
  stuck.hold = true;
  Worker fast("fast");
  Running stuck_server = Serve(&stuck);
  Running fast_server = Serve(&fast);
  auto config = BaseConfig({stuck_server.address(), fast_server.address()});
  config.mutable_routes(0)->mutable_hedge()->set_delay_ms(20);
  config.mutable_dispatch()->set_retry_budget_ratio(0);
  config.mutable_dispatch()->set_retry_budget_min_per_second(0);
  Start(config);
  int deadline_exceeded = 0;
  for (int i = 0; i < 8; ++i) {
    slmgw::v1::ClassifyResponse response;
    const auto start = std::chrono::steady_clock::now();
    grpc::Status status = Classify(&response, "", nullptr, /*timeout_ms=*/300);
    EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000));
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) ++deadline_exceeded;
  }
  EXPECT_EQ(deadline_exceeded, stuck.calls.load());
  EXPECT_EQ(Metric("slmgw_router_hedges_total{pool=\"p\"}"), 0);
  EXPECT_EQ(Metric("slmgw_router_retry_budget_exhausted_total{pool=\"p\"}"), stuck.calls.load());
}

TEST_F(DispatchServiceTest, ConcurrencyBeyondTheRouteLimitIsShedWithARetryAfterHint) {
  Worker worker("w");
  worker.hold = true;
  Running server = Serve(&worker);
  auto config = BaseConfig({server.address()});
  config.mutable_routes(0)->set_max_concurrency(2);
  Start(config);
  std::vector<std::thread> held;
  std::atomic<int> held_ok{0};
  for (int i = 0; i < 2; ++i) {
    held.emplace_back([&] {
      slmgw::v1::ClassifyResponse response;
      if (Classify(&response).ok()) held_ok++;
    });
  }
  while (worker.calls.load() < 2) std::this_thread::sleep_for(milliseconds(2));
  slmgw::v1::ClassifyResponse response;
  std::string retry_after;
  grpc::Status shed = Classify(&response, "", &retry_after);
  EXPECT_EQ(shed.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(shed.error_message().find("route 'r'"), std::string::npos) << shed.error_message();
  EXPECT_NE(shed.error_message().find("retry after 100 ms"), std::string::npos);
  EXPECT_EQ(retry_after, "100");
  worker.Release();
  for (auto& thread : held) thread.join();
  EXPECT_EQ(held_ok.load(), 2);
  EXPECT_EQ(worker.calls.load(), 2);
  EXPECT_EQ(Metric("slmgw_router_load_shed_total{reason=\"route_concurrency\",route=\"r\"}"), 1);
  // Slots were released: the next request is served. The server frees a slot when the call
  // is done on its side, which may come just after the client has its answer, so a shed here is
  // retried for up to 2 s (a slot that never comes back still fails).
  worker.hold = false;
  grpc::Status next = Classify(&response);
  for (int attempt = 0; attempt < 200 && next.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
       ++attempt) {
    std::this_thread::sleep_for(milliseconds(10));
    next = Classify(&response);
  }
  EXPECT_TRUE(next.ok()) << next.error_message();
}

TEST_F(DispatchServiceTest, TenantRateLimitAppliesToThatTenantOnly) {
  Worker worker("w");
  Running server = Serve(&worker);
  auto config = BaseConfig({server.address()});
  auto* tenant = config.add_tenants();
  tenant->set_name("noisy");
  tenant->set_requests_per_second(0.001);
  tenant->set_burst(2);
  Start(config);
  slmgw::v1::ClassifyResponse response;
  EXPECT_TRUE(Classify(&response, "noisy").ok());
  EXPECT_TRUE(Classify(&response, "noisy").ok());
  std::string retry_after;
  EXPECT_EQ(Classify(&response, "noisy", &retry_after).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_GT(std::stoi(retry_after), 100000);  // 1000 s at 0.001/s (less the time passed)
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Classify(&response, "quiet").ok());
  EXPECT_EQ(worker.calls.load(), 7);
}

TEST_F(DispatchServiceTest, ReloadSwapsPoolsAndInFlightRequestsFinishOnTheOldOne) {
  Worker old_worker("old");
  old_worker.hold = true;
  Worker new_worker("new");
  Running old_server = Serve(&old_worker);
  Running new_server = Serve(&new_worker);
  Start(BaseConfig({old_server.address()}));
  std::thread in_flight([&] {
    slmgw::v1::ClassifyResponse response;
    grpc::Status status = Classify(&response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.labels(0).label(), "old");
  });
  while (old_worker.calls.load() < 1) std::this_thread::sleep_for(milliseconds(2));
  auto before = service_->Snapshot();
  ASSERT_TRUE(service_
                  ->Reload(std::make_shared<const slmgw::config::v1::GatewayConfig>(
                      BaseConfig({new_server.address()})))
                  .ok());
  EXPECT_NE(service_->Snapshot(), before);
  slmgw::v1::ClassifyResponse response;
  ASSERT_TRUE(Classify(&response).ok());
  EXPECT_EQ(response.labels(0).label(), "new");
  old_worker.Release();
  in_flight.join();
  // An unchanged pool is carried over as the same object.
  auto same = service_->Snapshot();
  ASSERT_TRUE(service_
                  ->Reload(std::make_shared<const slmgw::config::v1::GatewayConfig>(
                      BaseConfig({new_server.address()})))
                  .ok());
  EXPECT_EQ(service_->Snapshot()->pools.at("p"), same->pools.at("p"));
  // A configuration that cannot be built changes nothing.
  auto broken = BaseConfig({"inprocess:nothing"});
  EXPECT_FALSE(
      service_->Reload(std::make_shared<const slmgw::config::v1::GatewayConfig>(broken)).ok());
  ASSERT_TRUE(Classify(&response).ok());
  EXPECT_EQ(response.labels(0).label(), "new");
}

TEST_F(DispatchServiceTest, MaintenanceSetsEndpointGaugesAndHealthMarksADeadEndpoint) {
  Worker worker("w");
  Running server = Serve(&worker);
  Running dead = Serve(&worker);
  const std::string dead_address = dead.address();
  dead.server->Shutdown();
  auto config = BaseConfig({server.address(), dead_address});
  config.mutable_pools(0)->set_health_check_interval_ms(100);
  Start(config);
  // The worker has no health service (UNIMPLEMENTED counts as healthy); the dead one fails.
  for (int i = 0; i < 300; ++i) {
    service_->MaintainPools();
    if (Metric("slmgw_router_endpoints{pool=\"p\",state=\"unhealthy\"}") == 1) break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(Metric("slmgw_router_endpoints{pool=\"p\",state=\"unhealthy\"}"), 1);
  EXPECT_EQ(Metric("slmgw_router_endpoints{pool=\"p\",state=\"ready\"}"), 1);
  slmgw::v1::ClassifyResponse response;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Classify(&response).ok());
  EXPECT_EQ(worker.calls.load(), 10);  // the unhealthy endpoint was never picked
}

TEST(ConfigReloader, AppliesChangedFilesOnceAndKeepsTheOldOneOnErrors) {
  prometheus::Registry registry;
  auto metrics = std::make_shared<RouterMetrics>(registry);
  const std::string path = ::testing::TempDir() + "/reload-test.yaml";
  auto write = [&](const std::string& text) { std::ofstream(path, std::ios::trunc) << text; };
  write("version: 1");
  std::vector<std::string> applied;
  std::atomic<int> applied_count{0};
  std::string file_text;
  auto load = [&]() -> absl::StatusOr<std::shared_ptr<const slmgw::config::v1::GatewayConfig>> {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.find("bad") != std::string::npos) return absl::InvalidArgumentError("bad: line 1");
    file_text = text;
    return std::make_shared<const slmgw::config::v1::GatewayConfig>();
  };
  bool refuse = false;
  auto apply = [&](std::shared_ptr<const slmgw::config::v1::GatewayConfig>) -> absl::Status {
    if (refuse) return absl::FailedPreconditionError("cannot apply");
    applied.push_back(file_text);
    applied_count++;
    return absl::OkStatus();
  };
  ConfigReloader reloader(path, milliseconds(10), load, apply, metrics);
  using Outcome = ConfigReloader::Outcome;
  EXPECT_EQ(reloader.CheckOnce(), Outcome::kUnchanged);
  write("version: 2");
  EXPECT_EQ(reloader.CheckOnce(), Outcome::kApplied);
  EXPECT_EQ(reloader.CheckOnce(), Outcome::kUnchanged);
  write("bad");
  EXPECT_EQ(reloader.CheckOnce(), Outcome::kInvalid);
  EXPECT_EQ(reloader.CheckOnce(), Outcome::kUnchanged);  // reported once
  refuse = true;
  write("version: 3");
  EXPECT_EQ(reloader.CheckOnce(), Outcome::kRejected);
  refuse = false;
  std::remove(path.c_str());
  EXPECT_EQ(reloader.CheckOnce(), Outcome::kUnreadable);
  EXPECT_EQ(reloader.CheckOnce(), Outcome::kUnchanged);
  write("version: 4");
  EXPECT_EQ(reloader.CheckOnce(), Outcome::kApplied);
  EXPECT_EQ(applied, (std::vector<std::string>{"version: 2", "version: 4"}));
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  for (const char* outcome : {"applied\"} 2", "invalid\"} 1", "rejected\"} 1", "unreadable\"} 1"}) {
    EXPECT_NE(text.find(std::string("slmgw_router_config_reloads_total{outcome=\"") + outcome),
              std::string::npos)
        << outcome << "\n"
        << text;
  }
  // The poller thread picks up a change by itself.
  reloader.Start();
  write("version: 5");
  for (int i = 0; i < 500 && applied_count.load() < 3; ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(applied_count.load(), 3);
}

}  // namespace
}  // namespace slm::router
