#include "tools/slmctl/commands.h"

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>

#include "absl/strings/str_format.h"
#include "common/config/gateway_config.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "nlohmann/json.hpp"
#include "slmgw/v1/gateway.grpc.pb.h"

namespace slm::slmctl {
namespace {

std::unique_ptr<grpc::ClientContext> MakeContext(const CallOptions& options) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(options.timeout_ms));
  return context;
}

std::shared_ptr<grpc::Channel> MakeChannel(const CallOptions& options) {
  return grpc::CreateChannel(options.target, grpc::InsecureChannelCredentials());
}

std::unique_ptr<slmgw::v1::GatewayService::Stub> MakeStub(const CallOptions& options) {
  return slmgw::v1::GatewayService::NewStub(MakeChannel(options));
}

void FillOptions(const CallOptions& options, slmgw::v1::RequestOptions* request_options) {
  request_options->set_task(options.task);
  request_options->set_route_hint(options.route);
  request_options->set_tenant(options.tenant);
}

int PrintError(const grpc::Status& status) {
  std::cerr << "error: " << absl::StatusCodeToString(static_cast<absl::StatusCode>(
                                status.error_code()))
            << ": " << status.error_message() << "\n";
  return 1;
}

void PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions print_options;
  print_options.add_whitespace = true;
  print_options.preserve_proto_field_names = true;
  print_options.always_print_primitive_fields = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, print_options);
  std::cout << json;
}

void PrintServedBy(const slmgw::v1::ServedBy& served_by) {
  std::cout << absl::StrFormat(
      "served by route=%s model=%s worker=%s confidence=%.3f%s tokens_in=%d "
      "router=%dus queue=%dus compute=%dus total=%dus\n",
      served_by.route(), served_by.model(), served_by.worker(), served_by.confidence(),
      served_by.fell_back() ? " fell_back(" + served_by.fallback_reason() + ")" : "",
      served_by.usage().input_tokens(), served_by.timings().router_us(),
      served_by.timings().queue_us(), served_by.timings().compute_us(),
      served_by.timings().total_us());
}

// The answer for `label` from a JSON object file; "" when the label has none. Errors name the file.
absl::StatusOr<std::string> AnswerFor(const std::string& path, const std::string& label) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot open answers file " + path);
  nlohmann::json answers = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!answers.is_object()) {
    return absl::InvalidArgumentError(path + ": expected a JSON object label -> answer");
  }
  auto it = answers.find(label);
  if (it == answers.end()) return std::string();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(path + ": the answer for '" + label + "' is not a string");
  }
  return it->get<std::string>();
}

}  // namespace

int Classify(const CallOptions& options, const std::string& text) {
  slmgw::v1::ClassifyRequest request;
  request.set_text(text);
  FillOptions(options, request.mutable_options());
  slmgw::v1::ClassifyResponse response;
  auto context = MakeContext(options);
  grpc::Status status = MakeStub(options)->Classify(context.get(), request, &response);
  if (!status.ok()) return PrintError(status);
  std::string answer;
  if (!options.answers.empty() && !response.labels().empty()) {
    absl::StatusOr<std::string> found = AnswerFor(options.answers, response.labels(0).label());
    if (!found.ok()) {
      std::cerr << "error: " << found.status().message() << "\n";
      return 2;
    }
    answer = *found;
  }
  if (options.json) {
    if (options.answers.empty()) {
      PrintJson(response);
    } else {
      google::protobuf::util::JsonPrintOptions print_options;
      print_options.preserve_proto_field_names = true;
      std::string json;
      (void)google::protobuf::util::MessageToJsonString(response, &json, print_options);
      nlohmann::json object = nlohmann::json::parse(json, nullptr, false);
      object["answer"] = answer;
      std::cout << object.dump(1) << "\n";
    }
    return 0;
  }
  for (const auto& label : response.labels()) {
    std::cout << absl::StrFormat("%-24s %.4f\n", label.label(), label.score());
  }
  if (!answer.empty()) std::cout << "answer: " << answer << "\n";
  PrintServedBy(response.served_by());
  return 0;
}

int Entities(const CallOptions& options, const std::string& text) {
  slmgw::v1::ExtractEntitiesRequest request;
  request.set_text(text);
  FillOptions(options, request.mutable_options());
  slmgw::v1::ExtractEntitiesResponse response;
  auto context = MakeContext(options);
  grpc::Status status = MakeStub(options)->ExtractEntities(context.get(), request, &response);
  if (!status.ok()) return PrintError(status);
  if (options.json) {
    PrintJson(response);
    return 0;
  }
  if (response.entities().empty()) std::cout << "(no entities)\n";
  for (const auto& entity : response.entities()) {
    std::cout << absl::StrFormat("%-16s [%d, %d) %-24s %.4f\n", entity.label(), entity.start(),
                                 entity.end(), entity.text(), entity.score());
  }
  PrintServedBy(response.served_by());
  return 0;
}

int Route(const CallOptions& options, const std::string& text) {
  slmgw::v1::RouteRequest request;
  request.set_text(text);
  FillOptions(options, request.mutable_options());
  slmgw::v1::RouteResponse response;
  auto context = MakeContext(options);
  grpc::Status status = MakeStub(options)->Route(context.get(), request, &response);
  if (!status.ok()) return PrintError(status);
  if (options.json) {
    PrintJson(response);
    return 0;
  }
  const auto& decision = response.decision();
  std::cout << absl::StrFormat("route=%s pool=%s confidence=%.3f\nreason: %s\n", decision.route(),
                               decision.pool(), decision.confidence(), decision.reason());
  for (const auto& signal : decision.signals()) {
    std::cout << absl::StrFormat("signal %-12s -> %-16s confidence=%.3f time=%dns\n",
                                 signal.name(), signal.route(), signal.confidence(),
                                 signal.duration_ns());
  }
  return 0;
}

int Health(const CallOptions& options, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(MakeChannel(options));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  auto context = MakeContext(options);
  grpc::Status status = stub->Check(context.get(), request, &response);
  if (!status.ok()) return PrintError(status);
  if (options.json) {
    PrintJson(response);
  } else {
    std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
              << "\n";
  }
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

int ValidateConfig(const std::string& path, const std::string& role) {
  config::ConfigRole config_role;
  if (role == "all-in-one") {
    config_role = config::ConfigRole::kAllInOne;
  } else if (role == "router") {
    config_role = config::ConfigRole::kRouter;
  } else if (role == "worker") {
    config_role = config::ConfigRole::kWorker;
  } else {
    std::cerr << "error: --role must be all-in-one, router or worker, not '" << role << "'\n";
    return 2;
  }
  auto loaded = config::LoadGatewayConfigFile(path, config_role);
  if (!loaded.ok()) {
    std::cerr << "error: " << loaded.status().message() << "\n";
    return 1;
  }
  std::cout << path << ": valid " << role << " configuration (" << (*loaded)->workers_size()
            << " workers, " << (*loaded)->pools_size() << " pools, " << (*loaded)->routes_size()
            << " routes)\n";
  return 0;
}

}  // namespace slm::slmctl
