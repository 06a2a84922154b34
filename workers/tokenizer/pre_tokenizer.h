// Pre-tokenizers of byte-level BPE models: the regexes llama.cpp and Hugging Face split text
// with before merging, implemented by hand over a generated \p{L} / \p{N} / \s table (no regex
// engine). Each follows llama.cpp's unicode_regex_split_custom_* semantics:
//
//   kGpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   kGpt2Digits (smollm, starcoder, refact): first \p{N} (each digit alone), then kGpt2.
//   kLlama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//            ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   kQwen2:  kLlama3 with \p{N} (one digit per word) instead of \p{N}{1,3}.
//
// Invalid UTF-8 bytes count as one character each, of no class (like U+FFFD, which llama.cpp
// substitutes), so splitting never fails and words keep the input's bytes.
// Thread-safety: pure functions.
#ifndef SLM_WORKERS_TOKENIZER_PRE_TOKENIZER_H_
#define SLM_WORKERS_TOKENIZER_PRE_TOKENIZER_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace slm::workers {

enum class PreTokenizer { kGpt2, kGpt2Digits, kLlama3, kQwen2 };

// tokenizer.ggml.pre names whose regexes are implemented: gpt-2, smollm/starcoder/refact,
// llama3/llama-bpe, qwen2. Any other name: Unimplemented, naming it.
absl::StatusOr<PreTokenizer> PreTokenizerFromGgufName(absl::string_view name);
// A Hugging Face Split pattern (the "Regex" string) of one of the families above.
absl::StatusOr<PreTokenizer> PreTokenizerFromRegex(absl::string_view pattern);
const char* PreTokenizerName(PreTokenizer pre_tokenizer);

// Appends the end offset (in bytes, exclusive) of each word of `text`, in order; the last is
// text.size() for non-empty text.
void SplitWords(PreTokenizer pre_tokenizer, absl::string_view text, std::vector<size_t>* word_ends);

enum class RegexClass : unsigned char { kOther = 0, kLetter, kNumber, kWhitespace };
// \p{L}, \p{N}, \s (White_Space) or none, per Unicode 14.
RegexClass ClassifyForRegex(char32_t code_point);

}  // namespace slm::workers

#endif  // SLM_WORKERS_TOKENIZER_PRE_TOKENIZER_H_
