#include "workers/encoder/bio.h"

#include <algorithm>
#include <string_view>

namespace slm::workers {
namespace {

struct Word {
  int32_t begin = 0;
  int32_t end = 0;
  size_t first_token = 0;
  size_t token_count = 0;
};

// "B-PER" -> ('B', "PER"); "O" -> ('O', ""); "PER" -> ('I', "PER").
std::pair<char, std::string_view> SplitBioLabel(std::string_view label) {
  if (label == "O") return {'O', {}};
  if (label.size() > 2 && (label[0] == 'B' || label[0] == 'I') && label[1] == '-') {
    return {label[0], label.substr(2)};
  }
  return {'I', label};
}

}  // namespace

std::vector<EntitySpan> DecodeBioEntities(const std::vector<float>& probabilities,
                                          const std::vector<std::string>& labels,
                                          const std::vector<BioToken>& tokens) {
  const size_t num_labels = labels.size();
  std::vector<EntitySpan> entities;
  if (num_labels == 0 || probabilities.size() < tokens.size() * num_labels) return entities;

  std::vector<Word> words;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const auto [begin, end] = tokens[t].span;
    if (begin < 0) continue;  // special token
    const bool continues = !tokens[t].word_initial && !words.empty() &&
                           words.back().first_token + words.back().token_count == t &&
                           words.back().end == begin;
    if (continues) {
      words.back().end = end;
      ++words.back().token_count;
    } else {
      words.push_back(Word{begin, end, t, 1});
    }
  }

  // The entity being built is entities.back() while `open` is true.
  bool open = false;
  double score_sum = 0;
  int64_t score_count = 0;
  auto close = [&] {
    if (open) {
      entities.back().score = static_cast<float>(score_sum / std::max<int64_t>(score_count, 1));
      open = false;
    }
  };
  for (const Word& word : words) {
    const float* first = &probabilities[word.first_token * num_labels];
    const size_t label = std::max_element(first, first + num_labels) - first;
    const auto [tag, type] = SplitBioLabel(labels[label]);
    if (tag == 'O') {
      close();
      continue;
    }
    if (tag == 'B' || !open || entities.back().label != type) {
      close();
      entities.push_back(EntitySpan{std::string(type), word.begin, word.end, 0.0f});
      open = true;
      score_sum = 0;
      score_count = 0;
    }
    entities.back().end = word.end;
    for (size_t t = word.first_token; t < word.first_token + word.token_count; ++t) {
      score_sum += probabilities[t * num_labels + label];
      ++score_count;
    }
  }
  close();
  return entities;
}

}  // namespace slm::workers
