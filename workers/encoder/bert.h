// BertGraph: the transformer body of a post-LayerNorm BERT encoder (BERT, MiniLM, ...), from
// token ids to final hidden states, on kernels::Linear and kernels ops.
//
//   x = LN(token_embd[ids] + position_embd[0..n) + token_types[0])
//   per layer: x = LN(x + attn_output(MHA(attn_qkv(x))));  x = LN(x + ffn_down(gelu(ffn_up(x))))
//
// This is exactly Hugging Face BertModel in eval mode (see tools/pyslm/bert.py, the reference).
// Q, K and V are fused into one [3*hidden, hidden] Linear; ffn_up carries the GELU.
//
//   SLM_ASSIGN_OR_RETURN(std::unique_ptr<BertGraph> graph,
//                        BertGraph::Load(*file, DType::kInt8, /*max_tokens=*/512));
//   std::vector<float> hidden(ids.size() * graph->hparams().hidden_size);
//   SLM_RETURN_IF_ERROR(graph->Forward(ids, /*stop=*/nullptr, hidden.data()));
//
// Ownership: owns copies of every weight; keeps no reference to the GgufFile.
// Thread-safety: immutable after Load; Forward may be called concurrently. Scratch memory is per
// calling thread (thread_local, grown to the longest sequence that thread has run, at most
// max_tokens * (5 * hidden + ffn) floats) and reused by that thread's later calls.
#ifndef SLM_WORKERS_ENCODER_BERT_H_
#define SLM_WORKERS_ENCODER_BERT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/dtype.h"
#include "kernels/linear.h"
#include "workers/gguf/gguf_file.h"

namespace slm::workers {

// Hyperparameters read from the bert.* GGUF keys (vocab_size from token_embd.weight).
struct BertHparams {
  int64_t vocab_size = 0;
  int64_t context_length = 0;  // rows of position_embd.weight
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t ffn_size = 0;
  int64_t num_heads = 0;
  float layer_norm_epsilon = 1e-12f;
  int64_t head_dim() const { return hidden_size / num_heads; }
};

// Reads and validates the bert.* hyperparameters; errors name the key and the accepted range.
absl::StatusOr<BertHparams> ReadBertHparams(const GgufFile& file);

// Reads `name` as f32, requiring torch shape `torch_shape` ([out, in] for a weight, [n] for a
// vector); errors name the tensor, the file and both shapes.
absl::StatusOr<std::vector<float>> ReadTensor(const GgufFile& file, const std::string& name,
                                              const std::vector<int64_t>& torch_shape);

class BertGraph {
 public:
  // Builds every layer for inputs of up to `max_tokens` tokens (<= context_length). Errors:
  // InvalidArgument / NotFound naming the key or tensor that is missing or mis-shaped.
  static absl::StatusOr<std::unique_ptr<BertGraph>> Load(const GgufFile& file, kernels::DType dtype,
                                                         int64_t max_tokens);
  ~BertGraph();
  BertGraph(const BertGraph&) = delete;
  BertGraph& operator=(const BertGraph&) = delete;

  // Which rows of the final hidden states the caller needs.
  enum class Rows {
    kAll,    // every token (token classification, mean pooling)
    kFirst,  // only [CLS] (CLS pooling): after the last layer's attention, which still reads
             // every token, the output projection and FFN of that layer run on row 0 alone
  };

  // hidden: [ids.size(), hidden_size], written (with Rows::kFirst only row 0 is meaningful).
  // Errors: InvalidArgument for an empty or too long sequence or an id outside the vocabulary;
  // Cancelled when `stop` (may be empty) returns true, checked before every layer.
  absl::Status Forward(const std::vector<int32_t>& ids, const std::function<bool()>& stop,
                       float* hidden, Rows rows = Rows::kAll) const;

  const BertHparams& hparams() const { return hparams_; }
  int64_t max_tokens() const { return max_tokens_; }
  // Weights of all Linear layers (for FLOP counts in benchmarks).
  int64_t linear_parameter_count() const;

 private:
  struct Layer {
    std::unique_ptr<kernels::Linear> qkv;                // [3*hidden, hidden]
    std::unique_ptr<kernels::Linear> output;             // [hidden, hidden]
    std::vector<float> attn_norm_gamma, attn_norm_beta;  // [hidden]
    std::unique_ptr<kernels::Linear> ffn_up;             // [ffn, hidden], GELU fused
    std::unique_ptr<kernels::Linear> ffn_down;           // [hidden, ffn]
    std::vector<float> out_norm_gamma, out_norm_beta;    // [hidden]
  };
  BertGraph() = default;

  BertHparams hparams_;
  int64_t max_tokens_ = 0;
  std::vector<float> token_embd_;     // [vocab, hidden]
  std::vector<float> position_embd_;  // [max_tokens, hidden] (rows beyond are never used)
  std::vector<float> token_type0_;    // [hidden]; zeros when the model has no token_types
  std::vector<float> embd_norm_gamma_, embd_norm_beta_;  // [hidden]
  std::vector<Layer> layers_;
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_ENCODER_BERT_H_
