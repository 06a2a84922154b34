#include "workers/ngram/ngram_model.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace slm::workers {
namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;
constexpr uint8_t kTypeWord = 0;
constexpr uint8_t kTypeBigram = 1;
constexpr uint8_t kTypeChar = 2;

inline uint64_t Feed(uint64_t state, uint8_t byte) { return (state ^ byte) * kFnvPrime; }

inline bool IsWordByte(uint8_t c) {
  return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

inline uint8_t Lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

inline uint64_t FeedWord(uint64_t state, const uint8_t* word, size_t length) {
  for (size_t i = 0; i < length; ++i) state = Feed(state, Lower(word[i]));
  return state;
}

inline bool IsCodePointStart(uint8_t c) { return (c & 0xC0) != 0x80; }

}  // namespace

template <typename Sink>
void NgramModel::ForEachFeature(std::string_view text, Sink&& sink) const {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const size_t size = text.size();
  const uint8_t* previous = nullptr;
  size_t previous_length = 0;
  size_t at = 0;
  while (at < size) {
    while (at < size && !IsWordByte(bytes[at])) ++at;
    if (at == size) break;
    const size_t start = at;
    while (at < size && IsWordByte(bytes[at])) ++at;
    const uint8_t* word = bytes + start;
    const size_t length = at - start;
    sink(FeedWord(word_state_, word, length));
    if (hyper_.char_ngram_min > 0) {
      // "<word>" as a byte sequence: position 0 is '<', 1..length the word, length+1 '>'.
      const size_t wrapped = length + 2;
      auto byte_at = [&](size_t i) -> uint8_t {
        return i == 0 ? '<' : (i == wrapped - 1 ? '>' : Lower(word[i - 1]));
      };
      for (size_t begin = 0; begin < wrapped; ++begin) {
        if (!IsCodePointStart(byte_at(begin))) continue;
        // Stream code points from `begin`; after n whole code points the state is the n-gram's.
        uint64_t state = char_state_;
        uint32_t code_points = 0;
        size_t i = begin;
        while (i < wrapped && code_points < hyper_.char_ngram_max) {
          state = Feed(state, byte_at(i));
          ++i;
          while (i < wrapped && !IsCodePointStart(byte_at(i))) {
            state = Feed(state, byte_at(i));
            ++i;
          }
          ++code_points;
          if (code_points >= hyper_.char_ngram_min) sink(state);
        }
      }
    }
    if (hyper_.word_ngrams >= 2 && previous != nullptr) {
      uint64_t state = FeedWord(bigram_state_, previous, previous_length);
      state = Feed(state, ' ');
      sink(FeedWord(state, word, length));
    }
    previous = word;
    previous_length = length;
  }
}

std::vector<uint64_t> NgramModel::FeatureHashes(std::string_view text) const {
  std::vector<uint64_t> hashes;
  ForEachFeature(text, [&](uint64_t hash) { hashes.push_back(hash); });
  return hashes;
}

void NgramModel::Classify(std::string_view text, float* probabilities) const {
  const uint32_t dim = hyper_.dim;
  float hidden[kNgramMaxDim];
  float logits[kNgramMaxClasses];
  std::fill(hidden, hidden + dim, 0.0f);
  uint64_t count = 0;
  const float* table = embeddings_.data();
  const uint64_t buckets = hyper_.buckets;
  ForEachFeature(text, [&](uint64_t hash) {
    const float* row = table + (hash % buckets) * dim;
    for (uint32_t j = 0; j < dim; ++j) hidden[j] += row[j];
    ++count;
  });
  if (count > 0) {
    const float scale = 1.0f / static_cast<float>(count);
    for (uint32_t j = 0; j < dim; ++j) hidden[j] *= scale;
  }
  float max_logit = -INFINITY;
  for (uint32_t c = 0; c < num_classes_; ++c) {
    const float* w = weight_.data() + static_cast<size_t>(c) * dim;
    float sum = bias_[c];
    for (uint32_t j = 0; j < dim; ++j) sum += w[j] * hidden[j];
    logits[c] = sum;
    max_logit = std::max(max_logit, sum);
  }
  float total = 0;
  for (uint32_t c = 0; c < num_classes_; ++c) {
    logits[c] = std::exp(logits[c] - max_logit);
    total += logits[c];
  }
  std::fill(probabilities, probabilities + labels_.size(), 0.0f);
  const float inverse = 1.0f / total;
  for (uint32_t c = 0; c < num_classes_; ++c) {
    probabilities[class_label_[c]] += logits[c] * inverse;
  }
}

absl::StatusOr<std::unique_ptr<NgramModel>> NgramModel::Load(const std::string& gguf_path) {
  SLM_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(gguf_path));
  return FromGguf(*file);
}

absl::StatusOr<std::unique_ptr<NgramModel>> NgramModel::FromGguf(const GgufFile& file) {
  const std::string& path = file.path();
  auto error = [&](std::string_view key, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", std::string(key), ": ", what));
  };
  SLM_ASSIGN_OR_RETURN(std::string architecture, file.GetString("general.architecture"));
  if (architecture != "ngram") {
    return error("general.architecture",
                 absl::StrCat("expected \"ngram\", got \"", architecture, "\""));
  }
  auto model = std::unique_ptr<NgramModel>(new NgramModel());
  SLM_ASSIGN_OR_RETURN(model->name_, file.GetStringOr("general.name", path));
  SLM_ASSIGN_OR_RETURN(model->labels_, file.GetStringArray("slmgw.labels"));
  if (model->labels_.empty() || model->labels_.size() > kNgramMaxClasses) {
    return error("slmgw.labels", absl::StrCat("expected 1..", kNgramMaxClasses, " labels, got ",
                                              model->labels_.size()));
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
  NgramHyperparameters& hyper = model->hyper_;
  SLM_RETURN_IF_ERROR(get_u32("ngram.buckets", 1, kNgramMaxBuckets, &hyper.buckets));
  SLM_RETURN_IF_ERROR(get_u32("ngram.dim", 1, kNgramMaxDim, &hyper.dim));
  SLM_RETURN_IF_ERROR(get_u32("ngram.hash_seed", 0, UINT32_MAX, &hyper.hash_seed));
  SLM_RETURN_IF_ERROR(get_u32("ngram.word_ngrams", 1, 2, &hyper.word_ngrams));
  SLM_RETURN_IF_ERROR(
      get_u32("ngram.char_ngram_min", 0, kNgramMaxCharNgram, &hyper.char_ngram_min));
  SLM_RETURN_IF_ERROR(
      get_u32("ngram.char_ngram_max", 0, kNgramMaxCharNgram, &hyper.char_ngram_max));
  if (hyper.char_ngram_min > hyper.char_ngram_max) {
    return error("ngram.char_ngram_min",
                 absl::StrCat("must not exceed ngram.char_ngram_max (", hyper.char_ngram_min,
                              " > ", hyper.char_ngram_max, ")"));
  }
  SLM_ASSIGN_OR_RETURN(double threshold, file.GetFloatOr("ngram.ood_threshold", 0.0));
  if (!(threshold >= 0.0 && threshold <= 1.0)) {
    return error("ngram.ood_threshold", absl::StrCat("expected 0..1, got ", threshold));
  }
  model->suggested_threshold_ = static_cast<float>(threshold);

  SLM_ASSIGN_OR_RETURN(const GgufTensor* output, file.FindTensor("output.weight"));
  if (output->dims.size() != 2 || output->dims[0] != hyper.dim || output->dims[1] < 1 ||
      output->dims[1] > kNgramMaxClasses) {
    return error("output.weight", absl::StrCat("expected dims {", hyper.dim, ", classes <= ",
                                               kNgramMaxClasses, "}"));
  }
  model->num_classes_ = static_cast<uint32_t>(output->dims[1]);
  const int64_t classes = model->num_classes_;
  SLM_ASSIGN_OR_RETURN(model->embeddings_,
                       file.ReadF32("token_embd.weight", {hyper.dim, hyper.buckets}));
  SLM_ASSIGN_OR_RETURN(model->weight_, file.ReadF32("output.weight", {hyper.dim, classes}));
  SLM_ASSIGN_OR_RETURN(model->bias_, file.ReadF32("output.bias", {classes}));
  for (const auto* values : {&model->embeddings_, &model->weight_, &model->bias_}) {
    for (float v : *values) {
      if (!std::isfinite(v)) return error("tensors", "contain a non-finite value");
    }
  }
  if (file.Has("ngram.class_labels")) {
    SLM_ASSIGN_OR_RETURN(std::vector<int64_t> class_labels,
                         file.GetIntArray("ngram.class_labels"));
    if (static_cast<int64_t>(class_labels.size()) != classes) {
      return error("ngram.class_labels", absl::StrCat("expected ", classes, " entries (one per "
                                                      "output class), got ",
                                                      class_labels.size()));
    }
    for (int64_t label : class_labels) {
      if (label < 0 || label >= static_cast<int64_t>(model->labels_.size())) {
        return error("ngram.class_labels",
                     absl::StrCat("entry ", label, " is not a label index (0..",
                                  model->labels_.size() - 1, ")"));
      }
      model->class_label_.push_back(static_cast<uint32_t>(label));
    }
  } else {
    if (classes != static_cast<int64_t>(model->labels_.size())) {
      return error("output.weight",
                   absl::StrCat(classes, " classes but ", model->labels_.size(),
                                " labels and no ngram.class_labels"));
    }
    for (uint32_t c = 0; c < model->num_classes_; ++c) model->class_label_.push_back(c);
  }
  uint64_t seed_state = kFnvOffset;
  for (int shift = 0; shift < 32; shift += 8) {
    seed_state = Feed(seed_state, static_cast<uint8_t>(hyper.hash_seed >> shift));
  }
  model->word_state_ = Feed(seed_state, kTypeWord);
  model->bigram_state_ = Feed(seed_state, kTypeBigram);
  model->char_state_ = Feed(seed_state, kTypeChar);
  return model;
}

}  // namespace slm::workers
