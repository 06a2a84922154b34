#include "workers/service/worker_service.h"

#include <chrono>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "kernels/dtype.h"
#include "monitoring/metrics_server.h"
#include "workers/decoder/architectures.h"
#include "workers/gguf/gguf_file.h"

namespace slm::workers {
namespace {

using slmgw::v1::WorkerReport;

// Byte offset -> Unicode code point offset in UTF-8 `text` (continuation bytes don't count).
uint32_t CodePointOffset(const std::string& text, int32_t byte_offset) {
  uint32_t count = 0;
  const int32_t limit = std::min<int32_t>(byte_offset, static_cast<int32_t>(text.size()));
  for (int32_t i = 0; i < limit; ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++count;
  }
  return count;
}

std::string ResolveModelPath(const std::string& model_path, const std::string& models_dir) {
  const std::filesystem::path path(model_path);
  if (path.is_absolute() || models_dir.empty()) return model_path;
  return (std::filesystem::path(models_dir) / path).string();
}

}  // namespace

absl::StatusOr<std::unique_ptr<WorkerServiceImpl>> WorkerServiceImpl::Create(
    const slmgw::config::v1::WorkerConfig& config, const std::string& models_dir,
    uint32_t max_text_bytes, std::shared_ptr<WorkerMetrics> metrics) {
  const std::string path = ResolveModelPath(config.model_path(), models_dir);
  Executor::Options executor_options;
  executor_options.threads = std::max<int>(1, config.concurrency());
  executor_options.max_queue_depth = static_cast<int>(config.max_queue_depth());
  executor_options.compute_threads = std::max<int>(1, config.threads());
  {
    absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
    if (!file.ok()) {
      return absl::Status(file.status().code(),
                          absl::StrCat("worker '", config.name(), "': cannot load model ", path,
                                       ": ", file.status().message()));
    }
    absl::StatusOr<std::string> architecture = (*file)->GetString("general.architecture");
    if (architecture.ok() && decoder::FindArchitecture(*architecture).ok()) {
      file->reset();
      SLM_ASSIGN_OR_RETURN(std::unique_ptr<GenerationHost> generation,
                           GenerationHost::Create(config, path, max_text_bytes, metrics));
      executor_options.threads = 1;  // unused: the generation engine has its own thread
      return std::unique_ptr<WorkerServiceImpl>(
          new WorkerServiceImpl(config.name(), nullptr, std::move(generation), max_text_bytes,
                                executor_options, std::move(metrics)));
    }
  }
  EncoderOptions options;
  absl::StatusOr<kernels::DType> dtype =
      kernels::ParseDType(config.dtype().empty() ? "f32" : config.dtype());
  if (!dtype.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker '", config.name(), "': ", dtype.status().message()));
  }
  options.dtype = *dtype;
  if (config.max_input_tokens() > 0) options.max_tokens = config.max_input_tokens();
  options.threads = std::max<int>(1, config.threads());
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<EncoderModel>> model = EncoderModel::Load(path, options);
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        absl::StrCat("worker '", config.name(), "': cannot load model ", path,
                                     ": ", model.status().message()));
  }
  SLM_LOG(INFO) << "worker '" << config.name() << "' loaded " << path << " ("
                << (*model)->task() << ", " << (*model)->labels().size() << " labels, "
                << kernels::DTypeName(options.dtype) << ") in "
                << absl::ToDoubleMilliseconds(absl::Now() - start) << " ms";
  return std::unique_ptr<WorkerServiceImpl>(
      new WorkerServiceImpl(config.name(), *std::move(model), nullptr, max_text_bytes,
                            executor_options, std::move(metrics)));
}

WorkerServiceImpl::WorkerServiceImpl(std::string name, std::unique_ptr<EncoderModel> model,
                                     std::unique_ptr<GenerationHost> generation,
                                     uint32_t max_text_bytes, Executor::Options executor_options,
                                     std::shared_ptr<WorkerMetrics> metrics)
    : name_(std::move(name)),
      model_(std::move(model)),
      max_text_bytes_(max_text_bytes),
      metrics_(std::move(metrics)),
      queue_depth_gauge_(&metrics_->queue_depth.Add({{"model", name_}})),
      in_flight_gauge_(&metrics_->in_flight.Add({{"model", name_}})),
      generation_(std::move(generation)),
      executor_(executor_options) {
  if (model_ == nullptr) return;  // a generation worker: GenerationHost reports its model
  metrics_->model_info
      .Add({{"model", name_},
            {"task", model_->task()},
            {"dtype", std::string(kernels::DTypeName(model_->dtype()))}})
      .Set(1);
}

absl::Status WorkerServiceImpl::Unsupported(const char* operation) const {
  return absl::FailedPreconditionError(
      absl::StrCat("worker '", name_, "' serves a ",
                   model_ != nullptr ? model_->task() : std::string("text_generation"),
                   " model, which cannot ", operation));
}

slmgw::v1::LoadReport WorkerServiceImpl::Load() const {
  if (generation_ != nullptr) return generation_->Load();
  slmgw::v1::LoadReport load;
  load.set_queue_depth(executor_.queue_depth());
  load.set_in_flight(in_flight_.load(std::memory_order_relaxed));
  load.set_capacity(executor_.options().threads);
  load.set_max_queue_depth(executor_.options().max_queue_depth);
  return load;
}

absl::Status WorkerServiceImpl::ValidateText(const std::string& text) const {
  if (text.empty()) return absl::InvalidArgumentError("text: must not be empty");
  if (text.size() > max_text_bytes_) {
    return absl::InvalidArgumentError(absl::StrCat("text: ", text.size(),
                                                   " bytes exceeds the limit of ",
                                                   max_text_bytes_, " bytes (max_text_bytes)"));
  }
  return absl::OkStatus();
}

void WorkerServiceImpl::Record(const char* operation, const absl::Status& status,
                               double seconds) {
  const std::string outcome = monitoring::OutcomeLabel(static_cast<int>(status.code()));
  metrics_->requests.Add({{"model", name_}, {"operation", operation}, {"outcome", outcome}})
      .Increment();
  metrics_->latency
      .Add({{"model", name_}, {"operation", operation}}, monitoring::LatencyBucketsSeconds())
      .Observe(seconds);
}

void WorkerServiceImpl::RunUnary(grpc::CallbackServerContext* context,
                                 grpc::ServerUnaryReactor* reactor, const std::string& text,
                                 const char* operation, WorkerReport* report, Compute compute) {
  const absl::Time arrival = absl::Now();
  if (absl::Status valid = ValidateText(text); !valid.ok()) {
    Record(operation, valid, absl::ToDoubleSeconds(absl::Now() - arrival));
    reactor->Finish(ToGrpcStatus(valid));
    return;
  }
  auto task = [this, context, reactor, operation, report, arrival,
               compute = std::move(compute)] {
    const absl::Time start = absl::Now();
    queue_depth_gauge_->Set(executor_.queue_depth());
    const auto deadline = context->deadline();
    auto deadline_passed = [deadline] { return std::chrono::system_clock::now() > deadline; };
    StopFn stop = [context, &deadline_passed] {
      return context->IsCancelled() || deadline_passed();
    };
    absl::Status status;
    if (stop()) {
      status = absl::CancelledError("request cancelled before it reached the model");
    } else {
      in_flight_.fetch_add(1, std::memory_order_relaxed);
      in_flight_gauge_->Increment();
      status = compute(stop, report);
      in_flight_gauge_->Decrement();
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (!status.ok() && deadline_passed()) {
      status = absl::DeadlineExceededError(
          absl::StrCat("worker '", name_, "': deadline passed; the work was stopped"));
    }
    const absl::Time end = absl::Now();
    if (status.ok()) {
      report->set_model(name_);
      report->set_worker(name_);
      report->set_queue_us(absl::ToInt64Microseconds(start - arrival));
      report->set_compute_us(absl::ToInt64Microseconds(end - start));
      *report->mutable_load() = Load();
      metrics_->queue_time.Add({{"model", name_}}, monitoring::LatencyBucketsSeconds())
          .Observe(absl::ToDoubleSeconds(start - arrival));
      metrics_->compute_time.Add({{"model", name_}}, monitoring::LatencyBucketsSeconds())
          .Observe(absl::ToDoubleSeconds(end - start));
      metrics_->tokens.Add({{"model", name_}, {"direction", "input"}})
          .Increment(report->usage().input_tokens());
    }
    Record(operation, status, absl::ToDoubleSeconds(end - arrival));
    reactor->Finish(ToGrpcStatus(status));
  };
  if (!executor_.TrySubmit(std::move(task))) {
    const absl::Status full = absl::ResourceExhaustedError(
        absl::StrCat("worker '", name_, "': queue full (", executor_.options().max_queue_depth,
                     " requests waiting); retry later or on another worker"));
    Record(operation, full, absl::ToDoubleSeconds(absl::Now() - arrival));
    reactor->Finish(ToGrpcStatus(full));
    return;
  }
  queue_depth_gauge_->Set(executor_.queue_depth());
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Classify(
    grpc::CallbackServerContext* context, const slmgw::v1::WorkerServiceClassifyRequest* request,
    slmgw::v1::WorkerServiceClassifyResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (model_ == nullptr) {
    Record("classify", Unsupported("classify text"), 0);
    reactor->Finish(ToGrpcStatus(Unsupported("classify text")));
    return reactor;
  }
  RunUnary(context, reactor, request->text(), "classify", response->mutable_report(),
           [this, request, response](const StopFn& stop, WorkerReport* report) -> absl::Status {
             SLM_ASSIGN_OR_RETURN(ClassifyOutput output, model_->Classify(request->text(), stop));
             for (const LabelScore& label : output.labels) {
               auto* out = response->add_labels();
               out->set_label(label.label);
               out->set_score(label.score);
             }
             report->mutable_usage()->set_input_tokens(output.tokens_in);
             return absl::OkStatus();
           });
  return reactor;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::ExtractEntities(
    grpc::CallbackServerContext* context,
    const slmgw::v1::WorkerServiceExtractEntitiesRequest* request,
    slmgw::v1::WorkerServiceExtractEntitiesResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (model_ == nullptr) {
    Record("extract_entities", Unsupported("extract entities"), 0);
    reactor->Finish(ToGrpcStatus(Unsupported("extract entities")));
    return reactor;
  }
  RunUnary(context, reactor, request->text(), "extract_entities", response->mutable_report(),
           [this, request, response](const StopFn& stop, WorkerReport* report) -> absl::Status {
             const std::string& text = request->text();
             SLM_ASSIGN_OR_RETURN(EntitiesOutput output, model_->ExtractEntities(text, stop));
             for (const EntitySpan& span : output.entities) {
               auto* entity = response->add_entities();
               entity->set_label(span.label);
               entity->set_start(CodePointOffset(text, span.begin));
               entity->set_end(CodePointOffset(text, span.end));
               entity->set_text(text.substr(span.begin, span.end - span.begin));
               entity->set_score(span.score);
             }
             report->mutable_usage()->set_input_tokens(output.tokens_in);
             return absl::OkStatus();
           });
  return reactor;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Generate(
    grpc::CallbackServerContext* context, const slmgw::v1::WorkerServiceGenerateRequest* request,
    slmgw::v1::WorkerServiceGenerateResponse* response) {
  if (generation_ != nullptr) return generation_->Generate(context, request, response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const absl::Status status = Unsupported("generate text");
  Record("generate", status, 0);
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerWriteReactor<slmgw::v1::WorkerServiceGenerateStreamResponse>*
WorkerServiceImpl::GenerateStream(grpc::CallbackServerContext* context,
                                  const slmgw::v1::WorkerServiceGenerateStreamRequest* request) {
  if (generation_ != nullptr) return generation_->GenerateStream(context, request);
  // Finishes at once: this worker's model does not generate.
  class Refusal final : public grpc::ServerWriteReactor<slmgw::v1::WorkerServiceGenerateStreamResponse> {
   public:
    explicit Refusal(const grpc::Status& status) { Finish(status); }
    void OnDone() override { delete this; }
  };
  const absl::Status status = Unsupported("generate text");
  Record("generate_stream", status, 0);
  return new Refusal(ToGrpcStatus(status));
}

grpc::ServerUnaryReactor* WorkerServiceImpl::GetLoad(grpc::CallbackServerContext* context,
                                                     const slmgw::v1::GetLoadRequest* request,
                                                     slmgw::v1::GetLoadResponse* response) {
  *response->mutable_load() = Load();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::DescribeModel(
    grpc::CallbackServerContext* context, const slmgw::v1::DescribeModelRequest* request,
    slmgw::v1::DescribeModelResponse* response) {
  slmgw::v1::ModelInfo* info = response->mutable_model();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (generation_ != nullptr) {
    *info = generation_->Describe();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  info->set_name(model_->name());
  info->set_task(model_->task());
  for (const std::string& label : model_->labels()) info->add_labels(label);
  info->set_dtype(std::string(kernels::DTypeName(model_->dtype())));
  info->set_max_input_tokens(static_cast<uint32_t>(model_->max_tokens()));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace slm::workers
