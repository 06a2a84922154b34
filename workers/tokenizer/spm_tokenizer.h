// SpmTokenizer: SentencePiece-style tokenization as llama.cpp implements it for
// tokenizer.ggml.model == "llama" (Llama 2, TinyLlama, Mistral v0.1, Phi-3): spaces become "▁"
// (U+2581), a space is prefixed to each text fragment that starts the input or follows a special
// token (add_space_prefix), then adjacent symbols are merged greedily by the score of the merged
// piece; characters with no piece fall back to <0xXX> byte tokens.
//
// Thread-safety: immutable after construction; all methods may be called concurrently.
#ifndef SLM_WORKERS_TOKENIZER_SPM_TOKENIZER_H_
#define SLM_WORKERS_TOKENIZER_SPM_TOKENIZER_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "workers/tokenizer/tokenizer.h"
#include "workers/tokenizer/vocabulary.h"

namespace slm::workers {

class SpmTokenizer final : public Tokenizer {
 public:
  // Requires tokenizer.ggml.model == "llama" and tokenizer.ggml.scores.
  static absl::StatusOr<std::unique_ptr<SpmTokenizer>> FromGguf(const GgufFile& file);
  static std::unique_ptr<SpmTokenizer> FromVocabulary(Vocabulary vocab, bool add_space_prefix);

  using Tokenizer::Encode;
  std::vector<int32_t> Encode(absl::string_view text, const EncodeOptions& options) const override;
  std::string TokenBytes(int32_t id, bool render_special) const override;
  absl::string_view TokenText(int32_t id) const override;
  TokenType GetTokenType(int32_t id) const override;
  int32_t vocab_size() const override { return vocab_.size(); }
  const SpecialTokenIds& special_ids() const override { return vocab_.special_ids(); }
  absl::string_view model() const override { return "llama"; }
  bool adds_space_prefix() const override { return add_space_prefix_; }

 private:
  SpmTokenizer(Vocabulary vocab, bool add_space_prefix);
  // Tokenizes one raw fragment (already escaped: spaces as "▁").
  void EncodeFragment(absl::string_view text, std::vector<int32_t>* out) const;

  Vocabulary vocab_;
  bool add_space_prefix_;
  // <0xXX> token per byte; -1 where the vocabulary lacks it.
  std::array<int32_t, 256> byte_tokens_;
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_TOKENIZER_SPM_TOKENIZER_H_
