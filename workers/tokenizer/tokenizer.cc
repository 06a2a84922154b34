#include "workers/tokenizer/tokenizer.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "workers/tokenizer/bpe_tokenizer.h"
#include "workers/tokenizer/spm_tokenizer.h"
#include "workers/tokenizer/utf8.h"
#include "workers/tokenizer/wordpiece.h"

namespace slm::workers {
namespace {

bool IsSpecialType(TokenType type) {
  return type == TokenType::kControl || type == TokenType::kUnknown ||
         type == TokenType::kUserDefined;
}

// Adapts WordPieceTokenizer (BERT) to the Tokenizer interface.
class WordPieceAdapter final : public Tokenizer {
 public:
  explicit WordPieceAdapter(std::unique_ptr<WordPieceTokenizer> wordpiece)
      : wordpiece_(std::move(wordpiece)) {
    special_.bos = wordpiece_->cls_id();
    special_.eos = wordpiece_->sep_id();
    special_.unknown = wordpiece_->unknown_id();
    special_.padding = wordpiece_->pad_id();
    special_.end_of_generation = {wordpiece_->sep_id()};
  }
  using Tokenizer::Encode;
  std::vector<int32_t> Encode(absl::string_view text, const EncodeOptions& options) const override {
    return wordpiece_->Encode(std::string_view(text.data(), text.size()), options.add_special).ids;
  }
  std::string TokenBytes(int32_t id, bool render_special) const override {
    const TokenType type = GetTokenType(id);
    if (type == TokenType::kUndefined) return "";
    const std::string_view text = wordpiece_->TokenText(id);
    if (type == TokenType::kControl) return render_special ? std::string(text) : "";
    static constexpr std::string_view kWordStart = "\xE2\x96\x81";
    if (text.substr(0, kWordStart.size()) == kWordStart) {
      return " " + std::string(text.substr(kWordStart.size()));
    }
    return std::string(text);
  }
  std::string Decode(const std::vector<int32_t>& ids, bool render_special) const override {
    if (!render_special) return wordpiece_->Decode(ids);
    return Tokenizer::Decode(ids, render_special);
  }
  absl::string_view TokenText(int32_t id) const override {
    const std::string_view text = wordpiece_->TokenText(id);
    return absl::string_view(text.data(), text.size());
  }
  TokenType GetTokenType(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return TokenType::kUndefined;
    if (id == wordpiece_->cls_id() || id == wordpiece_->sep_id() || id == wordpiece_->pad_id() ||
        id == wordpiece_->unknown_id()) {
      return TokenType::kControl;
    }
    return TokenType::kNormal;
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(wordpiece_->vocab_size()); }
  const SpecialTokenIds& special_ids() const override { return special_; }
  absl::string_view model() const override { return "bert"; }

 private:
  std::unique_ptr<WordPieceTokenizer> wordpiece_;
  SpecialTokenIds special_;
};

}  // namespace

bool Tokenizer::IsEndOfGeneration(int32_t id) const {
  const std::vector<int32_t>& ids = special_ids().end_of_generation;
  return std::binary_search(ids.begin(), ids.end(), id);
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string text;
  // The encoder prefixes a space to text at the start and after each special token.
  bool after_special = true;
  for (int32_t id : ids) {
    std::string piece = TokenBytes(id, render_special);
    if (IsSpecialType(GetTokenType(id))) {
      text += piece;
      after_special = true;
      continue;
    }
    if (piece.empty()) continue;
    if (adds_space_prefix() && after_special && piece[0] == ' ') piece.erase(0, 1);
    after_special = false;
    text += piece;
  }
  return text;
}

DecodeStream::DecodeStream(const Tokenizer& tokenizer, bool render_special)
    : tokenizer_(tokenizer), render_special_(render_special) {}

std::string DecodeStream::Next(int32_t id) {
  std::string piece = tokenizer_.TokenBytes(id, render_special_);
  if (IsSpecialType(tokenizer_.GetTokenType(id))) {
    after_special_ = true;
  } else if (!piece.empty()) {
    if (tokenizer_.adds_space_prefix() && after_special_ && piece[0] == ' ') piece.erase(0, 1);
    after_special_ = false;
  }
  pending_ += piece;
  std::string out;
  size_t pos = 0;
  while (pos < pending_.size()) {
    char32_t code_point = 0;
    size_t length = 1;
    const utf8::SequenceStatus status = utf8::Examine(pending_, pos, &code_point, &length);
    if (status == utf8::SequenceStatus::kIncomplete) break;
    if (status == utf8::SequenceStatus::kValid) {
      out.append(pending_, pos, length);
    } else {
      out.append(utf8::kReplacement.data(), utf8::kReplacement.size());
    }
    pos += length;
  }
  pending_.erase(0, pos);
  return out;
}

std::string DecodeStream::Flush() {
  std::string out;
  if (!pending_.empty()) out.append(utf8::kReplacement.data(), utf8::kReplacement.size());
  pending_.clear();
  return out;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerFromGguf(const GgufFile& file) {
  SLM_ASSIGN_OR_RETURN(std::string model, file.GetString("tokenizer.ggml.model"));
  if (model == "llama") {
    SLM_ASSIGN_OR_RETURN(std::unique_ptr<SpmTokenizer> spm, SpmTokenizer::FromGguf(file));
    return std::unique_ptr<Tokenizer>(std::move(spm));
  }
  if (model == "gpt2") {
    SLM_ASSIGN_OR_RETURN(std::unique_ptr<BpeTokenizer> bpe, BpeTokenizer::FromGguf(file));
    return std::unique_ptr<Tokenizer>(std::move(bpe));
  }
  if (model == "bert") {
    SLM_ASSIGN_OR_RETURN(std::unique_ptr<WordPieceTokenizer> wordpiece,
                         WordPieceTokenizer::FromGguf(file));
    return std::unique_ptr<Tokenizer>(new WordPieceAdapter(std::move(wordpiece)));
  }
  return absl::UnimplementedError(
      absl::StrCat(file.path(), ": tokenizer.ggml.model '", model,
                   "' is not supported (supported: llama, gpt2, bert)"));
}

}  // namespace slm::workers
