"""A BERT-family encoder in plain PyTorch: the numerical reference for our C++ encoder.

The math is exactly Hugging Face BertModel in eval mode (post-LayerNorm, GELU with erf):
    x = LN(tok_emb[ids] + pos_emb[0..n) + type_emb[0])
    per layer:  x = LN(x + MHA(x));  x = LN(x + down(gelu(up(x))))
    text_classification:  logits = output(pool(x))   pool: "cls" (tanh(pooler(x[0])) when a
                                                       pooler exists, else x[0]) or "mean"
    token_classification: logits[t] = output(x[t])

Module attribute names follow the GGUF tensor names (blocks.i.attn_q <-> blk.i.attn_q), so the
mapping to GGUF is a rename; HF_TO_GGUF maps Hugging Face BertFor*Classification names.

Usage:
    config = BertConfig(vocab_size=1000, num_labels=2)
    model = random_model(config, seed=0)
    logits = model.forward_ids([101, 2023, 102])      # [num_labels] or [n, num_labels]
    to_gguf(model, tokens, ["negative", "positive"], "model.gguf")
"""

import dataclasses
import math
import re

import torch
from torch import nn
import torch.nn.functional as F

from pyslm.gguf_writer import GGUFWriter

TEXT_CLASSIFICATION = "text_classification"
TOKEN_CLASSIFICATION = "token_classification"


@dataclasses.dataclass
class BertConfig:
    vocab_size: int
    num_labels: int
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    ffn_size: int = 512
    context_length: int = 128
    type_vocab_size: int = 2  # 0: no token_types tensor
    layer_norm_eps: float = 1e-12
    task: str = TEXT_CLASSIFICATION
    pooling: str = "cls"  # "cls" or "mean"; ignored for token classification
    use_pooler: bool = True  # cls.pooler.* dense+tanh before the output layer
    dropout: float = 0.0  # training only (where HF BERT has dropout); no effect in eval()

    def validate(self):
        if self.hidden_size % self.num_heads != 0:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of "
                             f"num_heads {self.num_heads}")
        if self.task not in (TEXT_CLASSIFICATION, TOKEN_CLASSIFICATION):
            raise ValueError(f"task must be {TEXT_CLASSIFICATION} or {TOKEN_CLASSIFICATION}, "
                             f"got {self.task!r}")
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {self.pooling!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.type_vocab_size not in (0, 2):
            raise ValueError(f"type_vocab_size must be 0 or 2, got {self.type_vocab_size}")

    @property
    def has_pooler(self):
        return self.task == TEXT_CLASSIFICATION and self.pooling == "cls" and self.use_pooler


class Block(nn.Module):
    """One post-LN transformer layer."""

    def __init__(self, config):
        super().__init__()
        hidden, ffn, eps = config.hidden_size, config.ffn_size, config.layer_norm_eps
        self.num_heads = config.num_heads
        self.dropout = nn.Dropout(config.dropout)
        self.attn_q = nn.Linear(hidden, hidden)  # weight [hidden, hidden]
        self.attn_k = nn.Linear(hidden, hidden)
        self.attn_v = nn.Linear(hidden, hidden)
        self.attn_output = nn.Linear(hidden, hidden)
        self.attn_output_norm = nn.LayerNorm(hidden, eps=eps)
        self.ffn_up = nn.Linear(hidden, ffn)  # weight [ffn, hidden]
        self.ffn_down = nn.Linear(ffn, hidden)  # weight [hidden, ffn]
        self.layer_output_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x, key_padding_mask=None):
        # x: [batch, n, hidden]; key_padding_mask: [batch, n] bool, True = padding.
        batch, n, hidden = x.shape
        head_dim = hidden // self.num_heads

        def split_heads(t):  # [batch, n, hidden] -> [batch, heads, n, head_dim]
            return t.view(batch, n, self.num_heads, head_dim).transpose(1, 2)

        q = split_heads(self.attn_q(x))
        k = split_heads(self.attn_k(x))
        v = split_heads(self.attn_v(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)  # [batch, heads, n, n]
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        context = self.dropout(torch.softmax(scores, dim=-1)) @ v  # [batch, heads, n, head_dim]
        context = context.transpose(1, 2).reshape(batch, n, hidden)
        x = self.attn_output_norm(x + self.dropout(self.attn_output(context)))
        up = F.gelu(self.ffn_up(x))  # GELU with erf, as HF "gelu"
        return self.layer_output_norm(x + self.dropout(self.ffn_down(up)))


class BertEncoder(nn.Module):
    """BERT encoder with a sequence or token classification head (config.task)."""

    def __init__(self, config):
        super().__init__()
        config.validate()
        self.config = config
        hidden = config.hidden_size
        self.token_embd = nn.Embedding(config.vocab_size, hidden)  # [vocab, hidden]
        self.position_embd = nn.Embedding(config.context_length, hidden)  # [ctx, hidden]
        self.token_types = (nn.Embedding(config.type_vocab_size, hidden)
                            if config.type_vocab_size else None)  # [2, hidden]
        self.token_embd_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.pooler = nn.Linear(hidden, hidden) if config.has_pooler else None
        self.output = nn.Linear(hidden, config.num_labels)  # [num_labels, hidden]

    def encode(self, ids, attention_mask=None):
        """ids: [batch, n] int64; attention_mask: [batch, n], 1 = token, 0 = padding.

        Returns hidden states [batch, n, hidden]."""
        n = ids.shape[1]
        if n > self.config.context_length:
            raise ValueError(f"sequence of {n} tokens exceeds context_length "
                             f"{self.config.context_length}")
        x = self.token_embd(ids) + self.position_embd.weight[:n]
        if self.token_types is not None:
            x = x + self.token_types.weight[0]
        x = self.dropout(self.token_embd_norm(x))
        padding = None if attention_mask is None else attention_mask == 0
        for block in self.blocks:
            x = block(x, padding)
        return x

    def forward(self, ids, attention_mask=None):
        """Logits: [batch, num_labels] (text) or [batch, n, num_labels] (token)."""
        x = self.encode(ids, attention_mask)
        if self.config.task == TOKEN_CLASSIFICATION:
            return self.output(self.dropout(x))
        if self.config.pooling == "mean":
            if attention_mask is None:
                pooled = x.mean(dim=1)
            else:
                weights = attention_mask.to(x.dtype).unsqueeze(-1)
                pooled = (x * weights).sum(dim=1) / weights.sum(dim=1)
        else:
            pooled = x[:, 0]
            if self.pooler is not None:
                pooled = torch.tanh(self.pooler(pooled))
        return self.output(self.dropout(pooled))

    @torch.no_grad()
    def forward_ids(self, ids):
        """The reference: one unpadded sequence of ids ([CLS] ... [SEP]) -> float32 logits,
        [num_labels] for text, [n, num_labels] for token classification."""
        was_training = self.training
        self.eval()
        logits = self.forward(torch.as_tensor(ids, dtype=torch.long).unsqueeze(0))[0]
        self.train(was_training)
        return logits


def random_model(config, seed):
    """A BertEncoder with reproducible random weights (all tensors, norms and biases included,
    so that a wrong mapping of any tensor changes the logits)."""
    generator = torch.Generator().manual_seed(seed)
    model = BertEncoder(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if name.endswith("norm.weight"):
                parameter.copy_(1.0 + 0.1 * noise)
            elif name.endswith("embd.weight") or name.endswith("token_types.weight"):
                parameter.copy_(0.5 * noise)
            else:
                fan_in = parameter.shape[-1] if parameter.dim() > 1 else config.hidden_size
                parameter.copy_(noise / math.sqrt(fan_in))
    model.eval()
    return model


# ---- Names ----------------------------------------------------------------------------------

def module_to_gguf_name(name):
    """BertEncoder state-dict name -> GGUF tensor name (blocks.3.attn_q.weight -> blk.3...)."""
    if name.startswith("blocks."):
        return "blk." + name[len("blocks."):]
    if name.startswith("pooler.") or name.startswith("output."):
        return "cls." + name
    return name


def gguf_to_module_name(name):
    if name.startswith("blk."):
        return "blocks." + name[len("blk."):]
    if name.startswith("cls."):
        return name[len("cls."):]
    return name


_HF_EMBEDDINGS = {
    "bert.embeddings.word_embeddings.weight": "token_embd.weight",
    "bert.embeddings.position_embeddings.weight": "position_embd.weight",
    "bert.embeddings.token_type_embeddings.weight": "token_types.weight",
    "bert.embeddings.LayerNorm.weight": "token_embd_norm.weight",
    "bert.embeddings.LayerNorm.bias": "token_embd_norm.bias",
    "bert.pooler.dense.weight": "cls.pooler.weight",
    "bert.pooler.dense.bias": "cls.pooler.bias",
    "classifier.weight": "cls.output.weight",
    "classifier.bias": "cls.output.bias",
}
_HF_LAYER = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
_HF_LAYER_PATTERN = re.compile(r"^bert\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")
# Buffers and heads that carry no weights our model uses.
_HF_IGNORED = re.compile(r"^(bert\.embeddings\.position_ids|cls\.predictions\..*|"
                         r"cls\.seq_relationship\..*)$")


def hf_to_gguf_name(name):
    """Hugging Face BertFor{Sequence,Token}Classification name -> GGUF name, or None for
    tensors we do not use (position_ids buffer, pre-training heads). Raises on unknown names."""
    if name in _HF_EMBEDDINGS:
        return _HF_EMBEDDINGS[name]
    match = _HF_LAYER_PATTERN.match(name)
    if match and match.group(2) in _HF_LAYER:
        return f"blk.{match.group(1)}.{_HF_LAYER[match.group(2)]}.{match.group(3)}"
    if _HF_IGNORED.match(name):
        return None
    raise ValueError(f"unknown Hugging Face BERT tensor name: {name!r}")


def load_state_dict(model, state_dict):
    """Loads a state dict with either BertEncoder names or Hugging Face names into model."""
    is_hf = any(name.startswith("bert.") for name in state_dict)
    renamed = {}
    for name, tensor in state_dict.items():
        if is_hf:
            gguf_name = hf_to_gguf_name(name)
            if gguf_name is None:
                continue
            name = gguf_to_module_name(gguf_name)
        renamed[name] = tensor
    model.load_state_dict(renamed, strict=True)
    return model


# ---- Tokens and GGUF export -----------------------------------------------------------------

def is_bracketed_special(token):
    return len(token) > 2 and token.startswith("[") and token.endswith("]")


def hf_to_phantom_token(token):
    """HF WordPiece vocab entry -> llama.cpp convention: "##ing" -> "ing", "the" -> "\u2581the",
    bracketed specials unchanged."""
    if is_bracketed_special(token):
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


_SPECIAL_TOKEN_KEYS = {
    "tokenizer.ggml.unknown_token_id": "[UNK]",
    "tokenizer.ggml.cls_token_id": "[CLS]",
    "tokenizer.ggml.seperator_token_id": "[SEP]",
    "tokenizer.ggml.padding_token_id": "[PAD]",
    "tokenizer.ggml.mask_token_id": "[MASK]",
}


def to_gguf(model, tokens, labels, path, name="bert", embeddings_f16=False, lowercase=True):
    """Writes model as our BERT GGUF.

    tokens: vocabulary in llama.cpp phantom-space convention (index = token id); must contain
    [UNK], [CLS], [SEP], [PAD] and [MASK]. labels: class names, index = class id.
    embeddings_f16: store token_embd and position_embd as F16 (halves a small model's size).
    lowercase: False for a cased vocabulary (written as slmgw.tokenizer.lowercase = false; the
    key is left out for uncased ones, whose readers default to lowercasing).
    """
    config = model.config
    if len(tokens) != config.vocab_size:
        raise ValueError(f"{len(tokens)} tokens but config.vocab_size is {config.vocab_size}")
    if len(labels) != config.num_labels:
        raise ValueError(f"{len(labels)} labels but config.num_labels is {config.num_labels}")
    token_ids = {token: i for i, token in enumerate(tokens)}
    writer = GGUFWriter()
    writer.add_string("general.architecture", "bert")
    writer.add_string("general.name", name)
    writer.add_u32("bert.context_length", config.context_length)
    writer.add_u32("bert.embedding_length", config.hidden_size)
    writer.add_u32("bert.block_count", config.num_layers)
    writer.add_u32("bert.feed_forward_length", config.ffn_size)
    writer.add_u32("bert.attention.head_count", config.num_heads)
    writer.add_f32("bert.attention.layer_norm_epsilon", config.layer_norm_eps)
    writer.add_string("slmgw.task", config.task)
    writer.add_string_array("slmgw.labels", labels)
    writer.add_string("slmgw.pooling", config.pooling)
    writer.add_string("tokenizer.ggml.model", "bert")
    writer.add_string_array("tokenizer.ggml.tokens", tokens)
    if not lowercase:
        writer.add_bool("slmgw.tokenizer.lowercase", False)
    writer.add_i32_array("tokenizer.ggml.token_type",
                         [3 if is_bracketed_special(t) else 1 for t in tokens])
    for key, special in _SPECIAL_TOKEN_KEYS.items():
        if special not in token_ids:
            raise ValueError(f"vocabulary has no {special} token (needed for {key})")
        writer.add_u32(key, token_ids[special])
    half = {"token_embd.weight", "position_embd.weight"} if embeddings_f16 else set()
    for module_name, tensor in model.state_dict().items():
        gguf_name = module_to_gguf_name(module_name)
        array = tensor.detach().cpu().float().numpy()
        writer.add_tensor(gguf_name, array, "f16" if gguf_name in half else "f32")
    writer.write(path)
