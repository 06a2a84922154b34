// Tokenizer: the interface every language-model tokenizer implements (SentencePiece-style,
// byte-level BPE, WordPiece), plus the loaders that pick the implementation a model declares.
//
//   SLM_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open("model.gguf"));
//   SLM_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizerFromGguf(*file));
//   std::vector<int32_t> ids = tokenizer->Encode("Hello world", /*add_special=*/true);
//   DecodeStream stream(*tokenizer);
//   for (int32_t id : generated) std::cout << stream.Next(id);  // complete UTF-8 only
//   std::cout << stream.Flush();
//
// Encoding follows llama.cpp (llama_tokenize) token for token: the vocabulary's special tokens
// are matched in the text first (user-defined tokens always; control tokens only when
// EncodeOptions::parse_special), then each remaining fragment is tokenized by the model.
//
// Ownership: a Tokenizer owns a copy of its vocabulary and keeps no reference to the GgufFile.
// Thread-safety: immutable after loading; every const method may be called concurrently.
// A DecodeStream is one sequence's state: not thread-safe, and it must not outlive its tokenizer.
#ifndef SLM_WORKERS_TOKENIZER_TOKENIZER_H_
#define SLM_WORKERS_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "workers/gguf/gguf_file.h"

namespace slm::workers {

// llama.cpp's token types (the values of tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct EncodeOptions {
  // Adds BOS / EOS where the vocabulary asks for them (tokenizer.ggml.add_bos_token /
  // add_eos_token; defaults: SentencePiece adds BOS, BPE adds nothing).
  bool add_special = false;
  // Control-token text in the input ("<|im_end|>", "<s>") becomes that token. Off for untrusted
  // text; on for prompts built by a chat template.
  bool parse_special = false;
};

// Special token ids; -1 where the vocabulary has none.
struct SpecialTokenIds {
  int32_t bos = -1;
  int32_t eos = -1;
  int32_t unknown = -1;
  int32_t padding = -1;
  // Tokens that end generation: eos, tokenizer.ggml.eot_token_id / eom_token_id, and the
  // vocabulary's end-of-turn tokens known by text (<|im_end|>, <|end|>, <|eot_id|>,
  // <|endoftext|>, <end_of_turn>, ...), sorted, without duplicates.
  std::vector<int32_t> end_of_generation;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Never fails: any byte string tokenizes (invalid UTF-8 goes through byte fallback or
  // byte-level tokens where the model has them, else the unknown token).
  virtual std::vector<int32_t> Encode(absl::string_view text, const EncodeOptions& options) const = 0;
  std::vector<int32_t> Encode(absl::string_view text, bool add_special) const {
    EncodeOptions options;
    options.add_special = add_special;
    return Encode(text, options);
  }

  // The bytes token `id` contributes to decoded text: "▁" becomes a space, byte tokens
  // (<0x0A>, byte-level BPE characters) their byte. Control and unknown tokens give their text
  // when render_special, else nothing. Ids outside the vocabulary give nothing. A piece may be
  // part of a UTF-8 sequence.
  virtual std::string TokenBytes(int32_t id, bool render_special) const = 0;

  // Concatenates TokenBytes(id, render_special) and drops the space the encoder prefixed to the
  // first text piece (SentencePiece's add_space_prefix), so Decode(Encode(x)) == x wherever the
  // model is lossless. The result may end inside (or contain) an invalid UTF-8 sequence when the
  // ids do; DecodeStream emits valid UTF-8 only. No clean-up of spaces before punctuation.
  virtual std::string Decode(const std::vector<int32_t>& ids, bool render_special) const;
  std::string Decode(const std::vector<int32_t>& ids) const { return Decode(ids, false); }

  // The vocabulary text of `id` (e.g. "▁Hello", "Ġworld", "<0x0A>"); empty outside the vocabulary.
  virtual absl::string_view TokenText(int32_t id) const = 0;
  // kUndefined outside the vocabulary.
  virtual TokenType GetTokenType(int32_t id) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual const SpecialTokenIds& special_ids() const = 0;
  // "llama" (SentencePiece-style), "gpt2" (byte-level BPE) or "bert" (WordPiece).
  virtual absl::string_view model() const = 0;
  // True when the encoder prefixes a space to the text (so the decoder drops one).
  virtual bool adds_space_prefix() const { return false; }

  bool IsEndOfGeneration(int32_t id) const;
};

// Incremental detokenization for streaming: Next() returns the text that became complete with
// this token: only whole UTF-8 characters; an invalid byte becomes U+FFFD as soon as it is
// known to be invalid. The concatenation of every Next() and Flush() equals Decode(ids) when
// that is valid UTF-8.
class DecodeStream {
 public:
  explicit DecodeStream(const Tokenizer& tokenizer, bool render_special = false);
  std::string Next(int32_t id);
  // The bytes still held (an incomplete UTF-8 sequence) as U+FFFD; resets the stream's buffer.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool render_special_;
  bool after_special_ = true;  // the next text piece starts the text or follows a special token
  std::string pending_;
};

// Dispatches on tokenizer.ggml.model: "llama" (SentencePiece-style), "gpt2" (byte-level BPE with
// the tokenizer.ggml.pre pre-tokenizer), "bert" (WordPiece). Errors name the key and file.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerFromGguf(const GgufFile& file);

// A Hugging Face tokenizer.json with a BPE model and a byte-level pre-tokenizer (a Split regex
// of a known family followed by ByteLevel, or ByteLevel alone) and added_tokens (special ones
// are control tokens, the others user-defined). Special ids and add_bos/add_eos come from
// tokenizer_config.json beside it when present. An NFC normalizer is accepted but not applied:
// input is expected in NFC (as nearly all text is).
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerFromHfJson(const std::string& path);
// The same from the JSON texts (config_json may be empty); `name` stands in for the path in
// error messages.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerFromHfJsonText(
    absl::string_view json, absl::string_view config_json, const std::string& name);

}  // namespace slm::workers

#endif  // SLM_WORKERS_TOKENIZER_TOKENIZER_H_
