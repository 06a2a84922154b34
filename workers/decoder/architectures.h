// The table of decoder architectures (CONVENTIONS 10: explicit registration, no static
// initializers). Each architecture is one file (llama.cc, qwen2.cc, phi3.cc) that says how its
// GGUF tensors map onto the shared layer (blocks.h: LayerTensors) and which RoPE pair layout its
// GGUF files use; everything else (norms, attention, SwiGLU, head) is shared.
//
// Thread-safety: the table is immutable; loaders are reentrant.
#ifndef SLM_WORKERS_DECODER_ARCHITECTURES_H_
#define SLM_WORKERS_DECODER_ARCHITECTURES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/decoder_ops.h"
#include "workers/decoder/blocks.h"
#include "workers/decoder/decoder_model.h"
#include "workers/gguf/gguf_file.h"

namespace slm::workers::decoder {

// Fills `out` with layer `layer`'s weights; errors name the missing or mis-shaped tensor.
using LayerLoader = absl::Status (*)(const GgufFile& file, const DecoderHParams& hparams,
                                     int64_t layer, LayerTensors* out);

struct ArchitectureSpec {
  const char* name;  // general.architecture
  // llama.cpp's rope type for the architecture's GGUF files: kInterleaved ("norm": llama,
  // mistral, whose Q/K rows the converter permuted) or kNeox (qwen2, phi3: HF row order).
  kernels::RopeStyle rope_style;
  LayerLoader load_layer;
};

// Every supported architecture, in a fixed order.
const std::vector<ArchitectureSpec>& Architectures();
// NotFound naming `name` and listing the supported ones.
absl::StatusOr<const ArchitectureSpec*> FindArchitecture(const std::string& name);

// Per-architecture layer loaders (one file each).
absl::Status LoadLlamaLayer(const GgufFile& file, const DecoderHParams& hparams, int64_t layer,
                            LayerTensors* out);
absl::Status LoadQwen2Layer(const GgufFile& file, const DecoderHParams& hparams, int64_t layer,
                            LayerTensors* out);
absl::Status LoadPhi3Layer(const GgufFile& file, const DecoderHParams& hparams, int64_t layer,
                           LayerTensors* out);

// Shared tensor readers for the loaders: "blk.<layer>.<suffix>" as f32 with its shape checked
// ([rows, cols] row-major = ggml dims {cols, rows}).
std::string LayerTensorName(int64_t layer, const char* suffix);
absl::StatusOr<std::vector<float>> ReadMatrix(const GgufFile& file, const std::string& name,
                                              int64_t rows, int64_t cols);
absl::StatusOr<std::vector<float>> ReadVector(const GgufFile& file, const std::string& name,
                                              int64_t size);
// Norms, attention output and down projection: the same tensors in every architecture.
absl::Status LoadCommonLayerTensors(const GgufFile& file, const DecoderHParams& hparams,
                                    int64_t layer, LayerTensors* out);
// attn_q, attn_k, attn_v (+ their biases: required, or loaded only when present) and ffn_gate,
// ffn_up, concatenated into the fused qkv and gate_up matrices.
absl::Status LoadSeparateProjections(const GgufFile& file, const DecoderHParams& hparams,
                                     int64_t layer, bool biases_required, LayerTensors* out);

}  // namespace slm::workers::decoder

#endif  // SLM_WORKERS_DECODER_ARCHITECTURES_H_
