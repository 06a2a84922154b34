// Small UTF-8 helpers the tokenizers share.
// Thread-safety: pure functions.
#ifndef SLM_WORKERS_TOKENIZER_UTF8_H_
#define SLM_WORKERS_TOKENIZER_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace slm::workers::utf8 {

// llama.cpp's unicode_len_utf8: the sequence length a lead byte announces (1 for continuation
// and invalid bytes below 0xC0, 4 for 0xF0-0xFF), without validation.
inline size_t LeadByteLength(unsigned char lead) {
  static constexpr unsigned char kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[lead >> 4];
}

enum class SequenceStatus { kValid, kIncomplete, kInvalid };

// Examines the sequence starting at text[pos] (pos < text.size()). kValid: *length bytes form
// one well-formed character *code_point (no overlongs, surrogates or values past U+10FFFF).
// kIncomplete: the bytes up to the end of text are a proper prefix of a well-formed sequence.
// kInvalid: text[pos] starts no well-formed sequence; *length is 1.
SequenceStatus Examine(absl::string_view text, size_t pos, char32_t* code_point, size_t* length);

void Append(char32_t code_point, std::string* out);

// U+FFFD, the replacement character.
inline constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";

}  // namespace slm::workers::utf8

#endif  // SLM_WORKERS_TOKENIZER_UTF8_H_
