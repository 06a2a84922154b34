#include "workers/service/generation_host.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "kernels/dtype.h"
#include "monitoring/metrics_server.h"
#include "workers/gguf/gguf_file.h"

namespace slm::workers {
namespace {

using slmgw::v1::WorkerServiceGenerateStreamResponse;

constexpr int kMaxStopStrings = 16;
constexpr size_t kMaxStopBytes = 256;

// The tokenizer's DecodeStream, primed with the prompt's last token so the first generated piece
// keeps or drops its leading space as it would inside the whole text.
class TokenizerTextStream final : public TokenTextStream {
 public:
  TokenizerTextStream(const Tokenizer& tokenizer, const std::vector<int32_t>& prompt)
      : stream_(tokenizer) {
    if (!prompt.empty()) {
      stream_.Next(prompt.back());
      stream_.Flush();  // drops an incomplete UTF-8 tail of the prompt
    }
  }
  std::string Next(int32_t token) override { return stream_.Next(token); }
  std::string Flush() override { return stream_.Flush(); }

 private:
  DecodeStream stream_;
};

class TokenizerDetokenizer final : public Detokenizer {
 public:
  explicit TokenizerDetokenizer(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  std::unique_ptr<TokenTextStream> NewStream(const std::vector<int32_t>& prompt) const override {
    return std::make_unique<TokenizerTextStream>(tokenizer_, prompt);
  }
  bool IsEndOfGeneration(int32_t token) const override {
    return tokenizer_.IsEndOfGeneration(token);
  }

 private:
  const Tokenizer& tokenizer_;
};

// Unary Generate: collects the text; the engine's OnFinished finishes the reactor.
class UnaryGeneration final : public GenerationSink {
 public:
  UnaryGeneration(GenerationHost* host, grpc::CallbackServerContext* context,
                  grpc::ServerUnaryReactor* reactor,
                  slmgw::v1::WorkerServiceGenerateResponse* response, absl::Time arrival)
      : host_(host), context_(context), reactor_(reactor), response_(response), arrival_(arrival) {}

  void OnChunk(GenerationChunk chunk) override {
    response_->mutable_text()->append(chunk.text);
    for (float logprob : chunk.logprobs) response_->add_token_logprobs(logprob);
  }
  void OnFinished(const absl::Status& status, const GenerationResult& result) override {
    response_->set_finish_reason(result.finish_reason);
    host_->Complete("generate", status, result, arrival_, response_->mutable_report());
    grpc::ServerUnaryReactor* reactor = reactor_;
    delete this;
    reactor->Finish(ToGrpcStatus(status));
  }
  bool Cancelled() const override { return context_->IsCancelled(); }

 private:
  GenerationHost* const host_;
  grpc::CallbackServerContext* const context_;
  grpc::ServerUnaryReactor* const reactor_;
  slmgw::v1::WorkerServiceGenerateResponse* const response_;
  const absl::Time arrival_;
};

// Streaming: the engine's thread queues messages; one write is in flight at a time, and text
// that arrives meanwhile is merged into the next message. Deleted when both gRPC (OnDone) and
// the engine (after OnFinished) are done with it.
class StreamGeneration final : public grpc::ServerWriteReactor<WorkerServiceGenerateStreamResponse>,
                               public GenerationSink {
 public:
  StreamGeneration(GenerationHost* host, absl::Time arrival) : host_(host), arrival_(arrival) {}

  // Finishes at once (a refused request); the engine never sees it.
  void Refuse(const absl::Status& status) {
    references_.store(1);
    Finish(ToGrpcStatus(status));
  }

  void OnChunk(GenerationChunk chunk) override {
    {
      absl::MutexLock lock(&mutex_);
      if (pending_.empty() || !pending_.back().finish_reason().empty()) pending_.emplace_back();
      WorkerServiceGenerateStreamResponse& message = pending_.back();
      message.mutable_text_delta()->append(chunk.text);
      for (float logprob : chunk.logprobs) message.add_token_logprobs(logprob);
    }
    Pump();
  }

  void OnFinished(const absl::Status& status, const GenerationResult& result) override {
    {
      absl::MutexLock lock(&mutex_);
      if (status.ok()) {
        WorkerServiceGenerateStreamResponse last;
        last.set_finish_reason(result.finish_reason);
        host_->Complete("generate_stream", status, result, arrival_, last.mutable_report());
        pending_.push_back(std::move(last));
      } else {
        host_->Complete("generate_stream", status, result, arrival_, nullptr);
        pending_.clear();  // an error ends the stream with its status; no final message
      }
      final_status_ = ToGrpcStatus(status);
      engine_done_ = true;
    }
    Pump();
    Release();
  }

  bool Cancelled() const override { return cancelled_.load(std::memory_order_relaxed); }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mutex_);
      writing_ = false;
      if (!ok) {
        cancelled_.store(true);
        pending_.clear();
      }
    }
    Pump();
  }
  void OnCancel() override { cancelled_.store(true); }
  void OnDone() override { Release(); }

 private:
  // Starts the next write, or finishes once the engine is done and everything was written.
  // gRPC calls are made without holding mutex_ (a reaction may run inline).
  void Pump() {
    enum { kNothing, kWrite, kFinish } action = kNothing;
    {
      absl::MutexLock lock(&mutex_);
      if (writing_ || finished_) return;
      if (!pending_.empty() && !cancelled_.load()) {
        current_ = std::move(pending_.front());
        pending_.pop_front();
        writing_ = true;
        action = kWrite;
      } else if (engine_done_) {
        finished_ = true;
        action = kFinish;
      }
    }
    if (action == kWrite) StartWrite(&current_);
    if (action == kFinish) Finish(final_status_);
  }
  void Release() {
    if (references_.fetch_sub(1) == 1) delete this;
  }

  GenerationHost* const host_;
  const absl::Time arrival_;
  std::atomic<int> references_{2};  // gRPC's OnDone and the engine's OnFinished
  std::atomic<bool> cancelled_{false};
  absl::Mutex mutex_;
  std::deque<WorkerServiceGenerateStreamResponse> pending_ ABSL_GUARDED_BY(mutex_);
  WorkerServiceGenerateStreamResponse current_;  // the message being written
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool engine_done_ ABSL_GUARDED_BY(mutex_) = false;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  grpc::Status final_status_;  // written before engine_done_ is set, read after
};

}  // namespace

absl::StatusOr<std::unique_ptr<GenerationHost>> GenerationHost::Create(
    const slmgw::config::v1::WorkerConfig& config, const std::string& path, uint32_t max_text_bytes,
    std::shared_ptr<WorkerMetrics> metrics) {
  auto fail = [&](const absl::Status& status) {
    return absl::Status(status.code(), absl::StrCat("worker '", config.name(), "': cannot load ",
                                                    path, ": ", status.message()));
  };
  DecoderOptions options;
  absl::StatusOr<kernels::DType> dtype =
      kernels::ParseDType(config.dtype().empty() ? "f32" : config.dtype());
  if (!dtype.ok()) return fail(dtype.status());
  options.dtype = *dtype;
  absl::StatusOr<kernels::DType> kv_dtype =
      kernels::ParseDType(config.kv_dtype().empty() ? "bf16" : config.kv_dtype());
  if (!kv_dtype.ok()) return fail(kv_dtype.status());
  options.kv_dtype = *kv_dtype;
  options.threads = std::max<int>(1, config.threads());
  const int32_t max_batch = std::max<int32_t>(1, config.max_batch_sequences());
  const int32_t chunk = config.prefill_chunk_tokens() > 0 ? config.prefill_chunk_tokens() : 256;
  options.max_batch_tokens = chunk + max_batch;

  auto host = std::unique_ptr<GenerationHost>(new GenerationHost());
  host->name_ = config.name();
  host->dtype_name_ = std::string(kernels::DTypeName(options.dtype));
  host->max_text_bytes_ = max_text_bytes;
  host->max_input_tokens_ = config.max_input_tokens();
  host->default_max_tokens_ = config.default_max_tokens() > 0 ? config.default_max_tokens() : 256;
  host->metrics_ = std::move(metrics);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<DecoderModel>> model = DecoderModel::Load(path, options);
  if (!model.ok()) return fail(model.status());
  host->model_ = *std::move(model);
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  if (!file.ok()) return fail(file.status());
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizerFromGguf(**file);
  if (!tokenizer.ok()) return fail(tokenizer.status());
  host->tokenizer_ = *std::move(tokenizer);
  host->chat_family_ = DetectChatTemplateFamily(**file);
  host->detokenizer_ = std::make_unique<TokenizerDetokenizer>(*host->tokenizer_);

  GenerationEngine::Options engine_options;
  engine_options.name = absl::StrCat("worker '", config.name(), "'");
  engine_options.max_batch_sequences = max_batch;
  engine_options.kv_budget_bytes =
      static_cast<int64_t>(config.kv_cache_mb() > 0 ? config.kv_cache_mb() : 256) << 20;
  engine_options.max_queue_depth = static_cast<int32_t>(config.max_queue_depth());
  engine_options.prefill_chunk_tokens = chunk;
  engine_options.truncate_long_prompts = config.truncate_long_prompts();

  WorkerMetrics& m = *host->metrics_;
  const std::string& name = host->name_;
  host->queue_depth_gauge_ = &m.queue_depth.Add({{"model", name}});
  host->active_gauge_ = &m.active_sequences.Add({{"model", name}});
  host->kv_used_gauge_ = &m.kv_cache_used.Add({{"model", name}});
  host->batch_histogram_ = &m.batch_sequences.Add(
      {{"model", name}}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128});
  m.kv_cache_budget.Add({{"model", name}}).Set(static_cast<double>(engine_options.kv_budget_bytes));
  m.model_info.Add({{"model", name}, {"task", "text_generation"}, {"dtype", host->dtype_name_}})
      .Set(1);

  absl::StatusOr<std::unique_ptr<GenerationEngine>> engine =
      GenerationEngine::Create(*host->model_, *host->detokenizer_, engine_options, host.get());
  if (!engine.ok()) return fail(engine.status());
  host->engine_ = *std::move(engine);
  const DecoderHParams& hparams = host->model_->hparams();
  SLM_LOG(INFO) << "worker '" << name << "' loaded " << path << " (" << hparams.architecture << ", "
                << hparams.num_layers << " layers, vocab " << hparams.vocab_size << ", "
                << host->dtype_name_ << ", KV " << kernels::DTypeName(options.kv_dtype) << ", "
                << max_batch << " sequences, " << (engine_options.kv_budget_bytes >> 20)
                << " MiB KV) in " << absl::ToDoubleMilliseconds(absl::Now() - start) << " ms";
  return host;
}

GenerationHost::~GenerationHost() { engine_.reset(); }

absl::StatusOr<GenerationHost::Prepared> GenerationHost::Prepare(
    const std::string& prompt,
    const google::protobuf::RepeatedPtrField<slmgw::v1::ChatMessage>& messages,
    const slmgw::v1::SamplingParams& sampling, grpc::CallbackServerContext* context) const {
  Prepared prepared;
  prepared.arrival = absl::Now();
  if (prompt.empty() == messages.empty()) {
    return absl::InvalidArgumentError(prompt.empty()
                                          ? "prompt: empty, and no messages (give one of them)"
                                          : "prompt and messages: give one of them, not both");
  }
  size_t bytes = prompt.size();
  for (const auto& message : messages) bytes += message.content().size();
  if (bytes > max_text_bytes_) {
    return absl::InvalidArgumentError(absl::StrCat("prompt: ", bytes,
                                                   " bytes exceeds the limit of ", max_text_bytes_,
                                                   " bytes (max_text_bytes)"));
  }
  GenerationRequest& request = prepared.request;
  if (!prompt.empty()) {
    request.prompt = tokenizer_->Encode(prompt, /*add_special=*/true);
  } else {
    if (!chat_family_.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("messages: worker '", name_, "' has no chat template (",
                       chat_family_.status().message(), "); send a prompt instead"));
    }
    std::vector<ChatMessage> chat;
    for (const auto& message : messages) chat.push_back({message.role(), message.content()});
    absl::StatusOr<std::string> text = ApplyChatTemplate(*chat_family_, chat, true);
    if (!text.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("messages: ", text.status().message()));
    }
    EncodeOptions encode;
    encode.add_special = true;
    encode.parse_special = true;
    request.prompt = tokenizer_->Encode(*text, encode);
  }
  if (max_input_tokens_ > 0 && request.prompt.size() > max_input_tokens_) {
    return absl::InvalidArgumentError(absl::StrCat("prompt: ", request.prompt.size(),
                                                   " tokens exceed max_input_tokens (",
                                                   max_input_tokens_, ")"));
  }
  request.max_tokens =
      static_cast<int32_t>(sampling.max_tokens() > 0 ? sampling.max_tokens() : default_max_tokens_);
  if (sampling.max_tokens() > (1u << 24)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampling.max_tokens: expected at most 16777216, got ", sampling.max_tokens()));
  }
  request.sampling.temperature = sampling.temperature();
  if (sampling.top_k() > static_cast<uint32_t>(model_->hparams().vocab_size)) {
    request.sampling.top_k = 0;  // every token: the same as no top-k
  } else {
    request.sampling.top_k = static_cast<int32_t>(sampling.top_k());
  }
  request.sampling.top_p = sampling.top_p() == 0 ? 1.0f : sampling.top_p();
  request.sampling.min_p = sampling.min_p();
  request.sampling.repetition_penalty =
      sampling.repetition_penalty() == 0 ? 1.0f : sampling.repetition_penalty();
  request.sampling.seed = sampling.seed();
  SLM_RETURN_IF_ERROR(ValidateSamplingConfig(request.sampling));
  if (sampling.stop_size() > kMaxStopStrings) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.stop: at most ", kMaxStopStrings,
                                                   " stop strings, got ", sampling.stop_size()));
  }
  for (int i = 0; i < sampling.stop_size(); ++i) {
    if (sampling.stop(i).size() > kMaxStopBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sampling.stop[", i, "]: ", sampling.stop(i).size(), " bytes, at most ", kMaxStopBytes));
    }
    request.stop.push_back(sampling.stop(i));
  }
  request.want_logprobs = sampling.return_logprobs();
  const auto deadline = context->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    request.deadline = absl::FromChrono(deadline);
  }
  return prepared;
}

void GenerationHost::Complete(const char* operation, const absl::Status& status,
                              const GenerationResult& result, absl::Time arrival,
                              slmgw::v1::WorkerReport* report) {
  const absl::Time now = absl::Now();
  const std::string outcome = monitoring::OutcomeLabel(static_cast<int>(status.code()));
  WorkerMetrics& m = *metrics_;
  m.requests.Add({{"model", name_}, {"operation", operation}, {"outcome", outcome}}).Increment();
  m.latency.Add({{"model", name_}, {"operation", operation}}, monitoring::LatencyBucketsSeconds())
      .Observe(absl::ToDoubleSeconds(now - arrival));
  m.tokens.Add({{"model", name_}, {"direction", "input"}}).Increment(result.input_tokens);
  m.tokens.Add({{"model", name_}, {"direction", "output"}}).Increment(result.output_tokens);
  if (result.output_tokens > 0) {
    m.time_to_first_token.Add({{"model", name_}}, monitoring::LatencyBucketsSeconds())
        .Observe(absl::ToDoubleSeconds(result.time_to_first_token));
  }
  if (result.output_tokens > 1) {
    m.time_per_output_token.Add({{"model", name_}}, monitoring::LatencyBucketsSeconds())
        .Observe(absl::ToDoubleSeconds(result.decode_time) / (result.output_tokens - 1));
  }
  m.queue_time.Add({{"model", name_}}, monitoring::LatencyBucketsSeconds())
      .Observe(absl::ToDoubleSeconds(result.queue_time));
  if (report == nullptr) return;
  report->set_model(name_);
  report->set_worker(name_);
  report->mutable_usage()->set_input_tokens(result.input_tokens);
  report->mutable_usage()->set_output_tokens(result.output_tokens);
  report->set_queue_us(absl::ToInt64Microseconds(result.queue_time));
  report->set_compute_us(absl::ToInt64Microseconds(now - arrival - result.queue_time));
  *report->mutable_load() = Load();
}

void GenerationHost::RecordRefusal(const char* operation, const absl::Status& status,
                                   absl::Time arrival) {
  const std::string outcome = monitoring::OutcomeLabel(static_cast<int>(status.code()));
  metrics_->requests.Add({{"model", name_}, {"operation", operation}, {"outcome", outcome}})
      .Increment();
  metrics_->latency
      .Add({{"model", name_}, {"operation", operation}}, monitoring::LatencyBucketsSeconds())
      .Observe(absl::ToDoubleSeconds(absl::Now() - arrival));
}

grpc::ServerUnaryReactor* GenerationHost::Generate(
    grpc::CallbackServerContext* context, const slmgw::v1::WorkerServiceGenerateRequest* request,
    slmgw::v1::WorkerServiceGenerateResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const absl::Time arrival = absl::Now();
  absl::StatusOr<Prepared> prepared =
      Prepare(request->prompt(), request->messages(), request->sampling(), context);
  if (!prepared.ok()) {
    RecordRefusal("generate", prepared.status(), arrival);
    reactor->Finish(ToGrpcStatus(prepared.status()));
    return reactor;
  }
  auto* sink = new UnaryGeneration(this, context, reactor, response, arrival);
  if (absl::Status queued = engine_->Submit(std::move(prepared->request), sink); !queued.ok()) {
    delete sink;
    RecordRefusal("generate", queued, arrival);
    reactor->Finish(ToGrpcStatus(queued));
  }
  queue_depth_gauge_->Set(engine_->load().queue_depth);
  return reactor;
}

grpc::ServerWriteReactor<WorkerServiceGenerateStreamResponse>* GenerationHost::GenerateStream(
    grpc::CallbackServerContext* context,
    const slmgw::v1::WorkerServiceGenerateStreamRequest* request) {
  const absl::Time arrival = absl::Now();
  auto* stream = new StreamGeneration(this, arrival);
  absl::StatusOr<Prepared> prepared =
      Prepare(request->prompt(), request->messages(), request->sampling(), context);
  absl::Status status = prepared.status();
  if (status.ok()) status = engine_->Submit(std::move(prepared->request), stream);
  if (!status.ok()) {
    RecordRefusal("generate_stream", status, arrival);
    stream->Refuse(status);
  }
  queue_depth_gauge_->Set(engine_->load().queue_depth);
  return stream;
}

slmgw::v1::LoadReport GenerationHost::Load() const {
  const GenerationLoad load = engine_->load();
  slmgw::v1::LoadReport report;
  report.set_queue_depth(load.queue_depth);
  report.set_in_flight(load.active_sequences);
  report.set_capacity(load.max_batch_sequences);
  report.set_max_queue_depth(load.max_queue_depth);
  report.set_kv_cache_used_bytes(load.kv_bytes_used);
  report.set_kv_cache_budget_bytes(load.kv_budget_bytes);
  return report;
}

slmgw::v1::ModelInfo GenerationHost::Describe() const {
  slmgw::v1::ModelInfo info;
  info.set_name(model_->hparams().name);
  info.set_task("text_generation");
  info.set_dtype(dtype_name_);
  info.set_max_input_tokens(static_cast<uint32_t>(
      max_input_tokens_ > 0 ? max_input_tokens_ : model_->options().max_context));
  return info;
}

void GenerationHost::OnStep(int32_t sequences, int32_t rows, absl::Duration elapsed,
                            const GenerationLoad& load) {
  batch_histogram_->Observe(sequences);
  OnLoadChanged(load);
}

void GenerationHost::OnLoadChanged(const GenerationLoad& load) {
  active_gauge_->Set(load.active_sequences);
  kv_used_gauge_->Set(static_cast<double>(load.kv_bytes_used));
  queue_depth_gauge_->Set(load.queue_depth);
}

}  // namespace slm::workers
