#!/usr/bin/python3
"""Debian PyTorch (1.13, CPU) on the encoder benchmark's model: bf16 (model.to(torch.bfloat16))
and dynamic int8 (torch.ao.quantization.quantize_dynamic on every nn.Linear), plus f32 for
reference, at the given thread counts and sequence lengths, on the ids encoder_bench uses.

Prints one JSON object a line: {"engine": "torch", "dtype", "threads", "seq", "tokens_per_s"}.

Usage: PYTHONPATH=tools bench_torch.py --model DIR/model.pt [--threads 1,2] [--seqs 16,64,256]
"""

import argparse
import json
import time

import torch
from torch import nn

from pyslm import bert


def bench_ids(seq, vocab):
    ids = [5 + (t * 7919) % (vocab - 5) for t in range(seq)]
    ids[0], ids[-1] = 2, 3
    return torch.tensor([ids], dtype=torch.long)


def tokens_per_second(model, ids, min_seconds):
    with torch.inference_mode():
        model(ids)  # warm-up
        iterations, start = 0, time.perf_counter()
        while True:
            model(ids)
            iterations += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds and iterations >= 3:
                return ids.shape[1] * iterations / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--seqs", default="16,64,256")
    parser.add_argument("--dtypes", default="f32,bf16,int8")
    parser.add_argument("--min-seconds", type=float, default=1.0)
    args = parser.parse_args()
    saved = torch.load(args.model)
    config = bert.BertConfig(**saved["config"])
    f32 = bert.BertEncoder(config)
    f32.load_state_dict(saved["state_dict"])
    f32.eval()
    variants = {
        "f32": lambda: f32,
        "bf16": lambda: _bf16(config, saved),
        "int8": lambda: torch.ao.quantization.quantize_dynamic(f32, {nn.Linear},
                                                               dtype=torch.qint8),
    }
    for dtype in args.dtypes.split(","):
        model = variants[dtype]()
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for seq in (int(s) for s in args.seqs.split(",")):
                rate = tokens_per_second(model, bench_ids(seq, config.vocab_size),
                                         args.min_seconds)
                print(json.dumps({"engine": "torch", "dtype": dtype, "threads": threads,
                                  "seq": seq, "tokens_per_s": rate}), flush=True)


def _bf16(config, saved):
    model = bert.BertEncoder(config)
    model.load_state_dict(saved["state_dict"])
    return model.eval().to(torch.bfloat16)


if __name__ == "__main__":
    main()
