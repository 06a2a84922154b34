// Reading a decoder's hyperparameters and RoPE settings from GGUF metadata ({arch}.* keys as
// llama.cpp writes them), validated so that the model never sees a nonsensical shape.
//
// Thread-safety: pure functions of the (immutable) GgufFile.
#ifndef SLM_WORKERS_DECODER_HPARAMS_H_
#define SLM_WORKERS_DECODER_HPARAMS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "kernels/decoder_ops.h"
#include "workers/decoder/decoder_model.h"
#include "workers/gguf/gguf_file.h"

namespace slm::workers::decoder {

// general.architecture, {arch}.context_length, .embedding_length, .block_count,
// .feed_forward_length, .attention.head_count(_kv), .attention.key_length (optional),
// .rope.freq_base, .attention.layer_norm_rms_epsilon, .rope.dimension_count (must equal
// head_dim), .attention.sliding_window (optional, 0 = none), vocab_size from token_embd,
// tied_output from the absence of output.weight. Errors name the key (or tensor) and what was
// expected.
absl::StatusOr<DecoderHParams> ReadHParams(const GgufFile& file);

// RoPE for `style`: {arch}.rope.scaling.type none|linear (factor), rope_freqs.weight (llama3
// factors), rope_factors_long/short.weight (longrope: long when max_context exceeds
// {arch}.rope.scaling.original_context_length; cos/sin times .rope.scaling.attn_factor).
// Sets hparams->rope_scaling. Unsupported scaling types (yarn, ...) are errors naming the key.
absl::StatusOr<kernels::RopeTable> ReadRopeTable(const GgufFile& file, int64_t max_context,
                                                 DecoderHParams* hparams);

}  // namespace slm::workers::decoder

#endif  // SLM_WORKERS_DECODER_HPARAMS_H_
