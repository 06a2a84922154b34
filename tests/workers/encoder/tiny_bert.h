// Test helpers: a tiny random BERT written as GGUF from C++, so encoder unit tests need neither
// Python nor files on disk beyond a temporary one, and can delete or reshape any tensor or key.
//
//   TinyBert bert = TinyBert::Random(TinyBertConfig{});
//   bert.tensors.erase("blk.0.ffn_up.weight");
//   std::string path = bert.WriteTemp("missing_ffn_up");
//
// Thread-safety: none needed (test code).
#ifndef SLM_TESTS_WORKERS_ENCODER_TINY_BERT_H_
#define SLM_TESTS_WORKERS_ENCODER_TINY_BERT_H_

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace slm::workers::testing {

struct TinyBertConfig {
  int64_t hidden = 16;
  int64_t heads = 2;
  int64_t layers = 2;
  int64_t ffn = 24;
  int64_t context = 32;
  std::string task = "text_classification";
  std::vector<std::string> labels = {"negative", "positive"};
  std::string pooling = "cls";
  bool pooler = true;
  uint32_t seed = 1;
};

// Vocabulary in llama.cpp's convention ("▁" marks word-initial pieces).
std::vector<std::string> TinyVocabulary();

struct TestTensor {
  std::vector<int64_t> torch_shape;  // [out, in] for a weight
  std::vector<float> values;
};

using MetadataValue = std::variant<uint32_t, float, std::string, std::vector<std::string>>;

struct TinyBert {
  std::map<std::string, MetadataValue> metadata;
  std::map<std::string, TestTensor> tensors;

  static TinyBert Random(const TinyBertConfig& config);
  // GGUF v3 bytes of the current metadata and tensors (all tensors F32).
  std::string ToGguf() const;
  // Writes ToGguf() to a fresh file under the test temp dir; returns its path.
  std::string WriteTemp(const std::string& stem) const;
};

}  // namespace slm::workers::testing

#endif  // SLM_TESTS_WORKERS_ENCODER_TINY_BERT_H_
