// llama (SmolLM2, TinyLlama, Llama 2/3) and mistral: separate attn_q/k/v (Q and K rows permuted
// by llama.cpp's converter for adjacent-pair RoPE), optional q/k/v biases, separate ffn_gate and
// ffn_up, tied or untied output head.
#include "common/status_macros.h"
#include "workers/decoder/architectures.h"

namespace slm::workers::decoder {

absl::Status LoadLlamaLayer(const GgufFile& file, const DecoderHParams& hparams, int64_t layer,
                            LayerTensors* out) {
  SLM_RETURN_IF_ERROR(LoadCommonLayerTensors(file, hparams, layer, out));
  return LoadSeparateProjections(file, hparams, layer, /*biases_required=*/false, out);
}

}  // namespace slm::workers::decoder
