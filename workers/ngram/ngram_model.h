// NgramModel: the router's fast classification tier, a fastText-style linear classifier over
// hashed word unigrams, word bigrams and character n-grams, loaded from GGUF
// (general.architecture = "ngram"; trained by tools/train/train_ngram.py, whose feature code,
// tools/pyslm/ngram.py, is the reference this file must match bit for bit).
//
// Features of a text (see tools/pyslm/ngram.py for the full definition):
//   words: maximal runs of ASCII letters/digits (lowercased) and bytes >= 0x80 (so UTF-8
//   characters stay whole); each word w gives H(0x00, w), its char_min..char_max code-point
//   n-grams of "<w>" give H(0x02, g), and each adjacent pair gives H(0x01, w1 ' ' w2) when
//   word_ngrams = 2. H is 64-bit FNV-1a seeded with the model's hash_seed; a feature's row is
//   H % buckets.
// Forward pass: mean of the features' embedding rows [dim] -> logits = W x + b over the model's
// classes -> softmax -> each class's probability added to its label (ngram.class_labels; e.g.
// intents summed into domains).
//
//   SLM_ASSIGN_OR_RETURN(std::unique_ptr<NgramModel> model, NgramModel::Load("router.gguf"));
//   std::vector<float> probabilities(model->labels().size());
//   model->Classify("book me a flight to paris", probabilities.data());  // no allocation
//
// Ownership: Load returns the only owner; the model copies its weights (embeddings widened from
// f16 to f32) and keeps no reference to the file.
// Thread-safety: immutable after Load; every const method may be called concurrently.
#ifndef SLM_WORKERS_NGRAM_NGRAM_MODEL_H_
#define SLM_WORKERS_NGRAM_NGRAM_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "workers/gguf/gguf_file.h"

namespace slm::workers {

struct NgramHyperparameters {
  uint32_t buckets = 0;
  uint32_t dim = 0;
  uint32_t hash_seed = 0;
  uint32_t word_ngrams = 2;  // 1: unigrams only; 2: also bigrams
  uint32_t char_ngram_min = 3;  // 0: no character n-grams
  uint32_t char_ngram_max = 5;
};

// Limits checked at load (they bound the stack scratch of Classify).
inline constexpr uint32_t kNgramMaxDim = 1024;
inline constexpr uint32_t kNgramMaxClasses = 4096;
inline constexpr uint32_t kNgramMaxBuckets = 1u << 26;
inline constexpr uint32_t kNgramMaxCharNgram = 16;

class NgramModel {
 public:
  // Errors name the file and the offending key or tensor (wrong architecture, missing or
  // out-of-range hyperparameters, tensor shapes, class_labels out of range); never a crash.
  static absl::StatusOr<std::unique_ptr<NgramModel>> Load(const std::string& gguf_path);
  static absl::StatusOr<std::unique_ptr<NgramModel>> FromGguf(const GgufFile& file);

  const std::string& name() const { return name_; }
  const std::vector<std::string>& labels() const { return labels_; }
  const NgramHyperparameters& hyperparameters() const { return hyper_; }
  // ngram.ood_threshold from training (the suggested maximum-softmax-probability threshold), or 0.
  float suggested_threshold() const { return suggested_threshold_; }

  // Writes one probability per label into `probabilities[0 .. labels().size())`. Allocates
  // nothing; any text (empty, invalid UTF-8, binary) is accepted.
  void Classify(std::string_view text, float* probabilities) const;

  // The 64-bit feature hashes of `text` (before % buckets), in generation order. For tests.
  std::vector<uint64_t> FeatureHashes(std::string_view text) const;

 private:
  NgramModel() = default;
  template <typename Sink>
  void ForEachFeature(std::string_view text, Sink&& sink) const;

  std::string name_;
  std::vector<std::string> labels_;
  NgramHyperparameters hyper_;
  float suggested_threshold_ = 0;
  uint32_t num_classes_ = 0;
  std::vector<float> embeddings_;  // [buckets, dim]
  std::vector<float> weight_;      // [classes, dim]
  std::vector<float> bias_;        // [classes]
  std::vector<uint32_t> class_label_;  // [classes] -> label index
  // FNV-1a states after the seed bytes and one type byte (word, bigram, char n-gram).
  uint64_t word_state_ = 0;
  uint64_t bigram_state_ = 0;
  uint64_t char_state_ = 0;
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_NGRAM_NGRAM_MODEL_H_
