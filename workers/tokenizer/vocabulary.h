// Vocabulary: the token table SentencePiece-style and BPE tokenizers share: texts, types,
// scores, the text -> id index, special ids, and llama.cpp's special-token partitioning of input
// text (tokenizer_st_partition).
//
// Ownership: plain value; copies its inputs.
// Thread-safety: immutable after Build; const methods may be called concurrently.
#ifndef SLM_WORKERS_TOKENIZER_VOCABULARY_H_
#define SLM_WORKERS_TOKENIZER_VOCABULARY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "workers/gguf/gguf_file.h"
#include "workers/tokenizer/tokenizer.h"

namespace slm::workers {

// A piece of input text: either raw text [begin, end) or a matched special token.
struct TextFragment {
  int32_t token = -1;  // >= 0: a special token; -1: raw text
  size_t begin = 0;
  size_t end = 0;
};

class Vocabulary {
 public:
  struct Entry {
    std::string text;
    TokenType type = TokenType::kNormal;
    float score = 0.0f;
    // Whitespace around a matched special token is dropped (llama.cpp's LSTRIP / RSTRIP).
    bool lstrip = false;
    bool rstrip = false;
  };

  Vocabulary() = default;

  // Validates and indexes `entries` (non-empty; ids in special_ids within range).
  // add_bos/add_eos say what EncodeOptions::add_special adds.
  static absl::StatusOr<Vocabulary> Build(std::vector<Entry> entries, SpecialTokenIds special,
                                          bool add_bos, bool add_eos, const std::string& source);

  // Reads tokenizer.ggml.tokens, .token_type, .scores (when present) and the special-token
  // keys; `default_add_bos` applies when tokenizer.ggml.add_bos_token is absent.
  static absl::StatusOr<Vocabulary> FromGguf(const GgufFile& file, bool default_add_bos);

  int32_t size() const { return static_cast<int32_t>(entries_.size()); }
  bool Contains(int32_t id) const { return id >= 0 && id < size(); }
  const Entry& entry(int32_t id) const { return entries_[id]; }
  // -1 when `text` is no token's text (the highest id wins for duplicated texts, as in llama.cpp).
  int32_t Find(absl::string_view text) const;
  const SpecialTokenIds& special_ids() const { return special_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  void set_strip(int32_t id, bool lstrip, bool rstrip);

  // Splits `text` into raw fragments and special tokens: user-defined tokens always match,
  // control and unknown-type tokens only when parse_special; longest token text first.
  std::vector<TextFragment> Partition(absl::string_view text, bool parse_special) const;

 private:
  std::vector<Entry> entries_;
  absl::flat_hash_map<std::string, int32_t> ids_by_text_;
  // Control, user-defined and unknown-type tokens with non-empty text, longest text first.
  std::vector<int32_t> specials_by_length_;
  SpecialTokenIds special_;
  bool add_bos_ = false;
  bool add_eos_ = false;
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_TOKENIZER_VOCABULARY_H_
