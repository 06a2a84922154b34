// The slmgw.v1.WorkerService of one model: validates requests, queues them on the model's
// executor, and answers with the result and the worker's load. The model is an encoder
// (classification, entities) or a decoder (generation, through GenerationHost), chosen by the
// GGUF file's general.architecture.
//
//   auto metrics = std::make_shared<WorkerMetrics>(*metrics_server->registry());
//   SLM_ASSIGN_OR_RETURN(auto service,
//                        WorkerServiceImpl::Create(worker_config, models_dir, 16384, metrics));
//   builder.RegisterService(service.get());
//
// Reactors never block: a request is queued on the executor (or refused with RESOURCE_EXHAUSTED
// when the queue is full) and the executor thread finishes it. Work stops between layers once
// the caller cancels or its deadline passes. Thread-safety: all RPCs may run concurrently.
// Lifecycle: the service must outlive the grpc::Server it is registered with; destroying it
// waits for queued requests.
#ifndef SLM_WORKERS_SERVICE_WORKER_SERVICE_H_
#define SLM_WORKERS_SERVICE_WORKER_SERVICE_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "slmgw/config/v1/config.pb.h"
#include "slmgw/v1/worker.grpc.pb.h"
#include "workers/encoder/encoder_model.h"
#include "workers/service/executor.h"
#include "workers/service/generation_host.h"
#include "workers/service/worker_metrics.h"

namespace slm::workers {

class WorkerServiceImpl final : public slmgw::v1::WorkerService::CallbackService {
 public:
  // Loads `config.model_path` (relative paths resolve against `models_dir`): a decoder
  // architecture (llama, mistral, qwen2, phi3) becomes a generation worker, anything else an
  // encoder. Errors name the worker and the model file.
  static absl::StatusOr<std::unique_ptr<WorkerServiceImpl>> Create(
      const slmgw::config::v1::WorkerConfig& config, const std::string& models_dir,
      uint32_t max_text_bytes, std::shared_ptr<WorkerMetrics> metrics);

  const std::string& name() const { return name_; }
  // The encoder, or null for a generation worker.
  const EncoderModel* encoder() const { return model_.get(); }
  // The generation host, or null for an encoder worker.
  GenerationHost* generation() const { return generation_.get(); }
  slmgw::v1::LoadReport Load() const;

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const slmgw::v1::WorkerServiceClassifyRequest* request,
                                     slmgw::v1::WorkerServiceClassifyResponse* response) override;
  grpc::ServerUnaryReactor* ExtractEntities(
      grpc::CallbackServerContext* context,
      const slmgw::v1::WorkerServiceExtractEntitiesRequest* request,
      slmgw::v1::WorkerServiceExtractEntitiesResponse* response) override;
  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const slmgw::v1::WorkerServiceGenerateRequest* request,
                                     slmgw::v1::WorkerServiceGenerateResponse* response) override;
  grpc::ServerWriteReactor<slmgw::v1::WorkerServiceGenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext* context,
      const slmgw::v1::WorkerServiceGenerateStreamRequest* request) override;
  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* context,
                                    const slmgw::v1::GetLoadRequest* request,
                                    slmgw::v1::GetLoadResponse* response) override;
  grpc::ServerUnaryReactor* DescribeModel(grpc::CallbackServerContext* context,
                                          const slmgw::v1::DescribeModelRequest* request,
                                          slmgw::v1::DescribeModelResponse* response) override;

 private:
  WorkerServiceImpl(std::string name, std::unique_ptr<EncoderModel> model,
                    std::unique_ptr<GenerationHost> generation, uint32_t max_text_bytes,
                    Executor::Options executor_options, std::shared_ptr<WorkerMetrics> metrics);
  // FAILED_PRECONDITION for an operation the model cannot do.
  absl::Status Unsupported(const char* operation) const;

  // The body of a unary model call: `compute` runs on the executor and fills the response.
  // Returns the status the reactor is finished with.
  using Compute = std::function<absl::Status(const StopFn& stop, slmgw::v1::WorkerReport* report)>;
  void RunUnary(grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                const std::string& text, const char* operation, slmgw::v1::WorkerReport* report,
                Compute compute);
  absl::Status ValidateText(const std::string& text) const;
  void Record(const char* operation, const absl::Status& status, double seconds);

  const std::string name_;
  const std::unique_ptr<EncoderModel> model_;
  const uint32_t max_text_bytes_;
  const std::shared_ptr<WorkerMetrics> metrics_;
  prometheus::Gauge* queue_depth_gauge_;
  prometheus::Gauge* in_flight_gauge_;
  std::atomic<int> in_flight_{0};
  const std::unique_ptr<GenerationHost> generation_;
  // Declared last: destroyed first, so queued tasks finish while the members above still live.
  Executor executor_;
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_SERVICE_WORKER_SERVICE_H_
