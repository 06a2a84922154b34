#!/usr/bin/python3
"""C++ NgramModel (workers/ngram) vs the Python reference (tools/pyslm/ngram.py).

Writes random n-gram models (with and without class -> label grouping, f16 and f32 embeddings,
with and without bigrams and char n-grams), runs ngram_classify_tool on sample texts (ASCII,
punctuation, UTF-8, invalid UTF-8, empty), and checks that the feature hashes are identical and
the probabilities agree to 1e-5. Also checks the committed router model when it exists.
Usage: check_ngram_reference.py --tool PATH [--model models/router-clinc150-ngram.gguf]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from pyslm.gguf_reader import read_gguf
from pyslm.gguf_writer import GGUFWriter
from pyslm.ngram import Featurizer, probabilities

TEXTS = [
    "Book me a flight to Paris, please!",
    "what's my credit-card balance?? 1234",
    "HELLO hello HeLLo",
    "a",
    "",
    "   ,,,  ",
    "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e \u2014 na\u00efve co\u00f6perate",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 mixed with english",
    "emoji \U0001F600 inside word\U0001F600s",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "tab\tseparated\tvalues and under_scores",
]
# Bytes that are not valid UTF-8 (sent raw; the tokenizer works on bytes).
RAW = [b"bad \xff\xfe bytes \xc3", b"lone \x80 continuation"]


def write_model(path, rng, buckets, dim, classes, labels, class_labels, word_ngrams, char_min,
                char_max, dtype):
    writer = GGUFWriter()
    writer.add_string("general.architecture", "ngram")
    writer.add_string_array("slmgw.labels", labels)
    if class_labels is not None:
        writer.add_u32_array("ngram.class_labels", class_labels)
    for key, value in [("buckets", buckets), ("dim", dim), ("hash_seed", 987654321),
                       ("word_ngrams", word_ngrams), ("char_ngram_min", char_min),
                       ("char_ngram_max", char_max)]:
        writer.add_u32("ngram." + key, value)
    embeddings = rng.standard_normal((buckets, dim)).astype(np.float32)
    if dtype == "f16":
        embeddings = embeddings.astype(np.float16)
    weight = rng.standard_normal((classes, dim)).astype(np.float32)
    bias = rng.standard_normal(classes).astype(np.float32)
    writer.add_tensor("token_embd.weight", embeddings, dtype)
    writer.add_tensor("output.weight", weight)
    writer.add_tensor("output.bias", bias)
    writer.write(path)


def load_reference(path):
    gguf = read_gguf(path)
    meta, tensors = gguf.metadata, gguf.tensors
    featurizer = Featurizer(meta["ngram.buckets"], meta["ngram.hash_seed"],
                            meta["ngram.word_ngrams"], meta["ngram.char_ngram_min"],
                            meta["ngram.char_ngram_max"])
    labels = meta["slmgw.labels"]
    class_labels = meta.get("ngram.class_labels")
    return featurizer, tensors, labels, class_labels


def reference_probs(featurizer, tensors, labels, class_labels, text):
    class_probs = probabilities(featurizer, tensors["token_embd.weight"],
                                tensors["output.weight"], tensors["output.bias"], text)
    if class_labels is None:
        return class_probs
    out = np.zeros(len(labels))
    for c, label in enumerate(class_labels):
        out[label] += class_probs[c]
    return out


def check(tool, path, name):
    featurizer, tensors, labels, class_labels = load_reference(path)
    inputs = [t.encode("utf-8") for t in TEXTS] + RAW
    result = subprocess.run([tool, path], input=b"\n".join(inputs) + b"\n",
                            capture_output=True, check=True)
    lines = result.stdout.decode().splitlines()
    assert len(lines) == len(inputs), (name, len(lines), len(inputs))
    failures = 0
    for raw, line in zip(inputs, lines):
        got = json.loads(line)
        want_hashes = featurizer.hashes(raw)
        got_hashes = [int(h) for h in got["hashes"]]
        if sorted(got_hashes) != sorted(want_hashes):
            print(f"FAIL {name}: hashes differ for {raw!r}:\n  C++ {sorted(got_hashes)[:8]}..."
                  f"\n  Py  {sorted(want_hashes)[:8]}...")
            failures += 1
            continue
        want = reference_probs(featurizer, tensors, labels, class_labels, raw)
        diff = np.abs(np.asarray(got["probabilities"]) - want).max()
        if diff > 1e-5 or abs(sum(got["probabilities"]) - 1) > 1e-5:
            print(f"FAIL {name}: probabilities differ by {diff} for {raw!r}")
            failures += 1
    print(f"{name}: {len(inputs)} texts, {failures} failures")
    return failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool", required=True)
    parser.add_argument("--model", default="")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            # buckets, dim, classes, labels, class_labels, word_ngrams, char_min, char_max, dtype
            (1000, 8, 3, ["a", "b", "c"], None, 2, 3, 5, "f32"),
            (977, 16, 7, ["x", "y", "oos"], [0, 0, 1, 1, 1, 2, 2], 2, 2, 4, "f16"),
            (50, 4, 2, ["p", "q"], None, 1, 0, 0, "f32"),
            (5000, 12, 4, ["w", "x", "y", "z"], None, 2, 1, 1, "f16"),
        ]
        for i, case in enumerate(cases):
            path = os.path.join(tmp, f"model{i}.gguf")
            write_model(path, rng, *case)
            failures += check(args.tool, path, f"random model {i}")
    if args.model:
        if os.path.exists(args.model):
            failures += check(args.tool, args.model, os.path.basename(args.model))
        else:
            print(f"skipping {args.model}: not present")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
