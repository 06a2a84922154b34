#include "workers/tokenizer/bpe_tokenizer.h"

#include <queue>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "workers/tokenizer/utf8.h"

namespace slm::workers {
namespace {

struct ByteLevelTables {
  char32_t byte_to_unicode[256];
  int16_t unicode_to_byte[324];  // byte-level code points are below U+0144
  ByteLevelTables() {
    for (auto& b : unicode_to_byte) b = -1;
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      byte_to_unicode[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      unicode_to_byte[byte_to_unicode[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTables& Tables() {
  static const ByteLevelTables* tables = new ByteLevelTables();
  return *tables;
}

struct Symbol {
  int prev;
  int next;
  int32_t id;  // -1: merged away (or a byte with no token)
};

struct Bigram {
  int32_t rank;
  int left;
  int right;
  int32_t left_id;
  int32_t right_id;
};

// Lowest rank first; among equal ranks, the leftmost pair (llama.cpp's llm_bigram_bpe).
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

char32_t ByteToUnicode(unsigned char byte) { return Tables().byte_to_unicode[byte]; }

int UnicodeToByte(char32_t code_point) {
  return code_point < 324 ? Tables().unicode_to_byte[code_point] : -1;
}

BpeTokenizer::BpeTokenizer(Vocabulary vocab, PreTokenizer pre_tokenizer, bool ignore_merges)
    : vocab_(std::move(vocab)), pre_tokenizer_(pre_tokenizer), ignore_merges_(ignore_merges) {
  for (int b = 0; b < 256; ++b) {
    std::string text;
    utf8::Append(ByteToUnicode(static_cast<unsigned char>(b)), &text);
    byte_tokens_[b] = vocab_.Find(text);
  }
}

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Create(
    Vocabulary vocab, const std::vector<std::pair<std::string, std::string>>& merges,
    PreTokenizer pre_tokenizer, bool ignore_merges, const std::string& source) {
  std::unique_ptr<BpeTokenizer> tokenizer(
      new BpeTokenizer(std::move(vocab), pre_tokenizer, ignore_merges));
  tokenizer->merges_.reserve(merges.size());
  size_t skipped = 0;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const int32_t left_id = tokenizer->vocab_.Find(left);
    const int32_t right_id = tokenizer->vocab_.Find(right);
    const int32_t result = tokenizer->vocab_.Find(absl::StrCat(left, right));
    if (left_id < 0 || right_id < 0 || result < 0) {
      ++skipped;
      continue;
    }
    tokenizer->merges_.try_emplace(PairKey(left_id, right_id),
                                   Merge{static_cast<int32_t>(rank), result});
  }
  if (skipped > 0) {
    SLM_LOG(WARNING) << source << ": skipped " << skipped
                     << " BPE merges whose parts or result are not in the vocabulary";
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromGguf(const GgufFile& file) {
  SLM_ASSIGN_OR_RETURN(std::string model, file.GetString("tokenizer.ggml.model"));
  if (model != "gpt2") {
    return absl::InvalidArgumentError(absl::StrCat(
        file.path(), ": tokenizer.ggml.model is '", model, "', BpeTokenizer needs 'gpt2'"));
  }
  SLM_ASSIGN_OR_RETURN(std::string pre_name, file.GetStringOr("tokenizer.ggml.pre", "gpt-2"));
  auto pre_tokenizer = PreTokenizerFromGgufName(pre_name);
  if (!pre_tokenizer.ok()) {
    return absl::Status(pre_tokenizer.status().code(),
                        absl::StrCat(file.path(), ": ", pre_tokenizer.status().message()));
  }
  SLM_ASSIGN_OR_RETURN(std::vector<std::string> merge_strings,
                       file.GetStringArray("tokenizer.ggml.merges"));
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merge_strings.size());
  for (size_t i = 0; i < merge_strings.size(); ++i) {
    const std::string& merge = merge_strings[i];
    const size_t space = merge.find(' ', 1);
    if (space == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(file.path(), ": tokenizer.ggml.merges[", i,
                                                     "] = '", merge,
                                                     "' is not 'left right'"));
    }
    merges.emplace_back(merge.substr(0, space), merge.substr(space + 1));
  }
  SLM_ASSIGN_OR_RETURN(Vocabulary vocab, Vocabulary::FromGguf(file, /*default_add_bos=*/false));
  const bool ignore_merges = *pre_tokenizer == PreTokenizer::kLlama3;
  return Create(std::move(vocab), merges, *pre_tokenizer, ignore_merges, file.path());
}

std::vector<int32_t> BpeTokenizer::Encode(absl::string_view text,
                                          const EncodeOptions& options) const {
  std::vector<int32_t> out;
  if (options.add_special && vocab_.add_bos()) out.push_back(vocab_.special_ids().bos);
  std::vector<size_t> word_ends;
  for (const TextFragment& fragment : vocab_.Partition(text, options.parse_special)) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
      continue;
    }
    const absl::string_view raw = text.substr(fragment.begin, fragment.end - fragment.begin);
    word_ends.clear();
    SplitWords(pre_tokenizer_, raw, &word_ends);
    size_t begin = 0;
    for (size_t end : word_ends) {
      EncodeWord(raw.substr(begin, end - begin), &out);
      begin = end;
    }
  }
  if (options.add_special && vocab_.add_eos()) out.push_back(vocab_.special_ids().eos);
  return out;
}

void BpeTokenizer::EncodeWord(absl::string_view word, std::vector<int32_t>* out) const {
  if (ignore_merges_) {
    std::string encoded;
    for (char c : word) utf8::Append(ByteToUnicode(static_cast<unsigned char>(c)), &encoded);
    const int32_t id = vocab_.Find(encoded);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  const int n = static_cast<int>(word.size());
  std::vector<Symbol> symbols(n);
  for (int i = 0; i < n; ++i) {
    symbols[i] = {i - 1, i + 1 < n ? i + 1 : -1,
                  byte_tokens_[static_cast<unsigned char>(word[i])]};
  }
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto add_bigram = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const int32_t left_id = symbols[left].id;
    const int32_t right_id = symbols[right].id;
    if (left_id < 0 || right_id < 0) return;
    auto it = merges_.find(PairKey(left_id, right_id));
    if (it == merges_.end()) return;
    queue.push({it->second.rank, left, right, left_id, right_id});
  };
  for (int i = 1; i < n; ++i) add_bigram(i - 1, i);
  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    if (left.id != bigram.left_id || right.id != bigram.right_id || left.next != bigram.right) {
      continue;  // outdated: a side was merged since
    }
    left.id = merges_.find(PairKey(bigram.left_id, bigram.right_id))->second.result;
    right.id = -1;
    left.next = right.next;
    right.prev = right.next = -2;  // unlinked
    if (left.next >= 0) symbols[left.next].prev = bigram.left;
    add_bigram(left.prev, bigram.left);
    add_bigram(bigram.left, left.next);
  }
  for (int i = n > 0 ? 0 : -1; i >= 0; i = symbols[i].next) {
    if (symbols[i].id >= 0) out->push_back(symbols[i].id);
  }
}

std::string BpeTokenizer::TokenBytes(int32_t id, bool render_special) const {
  if (!vocab_.Contains(id)) return "";
  const Vocabulary::Entry& entry = vocab_.entry(id);
  switch (entry.type) {
    case TokenType::kControl:
    case TokenType::kUnknown:
      return render_special ? entry.text : "";
    case TokenType::kUserDefined:
      return entry.text;
    case TokenType::kNormal:
    case TokenType::kByte:
    case TokenType::kUndefined: {
      std::string bytes;
      const absl::string_view text = entry.text;
      for (size_t pos = 0; pos < text.size();) {
        char32_t code_point = 0;
        size_t length = 1;
        if (utf8::Examine(text, pos, &code_point, &length) == utf8::SequenceStatus::kValid) {
          const int byte = UnicodeToByte(code_point);
          if (byte >= 0) {
            bytes.push_back(static_cast<char>(byte));
          } else {
            bytes.append(text.substr(pos, length).data(), length);
          }
        } else {
          bytes.push_back(text[pos]);
        }
        pos += length;
      }
      return bytes;
    }
    default:
      return "";
  }
}

absl::string_view BpeTokenizer::TokenText(int32_t id) const {
  return vocab_.Contains(id) ? absl::string_view(vocab_.entry(id).text) : absl::string_view();
}

TokenType BpeTokenizer::GetTokenType(int32_t id) const {
  return vocab_.Contains(id) ? vocab_.entry(id).type : TokenType::kUndefined;
}

}  // namespace slm::workers
