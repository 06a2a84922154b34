#include "workers/decoder/hparams.h"

#include <cmath>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace slm::workers::decoder {
namespace {

// Upper bounds that keep a corrupt file from asking for absurd allocations.
constexpr int64_t kMaxDim = int64_t{1} << 20;
constexpr int64_t kMaxLayers = 4096;

absl::StatusOr<int64_t> ReadPositive(const GgufFile& file, const std::string& key, int64_t limit) {
  SLM_ASSIGN_OR_RETURN(int64_t value, file.GetInt(key));
  if (value <= 0 || value > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": ", key, " is ", value, ", expected 1..", limit));
  }
  return value;
}

absl::Status Invalid(const GgufFile& file, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(file.path(), ": ", what));
}

}  // namespace

absl::StatusOr<DecoderHParams> ReadHParams(const GgufFile& file) {
  DecoderHParams hp;
  SLM_ASSIGN_OR_RETURN(hp.architecture, file.GetString("general.architecture"));
  const std::string& a = hp.architecture;
  SLM_ASSIGN_OR_RETURN(hp.name, file.GetStringOr("general.name", ""));
  if (hp.name.empty()) hp.name = std::filesystem::path(file.path()).stem().string();
  SLM_ASSIGN_OR_RETURN(hp.context_length, ReadPositive(file, a + ".context_length", 1 << 24));
  SLM_ASSIGN_OR_RETURN(hp.hidden_size, ReadPositive(file, a + ".embedding_length", kMaxDim));
  SLM_ASSIGN_OR_RETURN(hp.num_layers, ReadPositive(file, a + ".block_count", kMaxLayers));
  SLM_ASSIGN_OR_RETURN(hp.ffn_size, ReadPositive(file, a + ".feed_forward_length", kMaxDim));
  SLM_ASSIGN_OR_RETURN(hp.num_heads, ReadPositive(file, a + ".attention.head_count", 4096));
  hp.num_kv_heads = hp.num_heads;
  if (file.Has(a + ".attention.head_count_kv")) {
    SLM_ASSIGN_OR_RETURN(hp.num_kv_heads,
                         ReadPositive(file, a + ".attention.head_count_kv", hp.num_heads));
  }
  if (hp.num_heads % hp.num_kv_heads != 0) {
    return Invalid(
        file, absl::StrCat(a, ".attention.head_count ", hp.num_heads, " is not a multiple of ", a,
                           ".attention.head_count_kv ", hp.num_kv_heads));
  }
  if (file.Has(a + ".attention.key_length")) {
    SLM_ASSIGN_OR_RETURN(hp.head_dim, ReadPositive(file, a + ".attention.key_length", 4096));
  } else {
    if (hp.hidden_size % hp.num_heads != 0) {
      return Invalid(
          file, absl::StrCat(a, ".embedding_length ", hp.hidden_size, " is not a multiple of ", a,
                             ".attention.head_count ", hp.num_heads));
    }
    hp.head_dim = hp.hidden_size / hp.num_heads;
  }
  if (hp.head_dim % 2 != 0) {
    return Invalid(file, absl::StrCat("head dimension ", hp.head_dim, " must be even for RoPE"));
  }
  if (file.Has(a + ".rope.dimension_count")) {
    SLM_ASSIGN_OR_RETURN(int64_t rope_dims, file.GetInt(a + ".rope.dimension_count"));
    if (rope_dims != hp.head_dim) {
      return absl::UnimplementedError(absl::StrCat(
          file.path(), ": ", a, ".rope.dimension_count ", rope_dims,
          " differs from the head dimension ", hp.head_dim, " (partial RoPE is not supported)"));
    }
  }
  // Sliding-window attention (llama.cpp's n_swa, e.g. Phi-3-mini-4k's 2047): each token sees
  // itself and the window - 1 tokens before it; absent or 0: the whole context.
  if (file.Has(a + ".attention.sliding_window")) {
    SLM_ASSIGN_OR_RETURN(hp.sliding_window, file.GetInt(a + ".attention.sliding_window"));
    if (hp.sliding_window < 0 || hp.sliding_window > (int64_t{1} << 24)) {
      return Invalid(file, absl::StrCat(a, ".attention.sliding_window is ", hp.sliding_window,
                                        ", expected 0 (none) .. 2^24"));
    }
  }
  SLM_ASSIGN_OR_RETURN(hp.rope_freq_base, file.GetFloatOr(a + ".rope.freq_base", 10000.0));
  if (!(hp.rope_freq_base > 1.0) || !std::isfinite(hp.rope_freq_base)) {
    return Invalid(file,
                   absl::StrCat(a, ".rope.freq_base is ", hp.rope_freq_base, ", expected > 1"));
  }
  SLM_ASSIGN_OR_RETURN(double epsilon,
                       file.GetFloatOr(a + ".attention.layer_norm_rms_epsilon", 1e-5));
  if (!(epsilon > 0.0 && epsilon < 1.0)) {
    return Invalid(file, absl::StrCat(a, ".attention.layer_norm_rms_epsilon is ", epsilon,
                                      ", expected in (0, 1)"));
  }
  hp.rms_epsilon = static_cast<float>(epsilon);
  SLM_ASSIGN_OR_RETURN(const GgufTensor* embeddings, file.FindTensor("token_embd.weight"));
  if (embeddings->dims.size() != 2 || embeddings->dims[0] != hp.hidden_size) {
    return Invalid(file, absl::StrCat("tensor 'token_embd.weight' must have dims {", hp.hidden_size,
                                      ", vocab}"));
  }
  hp.vocab_size = embeddings->dims[1];
  hp.tied_output = !file.FindTensor("output.weight").ok();
  return hp;
}

absl::StatusOr<kernels::RopeTable> ReadRopeTable(const GgufFile& file, int64_t max_context,
                                                 DecoderHParams* hp) {
  const std::string& a = hp->architecture;
  kernels::RopeScaling scaling;
  double attn_factor = 1.0;
  hp->rope_scaling = "none";
  SLM_ASSIGN_OR_RETURN(std::string type, file.GetStringOr(a + ".rope.scaling.type", "none"));
  if (type == "linear") {
    SLM_ASSIGN_OR_RETURN(double factor, file.GetFloat(a + ".rope.scaling.factor"));
    if (!(factor > 0.0) || !std::isfinite(factor)) {
      return Invalid(file, absl::StrCat(a, ".rope.scaling.factor is ", factor, ", expected > 0"));
    }
    scaling.type = kernels::RopeScalingType::kLinear;
    scaling.factor = static_cast<float>(factor);
    hp->rope_scaling = "linear";
  } else if (type != "none" && type != "longrope" && type != "su") {
    return absl::UnimplementedError(absl::StrCat(file.path(), ": ", a, ".rope.scaling.type '", type,
                                                 "' is not supported (none, linear, longrope)"));
  }
  const bool has_long = file.FindTensor("rope_factors_long.weight").ok();
  const bool has_short = file.FindTensor("rope_factors_short.weight").ok();
  std::string factors_tensor;
  if (file.FindTensor("rope_freqs.weight").ok()) {
    factors_tensor = "rope_freqs.weight";  // llama3: factors precomputed by the converter
    hp->rope_scaling = "llama3";
  } else if (has_long || has_short) {
    if (!(has_long && has_short)) {
      return Invalid(file,
                     "longrope needs both tensors 'rope_factors_long.weight' and "
                     "'rope_factors_short.weight'");
    }
    SLM_ASSIGN_OR_RETURN(int64_t original,
                         ReadPositive(file, a + ".rope.scaling.original_context_length", 1 << 24));
    SLM_ASSIGN_OR_RETURN(attn_factor, file.GetFloatOr(a + ".rope.scaling.attn_factor", 1.0));
    if (!(attn_factor > 0.0) || !std::isfinite(attn_factor)) {
      return Invalid(
          file, absl::StrCat(a, ".rope.scaling.attn_factor is ", attn_factor, ", expected > 0"));
    }
    // As llama.cpp: the long factors when the context we run with exceeds the original one.
    factors_tensor =
        max_context > original ? "rope_factors_long.weight" : "rope_factors_short.weight";
    hp->rope_scaling = "longrope";
  }
  if (!factors_tensor.empty()) {
    SLM_ASSIGN_OR_RETURN(scaling.freq_factors, file.ReadF32(factors_tensor, {hp->head_dim / 2}));
  }
  absl::StatusOr<kernels::RopeTable> table =
      kernels::ComputeRopeTable(hp->head_dim, static_cast<float>(hp->rope_freq_base), scaling);
  if (!table.ok()) {
    return absl::Status(
        table.status().code(),
        absl::StrCat(file.path(), ": ", factors_tensor.empty() ? "" : "tensor '", factors_tensor,
                     factors_tensor.empty() ? "" : "': ", table.status().message()));
  }
  table->magnitude = static_cast<float>(attn_factor);
  return table;
}

}  // namespace slm::workers::decoder
