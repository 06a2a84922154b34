#!/usr/bin/python3
"""Trains the SST-2 sentiment specialist as a fastText-style n-gram classifier (tools/pyslm/ngram.py;
served by the encoder worker, which loads general.architecture = "ngram" models for Classify).

Reproduce models/sentiment-sst2.gguf with
    /usr/bin/python3 tools/train/train_sentiment_ngram.py

Data: DIR/train.tsv (all 67,349 SST-2 phrases and sentences) and DIR/dev.tsv, `label<TAB>text`
with a header line. Model: mean of the hashed word unigram, bigram and character 3-5-gram
embeddings -> linear -> softmax. The members (seeds seed, seed+1, ...) are linear in their mean
embedding, so their averaged logits are one model of the same kind: embeddings E_k W_k^T
averaged (dim = 2 labels), identity output, biases averaged.

Every choice is made on a held-out slice of train.tsv, never on dev. train.tsv holds the
phrases of the training sentences (and the sentences), dev holds whole sentences, so the slice
is sentence-like: every --selection-every'th row with at least --selection-min-words words (all
rows if there are none); every row that is a word span of a slice row or contains one (its
sub- and super-phrases) is left out of the fit rows, so the slice is not seen through its
parts. Each member keeps the position (4 evaluations per epoch) with the best slice accuracy;
with --refit (default) it is then trained again on all of train.tsv for that many epochs.
Dev is evaluated once, on the exported file, at the end.
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


def split_selection(rows, every, min_words):
    """(fit row indices, selection row indices): the selection is every `every`-th row (by
    position among them) of the rows with >= min_words words (of all rows if none has); the fit
    rows exclude every row that is a contiguous word span of a selection row or contains one."""
    if every < 2:
        raise ValueError("--selection-every must be >= 2")
    words = [text.split() for _, text in rows]
    candidates = [i for i, w in enumerate(words) if len(w) >= min_words] or list(range(len(rows)))
    selection = candidates[every - 1::every]
    chosen = set(selection)
    held = {" ".join(words[i]) for i in selection}
    spans = set()  # every word span of a selection row
    for i in selection:
        w = words[i]
        for a in range(len(w)):
            for b in range(a + 1, len(w) + 1):
                spans.add(" ".join(w[a:b]))
    shortest = min(len(words[i]) for i in selection) if selection else 0

    def overlaps(w):
        if " ".join(w) in spans:
            return True
        # Contains a selection row: only rows longer than the shortest one can.
        for n in range(shortest, len(w)):
            for a in range(len(w) - n + 1):
                if " ".join(w[a:a + n]) in held:
                    return True
        return False

    fit = [i for i, w in enumerate(words) if i not in chosen and not overlaps(w)]
    return fit, selection


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
    parser.add_argument("--selection-every", type=int, default=20)
    parser.add_argument("--selection-min-words", type=int, default=12)
    parser.add_argument("--refit", action=argparse.BooleanOptionalAction, default=True,
                        help="retrain the members on all of train.tsv for their selected "
                             "number of epochs before exporting")
    parser.add_argument("--max-bytes", type=int, default=6 * 1024 * 1024)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    started = time.time()
    featurizer = ngram.Featurizer(args.buckets, args.hash_seed, 2, 3, 5)
    train = read_sst2(os.path.join(args.data, "train.tsv"))
    dev = read_sst2(os.path.join(args.data, "dev.tsv"))
    fit, selection = split_selection(train, args.selection_every, args.selection_min_words)
    all_features = [featurizer.features(text.encode("utf-8")) for _, text in train]
    all_labels = torch.tensor([label for label, _ in train])
    fit_features = [all_features[i] for i in fit]
    fit_labels = all_labels[fit]
    sel_flat, sel_offsets = pack(all_features[i] for i in selection)
    sel_labels = all_labels[selection]
    print(f"train {len(train)}: fit {len(fit)}, selection slice {len(selection)} (mean "
          f"{np.mean([len(train[i][1].split()) for i in selection]):.1f} words), dev "
          f"{len(dev)}; features {time.time() - started:.0f} s", flush=True)

    def train_member(seed, train_features, train_labels, stop_at=None):
        """Without stop_at: (best slice accuracy, collapsed weights there, epochs at that
        point). With stop_at (epochs): trains that long; (None, final weights, stop_at)."""
        torch.manual_seed(seed)
        rng = random.Random(seed)
        embedding = torch.nn.EmbeddingBag(args.buckets, args.dim, mode="mean", sparse=True)
        torch.nn.init.uniform_(embedding.weight, -1.0 / args.dim, 1.0 / args.dim)
        output = torch.nn.Linear(args.dim, len(LABELS))
        optimizers = [torch.optim.SparseAdam(list(embedding.parameters()), lr=args.lr),
                      torch.optim.Adam(output.parameters(), lr=args.lr)]
        steps_per_epoch = math.ceil(len(train_features) / args.batch_size)
        every = max(1, math.ceil(steps_per_epoch / args.evaluations_per_epoch))
        stop_steps = None if stop_at is None else max(1, round(stop_at * steps_per_epoch))
        best = (-1.0, None, 0.0)
        for epoch in range(args.epochs if stop_at is None else math.ceil(stop_at)):
            order = list(range(len(train_features)))
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
                if stop_steps is not None:
                    if epoch * steps_per_epoch + step >= stop_steps:
                        with torch.no_grad():
                            collapsed = embedding.weight @ output.weight.T
                        return (None, (collapsed, output.bias.detach().clone()), stop_at)
                    continue
                if step % every == 0 or step == steps_per_epoch:
                    with torch.no_grad():
                        accuracy = (output(embedding(sel_flat, sel_offsets)).argmax(-1)
                                    == sel_labels).float().mean().item()
                    if accuracy > best[0]:
                        with torch.no_grad():
                            collapsed = embedding.weight @ output.weight.T  # [buckets, labels]
                        best = (accuracy, (collapsed.clone(), output.bias.detach().clone()),
                                epoch + step / steps_per_epoch)
        print(f"member seed {seed}: best slice accuracy {best[0]:.4f} at epoch {best[2]:.2f} "
              f"({time.time() - started:.0f} s)", flush=True)
        return best

    members = [train_member(args.seed + k, fit_features, fit_labels)
               for k in range(args.members)]
    table = sum(m[1][0] for m in members) / len(members)
    bias = sum(m[1][1] for m in members) / len(members)
    with torch.no_grad():
        slice_accuracy = ((F.embedding_bag(sel_flat, table, sel_offsets, mode="mean") + bias)
                          .argmax(-1) == sel_labels).float().mean().item()
    print(f"members' slice accuracy {[round(m[0], 4) for m in members]}; averaged "
          f"{slice_accuracy:.4f}", flush=True)
    if args.refit:
        members = [train_member(args.seed + k, all_features, all_labels, stop_at=m[2])
                   for k, m in enumerate(members)]
        print(f"refitted on all {len(train)} rows ({time.time() - started:.0f} s)", flush=True)
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
    print(f"wrote {args.out}: {size} bytes; exported model dev accuracy {correct / len(dev):.4f} ({correct}/{len(dev)}); total "
          f"{time.time() - started:.0f} s")
    if size > args.max_bytes:
        print(f"error: {args.out} is {size} bytes, over --max-bytes {args.max_bytes}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
