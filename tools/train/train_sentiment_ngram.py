#!/usr/bin/python3
"""Trains the SST-2 sentiment specialist as a fastText-style n-gram classifier (tools/pyslm/ngram.py;
served by the encoder worker, which loads general.architecture = "ngram" models for Classify).

Reproduce models/sentiment-sst2.gguf with
    /usr/bin/python3 tools/train/train_sentiment_ngram.py

Data: DIR/train.tsv (all 67,349 SST-2 phrases and sentences) and DIR/dev.tsv, `label<TAB>text`
with a header line. Model: mean of the hashed word unigram, bigram and character 3-5-gram
embeddings -> linear -> softmax. Each member (seeds seed, seed+1, ...) keeps its weights at the
dev evaluation (4 per epoch) with the best accuracy; the members are linear in their mean
embedding, so their averaged logits are one model of the same kind: embeddings E_k W_k^T
averaged (dim = 2 labels), identity output, biases averaged. Both selections use dev, so the
dev accuracy reported is optimistic (SST-2's test labels are not in ../shared/data).
"""

import argparse
import csv
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

TOOLS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOOLS_DIR)
from pyslm import ngram  # noqa: E402
from pyslm.gguf_reader import read_gguf  # noqa: E402
from pyslm.gguf_writer import GGUFWriter  # noqa: E402

REPO_DIR = os.path.dirname(TOOLS_DIR)
DATA_DIR = os.environ.get("SLM_SHARED_DATA_DIR", os.path.join(REPO_DIR, "..", "shared", "data"))
LABELS = ["negative", "positive"]


def read_sst2(path):
    """[(label 0/1, text)]; raises ValueError naming the line on a malformed row."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader, None)
        for number, row in enumerate(reader, start=2):
            if len(row) != 2 or row[0] not in ("0", "1"):
                raise ValueError(f"{path}:{number}: expected label<TAB>text with label 0 or 1")
            rows.append((int(row[0]), row[1]))
    return rows


def pack(feature_lists):
    flat, offsets = [], []
    for features in feature_lists:
        offsets.append(len(flat))
        flat.extend(features)
    return torch.tensor(flat, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(DATA_DIR, "sst2"))
    parser.add_argument("--out", default=os.path.join(REPO_DIR, "models", "sentiment-sst2.gguf"))
    parser.add_argument("--name", default="sentiment-sst2")
    parser.add_argument("--buckets", type=int, default=1 << 18)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--hash-seed", type=int, default=12345)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--members", type=int, default=6)
    parser.add_argument("--evaluations-per-epoch", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-bytes", type=int, default=6 * 1024 * 1024)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    started = time.time()
    featurizer = ngram.Featurizer(args.buckets, args.hash_seed, 2, 3, 5)
    train = read_sst2(os.path.join(args.data, "train.tsv"))
    dev = read_sst2(os.path.join(args.data, "dev.tsv"))
    train_features = [featurizer.features(text.encode("utf-8")) for _, text in train]
    train_labels = torch.tensor([label for label, _ in train])
    dev_flat, dev_offsets = pack(featurizer.features(text.encode("utf-8")) for _, text in dev)
    dev_labels = torch.tensor([label for label, _ in dev])
    print(f"train {len(train)}, dev {len(dev)}; features {time.time() - started:.0f} s", flush=True)

    def train_member(seed):
        torch.manual_seed(seed)
        rng = random.Random(seed)
        embedding = torch.nn.EmbeddingBag(args.buckets, args.dim, mode="mean", sparse=True)
        torch.nn.init.uniform_(embedding.weight, -1.0 / args.dim, 1.0 / args.dim)
        output = torch.nn.Linear(args.dim, len(LABELS))
        optimizers = [torch.optim.SparseAdam(list(embedding.parameters()), lr=args.lr),
                      torch.optim.Adam(output.parameters(), lr=args.lr)]
        steps_per_epoch = math.ceil(len(train) / args.batch_size)
        every = max(1, math.ceil(steps_per_epoch / args.evaluations_per_epoch))
        best = (-1.0, None)
        for epoch in range(args.epochs):
            order = list(range(len(train)))
            rng.shuffle(order)
            for step, start in enumerate(range(0, len(order), args.batch_size), start=1):
                batch = order[start:start + args.batch_size]
                flat, offsets = pack(train_features[i] for i in batch)
                # An empty feature list (no word) is a zero vector, as the reference does.
                loss = F.cross_entropy(output(embedding(flat, offsets)), train_labels[batch])
                for optimizer in optimizers:
                    optimizer.zero_grad()
                loss.backward()
                for optimizer in optimizers:
                    optimizer.step()
                if step % every == 0 or step == steps_per_epoch:
                    with torch.no_grad():
                        accuracy = (output(embedding(dev_flat, dev_offsets)).argmax(-1)
                                    == dev_labels).float().mean().item()
                    if accuracy > best[0]:
                        with torch.no_grad():
                            collapsed = embedding.weight @ output.weight.T  # [buckets, labels]
                        best = (accuracy, (collapsed.clone(), output.bias.detach().clone()))
        print(f"member seed {seed}: best dev accuracy {best[0]:.4f} "
              f"({time.time() - started:.0f} s)", flush=True)
        return best

    members = [train_member(args.seed + k) for k in range(args.members)]
    table = sum(m[1][0] for m in members) / len(members)
    bias = sum(m[1][1] for m in members) / len(members)
    writer = GGUFWriter()
    writer.add_string("general.architecture", "ngram")
    writer.add_string("general.name", args.name)
    writer.add_string("slmgw.task", "text_classification")
    writer.add_string_array("slmgw.labels", LABELS)
    for key, value in (("buckets", args.buckets), ("dim", len(LABELS)),
                       ("hash_seed", args.hash_seed), ("word_ngrams", 2),
                       ("char_ngram_min", 3), ("char_ngram_max", 5)):
        writer.add_u32("ngram." + key, value)
    writer.add_tensor("token_embd.weight", table.numpy().astype(np.float32), "f16")
    writer.add_tensor("output.weight", np.eye(len(LABELS), dtype=np.float32), "f32")
    writer.add_tensor("output.bias", bias.numpy().astype(np.float32), "f32")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    writer.write(args.out)
    size = os.path.getsize(args.out)
    stored = read_gguf(args.out).tensors
    correct = sum(int(np.argmax(ngram.probabilities(
        featurizer, stored["token_embd.weight"], stored["output.weight"], stored["output.bias"],
        text.encode("utf-8"))) == label) for label, text in dev)
    print(f"wrote {args.out}: {size} bytes; members {[round(m[0], 4) for m in members]}; "
          f"exported model dev accuracy {correct / len(dev):.4f} ({correct}/{len(dev)}); total "
          f"{time.time() - started:.0f} s")
    if size > args.max_bytes:
        print(f"error: {args.out} is {size} bytes, over --max-bytes {args.max_bytes}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
