// Cost of the fallback path, measured against the plain dispatch path in the same run (requests
// interleaved, so machine noise hits both alike). Loopback only: a scripted worker that answers at
// once and a scripted HTTP server in place of the upstream.
//
//   fallback_bench [requests per case, default 2000]
//
// Cases (closed loop, one request at a time, client-side latency and ServedBy.timings.router_us):
//   plain      Classify on a route without fallback (ForwardCall + PoolCall)
//   chained    Classify on a route with a fallback chain, confident answer (CascadeCall, 1 step)
//   escalated  Classify whose first answer is below cascade_threshold (2 worker calls)
//   worker-gen Generate on a worker route
//   upstream   Generate on a route served by the HTTP upstream (libcurl, JSON)
// Not a CTest test: speed is reported, never asserted.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "prometheus/registry.h"
#include "router/gateway_service.h"
#include "tests/router/upstream/fake_http_server.h"

namespace {

using slm::testing::FakeHttpServer;

class Worker final : public slmgw::v1::WorkerService::CallbackService {
 public:
  explicit Worker(float score) : score_(score) {}
  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const slmgw::v1::WorkerServiceClassifyRequest*,
                                     slmgw::v1::WorkerServiceClassifyResponse* response) override {
    auto* label = response->add_labels();
    label->set_label("positive");
    label->set_score(score_);
    response->mutable_report()->set_model("m");
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const slmgw::v1::WorkerServiceGenerateRequest*,
                                     slmgw::v1::WorkerServiceGenerateResponse* response) override {
    response->set_text("Hello there");
    response->set_finish_reason("stop");
    response->mutable_report()->set_model("m");
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const float score_;
};

struct Running {
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

Running Serve(grpc::Service* service) {
  Running running;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &running.port);
  builder.RegisterService(service);
  running.server = builder.BuildAndStart();
  return running;
}

struct Samples {
  std::vector<double> latency_us;
  std::vector<double> router_us;
  int errors = 0;
};

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(p * values.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  const int requests = argc > 1 ? std::atoi(argv[1]) : 2000;
  Worker confident(0.95f), unsure(0.5f);
  Running confident_server = Serve(&confident), unsure_server = Serve(&unsure);
  FakeHttpServer upstream([](const FakeHttpServer::Request&) {
    return FakeHttpServer::Json(
        200,
        R"({"model": "big", "choices": [{"message": {"content": "Hello there"},)"
        R"( "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})");
  });

  auto config = std::make_shared<slmgw::config::v1::GatewayConfig>();
  config->mutable_limits()->set_max_text_bytes(1024);
  config->mutable_limits()->set_default_deadline_ms(5000);
  auto add_pool = [&](const std::string& name, const std::string& endpoint) {
    auto* pool = config->add_pools();
    pool->set_name(name);
    pool->add_endpoints(endpoint);
  };
  add_pool("confident", confident_server.address());
  add_pool("unsure", unsure_server.address());
  auto* up = config->add_upstreams();
  up->set_name("big");
  up->set_base_url(upstream.base_url());
  up->set_model("big");
  up->set_timeout_ms(5000);
  up->set_max_concurrency(16);
  auto add_route = [&](const std::string& name, const std::string& pool, float threshold,
                       std::vector<std::string> fallback) {
    auto* route = config->add_routes();
    route->set_name(name);
    route->add_tasks(name);
    if (name == "upstream") {
      route->set_upstream("big");
    } else {
      route->set_pool(pool);
    }
    route->set_cascade_threshold(threshold);
    for (const auto& f : fallback) route->add_fallback(f);
  };
  add_route("plain", "confident", 0, {});
  add_route("chained", "confident", 0.8f, {"plain"});
  add_route("escalated", "unsure", 0.8f, {"plain"});
  add_route("upstream", "", 0, {});

  prometheus::Registry registry;
  auto metrics = std::make_shared<slm::router::RouterMetrics>(registry);
  auto service = slm::router::GatewayServiceImpl::Create(
      config, slm::router::DefaultChannelFactory(), metrics);
  if (!service.ok()) {
    std::fprintf(stderr, "%s\n", std::string(service.status().message()).c_str());
    return 1;
  }
  Running gateway = Serve(service->get());
  auto stub = slmgw::v1::GatewayService::NewStub(
      grpc::CreateChannel(gateway.address(), grpc::InsecureChannelCredentials()));

  const std::vector<std::string> cases = {"plain", "chained", "escalated", "worker-gen",
                                          "upstream"};
  std::vector<Samples> samples(cases.size());
  auto run = [&](size_t which) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    const auto start = std::chrono::steady_clock::now();
    grpc::Status status;
    uint64_t router_us = 0;
    if (which < 3) {
      slmgw::v1::ClassifyRequest request;
      request.set_text("a fine film");
      request.mutable_options()->set_task(cases[which]);
      slmgw::v1::ClassifyResponse response;
      status = stub->Classify(&context, request, &response);
      router_us = response.served_by().timings().router_us();
    } else {
      slmgw::v1::GenerateRequest request;
      request.set_prompt("say hello");
      request.mutable_options()->set_task(which == 3 ? "plain" : "upstream");
      slmgw::v1::GenerateResponse response;
      status = stub->Generate(&context, request, &response);
      router_us = response.served_by().timings().router_us();
    }
    const double elapsed =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    if (!status.ok()) {
      ++samples[which].errors;
      return;
    }
    samples[which].latency_us.push_back(elapsed);
    samples[which].router_us.push_back(static_cast<double>(router_us));
  };
  for (int warm = 0; warm < 100; ++warm) {
    for (size_t c = 0; c < cases.size(); ++c) run(c);
  }
  samples.assign(cases.size(), Samples());
  for (int i = 0; i < requests; ++i) {  // rotated, so no case always follows the same one
    for (size_t c = 0; c < cases.size(); ++c) run((c + i) % cases.size());
  }
  const double plain_p50 = Percentile(samples[0].latency_us, 0.5);
  const double worker_gen_p50 = Percentile(samples[3].latency_us, 0.5);
  std::printf("%-11s %9s %9s %9s %9s %8s %7s\n", "case", "p50_us", "p99_us", "rtr_p50", "rtr_p99",
              "p50/base", "errors");
  for (size_t c = 0; c < cases.size(); ++c) {
    const double p50 = Percentile(samples[c].latency_us, 0.5);
    const double base = c < 3 ? plain_p50 : worker_gen_p50;
    std::printf("%-11s %9.0f %9.0f %9.0f %9.0f %8.2f %7d\n", cases[c].c_str(), p50,
                Percentile(samples[c].latency_us, 0.99), Percentile(samples[c].router_us, 0.5),
                Percentile(samples[c].router_us, 0.99), base > 0 ? p50 / base : 0,
                samples[c].errors);
  }
  std::printf(
      "(baseline of p50/base: 'plain' for Classify cases, 'worker-gen' for Generate; "
      "%d requests per case, interleaved)\n",
      requests);
  return 0;
}
