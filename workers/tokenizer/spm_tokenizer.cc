#include "workers/tokenizer/spm_tokenizer.h"

#include <queue>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "workers/tokenizer/utf8.h"

namespace slm::workers {
namespace {

constexpr absl::string_view kSpaceEscape = "\xE2\x96\x81";  // U+2581 "▁"

struct Symbol {
  int prev;
  int next;
  size_t begin;
  size_t length;  // 0 once merged into its left neighbour
};

struct Bigram {
  float score;
  int left;
  int right;
  size_t length;
};

// Highest score first; among equal scores, the leftmost pair (llama.cpp's llm_bigram_spm).
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

SpmTokenizer::SpmTokenizer(Vocabulary vocab, bool add_space_prefix)
    : vocab_(std::move(vocab)), add_space_prefix_(add_space_prefix) {
  for (int byte = 0; byte < 256; ++byte) {
    byte_tokens_[byte] = vocab_.Find(absl::StrFormat("<0x%02X>", byte));
  }
}

std::unique_ptr<SpmTokenizer> SpmTokenizer::FromVocabulary(Vocabulary vocab,
                                                           bool add_space_prefix) {
  return std::unique_ptr<SpmTokenizer>(new SpmTokenizer(std::move(vocab), add_space_prefix));
}

absl::StatusOr<std::unique_ptr<SpmTokenizer>> SpmTokenizer::FromGguf(const GgufFile& file) {
  SLM_ASSIGN_OR_RETURN(std::string model, file.GetString("tokenizer.ggml.model"));
  if (model != "llama") {
    return absl::InvalidArgumentError(absl::StrCat(
        file.path(), ": tokenizer.ggml.model is '", model, "', SpmTokenizer needs 'llama'"));
  }
  if (!file.Has("tokenizer.ggml.scores")) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": tokenizer.ggml.scores is required for a 'llama' tokenizer"));
  }
  SLM_ASSIGN_OR_RETURN(Vocabulary vocab, Vocabulary::FromGguf(file, /*default_add_bos=*/true));
  bool add_space_prefix = true;
  if (file.Has("tokenizer.ggml.add_space_prefix")) {
    SLM_ASSIGN_OR_RETURN(add_space_prefix, file.GetBool("tokenizer.ggml.add_space_prefix"));
  }
  // llama.cpp (llama_vocab::load): Phi-3's special tokens swallow the whitespace after them.
  SLM_ASSIGN_OR_RETURN(std::string name, file.GetStringOr("general.name", ""));
  absl::AsciiStrToLower(&name);
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (int32_t id = 0; id < vocab.size(); ++id) {
      const TokenType type = vocab.entry(id).type;
      if (type == TokenType::kControl || type == TokenType::kUserDefined ||
          type == TokenType::kUnknown) {
        vocab.set_strip(id, false, true);
      }
    }
    for (const char* text : {"<unk>", "<s>", "<|endoftext|>"}) {
      vocab.set_strip(vocab.Find(text), false, false);
    }
  }
  return FromVocabulary(std::move(vocab), add_space_prefix);
}

std::vector<int32_t> SpmTokenizer::Encode(absl::string_view text,
                                          const EncodeOptions& options) const {
  std::vector<int32_t> out;
  if (options.add_special && vocab_.add_bos()) out.push_back(vocab_.special_ids().bos);
  bool previous_special = true;
  std::string escaped;
  for (const TextFragment& fragment : vocab_.Partition(text, options.parse_special)) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
      previous_special = true;
      continue;
    }
    escaped.clear();
    if (add_space_prefix_ && previous_special) escaped.append(kSpaceEscape.data(), kSpaceEscape.size());
    for (size_t i = fragment.begin; i < fragment.end; ++i) {
      if (text[i] == ' ') {
        escaped.append(kSpaceEscape.data(), kSpaceEscape.size());
      } else {
        escaped.push_back(text[i]);
      }
    }
    EncodeFragment(escaped, &out);
    previous_special = false;
  }
  if (options.add_special && vocab_.add_eos()) out.push_back(vocab_.special_ids().eos);
  return out;
}

void SpmTokenizer::EncodeFragment(absl::string_view text, std::vector<int32_t>* out) const {
  std::vector<Symbol> symbols;
  for (size_t offset = 0; offset < text.size();) {
    const size_t length =
        std::min(utf8::LeadByteLength(static_cast<unsigned char>(text[offset])), text.size() - offset);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, offset + length == text.size() ? -1 : index + 1, offset, length});
    offset += length;
  }
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto try_add_bigram = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t length = symbols[left].length + symbols[right].length;
    const int32_t id = vocab_.Find(text.substr(symbols[left].begin, length));
    if (id < 0) return;
    queue.push({vocab_.entry(id).score, left, right, length});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add_bigram(i - 1, i);
  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length) {
      continue;  // outdated: one side was merged since
    }
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    try_add_bigram(left.prev, bigram.left);
    try_add_bigram(bigram.left, left.next);
  }
  for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    const absl::string_view piece = text.substr(symbols[i].begin, symbols[i].length);
    const int32_t id = vocab_.Find(piece);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    // Byte fallback: <0xXX>, else the byte itself as a token, else <unk>.
    for (char c : piece) {
      int32_t byte_id = byte_tokens_[static_cast<unsigned char>(c)];
      if (byte_id < 0) byte_id = vocab_.Find(absl::string_view(&c, 1));
      if (byte_id < 0) byte_id = vocab_.special_ids().unknown;
      if (byte_id >= 0) out->push_back(byte_id);
    }
  }
}

std::string SpmTokenizer::TokenBytes(int32_t id, bool render_special) const {
  if (!vocab_.Contains(id)) return "";
  const Vocabulary::Entry& entry = vocab_.entry(id);
  switch (entry.type) {
    case TokenType::kControl:
    case TokenType::kUnknown:
      return render_special ? entry.text : "";
    case TokenType::kUserDefined:
      return entry.text;
    case TokenType::kNormal: {
      std::string result;
      absl::string_view rest = entry.text;
      for (size_t at = rest.find(kSpaceEscape); at != absl::string_view::npos;
           at = rest.find(kSpaceEscape)) {
        absl::StrAppend(&result, rest.substr(0, at), " ");
        rest.remove_prefix(at + kSpaceEscape.size());
      }
      absl::StrAppend(&result, rest);
      return result;
    }
    case TokenType::kByte: {
      // "<0xXX>"
      const std::string& text = entry.text;
      int value = 0;
      if (text.size() == 6 && text.compare(0, 3, "<0x") == 0 && text[5] == '>' &&
          absl::ascii_isxdigit(text[3]) && absl::ascii_isxdigit(text[4])) {
        const auto hex = [](char c) {
          return absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10;
        };
        value = hex(text[3]) * 16 + hex(text[4]);
        return std::string(1, static_cast<char>(value));
      }
      return text;
    }
    default:
      return "";
  }
}

absl::string_view SpmTokenizer::TokenText(int32_t id) const {
  return vocab_.Contains(id) ? absl::string_view(vocab_.entry(id).text) : absl::string_view();
}

TokenType SpmTokenizer::GetTokenType(int32_t id) const {
  return vocab_.Contains(id) ? vocab_.entry(id).type : TokenType::kUndefined;
}

}  // namespace slm::workers
