// phi3 (Phi-3, Phi-3.5 mini): fused attn_qkv ([q; k; v] rows) and fused gate-up stored as ffn_up
// ([gate; up] rows, 2 * ffn), HF row order (RoPE pairs (i, i + d/2)), longrope factors when the
// file has rope_factors_long/short (read by the model, not here).
#include "common/status_macros.h"
#include "workers/decoder/architectures.h"

namespace slm::workers::decoder {

absl::Status LoadPhi3Layer(const GgufFile& file, const DecoderHParams& hparams, int64_t layer,
                           LayerTensors* out) {
  SLM_RETURN_IF_ERROR(LoadCommonLayerTensors(file, hparams, layer, out));
  const int64_t qkv_rows = (hparams.num_heads + 2 * hparams.num_kv_heads) * hparams.head_dim;
  SLM_ASSIGN_OR_RETURN(out->qkv, ReadMatrix(file, LayerTensorName(layer, "attn_qkv.weight"),
                                            qkv_rows, hparams.hidden_size));
  SLM_ASSIGN_OR_RETURN(out->gate_up, ReadMatrix(file, LayerTensorName(layer, "ffn_up.weight"),
                                                2 * hparams.ffn_size, hparams.hidden_size));
  return absl::OkStatus();
}

}  // namespace slm::workers::decoder
