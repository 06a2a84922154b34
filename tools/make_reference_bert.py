#!/usr/bin/python3
"""Writes a small random BERT GGUF and the reference logits of pyslm.bert for it, so a C++ test
can compare its encoder with PyTorch without running Python.

    make_reference_bert.py --out-dir DIR [--task text_classification|token_classification]
                           [--pooling cls|mean] [--no-pooler] [--embeddings-f16] [--seed 0]

DIR/model.gguf: the model (vocab: [PAD] [UNK] [CLS] [SEP] [MASK] then "\u2581w5" ...).
DIR/expected.json: {"cases": [{"ids": [...], "logits": [...]}]}; logits are [num_labels] for
text classification and [n][num_labels] for token classification, computed from the weights as
stored (F16 embeddings rounded), in float32.
"""

import argparse
import json
import os
import random
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pyslm import bert  # noqa: E402
from pyslm.gguf_reader import read_gguf  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--task", default=bert.TEXT_CLASSIFICATION,
                        choices=[bert.TEXT_CLASSIFICATION, bert.TOKEN_CLASSIFICATION])
    parser.add_argument("--pooling", default="cls", choices=["cls", "mean"])
    parser.add_argument("--no-pooler", action="store_true")
    parser.add_argument("--embeddings-f16", action="store_true")
    parser.add_argument("--vocab-size", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=64)
    parser.add_argument("--context", type=int, default=16)
    parser.add_argument("--labels", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    config = bert.BertConfig(vocab_size=args.vocab_size, num_labels=args.labels,
                             hidden_size=args.hidden, num_layers=args.layers,
                             num_heads=args.heads, ffn_size=args.ffn,
                             context_length=args.context, task=args.task,
                             pooling=args.pooling, use_pooler=not args.no_pooler)
    model = bert.random_model(config, args.seed)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = specials + [f"\u2581w{i}" for i in range(len(specials), args.vocab_size)]
    labels = [f"label{i}" for i in range(args.labels)]
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, "model.gguf")
    bert.to_gguf(model, tokens, labels, path, name="random-bert",
                 embeddings_f16=args.embeddings_f16)

    stored = bert.BertEncoder(config)
    stored.load_state_dict({bert.gguf_to_module_name(name): torch.from_numpy(
        array.astype(np.float32)) for name, array in read_gguf(path).tensors.items()})
    rng = random.Random(args.seed)
    cases = []
    for length in (0, 1, 5, args.context - 2):
        words = [rng.randrange(len(specials), args.vocab_size) for _ in range(length)]
        ids = [2] + words + [3]
        cases.append({"ids": ids, "logits": stored.forward_ids(ids).tolist()})
    with open(os.path.join(args.out_dir, "expected.json"), "w") as f:
        json.dump({"cases": cases}, f, indent=1)
    print(f"wrote {path} and expected.json ({len(cases)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
