#include "workers/encoder/bert.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "kernels/ops.h"

namespace slm::workers {
namespace {

using kernels::Activation;
using kernels::DType;
using kernels::Linear;

// Generous limits that keep a corrupt header from asking for absurd allocations.
constexpr int64_t kMaxHidden = 1 << 14;
constexpr int64_t kMaxLayers = 1 << 10;
constexpr int64_t kMaxContext = 1 << 16;

absl::StatusOr<int64_t> ReadPositiveInt(const GgufFile& file, const std::string& key,
                                        int64_t max_value) {
  SLM_ASSIGN_OR_RETURN(int64_t value, file.GetInt(key));
  if (value < 1 || value > max_value) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": ", key, " is ", value, "; expected 1..", max_value));
  }
  return value;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace

absl::StatusOr<BertHparams> ReadBertHparams(const GgufFile& file) {
  BertHparams hparams;
  SLM_ASSIGN_OR_RETURN(std::string architecture, file.GetString("general.architecture"));
  if (architecture != "bert") {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": general.architecture is \"",
                                                   architecture, "\"; expected \"bert\""));
  }
  SLM_ASSIGN_OR_RETURN(hparams.context_length,
                       ReadPositiveInt(file, "bert.context_length", kMaxContext));
  SLM_ASSIGN_OR_RETURN(hparams.hidden_size,
                       ReadPositiveInt(file, "bert.embedding_length", kMaxHidden));
  SLM_ASSIGN_OR_RETURN(hparams.num_layers, ReadPositiveInt(file, "bert.block_count", kMaxLayers));
  SLM_ASSIGN_OR_RETURN(hparams.ffn_size,
                       ReadPositiveInt(file, "bert.feed_forward_length", 4 * kMaxHidden));
  SLM_ASSIGN_OR_RETURN(hparams.num_heads,
                       ReadPositiveInt(file, "bert.attention.head_count", kMaxHidden));
  if (hparams.hidden_size % hparams.num_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": bert.embedding_length ", hparams.hidden_size,
                     " is not a multiple of bert.attention.head_count ", hparams.num_heads));
  }
  SLM_ASSIGN_OR_RETURN(double epsilon, file.GetFloat("bert.attention.layer_norm_epsilon"));
  if (!(epsilon > 0 && epsilon < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(),
                                                   ": bert.attention.layer_norm_epsilon is ",
                                                   epsilon, "; expected a value in (0, 1)"));
  }
  hparams.layer_norm_epsilon = static_cast<float>(epsilon);
  SLM_ASSIGN_OR_RETURN(const GgufTensor* token_embd, file.FindTensor("token_embd.weight"));
  if (token_embd->dims.size() != 2 || token_embd->dims[0] != hparams.hidden_size) {
    std::vector<int64_t> torch_shape(token_embd->dims.rbegin(), token_embd->dims.rend());
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": tensor token_embd.weight has shape ", ShapeString(torch_shape),
                     "; expected [vocab, ", hparams.hidden_size, "]"));
  }
  hparams.vocab_size = token_embd->dims[1];
  return hparams;
}

absl::StatusOr<std::vector<float>> ReadTensor(const GgufFile& file, const std::string& name,
                                              const std::vector<int64_t>& torch_shape) {
  SLM_ASSIGN_OR_RETURN(const GgufTensor* tensor, file.FindTensor(name));
  std::vector<int64_t> ggml_dims(torch_shape.rbegin(), torch_shape.rend());
  std::vector<int64_t> actual = tensor->dims;
  while (actual.size() > 1 && actual.back() == 1) actual.pop_back();
  if (actual != ggml_dims) {
    std::vector<int64_t> actual_torch(tensor->dims.rbegin(), tensor->dims.rend());
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": tensor ", name, " has shape ",
                                                   ShapeString(actual_torch), "; expected ",
                                                   ShapeString(torch_shape)));
  }
  return file.ReadF32(name, ggml_dims);
}

absl::StatusOr<std::unique_ptr<BertGraph>> BertGraph::Load(const GgufFile& file, DType dtype,
                                                           int64_t max_tokens) {
  auto graph = std::unique_ptr<BertGraph>(new BertGraph());
  SLM_ASSIGN_OR_RETURN(graph->hparams_, ReadBertHparams(file));
  const BertHparams& hp = graph->hparams_;
  if (max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens is ", max_tokens, "; expected at least 1"));
  }
  graph->max_tokens_ = std::min(max_tokens, hp.context_length);
  const int64_t hidden = hp.hidden_size;
  const int64_t rows = graph->max_tokens_;

  SLM_ASSIGN_OR_RETURN(graph->token_embd_,
                       ReadTensor(file, "token_embd.weight", {hp.vocab_size, hidden}));
  SLM_ASSIGN_OR_RETURN(graph->position_embd_,
                       ReadTensor(file, "position_embd.weight", {hp.context_length, hidden}));
  graph->position_embd_.resize(rows * hidden);
  if (file.FindTensor("token_types.weight").ok()) {
    SLM_ASSIGN_OR_RETURN(const GgufTensor* types, file.FindTensor("token_types.weight"));
    if (types->dims.size() != 2 || types->dims[0] != hidden || types->dims[1] < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          file.path(), ": tensor token_types.weight must have shape [types, ", hidden, "]"));
    }
    SLM_ASSIGN_OR_RETURN(graph->token_type0_,
                         ReadTensor(file, "token_types.weight", {types->dims[1], hidden}));
    graph->token_type0_.resize(hidden);
  } else {
    graph->token_type0_.assign(hidden, 0.0f);
  }
  SLM_ASSIGN_OR_RETURN(graph->embd_norm_gamma_,
                       ReadTensor(file, "token_embd_norm.weight", {hidden}));
  SLM_ASSIGN_OR_RETURN(graph->embd_norm_beta_, ReadTensor(file, "token_embd_norm.bias", {hidden}));

  graph->layers_.resize(hp.num_layers);
  for (int64_t i = 0; i < hp.num_layers; ++i) {
    const std::string prefix = absl::StrCat("blk.", i, ".");
    Layer& layer = graph->layers_[i];
    // Q, K and V stacked into one [3*hidden, hidden] weight: one matmul instead of three.
    std::vector<float> qkv_weight, qkv_bias;
    qkv_weight.reserve(3 * hidden * hidden);
    qkv_bias.reserve(3 * hidden);
    for (const char* part : {"attn_q", "attn_k", "attn_v"}) {
      SLM_ASSIGN_OR_RETURN(std::vector<float> weight,
                           ReadTensor(file, prefix + part + ".weight", {hidden, hidden}));
      SLM_ASSIGN_OR_RETURN(std::vector<float> bias,
                           ReadTensor(file, prefix + part + ".bias", {hidden}));
      qkv_weight.insert(qkv_weight.end(), weight.begin(), weight.end());
      qkv_bias.insert(qkv_bias.end(), bias.begin(), bias.end());
    }
    SLM_ASSIGN_OR_RETURN(layer.qkv, Linear::Create(qkv_weight.data(), qkv_bias.data(), 3 * hidden,
                                                   hidden, dtype, Activation::kNone, rows));

    auto make_linear = [&](const std::string& name, int64_t out, int64_t in,
                           Activation activation) -> absl::StatusOr<std::unique_ptr<Linear>> {
      SLM_ASSIGN_OR_RETURN(std::vector<float> weight,
                           ReadTensor(file, prefix + name + ".weight", {out, in}));
      SLM_ASSIGN_OR_RETURN(std::vector<float> bias,
                           ReadTensor(file, prefix + name + ".bias", {out}));
      return Linear::Create(weight.data(), bias.data(), out, in, dtype, activation, rows);
    };
    SLM_ASSIGN_OR_RETURN(layer.output,
                         make_linear("attn_output", hidden, hidden, Activation::kNone));
    SLM_ASSIGN_OR_RETURN(layer.ffn_up,
                         make_linear("ffn_up", hp.ffn_size, hidden, Activation::kGelu));
    SLM_ASSIGN_OR_RETURN(layer.ffn_down,
                         make_linear("ffn_down", hidden, hp.ffn_size, Activation::kNone));
    SLM_ASSIGN_OR_RETURN(layer.attn_norm_gamma,
                         ReadTensor(file, prefix + "attn_output_norm.weight", {hidden}));
    SLM_ASSIGN_OR_RETURN(layer.attn_norm_beta,
                         ReadTensor(file, prefix + "attn_output_norm.bias", {hidden}));
    SLM_ASSIGN_OR_RETURN(layer.out_norm_gamma,
                         ReadTensor(file, prefix + "layer_output_norm.weight", {hidden}));
    SLM_ASSIGN_OR_RETURN(layer.out_norm_beta,
                         ReadTensor(file, prefix + "layer_output_norm.bias", {hidden}));
  }
  return graph;
}

BertGraph::~BertGraph() = default;

int64_t BertGraph::linear_parameter_count() const {
  int64_t count = 0;
  for (const Layer& layer : layers_) {
    for (const Linear* linear :
         {layer.qkv.get(), layer.output.get(), layer.ffn_up.get(), layer.ffn_down.get()}) {
      count += linear->in_features() * linear->out_features();
    }
  }
  return count;
}

absl::Status BertGraph::Forward(const std::vector<int32_t>& ids, const std::function<bool()>& stop,
                                float* hidden_out, Rows rows) const {
  const int64_t seq = static_cast<int64_t>(ids.size());
  if (seq < 1 || seq > max_tokens_) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequence has ", seq, " tokens; expected 1..", max_tokens_));
  }
  const int64_t hidden = hparams_.hidden_size;
  for (int64_t t = 0; t < seq; ++t) {
    if (ids[t] < 0 || ids[t] >= hparams_.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", ids[t], " at position ", t,
                                                     " is outside the vocabulary of ",
                                                     hparams_.vocab_size));
    }
  }

  // x lives in the caller's buffer; the rest is scratch owned by the calling thread and reused
  // by its later calls. Fresh buffers per call cost more than the small layers themselves:
  // allocations past glibc's mmap threshold (128 KiB) come back as new pages that fault and are
  // zeroed on first touch.
  thread_local std::vector<float> scratch;
  const size_t needed = static_cast<size_t>(seq) * (5 * hidden + hparams_.ffn_size);
  if (scratch.size() < needed) scratch.resize(needed);
  float* x = hidden_out;
  float* qkv = scratch.data();                     // [seq, 3 * hidden]
  float* context = qkv + seq * 3 * hidden;         // [seq, hidden]
  float* projected = context + seq * hidden;       // [seq, hidden]
  float* intermediate = projected + seq * hidden;  // [seq, ffn]

  for (int64_t t = 0; t < seq; ++t) {
    const float* token = &token_embd_[static_cast<int64_t>(ids[t]) * hidden];
    const float* position = &position_embd_[t * hidden];
    float* row = x + t * hidden;
    for (int64_t c = 0; c < hidden; ++c) row[c] = token[c] + position[c] + token_type0_[c];
  }
  const float eps = hparams_.layer_norm_epsilon;
  kernels::AddLayerNorm(x, nullptr, seq, hidden, embd_norm_gamma_.data(), embd_norm_beta_.data(),
                        eps);

  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    if (stop && stop()) return absl::CancelledError("stopped between encoder layers");
    SLM_RETURN_IF_ERROR(layer.qkv->Forward(x, seq, qkv));
    kernels::EncoderAttention(qkv, qkv + hidden, qkv + 2 * hidden, 3 * hidden, seq,
                              hparams_.num_heads, hparams_.head_dim(), context);
    // Past the last attention no row reads another, so rows nobody needs can be dropped.
    const int64_t live = (rows == Rows::kFirst && i + 1 == layers_.size()) ? 1 : seq;
    SLM_RETURN_IF_ERROR(layer.output->Forward(context, live, projected));
    kernels::AddLayerNorm(x, projected, live, hidden, layer.attn_norm_gamma.data(),
                          layer.attn_norm_beta.data(), eps);
    SLM_RETURN_IF_ERROR(layer.ffn_up->Forward(x, live, intermediate));
    SLM_RETURN_IF_ERROR(layer.ffn_down->Forward(intermediate, live, projected));
    kernels::AddLayerNorm(x, projected, live, hidden, layer.out_norm_gamma.data(),
                          layer.out_norm_beta.data(), eps);
  }
  if (stop && stop()) return absl::CancelledError("stopped after the last encoder layer");
  return absl::OkStatus();
}

}  // namespace slm::workers
