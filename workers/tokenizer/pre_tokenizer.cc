#include "workers/tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <iterator>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "workers/tokenizer/utf8.h"

namespace slm::workers {
namespace {

struct RegexClassRange {
  char32_t first;
  char32_t last;
  RegexClass regex_class;
};

#include "workers/tokenizer/regex_unicode_tables.inc"

// Past the end of the range being split: matches no class (llama.cpp's OUT_OF_RANGE).
constexpr char32_t kOutOfRange = 0xFFFFFFFF;

struct Char {
  char32_t code_point;
  RegexClass regex_class;
  size_t byte_end;  // end offset of this character in the text
};

// One range [begin, end) of characters being split; positions outside read as kOutOfRange.
class Range {
 public:
  Range(const std::vector<Char>& chars, size_t begin, size_t end, std::vector<size_t>* ends)
      : chars_(chars), begin_(begin), end_(end), previous_end_(begin), ends_(ends) {}

  bool InRange(size_t pos) const { return pos >= begin_ && pos < end_; }
  char32_t Cpt(size_t pos) const { return InRange(pos) ? chars_[pos].code_point : kOutOfRange; }
  bool Is(size_t pos, RegexClass c) const { return InRange(pos) && chars_[pos].regex_class == c; }
  bool IsLetter(size_t pos) const { return Is(pos, RegexClass::kLetter); }
  bool IsNumber(size_t pos) const { return Is(pos, RegexClass::kNumber); }
  bool IsSpace(size_t pos) const { return Is(pos, RegexClass::kWhitespace); }
  // [^\s\p{L}\p{N}] within the range.
  bool IsOther(size_t pos) const { return Is(pos, RegexClass::kOther); }
  // Ends a word at character position `end` (exclusive); returns its length in characters.
  size_t AddWord(size_t end) {
    const size_t length = end - previous_end_;
    if (length > 0) ends_->push_back(end);
    previous_end_ = end;
    return length;
  }
  size_t begin() const { return begin_; }
  size_t end() const { return end_; }

 private:
  const std::vector<Char>& chars_;
  size_t begin_, end_, previous_end_;
  std::vector<size_t>* ends_;  // character positions
};

char32_t AsciiLower(char32_t c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }

// 's|'t|'re|'ve|'m|'ll|'d (case-insensitively when `fold_case`): the match length or 0.
size_t Contraction(const Range& r, size_t pos, bool fold_case) {
  if (r.Cpt(pos) != '\'' || pos + 1 >= r.end()) return 0;
  const auto fold = [fold_case](char32_t c) { return fold_case ? AsciiLower(c) : c; };
  const char32_t next = fold(r.Cpt(pos + 1));
  if (next == 's' || next == 't' || next == 'm' || next == 'd') return 2;
  if (pos + 2 < r.end()) {
    const char32_t next_next = fold(r.Cpt(pos + 2));
    if ((next == 'r' && next_next == 'e') || (next == 'v' && next_next == 'e') ||
        (next == 'l' && next_next == 'l')) {
      return 3;
    }
  }
  return 0;
}

void SplitGpt2(Range& r) {
  for (size_t pos = r.begin(); pos < r.end();) {
    const char32_t cpt = r.Cpt(pos);
    if (const size_t n = Contraction(r, pos, false); n > 0) {
      pos += r.AddWord(pos + n);
      continue;
    }
    // The class that decides: the next character's after an optional leading space.
    const size_t probe = cpt == ' ' ? pos + 1 : pos;
    if (r.IsLetter(probe) || r.IsNumber(probe) || r.IsOther(probe)) {
      const RegexClass c = r.IsLetter(probe)   ? RegexClass::kLetter
                           : r.IsNumber(probe) ? RegexClass::kNumber
                                               : RegexClass::kOther;
      pos = probe;
      while (r.Is(pos, c)) ++pos;
      r.AddWord(pos);
      continue;
    }
    size_t spaces = 0;
    while (r.IsSpace(pos + spaces)) ++spaces;
    if (spaces > 1 && r.Cpt(pos + spaces) != kOutOfRange) {  // \s+(?!\S)
      pos += spaces - 1;
      r.AddWord(pos);
      continue;
    }
    if (spaces > 0) {  // \s+
      pos += spaces;
      r.AddWord(pos);
      continue;
    }
    r.AddWord(++pos);
  }
}

void SplitDigits(Range& r, std::vector<Range>* pieces, const std::vector<Char>& chars,
                 std::vector<size_t>* ends) {
  size_t start = r.begin();
  for (size_t pos = r.begin(); pos < r.end(); ++pos) {
    if (!r.IsNumber(pos)) continue;
    if (pos > start) pieces->emplace_back(chars, start, pos, ends);
    pieces->emplace_back(chars, pos, pos + 1, ends);
    start = pos + 1;
  }
  if (start < r.end()) pieces->emplace_back(chars, start, r.end(), ends);
}

void SplitLlama3(Range& r, size_t max_digits) {
  for (size_t pos = r.begin(); pos < r.end();) {
    const char32_t cpt = r.Cpt(pos);
    if (const size_t n = Contraction(r, pos, true); n > 0) {
      pos += r.AddWord(pos + n);
      continue;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(cpt == '\r' || cpt == '\n' || r.IsNumber(pos))) {
      if (r.IsLetter(pos) || r.IsLetter(pos + 1)) {
        ++pos;
        while (r.IsLetter(pos)) ++pos;
        r.AddWord(pos);
        continue;
      }
    }
    // \p{N}{1,max_digits}
    if (r.IsNumber(pos)) {
      size_t start = pos;
      while (r.IsNumber(pos)) {
        if (++pos - start >= max_digits) {
          r.AddWord(pos);
          start = pos;
        }
      }
      r.AddWord(pos);
      continue;
    }
    // <space>?[^\s\p{L}\p{N}]+[\r\n]*
    const size_t probe = cpt == ' ' ? pos + 1 : pos;
    if (r.IsOther(probe)) {
      pos = probe;
      while (r.IsOther(pos)) ++pos;
      while (r.Cpt(pos) == '\r' || r.Cpt(pos) == '\n') ++pos;
      r.AddWord(pos);
      continue;
    }
    size_t spaces = 0;
    size_t last_line_break_end = 0;
    while (r.IsSpace(pos + spaces)) {
      const char32_t c = r.Cpt(pos + spaces);
      if (c == '\r' || c == '\n') last_line_break_end = pos + spaces + 1;
      ++spaces;
    }
    if (last_line_break_end > 0) {  // \s*[\r\n]+
      pos = last_line_break_end;
      r.AddWord(pos);
      continue;
    }
    if (spaces > 1 && r.Cpt(pos + spaces) != kOutOfRange) {  // \s+(?!\S)
      pos += spaces - 1;
      r.AddWord(pos);
      continue;
    }
    if (spaces > 0) {  // \s+
      pos += spaces;
      r.AddWord(pos);
      continue;
    }
    r.AddWord(++pos);
  }
}

}  // namespace

RegexClass ClassifyForRegex(char32_t code_point) {
  const RegexClassRange* end = std::end(kRegexClassRanges);
  const RegexClassRange* it = std::upper_bound(
      std::begin(kRegexClassRanges), end, code_point,
      [](char32_t cp, const RegexClassRange& range) { return cp < range.first; });
  if (it == std::begin(kRegexClassRanges)) return RegexClass::kOther;
  --it;
  return code_point <= it->last ? it->regex_class : RegexClass::kOther;
}

absl::StatusOr<PreTokenizer> PreTokenizerFromGgufName(absl::string_view name) {
  if (name == "gpt-2") return PreTokenizer::kGpt2;
  if (name == "smollm" || name == "starcoder" || name == "refact") return PreTokenizer::kGpt2Digits;
  if (name == "llama3" || name == "llama-v3" || name == "llama-bpe") return PreTokenizer::kLlama3;
  if (name == "qwen2") return PreTokenizer::kQwen2;
  return absl::UnimplementedError(absl::StrCat(
      "tokenizer.ggml.pre '", name,
      "' is not supported (supported: gpt-2, smollm, starcoder, refact, llama3, llama-bpe, qwen2)"));
}

absl::StatusOr<PreTokenizer> PreTokenizerFromRegex(absl::string_view pattern) {
  static constexpr absl::string_view kGpt2 =
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
  static constexpr absl::string_view kLlama3Tail =
      "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
      "\\s+(?!\\S)|\\s+";
  static constexpr absl::string_view kQwen2Tail =
      "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
      "\\s+(?!\\S)|\\s+";
  if (pattern == kGpt2 || pattern == kGpt2.substr(0, kGpt2.size() - 4)) return PreTokenizer::kGpt2;
  for (absl::string_view head : {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|",
                                 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|"}) {
    if (pattern == absl::StrCat(head, kLlama3Tail)) return PreTokenizer::kLlama3;
    if (pattern == absl::StrCat(head, kQwen2Tail)) return PreTokenizer::kQwen2;
  }
  return absl::UnimplementedError(absl::StrCat(
      "pre-tokenizer Split regex '", pattern,
      "' is not one of the implemented families (gpt-2, llama3, qwen2)"));
}

const char* PreTokenizerName(PreTokenizer pre_tokenizer) {
  switch (pre_tokenizer) {
    case PreTokenizer::kGpt2:
      return "gpt-2";
    case PreTokenizer::kGpt2Digits:
      return "smollm";
    case PreTokenizer::kLlama3:
      return "llama3";
    case PreTokenizer::kQwen2:
      return "qwen2";
  }
  return "unknown";
}

void SplitWords(PreTokenizer pre_tokenizer, absl::string_view text,
                std::vector<size_t>* word_ends) {
  std::vector<Char> chars;
  chars.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    char32_t code_point = 0;
    size_t length = 1;
    RegexClass regex_class = RegexClass::kOther;
    if (utf8::Examine(text, pos, &code_point, &length) == utf8::SequenceStatus::kValid) {
      regex_class = ClassifyForRegex(code_point);
    } else {
      code_point = 0xFFFD;
      length = 1;
    }
    pos += length;
    chars.push_back({code_point, regex_class, pos});
  }
  std::vector<size_t> ends;  // in characters
  Range whole(chars, 0, chars.size(), &ends);
  switch (pre_tokenizer) {
    case PreTokenizer::kGpt2:
      SplitGpt2(whole);
      break;
    case PreTokenizer::kGpt2Digits: {
      std::vector<Range> pieces;
      SplitDigits(whole, &pieces, chars, &ends);
      for (Range& piece : pieces) SplitGpt2(piece);
      break;
    }
    case PreTokenizer::kLlama3:
      SplitLlama3(whole, 3);
      break;
    case PreTokenizer::kQwen2:
      SplitLlama3(whole, 1);
      break;
  }
  for (size_t end : ends) word_ends->push_back(chars[end - 1].byte_end);
}

}  // namespace slm::workers
