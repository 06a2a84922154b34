// The Gateway service against real worker servers on loopback: scripted WorkerService
// implementations (real gRPC servers, not mocks of the code under test) that answer, fail,
// stall or count calls, so routing, deadlines, retries and errors are observable.
#include "router/gateway_service.h"

#include <atomic>
#include <chrono>
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
#include "tests/router/loopback_server.h"

namespace slm::router {
namespace {

// A worker that answers Classify with fixed labels after `delay`, or with `status`.
class ScriptedWorker final : public slmgw::v1::WorkerService::CallbackService {
 public:
  explicit ScriptedWorker(std::string name) : name_(std::move(name)) {}
  ~ScriptedWorker() override {
    for (std::thread& thread : threads_) thread.join();
  }

  std::chrono::milliseconds delay{0};
  grpc::Status status = grpc::Status::OK;
  std::atomic<int> calls{0};
  std::atomic<int> cancelled_calls{0};
  std::atomic<int64_t> last_deadline_ms_from_now{0};

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const slmgw::v1::WorkerServiceClassifyRequest* request,
                                     slmgw::v1::WorkerServiceClassifyResponse* response) override {
    calls++;
    last_deadline_ms_from_now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    context->deadline() - std::chrono::system_clock::now())
                                    .count();
    auto* reactor = context->DefaultReactor();
    auto answer = [this, context, request, response, reactor] {
      const auto until = std::chrono::steady_clock::now() + delay;
      while (std::chrono::steady_clock::now() < until) {
        if (context->IsCancelled()) {
          cancelled_calls++;
          reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      if (!status.ok()) {
        reactor->Finish(status);
        return;
      }
      auto* label = response->add_labels();
      label->set_label("positive:" + request->text());
      label->set_score(0.75f);
      response->mutable_report()->set_model(name_);
      response->mutable_report()->mutable_usage()->set_input_tokens(7);
      response->mutable_report()->set_compute_us(123);
      response->mutable_report()->mutable_load()->set_queue_depth(2);
      reactor->Finish(grpc::Status::OK);
    };
    absl::MutexLock lock(&mutex_);
    threads_.emplace_back(answer);
    return reactor;
  }

 private:
  const std::string name_;
  absl::Mutex mutex_;
  std::vector<std::thread> threads_;
};

class GatewayServiceTest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& endpoints, uint32_t route_deadline_ms = 0) {
    auto config = std::make_shared<slmgw::config::v1::GatewayConfig>();
    config->mutable_limits()->set_max_text_bytes(64);
    config->mutable_limits()->set_default_deadline_ms(2000);
    auto* pool = config->add_pools();
    pool->set_name("sentiment-pool");
    for (const auto& endpoint : endpoints) pool->add_endpoints(endpoint);
    auto* route = config->add_routes();
    route->set_name("sentiment");
    route->add_tasks("sentiment");
    route->set_pool("sentiment-pool");
    route->set_deadline_ms(route_deadline_ms);
    config->set_default_route("sentiment");
    metrics_ = std::make_shared<RouterMetrics>(registry_);
    auto service = GatewayServiceImpl::Create(config, DefaultChannelFactory(), metrics_);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
    gateway_ = Serve(service_.get());
    stub_ = slmgw::v1::GatewayService::NewStub(
        grpc::CreateChannel(gateway_.address(), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Classify(const std::string& text, slmgw::v1::ClassifyResponse* response,
                        int timeout_ms = 5000, const std::string& task = "sentiment") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(timeout_ms));
    slmgw::v1::ClassifyRequest request;
    request.set_text(text);
    request.mutable_options()->set_task(task);
    return stub_->Classify(&context, request, response);
  }

  std::string Metrics() {
    return prometheus::TextSerializer().Serialize(registry_.Collect());
  }

  prometheus::Registry registry_;
  std::shared_ptr<RouterMetrics> metrics_;
  std::unique_ptr<GatewayServiceImpl> service_;
  RunningServer gateway_;
  std::unique_ptr<slmgw::v1::GatewayService::Stub> stub_;
};

TEST_F(GatewayServiceTest, ForwardsToTheRoutesPoolAndSaysWhoServed) {
  ScriptedWorker worker("sentiment-model");
  RunningServer running = Serve(&worker);
  Start({running.address()});
  slmgw::v1::ClassifyResponse response;
  grpc::Status status = Classify("great", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.labels_size(), 1);
  EXPECT_EQ(response.labels(0).label(), "positive:great");
  const auto& served_by = response.served_by();
  EXPECT_EQ(served_by.route(), "sentiment");
  EXPECT_EQ(served_by.model(), "sentiment-model");
  EXPECT_EQ(served_by.worker(), running.address());
  EXPECT_FLOAT_EQ(served_by.confidence(), 0.75f);
  EXPECT_EQ(served_by.usage().input_tokens(), 7u);
  EXPECT_EQ(served_by.timings().compute_us(), 123u);
  EXPECT_GE(served_by.timings().total_us(), served_by.timings().router_us());
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("slmgw_router_requests_total{model=\"sentiment-model\",operation="
                         "\"classify\",outcome=\"ok\",route=\"sentiment\"} 1"),
            std::string::npos)
      << metrics;
}

TEST_F(GatewayServiceTest, BadRequestsAreRejectedBeforeAnyWorkerCall) {
  ScriptedWorker worker("m");
  RunningServer running = Serve(&worker);
  Start({running.address()});
  slmgw::v1::ClassifyResponse response;
  grpc::Status empty = Classify("", &response);
  EXPECT_EQ(empty.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status oversized = Classify(std::string(65, 'x'), &response);
  EXPECT_EQ(oversized.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(oversized.error_message().find("max_text_bytes"), std::string::npos);
  grpc::Status unknown_task = Classify("hi", &response, 5000, "translation");
  EXPECT_EQ(unknown_task.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(worker.calls.load(), 0);
}

TEST_F(GatewayServiceTest, WorkerDownIsUnavailableNamingThePool) {
  Start({ClosedAddress()});
  slmgw::v1::ClassifyResponse response;
  grpc::Status status = Classify("hello", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(status.error_message().find("pool 'sentiment-pool'"), std::string::npos)
      << status.error_message();
  EXPECT_NE(Metrics().find("slmgw_router_upstream_errors_total{code=\"unavailable\""),
            std::string::npos);
}

TEST_F(GatewayServiceTest, UnreachableEndpointIsRetriedOnAnother) {
  ScriptedWorker worker("m");
  RunningServer running = Serve(&worker);
  Start({ClosedAddress(), running.address()});
  for (int i = 0; i < 6; ++i) {
    slmgw::v1::ClassifyResponse response;
    grpc::Status status = Classify("hello", &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.served_by().worker(), running.address());
  }
  EXPECT_EQ(worker.calls.load(), 6);
}

TEST_F(GatewayServiceTest, DeadlineExpiresAndTheWorkerCallIsCancelled) {
  ScriptedWorker worker("m");
  worker.delay = std::chrono::milliseconds(3000);
  RunningServer running = Serve(&worker);
  Start({running.address()});
  slmgw::v1::ClassifyResponse response;
  const auto start = std::chrono::steady_clock::now();
  grpc::Status status = Classify("slow", &response, /*timeout_ms=*/200);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2000));
  // The worker saw the caller's deadline (not the 2 s default) and was cancelled by it. gRPC
  // sends timeouts rounded up, so allow a few milliseconds over.
  EXPECT_LE(worker.last_deadline_ms_from_now.load(), 250);
  for (int i = 0; i < 200 && worker.cancelled_calls.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(worker.cancelled_calls.load(), 1);
}

TEST_F(GatewayServiceTest, RouteDeadlineCapsTheCallersDeadline) {
  ScriptedWorker worker("m");
  RunningServer running = Serve(&worker);
  Start({running.address()}, /*route_deadline_ms=*/300);
  slmgw::v1::ClassifyResponse response;
  ASSERT_TRUE(Classify("x", &response, /*timeout_ms=*/5000).ok());
  EXPECT_LE(worker.last_deadline_ms_from_now.load(), 350);  // not the caller's 5 s
  EXPECT_GT(worker.last_deadline_ms_from_now.load(), 100);
}

TEST_F(GatewayServiceTest, WorkerErrorsPassThroughWithTheirCode) {
  ScriptedWorker worker("m");
  worker.status = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full");
  RunningServer running = Serve(&worker);
  Start({running.address()});
  slmgw::v1::ClassifyResponse response;
  grpc::Status status = Classify("x", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(status.error_message(), "queue full");
  EXPECT_EQ(worker.calls.load(), 1);  // not retried: the worker was reachable
}

TEST_F(GatewayServiceTest, RouteIsADryRun) {
  ScriptedWorker worker("m");
  RunningServer running = Serve(&worker);
  Start({running.address()});
  grpc::ClientContext context;
  slmgw::v1::RouteRequest request;
  request.set_text("anything");
  slmgw::v1::RouteResponse response;
  ASSERT_TRUE(stub_->Route(&context, request, &response).ok());
  EXPECT_EQ(response.decision().route(), "sentiment");
  EXPECT_EQ(response.decision().pool(), "sentiment-pool");
  EXPECT_EQ(response.decision().signals(0).name(), "default");
  EXPECT_EQ(worker.calls.load(), 0);
}

}  // namespace
}  // namespace slm::router
