// GenerationHost: what a worker serving a decoder model runs behind WorkerService.Generate and
// GenerateStream: the model, its tokenizer and chat template, and the continuous-batching
// GenerationEngine (workers/generation), plus the generation metrics.
//
//   SLM_ASSIGN_OR_RETURN(auto host, GenerationHost::Create(worker_config, path, limits, metrics));
//   return host->Generate(context, request, response);     // from the service's RPC method
//
// A request is validated and tokenized on the calling reactor thread (bounded by max_text_bytes),
// then handed to the engine; the engine's thread finishes the reactor (unary) or feeds the
// ServerWriteReactor (streaming), so no reactor ever blocks. A caller that goes away or whose
// deadline passes stops its sequence between steps and frees its KV cache.
// Thread-safety: all methods may be called concurrently. Lifecycle: the host must outlive the
// grpc::Server; destroying it cancels what is still running.
#ifndef SLM_WORKERS_SERVICE_GENERATION_HOST_H_
#define SLM_WORKERS_SERVICE_GENERATION_HOST_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "slmgw/config/v1/config.pb.h"
#include "slmgw/v1/worker.grpc.pb.h"
#include "workers/decoder/decoder_model.h"
#include "workers/generation/generation_engine.h"
#include "workers/service/worker_metrics.h"
#include "workers/tokenizer/chat_template.h"
#include "workers/tokenizer/tokenizer.h"

namespace slm::workers {

class GenerationHost final : public GenerationObserver {
 public:
  // Loads the decoder model and tokenizer from `path`. Errors name the worker and the file.
  static absl::StatusOr<std::unique_ptr<GenerationHost>> Create(
      const slmgw::config::v1::WorkerConfig& config, const std::string& path,
      uint32_t max_text_bytes, std::shared_ptr<WorkerMetrics> metrics);
  ~GenerationHost() override;

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const slmgw::v1::WorkerServiceGenerateRequest* request,
                                     slmgw::v1::WorkerServiceGenerateResponse* response);
  grpc::ServerWriteReactor<slmgw::v1::WorkerServiceGenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext* context,
      const slmgw::v1::WorkerServiceGenerateStreamRequest* request);

  slmgw::v1::LoadReport Load() const;
  slmgw::v1::ModelInfo Describe() const;
  const DecoderModel& model() const { return *model_; }

  // GenerationObserver (the engine's thread): batch size and gauges.
  void OnStep(int32_t sequences, int32_t rows, absl::Duration elapsed,
              const GenerationLoad& load) override;
  void OnLoadChanged(const GenerationLoad& load) override;

  // The parts of a request both RPCs share; public for the RPC adapters in the .cc file.
  struct Prepared {
    GenerationRequest request;
    absl::Time arrival;
  };
  absl::StatusOr<Prepared> Prepare(
      const std::string& prompt,
      const google::protobuf::RepeatedPtrField<slmgw::v1::ChatMessage>& messages,
      const slmgw::v1::SamplingParams& sampling, grpc::CallbackServerContext* context) const;
  // Report, metrics and the request counter for a finished generation.
  void Complete(const char* operation, const absl::Status& status, const GenerationResult& result,
                absl::Time arrival, slmgw::v1::WorkerReport* report);
  void RecordRefusal(const char* operation, const absl::Status& status, absl::Time arrival);
  GenerationEngine& engine() { return *engine_; }

 private:
  GenerationHost() = default;

  std::string name_;
  std::string dtype_name_;
  uint32_t max_text_bytes_ = 0;
  uint32_t max_input_tokens_ = 0;
  uint32_t default_max_tokens_ = 0;
  std::unique_ptr<DecoderModel> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  absl::StatusOr<ChatTemplateFamily> chat_family_ = absl::NotFoundError("unset");
  std::unique_ptr<Detokenizer> detokenizer_;
  std::shared_ptr<WorkerMetrics> metrics_;
  prometheus::Gauge* queue_depth_gauge_ = nullptr;
  prometheus::Gauge* active_gauge_ = nullptr;
  prometheus::Gauge* kv_used_gauge_ = nullptr;
  prometheus::Histogram* batch_histogram_ = nullptr;
  // Declared last: destroyed first, while everything it uses still lives.
  std::unique_ptr<GenerationEngine> engine_;
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_SERVICE_GENERATION_HOST_H_
