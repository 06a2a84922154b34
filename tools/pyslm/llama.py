"""Decoder-only language models in plain PyTorch (llama, mistral, qwen2, phi3): the numerical
reference for our C++ DecoderModel, and their GGUF export in llama.cpp's conventions.

The math is Hugging Face's LlamaForCausalLM / Qwen2ForCausalLM / Phi3ForCausalLM in eval mode:
    x = embed[ids]
    per layer:  x = x + o(attn(rope(q(n1(x))), rope(k(n1(x))), v(n1(x))))   causal, GQA
                x = x + down(silu(gate(n2(x))) * up(n2(x)))
    logits = lm_head(norm(x))       (lm_head = embed when the embeddings are tied)
    n(x) = x / sqrt(mean(x^2) + eps) * w (RMSNorm);  RoPE as HF: rotate_half over (i, i + d/2).
qwen2 adds q/k/v biases; phi3 stores qkv_proj ([q; k; v] rows) and gate_up_proj ([gate; up]).
RoPE scaling (config.rope_scaling, HF keys): {"rope_type": "linear", "factor"},
{"rope_type": "llama3", "factor", "low_freq_factor", "high_freq_factor",
"original_max_position_embeddings"}, {"rope_type": "longrope", "short_factor", "long_factor",
"original_max_position_embeddings"} (phi3; the long factors apply when the context the model is
run with exceeds the original one, as llama.cpp decides).

State dicts use Hugging Face names (model.layers.N.self_attn.q_proj.weight, ...), so
tools/convert_decoder.py converts a real checkpoint's state dict the same way.

GGUF export follows llama.cpp's convert_hf_to_gguf.py: metadata {arch}.context_length, ...;
tensors token_embd, blk.N.attn_q, ..., output; for llama and mistral the Q and K rows are permuted
so that RoPE rotates adjacent pairs (2i, 2i+1) (llama.cpp's "normal" RoPE), while qwen2 and phi3
keep HF order and rotate (i, i + d/2) ("neox" RoPE). llama3 factors become a rope_freqs tensor;
longrope factors become rope_factors_long/short tensors.

Usage:
    config = DecoderConfig(architecture="qwen2", vocab_size=500)
    state = random_state_dict(config, seed=0)
    model = DecoderLM(config, state)
    logits = model.forward_ids([1, 2, 3])                  # [3, vocab] float64
    to_gguf(config, state, "model.gguf", weight_type="q8_0")
"""

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from pyslm import ggml_quants
from pyslm.gguf_writer import GGUFWriter

ARCHITECTURES = ("llama", "mistral", "qwen2", "phi3")
# llama.cpp's rope type per architecture: "norm" rotates (2i, 2i+1) on permuted Q/K rows,
# "neox" rotates (i, i + d/2) on HF rows.
ROPE_STYLE = {"llama": "norm", "mistral": "norm", "qwen2": "neox", "phi3": "neox"}


@dataclasses.dataclass
class DecoderConfig:
    architecture: str = "llama"
    vocab_size: int = 256
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    ffn_size: int = 128
    context_length: int = 256
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5
    tie_embeddings: bool = False
    rope_scaling: dict = None
    # The context the model is run with (decides longrope's factor set); 0: context_length.
    run_context: int = 0
    # > 0: each token attends to itself and the sliding_window - 1 tokens before it (Hugging
    # Face's sliding_window, llama.cpp's {arch}.attention.sliding_window); 0: all before it.
    sliding_window: int = 0

    @property
    def head_dim(self):
        return self.hidden_size // self.num_heads

    def validate(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, "
                             f"got {self.architecture!r}")
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ValueError("hidden_size must be a multiple of num_heads, and num_heads of "
                             "num_kv_heads")
        if self.head_dim % 2:
            raise ValueError(f"head_dim {self.head_dim} must be even")
        if self.sliding_window < 0:
            raise ValueError(f"sliding_window {self.sliding_window} must be >= 0")

    @classmethod
    def from_hf(cls, hf, architecture=None):
        """From a Hugging Face config.json dict."""
        arch = architecture or {
            "LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
            "Qwen2ForCausalLM": "qwen2", "Phi3ForCausalLM": "phi3"}[hf["architectures"][0]]
        return cls(architecture=arch, vocab_size=hf["vocab_size"],
                   hidden_size=hf["hidden_size"], num_layers=hf["num_hidden_layers"],
                   num_heads=hf["num_attention_heads"],
                   num_kv_heads=hf.get("num_key_value_heads") or hf["num_attention_heads"],
                   ffn_size=hf["intermediate_size"],
                   context_length=hf["max_position_embeddings"],
                   rope_theta=hf.get("rope_theta", 10000.0), rms_eps=hf["rms_norm_eps"],
                   tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
                   rope_scaling=hf.get("rope_scaling"),
                   # Qwen2 declares a window it does not use unless use_sliding_window is set.
                   sliding_window=(hf.get("sliding_window") or 0)
                   if arch != "qwen2" or hf.get("use_sliding_window") else 0)


def _scaling_type(config):
    scaling = config.rope_scaling or {}
    return scaling.get("rope_type", scaling.get("type", "none"))


def inverse_frequencies(config):
    """HF's RoPE inverse frequencies [head_dim / 2] (float64) and the cos/sin scale."""
    d = config.head_dim
    inv = 1.0 / (config.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    scaling = config.rope_scaling or {}
    kind = _scaling_type(config)
    mscale = 1.0
    if kind in ("none", "default"):
        pass
    elif kind == "linear":
        inv = inv / scaling["factor"]
    elif kind == "llama3":
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv = torch.where(medium, smoothed, scaled)
    elif kind == "longrope":
        original = scaling["original_max_position_embeddings"]
        run_context = config.run_context or config.context_length
        factors = scaling["long_factor"] if run_context > original else scaling["short_factor"]
        inv = inv / torch.tensor(factors, dtype=torch.float64)
        scale = config.context_length / original
        if scale > 1.0:
            mscale = math.sqrt(1 + math.log(scale) / math.log(original))
    else:
        raise ValueError(f"unsupported rope scaling {kind!r}")
    return inv, mscale


def llama3_rope_factors(config):
    """llama.cpp's rope_freqs tensor for llama3 scaling: freq_i = base^(-2i/d) / factor_i."""
    scaling = config.rope_scaling
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    d = config.head_dim
    factors = []
    for i in range(0, d, 2):
        freq = 1.0 / (config.rope_theta ** (i / d))
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            factors.append(1.0)
        elif wavelen > old / low:
            factors.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            factors.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(factors, dtype=np.float32)


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _layer_names(config, i):
    p = f"model.layers.{i}."
    names = {"attn_norm": p + "input_layernorm.weight", "ffn_norm": p + "post_attention_layernorm.weight",
             "o": p + "self_attn.o_proj.weight", "down": p + "mlp.down_proj.weight"}
    if config.architecture == "phi3":
        names.update(qkv=p + "self_attn.qkv_proj.weight", gate_up=p + "mlp.gate_up_proj.weight")
    else:
        names.update(q=p + "self_attn.q_proj.weight", k=p + "self_attn.k_proj.weight",
                     v=p + "self_attn.v_proj.weight", gate=p + "mlp.gate_proj.weight",
                     up=p + "mlp.up_proj.weight")
    if config.architecture == "qwen2":
        names.update(q_bias=p + "self_attn.q_proj.bias", k_bias=p + "self_attn.k_proj.bias",
                     v_bias=p + "self_attn.v_proj.bias")
    return names


def state_dict_shapes(config):
    """Every tensor of the HF state dict with its shape."""
    h, f, d = config.hidden_size, config.ffn_size, config.head_dim
    nq, nkv = config.num_heads * d, config.num_kv_heads * d
    shapes = {"model.embed_tokens.weight": (config.vocab_size, h), "model.norm.weight": (h,)}
    if not config.tie_embeddings:
        shapes["lm_head.weight"] = (config.vocab_size, h)
    for i in range(config.num_layers):
        n = _layer_names(config, i)
        shapes[n["attn_norm"]] = (h,)
        shapes[n["ffn_norm"]] = (h,)
        shapes[n["o"]] = (h, nq)
        shapes[n["down"]] = (h, f)
        if config.architecture == "phi3":
            shapes[n["qkv"]] = (nq + 2 * nkv, h)
            shapes[n["gate_up"]] = (2 * f, h)
        else:
            shapes.update({n["q"]: (nq, h), n["k"]: (nkv, h), n["v"]: (nkv, h),
                           n["gate"]: (f, h), n["up"]: (f, h)})
        if config.architecture == "qwen2":
            shapes.update({n["q_bias"]: (nq,), n["k_bias"]: (nkv,), n["v_bias"]: (nkv,)})
    return shapes


def random_state_dict(config, seed=0, scale=None):
    """Random float32 weights (normal, std `scale` or 1/sqrt(fan_in); embeddings 1/sqrt(hidden));
    norms around 1."""
    config.validate()
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in state_dict_shapes(config).items():
        if name.endswith("norm.weight") or "layernorm" in name:
            state[name] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            state[name] = 0.1 * torch.randn(shape, generator=gen)
        elif name == "model.embed_tokens.weight":
            # 1/sqrt(hidden): as a tied head this gives logits of RMS ~1, as real models have.
            state[name] = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
        else:
            std = scale if scale is not None else 1.0 / math.sqrt(shape[1])
            state[name] = std * torch.randn(shape, generator=gen)
    return state


class DecoderLM:
    """The reference forward pass over a HF-named state dict, in float64."""

    def __init__(self, config, state):
        config.validate()
        self.config = config
        self.w = {k: v.detach().to(torch.float64) for k, v in state.items()}
        self.inv_freq, self.mscale = inverse_frequencies(config)

    def _norm(self, x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.config.rms_eps) * weight

    def _rope(self, x, positions):
        # x: [heads, n, d]
        angles = positions[:, None].to(torch.float64) * self.inv_freq[None, :]
        emb = torch.cat((angles, angles), dim=-1)
        cos, sin = emb.cos() * self.mscale, emb.sin() * self.mscale
        return x * cos + _rotate_half(x) * sin

    def forward_ids(self, ids, last_only=False):
        """Logits [len(ids), vocab] (float64) for the whole sequence from position 0 ([1, vocab]
        for the last token only with last_only)."""
        c, w = self.config, self.w
        ids = torch.as_tensor(ids, dtype=torch.long)
        n, d = ids.shape[0], c.head_dim
        positions = torch.arange(n)
        x = w["model.embed_tokens.weight"][ids]
        mask = torch.full((n, n), float("-inf"), dtype=torch.float64).triu(1)
        if c.sliding_window:  # key j is visible from query i when i - window < j <= i
            mask = mask + torch.full((n, n), float("-inf"), dtype=torch.float64).tril(
                -c.sliding_window)
        for i in range(c.num_layers):
            names = _layer_names(c, i)
            h = self._norm(x, w[names["attn_norm"]])
            if c.architecture == "phi3":
                qkv = h @ w[names["qkv"]].T
                nq, nkv = c.num_heads * d, c.num_kv_heads * d
                q, k, v = qkv[:, :nq], qkv[:, nq:nq + nkv], qkv[:, nq + nkv:]
            else:
                q, k, v = h @ w[names["q"]].T, h @ w[names["k"]].T, h @ w[names["v"]].T
            if c.architecture == "qwen2":
                q, k, v = q + w[names["q_bias"]], k + w[names["k_bias"]], v + w[names["v_bias"]]
            q = self._rope(q.view(n, c.num_heads, d).transpose(0, 1), positions)
            k = self._rope(k.view(n, c.num_kv_heads, d).transpose(0, 1), positions)
            v = v.view(n, c.num_kv_heads, d).transpose(0, 1)
            group = c.num_heads // c.num_kv_heads
            k = k.repeat_interleave(group, dim=0)
            v = v.repeat_interleave(group, dim=0)
            scores = q @ k.transpose(1, 2) / math.sqrt(d) + mask
            attn = torch.softmax(scores, dim=-1) @ v  # [heads, n, d]
            x = x + attn.transpose(0, 1).reshape(n, c.num_heads * d) @ w[names["o"]].T
            h = self._norm(x, w[names["ffn_norm"]])
            if c.architecture == "phi3":
                gate_up = h @ w[names["gate_up"]].T
                gate, up = gate_up[:, :c.ffn_size], gate_up[:, c.ffn_size:]
            else:
                gate, up = h @ w[names["gate"]].T, h @ w[names["up"]].T
            x = x + (F.silu(gate) * up) @ w[names["down"]].T
        if last_only:
            x = x[-1:]
        x = self._norm(x, w["model.norm.weight"])
        head = w["model.embed_tokens.weight"] if c.tie_embeddings else w["lm_head.weight"]
        return x @ head.T

    def greedy(self, prompt, steps):
        """Greedy continuation of `prompt` for `steps` tokens (recomputes from scratch)."""
        ids = list(prompt)
        for _ in range(steps):
            ids.append(int(torch.argmax(self.forward_ids(ids, last_only=True)[-1])))
        return ids[len(prompt):]


def permute_rows_for_norm_rope(weight, n_head):
    """llama.cpp's convert permutation of Q/K rows (and biases): within each head, row 2i takes
    HF row i and row 2i+1 takes HF row i + d/2, so adjacent-pair RoPE equals HF's rotate_half."""
    w = np.asarray(weight)
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def state_dict_from_gguf(path):
    """(DecoderConfig, HF-named float32 state dict) read back from a llama GGUF that to_gguf wrote
    (tied embeddings when there is no output.weight; quantized weights dequantized): the weights
    a correct reader computes with, for checking our worker against this reference."""
    from pyslm.gguf_reader import read_gguf  # here: gguf_reader imports nothing of this module
    gguf = read_gguf(path, dequantize=True)
    m, t = gguf.metadata, gguf.tensors
    arch = m["general.architecture"]
    if arch != "llama":
        raise ValueError(f"{path}: state_dict_from_gguf reads llama files, got {arch!r}")
    config = DecoderConfig(
        architecture=arch, vocab_size=len(m["tokenizer.ggml.tokens"]),
        hidden_size=m[f"{arch}.embedding_length"], num_layers=m[f"{arch}.block_count"],
        num_heads=m[f"{arch}.attention.head_count"],
        num_kv_heads=m[f"{arch}.attention.head_count_kv"],
        ffn_size=m[f"{arch}.feed_forward_length"], context_length=m[f"{arch}.context_length"],
        rope_theta=m[f"{arch}.rope.freq_base"],
        rms_eps=m[f"{arch}.attention.layer_norm_rms_epsilon"],
        tie_embeddings="output.weight" not in t,
        sliding_window=m.get(f"{arch}.attention.sliding_window", 0))

    def unpermute(weight, n_head):  # inverse of permute_rows_for_norm_rope
        w = np.asarray(weight)
        return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
                .swapaxes(1, 2).reshape(w.shape))

    state = {"model.embed_tokens.weight": t["token_embd.weight"],
             "model.norm.weight": t["output_norm.weight"]}
    if not config.tie_embeddings:
        state["lm_head.weight"] = t["output.weight"]
    for i in range(config.num_layers):
        n, b = _layer_names(config, i), f"blk.{i}."
        state.update({
            n["attn_norm"]: t[b + "attn_norm.weight"], n["ffn_norm"]: t[b + "ffn_norm.weight"],
            n["q"]: unpermute(t[b + "attn_q.weight"], config.num_heads),
            n["k"]: unpermute(t[b + "attn_k.weight"], config.num_kv_heads),
            n["v"]: t[b + "attn_v.weight"], n["o"]: t[b + "attn_output.weight"],
            n["gate"]: t[b + "ffn_gate.weight"], n["up"]: t[b + "ffn_up.weight"],
            n["down"]: t[b + "ffn_down.weight"]})
    return config, {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}


def quantizable(name, shape, weight_type):
    """Whether export stores this tensor in `weight_type` (2-D weights with whole blocks)."""
    return len(shape) == 2 and shape[1] % ggml_quants.block_size(weight_type) == 0


def roundtrip_state_dict(config, state, weight_type):
    """The weights the exported GGUF holds, decoded: what a correct reader computes with."""
    if weight_type == "f32":
        return dict(state)
    out = {}
    for name, tensor in state.items():
        array = tensor.detach().float().numpy()
        if quantizable(name, array.shape, weight_type):
            data = ggml_quants.quantize(array, weight_type)
            array = ggml_quants.dequantize(data, weight_type, array.shape)
        out[name] = torch.from_numpy(np.array(array))
    return out


def _gguf_tensors(config, state):
    """(gguf name, numpy float32 array) in llama.cpp order and layout."""
    c = config
    arrays = {k: v.detach().float().numpy() for k, v in state.items()}
    norm_rope = ROPE_STYLE[c.architecture] == "norm"
    out = [("token_embd.weight", arrays["model.embed_tokens.weight"])]
    for i in range(c.num_layers):
        n = _layer_names(c, i)
        b = f"blk.{i}."
        out.append((b + "attn_norm.weight", arrays[n["attn_norm"]]))
        if c.architecture == "phi3":
            out.append((b + "attn_qkv.weight", arrays[n["qkv"]]))
        else:
            q, k = arrays[n["q"]], arrays[n["k"]]
            if norm_rope:
                q = permute_rows_for_norm_rope(q, c.num_heads)
                k = permute_rows_for_norm_rope(k, c.num_kv_heads)
            out += [(b + "attn_q.weight", q), (b + "attn_k.weight", k),
                    (b + "attn_v.weight", arrays[n["v"]])]
        if c.architecture == "qwen2":
            out += [(b + "attn_q.bias", arrays[n["q_bias"]]),
                    (b + "attn_k.bias", arrays[n["k_bias"]]),
                    (b + "attn_v.bias", arrays[n["v_bias"]])]
        out.append((b + "attn_output.weight", arrays[n["o"]]))
        out.append((b + "ffn_norm.weight", arrays[n["ffn_norm"]]))
        if c.architecture == "phi3":
            out.append((b + "ffn_up.weight", arrays[n["gate_up"]]))
        else:
            out += [(b + "ffn_gate.weight", arrays[n["gate"]]),
                    (b + "ffn_up.weight", arrays[n["up"]])]
        out.append((b + "ffn_down.weight", arrays[n["down"]]))
    out.append(("output_norm.weight", arrays["model.norm.weight"]))
    if not c.tie_embeddings:
        out.append(("output.weight", arrays["lm_head.weight"]))
    return out


def synthetic_vocabulary(size):
    """A SentencePiece-style vocabulary: <unk> <s> </s>, 256 byte tokens if they fit, words."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [2, 3, 3]
    if size >= 3 + 256 + 1:
        tokens += ["<0x%02X>" % b for b in range(256)]
        types += [6] * 256
    while len(tokens) < size:
        tokens.append("\u2581w%d" % len(tokens))
        types.append(1)
    return tokens[:size], types[:size]


def to_gguf(config, state, path, weight_type="f32", name=None, tokens=None, token_types=None,
            scores=None):
    """Writes the model as a GGUF file in llama.cpp's conventions.

    weight_type: "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k" or "q6_k" for 2-D weights whose
    rows are whole blocks (others and 1-D tensors stay F32, as llama.cpp keeps norms in F32).
    tokens: vocabulary (default: synthetic_vocabulary) written as tokenizer.ggml.* (llama);
    token_types: llama.cpp token types per token (1 normal, 2 unknown, 3 control, 6 byte);
    scores: SentencePiece scores per token (default: -index, i.e. earlier pieces merge first).
    """
    config.validate()
    c = config
    arch = c.architecture
    writer = GGUFWriter()
    writer.add_string("general.architecture", arch)
    writer.add_string("general.name", name or f"random-{arch}")
    writer.add_u32(f"{arch}.context_length", c.context_length)
    writer.add_u32(f"{arch}.embedding_length", c.hidden_size)
    writer.add_u32(f"{arch}.block_count", c.num_layers)
    writer.add_u32(f"{arch}.feed_forward_length", c.ffn_size)
    writer.add_u32(f"{arch}.rope.dimension_count", c.head_dim)
    writer.add_u32(f"{arch}.attention.head_count", c.num_heads)
    writer.add_u32(f"{arch}.attention.head_count_kv", c.num_kv_heads)
    writer.add_f32(f"{arch}.attention.layer_norm_rms_epsilon", c.rms_eps)
    writer.add_f32(f"{arch}.rope.freq_base", c.rope_theta)
    writer.add_u32(f"{arch}.vocab_size", c.vocab_size)
    if c.sliding_window:
        writer.add_u32(f"{arch}.attention.sliding_window", c.sliding_window)
    kind = _scaling_type(c)
    extra = []
    if kind == "linear":
        writer.add_string(f"{arch}.rope.scaling.type", "linear")
        writer.add_f32(f"{arch}.rope.scaling.factor", c.rope_scaling["factor"])
    elif kind == "llama3":
        extra.append(("rope_freqs.weight", llama3_rope_factors(c)))
    elif kind == "longrope":
        original = c.rope_scaling["original_max_position_embeddings"]
        writer.add_u32(f"{arch}.rope.scaling.original_context_length", original)
        _, mscale = inverse_frequencies(dataclasses.replace(c, run_context=0))
        writer.add_f32(f"{arch}.rope.scaling.attn_factor", mscale)
        extra.append(("rope_factors_long.weight",
                      np.asarray(c.rope_scaling["long_factor"], dtype=np.float32)))
        extra.append(("rope_factors_short.weight",
                      np.asarray(c.rope_scaling["short_factor"], dtype=np.float32)))
    if tokens is None:
        tokens, token_types = synthetic_vocabulary(c.vocab_size)
    writer.add_string("tokenizer.ggml.model", "llama")
    writer.add_string_array("tokenizer.ggml.tokens", tokens)
    if scores is None:
        scores = [float(-i) for i in range(len(tokens))]
    if len(scores) != len(tokens) or (token_types and len(token_types) != len(tokens)):
        raise ValueError(f"{len(tokens)} tokens but {len(scores)} scores and "
                         f"{len(token_types or tokens)} token types")
    writer.add_array("tokenizer.ggml.scores", 6, [float(s) for s in scores])
    writer.add_i32_array("tokenizer.ggml.token_type", token_types or [1] * len(tokens))
    if len(tokens) > 2:
        writer.add_u32("tokenizer.ggml.bos_token_id", 1)
        writer.add_u32("tokenizer.ggml.eos_token_id", 2)
    for gguf_name, array in _gguf_tensors(c, state) + extra:
        array = np.ascontiguousarray(array, dtype=np.float32)
        kind_here = weight_type if (weight_type != "f32" and
                                    quantizable(gguf_name, array.shape, weight_type)) else "f32"
        if kind_here in ("f32", "f16"):
            writer.add_tensor(gguf_name, array, kind_here)
        else:
            writer.add_tensor_bytes(gguf_name, tuple(reversed(array.shape)),
                                    ggml_quants.ggml_type(kind_here),
                                    ggml_quants.quantize(array, kind_here))
    writer.write(path)
