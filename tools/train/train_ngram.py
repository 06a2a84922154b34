#!/usr/bin/python3
"""Trains the router's fast tier: a fastText-style hashed n-gram classifier, exported as GGUF.

Default: CLINC150 domains plus out-of-scope (models/router-clinc150-ngram.gguf). Reproduce with
    /usr/bin/python3 tools/train/train_ngram.py

Model: mean of the embeddings of the text's hashed word unigrams, word bigrams and character
n-grams (tools/pyslm/ngram.py; workers/ngram is the C++ twin), then a linear layer and softmax.
Out-of-scope is an explicit class ("oos"); a maximum-softmax-probability threshold, chosen on a
held-out slice of the training data, catches more out-of-scope requests.

Data: DIR/train.jsonl and DIR/val.jsonl, one {"text", "domain"} object a line.
"""

import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

TOOLS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOOLS_DIR)
from pyslm.gguf_writer import GGUFWriter  # noqa: E402
from pyslm.ngram import Featurizer  # noqa: E402

REPO_DIR = os.path.dirname(TOOLS_DIR)
DATA_DIR = os.environ.get("SLM_SHARED_DATA_DIR", os.path.join(REPO_DIR, "..", "shared", "data"))


def read_jsonl(path, class_key, label_key):
    """[(class, label, text)]: the class trained on and the label (group) it reports as."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            if "text" not in record or class_key not in record or label_key not in record:
                raise ValueError(f"{path}:{line_number}: expected keys 'text', '{class_key}' "
                                 f"and '{label_key}'")
            rows.append((record[class_key], record[label_key], record["text"]))
    return rows


class NgramClassifier(torch.nn.Module):
    def __init__(self, buckets, dim, num_labels):
        super().__init__()
        self.embedding = torch.nn.EmbeddingBag(buckets, dim, mode="mean")
        self.output = torch.nn.Linear(dim, num_labels)
        torch.nn.init.uniform_(self.embedding.weight, -1.0 / dim, 1.0 / dim)

    def forward(self, ids, offsets):
        return self.output(self.embedding(ids, offsets))


def batches(encoded, labels, batch_size, shuffle, rng):
    order = list(range(len(encoded)))
    if shuffle:
        rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        ids, offsets = [], []
        for i in chunk:
            offsets.append(len(ids))
            ids.extend(encoded[i])
        yield (torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long),
               torch.tensor([labels[i] for i in chunk], dtype=torch.long))


def predict(model, encoded, class_label, num_labels):
    """Label probabilities: the softmax over classes, summed per label (group)."""
    model.eval()
    out = []
    with torch.no_grad():
        for ids, offsets, _ in batches(encoded, [0] * len(encoded), 512, False, None):
            out.append(F.softmax(model(ids, offsets), dim=-1))
    class_probs = torch.cat(out).numpy()
    probs = np.zeros((len(class_probs), num_labels))
    for c, label in enumerate(class_label):
        probs[:, label] += class_probs[:, c]
    return probs


def evaluate(probs, gold, ood_id, threshold):
    """(in-scope accuracy, out-of-scope recall) when oos = argmax is oos or max prob < threshold."""
    predicted = probs.argmax(axis=1)
    predicted = np.where(probs.max(axis=1) < threshold, ood_id, predicted)
    gold = np.asarray(gold)
    in_scope = gold != ood_id
    accuracy = float((predicted[in_scope] == gold[in_scope]).mean())
    recall = float((predicted[~in_scope] == ood_id).mean()) if (~in_scope).any() else 0.0
    return accuracy, recall


def export(path, args, model, labels, class_label, threshold):
    writer = GGUFWriter()
    writer.add_string("general.architecture", "ngram")
    writer.add_string("general.name", args.name)
    writer.add_string("slmgw.task", "text_classification")
    writer.add_string_array("slmgw.labels", labels)
    # Output class -> label: the model's softmax classes are summed into labels (e.g. intents
    # into their domains).
    writer.add_u32_array("ngram.class_labels", class_label)
    writer.add_u32("ngram.buckets", args.buckets)
    writer.add_u32("ngram.dim", args.dim)
    writer.add_u32("ngram.hash_seed", args.hash_seed)
    writer.add_u32("ngram.word_ngrams", args.word_ngrams)
    writer.add_u32("ngram.char_ngram_min", args.char_min)
    writer.add_u32("ngram.char_ngram_max", args.char_max)
    writer.add_f32("ngram.ood_threshold", threshold)
    writer.add_tensor("token_embd.weight", model.embedding.weight.detach().numpy(), "f16")
    writer.add_tensor("output.weight", model.output.weight.detach().numpy(), "f32")
    writer.add_tensor("output.bias", model.output.bias.detach().numpy(), "f32")
    writer.write(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(DATA_DIR, "clinc150"))
    parser.add_argument("--label-key", default="domain", help="the label the model reports")
    parser.add_argument("--class-key", default="intent",
                        help="the finer class trained on; its probabilities sum into labels")
    parser.add_argument("--ood-label", default="oos")
    parser.add_argument("--out", default=os.path.join(REPO_DIR, "models",
                                                      "router-clinc150-ngram.gguf"))
    parser.add_argument("--name", default="router-clinc150-ngram")
    parser.add_argument("--buckets", type=int, default=32768)
    parser.add_argument("--dim", type=int, default=48)
    parser.add_argument("--hash-seed", type=int, default=20240601)
    parser.add_argument("--word-ngrams", type=int, default=2, choices=[1, 2])
    parser.add_argument("--char-min", type=int, default=3)
    parser.add_argument("--char-max", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--ood-weight", type=float, default=8.0,
                        help="loss weight of the out-of-scope class (rare in training)")
    parser.add_argument("--holdout", type=float, default=0.1,
                        help="share of train kept out to choose the confidence threshold")
    parser.add_argument("--min-accuracy", type=float, default=0.96,
                        help="threshold choice: highest oos recall keeping this accuracy")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--limit", type=int, default=0, help="use only N training rows (tests)")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    train_rows = read_jsonl(os.path.join(args.data, "train.jsonl"), args.class_key,
                            args.label_key)
    val_rows = read_jsonl(os.path.join(args.data, "val.jsonl"), args.class_key, args.label_key)
    rng.shuffle(train_rows)
    if args.limit:
        train_rows = train_rows[:args.limit]
    labels = sorted({label for _, label, _ in train_rows})
    if args.ood_label not in labels:
        raise SystemExit(f"training data has no '{args.ood_label}' rows (labels: {labels})")
    label_id = {label: i for i, label in enumerate(labels)}
    ood_id = label_id[args.ood_label]
    classes = sorted({cls for cls, _, _ in train_rows})
    class_id = {cls: i for i, cls in enumerate(classes)}
    class_label = [0] * len(classes)
    for cls, label, _ in train_rows:
        class_label[class_id[cls]] = label_id[label]
    ood_classes = [c for c, label in enumerate(class_label) if label == ood_id]

    featurizer = Featurizer(args.buckets, args.hash_seed, args.word_ngrams, args.char_min,
                            args.char_max)
    holdout_count = int(len(train_rows) * args.holdout)
    fit_rows, holdout_rows = train_rows[holdout_count:], train_rows[:holdout_count]

    def encode(rows):
        return ([featurizer.features(text) or [0] for _, _, text in rows],
                [class_id.get(cls, ood_classes[0]) for cls, _, _ in rows],
                [label_id.get(label, ood_id) for _, label, _ in rows])

    fit_x, fit_y, _ = encode(fit_rows)
    hold_x, _, hold_y = encode(holdout_rows)
    val_x, _, val_y = encode(val_rows)

    model = NgramClassifier(args.buckets, args.dim, len(classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    weights = torch.ones(len(classes))
    for c in ood_classes:
        weights[c] = args.ood_weight
    started = time.time()
    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for ids, offsets, gold in batches(fit_x, fit_y, args.batch_size, True, rng):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(ids, offsets), gold, weight=weights)
            loss.backward()
            optimizer.step()
            total += float(loss) * len(gold)
        print(f"epoch {epoch + 1}: loss {total / len(fit_x):.4f} ({time.time() - started:.0f}s)",
              flush=True)

    # Threshold: the highest oos recall on the held-out slice that keeps in-scope accuracy.
    threshold = 0.0
    if hold_x:
        hold_probs = predict(model, hold_x, class_label, len(labels))
        best = (-1.0, 0.0)
        for candidate in np.arange(0.0, 0.96, 0.01):
            accuracy, recall = evaluate(hold_probs, hold_y, ood_id, candidate)
            if accuracy >= args.min_accuracy and recall > best[0]:
                best = (recall, float(candidate))
        threshold = round(best[1], 2)
    val_probs = predict(model, val_x, class_label, len(labels))
    argmax_accuracy, argmax_recall = evaluate(val_probs, val_y, ood_id, 0.0)
    accuracy, recall = evaluate(val_probs, val_y, ood_id, threshold)
    for candidate in (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7):
        curve_accuracy, curve_recall = evaluate(val_probs, val_y, ood_id, candidate)
        print(f"validation curve: threshold {candidate:.2f}: in-scope accuracy "
              f"{curve_accuracy:.4f}, oos recall {curve_recall:.4f}")
    print(f"validation (argmax only): in-scope accuracy {argmax_accuracy:.4f}, "
          f"oos recall {argmax_recall:.4f}")
    print(f"validation (threshold {threshold:.2f}): in-scope accuracy {accuracy:.4f}, "
          f"oos recall {recall:.4f}")
    export(args.out, args, model, labels, class_label, threshold)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes), labels {labels}")
    return {"accuracy": accuracy, "recall": recall, "threshold": threshold}


if __name__ == "__main__":
    main()
