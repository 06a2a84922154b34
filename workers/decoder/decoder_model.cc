// The shared decoder graph (pre-norm transformer with RoPE GQA attention and SwiGLU) behind
// DecoderModel: Load reads hyperparameters, asks the architecture table for each layer's
// tensors and prepares one fused QKV, output, gate-up and down linear per layer; Forward runs a
// batch of sequence steps through it.
#include "workers/decoder/decoder_model.h"

#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "kernels/decoder_ops.h"
#include "kernels/gemv.h"
#include "kernels/kv_attention.h"
#include "workers/decoder/architectures.h"
#include "workers/decoder/blocks.h"
#include "workers/decoder/hparams.h"
#include "workers/gguf/ggml_types.h"
#include "workers/gguf/gguf_file.h"
#include "workers/tokenizer/tokenizer.h"

namespace slm::workers {
namespace {

using decoder::KvCacheImpl;
using decoder::LayerTensors;

// Sets the calling thread's OpenMP thread count for the scope and restores it.
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int threads) : previous_(omp_get_max_threads()) {
    omp_set_num_threads(threads);
  }
  ~ScopedOmpThreads() { omp_set_num_threads(previous_); }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  int previous_;
};

struct Layer {
  std::vector<float> attn_norm;
  std::vector<float> ffn_norm;
  std::unique_ptr<kernels::DecoderLinear> qkv;          // [(h + 2 kv) * d, hidden] (+ bias)
  std::unique_ptr<kernels::DecoderLinear> attn_output;  // [hidden, h * d]
  std::unique_ptr<kernels::DecoderLinear> gate_up;      // [2 * ffn, hidden]
  std::unique_ptr<kernels::DecoderLinear> down;         // [hidden, ffn]
};

// The calling thread's CPU time in ms: load-time figures that other processes on a shared
// machine do not inflate (Load's work runs on the calling thread, except oneDNN reorders that
// may fan out to OpenMP threads when threads > 1).
double ThreadCpuMs() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return 1e3 * static_cast<double>(now.tv_sec) + 1e-6 * static_cast<double>(now.tv_nsec);
}

double MillisecondsSince(double start) { return ThreadCpuMs() - start; }

class DecoderModelImpl final : public DecoderModel {
 public:
  const DecoderHParams& hparams() const override { return hparams_; }
  const DecoderOptions& options() const override { return options_; }

  absl::StatusOr<std::unique_ptr<KvCache>> NewSequenceCache(int64_t max_tokens) const override {
    if (max_tokens < 1 || max_tokens > options_.max_context) {
      return absl::InvalidArgumentError(absl::StrCat("cache size ", max_tokens,
                                                     " tokens is outside 1..max_context (",
                                                     options_.max_context, ")"));
    }
    SLM_ASSIGN_OR_RETURN(
        std::unique_ptr<KvCacheImpl> cache,
        KvCacheImpl::Create(this, max_tokens, hparams_.num_layers, hparams_.num_kv_heads,
                            hparams_.head_dim, options_.kv_dtype));
    return std::unique_ptr<KvCache>(std::move(cache));
  }

  int64_t KvBytesPerToken() const override {
    // Keys and values of every layer, plus int8's two f32 scales per kv head (allocations add
    // alignment padding on top; KvCache::bytes() has the exact size).
    const int64_t elements = hparams_.num_layers * 2 * hparams_.num_kv_heads * hparams_.head_dim;
    switch (options_.kv_dtype) {
      case kernels::DType::kF32:
        return elements * 4;
      case kernels::DType::kBF16:
        return elements * 2;
      case kernels::DType::kInt8:
        return elements + hparams_.num_layers * 2 * hparams_.num_kv_heads * 4;
    }
    return elements * 4;
  }

  absl::Status Forward(absl::Span<const SequenceStep> steps, float* logits) const override;

  absl::Status LoadFrom(const GgufFile& file, const std::string& path, DecoderOptions options);
  absl::Status LoadEmbeddings(const GgufFile& file);
  // Rows per call of the head: the GEMV's row limit for bf16/int8, so the [vocab, hidden] head
  // (the largest matrix of a small model) is stored and prepared once, not also for oneDNN;
  // logits for more rows (batched decode, prompt log-probabilities) take several passes.
  int64_t HeadRows() const {
    return options_.dtype == kernels::DType::kF32
               ? options_.max_batch_tokens
               : std::min<int64_t>(options_.max_batch_tokens, kernels::PackedMatrix::kMaxRows);
  }

 private:
  absl::Status Validate(absl::Span<const SequenceStep> steps, int64_t* total_rows,
                        int64_t* logit_rows) const;

  DecoderHParams hparams_;
  DecoderOptions options_;
  kernels::RopeStyle rope_style_ = kernels::RopeStyle::kInterleaved;
  kernels::RopeTable rope_;
  // token_embd as stored in the GGUF (any supported type), one row dequantized per token:
  // [vocab] rows of embedding_row_bytes_.
  GgmlType embedding_type_ = GgmlType::kF32;
  std::vector<uint8_t> embedding_bytes_;
  int64_t embedding_row_bytes_ = 0;
  std::vector<Layer> layers_;
  std::vector<float> output_norm_;
  std::unique_ptr<kernels::DecoderLinear> output_;  // [vocab, hidden]
};

absl::Status DecoderModelImpl::LoadFrom(const GgufFile& file, const std::string& path,
                                        DecoderOptions options) {
  const auto load_start = std::chrono::steady_clock::now();  // wall: total_ms
  path_ = path;
  SLM_ASSIGN_OR_RETURN(hparams_, decoder::ReadHParams(file));
  SLM_ASSIGN_OR_RETURN(const decoder::ArchitectureSpec* spec,
                       decoder::FindArchitecture(hparams_.architecture));
  if (options.max_context == 0) options.max_context = hparams_.context_length;
  if (options.max_context < 1 || options.max_context > hparams_.context_length) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": max_context ", options.max_context, " is outside 1..",
                     hparams_.architecture, ".context_length (", hparams_.context_length, ")"));
  }
  if (options.max_batch_tokens < 1 || options.max_batch_tokens > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_tokens ", options.max_batch_tokens, " is outside 1..65536"));
  }
  if (options.threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat("threads ", options.threads, " is negative"));
  }
  if (options.threads == 0) options.threads = omp_get_max_threads();
  options_ = options;
  ScopedOmpThreads scoped_threads(options_.threads);
  rope_style_ = spec->rope_style;
  SLM_ASSIGN_OR_RETURN(rope_, decoder::ReadRopeTable(file, options_.max_context, &hparams_));

  const DecoderHParams& hp = hparams_;
  const int64_t q_dim = hp.num_heads * hp.head_dim;
  const int64_t qkv_dim = (hp.num_heads + 2 * hp.num_kv_heads) * hp.head_dim;
  const int64_t rows = options_.max_batch_tokens;
  const kernels::DType dtype = options_.dtype;
  double read_ms = 0;
  double prepare_ms[5] = {0, 0, 0, 0, 0};  // qkv, attn_output, gate_up, down, output
  SLM_RETURN_IF_ERROR(LoadEmbeddings(file));
  layers_.resize(static_cast<size_t>(hp.num_layers));
  for (int64_t l = 0; l < hp.num_layers; ++l) {
    double start = ThreadCpuMs();
    LayerTensors tensors;
    SLM_RETURN_IF_ERROR(spec->load_layer(file, hp, l, &tensors));
    read_ms += MillisecondsSince(start);
    Layer& layer = layers_[static_cast<size_t>(l)];
    layer.attn_norm = std::move(tensors.attn_norm);
    layer.ffn_norm = std::move(tensors.ffn_norm);
    start = ThreadCpuMs();
    SLM_ASSIGN_OR_RETURN(
        layer.qkv,
        kernels::DecoderLinear::Create(tensors.qkv.data(),
                                       tensors.qkv_bias.empty() ? nullptr : tensors.qkv_bias.data(),
                                       qkv_dim, hp.hidden_size, dtype, rows));
    prepare_ms[0] += MillisecondsSince(start);
    start = ThreadCpuMs();
    SLM_ASSIGN_OR_RETURN(layer.attn_output,
                         kernels::DecoderLinear::Create(tensors.attn_output.data(), nullptr,
                                                        hp.hidden_size, q_dim, dtype, rows));
    prepare_ms[1] += MillisecondsSince(start);
    start = ThreadCpuMs();
    SLM_ASSIGN_OR_RETURN(layer.gate_up, kernels::DecoderLinear::Create(
                                            tensors.gate_up.data(), nullptr, 2 * hp.ffn_size,
                                            hp.hidden_size, dtype, rows));
    prepare_ms[2] += MillisecondsSince(start);
    start = ThreadCpuMs();
    SLM_ASSIGN_OR_RETURN(
        layer.down, kernels::DecoderLinear::Create(tensors.down.data(), nullptr, hp.hidden_size,
                                                   hp.ffn_size, dtype, rows));
    prepare_ms[3] += MillisecondsSince(start);
  }
  SLM_ASSIGN_OR_RETURN(output_norm_,
                       decoder::ReadVector(file, "output_norm.weight", hp.hidden_size));
  double start = ThreadCpuMs();
  {
    // A tied head is token_embd itself; f32 only while the head is prepared.
    SLM_ASSIGN_OR_RETURN(
        std::vector<float> head,
        decoder::ReadMatrix(file, hp.tied_output ? "token_embd.weight" : "output.weight",
                            hp.vocab_size, hp.hidden_size));
    SLM_ASSIGN_OR_RETURN(
        output_, kernels::DecoderLinear::Create(head.data(), nullptr, hp.vocab_size, hp.hidden_size,
                                                dtype, HeadRows()));
  }
  prepare_ms[4] = MillisecondsSince(start);
  if (file.Has("tokenizer.ggml.model")) {
    SLM_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizerFromGguf(file));
    tokenizer_ = std::move(tokenizer);
  }
  const double layers = static_cast<double>(hp.num_layers);
  load_stats_.read_ms_per_layer = read_ms / layers;
  load_stats_.qkv_ms_per_layer = prepare_ms[0] / layers;
  load_stats_.attn_output_ms_per_layer = prepare_ms[1] / layers;
  load_stats_.gate_up_ms_per_layer = prepare_ms[2] / layers;
  load_stats_.down_ms_per_layer = prepare_ms[3] / layers;
  load_stats_.output_head_ms = prepare_ms[4];
  load_stats_.weight_bytes = output_->PreparedWeightBytes();
  for (const Layer& layer : layers_) {
    load_stats_.weight_bytes +=
        layer.qkv->PreparedWeightBytes() + layer.attn_output->PreparedWeightBytes() +
        layer.gate_up->PreparedWeightBytes() + layer.down->PreparedWeightBytes();
  }
  load_stats_.total_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start)
          .count();
  SLM_LOG(INFO) << path << ": " << hp.architecture << " " << hp.num_layers << " layers, "
                << kernels::DTypeName(dtype) << " weights; per layer: read+dequantize "
                << read_ms / layers << " ms, prepare qkv " << prepare_ms[0] / layers
                << " ms, attn_output " << prepare_ms[1] / layers << " ms, gate_up "
                << prepare_ms[2] / layers << " ms, down " << prepare_ms[3] / layers
                << " ms; output head " << prepare_ms[4] << " ms";
  return absl::OkStatus();
}

absl::Status DecoderModelImpl::LoadEmbeddings(const GgufFile& file) {
  // Shape and type checks (and the error messages) of ReadF32, on one row's worth.
  SLM_ASSIGN_OR_RETURN(const GgufTensor* tensor, file.FindTensor("token_embd.weight"));
  int64_t block_elements = 0, block_bytes = 0;
  if (!GgmlTypeBlockInfo(tensor->type, &block_elements, &block_bytes) ||
      hparams_.hidden_size % block_elements != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.path(), ": tensor 'token_embd.weight' has type ", GgmlTypeName(tensor->type),
        " whose blocks do not divide a row of ", hparams_.hidden_size));
  }
  embedding_type_ = tensor->type;
  embedding_row_bytes_ = hparams_.hidden_size / block_elements * block_bytes;
  if (static_cast<uint64_t>(embedding_row_bytes_ * hparams_.vocab_size) != tensor->size_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": tensor 'token_embd.weight' holds ", tensor->size_bytes,
                     " bytes, expected ", embedding_row_bytes_ * hparams_.vocab_size));
  }
  std::vector<float> row(static_cast<size_t>(hparams_.hidden_size));
  absl::Status status =
      DequantizeToF32(embedding_type_, tensor->data, hparams_.hidden_size, row.data());
  if (!status.ok()) {
    return absl::Status(
        status.code(),
        absl::StrCat(file.path(), ": tensor 'token_embd.weight': ", status.message()));
  }
  embedding_bytes_.assign(tensor->data, tensor->data + tensor->size_bytes);
  return absl::OkStatus();
}

absl::Status DecoderModelImpl::Validate(absl::Span<const SequenceStep> steps, int64_t* total_rows,
                                        int64_t* logit_rows) const {
  if (steps.empty()) return absl::InvalidArgumentError("Forward needs at least one step");
  absl::flat_hash_set<const KvCache*> seen;
  *total_rows = 0;
  *logit_rows = 0;
  for (size_t s = 0; s < steps.size(); ++s) {
    const SequenceStep& step = steps[s];
    if (step.cache == nullptr || step.tokens == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("step ", s, ": null cache or tokens"));
    }
    const auto* cache = dynamic_cast<const KvCacheImpl*>(step.cache);
    if (cache == nullptr || cache->owner() != this) {
      return absl::InvalidArgumentError(
          absl::StrCat("step ", s, ": the cache was not created by this model"));
    }
    if (!seen.insert(step.cache).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("step ", s, ": the same cache appears twice in one Forward call"));
    }
    if (step.n_tokens < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("step ", s, ": n_tokens is ", step.n_tokens, ", expected >= 1"));
    }
    if (cache->size() + step.n_tokens > cache->capacity()) {
      return absl::OutOfRangeError(
          absl::StrCat("step ", s, ": ", step.n_tokens, " tokens at position ", cache->size(),
                       " exceed the sequence's capacity of ", cache->capacity(),
                       " tokens (prompt plus generated tokens longer than the context)"));
    }
    for (int32_t t = 0; t < step.n_tokens; ++t) {
      if (step.tokens[t] < 0 || step.tokens[t] >= hparams_.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("step ", s, ": token ", t, " is id ",
                                                       step.tokens[t], ", outside [0, ",
                                                       hparams_.vocab_size, ")"));
      }
    }
    *total_rows += step.n_tokens;
    *logit_rows += step.want_all_logits ? step.n_tokens : 1;
  }
  if (*total_rows > options_.max_batch_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("Forward carries ", *total_rows,
                                                   " tokens, more than max_batch_tokens (",
                                                   options_.max_batch_tokens, ")"));
  }
  return absl::OkStatus();
}

absl::Status DecoderModelImpl::Forward(absl::Span<const SequenceStep> steps, float* logits) const {
  int64_t total = 0;
  int64_t logit_rows = 0;
  SLM_RETURN_IF_ERROR(Validate(steps, &total, &logit_rows));
  if (logits == nullptr) return absl::InvalidArgumentError("logits is null");
  ScopedOmpThreads scoped_threads(options_.threads);
  const DecoderHParams& hp = hparams_;
  const int64_t hidden = hp.hidden_size;
  const int64_t d = hp.head_dim;
  const int64_t q_dim = hp.num_heads * d;
  const int64_t kv_dim = hp.num_kv_heads * d;
  const int64_t qkv_dim = q_dim + 2 * kv_dim;

  // Row r of the batch: its position in its sequence (a step's rows are consecutive).
  std::vector<int64_t> row_position(static_cast<size_t>(total));
  std::vector<KvCacheImpl*> caches(steps.size());
  std::vector<float> x(static_cast<size_t>(total * hidden));
  {
    int64_t r = 0;
    for (size_t s = 0; s < steps.size(); ++s) {
      caches[s] = static_cast<KvCacheImpl*>(steps[s].cache);
      for (int32_t t = 0; t < steps[s].n_tokens; ++t, ++r) {
        row_position[r] = caches[s]->size() + t;
        // Cannot fail: the type and row geometry were checked at load.
        DequantizeToF32(embedding_type_,
                        embedding_bytes_.data() + steps[s].tokens[t] * embedding_row_bytes_, hidden,
                        x.data() + r * hidden)
            .IgnoreError();
      }
    }
  }
  std::vector<float> normed(static_cast<size_t>(total * hidden));
  std::vector<float> qkv(static_cast<size_t>(total * qkv_dim));
  std::vector<float> attention(static_cast<size_t>(total * q_dim));
  std::vector<float> projected(static_cast<size_t>(total * hidden));
  std::vector<float> gate_up(static_cast<size_t>(total * 2 * hp.ffn_size));
  std::vector<float> activated(static_cast<size_t>(total * hp.ffn_size));
  kernels::AttentionOptions attention_options;
  attention_options.scale = 1.0f / std::sqrt(static_cast<float>(d));
  attention_options.sliding_window = hp.sliding_window;
  // RoPE cos/sin of each row's position, once per call for every layer's Q and K.
  std::vector<float> rope_angles(static_cast<size_t>(total * rope_.rotary_dim()));
  kernels::RopeAngles(row_position.data(), total, rope_, rope_angles.data());

  kernels::RmsNorm(x.data(), total, hidden, layers_[0].attn_norm.data(), hp.rms_epsilon,
                   normed.data());
  for (int64_t l = 0; l < hp.num_layers; ++l) {
    const Layer& layer = layers_[static_cast<size_t>(l)];
    SLM_RETURN_IF_ERROR(layer.qkv->Forward(normed.data(), total, qkv.data()));
    kernels::ApplyRopeAngles(qkv.data(), total, hp.num_heads, d, qkv_dim, rope_angles.data(),
                             rope_, rope_style_);
    kernels::ApplyRopeAngles(qkv.data() + q_dim, total, hp.num_kv_heads, d, qkv_dim,
                             rope_angles.data(), rope_, rope_style_);
    int64_t first_row = 0;
    kernels::KvLayerView next_view;
    for (size_t s = 0; s < steps.size(); ++s) {
      const kernels::KvLayerView view = caches[s]->Layer(l);
      // While this sequence attends, its successor's rows of this layer are prefetched.
      attention_options.prefetch_next = nullptr;
      if (s + 1 < steps.size()) {
        next_view = caches[s + 1]->Layer(l);
        attention_options.prefetch_next = &next_view;
        attention_options.prefetch_next_length = caches[s + 1]->size() + steps[s + 1].n_tokens;
      }
      const float* rows_qkv = qkv.data() + first_row * qkv_dim;
      const int64_t start = caches[s]->size();
      SLM_RETURN_IF_ERROR(kernels::WriteKv(view, rows_qkv + q_dim, rows_qkv + q_dim + kv_dim,
                                           qkv_dim, start, steps[s].n_tokens));
      SLM_RETURN_IF_ERROR(
          kernels::CachedAttention(view, rows_qkv, qkv_dim, start, steps[s].n_tokens, hp.num_heads,
                                   attention_options, attention.data() + first_row * q_dim, q_dim));
      first_row += steps[s].n_tokens;
    }
    SLM_RETURN_IF_ERROR(layer.attn_output->Forward(attention.data(), total, projected.data()));
    kernels::AddRmsNorm(x.data(), projected.data(), total, hidden, layer.ffn_norm.data(),
                        hp.rms_epsilon, normed.data());
    SLM_RETURN_IF_ERROR(layer.gate_up->Forward(normed.data(), total, gate_up.data()));
    kernels::SwiGlu(gate_up.data(), gate_up.data() + hp.ffn_size, total, hp.ffn_size,
                    2 * hp.ffn_size, activated.data());
    SLM_RETURN_IF_ERROR(layer.down->Forward(activated.data(), total, projected.data()));
    // The residual add fused with the next norm: the next layer's, or the output norm.
    const float* next_norm = l + 1 < hp.num_layers
                                 ? layers_[static_cast<size_t>(l + 1)].attn_norm.data()
                                 : output_norm_.data();
    kernels::AddRmsNorm(x.data(), projected.data(), total, hidden, next_norm, hp.rms_epsilon,
                        normed.data());
  }

  // The head on the rows whose logits are wanted (normed now holds the output norm).
  std::vector<float> wanted(static_cast<size_t>(logit_rows * hidden));
  int64_t out_row = 0;
  int64_t r = 0;
  for (const SequenceStep& step : steps) {
    const int64_t first = step.want_all_logits ? r : r + step.n_tokens - 1;
    const int64_t count = r + step.n_tokens - first;
    std::copy_n(normed.data() + first * hidden, count * hidden, wanted.data() + out_row * hidden);
    out_row += count;
    r += step.n_tokens;
  }
  for (int64_t first = 0; first < logit_rows; first += HeadRows()) {
    const int64_t count = std::min(HeadRows(), logit_rows - first);
    SLM_RETURN_IF_ERROR(
        output_->Forward(wanted.data() + first * hidden, count, logits + first * hp.vocab_size));
  }
  for (size_t s = 0; s < steps.size(); ++s) {
    caches[s]->set_size(caches[s]->size() + steps[s].n_tokens);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DecoderModel>> DecoderModel::Load(const std::string& gguf_path,
                                                                 DecoderOptions options) {
  SLM_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(gguf_path));
  auto model = std::make_unique<DecoderModelImpl>();
  SLM_RETURN_IF_ERROR(model->LoadFrom(*file, gguf_path, options));
  return std::unique_ptr<DecoderModel>(std::move(model));
}

}  // namespace slm::workers
