#include "workers/ngram/ngram_tagger.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace slm::workers {
namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

inline uint64_t Feed(uint64_t state, uint8_t byte) { return (state ^ byte) * kFnvPrime; }

inline bool IsSpace(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
inline bool IsUpper(uint8_t c) { return c >= 'A' && c <= 'Z'; }
inline bool IsLower(uint8_t c) { return c >= 'a' && c <= 'z'; }

std::string Lower(std::string_view word) {
  std::string out(word);
  for (char& c : out) {
    if (IsUpper(static_cast<uint8_t>(c))) c = static_cast<char>(c + 32);
  }
  return out;
}

// A-Z -> X, a-z -> x, 0-9 -> d, bytes >= 0x80 -> u, others kept; runs longer than 2 cut to 2.
std::string Shape(std::string_view word) {
  std::string out;
  for (char raw : word) {
    const auto b = static_cast<uint8_t>(raw);
    char c = raw;
    if (IsUpper(b)) {
      c = 'X';
    } else if (IsLower(b)) {
      c = 'x';
    } else if (b >= '0' && b <= '9') {
      c = 'd';
    } else if (b >= 0x80) {
      c = 'u';
    }
    const size_t n = out.size();
    if (n >= 2 && out[n - 1] == c && out[n - 2] == c) continue;
    out.push_back(c);
  }
  return out;
}

std::vector<std::pair<int32_t, int32_t>> Tokens(std::string_view text) {
  std::vector<std::pair<int32_t, int32_t>> spans;
  const auto size = static_cast<int32_t>(
      std::min<size_t>(text.size(), static_cast<size_t>(std::numeric_limits<int32_t>::max())));
  int32_t start = -1;
  for (int32_t i = 0; i < size; ++i) {
    if (IsSpace(static_cast<uint8_t>(text[i]))) {
      if (start >= 0) spans.emplace_back(start, i);
      start = -1;
    } else if (start < 0) {
      start = i;
    }
  }
  if (start >= 0) spans.emplace_back(start, size);
  return spans;
}

}  // namespace

template <typename Sink>
void NgramTagger::ForEachFeature(std::string_view text,
                                 const std::vector<std::pair<int32_t, int32_t>>& spans,
                                 size_t token, Sink&& sink) const {
  auto word_at = [&](size_t i) {
    return text.substr(spans[i].first, spans[i].second - spans[i].first);
  };
  auto hash = [&](std::initializer_list<std::string_view> parts) {
    uint64_t state = seed_state_;
    for (std::string_view part : parts) {
      for (char c : part) state = Feed(state, static_cast<uint8_t>(c));
    }
    sink(state);
  };
  const size_t count = spans.size();
  const std::string_view word = word_at(token);
  const std::string low = Lower(word);
  const std::string shape = Shape(word);
  const std::string_view low_view = low;
  hash({"b"});
  hash({"w=", word});
  hash({"l=", low});
  hash({"s=", shape});
  for (size_t k = 1; k <= 4; ++k) {
    const std::string number = std::to_string(k);
    const size_t n = std::min(k, low.size());
    hash({"p", number, "=", low_view.substr(0, n)});
    hash({"x", number, "=", low_view.substr(low.size() - n)});
  }
  const std::string_view capital =
      !word.empty() && IsUpper(static_cast<uint8_t>(word[0])) ? "1" : "0";
  hash({"c=", capital, token == 0 ? "1" : "0"});
  bool has_upper = false;
  bool has_lower = false;
  for (char c : word) {
    has_upper |= IsUpper(static_cast<uint8_t>(c));
    has_lower |= IsLower(static_cast<uint8_t>(c));
  }
  hash({"a=", has_upper && !has_lower ? "1" : "0"});
  for (int d : {-2, -1, 1, 2}) {
    const std::string prefix = std::to_string(d) + "=";
    const int64_t j = static_cast<int64_t>(token) + d;
    if (j >= 0 && j < static_cast<int64_t>(count)) {
      hash({"l", prefix, Lower(word_at(j))});
      hash({"s", prefix, Shape(word_at(j))});
    } else {
      hash({"l", prefix, "<pad>"});
    }
  }
  const std::string previous_shape = token > 0 ? Shape(word_at(token - 1)) : "^";
  const std::string next_shape = token + 1 < count ? Shape(word_at(token + 1)) : "$";
  hash({"sl=", previous_shape, "|", shape});
  hash({"sr=", shape, "|", next_shape});
  const std::string previous_low = token > 0 ? Lower(word_at(token - 1)) : "^";
  hash({"lw=", previous_low, "|", low});
  size_t capitals = 0;
  for (size_t i = 0; i < count; ++i) {
    const std::string_view w = word_at(i);
    if (!w.empty() && IsUpper(static_cast<uint8_t>(w[0]))) ++capitals;
  }
  hash({"r=", std::to_string(4 * capitals / count), "|", capital});
}

std::vector<std::vector<uint64_t>> NgramTagger::FeatureHashes(std::string_view text) const {
  const auto spans = Tokens(text);
  std::vector<std::vector<uint64_t>> hashes(spans.size());
  for (size_t t = 0; t < spans.size(); ++t) {
    ForEachFeature(text, spans, t, [&](uint64_t h) { hashes[t].push_back(h); });
  }
  return hashes;
}

NgramTagger::Output NgramTagger::Tag(std::string_view text) const {
  Output output;
  output.spans = Tokens(text);
  const size_t num_labels = labels_.size();
  output.probabilities.assign(output.spans.size() * num_labels, 0.0f);
  std::vector<double> hidden(dim_);
  for (size_t t = 0; t < output.spans.size(); ++t) {
    // Accumulate in double as the reference does, so rounding stays far below the tolerance.
    std::vector<double> sum(dim_, 0.0);
    ForEachFeature(text, output.spans, t, [&](uint64_t h) {
      const float* row = embeddings_.data() + (h % buckets_) * dim_;
      for (uint32_t j = 0; j < dim_; ++j) sum[j] += row[j];
    });
    for (uint32_t j = 0; j < dim_; ++j) {
      const double value = sum[j] + hidden_bias_[j];
      hidden[j] = relu_ ? std::max(value, 0.0) : value;
    }
    float* probabilities = output.probabilities.data() + t * num_labels;
    double max_logit = -INFINITY;
    std::vector<double> logits(num_labels);
    for (size_t l = 0; l < num_labels; ++l) {
      const float* w = weight_.data() + l * dim_;
      double value = bias_[l];
      for (uint32_t j = 0; j < dim_; ++j) value += static_cast<double>(w[j]) * hidden[j];
      logits[l] = value;
      max_logit = std::max(max_logit, value);
    }
    double total = 0;
    for (double& value : logits) {
      value = std::exp(value - max_logit);
      total += value;
    }
    for (size_t l = 0; l < num_labels; ++l) {
      probabilities[l] = static_cast<float>(logits[l] / total);
    }
  }
  return output;
}

absl::StatusOr<std::unique_ptr<NgramTagger>> NgramTagger::FromGguf(const GgufFile& file) {
  const std::string& path = file.path();
  auto error = [&](std::string_view key, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", std::string(key), ": ", what));
  };
  SLM_ASSIGN_OR_RETURN(std::string architecture, file.GetString("general.architecture"));
  if (architecture != kNgramTaggerArchitecture) {
    return error("general.architecture", absl::StrCat("expected \"", kNgramTaggerArchitecture,
                                                      "\", got \"", architecture, "\""));
  }
  auto tagger = std::unique_ptr<NgramTagger>(new NgramTagger());
  SLM_ASSIGN_OR_RETURN(tagger->name_, file.GetStringOr("general.name", path));
  SLM_ASSIGN_OR_RETURN(tagger->task_, file.GetString("slmgw.task"));
  if (tagger->task_ != "token_classification") {
    return error("slmgw.task",
                 absl::StrCat("expected \"token_classification\", got \"", tagger->task_, "\""));
  }
  SLM_ASSIGN_OR_RETURN(tagger->labels_, file.GetStringArray("slmgw.labels"));
  if (tagger->labels_.empty() || tagger->labels_.size() > kNgramTaggerMaxLabels) {
    return error("slmgw.labels", absl::StrCat("expected 1..", kNgramTaggerMaxLabels,
                                              " labels, got ", tagger->labels_.size()));
  }
  auto get_u32 = [&](std::string_view key, int64_t low, int64_t high,
                     uint32_t* out) -> absl::Status {
    SLM_ASSIGN_OR_RETURN(int64_t value, file.GetInt(key));
    if (value < low || value > high) {
      return error(key, absl::StrCat("expected ", low, "..", high, ", got ", value));
    }
    *out = static_cast<uint32_t>(value);
    return absl::OkStatus();
  };
  uint32_t seed = 0;
  SLM_RETURN_IF_ERROR(
      get_u32("ngram_tagger.buckets", 1, kNgramTaggerMaxBuckets, &tagger->buckets_));
  SLM_RETURN_IF_ERROR(get_u32("ngram_tagger.dim", 1, kNgramTaggerMaxDim, &tagger->dim_));
  SLM_RETURN_IF_ERROR(get_u32("ngram_tagger.hash_seed", 0, UINT32_MAX, &seed));
  SLM_ASSIGN_OR_RETURN(std::string activation, file.GetString("ngram_tagger.activation"));
  if (activation != "relu" && activation != "none") {
    return error("ngram_tagger.activation",
                 absl::StrCat("expected \"relu\" or \"none\", got \"", activation, "\""));
  }
  tagger->relu_ = activation == "relu";
  const int64_t dim = tagger->dim_;
  const auto num_labels = static_cast<int64_t>(tagger->labels_.size());
  SLM_ASSIGN_OR_RETURN(tagger->embeddings_,
                       file.ReadF32("token_embd.weight", {dim, int64_t{tagger->buckets_}}));
  SLM_ASSIGN_OR_RETURN(tagger->hidden_bias_, file.ReadF32("hidden.bias", {dim}));
  SLM_ASSIGN_OR_RETURN(tagger->weight_, file.ReadF32("output.weight", {dim, num_labels}));
  SLM_ASSIGN_OR_RETURN(tagger->bias_, file.ReadF32("output.bias", {num_labels}));
  for (const auto* values :
       {&tagger->embeddings_, &tagger->hidden_bias_, &tagger->weight_, &tagger->bias_}) {
    for (float v : *values) {
      if (!std::isfinite(v)) return error("tensors", "contain a non-finite value");
    }
  }
  uint64_t state = kFnvOffset;
  for (int shift = 0; shift < 32; shift += 8) {
    state = Feed(state, static_cast<uint8_t>(seed >> shift));
  }
  tagger->seed_state_ = state;
  return tagger;
}

}  // namespace slm::workers
