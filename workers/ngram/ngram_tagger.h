// NgramTagger: a hashed-feature token tagger (BIO labels per whitespace token), loaded from GGUF
// (general.architecture = "ngram_tagger"; trained by tools/train/train_entity_tagger.py). Its
// feature definition and forward pass are tools/pyslm/ngram_tagger.py, which this file must match
// bit for bit (feature hashes) and to float rounding (probabilities).
//
// Tokens are maximal runs of non-ASCII-whitespace bytes. Each token's features (word, lowercase,
// shape, prefixes/suffixes, capitalisation, neighbours +-2, the sentence's share of capitalised
// tokens) are hashed with 64-bit FNV-1a seeded by ngram_tagger.hash_seed; a feature's row is
// hash % buckets. Forward pass per token: h = sum of rows + hidden.bias, ReLU when
// ngram_tagger.activation = "relu", logits = output.weight h + output.bias, softmax.
//
//   SLM_ASSIGN_OR_RETURN(std::unique_ptr<NgramTagger> tagger, NgramTagger::FromGguf(*file));
//   NgramTagger::Output out = tagger->Tag("Justin Bieber in Ohio");
//   // out.spans[i]: token i's bytes; out.probabilities[i * labels().size() + l]
//
// Ownership: FromGguf returns the only owner; weights are copied (f16 widened to f32), the file
// is not kept. Thread-safety: immutable after loading; Tag may be called concurrently.
#ifndef SLM_WORKERS_NGRAM_NGRAM_TAGGER_H_
#define SLM_WORKERS_NGRAM_NGRAM_TAGGER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "workers/gguf/gguf_file.h"

namespace slm::workers {

inline constexpr char kNgramTaggerArchitecture[] = "ngram_tagger";
inline constexpr uint32_t kNgramTaggerMaxDim = 1024;
inline constexpr uint32_t kNgramTaggerMaxLabels = 1024;
inline constexpr uint32_t kNgramTaggerMaxBuckets = 1u << 26;

class NgramTagger {
 public:
  struct Output {
    std::vector<std::pair<int32_t, int32_t>> spans;  // byte [begin, end) of each token
    std::vector<float> probabilities;                // [tokens, labels] row-major
  };

  // Errors name the file and the offending key or tensor; never a crash.
  static absl::StatusOr<std::unique_ptr<NgramTagger>> FromGguf(const GgufFile& file);

  const std::string& name() const { return name_; }
  const std::string& task() const { return task_; }
  const std::vector<std::string>& labels() const { return labels_; }

  // Any bytes are accepted (empty or blank text gives no tokens). Text longer than INT32_MAX
  // bytes is cut there.
  Output Tag(std::string_view text) const;
  // Per token, the 64-bit feature hashes (before % buckets) in generation order. For tests.
  std::vector<std::vector<uint64_t>> FeatureHashes(std::string_view text) const;

 private:
  NgramTagger() = default;
  template <typename Sink>
  void ForEachFeature(std::string_view text,
                      const std::vector<std::pair<int32_t, int32_t>>& spans, size_t token,
                      Sink&& sink) const;

  std::string name_;
  std::string task_;
  std::vector<std::string> labels_;
  uint32_t buckets_ = 0;
  uint32_t dim_ = 0;
  bool relu_ = true;
  uint64_t seed_state_ = 0;          // FNV-1a state after the seed's 4 bytes
  std::vector<float> embeddings_;    // [buckets, dim]
  std::vector<float> hidden_bias_;   // [dim]
  std::vector<float> weight_;        // [labels, dim]
  std::vector<float> bias_;          // [labels]
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_NGRAM_NGRAM_TAGGER_H_
