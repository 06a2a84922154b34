#!/usr/bin/python3
"""Writes the encoder benchmark's model in every format the contenders read.

One random MiniLM-L6-like BERT (6 layers, hidden 384, 12 heads, FFN 1536, context 512, vocab
8192, sequence classification with a pooler) from tools/pyslm/bert.py, saved as:
  OUT/model.gguf  our C++ encoder (encoder_bench)
  OUT/model.pt    the PyTorch module's state dict (+ config), for bench_torch.py
  OUT/model.onnx  torch.onnx.export of the same module (input "ids" [1, seq]), for bench_ort.js

Usage: PYTHONPATH=tools make_bench_model.py --out DIR
"""

import argparse
import dataclasses
import os
import sys

import torch

from pyslm import bert

CONFIG = dict(vocab_size=8192, num_labels=2, hidden_size=384, num_layers=6, num_heads=12,
              ffn_size=1536, context_length=512, task=bert.TEXT_CLASSIFICATION, pooling="cls",
              use_pooler=True)
SEED = 1234


def bench_model():
    return bert.random_model(bert.BertConfig(**CONFIG), seed=SEED)


def vocabulary(size):
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return specials + ["\u2581w%d" % i for i in range(size - len(specials))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    model = bench_model()
    bert.to_gguf(model, vocabulary(CONFIG["vocab_size"]), ["negative", "positive"],
                 os.path.join(args.out, "model.gguf"), name="minilm-l6-like-random")
    torch.save({"config": dataclasses.asdict(model.config), "state_dict": model.state_dict()},
               os.path.join(args.out, "model.pt"))
    example = torch.tensor([[2] + [5] * 14 + [3]], dtype=torch.long)
    torch.onnx.export(model, (example,), os.path.join(args.out, "model.onnx"),
                      input_names=["ids"], output_names=["logits"],
                      dynamic_axes={"ids": {1: "seq"}}, opset_version=14)
    print(f"wrote model.gguf, model.pt, model.onnx to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
