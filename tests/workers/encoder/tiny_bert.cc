#include "tests/workers/encoder/tiny_bert.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <type_traits>

namespace slm::workers::testing {
namespace {

constexpr uint32_t kTypeU32 = 4;
constexpr uint32_t kTypeF32 = 6;
constexpr uint32_t kTypeString = 8;
constexpr uint32_t kTypeArray = 9;
constexpr uint64_t kAlignment = 32;

template <typename T>
void Append(std::string& out, T value) {
  static_assert(std::is_trivially_copyable_v<T>);
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void AppendString(std::string& out, const std::string& text) {
  Append<uint64_t>(out, text.size());
  out += text;
}

void Pad(std::string& out) {
  out.append((kAlignment - out.size() % kAlignment) % kAlignment, '\0');
}

}  // namespace

std::vector<std::string> TinyVocabulary() {
  const std::string w = "\xE2\x96\x81";  // ▁
  return {"[PAD]",   "[UNK]",    "[CLS]",    "[SEP]",   "[MASK]", w + "hello", w + "world",
          w + "new", w + "york", w + "walk", "ing",     "s",      w + ",",     w + ".",
          w + "the", w + "city", w + "is",   w + "big", w + "a",  w + "b",     w + "c"};
}

TinyBert TinyBert::Random(const TinyBertConfig& config) {
  TinyBert bert;
  const std::vector<std::string> vocabulary = TinyVocabulary();
  bert.metadata["general.architecture"] = std::string("bert");
  bert.metadata["general.name"] = std::string("tiny-bert");
  bert.metadata["bert.context_length"] = static_cast<uint32_t>(config.context);
  bert.metadata["bert.embedding_length"] = static_cast<uint32_t>(config.hidden);
  bert.metadata["bert.block_count"] = static_cast<uint32_t>(config.layers);
  bert.metadata["bert.feed_forward_length"] = static_cast<uint32_t>(config.ffn);
  bert.metadata["bert.attention.head_count"] = static_cast<uint32_t>(config.heads);
  bert.metadata["bert.attention.layer_norm_epsilon"] = 1e-12f;
  bert.metadata["slmgw.task"] = config.task;
  bert.metadata["slmgw.labels"] = config.labels;
  bert.metadata["slmgw.pooling"] = config.pooling;
  bert.metadata["tokenizer.ggml.model"] = std::string("bert");
  bert.metadata["tokenizer.ggml.tokens"] = vocabulary;
  bert.metadata["tokenizer.ggml.padding_token_id"] = 0u;
  bert.metadata["tokenizer.ggml.unknown_token_id"] = 1u;
  bert.metadata["tokenizer.ggml.cls_token_id"] = 2u;
  bert.metadata["tokenizer.ggml.seperator_token_id"] = 3u;
  bert.metadata["tokenizer.ggml.mask_token_id"] = 4u;

  std::mt19937 rng(config.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale,
                 float offset = 0.0f) {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    TestTensor tensor{std::move(shape), std::vector<float>(count)};
    for (float& value : tensor.values) value = offset + scale * normal(rng);
    bert.tensors[name] = std::move(tensor);
  };
  const int64_t h = config.hidden;
  const float weight_scale = 1.0f / std::sqrt(static_cast<float>(h));
  add("token_embd.weight", {static_cast<int64_t>(vocabulary.size()), h}, 0.5f);
  add("position_embd.weight", {config.context, h}, 0.5f);
  add("token_types.weight", {2, h}, 0.5f);
  add("token_embd_norm.weight", {h}, 0.1f, 1.0f);
  add("token_embd_norm.bias", {h}, 0.1f);
  for (int64_t i = 0; i < config.layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    for (const char* name : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
      add(p + name + ".weight", {h, h}, weight_scale);
      add(p + name + ".bias", {h}, weight_scale);
    }
    add(p + "attn_output_norm.weight", {h}, 0.1f, 1.0f);
    add(p + "attn_output_norm.bias", {h}, 0.1f);
    add(p + "ffn_up.weight", {config.ffn, h}, weight_scale);
    add(p + "ffn_up.bias", {config.ffn}, weight_scale);
    add(p + "ffn_down.weight", {h, config.ffn}, 1.0f / std::sqrt(static_cast<float>(config.ffn)));
    add(p + "ffn_down.bias", {h}, weight_scale);
    add(p + "layer_output_norm.weight", {h}, 0.1f, 1.0f);
    add(p + "layer_output_norm.bias", {h}, 0.1f);
  }
  if (config.pooler && config.task == "text_classification") {
    add("cls.pooler.weight", {h, h}, weight_scale);
    add("cls.pooler.bias", {h}, weight_scale);
  }
  const int64_t labels = static_cast<int64_t>(config.labels.size());
  add("cls.output.weight", {labels, h}, weight_scale);
  add("cls.output.bias", {labels}, weight_scale);
  return bert;
}

std::string TinyBert::ToGguf() const {
  std::string out = "GGUF";
  Append<uint32_t>(out, 3);
  Append<uint64_t>(out, tensors.size());
  Append<uint64_t>(out, metadata.size());
  for (const auto& [key, value] : metadata) {
    AppendString(out, key);
    if (const auto* u = std::get_if<uint32_t>(&value)) {
      Append<uint32_t>(out, kTypeU32);
      Append<uint32_t>(out, *u);
    } else if (const auto* f = std::get_if<float>(&value)) {
      Append<uint32_t>(out, kTypeF32);
      Append<float>(out, *f);
    } else if (const auto* s = std::get_if<std::string>(&value)) {
      Append<uint32_t>(out, kTypeString);
      AppendString(out, *s);
    } else {
      const auto& strings = std::get<std::vector<std::string>>(value);
      Append<uint32_t>(out, kTypeArray);
      Append<uint32_t>(out, kTypeString);
      Append<uint64_t>(out, strings.size());
      for (const std::string& s : strings) AppendString(out, s);
    }
  }
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    AppendString(out, name);
    Append<uint32_t>(out, static_cast<uint32_t>(tensor.torch_shape.size()));
    for (auto it = tensor.torch_shape.rbegin(); it != tensor.torch_shape.rend(); ++it) {
      Append<uint64_t>(out, static_cast<uint64_t>(*it));
    }
    Append<uint32_t>(out, 0);  // F32
    Append<uint64_t>(out, offset);
    const uint64_t bytes = tensor.values.size() * sizeof(float);
    offset += bytes + (kAlignment - bytes % kAlignment) % kAlignment;
  }
  Pad(out);
  for (const auto& [name, tensor] : tensors) {
    out.append(reinterpret_cast<const char*>(tensor.values.data()),
               tensor.values.size() * sizeof(float));
    Pad(out);
  }
  return out;
}

std::string TinyBert::WriteTemp(const std::string& stem) const {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/slm_encoder_test_" +
                     std::to_string(::getpid()) + "_" + stem + ".gguf";
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  const std::string bytes = ToGguf();
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace slm::workers::testing
