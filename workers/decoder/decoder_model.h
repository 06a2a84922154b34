// DecoderModel: a decoder-only language model (llama, mistral, qwen2, phi3) loaded from one GGUF
// file and run on our kernels, with one KV cache per sequence owned by the caller.
//
//   DecoderOptions options;
//   options.dtype = kernels::DType::kInt8;
//   SLM_ASSIGN_OR_RETURN(std::unique_ptr<DecoderModel> model,
//                        DecoderModel::Load("smollm2.gguf", options));
//   SLM_ASSIGN_OR_RETURN(std::unique_ptr<KvCache> cache, model->NewSequenceCache(2048));
//   std::vector<float> logits(model->hparams().vocab_size);
//   SequenceStep prefill{cache.get(), prompt.data(), static_cast<int32_t>(prompt.size()), false};
//   SLM_RETURN_IF_ERROR(model->Forward({&prefill, 1}, logits.data()));  // last token's logits
//   int32_t next = Argmax(logits);
//   SequenceStep decode{cache.get(), &next, 1, false};
//   SLM_RETURN_IF_ERROR(model->Forward({&decode, 1}, logits.data()));
//
// Forward batches across sequences: every step's rows go through one matmul per weight per
// layer; attention runs per sequence over its own cache. A step's tokens are appended at
// positions cache->size() .. cache->size() + n_tokens - 1 (so a long prompt may be prefilled in
// chunks, and a step of 1 token is a decode step).
//
// Ownership: Load returns the only owner of the model; it keeps no reference to the file after
// Load returns. A KvCache is owned by the caller, must not outlive the model that created it, and
// may only be passed to that model.
// Thread-safety: the model is immutable after Load; Forward is const and may be called
// concurrently as long as no KvCache appears in two concurrent calls (nor twice in one call).
// Each Forward runs on DecoderOptions::threads OpenMP threads (see there).
#ifndef SLM_WORKERS_DECODER_DECODER_MODEL_H_
#define SLM_WORKERS_DECODER_DECODER_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernels/dtype.h"

namespace slm::workers {

class Tokenizer;  // workers/tokenizer/tokenizer.h

struct DecoderOptions {
  // In-memory type of every weight matrix (f32; bf16; int8 per-output-channel), whatever the
  // GGUF tensor type (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K are converted at load).
  kernels::DType dtype = kernels::DType::kF32;
  // Element type of the KV cache: f32, bf16, or int8 (symmetric, one scale per token and head).
  kernels::DType kv_dtype = kernels::DType::kF32;
  // Longest sequence (prompt + generated tokens) a cache may hold; 0 means the model's
  // {arch}.context_length. Larger than context_length is an error at Load.
  int64_t max_context = 0;
  // Most rows (tokens summed over all steps) one Forward call may carry; kernels are prepared for
  // up to this many rows at Load.
  int64_t max_batch_tokens = 512;
  // OpenMP threads per Forward. oneDNN fixes a primitive's thread team when it is created (in
  // Load): > 0 builds for and runs every call on exactly that many threads (the caller's OpenMP
  // setting is restored on return); 0 uses omp_get_max_threads() of the thread calling Load.
  int threads = 0;
};

// Hyperparameters, as read from GGUF metadata ({arch}.* keys, llama.cpp names).
struct DecoderHParams {
  std::string architecture;  // general.architecture: "llama", "mistral", "qwen2", "phi3"
  std::string name;          // general.name, else the file stem
  int64_t vocab_size = 0;    // rows of token_embd
  int64_t context_length = 0;
  int64_t hidden_size = 0;   // embedding_length
  int64_t num_layers = 0;    // block_count
  int64_t ffn_size = 0;      // feed_forward_length
  int64_t num_heads = 0;     // attention.head_count
  int64_t num_kv_heads = 0;  // attention.head_count_kv (defaults to num_heads)
  int64_t head_dim = 0;      // hidden_size / num_heads
  // attention.sliding_window: > 0: a token attends to itself and the sliding_window - 1 tokens
  // before it (llama.cpp's n_swa, Hugging Face's sliding_window); 0: to the whole context.
  int64_t sliding_window = 0;
  double rope_freq_base = 10000.0;
  std::string rope_scaling;  // "none", "linear", "llama3" (rope_freqs tensor), "longrope"
  float rms_epsilon = 1e-5f;
  bool tied_output = false;  // no output.weight: the head reuses token_embd
};

// Where Load spent its time, for the load-time budget (primitive and weight preparation under
// 50 ms per layer type). "Per layer" figures are averages over the layers, in the loading
// thread's CPU time (a loaded machine does not inflate them); total_ms is wall-clock.
struct DecoderLoadStats {
  double read_ms_per_layer = 0;  // reading + dequantizing one layer's GGUF tensors to f32
  // Preparing (quantizing, repacking, creating primitives) one layer's linear of each type.
  double qkv_ms_per_layer = 0;
  double attn_output_ms_per_layer = 0;
  double gate_up_ms_per_layer = 0;
  double down_ms_per_layer = 0;
  double output_head_ms = 0;  // the [vocab, hidden] head, once
  double total_ms = 0;        // all of Load
  int64_t weight_bytes = 0;   // prepared weights held in memory (all copies)
};

// One sequence's key/value cache: for every layer, keys and values of the tokens seen so far.
// Created by DecoderModel::NewSequenceCache; owned by the caller. Not thread-safe: one Forward at
// a time may use it.
class KvCache {
 public:
  virtual ~KvCache() = default;
  // Tokens stored (the position the next token gets).
  virtual int64_t size() const = 0;
  // Most tokens this cache can hold (NewSequenceCache's max_tokens).
  virtual int64_t capacity() const = 0;
  // Forgets tokens at positions >= new_size (new_size <= size()), e.g. to reuse a shared prefix
  // or to roll back a rejected step. Clear() is Truncate(0).
  virtual void Truncate(int64_t new_size) = 0;
  void Clear() { Truncate(0); }
  // Bytes allocated for this cache (capacity x layers x 2 x kv_heads x head_dim x element size).
  virtual int64_t bytes() const = 0;
};

// One sequence's part of a Forward call.
struct SequenceStep {
  KvCache* cache = nullptr;         // the sequence's cache; tokens are appended to it
  const int32_t* tokens = nullptr;  // n_tokens token ids
  int32_t n_tokens = 0;             // >= 1: a prefill chunk, or 1 for a decode step
  // true: logits for every token of this step (n_tokens rows); false: the last token's only.
  bool want_all_logits = false;
};

class DecoderModel {
 public:
  // Reads and validates the GGUF file: unknown architecture or tensor type, missing tensor, shape
  // mismatch, bad metadata or a truncated file are errors naming the key or tensor. A tokenizer
  // the file declares but that fails to load is an error too.
  static absl::StatusOr<std::unique_ptr<DecoderModel>> Load(const std::string& gguf_path,
                                                            DecoderOptions options);
  virtual ~DecoderModel() = default;

  virtual const DecoderHParams& hparams() const = 0;
  virtual const DecoderOptions& options() const = 0;  // resolved (max_context, threads > 0)
  const std::string& path() const { return path_; }
  // The tokenizer the GGUF declares (tokenizer.ggml.*), loaded with the model; null when the
  // file has no tokenizer.ggml.model key (test models). Shared so callers may keep it.
  std::shared_ptr<const Tokenizer> tokenizer() const { return tokenizer_; }
  virtual const DecoderLoadStats& load_stats() const { return load_stats_; }

  // A new empty cache for up to max_tokens tokens (1 <= max_tokens <= options().max_context,
  // else InvalidArgument naming both numbers). Memory is allocated up front (bytes()).
  virtual absl::StatusOr<std::unique_ptr<KvCache>> NewSequenceCache(int64_t max_tokens) const = 0;
  // KV-cache bytes one token takes (for KV budgets): layers x 2 x kv_heads x head_dim x size.
  virtual int64_t KvBytesPerToken() const = 0;

  // Runs all steps as one batch. `logits` receives, for each step in order, n_tokens rows
  // (want_all_logits) or 1 row, each vocab_size floats. On success every step's tokens are in its
  // cache. Errors (nothing is appended to any cache): InvalidArgument for an empty step list, a
  // null cache or tokens, n_tokens < 1, a token id outside [0, vocab_size), total rows above
  // max_batch_tokens, a cache from another model or repeated in the call; OutOfRange when a
  // step would grow its cache beyond capacity() (the message names position, tokens, capacity:
  // a prompt longer than the context).
  virtual absl::Status Forward(absl::Span<const SequenceStep> steps, float* logits) const = 0;

 protected:
  DecoderModel() = default;
  std::string path_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  DecoderLoadStats load_stats_;
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_DECODER_DECODER_MODEL_H_
