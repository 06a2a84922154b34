// BpeTokenizer: byte-level BPE as GPT-2, Qwen2, SmolLM2 and Llama 3 use it (llama.cpp's
// LLAMA_VOCAB_TYPE_BPE): special tokens are matched first, each remaining fragment is split by
// the model's pre-tokenizer regex (pre_tokenizer.h), each word's bytes are mapped through GPT-2's
// byte-to-unicode table to the byte-level characters of the vocabulary, and adjacent symbols are
// merged lowest merge rank first (leftmost among equal ranks).
//
// Lossless: every input byte, valid UTF-8 or not, is encoded by its byte-level token (llama.cpp
// replaces invalid UTF-8 with U+FFFD first; identical on valid UTF-8).
// Thread-safety: immutable after construction; all methods may be called concurrently.
#ifndef SLM_WORKERS_TOKENIZER_BPE_TOKENIZER_H_
#define SLM_WORKERS_TOKENIZER_BPE_TOKENIZER_H_

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "workers/tokenizer/pre_tokenizer.h"
#include "workers/tokenizer/tokenizer.h"
#include "workers/tokenizer/vocabulary.h"

namespace slm::workers {

class BpeTokenizer final : public Tokenizer {
 public:
  // Requires tokenizer.ggml.model == "gpt2", tokenizer.ggml.merges ("left right" strings in rank
  // order) and a supported tokenizer.ggml.pre.
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> FromGguf(const GgufFile& file);
  // `merges` in rank order, as token texts (byte-level characters). A merge whose parts or
  // result are not in the vocabulary can never apply and is skipped; a repeated pair keeps its
  // first rank. ignore_merges: a word that is itself a token is emitted whole (Llama 3).
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> Create(
      Vocabulary vocab, const std::vector<std::pair<std::string, std::string>>& merges,
      PreTokenizer pre_tokenizer, bool ignore_merges, const std::string& source);

  using Tokenizer::Encode;
  std::vector<int32_t> Encode(absl::string_view text, const EncodeOptions& options) const override;
  std::string TokenBytes(int32_t id, bool render_special) const override;
  absl::string_view TokenText(int32_t id) const override;
  TokenType GetTokenType(int32_t id) const override;
  int32_t vocab_size() const override { return vocab_.size(); }
  const SpecialTokenIds& special_ids() const override { return vocab_.special_ids(); }
  absl::string_view model() const override { return "gpt2"; }
  PreTokenizer pre_tokenizer() const { return pre_tokenizer_; }
  // Merges that can apply (after skipping unusable ones).
  size_t merge_count() const { return merges_.size(); }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  BpeTokenizer(Vocabulary vocab, PreTokenizer pre_tokenizer, bool ignore_merges);
  void EncodeWord(absl::string_view word, std::vector<int32_t>* out) const;
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }

  Vocabulary vocab_;
  PreTokenizer pre_tokenizer_;
  bool ignore_merges_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  // The token of each byte's byte-level character; -1 where the vocabulary lacks it.
  std::array<int32_t, 256> byte_tokens_;
};

// GPT-2's bytes_to_unicode(): printable bytes map to themselves, the others to U+0100 onwards.
char32_t ByteToUnicode(unsigned char byte);
// The inverse; -1 for code points no byte maps to.
int UnicodeToByte(char32_t code_point);

}  // namespace slm::workers

#endif  // SLM_WORKERS_TOKENIZER_BPE_TOKENIZER_H_
