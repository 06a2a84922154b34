#include "tools/slmctl/eval_command.h"

#include <chrono>
#include <iostream>
#include <memory>

#include "absl/status/status.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "slmgw/v1/gateway.grpc.pb.h"
#include "tools/slmctl/eval_data.h"

namespace slm::slmctl {
namespace {

using Clock = std::chrono::steady_clock;

void FillRequestOptions(const CallOptions& options, const EvalCase& eval_case,
                        slmgw::v1::RequestOptions* request_options) {
  request_options->set_task(eval_case.task.empty() ? options.task : eval_case.task);
  request_options->set_route_hint(options.route);
  request_options->set_tenant(options.tenant);
}

void SetDeadline(const CallOptions& options, grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(options.timeout_ms));
}

EvalOutcome Send(const CallOptions& options, slmgw::v1::GatewayService::Stub& stub,
                 const EvalCase& eval_case) {
  EvalOutcome outcome;
  grpc::ClientContext context;
  SetDeadline(options, &context);
  const Clock::time_point start = Clock::now();
  grpc::Status status;
  const slmgw::v1::ServedBy* served_by = nullptr;
  slmgw::v1::ClassifyResponse classified;
  slmgw::v1::ExtractEntitiesResponse extracted;
  if (eval_case.entities) {
    slmgw::v1::ExtractEntitiesRequest request;
    request.set_text(eval_case.text);
    FillRequestOptions(options, eval_case, request.mutable_options());
    status = stub.ExtractEntities(&context, request, &extracted);
    served_by = &extracted.served_by();
  } else {
    slmgw::v1::ClassifyRequest request;
    request.set_text(eval_case.text);
    FillRequestOptions(options, eval_case, request.mutable_options());
    status = stub.Classify(&context, request, &classified);
    served_by = &classified.served_by();
  }
  outcome.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (!status.ok()) {
    outcome.error_code =
        absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
    return outcome;
  }
  outcome.ok = true;
  outcome.route = served_by->route();
  outcome.fell_back = served_by->fell_back();
  if (!classified.labels().empty()) outcome.label = classified.labels(0).label();
  for (const auto& entity : extracted.entities()) {
    std::optional<TokenEntity> mapped =
        EntityToTokens(entity.label(), static_cast<int>(entity.start()),
                       static_cast<int>(entity.end()), eval_case.token_spans);
    if (mapped.has_value()) outcome.entities.push_back(*mapped);
  }
  return outcome;
}

}  // namespace

int Eval(const CallOptions& options, const EvalOptions& eval) {
  absl::StatusOr<EvalFormat> format = ParseEvalFormat(eval.format);
  if (!format.ok()) {
    std::cerr << "error: " << format.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::vector<EvalCase>> cases = ReadEvalFile(eval.file, *format, eval.labels);
  if (!cases.ok()) {
    std::cerr << "error: " << cases.status().message() << "\n";
    return 2;
  }
  if (eval.limit > 0 && cases->size() > static_cast<size_t>(eval.limit)) {
    cases->resize(eval.limit);
  }
  for (EvalCase& eval_case : *cases) {
    if (eval_case.expected_route.empty()) eval_case.expected_route = eval.expect_route;
  }
  auto stub = slmgw::v1::GatewayService::NewStub(
      grpc::CreateChannel(options.target, grpc::InsecureChannelCredentials()));
  std::vector<EvalOutcome> outcomes;
  outcomes.reserve(cases->size());
  for (const EvalCase& eval_case : *cases) outcomes.push_back(Send(options, *stub, eval_case));
  const EvalReport report = Summarize(*cases, outcomes);
  std::cout << (options.json ? FormatReportJson(report) + "\n" : FormatReportTable(report));
  return 0;
}

}  // namespace slm::slmctl
