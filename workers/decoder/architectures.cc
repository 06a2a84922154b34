#include "workers/decoder/architectures.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace slm::workers::decoder {

const std::vector<ArchitectureSpec>& Architectures() {
  // mistral GGUF files use the llama layout (llama.cpp's converter permutes their Q/K rows too).
  static const std::vector<ArchitectureSpec>* const kTable = new std::vector<ArchitectureSpec>{
      {"llama", kernels::RopeStyle::kInterleaved, &LoadLlamaLayer},
      {"mistral", kernels::RopeStyle::kInterleaved, &LoadLlamaLayer},
      {"qwen2", kernels::RopeStyle::kNeox, &LoadQwen2Layer},
      {"phi3", kernels::RopeStyle::kNeox, &LoadPhi3Layer},
  };
  return *kTable;
}

absl::StatusOr<const ArchitectureSpec*> FindArchitecture(const std::string& name) {
  std::string supported;
  for (const ArchitectureSpec& spec : Architectures()) {
    if (name == spec.name) return &spec;
    absl::StrAppend(&supported, supported.empty() ? "" : ", ", spec.name);
  }
  return absl::NotFoundError(absl::StrCat(
      "general.architecture '", name, "' is not a supported decoder (supported: ", supported, ")"));
}

std::string LayerTensorName(int64_t layer, const char* suffix) {
  return absl::StrCat("blk.", layer, ".", suffix);
}

absl::StatusOr<std::vector<float>> ReadMatrix(const GgufFile& file, const std::string& name,
                                              int64_t rows, int64_t cols) {
  return file.ReadF32(name, {cols, rows});
}

absl::StatusOr<std::vector<float>> ReadVector(const GgufFile& file, const std::string& name,
                                              int64_t size) {
  SLM_ASSIGN_OR_RETURN(const GgufTensor* tensor, file.FindTensor(name));
  if (tensor->dims.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": tensor '", name, "' has ",
                                                   tensor->dims.size(),
                                                   " dims, expected a vector of ", size));
  }
  return file.ReadF32(name, {size});
}

absl::Status LoadCommonLayerTensors(const GgufFile& file, const DecoderHParams& hp, int64_t layer,
                                    LayerTensors* out) {
  const int64_t q_dim = hp.num_heads * hp.head_dim;
  SLM_ASSIGN_OR_RETURN(
      out->attn_norm, ReadVector(file, LayerTensorName(layer, "attn_norm.weight"), hp.hidden_size));
  SLM_ASSIGN_OR_RETURN(
      out->attn_output,
      ReadMatrix(file, LayerTensorName(layer, "attn_output.weight"), hp.hidden_size, q_dim));
  SLM_ASSIGN_OR_RETURN(out->ffn_norm,
                       ReadVector(file, LayerTensorName(layer, "ffn_norm.weight"), hp.hidden_size));
  SLM_ASSIGN_OR_RETURN(out->down, ReadMatrix(file, LayerTensorName(layer, "ffn_down.weight"),
                                             hp.hidden_size, hp.ffn_size));
  return absl::OkStatus();
}

absl::Status LoadSeparateProjections(const GgufFile& file, const DecoderHParams& hp, int64_t layer,
                                     bool biases_required, LayerTensors* out) {
  const int64_t q_dim = hp.num_heads * hp.head_dim;
  const int64_t kv_dim = hp.num_kv_heads * hp.head_dim;
  const struct {
    const char* weight;
    const char* bias;
    int64_t rows;
  } parts[] = {{"attn_q.weight", "attn_q.bias", q_dim},
               {"attn_k.weight", "attn_k.bias", kv_dim},
               {"attn_v.weight", "attn_v.bias", kv_dim}};
  for (const auto& part : parts) {
    SLM_ASSIGN_OR_RETURN(
        std::vector<float> weight,
        ReadMatrix(file, LayerTensorName(layer, part.weight), part.rows, hp.hidden_size));
    out->qkv.insert(out->qkv.end(), weight.begin(), weight.end());
  }
  bool has_bias = biases_required;
  if (!has_bias) {
    for (const auto& part : parts) {
      if (file.FindTensor(LayerTensorName(layer, part.bias)).ok()) has_bias = true;
    }
  }
  if (has_bias) {
    for (const auto& part : parts) {
      SLM_ASSIGN_OR_RETURN(std::vector<float> bias,
                           ReadVector(file, LayerTensorName(layer, part.bias), part.rows));
      out->qkv_bias.insert(out->qkv_bias.end(), bias.begin(), bias.end());
    }
  }
  for (const char* name : {"ffn_gate.weight", "ffn_up.weight"}) {
    SLM_ASSIGN_OR_RETURN(std::vector<float> weight, ReadMatrix(file, LayerTensorName(layer, name),
                                                               hp.ffn_size, hp.hidden_size));
    out->gate_up.insert(out->gate_up.end(), weight.begin(), weight.end());
  }
  return absl::OkStatus();
}

}  // namespace slm::workers::decoder
