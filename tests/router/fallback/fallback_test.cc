// The fallback chain, cascade and generation paths of the Gateway service, end to end on
// loopback: scripted WorkerService servers (real gRPC servers answering with scripted
// confidences, tokens and failures) and a scripted HTTP server in place of the paid upstream.
// Every expectation is on what the caller receives and on counters, never on timing.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "router/gateway_service.h"
#include "tests/router/loopback_server.h"
#include "tests/router/upstream/fake_http_server.h"

namespace slm::router {
namespace {

using slm::testing::FakeHttpServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A worker with scripted answers: Classify with `score`, Generate with `tokens` (each with
// `logprob`), GenerateStream sending `tokens` then failing with `fail_after_tokens` (when set)
// or hanging until cancelled (`hang`).
class ScriptedWorker final : public slmgw::v1::WorkerService::CallbackService {
 public:
  explicit ScriptedWorker(std::string model) : model_(std::move(model)) {}
  ~ScriptedWorker() override {
    absl::MutexLock lock(&mutex_);
    for (std::thread& thread : threads_) thread.join();
  }

  float score = 0.9f;
  std::vector<std::string> tokens = {"Hel", "lo"};
  float logprob = -0.1f;
  int fail_after_tokens = -1;
  bool hang = false;
  std::atomic<int> calls{0};
  std::atomic<int> cancelled{0};
  absl::Mutex mutex_;
  slmgw::v1::SamplingParams last_sampling ABSL_GUARDED_BY(mutex_);

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const slmgw::v1::WorkerServiceClassifyRequest* request,
                                     slmgw::v1::WorkerServiceClassifyResponse* response) override {
    calls++;
    auto* top = response->add_labels();
    top->set_label("positive");
    top->set_score(score);
    auto* other = response->add_labels();
    other->set_label("negative");
    other->set_score(1 - score);
    Report(response->mutable_report());
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const slmgw::v1::WorkerServiceGenerateRequest* request,
                                     slmgw::v1::WorkerServiceGenerateResponse* response) override {
    calls++;
    {
      absl::MutexLock lock(&mutex_);
      last_sampling = request->sampling();
    }
    auto* reactor = context->DefaultReactor();
    if (hang) {
      absl::MutexLock lock(&mutex_);
      threads_.emplace_back([this, context, reactor] {
        while (!context->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        cancelled++;
        reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      });
      return reactor;
    }
    std::string text;
    for (const auto& token : tokens) {
      text += token;
      if (request->sampling().return_logprobs()) response->add_token_logprobs(logprob);
    }
    response->set_text(text);
    response->set_finish_reason("stop");
    Report(response->mutable_report());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerWriteReactor<slmgw::v1::WorkerServiceGenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext* context,
      const slmgw::v1::WorkerServiceGenerateStreamRequest* request) override {
    calls++;
    class Writer final
        : public grpc::ServerWriteReactor<slmgw::v1::WorkerServiceGenerateStreamResponse> {
     public:
      Writer(ScriptedWorker* worker, bool logprobs) : worker_(worker), logprobs_(logprobs) {
        Next();
      }
      void OnWriteDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
          return;
        }
        Next();
      }
      void OnCancel() override {
        worker_->cancelled++;
        if (worker_->hang && sent_ == static_cast<int>(worker_->tokens.size())) {
          Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
        }
      }
      void OnDone() override { delete this; }

     private:
      void Next() {
        const int total = static_cast<int>(worker_->tokens.size());
        if (sent_ == worker_->fail_after_tokens) {
          Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "worker crashed mid-stream"));
          return;
        }
        if (sent_ < total) {
          message_.Clear();
          message_.set_text_delta(worker_->tokens[sent_]);
          if (logprobs_) message_.add_token_logprobs(worker_->logprob);
          ++sent_;
          StartWrite(&message_);
          return;
        }
        if (worker_->hang) return;  // OnCancel finishes
        message_.Clear();
        message_.set_finish_reason("length");
        worker_->Report(message_.mutable_report());
        ++sent_;
        StartWriteAndFinish(&message_, grpc::WriteOptions(), grpc::Status::OK);
      }
      ScriptedWorker* const worker_;
      const bool logprobs_;
      int sent_ = 0;
      slmgw::v1::WorkerServiceGenerateStreamResponse message_;
    };
    return new Writer(this, request->sampling().return_logprobs());
  }

  void Report(slmgw::v1::WorkerReport* report) {
    report->set_model(model_);
    report->mutable_usage()->set_input_tokens(4);
    report->mutable_usage()->set_output_tokens(static_cast<uint32_t>(tokens.size()));
  }

 private:
  const std::string model_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mutex_);
};

FakeHttpServer::Reply Answer(const std::string& text) {
  nlohmann::json body = {
      {"model", "big-model-v2"},
      {"choices", {{{"message", {{"content", text}}}, {"finish_reason", "stop"}}}},
      {"usage", {{"prompt_tokens", 30}, {"completion_tokens", 2}}}};
  return FakeHttpServer::Json(200, body.dump());
}

// Routes: "small" (pool small-pool) -> fallback "large" (pool large-pool) -> "big" (upstream).
class FallbackTest : public ::testing::Test {
 protected:
  void Start(const std::string& small_endpoint, const std::string& large_endpoint,
             const std::string& upstream_url, float cascade_threshold,
             const std::vector<std::string>& labels = {"positive", "negative"},
             uint32_t small_deadline_ms = 0) {
    auto config = std::make_shared<slmgw::config::v1::GatewayConfig>();
    config->mutable_limits()->set_max_text_bytes(1024);
    config->mutable_limits()->set_default_deadline_ms(5000);
    config->mutable_dispatch()->set_max_attempts(2);
    config->mutable_dispatch()->set_retry_budget_ratio(1);
    config->mutable_dispatch()->set_retry_budget_min_per_second(100);
    auto* small_pool = config->add_pools();
    small_pool->set_name("small-pool");
    small_pool->add_endpoints(small_endpoint);
    small_pool->set_failures_to_open(1000);
    auto* large_pool = config->add_pools();
    large_pool->set_name("large-pool");
    large_pool->add_endpoints(large_endpoint);
    large_pool->set_failures_to_open(1000);
    auto* upstream = config->add_upstreams();
    upstream->set_name("big");
    upstream->set_base_url(upstream_url);
    upstream->set_model("big-model");
    upstream->set_timeout_ms(3000);
    upstream->set_max_concurrency(8);
    auto* small = config->add_routes();
    small->set_name("small");
    small->add_tasks("small");
    small->set_pool("small-pool");
    small->set_cascade_threshold(cascade_threshold);
    small->set_deadline_ms(small_deadline_ms);
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
    for (const auto& label : labels) big->add_labels(label);
    metrics_ = std::make_shared<RouterMetrics>(registry_);
    auto service = GatewayServiceImpl::Create(config, DefaultChannelFactory(), metrics_);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
    gateway_ = Serve(service_.get());
    stub_ = slmgw::v1::GatewayService::NewStub(
        grpc::CreateChannel(gateway_.address(), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Classify(const std::string& task, slmgw::v1::ClassifyResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    slmgw::v1::ClassifyRequest request;
    request.set_text("a fine film");
    request.mutable_options()->set_task(task);
    return stub_->Classify(&context, request, response);
  }

  grpc::Status Generate(const std::string& task, slmgw::v1::GenerateResponse* response,
                        bool logprobs = false) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    slmgw::v1::GenerateRequest request;
    request.set_prompt("Say hello");
    request.mutable_sampling()->set_return_logprobs(logprobs);
    request.mutable_options()->set_task(task);
    return stub_->Generate(&context, request, response);
  }

  // Reads a whole stream; returns its status, the deltas and the last message.
  grpc::Status Stream(const std::string& task, std::vector<std::string>* deltas,
                      slmgw::v1::GenerateStreamResponse* last) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    slmgw::v1::GenerateStreamRequest request;
    request.set_prompt("Say hello");
    request.mutable_options()->set_task(task);
    auto reader = stub_->GenerateStream(&context, request);
    slmgw::v1::GenerateStreamResponse message;
    while (reader->Read(&message)) {
      deltas->push_back(message.text_delta());
      *last = message;
    }
    return reader->Finish();
  }

  std::string Metrics() { return prometheus::TextSerializer().Serialize(registry_.Collect()); }

  prometheus::Registry registry_;
  std::shared_ptr<RouterMetrics> metrics_;
  std::unique_ptr<GatewayServiceImpl> service_;
  RunningServer gateway_;
  std::unique_ptr<slmgw::v1::GatewayService::Stub> stub_;
};

FakeHttpServer::Handler Refuse() {
  return [](const FakeHttpServer::Request&) {
    return FakeHttpServer::Json(500, R"({"error": {"message": "should not be called"}})");
  };
}

TEST_F(FallbackTest, ConfidentAnswerStaysOnItsRoute) {
  ScriptedWorker small("small-model"), large("large-model");
  RunningServer s = Serve(&small), l = Serve(&large);
  FakeHttpServer upstream(Refuse());
  Start(s.address(), l.address(), upstream.base_url(), 0.8f);
  slmgw::v1::ClassifyResponse response;
  ASSERT_TRUE(Classify("small", &response).ok());
  EXPECT_EQ(response.served_by().route(), "small");
  EXPECT_FALSE(response.served_by().fell_back());
  EXPECT_FLOAT_EQ(response.served_by().confidence(), 0.9f);
  EXPECT_EQ(large.calls.load(), 0);
}

TEST_F(FallbackTest, LowConfidenceEscalatesToTheLargerPool) {
  ScriptedWorker small("small-model"), large("large-model");
  small.score = 0.55f;
  large.score = 0.97f;
  RunningServer s = Serve(&small), l = Serve(&large);
  FakeHttpServer upstream(Refuse());
  Start(s.address(), l.address(), upstream.base_url(), 0.8f);
  slmgw::v1::ClassifyResponse response;
  grpc::Status status = Classify("small", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.served_by().route(), "large");
  EXPECT_EQ(response.served_by().model(), "large-model");
  EXPECT_EQ(response.served_by().worker(), l.address());
  EXPECT_TRUE(response.served_by().fell_back());
  EXPECT_EQ(response.served_by().fallback_reason(), "low_confidence");
  EXPECT_FLOAT_EQ(response.labels(0).score(), 0.97f);
  EXPECT_TRUE(upstream.requests().empty());
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("slmgw_router_fallbacks_total{reason=\"low_confidence\","
                                 "source=\"small\",target=\"large\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("slmgw_router_cascade_escalations_total{operation=\"classify\","
                                 "route=\"small\"} 1"));
}

TEST_F(FallbackTest, PoolDownFallsBackThroughTheChainToTheUpstream) {
  FakeHttpServer upstream([](const FakeHttpServer::Request&) { return Answer("Negative."); });
  Start(ClosedAddress(), ClosedAddress(), upstream.base_url(), 0.8f);
  slmgw::v1::ClassifyResponse response;
  grpc::Status status = Classify("small", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.served_by().route(), "big");
  EXPECT_EQ(response.served_by().worker(), "upstream:big");
  EXPECT_EQ(response.served_by().model(), "big-model-v2");
  EXPECT_EQ(response.served_by().fallback_reason(), "unavailable");
  EXPECT_EQ(response.served_by().usage().input_tokens(), 30u);
  ASSERT_EQ(response.labels_size(), 2);
  EXPECT_EQ(response.labels(0).label(), "negative");
  EXPECT_FLOAT_EQ(response.labels(0).score(), 1.0f);
  // The label prompt reached the upstream with the route's labels.
  const auto body = nlohmann::json::parse(upstream.requests().at(0).body);
  EXPECT_THAT(body["messages"][0]["content"].get<std::string>(),
              HasSubstr("labels: positive, negative"));
  EXPECT_EQ(body["messages"][1]["content"], "a fine film");
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("slmgw_router_fallbacks_total{reason=\"unavailable\","
                                 "source=\"large\",target=\"big\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("slmgw_router_upstream_requests_total{outcome=\"ok\",upstream=\"big\"} 1"));
}

TEST_F(FallbackTest, EveryTargetFailingNamesThemAll) {
  FakeHttpServer upstream([](const FakeHttpServer::Request&) {
    auto reply = FakeHttpServer::Json(429, R"({"error": {"message": "slow down"}})");
    reply.headers.emplace_back("Retry-After", "3");
    return reply;
  });
  Start(ClosedAddress(), ClosedAddress(), upstream.base_url(), 0.8f);
  slmgw::v1::ClassifyResponse response;
  grpc::Status status = Classify("small", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("route 'big': upstream 'big': HTTP 429"));
  EXPECT_THAT(status.error_message(), HasSubstr("retry after 3000 ms"));
  EXPECT_THAT(status.error_message(), HasSubstr("route 'small': pool 'small-pool'"));
  EXPECT_THAT(Metrics(), HasSubstr("slmgw_router_upstream_requests_total{outcome="
                                   "\"resource_exhausted\",upstream=\"big\"} 1"));
}

TEST_F(FallbackTest, FailedEscalationServesTheEarlierAnswer) {
  ScriptedWorker small("small-model");
  small.score = 0.6f;
  RunningServer s = Serve(&small);
  FakeHttpServer upstream([](const FakeHttpServer::Request&) {
    return FakeHttpServer::Json(500, R"({"error": {"message": "boom"}})");
  });
  Start(s.address(), ClosedAddress(), upstream.base_url(), 0.8f);
  slmgw::v1::ClassifyResponse response;
  grpc::Status status = Classify("small", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.served_by().route(), "small");
  EXPECT_FLOAT_EQ(response.served_by().confidence(), 0.6f);
  EXPECT_EQ(upstream.requests().size(), 1u);
}

TEST_F(FallbackTest, UpstreamWithoutLabelsRefusesClassification) {
  FakeHttpServer upstream(Refuse());
  Start(ClosedAddress(), ClosedAddress(), upstream.base_url(), 0.8f, /*labels=*/{});
  slmgw::v1::ClassifyResponse response;
  grpc::Status status = Classify("big", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("set routes[].labels"));
  EXPECT_TRUE(upstream.requests().empty());
}

TEST_F(FallbackTest, EntitiesOnAnUpstreamRouteAreRefused) {
  FakeHttpServer upstream(Refuse());
  Start(ClosedAddress(), ClosedAddress(), upstream.base_url(), 0.8f);
  grpc::ClientContext context;
  slmgw::v1::ExtractEntitiesRequest request;
  request.set_text("Ada Lovelace");
  request.mutable_options()->set_task("big");
  slmgw::v1::ExtractEntitiesResponse response;
  grpc::Status status = stub_->ExtractEntities(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("does not extract entities"));
}

TEST_F(FallbackTest, GenerateForwardsToTheWorkerAndStripsUnaskedLogprobs) {
  ScriptedWorker small("small-model"), large("large-model");
  RunningServer s = Serve(&small), l = Serve(&large);
  FakeHttpServer upstream(Refuse());
  Start(s.address(), l.address(), upstream.base_url(), 0.5f);
  slmgw::v1::GenerateResponse response;
  grpc::Status status = Generate("small", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.text(), "Hello");
  EXPECT_EQ(response.finish_reason(), "stop");
  EXPECT_EQ(response.token_logprobs_size(), 0);  // asked of the worker for the cascade only
  EXPECT_NEAR(response.served_by().confidence(), std::exp(-0.1f), 1e-5);
  EXPECT_EQ(response.served_by().usage().output_tokens(), 2u);
  EXPECT_EQ(response.served_by().route(), "small");
  {
    absl::MutexLock lock(&small.mutex_);
    EXPECT_TRUE(small.last_sampling.return_logprobs());
  }
  slmgw::v1::GenerateResponse with_logprobs;
  ASSERT_TRUE(Generate("small", &with_logprobs, /*logprobs=*/true).ok());
  EXPECT_THAT(with_logprobs.token_logprobs(), ElementsAre(-0.1f, -0.1f));
}

TEST_F(FallbackTest, UnsureGenerationEscalatesToTheUpstream) {
  ScriptedWorker small("small-model"), large("large-model");
  small.logprob = -3.0f;  // geometric-mean token probability 0.05
  large.logprob = -2.0f;  // 0.14
  RunningServer s = Serve(&small), l = Serve(&large);
  FakeHttpServer upstream(
      [](const FakeHttpServer::Request& request) { return Answer("Hello from the big model"); });
  Start(s.address(), l.address(), upstream.base_url(), 0.5f);
  slmgw::v1::GenerateResponse response;
  grpc::Status status = Generate("small", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.text(), "Hello from the big model");
  EXPECT_EQ(response.served_by().route(), "big");
  EXPECT_EQ(response.served_by().fallback_reason(), "low_confidence");
  const auto body = nlohmann::json::parse(upstream.requests().at(0).body);
  EXPECT_EQ(body["messages"][0]["role"], "user");
  EXPECT_EQ(body["messages"][0]["content"], "Say hello");
  EXPECT_EQ(small.calls.load(), 1);
  EXPECT_EQ(large.calls.load(), 1);
}

TEST_F(FallbackTest, RouteDeadlineEscalatesWithinTheCallersDeadline) {
  ScriptedWorker small("small-model"), large("large-model");
  small.hang = true;
  RunningServer s = Serve(&small), l = Serve(&large);
  FakeHttpServer upstream(Refuse());
  Start(s.address(), l.address(), upstream.base_url(), 0.0f, {"positive"},
        /*small_deadline_ms=*/100);
  slmgw::v1::GenerateResponse response;
  grpc::Status status = Generate("small", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.served_by().route(), "large");
  EXPECT_EQ(response.served_by().fallback_reason(), "deadline");
}

TEST_F(FallbackTest, StreamFromTheWorkerEndsWithServedBy) {
  ScriptedWorker small("small-model"), large("large-model");
  small.tokens = {"a", "b", "c"};
  RunningServer s = Serve(&small), l = Serve(&large);
  FakeHttpServer upstream(Refuse());
  Start(s.address(), l.address(), upstream.base_url(), 0.0f);
  std::vector<std::string> deltas;
  slmgw::v1::GenerateStreamResponse last;
  grpc::Status status = Stream("small", &deltas, &last);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(deltas, ElementsAre("a", "b", "c", ""));
  EXPECT_EQ(last.finish_reason(), "length");
  EXPECT_EQ(last.served_by().route(), "small");
  EXPECT_EQ(last.served_by().model(), "small-model");
  EXPECT_EQ(last.served_by().usage().output_tokens(), 3u);
  EXPECT_FALSE(last.served_by().fell_back());
}

TEST_F(FallbackTest, StreamFallsBackToTheUpstreamBeforeItsFirstToken) {
  FakeHttpServer upstream([](const FakeHttpServer::Request&) {
    return FakeHttpServer::Events(
        {R"({"model": "big-model-v2", "choices": [{"delta": {"content": "Hi"}}]})",
         R"({"choices": [{"delta": {"content": " there"}}]})",
         R"({"choices": [{"delta": {}, "finish_reason": "stop"}]})",
         R"({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})", "[DONE]"});
  });
  Start(ClosedAddress(), ClosedAddress(), upstream.base_url(), 0.0f);
  std::vector<std::string> deltas;
  slmgw::v1::GenerateStreamResponse last;
  grpc::Status status = Stream("small", &deltas, &last);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(deltas, ElementsAre("Hi", " there", ""));
  EXPECT_EQ(last.finish_reason(), "stop");
  EXPECT_EQ(last.served_by().route(), "big");
  EXPECT_EQ(last.served_by().worker(), "upstream:big");
  EXPECT_EQ(last.served_by().fallback_reason(), "unavailable");
  EXPECT_EQ(last.served_by().usage().output_tokens(), 2u);
  EXPECT_EQ(nlohmann::json::parse(upstream.requests().at(0).body)["stream"], true);
}

TEST_F(FallbackTest, StreamThatFailsAfterItsFirstTokenEndsWithAClearError) {
  ScriptedWorker small("small-model"), large("large-model");
  small.tokens = {"a", "b", "c"};
  small.fail_after_tokens = 1;
  RunningServer s = Serve(&small), l = Serve(&large);
  FakeHttpServer upstream(Refuse());
  Start(s.address(), l.address(), upstream.base_url(), 0.0f);
  std::vector<std::string> deltas;
  slmgw::v1::GenerateStreamResponse last;
  grpc::Status status = Stream("small", &deltas, &last);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("failed after the stream started; not retried"));
  EXPECT_THAT(deltas, ElementsAre("a"));
  EXPECT_EQ(small.calls.load(), 1);  // not retried
  EXPECT_EQ(large.calls.load(), 0);  // no escalation
  EXPECT_TRUE(upstream.requests().empty());
}

TEST_F(FallbackTest, StreamUpstreamFailureAfterFirstTokenIsNotEscalated) {
  FakeHttpServer upstream([](const FakeHttpServer::Request&) {
    return FakeHttpServer::Events({R"({"choices": [{"delta": {"content": "Hi"}}]})"});
  });  // ends without [DONE]
  Start(ClosedAddress(), ClosedAddress(), upstream.base_url(), 0.0f);
  std::vector<std::string> deltas;
  slmgw::v1::GenerateStreamResponse last;
  grpc::Status status = Stream("big", &deltas, &last);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("upstream 'big'"));
  EXPECT_THAT(status.error_message(), HasSubstr("ended before [DONE]"));
  EXPECT_THAT(deltas, ElementsAre("Hi"));
}

TEST_F(FallbackTest, CallerCancellingAStreamCancelsTheWorkerStream) {
  ScriptedWorker small("small-model"), large("large-model");
  small.tokens = {"a"};
  small.hang = true;
  RunningServer s = Serve(&small), l = Serve(&large);
  FakeHttpServer upstream(Refuse());
  Start(s.address(), l.address(), upstream.base_url(), 0.0f);
  grpc::ClientContext context;
  slmgw::v1::GenerateStreamRequest request;
  request.set_prompt("Say hello");
  request.mutable_options()->set_task("small");
  auto reader = stub_->GenerateStream(&context, request);
  slmgw::v1::GenerateStreamResponse message;
  ASSERT_TRUE(reader->Read(&message));
  EXPECT_EQ(message.text_delta(), "a");
  context.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  for (int i = 0; i < 500 && small.cancelled.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(small.cancelled.load(), 1);
  EXPECT_EQ(large.calls.load(), 0);
}

}  // namespace
}  // namespace slm::router
