// Unicode character data for BERT's BasicTokenizer: character classes, full lowercase mapping
// and NFD decomposition with nonspacing marks removed ("strip accents").
//
// The tables are generated from Python's unicodedata by gen_unicode_tables.py (Unicode 14.0
// with Debian 12's Python 3.11), so they agree with HF's BertTokenizer, which uses the same
// module. Hangul syllables are decomposed algorithmically.
//
// Thread-safety: pure functions over constant tables.
#ifndef SLM_WORKERS_TOKENIZER_UNICODE_TABLES_H_
#define SLM_WORKERS_TOKENIZER_UNICODE_TABLES_H_

#include <cstdint>

namespace slm::workers::unicode {

enum class CharClass : uint8_t {
  kOther = 0,
  // llama.cpp's whitespace set: \t \n \v \f \r, space, U+0085, and the Zs/Zl/Zp separators.
  kWhitespace,
  // Any other category C* (Cc, Cf, Co, Cn, Cs): BERT drops these characters.
  kControl,
  // ASCII 33-47, 58-64, 91-96, 123-126 (includes the ASCII symbols $+<=>^`|~) and category P*.
  kPunctuation,
  // Category Mn: removed when accents are stripped.
  kNonspacingMark,
  // CJK Unified Ideographs blocks as BERT defines them: each becomes its own word.
  kCjk,
};

CharClass Classify(char32_t code_point);

// Up to 3 code points (U+1E9E and friends need at most 3 in either table).
struct MappedCodePoints {
  int count = 0;
  char32_t code_points[3] = {0, 0, 0};
};

// Python's str.lower() of one code point (full mapping: U+0130 gives "i" + U+0307).
MappedCodePoints ToLower(char32_t code_point);

// NFD of one code point with category-Mn code points removed; empty for a Mn code point itself.
// Code points without a decomposition map to themselves.
MappedCodePoints DecomposeStripMarks(char32_t code_point);

}  // namespace slm::workers::unicode

#endif  // SLM_WORKERS_TOKENIZER_UNICODE_TABLES_H_
