// The operations CascadeCall serves: how Classify, ExtractEntities and Generate talk to a worker pool and to an
// OpenAI-compatible upstream. Internal to router/.
//
// ClassifyOp: workers answer WorkerService.Classify; the answer's confidence is the top label's
// probability. An upstream is prompted with the route's `labels` (else the labels of the answer
// that escalated to it) and its reply read back into a label (upstream/label_prompt.h); the
// chosen label scores 1 and the others 0, since a chat model gives no calibrated probability.
// Without labels the step fails with FAILED_PRECONDITION naming the route.
//
// GenerateOp: workers answer WorkerService.Generate; upstreams get the chat messages (or the
// prompt as one user message). When the route cascades (cascade_threshold > 0) log-probabilities
// are requested and the confidence is exp(mean token log-probability); they are removed from the
// response unless the caller asked for them. RequestOptions.limits.max_output_tokens caps
// sampling.max_tokens.
// Thread-safety: immutable after construction; methods may be called from any thread.
#ifndef SLM_ROUTER_FALLBACK_UNARY_OPS_H_
#define SLM_ROUTER_FALLBACK_UNARY_OPS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "router/fallback/cascade_call.h"
#include "router/upstream/openai_client.h"
#include "slmgw/v1/gateway.pb.h"
#include "slmgw/v1/worker.grpc.pb.h"

namespace slm::router {

class ClassifyOp {
 public:
  using Response = slmgw::v1::ClassifyResponse;
  using WorkerRequest = slmgw::v1::WorkerServiceClassifyRequest;
  using WorkerResponse = slmgw::v1::WorkerServiceClassifyResponse;
  using UpstreamDone = std::function<void(absl::StatusOr<UpstreamAnswer<Response>>)>;
  static constexpr char kOperation[] = "classify";

  explicit ClassifyOp(const slmgw::v1::ClassifyRequest& request);

  static void Invoke(slmgw::v1::WorkerService::Stub* stub, grpc::ClientContext* context,
                     const WorkerRequest* request, WorkerResponse* response,
                     std::function<void(grpc::Status)> done);
  std::shared_ptr<const WorkerRequest> RequestFor(const slmgw::config::v1::RouteConfig&) const {
    return worker_request_;
  }
  void FromWorker(const WorkerResponse& worker, Response* response, float* confidence) const;
  // Null when the step failed at once (`done` has run).
  std::shared_ptr<upstream::UpstreamClient::Call> CallUpstream(
      upstream::UpstreamClient& client, const slmgw::config::v1::RouteConfig& route,
      const Response* previous, std::chrono::system_clock::time_point deadline,
      UpstreamDone done) const;
  void Finalize(Response*) const {}

 private:
  std::shared_ptr<const WorkerRequest> worker_request_;
};

// ExtractEntitiesOp: workers answer WorkerService.ExtractEntities; the answer's confidence is its
// least certain entity's score (1 when it found none: nothing to doubt). Upstreams do not extract
// entities: ServeExtractEntities leaves them out of the chain, and CallUpstream fails with
// FAILED_PRECONDITION should one be reached.
class ExtractEntitiesOp {
 public:
  using Response = slmgw::v1::ExtractEntitiesResponse;
  using WorkerRequest = slmgw::v1::WorkerServiceExtractEntitiesRequest;
  using WorkerResponse = slmgw::v1::WorkerServiceExtractEntitiesResponse;
  using UpstreamDone = std::function<void(absl::StatusOr<UpstreamAnswer<Response>>)>;
  static constexpr char kOperation[] = "extract_entities";

  explicit ExtractEntitiesOp(const slmgw::v1::ExtractEntitiesRequest& request);

  static void Invoke(slmgw::v1::WorkerService::Stub* stub, grpc::ClientContext* context,
                     const WorkerRequest* request, WorkerResponse* response,
                     std::function<void(grpc::Status)> done);
  std::shared_ptr<const WorkerRequest> RequestFor(const slmgw::config::v1::RouteConfig&) const {
    return worker_request_;
  }
  void FromWorker(const WorkerResponse& worker, Response* response, float* confidence) const;
  // Always fails (`done` runs with FAILED_PRECONDITION) and returns null.
  std::shared_ptr<upstream::UpstreamClient::Call> CallUpstream(
      upstream::UpstreamClient& client, const slmgw::config::v1::RouteConfig& route,
      const Response* previous, std::chrono::system_clock::time_point deadline,
      UpstreamDone done) const;
  void Finalize(Response*) const {}

 private:
  std::shared_ptr<const WorkerRequest> worker_request_;
};

class GenerateOp {
 public:
  using Response = slmgw::v1::GenerateResponse;
  using WorkerRequest = slmgw::v1::WorkerServiceGenerateRequest;
  using WorkerResponse = slmgw::v1::WorkerServiceGenerateResponse;
  using UpstreamDone = std::function<void(absl::StatusOr<UpstreamAnswer<Response>>)>;
  static constexpr char kOperation[] = "generate";

  GenerateOp(const std::string& prompt,
             const google::protobuf::RepeatedPtrField<slmgw::v1::ChatMessage>& messages,
             const slmgw::v1::SamplingParams& sampling, const slmgw::v1::RequestOptions& options);

  static void Invoke(slmgw::v1::WorkerService::Stub* stub, grpc::ClientContext* context,
                     const WorkerRequest* request, WorkerResponse* response,
                     std::function<void(grpc::Status)> done);
  std::shared_ptr<const WorkerRequest> RequestFor(
      const slmgw::config::v1::RouteConfig& route) const;
  void FromWorker(const WorkerResponse& worker, Response* response, float* confidence) const;
  std::shared_ptr<upstream::UpstreamClient::Call> CallUpstream(
      upstream::UpstreamClient& client, const slmgw::config::v1::RouteConfig& route,
      const Response* previous, std::chrono::system_clock::time_point deadline,
      UpstreamDone done) const;
  void Finalize(Response* response) const;

  // The chat messages an upstream gets (the prompt as one user message when there are none).
  const std::vector<slmgw::v1::ChatMessage>& chat() const { return chat_; }
  // Sampling for `route` (log-probabilities requested when it cascades).
  slmgw::v1::SamplingParams SamplingFor(const slmgw::config::v1::RouteConfig& route) const;
  bool caller_wants_logprobs() const { return sampling_.return_logprobs(); }

 private:
  std::shared_ptr<WorkerRequest> plain_;     // as the caller asked
  std::shared_ptr<WorkerRequest> logprobs_;  // with return_logprobs, for cascading routes
  slmgw::v1::SamplingParams sampling_;
  std::vector<slmgw::v1::ChatMessage> chat_;
};

}  // namespace slm::router

#endif  // SLM_ROUTER_FALLBACK_UNARY_OPS_H_
