#!/usr/bin/python3
"""Trains a small BERT-style token classifier (BIO entity tags) from scratch on CPU and exports
it as our GGUF (slmgw.task = token_classification).

Default: WNUT-17 emerging entities (models/entities-wnut17.gguf). Reproduce with
    /usr/bin/python3 tools/train/train_wnut17.py

Data: DIR/train.conll and DIR/dev.conll, CoNLL (`token<TAB>tag` a line, a blank line between
sentences); labels are "O" then B-/I- of every entity type in the training data (sorted).

Alignment with the gateway's BIO decoding (workers/encoder/bio.h: a word's label is the label
of its first WordPiece; words are what BERT's basic tokenizer makes of the text):
  * a CoNLL token becomes one or more basic words ("@user_x" -> "@", "user", "_", "x");
  * the first piece of its first word is trained on the token's tag, the first piece of each
    further word on I-<type> (or O), continuation pieces ("##ing") are not trained (-100);
so a sentence sent as its tokens joined by spaces decodes back to whole-token spans.
Metric: seqeval-style exact-span entity F1 over CoNLL tokens (an I- without a preceding B- of
its type starts an entity, as seqeval's default mode).
"""

import argparse
import collections
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
from pyslm import bert  # noqa: E402
from pyslm.gguf_reader import read_gguf  # noqa: E402
from pyslm.wordpiece import WORD_START, WordPieceTokenizer, basic_tokenize  # noqa: E402
import train_sentiment  # noqa: E402

REPO_DIR = os.path.dirname(os.path.dirname(TRAIN_DIR))
DATA_DIR = train_sentiment.DATA_DIR
IGNORE = -100


def read_conll(path):
    """[[(token, tag), ...], ...]; raises ValueError naming the line on a malformed row."""
    sentences, current = [], []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                if current:
                    sentences.append(current)
                    current = []
                continue
            parts = line.split("\t")
            if len(parts) != 2 or not parts[0] or not parts[1]:
                raise ValueError(f"{path}:{line_number}: expected token<TAB>tag")
            current.append((parts[0], parts[1].strip()))
    if current:
        sentences.append(current)
    return sentences


def entity_spans(tags):
    """seqeval-style chunks {(type, first, last)} over a tag sequence (IOB2, lenient I-)."""
    spans, start, kind = set(), None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, label = tag.partition("-")
        if tag == "O" or prefix == "B" or (prefix == "I" and label != kind):
            if kind is not None:
                spans.add((kind, start, i - 1))
            start, kind = (i, label) if tag != "O" else (None, None)
    return spans


def entity_f1(gold_sequences, predicted_sequences):
    """(precision, recall, f1) of exact entity spans, micro-averaged over all sentences."""
    true_positive = gold_total = predicted_total = 0
    for gold, predicted in zip(gold_sequences, predicted_sequences):
        gold_spans, predicted_spans = entity_spans(gold), entity_spans(predicted)
        true_positive += len(gold_spans & predicted_spans)
        gold_total += len(gold_spans)
        predicted_total += len(predicted_spans)
    precision = true_positive / predicted_total if predicted_total else 0.0
    recall = true_positive / gold_total if gold_total else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def cased_vocabulary(texts, min_word_count=2, min_piece_count=3, max_piece_chars=4):
    """A cased WordPiece vocabulary (phantom-space convention) learned from texts: the specials,
    every character seen (word-initial and continuation), every word seen min_word_count times,
    and every word prefix / inner substring of 2..max_piece_chars characters seen
    min_piece_count times, so an unseen word splits into a few pieces whose first keeps its
    capitalisation (the main cue for names in tweets). Sorted, hence deterministic."""
    words = collections.Counter(
        word for text in texts for word in basic_tokenize(text, lowercase=False))
    initial, continuation = collections.Counter(), collections.Counter()
    for word, count in words.items():
        for n in range(2, max_piece_chars + 1):
            if len(word) > n:
                initial[word[:n]] += count
            for start in range(1, len(word) - n + 1):
                continuation[word[start:start + n]] += count
    chars = {char for word in words for char in word}
    pieces = {WORD_START + c for c in chars} | set(chars)
    pieces |= {WORD_START + w for w, c in words.items() if c >= min_word_count}
    pieces |= {WORD_START + p for p, c in initial.items() if c >= min_piece_count}
    pieces |= {p for p, c in continuation.items() if c >= min_piece_count}
    return list(train_sentiment.SPECIALS) + sorted(pieces - set(train_sentiment.SPECIALS))


def encode_sentence(tokenizer, sentence, label_index, context):
    """(ids, targets, first_piece_positions): targets per piece; positions index CoNLL tokens'
    first pieces (None when truncated away)."""
    ids, targets, firsts = [tokenizer.cls_id], [IGNORE], []
    for token, tag in sentence:
        prefix, _, kind = tag.partition("-")
        inside = label_index.get(f"I-{kind}", label_index["O"]) if tag != "O" else label_index["O"]
        words = basic_tokenize(token, tokenizer.lowercase) or ["[UNK]"]
        first = None
        for word_number, word in enumerate(words):
            pieces = (tokenizer.word_pieces(word) if word != "[UNK]"
                      else [tokenizer.unknown_id])
            for piece_number, piece in enumerate(pieces):
                if len(ids) >= context - 1:
                    break
                if piece_number == 0:
                    if word_number == 0:
                        first = len(ids)
                    targets.append(label_index.get(tag, label_index["O"]) if word_number == 0
                                   else inside)
                else:
                    targets.append(IGNORE)
                ids.append(piece)
        firsts.append(first)
    ids.append(tokenizer.separator_id)
    targets.append(IGNORE)
    return ids, targets, firsts


def to_tensors(batch, pad_id):
    width = max(len(item[0]) for item in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    targets = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for row, item in enumerate(batch):
        n = len(item[0])
        ids[row, :n] = torch.tensor(item[0])
        mask[row, :n] = 1
        targets[row, :n] = torch.tensor(item[1])
    return ids, mask, targets


@torch.no_grad()
def predict_tags(model, encoded, labels, pad_id, batch_size=128):
    """Per sentence, the predicted tag of each CoNLL token (O where truncated)."""
    model.eval()
    result = []
    for start in range(0, len(encoded), batch_size):
        batch = encoded[start:start + batch_size]
        ids, mask, _ = to_tensors(batch, pad_id)
        best = model(ids, mask).argmax(-1).tolist()
        for row, item in enumerate(batch):
            result.append([labels[best[row][p]] if p is not None else "O" for p in item[2]])
    return result


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(DATA_DIR, "wnut17"),
                        help="folder with train.conll and dev.conll")
    parser.add_argument("--vocab", default=os.path.join(DATA_DIR, "tokenizers",
                                                        "ggml-vocab-bert-bge.gguf"),
                        help="a BERT-uncased GGUF vocabulary to prune to the training text, or "
                             "'cased': learn a cased vocabulary from it (cased_vocabulary; the "
                             "GGUF then says slmgw.tokenizer.lowercase = false)")
    parser.add_argument("--out", default=os.path.join(REPO_DIR, "models", "entities-wnut17.gguf"))
    parser.add_argument("--name", default="entities-wnut17")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=512)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--entity-weight", type=float, default=3.0,
                        help="loss weight of every non-O label (O has 1)")
    parser.add_argument("--token-dropout", type=float, default=0.0,
                        help="probability of replacing a training piece by [UNK] (makes the "
                             "model read the context of unseen entities)")
    parser.add_argument("--ema", type=float, default=0.998)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (cores are shared)")
    parser.add_argument("--max-bytes", type=int, default=6 * 1024 * 1024)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    started = time.time()

    train_sentences = read_conll(os.path.join(args.data, "train.conll"))
    dev_sentences = read_conll(os.path.join(args.data, "dev.conll"))
    kinds = sorted({tag[2:] for sentence in train_sentences for _, tag in sentence
                    if tag != "O"})
    labels = ["O"] + [f"{prefix}-{kind}" for kind in kinds for prefix in ("B", "I")]
    label_index = {label: i for i, label in enumerate(labels)}
    train_texts = [" ".join(token for token, _ in s) for s in train_sentences]
    lowercase = args.vocab != "cased"
    if lowercase:
        full_tokens = read_gguf(args.vocab, load_tensors=False).metadata["tokenizer.ggml.tokens"]
        tokens = train_sentiment.pruned_vocabulary(full_tokens, train_texts)
    else:
        tokens = cased_vocabulary(train_texts)
    tokenizer = WordPieceTokenizer(tokens, lowercase=lowercase)
    pad_id = tokens.index("[PAD]")
    train = [encode_sentence(tokenizer, s, label_index, args.context) for s in train_sentences]
    dev = [encode_sentence(tokenizer, s, label_index, args.context) for s in dev_sentences]
    dev_gold = [[tag for _, tag in s] for s in dev_sentences]
    print(f"labels {labels}; vocabulary {len(tokens)} pieces; train {len(train)}, dev "
          f"{len(dev)} sentences", flush=True)

    config = bert.BertConfig(vocab_size=len(tokens), num_labels=len(labels),
                             hidden_size=args.hidden, num_layers=args.layers,
                             num_heads=args.heads, ffn_size=args.ffn,
                             context_length=args.context, type_vocab_size=2,
                             task=bert.TOKEN_CLASSIFICATION, dropout=args.dropout)
    model = bert.BertEncoder(config)
    averaged = bert.BertEncoder(config)
    averaged.load_state_dict(model.state_dict())
    decay = [p for n, p in model.named_parameters() if p.dim() > 1 and "embd" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() > 1 and "embd" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    total_steps = math.ceil(len(train) / args.batch_size) * args.epochs
    warmup = max(1, total_steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (
        (step + 1) / warmup if step < warmup else
        0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))))
    weights = torch.full((len(labels),), args.entity_weight)
    weights[label_index["O"]] = 1.0
    rng = random.Random(args.seed)
    best = (-1.0, None, 0)
    for epoch in range(args.epochs):
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        loss_sum = 0.0
        for start in range(0, len(order), args.batch_size):
            ids, mask, targets = to_tensors([train[i] for i in order[start:start + args.batch_size]],
                                            pad_id)
            if args.token_dropout > 0:
                dropped = (torch.rand(ids.shape) < args.token_dropout) & (mask == 1)
                dropped &= (ids != tokenizer.cls_id) & (ids != tokenizer.separator_id)
                ids = ids.masked_fill(dropped, tokenizer.unknown_id)
            logits = model(ids, mask)
            loss = F.cross_entropy(logits.reshape(-1, len(labels)), targets.reshape(-1),
                                   weight=weights, ignore_index=IGNORE)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                for kept, current in zip(averaged.parameters(), model.parameters()):
                    kept.mul_(args.ema).add_(current, alpha=1 - args.ema)
            loss_sum += loss.item()
        precision, recall, f1 = entity_f1(dev_gold, predict_tags(averaged, dev, labels, pad_id))
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss_sum / math.ceil(len(order) / args.batch_size):.4f}, dev entity "
              f"P {precision:.3f} R {recall:.3f} F1 {f1:.4f} ({time.time() - started:.0f} s)",
              flush=True)
        if f1 > best[0]:
            best = (f1, {k: v.clone() for k, v in averaged.state_dict().items()}, epoch + 1)

    averaged.load_state_dict(best[1])
    averaged.eval()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    bert.to_gguf(averaged, tokens, labels, args.out, name=args.name, embeddings_f16=True,
                 lowercase=lowercase)
    size = os.path.getsize(args.out)
    stored = read_gguf(args.out)
    exported = bert.BertEncoder(config)
    exported.load_state_dict({bert.gguf_to_module_name(name): torch.from_numpy(
        array.astype(np.float32)) for name, array in stored.tensors.items()})
    precision, recall, f1 = entity_f1(dev_gold, predict_tags(exported, dev, labels, pad_id))
    print(f"wrote {args.out}: {size} bytes (best epoch {best[2]}); exported model dev entity "
          f"P {precision:.4f} R {recall:.4f} F1 {f1:.4f}; total {time.time() - started:.0f} s")
    if size > args.max_bytes:
        print(f"error: {args.out} is {size} bytes, over --max-bytes {args.max_bytes}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
