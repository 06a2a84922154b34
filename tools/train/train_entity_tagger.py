#!/usr/bin/python3
"""Trains the hashed-feature entity tagger (tools/pyslm/ngram_tagger.py; served by the encoder
worker through workers/ngram/ngram_tagger.h) on CoNLL BIO data and exports it as GGUF.

Default: WNUT-17 emerging entities -> models/entities-wnut17.gguf. Reproduce with
    /usr/bin/python3 tools/train/train_entity_tagger.py

Each CoNLL token is one tagger token (the gateway splits text on ASCII whitespace, so a sentence
sent as its tokens joined by spaces gets exactly these tokens back). Features: the token, its
lowercase form, shape, prefixes/suffixes, capitalisation, neighbours +-2 and their shapes,
the sentence's share of capitalised tokens (see ngram_tagger.py); model: summed hashed feature
embeddings -> (ReLU) -> per-token BIO label, cross entropy with non-O labels weighted.

Every choice is made on a held-out slice of the TRAINING data (every --selection-every'th
sentence of train.conll, counting from the last of each group), never on dev: each member is
trained on the rest and keeps the position (4 evaluations per epoch) with the best slice entity
F1 (seqeval-style exact spans, as train_wnut17.entity_f1); the linear members are averaged into
one tagger of the same size; the O logit's shift is the one with the best slice F1. With
--refit (default) each member is then trained again on all of train.conll for the number of
epochs it was selected at, the refitted members are averaged and get the selected shift. Dev
is evaluated once, on the exported file, at the end.
"""

import argparse
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

TRAIN_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TRAIN_DIR))
sys.path.insert(0, TRAIN_DIR)
from pyslm import ngram_tagger  # noqa: E402
from pyslm.gguf_reader import read_gguf  # noqa: E402
from train_wnut17 import DATA_DIR, REPO_DIR, entity_f1, read_conll  # noqa: E402


def encode(featurizer, sentences, label_index, max_features):
    """(rows [tokens, max_features] padded with `buckets`, labels [tokens], sentence lengths)."""
    rows, labels, lengths = [], [], []
    for sentence in sentences:
        words = [token.encode("utf-8") for token, _ in sentence]
        for token_rows, (_, tag) in zip(featurizer.rows(words), sentence):
            rows.append(token_rows + [featurizer.buckets] * (max_features - len(token_rows)))
            labels.append(label_index.get(tag, 0))
        lengths.append(len(sentence))
    return torch.tensor(rows), torch.tensor(labels), lengths


def tags(probabilities, lengths, labels):
    best = probabilities.argmax(-1).tolist()
    out, at = [], 0
    for n in lengths:
        out.append([labels[i] for i in best[at:at + n]])
        at += n
    return out


class Tagger(torch.nn.Module):
    def __init__(self, buckets, dim, num_labels, activation, dropout):
        super().__init__()
        self.embeddings = torch.nn.Embedding(buckets + 1, dim, padding_idx=buckets, sparse=True)
        torch.nn.init.normal_(self.embeddings.weight, 0.0, 0.05)
        with torch.no_grad():
            self.embeddings.weight[buckets].zero_()
        self.hidden_bias = torch.nn.Parameter(torch.zeros(dim))
        self.output = torch.nn.Linear(dim, num_labels)
        self.activation = activation
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, rows):
        h = self.embeddings(rows).sum(1) + self.hidden_bias
        if self.activation == "relu":
            h = torch.relu(h)
        return self.output(self.dropout(h))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(DATA_DIR, "wnut17"),
                        help="folder with train.conll and dev.conll")
    parser.add_argument("--out", default=os.path.join(REPO_DIR, "models", "entities-wnut17.gguf"))
    parser.add_argument("--name", default="entities-wnut17")
    parser.add_argument("--buckets", type=int, default=1 << 17)
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--activation", default="none", choices=["relu", "none"])
    parser.add_argument("--hash-seed", type=int, default=20260101)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--feature-dropout", type=float, default=0.3,
                        help="probability of leaving a feature out of a training token")
    parser.add_argument("--entity-weight", type=float, default=8.0,
                        help="loss weight of every non-O label (O has 1)")
    parser.add_argument("--evaluations-per-epoch", type=int, default=4)
    parser.add_argument("--ema", type=float, default=0.0,
                        help="evaluate and export an exponential moving average of the weights "
                             "with this decay per step (0: the weights themselves)")
    parser.add_argument("--tune-o-bias", action=argparse.BooleanOptionalAction, default=True,
                        help="after training, add to the O label's bias the shift in -3..1 "
                             "that maximises the selection slice's entity F1")
    parser.add_argument("--selection-every", type=int, default=10,
                        help="hold out every N-th training sentence (N-1, 2N-1, ...) for "
                             "choosing checkpoints and the O shift")
    parser.add_argument("--refit", action=argparse.BooleanOptionalAction, default=True,
                        help="retrain the members on all of train.conll with the selected "
                             "number of epochs before exporting")
    parser.add_argument("--members", type=int, default=8,
                        help="train this many linear taggers (seeds seed, seed+1, ...) and export "
                             "their average as one (needs --activation none)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--limit", type=int, default=0, help="use only N training sentences")
    parser.add_argument("--max-bytes", type=int, default=6 * 1024 * 1024)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    started = time.time()
    all_sentences = read_conll(os.path.join(args.data, "train.conll"))
    if args.limit:
        all_sentences = all_sentences[:args.limit]
    every = args.selection_every
    if every < 2:
        print("error: --selection-every must be >= 2", file=sys.stderr)
        return 2
    train_sentences = [s for i, s in enumerate(all_sentences) if i % every != every - 1]
    selection_sentences = [s for i, s in enumerate(all_sentences) if i % every == every - 1]
    dev_sentences = read_conll(os.path.join(args.data, "dev.conll"))
    kinds = sorted({tag[2:] for sentence in all_sentences for _, tag in sentence
                    if tag != "O"})
    labels = ["O"] + [f"{prefix}-{kind}" for kind in kinds for prefix in ("B", "I")]
    label_index = {label: i for i, label in enumerate(labels)}
    featurizer = ngram_tagger.Featurizer(args.buckets, args.hash_seed)
    max_features = 32
    fit_rows, fit_labels, _ = encode(featurizer, train_sentences, label_index, max_features)
    all_rows, all_labels, _ = encode(featurizer, all_sentences, label_index, max_features)
    sel_rows, _, sel_lengths = encode(featurizer, selection_sentences, label_index, max_features)
    sel_gold = [[tag for _, tag in s] for s in selection_sentences]
    dev_gold = [[tag for _, tag in s] for s in dev_sentences]
    print(f"labels {labels}; train {len(all_sentences)} sentences: fit {len(train_sentences)} / "
          f"{len(fit_labels)} tokens, selection slice {len(selection_sentences)} (every "
          f"{every}th); dev {len(dev_sentences)}; features {time.time() - started:.0f} s",
          flush=True)

    def train_member(seed, train_rows, train_labels, stop_at=None):
        """Trains one tagger. Without stop_at: returns (best selection-slice F1, its weights,
        epochs trained at that point). With stop_at (epochs): trains that long, no evaluation,
        returns (None, final weights, stop_at)."""
        torch.manual_seed(seed)
        model = Tagger(args.buckets, args.dim, len(labels), args.activation, args.dropout)
        optimizers = [torch.optim.SparseAdam([model.embeddings.weight], lr=args.lr),
                      torch.optim.Adam([p for n, p in model.named_parameters()
                                        if n != "embeddings.weight"], lr=args.lr)]
        weights = torch.full((len(labels),), args.entity_weight)
        weights[0] = 1.0
        generator = torch.Generator().manual_seed(seed)
        averaged = None
        if args.ema > 0:
            averaged = Tagger(args.buckets, args.dim, len(labels), args.activation, args.dropout)
            averaged.load_state_dict(model.state_dict())
        best = (-1.0, None, 0)
        steps_per_epoch = math.ceil(len(train_labels) / args.batch_size)
        evaluate_every = max(1, math.ceil(steps_per_epoch / args.evaluations_per_epoch))
        stop_steps = None if stop_at is None else max(1, round(stop_at * steps_per_epoch))
        total_steps = 0
        for epoch in range(args.epochs if stop_at is None else math.ceil(stop_at)):
            model.train()
            order = torch.randperm(len(train_labels), generator=generator)
            loss_sum, steps = 0.0, 0
            for start in range(0, len(order), args.batch_size):
                batch = order[start:start + args.batch_size]
                rows = train_rows[batch]
                if args.feature_dropout > 0:
                    # Drop whole features (not the bias) so that no single one, e.g. the word
                    # itself, decides: unseen entities must be found from shape and context.
                    dropped = torch.rand(rows.shape, generator=generator) < args.feature_dropout
                    dropped[:, 0] = False
                    rows = rows.masked_fill(dropped, args.buckets)
                loss = F.cross_entropy(model(rows), train_labels[batch], weight=weights)
                for optimizer in optimizers:
                    optimizer.zero_grad()
                loss.backward()
                for optimizer in optimizers:
                    optimizer.step()
                if averaged is not None:
                    with torch.no_grad():
                        for kept, current in zip(averaged.parameters(), model.parameters()):
                            kept.mul_(args.ema).add_(current, alpha=1 - args.ema)
                loss_sum += loss.item()
                steps += 1
                total_steps += 1
                if stop_steps is not None:
                    if total_steps >= stop_steps:
                        evaluated = averaged if averaged is not None else model
                        return (None, {k: v.clone() for k, v in evaluated.state_dict().items()},
                                stop_at)
                    continue
                if steps % evaluate_every == 0 or start + args.batch_size >= len(order):
                    # The model fits the training tokens within about an epoch: evaluate (and keep
                    # the best) several times per epoch.
                    evaluated = averaged if averaged is not None else model
                    evaluated.eval()
                    with torch.no_grad():
                        predicted = tags(evaluated(sel_rows), sel_lengths, labels)
                    model.train()
                    precision, recall, f1 = entity_f1(sel_gold, predicted)
                    at = epoch + (start + len(batch)) / len(order)
                    print(f"epoch {at:.2f}/{args.epochs}: loss {loss_sum / max(1, steps):.4f}, "
                          f"slice "
                          f"entity P {precision:.3f} R {recall:.3f} F1 {f1:.4f} "
                          f"({time.time() - started:.0f} s)", flush=True)
                    if f1 > best[0]:
                        best = (f1, {k: v.clone() for k, v in evaluated.state_dict().items()},
                                at)
        return best

    if args.members > 1 and args.activation != "none":
        print("error: --members needs --activation none", file=sys.stderr)
        return 2
    results = [train_member(args.seed + member, fit_rows, fit_labels)
               for member in range(args.members)]
    print(f"members' selected epochs {[round(r[2], 2) for r in results]}, slice F1 "
          f"{[round(r[0], 4) for r in results]}", flush=True)

    def combine(results):
        """One tagger: the single member, or the members' average (see below)."""
        if args.members == 1:
            model = Tagger(args.buckets, args.dim, len(labels), args.activation, args.dropout)
            model.load_state_dict(results[0][1])
            return model
        # A linear tagger's logits are linear in its summed embeddings, so the average of the
        # members' logits is itself one tagger with dim = labels: embeddings E_k W_k^T
        # averaged, identity output, biases W_k h_k + b_k averaged. Same size as one member.
        members = [result[1] for result in results]
        model = Tagger(args.buckets, len(labels), len(labels), "none", 0.0)
        with torch.no_grad():
            model.embeddings.weight.copy_(sum(m["embeddings.weight"] @ m["output.weight"].T
                                              for m in members) / len(members))
            model.hidden_bias.zero_()
            model.output.weight.copy_(torch.eye(len(labels)))
            model.output.bias.copy_(sum(m["output.weight"] @ m["hidden_bias"] + m["output.bias"]
                                        for m in members) / len(members))
        return model

    model = combine(results)
    model.eval()
    with torch.no_grad():
        slice_logits = model(sel_rows)
    slice_f1 = entity_f1(sel_gold, tags(slice_logits, sel_lengths, labels))[2]
    print(f"combined {len(results)} member(s): slice entity F1 {slice_f1:.4f}", flush=True)
    shift = 0.0
    if args.tune_o_bias:
        # Shift the O logit to trade precision for recall, choosing the shift on the slice.
        scores = []
        for candidate in np.arange(-3.0, 1.01, 0.25):
            shifted = slice_logits.clone()
            shifted[:, 0] += float(candidate)
            scores.append((entity_f1(sel_gold, tags(shifted, sel_lengths, labels))[2],
                           -abs(float(candidate)), float(candidate)))
        f1, _, shift = max(scores)
        print(f"O-logit shift {shift:+.2f}: slice entity F1 {f1:.4f} (before {slice_f1:.4f})",
              flush=True)
    if args.refit:
        results = [train_member(args.seed + member, all_rows, all_labels, stop_at=result[2])
                   for member, result in enumerate(results)]
        model = combine(results)
        model.eval()
        print(f"refitted {len(results)} member(s) on all {len(all_sentences)} training "
              f"sentences ({time.time() - started:.0f} s)", flush=True)
    if shift:
        with torch.no_grad():
            model.output.bias[0] += shift
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    ngram_tagger.write_gguf(args.out, args.name, labels, args.buckets, args.hash_seed,
                            model.activation, state["embeddings.weight"][:args.buckets],
                            state["hidden_bias"], state["output.weight"], state["output.bias"])
    size = os.path.getsize(args.out)
    # Check the exported file with the reference forward pass (f16 embeddings).
    stored = read_gguf(args.out)
    predicted = []
    for sentence in dev_sentences:
        words = [token.encode("utf-8") for token, _ in sentence]
        probs = ngram_tagger.probabilities(featurizer, stored.tensors, model.activation, words)
        predicted.append([labels[i] for i in probs.argmax(-1)])
    precision, recall, f1 = entity_f1(dev_gold, predicted)
    print(f"wrote {args.out}: {size} bytes; exported model dev entity "
          f"P {precision:.4f} R {recall:.4f} F1 {f1:.4f}; total {time.time() - started:.0f} s")
    if size > args.max_bytes:
        print(f"error: {args.out} is {size} bytes, over --max-bytes {args.max_bytes}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
