#!/usr/bin/python3
"""Evaluates the router's two learned tiers together on CLINC150 val, as the router combines
them (router/classification/route_policy.h):

  fast tier (n-gram) answers; if its top probability < FAST_THRESHOLD the encoder tier answers
  instead; the deciding tier's answer is out of domain when its top label is `oos` or its top
  probability < OOD_THRESHOLD.

Prints in-scope domain accuracy and oos recall for a grid of both thresholds (and each tier
alone), using the PyTorch / numpy references of both models (tools/pyslm).

    /usr/bin/python3 tools/train/eval_clinc150_router.py \
        [--fast models/router-clinc150-ngram.gguf] [--encoder models/router-clinc150-encoder.gguf]
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

TRAIN_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TRAIN_DIR))
from pyslm import bert, ngram  # noqa: E402
from pyslm.gguf_reader import read_gguf  # noqa: E402
from pyslm.wordpiece import WordPieceTokenizer  # noqa: E402

REPO_DIR = os.path.dirname(os.path.dirname(TRAIN_DIR))
DATA_DIR = os.environ.get("SLM_SHARED_DATA_DIR", os.path.join(REPO_DIR, "..", "shared", "data"))


def load_encoder(path):
    stored = read_gguf(path)
    m = stored.metadata
    config = bert.BertConfig(
        vocab_size=len(m["tokenizer.ggml.tokens"]), num_labels=len(m["slmgw.labels"]),
        hidden_size=m["bert.embedding_length"], num_layers=m["bert.block_count"],
        num_heads=m["bert.attention.head_count"], ffn_size=m["bert.feed_forward_length"],
        context_length=m["bert.context_length"],
        type_vocab_size=2 if "token_types.weight" in stored.tensors else 0,
        layer_norm_eps=m["bert.attention.layer_norm_epsilon"], task=m["slmgw.task"],
        pooling=m["slmgw.pooling"], use_pooler="cls.pooler.weight" in stored.tensors)
    model = bert.BertEncoder(config)
    model.load_state_dict({bert.gguf_to_module_name(n): torch.from_numpy(a.astype(np.float32))
                           for n, a in stored.tensors.items()})
    model.eval()
    return model, WordPieceTokenizer(m["tokenizer.ggml.tokens"]), list(m["slmgw.labels"])


def encoder_logits(path, texts):
    model, tokenizer, labels = load_encoder(path)
    out = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer.encode(text, model.config.context_length)
            out.append(model.forward_ids(ids).numpy())
    return labels, np.array(out)  # logits


def fast_probabilities(path, texts):
    stored = read_gguf(path)
    m = stored.metadata
    featurizer = ngram.Featurizer(m["ngram.buckets"], m["ngram.hash_seed"],
                                  m["ngram.word_ngrams"], m["ngram.char_ngram_min"],
                                  m["ngram.char_ngram_max"])
    labels = list(m["slmgw.labels"])
    class_label = np.array(m["ngram.class_labels"])
    t = stored.tensors
    out = []
    for text in texts:
        p = ngram.probabilities(featurizer, t["token_embd.weight"], t["output.weight"],
                                t["output.bias"], text)
        out.append(np.bincount(class_label, weights=p, minlength=len(labels)))
    return labels, np.array(out)


def decisions(probabilities, label_domain):
    """(domain index of the top label, top probability) per row."""
    return label_domain[probabilities.argmax(1)], probabilities.max(1)


def score(labels, decided, gold, ood_threshold):
    """(in-scope accuracy, oos recall) with out-of-domain = top is oos or top < threshold."""
    oos = labels.index("oos")
    top, best = decided
    predicted_oos = (top == oos) | (best < ood_threshold)
    gold = np.array([labels.index(g) for g in gold])
    inscope = gold != oos
    accuracy = ((top == gold) & ~predicted_oos & inscope).sum() / inscope.sum()
    recall = (predicted_oos & ~inscope).sum() / (~inscope).sum()
    return accuracy, recall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", default=os.path.join(REPO_DIR, "models",
                                                       "router-clinc150-ngram.gguf"))
    parser.add_argument("--encoder", default=os.path.join(REPO_DIR, "models",
                                                          "router-clinc150-encoder.gguf"))
    parser.add_argument("--val", default=os.path.join(DATA_DIR, "clinc150", "val.jsonl"))
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="divide the encoder's logits by this (what --temperature of "
                             "train_sentiment.py bakes into the exported output layer)")
    parser.add_argument("--ood", default="0,0.3,0.4,0.5,0.6,0.7",
                        help="out-of-domain thresholds to try, comma-separated")
    parser.add_argument("--fast-thresholds", default="0.5,0.7,0.8,0.9")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [json.loads(line) for line in open(args.val, encoding="utf-8") if line.strip()]
    texts, gold = [r["text"] for r in rows], [r["domain"] for r in rows]
    fast_labels, fast = fast_probabilities(args.fast, texts)
    encoder_labels, logits = encoder_logits(args.encoder, texts)
    encoder = torch.softmax(torch.from_numpy(logits) / args.temperature, -1).numpy()
    labels = fast_labels
    # An intent-level encoder (clinc150-intent) answers with intents: map them to domains as
    # the router's classification.encoder.labels does.
    with open(os.path.join(os.path.dirname(args.val), "domains.json"), encoding="utf-8") as f:
        intent_domain = {i: d for d, intents in json.load(f).items() for i in intents}
    intent_domain.update({label: label for label in labels})
    encoder_domain = np.array([labels.index(intent_domain[label]) for label in encoder_labels])
    fast_decided = decisions(fast, np.arange(len(labels)))
    encoder_decided = decisions(encoder, encoder_domain)
    print("tier            fast_thr  ood_thr  in-scope  oos-recall  encoder-share")
    for ood in [float(v) for v in args.ood.split(",")]:
        for name, decided in (("fast only", fast_decided), ("encoder only", encoder_decided)):
            accuracy, recall = score(labels, decided, gold, ood)
            print(f"{name:15s} {'-':>8s} {ood:8.2f} {accuracy:9.4f} {recall:11.4f}")
        for fast_threshold in [float(v) for v in args.fast_thresholds.split(",")]:
            use_encoder = fast_decided[1] < fast_threshold
            combined = tuple(np.where(use_encoder, e, f)
                             for e, f in zip(encoder_decided, fast_decided))
            accuracy, recall = score(labels, combined, gold, ood)
            print(f"{'cascade':15s} {fast_threshold:8.2f} {ood:8.2f} {accuracy:9.4f} "
                  f"{recall:11.4f} {use_encoder.mean():14.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
