#!/usr/bin/python3
"""Trains a small BERT-style text classifier from scratch on CPU and exports it as our GGUF.

Default: SST-2 sentiment, the previous BERT sentiment model, written to
/tmp/sentiment-sst2-bert.gguf (the shipped models/sentiment-sst2.gguf is the n-gram classifier
of train_sentiment_ngram.py, which this must not overwrite). Reproduce with
    /usr/bin/python3 tools/train/train_sentiment.py
Other classifiers reuse it with --data, --labels, --out, --name and the size flags.

Data (--format):
  tsv (default): DIR/train.tsv and DIR/dev.tsv, a header line then `label<TAB>text` (label: a
      class id or a class name).
  banking77: DIR/train.csv (`text,category`) and DIR/categories.json (label order); there is no
      dev file, so a stratified --val-fraction of train.csv (per category, seeded) is held out.
  clinc150-domain: DIR/train.jsonl and DIR/val.jsonl ({"text","intent","domain"}); labels are the
      sorted domains plus `oos` (as models/router-clinc150-ngram.gguf).
  clinc150-intent: the same files labelled with the 150 intents plus `oos` (the router maps
      each intent to its domain's route: classification.encoder.labels). Vocabulary: the WordPiece vocabulary of a llama.cpp GGUF (bge/BERT uncased),
pruned to the specials, every single-character piece (word-initial and continuation) and the
pieces the training text uses, so that the embedding table stays small.
"""

import argparse
import csv
import json
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
from pyslm import bert  # noqa: E402
from pyslm.gguf_reader import read_gguf  # noqa: E402
from pyslm.wordpiece import WORD_START, WordPieceTokenizer  # noqa: E402

REPO_DIR = os.path.dirname(TOOLS_DIR)
DATA_DIR = os.environ.get("SLM_SHARED_DATA_DIR", os.path.join(REPO_DIR, "..", "shared", "data"))
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def read_tsv(path):
    """[(label, text)] from a TSV with a header line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        next(f)
        for line_number, line in enumerate(f, start=2):
            line = line.rstrip("\n")
            if not line:
                continue
            if "\t" not in line:
                raise ValueError(f"{path}:{line_number}: expected label<TAB>text")
            label, text = line.split("\t", 1)
            rows.append((label.strip(), text))
    return rows


def stratified_split(rows, fraction, seed):
    """(train, val): per label, a seeded shuffle then round(fraction * n) rows (>= 1) to val."""
    by_label = {}
    for row in rows:
        by_label.setdefault(row[0], []).append(row)
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(by_label):
        group = list(by_label[label])
        rng.shuffle(group)
        held = max(1, round(fraction * len(group)))
        val.extend(group[:held])
        train.extend(group[held:])
    return train, val


def read_banking77(folder, fraction, seed):
    """(labels, train_rows, val_rows) from Banking77's train.csv and categories.json."""
    with open(os.path.join(folder, "categories.json"), encoding="utf-8") as f:
        labels = json.load(f)
    rows = []
    path = os.path.join(folder, "train.csv")
    with open(path, encoding="utf-8", newline="") as f:
        for line_number, record in enumerate(csv.DictReader(f), start=2):
            if record.get("text") is None or record.get("category") not in labels:
                raise ValueError(f"{path}:{line_number}: expected text,category with a category "
                                 f"from categories.json")
            rows.append((record["category"], record["text"]))
    train, val = stratified_split(rows, fraction, seed)
    return labels, train, val


def read_clinc150(folder, key="domain"):
    """(labels, train_rows, val_rows): CLINC150 jsonl rows labelled with their `key` (domain or
    intent); labels sorted, `oos` included."""
    def read(name):
        path = os.path.join(folder, name)
        rows = []
        with open(path, encoding="utf-8") as f:
            for line_number, line in enumerate(f, start=1):
                if line.strip():
                    record = json.loads(line)
                    if "text" not in record or key not in record:
                        raise ValueError(f"{path}:{line_number}: expected text and {key}")
                    rows.append((record[key], record["text"]))
        return rows
    train, val = read("train.jsonl"), read("val.jsonl")
    labels = sorted({label for label, _ in train} | {"oos"})
    return labels, train, val


def load_data(args):
    """(labels, train_rows, dev_rows) for args.format."""
    if args.format == "banking77":
        return read_banking77(args.data, args.val_fraction, args.seed)
    if args.format == "clinc150-domain":
        return read_clinc150(args.data, "domain")
    if args.format == "clinc150-intent":
        return read_clinc150(args.data, "intent")
    return (args.labels.split(","), read_tsv(os.path.join(args.data, "train.tsv")),
            read_tsv(os.path.join(args.data, "dev.tsv")))


def label_ids(rows, labels, path):
    by_name = {name: i for i, name in enumerate(labels)}
    ids = []
    for label, _ in rows:
        if label in by_name:
            ids.append(by_name[label])
        elif label.isdigit() and int(label) < len(labels):
            ids.append(int(label))
        else:
            raise ValueError(f"{path}: label {label!r} is neither a class id nor one of {labels}")
    return ids


def pruned_vocabulary(full_tokens, texts):
    """Specials + single-character pieces + pieces used by texts, in the original order."""
    full = WordPieceTokenizer(full_tokens)
    keep = {full.ids[token] for token in SPECIALS}
    for token_id, token in enumerate(full_tokens):
        if len(token[len(WORD_START):] if token.startswith(WORD_START) else token) == 1:
            keep.add(token_id)
    for text in texts:
        keep.update(full.tokenize(text))
    return [full_tokens[i] for i in sorted(keep)]


def batches(examples, batch_size, shuffle, rng):
    """Lists of examples of similar length (less padding); batch order shuffled when asked."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i][0]), i))
    if shuffle:
        # Shuffle within windows of similar length, then shuffle the batches.
        window = batch_size * 50
        for start in range(0, len(order), window):
            chunk = order[start:start + window]
            rng.shuffle(chunk)
            order[start:start + window] = chunk
        order.sort(key=lambda i: len(examples[i][0]) // 4)  # stable: keeps the shuffle
    groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        rng.shuffle(groups)
    for group in groups:
        yield [examples[i] for i in group]


def to_tensors(batch, pad_id):
    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (sequence, _) in enumerate(batch):
        ids[row, :len(sequence)] = torch.tensor(sequence)
        mask[row, :len(sequence)] = 1
    labels = torch.tensor([label for _, label in batch])
    return ids, mask, labels


@torch.no_grad()
def predict(model, examples, pad_id, batch_size=256):
    model.eval()
    predictions = [None] * len(examples)
    indexed = [(ids, i) for i, (ids, _) in enumerate(examples)]
    for batch in batches(indexed, batch_size, False, None):
        ids, mask, positions = to_tensors(batch, pad_id)
        for position, label in zip(positions.tolist(), model(ids, mask).argmax(-1).tolist()):
            predictions[position] = label
    return predictions


def accuracy(predictions, examples):
    return sum(p == label for p, (_, label) in zip(predictions, examples)) / len(examples)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(DATA_DIR, "sst2"),
                        help="folder with train.tsv and dev.tsv")
    parser.add_argument("--format", choices=["tsv", "banking77", "clinc150-domain",
                                                    "clinc150-intent"],
                        default="tsv", help="layout of --data (see above)")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="banking77: stratified share of train.csv held out for validation")
    parser.add_argument("--class-weight", action="append", default=[], metavar="LABEL=W",
                        help="loss weight of a class (default 1), e.g. oos=4")
    parser.add_argument("--vocab", default=os.path.join(DATA_DIR, "tokenizers",
                                                        "ggml-vocab-bert-bge.gguf"))
    parser.add_argument("--labels", default="negative,positive",
                        help="comma-separated class names, index = class id")
    parser.add_argument("--out", default="/tmp/sentiment-sst2-bert.gguf")
    parser.add_argument("--name", default="sentiment-sst2")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=96)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=384)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--pooling", choices=["mean", "cls"], default="mean")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--ema", type=float, default=0.999,
                        help="exponential moving average of the weights, used for eval and "
                             "export (0 disables)")
    parser.add_argument("--token-dropout", type=float, default=0.0,
                        help="probability of replacing a training token by [UNK]")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (cores are shared)")
    parser.add_argument("--max-bytes", type=int, default=4 * 1024 * 1024,
                        help="fail if the exported GGUF is larger")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    started = time.time()

    labels, train_rows, dev_rows = load_data(args)
    weights = torch.ones(len(labels))
    for item in args.class_weight:
        name, _, value = item.partition("=")
        if name not in labels:
            raise ValueError(f"--class-weight {item!r}: {name!r} is not one of {labels}")
        weights[labels.index(name)] = float(value)
    full_tokens = read_gguf(args.vocab, load_tensors=False).metadata["tokenizer.ggml.tokens"]
    tokens = pruned_vocabulary(full_tokens, [text for _, text in train_rows])
    tokenizer = WordPieceTokenizer(tokens)
    pad_id = tokens.index("[PAD]")

    def encode(rows, path):
        ids = label_ids(rows, labels, path)
        return [(tokenizer.encode(text, args.context), label)
                for (_, text), label in zip(rows, ids)]

    train = encode(train_rows, "train.tsv")
    dev = encode(dev_rows, "dev.tsv")
    print(f"vocabulary {len(tokens)} of {len(full_tokens)} pieces; train {len(train)}, "
          f"dev {len(dev)} examples ({time.time() - started:.0f} s)", flush=True)

    config = bert.BertConfig(vocab_size=len(tokens), num_labels=len(labels),
                             hidden_size=args.hidden, num_layers=args.layers,
                             num_heads=args.heads, ffn_size=args.ffn,
                             context_length=args.context, type_vocab_size=2,
                             task=bert.TEXT_CLASSIFICATION, pooling=args.pooling,
                             use_pooler=False, dropout=args.dropout)
    model = bert.BertEncoder(config)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1 and "embd" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() > 1 and "embd" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    warmup = max(1, total_steps // 20)

    def learning_rate_factor(step):  # linear warm-up, then cosine decay to 0
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_factor)
    averaged = bert.BertEncoder(config)  # EMA of the weights: smoother than the last step
    averaged.load_state_dict(model.state_dict())
    unknown_id = tokens.index("[UNK]")
    rng = random.Random(args.seed)
    for epoch in range(args.epochs):
        model.train()
        loss_sum, seen = 0.0, 0
        for batch in batches(train, args.batch_size, True, rng):
            ids, mask, targets = to_tensors(batch, pad_id)
            if args.token_dropout > 0:
                dropped = (torch.rand(ids.shape) < args.token_dropout) & (mask == 1)
                dropped[:, 0] = False  # keep [CLS]
                ids = ids.masked_fill(dropped, unknown_id)
            loss = F.cross_entropy(model(ids, mask), targets, weight=weights)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                ema_decay = args.ema if args.ema > 0 else 0.0
                for kept, current in zip(averaged.parameters(), model.parameters()):
                    kept.mul_(ema_decay).add_(current, alpha=1 - ema_decay)
            loss_sum += loss.item() * len(batch)
            seen += len(batch)
        dev_accuracy = accuracy(predict(averaged, dev, pad_id), dev)
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {loss_sum / seen:.4f}, "
              f"dev accuracy {dev_accuracy:.4f} ({time.time() - started:.0f} s)", flush=True)

    model = averaged
    model.eval()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    bert.to_gguf(model, tokens, labels, args.out, name=args.name, embeddings_f16=True)
    size = os.path.getsize(args.out)

    # Evaluate what the gateway will run: the weights as stored (F16 embeddings).
    stored = read_gguf(args.out)
    exported = bert.BertEncoder(config)
    exported.load_state_dict({bert.gguf_to_module_name(name): torch.from_numpy(array.astype(
        np.float32)) for name, array in stored.tensors.items()})
    dev_predictions = predict(exported, dev, pad_id)
    exported_accuracy = accuracy(dev_predictions, dev)
    print(f"wrote {args.out}: {size} bytes, {sum(p.numel() for p in model.parameters())} "
          f"parameters; dev accuracy of the exported model {exported_accuracy:.4f} "
          f"({len(dev)} examples); total time {time.time() - started:.0f} s")
    print("examples (dev):")
    for (label, text), prediction in list(zip(dev_rows, dev_predictions))[:5]:
        logits = exported.forward_ids(tokenizer.encode(text, args.context))
        print(f"  gold {labels[label_ids([(label, text)], labels, 'dev.tsv')[0]]:>8}  "
              f"predicted {labels[prediction]:>8}  logits {[round(v, 3) for v in logits.tolist()]}"
              f"  {text[:70]}")
    if size > args.max_bytes:
        print(f"error: {args.out} is {size} bytes, over --max-bytes {args.max_bytes}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
