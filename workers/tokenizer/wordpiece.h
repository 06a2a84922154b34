// WordPieceTokenizer: BERT's tokenizer (BasicTokenizer + greedy longest-match WordPiece),
// matching llama.cpp's and HF BertTokenizer (uncased, or cased via slmgw.tokenizer.lowercase)
// output token for token.
//
// Vocabulary in llama.cpp's GGUF convention: word-initial pieces carry the "▁" (U+2581) prefix,
// continuation pieces have no prefix (HF's "##x" is stored as "x"); special tokens like [CLS]
// are stored as is.
//
//   SLM_ASSIGN_OR_RETURN(auto tokenizer, WordPieceTokenizer::FromGguf(*file));
//   Encoding encoding = tokenizer->Encode("Hello, world!", /*add_special=*/true);
//   // encoding.ids = [CLS] hello , world ! [SEP]; encoding.spans[1] = {0, 5}
//
// Ownership: owns a copy of the vocabulary; does not keep the GgufFile.
// Thread-safety: immutable after construction; Encode/Decode may be called concurrently.
#ifndef SLM_WORKERS_TOKENIZER_WORDPIECE_H_
#define SLM_WORKERS_TOKENIZER_WORDPIECE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "workers/gguf/gguf_file.h"

namespace slm::workers {

struct Encoding {
  std::vector<int32_t> ids;
  // For each id, the [begin, end) BYTE span in the original input text it came from;
  // {-1,-1} for added special tokens.
  std::vector<std::pair<int32_t, int32_t>> spans;
};

class WordPieceTokenizer {
 public:
  struct Options {
    bool lowercase = true;
    bool strip_accents = true;
  };
  // Reads tokenizer.ggml.tokens, .unknown_token_id, .cls_token_id, .seperator_token_id (sic,
  // llama.cpp's spelling), .padding_token_id from the file. Requires tokenizer.ggml.model ==
  // "bert". kLowercaseKey (bool, optional, default true): false for a cased vocabulary (no
  // lowercasing and no accent stripping, as HF's do_lower_case=False); wrong type is an error.
  static constexpr char kLowercaseKey[] = "slmgw.tokenizer.lowercase";
  static absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> FromGguf(const GgufFile& file);
  static absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> FromTokens(
      std::vector<std::string> tokens, int32_t unknown_id, int32_t cls_id, int32_t sep_id,
      int32_t pad_id, Options options);

  // add_special: [CLS] ... [SEP]. Never fails: invalid UTF-8 bytes become [UNK] pieces (one
  // per byte). Input longer than INT32_MAX bytes is truncated to that length. Special-token text
  // in the input (e.g. "[CLS]") is treated as ordinary text, never as the special token.
  //
  // Pipeline (HF BasicTokenizer, with llama.cpp's whitespace set): drop NUL, U+FFFD and C*
  // characters; split on whitespace; each CJK ideograph is a word; lowercase; NFD and drop Mn
  // marks; each punctuation character is a word; then greedy longest-match WordPiece per word
  // ([UNK] for the whole word when a part has no piece or the word has > 100 code points).
  Encoding Encode(std::string_view text, bool add_special) const;
  // Joins pieces: word-initial pieces start a new space-separated word; special tokens are
  // skipped; ids outside the vocabulary are skipped.
  std::string Decode(const std::vector<int32_t>& ids) const;

  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unknown_id() const { return unknown_id_; }
  size_t vocab_size() const { return tokens_.size(); }
  // Empty for ids outside the vocabulary.
  std::string_view TokenText(int32_t id) const;

 private:
  WordPieceTokenizer() = default;

  std::vector<std::string> tokens_;
  // Word-initial pieces (without the "▁" prefix) and continuation pieces, to ids.
  absl::flat_hash_map<std::string, int32_t> initial_pieces_;
  absl::flat_hash_map<std::string, int32_t> continuation_pieces_;
  // Longest piece in code points: bounds the greedy search.
  int max_piece_chars_ = 1;
  std::vector<bool> is_special_;
  int32_t unknown_id_ = 0;
  int32_t cls_id_ = 0;
  int32_t sep_id_ = 0;
  int32_t pad_id_ = 0;
  Options options_;
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_TOKENIZER_WORDPIECE_H_
