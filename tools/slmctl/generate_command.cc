#include "tools/slmctl/generate_command.h"

#include <chrono>
#include <iostream>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "slmgw/v1/gateway.grpc.pb.h"
#include "slmgw/v1/worker.grpc.pb.h"

namespace slm::slmctl {
namespace {

void FillSampling(const GenerateOptions& generate, slmgw::v1::SamplingParams* sampling) {
  sampling->set_max_tokens(generate.max_tokens);
  sampling->set_temperature(generate.temperature);
  sampling->set_top_k(generate.top_k);
  sampling->set_top_p(generate.top_p);
  sampling->set_min_p(generate.min_p);
  sampling->set_repetition_penalty(generate.repetition_penalty);
  sampling->set_seed(generate.seed);
  for (const std::string& stop : generate.stop) sampling->add_stop(stop);
  sampling->set_return_logprobs(generate.logprobs);
}

template <typename Request>
void FillInput(const GenerateOptions& generate, const std::string& text, Request* request) {
  if (!generate.chat) {
    request->set_prompt(text);
    return;
  }
  if (!generate.system.empty()) {
    slmgw::v1::ChatMessage* system = request->add_messages();
    system->set_role("system");
    system->set_content(generate.system);
  }
  slmgw::v1::ChatMessage* user = request->add_messages();
  user->set_role("user");
  user->set_content(text);
}

int PrintError(const grpc::Status& status) {
  std::cout << std::endl;
  std::cerr << "error: "
            << absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())) << ": "
            << status.error_message() << "\n";
  return 1;
}

// Reads the stream, printing each delta as it arrives; returns the last message.
template <typename Reader, typename Message>
grpc::Status Stream(Reader& reader, const GenerateOptions& generate, Message* last) {
  Message message;
  while (reader->Read(&message)) {
    std::cout << message.text_delta() << std::flush;
    if (generate.logprobs && message.token_logprobs_size() > 0) {
      std::cerr << "[logprobs";
      for (float logprob : message.token_logprobs()) std::cerr << absl::StrFormat(" %.3f", logprob);
      std::cerr << "]\n";
    }
    if (!message.finish_reason().empty()) *last = message;
  }
  return reader->Finish();
}

}  // namespace

int Generate(const CallOptions& options, const GenerateOptions& generate, const std::string& text) {
  auto channel = grpc::CreateChannel(options.target, grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(options.timeout_ms));
  if (generate.worker) {
    slmgw::v1::WorkerServiceGenerateStreamRequest request;
    FillInput(generate, text, &request);
    FillSampling(generate, request.mutable_sampling());
    auto stub = slmgw::v1::WorkerService::NewStub(channel);
    auto reader = stub->GenerateStream(&context, request);
    slmgw::v1::WorkerServiceGenerateStreamResponse last;
    const grpc::Status status = Stream(reader, generate, &last);
    if (!status.ok()) return PrintError(status);
    std::cout << std::endl;
    const slmgw::v1::WorkerReport& report = last.report();
    std::cerr << absl::StrFormat(
        "finish=%s served by model=%s worker=%s tokens_in=%d tokens_out=%d queue=%dus "
        "compute=%dus\n",
        last.finish_reason(), report.model(), report.worker(), report.usage().input_tokens(),
        report.usage().output_tokens(), report.queue_us(), report.compute_us());
    return 0;
  }
  slmgw::v1::GenerateStreamRequest request;
  FillInput(generate, text, &request);
  FillSampling(generate, request.mutable_sampling());
  request.mutable_options()->set_task(options.task);
  request.mutable_options()->set_route_hint(options.route);
  request.mutable_options()->set_tenant(options.tenant);
  auto stub = slmgw::v1::GatewayService::NewStub(channel);
  auto reader = stub->GenerateStream(&context, request);
  slmgw::v1::GenerateStreamResponse last;
  const grpc::Status status = Stream(reader, generate, &last);
  if (!status.ok()) return PrintError(status);
  std::cout << std::endl;
  const slmgw::v1::ServedBy& served_by = last.served_by();
  std::cerr << absl::StrFormat(
      "finish=%s served by route=%s model=%s worker=%s%s tokens_in=%d tokens_out=%d "
      "router=%dus queue=%dus compute=%dus total=%dus\n",
      last.finish_reason(), served_by.route(), served_by.model(), served_by.worker(),
      served_by.fell_back() ? " fell_back(" + served_by.fallback_reason() + ")" : "",
      served_by.usage().input_tokens(), served_by.usage().output_tokens(),
      served_by.timings().router_us(), served_by.timings().queue_us(),
      served_by.timings().compute_us(), served_by.timings().total_us());
  return 0;
}

}  // namespace slm::slmctl
