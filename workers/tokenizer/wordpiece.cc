#include "workers/tokenizer/wordpiece.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "workers/tokenizer/unicode_tables.h"

namespace slm::workers {
namespace {

constexpr std::string_view kWordPrefix = "\xE2\x96\x81";  // U+2581, llama.cpp's word marker
constexpr size_t kMaxWordChars = 100;                     // HF max_input_chars_per_word

// One code point after normalization, with the byte span of the input character it came from.
struct NormalizedChar {
  char32_t code_point;
  int32_t begin;
  int32_t end;
};

struct Word {
  std::vector<NormalizedChar> chars;
  bool invalid_utf8 = false;  // a single invalid input byte: always [UNK]
  int32_t begin() const { return chars.front().begin; }
  int32_t end() const { return chars.back().end; }
};

// Decodes one UTF-8 code point at text[pos]. Returns its length, or 0 when the byte at `pos`
// does not start a valid, shortest-form, non-surrogate sequence.
int DecodeUtf8(std::string_view text, size_t pos, char32_t* code_point) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(pos);
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  }
  int length;
  char32_t value;
  char32_t minimum;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, value = lead & 0x1F, minimum = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, value = lead & 0x0F, minimum = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, value = lead & 0x07, minimum = 0x10000;
  } else {
    return 0;
  }
  if (pos + length > text.size()) return 0;
  for (int i = 1; i < length; ++i) {
    const uint8_t continuation = byte(pos + i);
    if ((continuation & 0xC0) != 0x80) return 0;
    value = (value << 6) | (continuation & 0x3F);
  }
  if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
  *code_point = value;
  return length;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t CountCodePoints(std::string_view text) {
  size_t count = 0;
  for (char c : text) count += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return count;
}

// BERT BasicTokenizer: splits `text` into normalized words (see the header for the steps).
std::vector<Word> SplitWords(std::string_view text, const WordPieceTokenizer::Options& options) {
  using unicode::CharClass;
  std::vector<Word> words;
  Word current;
  const auto flush = [&] {
    if (!current.chars.empty()) words.push_back(std::move(current));
    current = Word();
  };
  const auto single = [&](Word word) {
    flush();
    words.push_back(std::move(word));
  };
  size_t pos = 0;
  while (pos < text.size()) {
    char32_t cp = 0;
    const int length = DecodeUtf8(text, pos, &cp);
    const auto begin = static_cast<int32_t>(pos);
    if (length == 0) {
      Word invalid;
      invalid.invalid_utf8 = true;
      invalid.chars.push_back({0xFFFD, begin, begin + 1});
      single(std::move(invalid));
      pos += 1;
      continue;
    }
    pos += length;
    const auto end = static_cast<int32_t>(pos);
    const CharClass char_class = unicode::Classify(cp);
    if (char_class == CharClass::kWhitespace) {
      flush();
      continue;
    }
    if (cp == 0 || cp == 0xFFFD || char_class == CharClass::kControl) continue;
    if (char_class == CharClass::kCjk) {
      Word word;
      word.chars.push_back({cp, begin, end});
      single(std::move(word));
      continue;
    }
    unicode::MappedCodePoints lowered;
    if (options.lowercase) {
      lowered = unicode::ToLower(cp);
    } else {
      lowered.count = 1;
      lowered.code_points[0] = cp;
    }
    for (int i = 0; i < lowered.count; ++i) {
      unicode::MappedCodePoints normalized;
      if (options.strip_accents) {
        normalized = unicode::DecomposeStripMarks(lowered.code_points[i]);
        // A stripped combining mark still belongs to the character before it: extend that
        // character's span so spans never cut a grapheme.
        if (normalized.count == 0 && !current.chars.empty()) current.chars.back().end = end;
      } else {
        normalized.count = 1;
        normalized.code_points[0] = lowered.code_points[i];
      }
      for (int j = 0; j < normalized.count; ++j) {
        const char32_t out = normalized.code_points[j];
        if (unicode::Classify(out) == CharClass::kPunctuation) {
          Word word;
          word.chars.push_back({out, begin, end});
          single(std::move(word));
        } else {
          current.chars.push_back({out, begin, end});
        }
      }
    }
  }
  flush();
  return words;
}

}  // namespace

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromGguf(
    const GgufFile& file) {
  SLM_ASSIGN_OR_RETURN(std::string model, file.GetString("tokenizer.ggml.model"));
  if (model != "bert") {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": tokenizer.ggml.model is '",
                                                   model, "', expected 'bert' (WordPiece)"));
  }
  SLM_ASSIGN_OR_RETURN(std::vector<std::string> tokens,
                       file.GetStringArray("tokenizer.ggml.tokens"));
  // Defaults are llama.cpp's for BERT vocabularies.
  SLM_ASSIGN_OR_RETURN(int64_t unknown_id, file.GetIntOr("tokenizer.ggml.unknown_token_id", 100));
  SLM_ASSIGN_OR_RETURN(int64_t cls_id, file.GetIntOr("tokenizer.ggml.cls_token_id", 101));
  SLM_ASSIGN_OR_RETURN(int64_t sep_id, file.GetIntOr("tokenizer.ggml.seperator_token_id", 102));
  SLM_ASSIGN_OR_RETURN(int64_t pad_id, file.GetIntOr("tokenizer.ggml.padding_token_id", 0));
  for (const auto& [key, id] : {std::pair<const char*, int64_t>{"unknown_token_id", unknown_id},
                                {"cls_token_id", cls_id},
                                {"seperator_token_id", sep_id},
                                {"padding_token_id", pad_id}}) {
    if (id < 0 || id >= static_cast<int64_t>(tokens.size())) {
      return absl::InvalidArgumentError(absl::StrCat(file.path(), ": tokenizer.ggml.", key, " ", id,
                                                     " is outside the vocabulary of ",
                                                     tokens.size(), " tokens"));
    }
  }
  // slmgw.tokenizer.lowercase (bool, default true): false for a cased vocabulary, which (as HF's
  // do_lower_case=False) also keeps accents.
  Options options;
  if (file.Has(kLowercaseKey)) {
    absl::StatusOr<bool> lowercase = file.GetBool(kLowercaseKey);
    if (!lowercase.ok()) return lowercase.status();
    options.lowercase = *lowercase;
    options.strip_accents = *lowercase;
  }
  auto tokenizer =
      FromTokens(std::move(tokens), static_cast<int32_t>(unknown_id), static_cast<int32_t>(cls_id),
                 static_cast<int32_t>(sep_id), static_cast<int32_t>(pad_id), options);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(file.path(), ": ", std::string(tokenizer.status().message())));
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromTokens(
    std::vector<std::string> tokens, int32_t unknown_id, int32_t cls_id, int32_t sep_id,
    int32_t pad_id, Options options) {
  if (tokens.empty() || tokens.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer vocabulary has ", tokens.size(), " tokens, expected 1..2^31-1"));
  }
  const auto vocab_size = static_cast<int32_t>(tokens.size());
  for (const auto& [name, id] : {std::pair<const char*, int32_t>{"unknown_id", unknown_id},
                                 {"cls_id", cls_id},
                                 {"sep_id", sep_id},
                                 {"pad_id", pad_id}}) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer ", name, " ", id, " is outside the vocabulary of ", vocab_size, " tokens"));
    }
  }
  std::unique_ptr<WordPieceTokenizer> tokenizer(new WordPieceTokenizer());
  tokenizer->unknown_id_ = unknown_id;
  tokenizer->cls_id_ = cls_id;
  tokenizer->sep_id_ = sep_id;
  tokenizer->pad_id_ = pad_id;
  tokenizer->options_ = options;
  tokenizer->is_special_.assign(tokens.size(), false);
  for (int32_t id : {unknown_id, cls_id, sep_id, pad_id}) tokenizer->is_special_[id] = true;
  for (int32_t id = 0; id < vocab_size; ++id) {
    const std::string& token = tokens[id];
    if (tokenizer->is_special_[id] || token.empty()) continue;
    // Later duplicates win, as in llama.cpp's token_to_id map and HF's vocab dict.
    std::string_view piece = token;
    if (piece.substr(0, kWordPrefix.size()) == kWordPrefix) {
      piece.remove_prefix(kWordPrefix.size());
      if (piece.empty()) continue;
      tokenizer->initial_pieces_[absl::string_view(piece.data(), piece.size())] = id;
    } else {
      tokenizer->continuation_pieces_[token] = id;
    }
    tokenizer->max_piece_chars_ =
        std::max(tokenizer->max_piece_chars_, static_cast<int>(CountCodePoints(piece)));
  }
  tokenizer->tokens_ = std::move(tokens);
  return tokenizer;
}

Encoding WordPieceTokenizer::Encode(std::string_view text, bool add_special) const {
  if (text.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    text = text.substr(0, std::numeric_limits<int32_t>::max());
  }
  Encoding encoding;
  if (add_special) {
    encoding.ids.push_back(cls_id_);
    encoding.spans.push_back({-1, -1});
  }
  std::string utf8;
  std::vector<size_t> offsets;  // byte offset of each char in `utf8`, plus the end
  std::vector<std::pair<int32_t, std::pair<int32_t, int32_t>>> pieces;
  for (const Word& word : SplitWords(text, options_)) {
    const std::pair<int32_t, int32_t> word_span = {word.begin(), word.end()};
    const size_t n = word.chars.size();
    if (word.invalid_utf8 || n > kMaxWordChars) {
      encoding.ids.push_back(unknown_id_);
      encoding.spans.push_back(word_span);
      continue;
    }
    utf8.clear();
    offsets.clear();
    for (const NormalizedChar& c : word.chars) {
      offsets.push_back(utf8.size());
      AppendUtf8(c.code_point, &utf8);
    }
    offsets.push_back(utf8.size());
    pieces.clear();
    size_t start = 0;
    bool matched = true;
    while (start < n && matched) {
      matched = false;
      const auto& table = start == 0 ? initial_pieces_ : continuation_pieces_;
      for (size_t end = std::min(n, start + static_cast<size_t>(max_piece_chars_)); end > start;
           --end) {
        const absl::string_view candidate(utf8.data() + offsets[start],
                                          offsets[end] - offsets[start]);
        auto it = table.find(candidate);
        if (it != table.end()) {
          pieces.push_back({it->second, {word.chars[start].begin, word.chars[end - 1].end}});
          start = end;
          matched = true;
          break;
        }
      }
    }
    if (!matched) {
      encoding.ids.push_back(unknown_id_);
      encoding.spans.push_back(word_span);
      continue;
    }
    for (const auto& [id, span] : pieces) {
      encoding.ids.push_back(id);
      encoding.spans.push_back(span);
    }
  }
  if (add_special) {
    encoding.ids.push_back(sep_id_);
    encoding.spans.push_back({-1, -1});
  }
  return encoding;
}

std::string WordPieceTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) continue;
    if (is_special_[id] && id != unknown_id_) continue;
    std::string_view piece = tokens_[id];
    const bool word_initial =
        piece.substr(0, kWordPrefix.size()) == kWordPrefix || id == unknown_id_;
    if (piece.substr(0, kWordPrefix.size()) == kWordPrefix) piece.remove_prefix(kWordPrefix.size());
    if (word_initial && !text.empty()) text.push_back(' ');
    text.append(piece.data(), piece.size());
  }
  return text;
}

std::string_view WordPieceTokenizer::TokenText(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) return {};
  return tokens_[id];
}

}  // namespace slm::workers
