#!/usr/bin/python3
"""C++ NgramTagger (workers/ngram/ngram_tagger.h) vs the Python reference
(tools/pyslm/ngram_tagger.py).

Writes random tagger models (ReLU and linear, f16 and f32 embeddings, different seeds and bucket
counts), runs ngram_tagger_tool on sample texts (mixed case, punctuation, digits, UTF-8, invalid
UTF-8, tabs and other ASCII whitespace, one token, empty) and checks that token spans and feature
hashes are identical and probabilities agree to 1e-5. Also checks the committed entity model when
it is an ngram_tagger.
Usage: check_ngram_tagger_reference.py --tool PATH [--model models/entities-wnut17.gguf]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from pyslm import ngram_tagger
from pyslm.gguf_reader import read_gguf

TEXTS = [
    "Justin Bieber is playing in NEW YORK tonight @justinbieber #Beliebers",
    "lol i love the new iPhone 7 from Apple !!!",
    "RT @user: Watching Game of Thrones s07e01 ... http://t.co/abc123",
    "Paris",
    "",
    "  \t  ",
    "caf\u00e9 Cr\u00e8me BR\u00dbL\u00c9E \u2014 na\u00efve Zo\u00eb",
    "\u65e5\u672c\u8a9e \u30c6\u30ad\u30b9\u30c8 mixed with English",
    "emoji \U0001F600 inside Word\U0001F600s aaaaaaa AAAAA 1111 ____",
    "tab\tseparated\vvertical\fform\rreturn   multiple   spaces",
    "A B C D E F G H I J K L M N O P Q R S T U V W X Y Z",
]
RAW = [b"bad \xff\xfe Bytes \xc3", b"lone \x80 continuation \x00 nul"]


def write_model(path, rng, buckets, dim, labels, seed, activation, f16):
    embeddings = rng.standard_normal((buckets, dim)).astype(np.float32) * 0.5
    ngram_tagger.write_gguf(path, "random", labels, buckets, seed, activation, embeddings,
                            rng.standard_normal(dim), rng.standard_normal((len(labels), dim)),
                            rng.standard_normal(len(labels)), embeddings_f16=f16)


def check(tool, path, name):
    gguf = read_gguf(path)
    meta = gguf.metadata
    featurizer = ngram_tagger.Featurizer(meta["ngram_tagger.buckets"],
                                         meta["ngram_tagger.hash_seed"])
    activation = meta["ngram_tagger.activation"]
    num_labels = len(meta["slmgw.labels"])
    inputs = [t.encode("utf-8") for t in TEXTS] + RAW
    result = subprocess.run([tool, path], input=b"\n".join(inputs) + b"\n",
                            capture_output=True, check=True)
    lines = result.stdout.decode().splitlines()
    assert len(lines) == len(inputs), (name, len(lines), len(inputs))
    failures = 0
    for raw, line in zip(inputs, lines):
        got = json.loads(line)
        data, spans, words = ngram_tagger.split(raw)
        if [tuple(s) for s in got["spans"]] != spans:
            print(f"FAIL {name}: spans differ for {raw!r}: {got['spans']} vs {spans}")
            failures += 1
            continue
        want_hashes = featurizer.hashes(words)
        if [[int(h) for h in token] for token in got["hashes"]] != want_hashes:
            print(f"FAIL {name}: hashes differ for {raw!r}")
            failures += 1
            continue
        want = ngram_tagger.probabilities(featurizer, gguf.tensors, activation, words)
        got_probs = np.asarray(got["probabilities"]).reshape(len(words), num_labels)
        diff = np.abs(got_probs - want).max() if len(words) else 0.0
        if diff > 1e-5:
            print(f"FAIL {name}: probabilities differ by {diff} for {raw!r}")
            failures += 1
    print(f"{name}: {len(inputs)} texts, {failures} failures")
    return failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool", required=True)
    parser.add_argument("--model", default="")
    args = parser.parse_args()
    rng = np.random.default_rng(11)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            (1000, 8, ["O", "B-x", "I-x"], 1, "relu", False),
            (977, 16, ["O", "B-a", "I-a", "B-b", "I-b"], 4294967295, "none", True),
            (7, 3, ["O"], 0, "relu", True),
        ]
        for i, case in enumerate(cases):
            path = os.path.join(tmp, f"tagger{i}.gguf")
            write_model(path, rng, *case)
            failures += check(args.tool, path, f"random tagger {i}")
    if args.model:
        if not os.path.exists(args.model):
            print(f"skipping {args.model}: not present")
        elif read_gguf(args.model, load_tensors=False).metadata.get(
                "general.architecture") != ngram_tagger.ARCHITECTURE:
            print(f"skipping {args.model}: not an {ngram_tagger.ARCHITECTURE}")
        else:
            failures += check(args.tool, args.model, os.path.basename(args.model))
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
