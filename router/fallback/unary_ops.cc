#include "router/fallback/unary_ops.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "router/upstream/label_prompt.h"

namespace slm::router {

ClassifyOp::ClassifyOp(const slmgw::v1::ClassifyRequest& request) {
  auto worker_request = std::make_shared<WorkerRequest>();
  worker_request->set_text(request.text());
  *worker_request->mutable_limits() = request.options().limits();
  worker_request_ = std::move(worker_request);
}

void ClassifyOp::Invoke(slmgw::v1::WorkerService::Stub* stub, grpc::ClientContext* context,
                        const WorkerRequest* request, WorkerResponse* response,
                        std::function<void(grpc::Status)> done) {
  stub->async()->Classify(context, request, response, std::move(done));
}

void ClassifyOp::FromWorker(const WorkerResponse& worker, Response* response,
                            float* confidence) const {
  *response->mutable_labels() = worker.labels();
  *confidence = worker.labels().empty() ? 0.0f : worker.labels(0).score();
}

std::shared_ptr<upstream::UpstreamClient::Call> ClassifyOp::CallUpstream(
    upstream::UpstreamClient& client, const slmgw::config::v1::RouteConfig& route,
    const Response* previous, std::chrono::system_clock::time_point deadline,
    UpstreamDone done) const {
  std::vector<std::string> labels(route.labels().begin(), route.labels().end());
  if (labels.empty() && previous != nullptr) {
    for (const auto& label : previous->labels()) labels.push_back(label.label());
  }
  if (labels.empty()) {
    done(absl::FailedPreconditionError(
        absl::StrCat("route '", route.name(), "' is served by upstream '", client.name(),
                     "', which classifies only into configured labels: set routes[].labels")));
    return nullptr;
  }
  return client.Complete(
      upstream::ClassificationPrompt(labels, worker_request_->text()),
      upstream::ClassificationSampling(), deadline,
      [labels, done = std::move(done)](absl::StatusOr<upstream::ChatCompletion> completion) {
        if (!completion.ok()) {
          done(completion.status());
          return;
        }
        absl::StatusOr<std::string> label = upstream::ParseLabel(completion->text, labels);
        if (!label.ok()) {
          done(absl::InternalError(label.status().message()));
          return;
        }
        UpstreamAnswer<Response> answer;
        auto* chosen = answer.response.add_labels();
        chosen->set_label(*label);
        chosen->set_score(1.0f);
        for (const std::string& other : labels) {
          if (other == *label) continue;
          auto* score = answer.response.add_labels();
          score->set_label(other);
          score->set_score(0.0f);
        }
        answer.confidence = 1.0f;
        answer.model = completion->model;
        answer.usage.set_input_tokens(completion->prompt_tokens);
        answer.usage.set_output_tokens(completion->completion_tokens);
        done(std::move(answer));
      });
}

ExtractEntitiesOp::ExtractEntitiesOp(const slmgw::v1::ExtractEntitiesRequest& request) {
  auto worker_request = std::make_shared<WorkerRequest>();
  worker_request->set_text(request.text());
  *worker_request->mutable_limits() = request.options().limits();
  worker_request_ = std::move(worker_request);
}

void ExtractEntitiesOp::Invoke(slmgw::v1::WorkerService::Stub* stub, grpc::ClientContext* context,
                               const WorkerRequest* request, WorkerResponse* response,
                               std::function<void(grpc::Status)> done) {
  stub->async()->ExtractEntities(context, request, response, std::move(done));
}

void ExtractEntitiesOp::FromWorker(const WorkerResponse& worker, Response* response,
                                   float* confidence) const {
  *response->mutable_entities() = worker.entities();
  float lowest = 1.0f;
  for (const auto& entity : worker.entities()) lowest = std::min(lowest, entity.score());
  *confidence = lowest;
}

std::shared_ptr<upstream::UpstreamClient::Call> ExtractEntitiesOp::CallUpstream(
    upstream::UpstreamClient& client, const slmgw::config::v1::RouteConfig& route,
    const Response*, std::chrono::system_clock::time_point, UpstreamDone done) const {
  done(absl::FailedPreconditionError(absl::StrCat("route '", route.name(),
                                                  "' is served by upstream '", client.name(),
                                                  "', which does not extract entities")));
  return nullptr;
}

GenerateOp::GenerateOp(const std::string& prompt,
                       const google::protobuf::RepeatedPtrField<slmgw::v1::ChatMessage>& messages,
                       const slmgw::v1::SamplingParams& sampling,
                       const slmgw::v1::RequestOptions& options)
    : sampling_(sampling) {
  const uint32_t cap = options.limits().max_output_tokens();
  if (cap > 0) {
    sampling_.set_max_tokens(sampling_.max_tokens() == 0 ? cap
                                                         : std::min(sampling_.max_tokens(), cap));
  }
  plain_ = std::make_shared<WorkerRequest>();
  plain_->set_prompt(prompt);
  *plain_->mutable_messages() = messages;
  *plain_->mutable_sampling() = sampling_;
  logprobs_ = std::make_shared<WorkerRequest>(*plain_);
  logprobs_->mutable_sampling()->set_return_logprobs(true);
  chat_.assign(messages.begin(), messages.end());
  if (chat_.empty()) {
    chat_.emplace_back();
    chat_.back().set_role("user");
    chat_.back().set_content(prompt);
  }
}

void GenerateOp::Invoke(slmgw::v1::WorkerService::Stub* stub, grpc::ClientContext* context,
                        const WorkerRequest* request, WorkerResponse* response,
                        std::function<void(grpc::Status)> done) {
  stub->async()->Generate(context, request, response, std::move(done));
}

std::shared_ptr<const GenerateOp::WorkerRequest> GenerateOp::RequestFor(
    const slmgw::config::v1::RouteConfig& route) const {
  return route.cascade_threshold() > 0 ? logprobs_ : plain_;
}

slmgw::v1::SamplingParams GenerateOp::SamplingFor(
    const slmgw::config::v1::RouteConfig& route) const {
  slmgw::v1::SamplingParams sampling = sampling_;
  if (route.cascade_threshold() > 0) sampling.set_return_logprobs(true);
  return sampling;
}

void GenerateOp::FromWorker(const WorkerResponse& worker, Response* response,
                            float* confidence) const {
  response->set_text(worker.text());
  response->set_finish_reason(worker.finish_reason());
  *response->mutable_token_logprobs() = worker.token_logprobs();
  *confidence = GenerationConfidence(worker.token_logprobs());
}

std::shared_ptr<upstream::UpstreamClient::Call> GenerateOp::CallUpstream(
    upstream::UpstreamClient& client, const slmgw::config::v1::RouteConfig& route,
    const Response* previous, std::chrono::system_clock::time_point deadline,
    UpstreamDone done) const {
  return client.Complete(
      chat_, SamplingFor(route), deadline,
      [done = std::move(done)](absl::StatusOr<upstream::ChatCompletion> completion) {
        if (!completion.ok()) {
          done(completion.status());
          return;
        }
        UpstreamAnswer<Response> answer;
        answer.response.set_text(completion->text);
        answer.response.set_finish_reason(completion->finish_reason);
        answer.response.mutable_token_logprobs()->Add(completion->token_logprobs.begin(),
                                                      completion->token_logprobs.end());
        answer.confidence = GenerationConfidence(answer.response.token_logprobs());
        answer.model = completion->model;
        answer.usage.set_input_tokens(completion->prompt_tokens);
        answer.usage.set_output_tokens(completion->completion_tokens);
        done(std::move(answer));
      });
}

void GenerateOp::Finalize(Response* response) const {
  if (!sampling_.return_logprobs()) response->clear_token_logprobs();
}

}  // namespace slm::router
