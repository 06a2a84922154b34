// A BERT-family encoder (post-LN BERT, MiniLM, ...) with its WordPiece tokenizer and a
// classification head, loaded from one GGUF file and run on our oneDNN kernels. A GGUF with
// general.architecture = "ngram_tagger" (workers/ngram/ngram_tagger.h: hashed-feature BIO tagger
// over whitespace tokens) loads too and serves ExtractEntities the same way, and one with
// general.architecture = "ngram" (workers/ngram/ngram_model.h, fastText-style) serves Classify
// (for both, max_tokens counts whitespace tokens and Logits is FailedPrecondition).
//
//   SLM_ASSIGN_OR_RETURN(std::unique_ptr<EncoderModel> model,
//                        EncoderModel::Load("models/sentiment.gguf", {DType::kInt8, 256}));
//   SLM_ASSIGN_OR_RETURN(ClassifyOutput out, model->Classify("what a lovely day"));
//   // out.labels[0] is the most probable label.
//
// Ownership: Load returns the only owner; the model owns its weights and tokenizer and keeps no
// reference to the file after Load returns.
// Thread-safety: immutable after Load; every const method may be called concurrently from many
// threads. Scratch buffers belong to the calling thread (reused by its later calls, never shared);
// each call runs on EncoderOptions::threads OpenMP threads (see there). Concurrent calls each
// bring their own OpenMP team, so callers bound concurrency x threads to the cores they have.
#ifndef SLM_WORKERS_ENCODER_ENCODER_MODEL_H_
#define SLM_WORKERS_ENCODER_ENCODER_MODEL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/dtype.h"

namespace slm::workers {

struct EncoderOptions {
  // Weight precision of every Linear layer (embeddings and layer norms stay f32).
  kernels::DType dtype = kernels::DType::kF32;
  // Longest accepted input, [CLS] and [SEP] included; capped by bert.context_length.
  int64_t max_tokens = 512;
  // OpenMP threads per call. oneDNN fixes a matmul's thread count when its primitive is created
  // (in Load), whatever omp_set_num_threads says at call time, so the model needs to know it up
  // front: > 0 builds the layers for that many threads and runs every call on exactly that many
  // (the calling thread's OpenMP setting is restored on return); 0 uses omp_get_max_threads() of
  // the thread that calls Load, and calls then run on the caller's OpenMP setting.
  int threads = 0;
};

struct LabelScore {
  std::string label;
  float score;  // softmax probability
};

struct ClassifyOutput {
  std::vector<LabelScore> labels;  // every label, sorted by score, highest first
  int32_t tokens_in = 0;           // tokens fed to the model, [CLS] and [SEP] included
};

struct EntitySpan {
  std::string label;  // the entity type: "PER" for "B-PER"/"I-PER"
  int32_t begin = 0;  // byte offsets [begin, end) in the input text
  int32_t end = 0;
  float score = 0;  // mean probability of the labels of the entity's tokens
};

struct EntitiesOutput {
  std::vector<EntitySpan> entities;  // in text order
  int32_t tokens_in = 0;
};

// Returns true when the caller went away or its deadline passed; the model then stops at the next
// layer boundary with Cancelled. Called from the thread that runs the model.
using StopFn = std::function<bool()>;

// A loaded BERT-family encoder with its tokenizer and head. Immutable after Load; every method
// may be called concurrently from many threads (kernels use the calling thread's OpenMP budget).
class EncoderModel {
 public:
  // Reads and validates every hyperparameter and tensor shape of `gguf_path`; a corrupt or
  // mismatched file is an error that names the offending key or tensor, never a crash.
  static absl::StatusOr<std::unique_ptr<EncoderModel>> Load(const std::string& gguf_path,
                                                            EncoderOptions options);
  ~EncoderModel();
  EncoderModel(const EncoderModel&) = delete;
  EncoderModel& operator=(const EncoderModel&) = delete;

  const std::string& name() const;  // general.name, else file stem
  const std::string& task() const;  // slmgw.task
  const std::vector<std::string>& labels() const;
  int64_t max_tokens() const;  // min(options.max_tokens, bert.context_length)
  kernels::DType dtype() const;
  int threads() const;  // the resolved EncoderOptions::threads (>= 1)

  // Errors: InvalidArgument if the text has more tokens than max_tokens (message names both
  // numbers), FailedPrecondition if the model's task does not match, Cancelled if stop() fired
  // (checked between layers).
  absl::StatusOr<ClassifyOutput> Classify(std::string_view text,
                                          const StopFn& stop = nullptr) const;
  // BIO decoding of token labels "B-x"/"I-x"/"O" into entity spans (score = mean prob of its
  // tokens; a word's label = its first sub-token's label).
  absl::StatusOr<EntitiesOutput> ExtractEntities(std::string_view text,
                                                 const StopFn& stop = nullptr) const;
  // Raw logits for ids that already include [CLS]..[SEP]: [num_labels] for text classification,
  // [ids.size() * num_labels] for token classification.
  absl::StatusOr<std::vector<float>> Logits(const std::vector<int32_t>& ids,
                                            const StopFn& stop = nullptr) const;

 private:
  EncoderModel();
  absl::StatusOr<EntitiesOutput> TagEntities(std::string_view text, const StopFn& stop) const;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_ENCODER_ENCODER_MODEL_H_
