#include "workers/encoder/encoder_model.h"

#include <omp.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/linear.h"
#include "kernels/ops.h"
#include "workers/encoder/bert.h"
#include "workers/encoder/bio.h"
#include "workers/gguf/gguf_file.h"
#include "workers/ngram/ngram_model.h"
#include "workers/ngram/ngram_tagger.h"
#include "workers/tokenizer/wordpiece.h"

namespace slm::workers {
namespace {

constexpr char kTextClassification[] = "text_classification";
constexpr char kTokenClassification[] = "token_classification";

// Sets the calling thread's OpenMP thread count for the scope (threads > 0) and restores it.
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int threads) : previous_(omp_get_max_threads()), active_(threads > 0) {
    if (active_) omp_set_num_threads(threads);
  }
  ~ScopedOmpThreads() {
    if (active_) omp_set_num_threads(previous_);
  }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  int previous_;
  bool active_;
};

}  // namespace

struct EncoderModel::State {
  std::string name;
  std::string task;
  std::string pooling;  // "cls" or "mean"; text classification only
  std::vector<std::string> labels;
  kernels::DType dtype = kernels::DType::kF32;
  int requested_threads = 0;  // EncoderOptions::threads as given (0: caller's setting)
  int threads = 1;            // what the layers were built for
  std::unique_ptr<WordPieceTokenizer> tokenizer;
  std::unique_ptr<BertGraph> graph;
  std::unique_ptr<kernels::Linear> pooler;  // [hidden, hidden] + tanh; may be null
  std::unique_ptr<kernels::Linear> output;  // [num_labels, hidden]
  // Set instead of tokenizer/graph/output for general.architecture = "ngram_tagger".
  std::unique_ptr<NgramTagger> tagger;
  // Set instead for general.architecture = "ngram" (a fastText-style text classifier).
  std::unique_ptr<NgramModel> classifier;
  int64_t tagger_max_tokens = 0;  // max_tokens of either (whitespace tokens)

  bool is_token_classification() const { return task == kTokenClassification; }
};

EncoderModel::EncoderModel() : state_(std::make_unique<State>()) {}
EncoderModel::~EncoderModel() = default;

absl::StatusOr<std::unique_ptr<EncoderModel>> EncoderModel::Load(const std::string& gguf_path,
                                                                 EncoderOptions options) {
  SLM_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(gguf_path));
  auto model = std::unique_ptr<EncoderModel>(new EncoderModel());
  State& state = *model->state_;
  state.dtype = options.dtype;
  if (options.threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("EncoderOptions.threads is ", options.threads, "; expected >= 0"));
  }
  // oneDNN sizes each primitive's thread team at creation: build under the calls' setting.
  ScopedOmpThreads scoped_threads(options.threads);
  state.requested_threads = options.threads;
  state.threads = omp_get_max_threads();
  SLM_ASSIGN_OR_RETURN(std::string architecture,
                       file->GetStringOr("general.architecture", "bert"));
  if (architecture == kNgramTaggerArchitecture) {
    SLM_ASSIGN_OR_RETURN(state.tagger, NgramTagger::FromGguf(*file));
    state.name = state.tagger->name();
    state.task = state.tagger->task();
    state.labels = state.tagger->labels();
    state.dtype = kernels::DType::kF32;  // the tagger's weights are f32 whatever was asked
    state.tagger_max_tokens = options.max_tokens;
    return model;
  }
  if (architecture == "ngram") {
    SLM_ASSIGN_OR_RETURN(state.classifier, NgramModel::FromGguf(*file));
    state.name = state.classifier->name();
    state.task = kTextClassification;
    state.labels = state.classifier->labels();
    state.dtype = kernels::DType::kF32;
    state.tagger_max_tokens = options.max_tokens;
    return model;
  }
  SLM_ASSIGN_OR_RETURN(
      state.name,
      file->GetStringOr("general.name", std::filesystem::path(gguf_path).stem().string()));
  SLM_ASSIGN_OR_RETURN(state.task, file->GetString("slmgw.task"));
  if (state.task != kTextClassification && state.task != kTokenClassification) {
    return absl::InvalidArgumentError(absl::StrCat(gguf_path, ": slmgw.task is \"", state.task,
                                                   "\"; expected \"", kTextClassification,
                                                   "\" or \"", kTokenClassification, "\""));
  }
  SLM_ASSIGN_OR_RETURN(state.pooling, file->GetStringOr("slmgw.pooling", "cls"));
  if (state.pooling != "cls" && state.pooling != "mean") {
    return absl::InvalidArgumentError(absl::StrCat(
        gguf_path, ": slmgw.pooling is \"", state.pooling, "\"; expected \"cls\" or \"mean\""));
  }
  SLM_ASSIGN_OR_RETURN(state.labels, file->GetStringArray("slmgw.labels"));
  if (state.labels.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(gguf_path, ": slmgw.labels is empty; expected one name per class"));
  }
  SLM_ASSIGN_OR_RETURN(state.tokenizer, WordPieceTokenizer::FromGguf(*file));
  SLM_ASSIGN_OR_RETURN(state.graph, BertGraph::Load(*file, options.dtype, options.max_tokens));
  const BertHparams& hp = state.graph->hparams();
  if (static_cast<int64_t>(state.tokenizer->vocab_size()) > hp.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(gguf_path, ": tokenizer.ggml.tokens has ", state.tokenizer->vocab_size(),
                     " tokens but token_embd.weight has only ", hp.vocab_size, " rows"));
  }

  const int64_t hidden = hp.hidden_size;
  const int64_t num_labels = static_cast<int64_t>(state.labels.size());
  const int64_t head_rows = state.is_token_classification() ? state.graph->max_tokens() : 1;
  if (!state.is_token_classification() && state.pooling == "cls" &&
      file->FindTensor("cls.pooler.weight").ok()) {
    SLM_ASSIGN_OR_RETURN(std::vector<float> weight,
                         ReadTensor(*file, "cls.pooler.weight", {hidden, hidden}));
    SLM_ASSIGN_OR_RETURN(std::vector<float> bias, ReadTensor(*file, "cls.pooler.bias", {hidden}));
    SLM_ASSIGN_OR_RETURN(state.pooler,
                         kernels::Linear::Create(weight.data(), bias.data(), hidden, hidden,
                                                 options.dtype, kernels::Activation::kNone, 1));
  }
  SLM_ASSIGN_OR_RETURN(std::vector<float> weight,
                       ReadTensor(*file, "cls.output.weight", {num_labels, hidden}));
  SLM_ASSIGN_OR_RETURN(std::vector<float> bias, ReadTensor(*file, "cls.output.bias", {num_labels}));
  // The classifier is tiny and decides the answer: keep it in f32 whatever the body's dtype.
  SLM_ASSIGN_OR_RETURN(
      state.output,
      kernels::Linear::Create(weight.data(), bias.data(), num_labels, hidden, kernels::DType::kF32,
                              kernels::Activation::kNone, head_rows));
  return model;
}

const std::string& EncoderModel::name() const { return state_->name; }
const std::string& EncoderModel::task() const { return state_->task; }
const std::vector<std::string>& EncoderModel::labels() const { return state_->labels; }
int64_t EncoderModel::max_tokens() const {
  return state_->graph == nullptr ? state_->tagger_max_tokens : state_->graph->max_tokens();
}
kernels::DType EncoderModel::dtype() const { return state_->dtype; }
int EncoderModel::threads() const { return state_->threads; }

absl::StatusOr<std::vector<float>> EncoderModel::Logits(const std::vector<int32_t>& ids,
                                                        const StopFn& stop) const {
  const State& state = *state_;
  if (state.graph == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model ", state.name, " is an n-gram model, which reads text, not token ids"));
  }
  const int64_t seq = static_cast<int64_t>(ids.size());
  if (seq > max_tokens()) {
    return absl::InvalidArgumentError(
        absl::StrCat("input has ", seq, " tokens; this model accepts at most ", max_tokens()));
  }
  ScopedOmpThreads scoped_threads(state.requested_threads);
  const int64_t hidden = state.graph->hparams().hidden_size;
  const int64_t num_labels = static_cast<int64_t>(state.labels.size());
  thread_local std::vector<float> states;  // [seq, hidden]; reused by this thread's calls
  if (states.size() < static_cast<size_t>(seq * hidden)) states.resize(seq * hidden);
  const bool cls_pooling = !state.is_token_classification() && state.pooling == "cls";
  SLM_RETURN_IF_ERROR(state.graph->Forward(
      ids, stop, states.data(), cls_pooling ? BertGraph::Rows::kFirst : BertGraph::Rows::kAll));

  if (state.is_token_classification()) {
    std::vector<float> logits(seq * num_labels);
    SLM_RETURN_IF_ERROR(state.output->Forward(states.data(), seq, logits.data()));
    return logits;
  }
  std::vector<float> pooled(hidden, 0.0f);
  if (state.pooling == "mean") {
    for (int64_t t = 0; t < seq; ++t) {
      for (int64_t c = 0; c < hidden; ++c) pooled[c] += states[t * hidden + c];
    }
    for (float& value : pooled) value /= static_cast<float>(seq);
  } else if (state.pooler != nullptr) {
    SLM_RETURN_IF_ERROR(state.pooler->Forward(states.data(), 1, pooled.data()));
    kernels::Tanh(pooled.data(), hidden);
  } else {
    std::copy(states.begin(), states.begin() + hidden, pooled.begin());
  }
  std::vector<float> logits(num_labels);
  SLM_RETURN_IF_ERROR(state.output->Forward(pooled.data(), 1, logits.data()));
  return logits;
}

absl::StatusOr<ClassifyOutput> EncoderModel::Classify(std::string_view text,
                                                      const StopFn& stop) const {
  const State& state = *state_;
  if (state.task != kTextClassification) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model ", state.name, " has task ", state.task, "; Classify needs ", kTextClassification));
  }
  std::vector<float> logits;
  ClassifyOutput output;
  if (state.classifier != nullptr) {
    // tokens_in: whitespace-separated words (the n-gram model has no vocabulary).
    int64_t words = 0;
    bool in_word = false;
    for (char c : text) {
      const bool space =
          c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
      if (!space && !in_word) ++words;
      in_word = !space;
    }
    if (words > max_tokens()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input has ", words, " tokens; this model accepts at most ", max_tokens()));
    }
    if (stop != nullptr && stop()) return absl::CancelledError("classification cancelled");
    logits.resize(state.labels.size());
    state.classifier->Classify(text, logits.data());  // probabilities already
    output.tokens_in = static_cast<int32_t>(std::min<int64_t>(words, INT32_MAX));
  } else {
    Encoding encoding = state.tokenizer->Encode(text, /*add_special=*/true);
    SLM_ASSIGN_OR_RETURN(logits, Logits(encoding.ids, stop));
    kernels::Softmax(logits.data(), 1, static_cast<int64_t>(logits.size()));
    output.tokens_in = static_cast<int32_t>(encoding.ids.size());
  }
  output.labels.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) output.labels.push_back({state.labels[i], logits[i]});
  std::stable_sort(output.labels.begin(), output.labels.end(),
                   [](const LabelScore& a, const LabelScore& b) { return a.score > b.score; });
  return output;
}

absl::StatusOr<EntitiesOutput> EncoderModel::ExtractEntities(std::string_view text,
                                                             const StopFn& stop) const {
  const State& state = *state_;
  if (state.task != kTokenClassification) {
    return absl::FailedPreconditionError(absl::StrCat("model ", state.name, " has task ",
                                                      state.task, "; ExtractEntities needs ",
                                                      kTokenClassification));
  }
  if (state.tagger != nullptr) return TagEntities(text, stop);
  Encoding encoding = state.tokenizer->Encode(text, /*add_special=*/true);
  SLM_ASSIGN_OR_RETURN(std::vector<float> probabilities, Logits(encoding.ids, stop));
  const int64_t num_labels = static_cast<int64_t>(state.labels.size());
  kernels::Softmax(probabilities.data(), static_cast<int64_t>(encoding.ids.size()), num_labels);
  std::vector<BioToken> tokens(encoding.ids.size());
  for (size_t t = 0; t < tokens.size(); ++t) {
    tokens[t].span = encoding.spans[t];
    const std::string_view piece = state.tokenizer->TokenText(encoding.ids[t]);
    // llama.cpp's WordPiece convention: word-initial pieces start with U+2581 ("▁"); a
    // bracketed special such as [UNK] stands for a whole word.
    const bool bracketed = piece.size() > 2 && piece.front() == '[' && piece.back() == ']';
    tokens[t].word_initial = bracketed || piece.rfind("\xE2\x96\x81", 0) == 0;
  }
  EntitiesOutput output;
  output.tokens_in = static_cast<int32_t>(encoding.ids.size());
  output.entities = DecodeBioEntities(probabilities, state.labels, tokens);
  return output;
}

absl::StatusOr<EntitiesOutput> EncoderModel::TagEntities(std::string_view text,
                                                         const StopFn& stop) const {
  const State& state = *state_;
  NgramTagger::Output tagged = state.tagger->Tag(text);
  const auto count = static_cast<int64_t>(tagged.spans.size());
  if (count > max_tokens()) {
    return absl::InvalidArgumentError(
        absl::StrCat("input has ", count, " tokens; this model accepts at most ", max_tokens()));
  }
  if (stop != nullptr && stop()) return absl::CancelledError("entity tagging cancelled");
  std::vector<BioToken> tokens(tagged.spans.size());
  for (size_t t = 0; t < tokens.size(); ++t) tokens[t].span = tagged.spans[t];  // words
  EntitiesOutput output;
  output.tokens_in = static_cast<int32_t>(count);
  output.entities = DecodeBioEntities(tagged.probabilities, state.labels, tokens);
  return output;
}

}  // namespace slm::workers
