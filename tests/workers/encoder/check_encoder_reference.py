#!/usr/bin/python3
"""C++ EncoderModel vs the PyTorch reference (tools/pyslm/bert.py), logit by logit.

Builds random BERTs at several shapes with both heads, writes each as GGUF, computes reference
logits with PyTorch (float32) on random id sequences of 1..128 tokens ([CLS] ... [SEP]), runs
encoder_logits_tool on the same ids in f32, bf16 and int8, and compares.

Tolerances (per dtype; the error is the max abs difference over all logits of one model,
RMS is the root mean square of that model's reference logits):
  f32:  max abs error <= 1e-4 (absolute; only summation order differs).
  bf16: max abs error <= 0.05 * RMS. bf16 keeps 8 significant bits, so each weight is off by up
        to 2^-9 relative (~0.2%); errors of independent weights average out in a dot product and
        the post-LN layers renormalise. Measured worst: 1.9% of RMS (MiniLM-like, 6 layers), so
        the bound has a 2.5x margin and still catches a wrong tensor (errors ~100% of RMS).
  int8: max abs error <= 0.20 * RMS. Per-channel symmetric int8 weights (2^-8 of the row's max)
        plus per-call int8 activations add ~1-2% per matmul; through 6 layers x 4 matmuls the
        worst measured is 8.0% of RMS (MiniLM-like token head; 3-5% elsewhere): 2.5x margin.
Also checked for every dtype: the argmax label agrees with PyTorch on >= 90% of inputs (f32:
all inputs).

Usage: check_encoder_reference.py --tool build/.../encoder_logits_tool [--quick]
Exit 0 pass, 1 fail, 77 skip (PyTorch missing).
"""

import argparse
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

from pyslm import bert

TOLERANCE = {"f32": ("abs", 1e-4), "bf16": ("rms", 0.05), "int8": ("rms", 0.20)}
MIN_ARGMAX_AGREEMENT = {"f32": 1.0, "bf16": 0.9, "int8": 0.9}
LENGTHS = [1, 2, 3, 5, 8, 13, 16, 31, 64, 100, 128]

SHAPES = {
    "tiny": dict(hidden_size=32, num_layers=1, num_heads=2, ffn_size=64, vocab=120),
    "odd": dict(hidden_size=48, num_layers=2, num_heads=3, ffn_size=80, vocab=333),
    "minilm": dict(hidden_size=384, num_layers=6, num_heads=12, ffn_size=1536, vocab=1000),
}
HEADS = {
    "cls_pooler": dict(task=bert.TEXT_CLASSIFICATION, pooling="cls", use_pooler=True,
                       num_labels=3),
    "mean": dict(task=bert.TEXT_CLASSIFICATION, pooling="mean", use_pooler=False, num_labels=2),
    "token": dict(task=bert.TOKEN_CLASSIFICATION, pooling="cls", use_pooler=False, num_labels=5),
}


def vocabulary(size):
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = [("\u2581w%d" % i) if i % 3 else ("p%d" % i) for i in range(size - len(specials))]
    return specials + words


def id_sequences(vocab_size, rng):
    cls, sep = 2, 3
    sequences = []
    for length in LENGTHS:
        if length == 1:
            sequences.append([cls])
        else:
            body = rng.integers(5, vocab_size, size=length - 2).tolist()
            sequences.append([cls] + body + [sep])
    return sequences


def run_tool(tool, model_path, dtype, sequences):
    text = "\n".join(" ".join(str(i) for i in ids) for ids in sequences) + "\n"
    result = subprocess.run([tool, model_path, dtype], input=text, capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{tool} {model_path} {dtype} failed: {result.stderr.strip()}")
    return [np.asarray(row, dtype=np.float64) for row in json.loads(result.stdout)["logits"]]


def check_model(tool, shape_name, head_name, seed, workdir, dtypes):
    shape = dict(SHAPES[shape_name])
    vocab_size = shape.pop("vocab")
    head = HEADS[head_name]
    config = bert.BertConfig(vocab_size=vocab_size, context_length=128, **shape, **head)
    model = bert.random_model(config, seed=seed)
    path = os.path.join(workdir, f"{shape_name}_{head_name}.gguf")
    labels = [f"label{i}" for i in range(config.num_labels)]
    if head["task"] == bert.TOKEN_CLASSIFICATION:
        labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    bert.to_gguf(model, vocabulary(vocab_size), labels, path, name=f"{shape_name}_{head_name}")
    rng = np.random.default_rng(seed)
    sequences = id_sequences(vocab_size, rng)
    reference = [model.forward_ids(ids).double().numpy().reshape(-1) for ids in sequences]
    rms = float(np.sqrt(np.mean(np.concatenate(reference) ** 2)))
    failures = []
    for dtype in dtypes:
        actual = run_tool(tool, path, dtype, sequences)
        errors, agree = [], 0
        for ids, want, got in zip(sequences, reference, actual):
            if got.shape != want.shape:
                failures.append(f"{shape_name}/{head_name}/{dtype}: {len(ids)} tokens: got "
                                f"{got.shape[0]} logits, expected {want.shape[0]}")
                continue
            errors.append(float(np.max(np.abs(got - want))))
            k = config.num_labels
            agree += float(np.mean(np.argmax(got.reshape(-1, k), axis=1) ==
                                   np.argmax(want.reshape(-1, k), axis=1)))
        max_error = max(errors) if errors else float("inf")
        kind, bound = TOLERANCE[dtype]
        limit = bound if kind == "abs" else bound * rms
        agreement = agree / len(sequences)
        status = "ok"
        if not max_error <= limit:
            status = "FAIL"
            failures.append(f"{shape_name}/{head_name}/{dtype}: max abs error {max_error:.3g} > "
                            f"{limit:.3g} ({kind} bound {bound})")
        if agreement < MIN_ARGMAX_AGREEMENT[dtype]:
            status = "FAIL"
            failures.append(f"{shape_name}/{head_name}/{dtype}: argmax agreement "
                            f"{agreement:.2f} < {MIN_ARGMAX_AGREEMENT[dtype]}")
        print(f"{shape_name:7s} {head_name:10s} {dtype:5s} max_abs_err={max_error:.3g} "
              f"({max_error / rms:.2%} of RMS {rms:.3g}) limit={limit:.3g} "
              f"argmax_agree={agreement:.2f} {status}", flush=True)
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", required=True, help="path to encoder_logits_tool")
    parser.add_argument("--quick", action="store_true", help="tiny and odd shapes only")
    parser.add_argument("--dtypes", default="f32,bf16,int8")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dtypes = args.dtypes.split(",")
    failures = []
    with tempfile.TemporaryDirectory(prefix="encoder_reference_") as workdir:
        for seed, shape_name in enumerate(["tiny", "odd"] + ([] if args.quick else ["minilm"])):
            for head_name in HEADS:
                failures += check_model(args.tool, shape_name, head_name, seed + 1, workdir,
                                        dtypes)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("all encoder logits match the PyTorch reference within tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
