// ExtractEntities along a fallback chain (router/fallback: ExtractEntitiesOp), end to end on
// loopback: scripted WorkerService servers answer entities with scripted scores or fail with a
// scripted status; an upstream route at the chain's end must never be called (upstreams do not
// extract entities). Expectations are on what the caller receives and on counters, never timing.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "router/gateway_service.h"
#include "tests/router/loopback_server.h"
#include "tests/router/upstream/fake_http_server.h"

namespace slm::router {
namespace {

using slm::testing::FakeHttpServer;
using ::testing::HasSubstr;

// Answers ExtractEntities with two entities scored `score` and 1.0 (so the answer's confidence,
// its least certain entity, is `score`), or fails with `failure` when that is not OK.
class EntityWorker final : public slmgw::v1::WorkerService::CallbackService {
 public:
  explicit EntityWorker(std::string model) : model_(std::move(model)) {}

  float score = 0.9f;
  grpc::Status failure = grpc::Status::OK;
  std::atomic<int> calls{0};

  grpc::ServerUnaryReactor* ExtractEntities(
      grpc::CallbackServerContext* context,
      const slmgw::v1::WorkerServiceExtractEntitiesRequest* request,
      slmgw::v1::WorkerServiceExtractEntitiesResponse* response) override {
    calls++;
    auto* reactor = context->DefaultReactor();
    if (!failure.ok()) {
      reactor->Finish(failure);
      return reactor;
    }
    auto* person = response->add_entities();
    person->set_label("PER");
    person->set_text(request->text().substr(0, 3));
    person->set_score(score);
    auto* place = response->add_entities();
    place->set_label("LOC");
    place->set_text(model_);  // says which worker answered
    place->set_score(1.0f);
    response->mutable_report()->set_model(model_);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const std::string model_;
};

// Routes: "small" (small-pool) -> fallback "large" (large-pool) -> "big" (an upstream).
class EntitiesFallbackTest : public ::testing::Test {
 protected:
  EntitiesFallbackTest()
      : upstream_([this](const FakeHttpServer::Request&) {
          upstream_calls_++;
          return FakeHttpServer::Json(500, R"({"error": {"message": "must not be called"}})");
        }) {}

  void Start(const std::string& small_endpoint, const std::string& large_endpoint,
             float cascade_threshold) {
    auto config = std::make_shared<slmgw::config::v1::GatewayConfig>();
    config->mutable_limits()->set_max_text_bytes(1024);
    config->mutable_limits()->set_default_deadline_ms(5000);
    config->mutable_dispatch()->set_max_attempts(2);
    config->mutable_dispatch()->set_retry_budget_ratio(1);
    config->mutable_dispatch()->set_retry_budget_min_per_second(100);
    for (const auto& [name, endpoint] :
         {std::pair{"small-pool", small_endpoint}, std::pair{"large-pool", large_endpoint}}) {
      auto* pool = config->add_pools();
      pool->set_name(name);
      pool->add_endpoints(endpoint);
      pool->set_failures_to_open(1000);
    }
    auto* upstream = config->add_upstreams();
    upstream->set_name("big");
    upstream->set_base_url(upstream_.base_url());
    upstream->set_model("big-model");
    upstream->set_timeout_ms(3000);
    auto* small = config->add_routes();
    small->set_name("small");
    small->add_tasks("small");
    small->set_pool("small-pool");
    small->set_cascade_threshold(cascade_threshold);
    small->add_fallback("large");
    small->add_fallback("big");
    auto* large = config->add_routes();
    large->set_name("large");
    large->add_tasks("large");
    large->set_pool("large-pool");
    large->set_cascade_threshold(cascade_threshold);
    large->add_fallback("big");
    auto* big = config->add_routes();
    big->set_name("big");
    big->add_tasks("big");
    big->set_upstream("big");
    metrics_ = std::make_shared<RouterMetrics>(registry_);
    auto service = GatewayServiceImpl::Create(config, DefaultChannelFactory(), metrics_);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
    gateway_ = Serve(service_.get());
    stub_ = slmgw::v1::GatewayService::NewStub(
        grpc::CreateChannel(gateway_.address(), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Extract(const std::string& task, slmgw::v1::ExtractEntitiesResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    slmgw::v1::ExtractEntitiesRequest request;
    request.set_text("Ada Lovelace lived in London");
    request.mutable_options()->set_task(task);
    return stub_->ExtractEntities(&context, request, response);
  }

  std::string Metrics() { return prometheus::TextSerializer().Serialize(registry_.Collect()); }

  std::atomic<int> upstream_calls_{0};
  FakeHttpServer upstream_;
  prometheus::Registry registry_;
  std::shared_ptr<RouterMetrics> metrics_;
  std::unique_ptr<GatewayServiceImpl> service_;
  RunningServer gateway_;
  std::unique_ptr<slmgw::v1::GatewayService::Stub> stub_;
};

TEST_F(EntitiesFallbackTest, ConfidentAnswerStaysOnItsRoute) {
  EntityWorker small("small-model"), large("large-model");
  RunningServer s = Serve(&small), l = Serve(&large);
  Start(s.address(), l.address(), 0.8f);
  slmgw::v1::ExtractEntitiesResponse response;
  grpc::Status status = Extract("small", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.served_by().route(), "small");
  EXPECT_FALSE(response.served_by().fell_back());
  EXPECT_FLOAT_EQ(response.served_by().confidence(), 0.9f);
  ASSERT_EQ(response.entities_size(), 2);
  EXPECT_EQ(response.entities(0).text(), "Ada");
  EXPECT_EQ(large.calls.load(), 0);
}

TEST_F(EntitiesFallbackTest, LowConfidenceEscalatesToTheLargerPool) {
  EntityWorker small("small-model"), large("large-model");
  small.score = 0.5f;
  large.score = 0.95f;
  RunningServer s = Serve(&small), l = Serve(&large);
  Start(s.address(), l.address(), 0.8f);
  slmgw::v1::ExtractEntitiesResponse response;
  grpc::Status status = Extract("small", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.served_by().route(), "large");
  EXPECT_EQ(response.served_by().model(), "large-model");
  EXPECT_EQ(response.served_by().worker(), l.address());
  EXPECT_TRUE(response.served_by().fell_back());
  EXPECT_EQ(response.served_by().fallback_reason(), "low_confidence");
  EXPECT_FLOAT_EQ(response.served_by().confidence(), 0.95f);
  ASSERT_EQ(response.entities_size(), 2);
  EXPECT_EQ(response.entities(1).text(), "large-model");
  EXPECT_EQ(small.calls.load(), 1);
  EXPECT_EQ(large.calls.load(), 1);
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("slmgw_router_cascade_escalations_total{operation="
                                 "\"extract_entities\",route=\"small\"} 1"));
}

TEST_F(EntitiesFallbackTest, UnavailablePoolFallsBack) {
  EntityWorker large("large-model");
  RunningServer l = Serve(&large);
  Start(ClosedAddress(), l.address(), 0.8f);
  slmgw::v1::ExtractEntitiesResponse response;
  grpc::Status status = Extract("small", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.served_by().route(), "large");
  EXPECT_EQ(response.served_by().fallback_reason(), "unavailable");
  EXPECT_EQ(large.calls.load(), 1);
}

TEST_F(EntitiesFallbackTest, OverloadedPoolFallsBack) {
  EntityWorker small("small-model"), large("large-model");
  small.failure = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full");
  RunningServer s = Serve(&small), l = Serve(&large);
  Start(s.address(), l.address(), 0.8f);
  slmgw::v1::ExtractEntitiesResponse response;
  grpc::Status status = Extract("small", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.served_by().route(), "large");
  EXPECT_EQ(response.served_by().fallback_reason(), "resource_exhausted");
}

TEST_F(EntitiesFallbackTest, UpstreamIsSkippedAndTheSurestAnswerServed) {
  EntityWorker small("small-model"), large("large-model");
  small.score = 0.6f;
  large.score = 0.4f;  // the escalation is less sure than the first answer
  RunningServer s = Serve(&small), l = Serve(&large);
  Start(s.address(), l.address(), 0.8f);
  slmgw::v1::ExtractEntitiesResponse response;
  grpc::Status status = Extract("small", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.served_by().route(), "small");
  EXPECT_FLOAT_EQ(response.served_by().confidence(), 0.6f);
  EXPECT_EQ(response.entities(1).text(), "small-model");
  EXPECT_EQ(large.calls.load(), 1);
  EXPECT_EQ(upstream_calls_.load(), 0);
}

TEST_F(EntitiesFallbackTest, EveryPoolDownEndsWithUnavailableNamingThem) {
  Start(ClosedAddress(), ClosedAddress(), 0.8f);
  slmgw::v1::ExtractEntitiesResponse response;
  grpc::Status status = Extract("small", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("small-pool"));
  EXPECT_THAT(status.error_message(), HasSubstr("large-pool"));
  EXPECT_EQ(upstream_calls_.load(), 0);
}

TEST_F(EntitiesFallbackTest, UpstreamRouteIsRefused) {
  Start(ClosedAddress(), ClosedAddress(), 0.8f);
  slmgw::v1::ExtractEntitiesResponse response;
  grpc::Status status = Extract("big", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("does not extract entities"));
  EXPECT_EQ(upstream_calls_.load(), 0);
}

}  // namespace
}  // namespace slm::router
