#!/usr/bin/python3
"""C++ DecoderModel vs the PyTorch reference (tools/pyslm/llama.py), logit by logit.

For each architecture (llama, mistral, qwen2, phi3) and shape (also RoPE scalings and sliding
windows), builds a random model, writes it
as GGUF with our converter (tools/pyslm/llama.py to_gguf; Q/K permuted for llama/mistral as
llama.cpp does), computes float64 reference logits with PyTorch, runs decoder_tool on the same
ids (several sequences batched in each Forward call, prefill in chunks of 5 tokens) and compares.

Checks and tolerances (per model: max = max abs difference over all logits, rel = RMS of the
differences / RMS of the reference logits, agree = share of positions whose argmax is among the
reference's top 5):
  f32 weights, f32 KV:  max <= 1e-4 absolute (only summation order differs), agree = 100%.
  bf16 weights:         max <= 0.12 * RMS, rel <= 0.03, agree >= 95% (8 significant bits per
                        weight and activation; measured worst max 5.5%, rel ~1%).
  int8 weights:         max <= 0.50 * RMS, rel <= 0.10, agree >= 90% (per-channel int8 weights,
                        per-row int8 activations: ~1% per matmul, amplified through random-weight
                        attention; measured worst max 27%, rel ~5%).
  bf16 / int8 KV cache (f32 weights): max <= 0.05 / 0.15 * RMS, rel <= 0.01 / 0.03.
  Weights stored as Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, F16, BF16 in the GGUF: the
  reference uses the decoded weights (pyslm/ggml_quants.py), so f32 in memory must again match
  within 1e-4: this checks our C++ dequantization against an independent implementation of
  llama.cpp's layouts.
  Greedy decoding (f32): 64 tokens from 3 prompts decoded together, identical to the reference.
  Measured bounds are printed next to the limits; see docs/benchmarks.md for the worst seen.

Usage: check_decoder_reference.py --tool build/.../decoder_tool [--quick]
Exit 0 pass, 1 fail, 77 skip (PyTorch missing).
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as error:  # pragma: no cover
    print(f"SKIP: PyTorch/numpy not importable ({error}); install python3-torch", file=sys.stderr)
    sys.exit(77)

from pyslm import llama

SMALL = dict(vocab_size=300, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
             ffn_size=96, context_length=256)
# SmolLM2-135M's layer shapes (hidden 576, 9 heads, 3 KV heads, FFN 1536, vocab 49152) with 3
# layers instead of 30.
SMOLLM2 = dict(vocab_size=49152, hidden_size=576, num_layers=3, num_heads=9, num_kv_heads=3,
               ffn_size=1536, context_length=2048, rope_theta=100000.0)
# Rows are whole 256-element blocks, so every weight is stored k-quantized.
KQUANT = dict(vocab_size=512, hidden_size=256, num_layers=2, num_heads=4, num_kv_heads=1,
              ffn_size=512, context_length=256)

LENGTHS = [1, 4, 13, 37]
# (kind of the max bound, max bound, rel bound, minimum argmax agreement)
TOLERANCE = {"f32": ("abs", 1e-4, None, 1.0), "bf16": ("rms", 0.12, 0.03, 0.95),
             "int8": ("rms", 0.50, 0.10, 0.9)}
KV_TOLERANCE = {"bf16": ("rms", 0.05, 0.01, 0.9), "int8": ("rms", 0.15, 0.03, 0.9)}
EXACT = ("abs", 1e-4, None, 1.0)


def sequences(vocab, rng, lengths=LENGTHS):
    return [rng.integers(0, vocab, size=n).tolist() for n in lengths]


def run_tool(tool, path, seqs, *extra):
    text = "\n".join(" ".join(str(i) for i in ids) for ids in seqs) + "\n"
    result = subprocess.run([tool, "--model", path, *extra], input=text, capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"decoder_tool {path} {' '.join(extra)} failed: "
                           f"{result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout)


class Checker:
    def __init__(self, tool, workdir):
        self.tool = tool
        self.workdir = workdir
        self.failures = []

    def compare(self, label, path, model, seqs, tolerance, *extra):
        kind, bound, rel_bound, min_agree = tolerance
        reference = [model.forward_ids(ids).numpy() for ids in seqs]
        rms = float(np.sqrt(np.mean(np.concatenate([r.reshape(-1) for r in reference]) ** 2)))
        got = run_tool(self.tool, path, seqs, "--chunk", "5", *extra)["logits"]
        error, squared, count, agree, positions = 0.0, 0.0, 0, 0, 0
        for want, actual in zip(reference, got):
            actual = np.asarray(actual, dtype=np.float64)
            if actual.shape != want.shape:
                self.failures.append(f"{label}: logits shape {actual.shape}, expected {want.shape}")
                return
            diff = actual - want
            error = max(error, float(np.max(np.abs(diff))))
            squared += float(np.sum(diff ** 2))
            count += diff.size
            # The C++ argmax is among the reference's top 5 (random-weight logits over a large
            # vocabulary have near-ties that quantization noise legitimately reorders).
            top5 = np.argsort(-want, axis=1)[:, :5]
            agree += int(np.sum(np.any(top5 == np.argmax(actual, axis=1)[:, None], axis=1)))
            positions += want.shape[0]
        rel = float(np.sqrt(squared / count)) / rms
        agreement = agree / positions
        limit = bound if kind == "abs" else bound * rms
        problems = []
        if not error <= limit:
            problems.append(f"max abs error {error:.3g} > {limit:.3g}")
        if rel_bound is not None and not rel <= rel_bound:
            problems.append(f"relative RMS error {rel:.3g} > {rel_bound}")
        if agreement < min_agree:
            problems.append(f"argmax agreement {agreement:.2f} < {min_agree}")
        self.failures += [f"{label}: {p}" for p in problems]
        print(f"{label:40s} max={error:.3g} ({error / rms:.2%} of RMS {rms:.3g}, limit "
              f"{limit:.3g}) rel={rel:.2%} agree={agreement:.2f} "
              f"{'FAIL' if problems else 'ok'}", flush=True)

    def greedy(self, label, path, model, prompts, steps):
        got = run_tool(self.tool, path, prompts, "--mode", "greedy", "--steps", str(steps),
                       "--chunk", "3")["tokens"]
        for prompt, tokens in zip(prompts, got):
            want = model.greedy(prompt, steps)
            if tokens != want:
                first = next(i for i, (a, b) in enumerate(zip(tokens, want)) if a != b)
                self.failures.append(f"{label}: greedy tokens differ from step {first}: "
                                     f"{tokens[first:first + 5]} vs {want[first:first + 5]}")
                print(f"{label:44s} greedy {steps} tokens: FAIL at step {first}", flush=True)
                return
        print(f"{label:44s} greedy {steps} tokens x {len(prompts)} prompts: identical",
              flush=True)

    def model(self, config, seed, weight_type="f32", tag="", logit_rms=None):
        state = llama.random_state_dict(config, seed=seed)
        if logit_rms is not None:
            # Scale the final norm so the logits' RMS is about `logit_rms`, as in trained models:
            # the f32 bound is absolute (1e-4), and random weights at this width otherwise give
            # logits of RMS ~24, where f32 summation order alone differs by ~3e-4.
            reference = llama.DecoderLM(config, state)
            probe = reference.forward_ids(list(range(1, 9)))
            rms = float(torch.as_tensor(probe).double().pow(2).mean().sqrt())
            state["model.norm.weight"] = state["model.norm.weight"] * (logit_rms / rms)
        path = os.path.join(self.workdir, f"{config.architecture}{tag}_{weight_type}.gguf")
        llama.to_gguf(config, state, path, weight_type=weight_type)
        reference = llama.DecoderLM(config, llama.roundtrip_state_dict(config, state,
                                                                       weight_type))
        return path, reference


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", required=True, help="path to decoder_tool")
    parser.add_argument("--quick", action="store_true", help="small shapes only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory(prefix="decoder_reference_") as workdir:
        check = Checker(args.tool, workdir)
        for seed, arch in enumerate(llama.ARCHITECTURES):
            config = llama.DecoderConfig(architecture=arch, **SMALL)
            config.tie_embeddings = arch == "qwen2"
            path, model = check.model(config, seed)
            seqs = sequences(config.vocab_size, rng)
            for dtype, tolerance in TOLERANCE.items():
                check.compare(f"{arch}/small/{dtype}", path, model, seqs, tolerance,
                              "--dtype", dtype)
            for kv, tolerance in KV_TOLERANCE.items():
                check.compare(f"{arch}/small/kv-{kv}", path, model, seqs, tolerance, "--kv", kv)
            check.greedy(f"{arch}/small/f32", path, model, [[1, 2, 3], [7], [5, 9, 11, 13]], 64)
        # RoPE scaling variants.
        half = SMALL["hidden_size"] // SMALL["num_heads"] // 2
        scalings = [
            ("llama", {"rope_type": "linear", "factor": 4.0}, 0),
            ("llama", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 4.0, "original_max_position_embeddings": 16}, 0),
            ("phi3", {"rope_type": "longrope", "original_max_position_embeddings": 64,
                      "short_factor": [1.0 + 0.1 * i for i in range(half)],
                      "long_factor": [2.0 + 0.5 * i for i in range(half)]}, 0),
            ("phi3", {"rope_type": "longrope", "original_max_position_embeddings": 64,
                      "short_factor": [1.0 + 0.1 * i for i in range(half)],
                      "long_factor": [2.0 + 0.5 * i for i in range(half)]}, 64),
        ]
        for arch, scaling, run_context in scalings:
            config = llama.DecoderConfig(architecture=arch, rope_scaling=scaling,
                                         run_context=run_context, **SMALL)
            kind = scaling["rope_type"] + ("-short" if run_context else "")
            path, model = check.model(config, 11, tag=kind)
            extra = ("--max_context", str(run_context)) if run_context else ()
            check.compare(f"{arch}/rope-{kind}/f32", path, model,
                          sequences(config.vocab_size, rng), EXACT, *extra)
        # Sliding-window attention (Mistral's and Phi-3-mini-4k's sliding_window): windows
        # shorter than the 13- and 37-token sequences and than the 5-token prefill chunks, and
        # greedy decoding far past the window; bf16 KV takes the bf16-product attention kernels.
        for seed, (arch, window) in enumerate([("mistral", 4), ("phi3", 9), ("qwen2", 16)]):
            config = llama.DecoderConfig(architecture=arch, sliding_window=window, **SMALL)
            path, model = check.model(config, 20 + seed, tag=f"swa{window}")
            seqs = sequences(config.vocab_size, rng)
            for chunk in ("5", "64"):  # 64: whole prompts, the blocked prefill kernels
                check.compare(f"{arch}/window-{window}/chunk-{chunk}/f32", path, model, seqs,
                              EXACT, "--chunk", chunk)
                check.compare(f"{arch}/window-{window}/chunk-{chunk}/kv-bf16", path, model, seqs,
                              KV_TOLERANCE["bf16"], "--kv", "bf16", "--chunk", chunk)
            check.greedy(f"{arch}/window-{window}/f32", path, model, [[1, 2, 3], [5, 9]], 40)
        # GGUF tensor types, decoded in C++ vs in numpy.
        for weight_type in ["f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1"]:
            config = llama.DecoderConfig(architecture="llama", **SMALL)
            path, model = check.model(config, 3, weight_type)
            check.compare(f"llama/small/gguf-{weight_type}/f32", path, model,
                          sequences(config.vocab_size, rng), EXACT)
        for weight_type in ["q4_k", "q5_k", "q6_k"]:
            config = llama.DecoderConfig(architecture="qwen2", **KQUANT)
            path, model = check.model(config, 4, weight_type)
            check.compare(f"qwen2/kquant/gguf-{weight_type}/f32", path, model,
                          sequences(config.vocab_size, rng), EXACT)
        if not args.quick:
            config = llama.DecoderConfig(architecture="llama", tie_embeddings=True, **SMOLLM2)
            path, model = check.model(config, 5, tag="smollm2", logit_rms=2.0)
            seqs = sequences(config.vocab_size, rng, [1, 9, 24])
            for dtype, tolerance in TOLERANCE.items():
                check.compare(f"llama/smollm2-3layer/{dtype}", path, model, seqs, tolerance,
                              "--dtype", dtype)
            check.greedy("llama/smollm2-3layer/f32", path, model, [[1, 2, 3], [400, 5]], 64)
            qwen = dataclasses.replace(config, architecture="qwen2", tie_embeddings=True)
            path, model = check.model(qwen, 6, "q8_0", tag="smollm2", logit_rms=2.0)
            check.compare("qwen2/smollm2-3layer/gguf-q8_0/f32", path, model, seqs[:2], EXACT)
    if check.failures:
        print("FAILED:\n  " + "\n  ".join(check.failures))
        return 1
    print("all decoder logits match the PyTorch reference within tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
