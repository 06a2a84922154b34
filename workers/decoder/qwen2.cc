// qwen2 (Qwen2, Qwen2.5): the llama layer with q/k/v biases (required), HF row order (RoPE pairs
// (i, i + d/2)), usually tied embeddings in the small sizes.
#include "common/status_macros.h"
#include "workers/decoder/architectures.h"

namespace slm::workers::decoder {

absl::Status LoadQwen2Layer(const GgufFile& file, const DecoderHParams& hparams, int64_t layer,
                            LayerTensors* out) {
  SLM_RETURN_IF_ERROR(LoadCommonLayerTensors(file, hparams, layer, out));
  return LoadSeparateProjections(file, hparams, layer, /*biases_required=*/true, out);
}

}  // namespace slm::workers::decoder
