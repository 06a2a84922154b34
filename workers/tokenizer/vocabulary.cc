#include "workers/tokenizer/vocabulary.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace slm::workers {
namespace {

// End-of-turn tokens llama.cpp recognizes by text (llama_vocab::load, "auto-detect EOG").
constexpr const char* kEndOfGenerationTexts[] = {
    "<|eot_id|>", "<|im_end|>",    "<|end|>",   "<|return|>", "<end_of_turn>",
    "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
};

bool IsSpace(char c) { return absl::ascii_isspace(static_cast<unsigned char>(c)); }

}  // namespace

absl::StatusOr<Vocabulary> Vocabulary::Build(std::vector<Entry> entries, SpecialTokenIds special,
                                             bool add_bos, bool add_eos,
                                             const std::string& source) {
  if (entries.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": empty vocabulary"));
  if (entries.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": vocabulary too large"));
  }
  const int32_t n = static_cast<int32_t>(entries.size());
  for (const auto& [name, id] : {std::pair<const char*, int32_t>{"bos", special.bos},
                                 {"eos", special.eos},
                                 {"unknown", special.unknown},
                                 {"padding", special.padding}}) {
    if (id < -1 || id >= n) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": ", name, " token id ", id,
                                                     " outside the vocabulary of ", n));
    }
  }
  for (int32_t id : special.end_of_generation) {
    if (id < 0 || id >= n) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": end-of-generation token id ", id,
                                                     " outside the vocabulary of ", n));
    }
  }
  if (add_bos && special.bos < 0) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": add_bos_token without a bos id"));
  }
  if (add_eos && special.eos < 0) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": add_eos_token without an eos id"));
  }
  Vocabulary vocab;
  vocab.entries_ = std::move(entries);
  vocab.ids_by_text_.reserve(vocab.entries_.size());
  for (int32_t id = 0; id < n; ++id) {
    const Entry& entry = vocab.entries_[id];
    vocab.ids_by_text_[entry.text] = id;
    const bool special_type = entry.type == TokenType::kControl ||
                              entry.type == TokenType::kUserDefined ||
                              entry.type == TokenType::kUnknown;
    if (special_type && !entry.text.empty()) vocab.specials_by_length_.push_back(id);
  }
  std::stable_sort(vocab.specials_by_length_.begin(), vocab.specials_by_length_.end(),
                   [&vocab](int32_t a, int32_t b) {
                     return vocab.entries_[a].text.size() > vocab.entries_[b].text.size();
                   });
  if (special.eos >= 0) special.end_of_generation.push_back(special.eos);
  for (const char* text : kEndOfGenerationTexts) {
    const int32_t id = vocab.Find(text);
    if (id >= 0 && vocab.entries_[id].type != TokenType::kNormal) {
      special.end_of_generation.push_back(id);
    }
  }
  std::sort(special.end_of_generation.begin(), special.end_of_generation.end());
  special.end_of_generation.erase(
      std::unique(special.end_of_generation.begin(), special.end_of_generation.end()),
      special.end_of_generation.end());
  vocab.special_ = std::move(special);
  vocab.add_bos_ = add_bos;
  vocab.add_eos_ = add_eos;
  return vocab;
}

absl::StatusOr<Vocabulary> Vocabulary::FromGguf(const GgufFile& file, bool default_add_bos) {
  SLM_ASSIGN_OR_RETURN(std::vector<std::string> tokens,
                       file.GetStringArray("tokenizer.ggml.tokens"));
  std::vector<Entry> entries(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) entries[i].text = std::move(tokens[i]);
  if (file.Has("tokenizer.ggml.token_type")) {
    SLM_ASSIGN_OR_RETURN(std::vector<int64_t> types,
                         file.GetIntArray("tokenizer.ggml.token_type"));
    if (types.size() != entries.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.path(), ": tokenizer.ggml.token_type has ", types.size(),
                       " entries, tokenizer.ggml.tokens ", entries.size()));
    }
    for (size_t i = 0; i < types.size(); ++i) {
      if (types[i] < 0 || types[i] > static_cast<int64_t>(TokenType::kByte)) {
        return absl::InvalidArgumentError(absl::StrCat(file.path(), ": tokenizer.ggml.token_type[",
                                                       i, "] = ", types[i], " is not 0..6"));
      }
      entries[i].type = static_cast<TokenType>(types[i]);
    }
  }
  if (file.Has("tokenizer.ggml.scores")) {
    SLM_ASSIGN_OR_RETURN(std::vector<double> scores, file.GetFloatArray("tokenizer.ggml.scores"));
    if (scores.size() != entries.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.path(), ": tokenizer.ggml.scores has ", scores.size(),
                       " entries, tokenizer.ggml.tokens ", entries.size()));
    }
    for (size_t i = 0; i < scores.size(); ++i) entries[i].score = static_cast<float>(scores[i]);
  }
  SpecialTokenIds special;
  for (auto& [key, id] : {std::pair<const char*, int32_t*>{"tokenizer.ggml.bos_token_id",
                                                            &special.bos},
                          {"tokenizer.ggml.eos_token_id", &special.eos},
                          {"tokenizer.ggml.unknown_token_id", &special.unknown},
                          {"tokenizer.ggml.padding_token_id", &special.padding}}) {
    SLM_ASSIGN_OR_RETURN(int64_t value, file.GetIntOr(key, -1));
    if (value < -1 || value >= static_cast<int64_t>(entries.size())) {
      return absl::InvalidArgumentError(absl::StrCat(file.path(), ": ", key, " = ", value,
                                                     " outside the vocabulary of ",
                                                     entries.size()));
    }
    *id = static_cast<int32_t>(value);
  }
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    SLM_ASSIGN_OR_RETURN(int64_t value, file.GetIntOr(key, -1));
    if (value < -1 || value >= static_cast<int64_t>(entries.size())) {
      return absl::InvalidArgumentError(absl::StrCat(file.path(), ": ", key, " = ", value,
                                                     " outside the vocabulary of ",
                                                     entries.size()));
    }
    if (value >= 0) special.end_of_generation.push_back(static_cast<int32_t>(value));
  }
  bool add_bos = default_add_bos;
  bool add_eos = false;
  if (file.Has("tokenizer.ggml.add_bos_token")) {
    SLM_ASSIGN_OR_RETURN(add_bos, file.GetBool("tokenizer.ggml.add_bos_token"));
  }
  if (file.Has("tokenizer.ggml.add_eos_token")) {
    SLM_ASSIGN_OR_RETURN(add_eos, file.GetBool("tokenizer.ggml.add_eos_token"));
  }
  return Build(std::move(entries), std::move(special), add_bos && special.bos >= 0,
               add_eos && special.eos >= 0, file.path());
}

int32_t Vocabulary::Find(absl::string_view text) const {
  auto it = ids_by_text_.find(text);
  return it == ids_by_text_.end() ? -1 : it->second;
}

void Vocabulary::set_strip(int32_t id, bool lstrip, bool rstrip) {
  if (!Contains(id)) return;
  entries_[id].lstrip = lstrip;
  entries_[id].rstrip = rstrip;
}

std::vector<TextFragment> Vocabulary::Partition(absl::string_view text,
                                                bool parse_special) const {
  std::vector<TextFragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, 0, text.size()});
  std::vector<TextFragment> next;
  for (int32_t id : specials_by_length_) {
    const Entry& special = entries_[id];
    if (!parse_special && special.type != TokenType::kUserDefined) continue;
    const absl::string_view needle = special.text;
    bool found_any = false;
    next.clear();
    for (const TextFragment& fragment : fragments) {
      if (fragment.token >= 0) {
        next.push_back(fragment);
        continue;
      }
      size_t begin = fragment.begin;
      const size_t end = fragment.end;
      while (begin < end) {
        const size_t match = text.substr(0, end).find(needle, begin);
        if (match == absl::string_view::npos) break;
        found_any = true;
        size_t left_end = match;
        if (special.lstrip) {
          while (left_end > begin && IsSpace(text[left_end - 1])) --left_end;
        }
        if (left_end > begin) next.push_back({-1, begin, left_end});
        next.push_back({id, match, match + needle.size()});
        begin = match + needle.size();
        if (special.rstrip) {
          while (begin < end && IsSpace(text[begin])) ++begin;
        }
      }
      if (begin < end) next.push_back({-1, begin, end});
    }
    if (found_any) fragments.swap(next);
  }
  return fragments;
}

}  // namespace slm::workers
