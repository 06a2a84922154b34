#!/usr/bin/python3
"""Converts a decoder LM (llama, mistral, qwen2, phi3) from a PyTorch state dict with Hugging
Face names plus its config.json into a GGUF file in llama.cpp's conventions.

    convert_decoder.py --state-dict pytorch_model.bin --config config.json --out model.gguf \
        [--type f32|f16|bf16|q8_0|q4_0|q4_k|q6_k] [--name NAME] [--spm-vocab spm.vocab]
    convert_decoder.py --random llama --out tiny.gguf [--type q8_0] [--seed 0]   # test models

Q and K rows are permuted for llama/mistral as llama.cpp's convert_hf_to_gguf.py does; see
tools/pyslm/llama.py. Only 2-D weights whose rows are whole blocks are quantized; norms stay F32.
--spm-vocab embeds a SentencePiece vocabulary (spm_train's PREFIX.vocab: pieces, scores, and
token types derived from the pieces) as llama.cpp's SPM tokenizer (tokenizer.ggml.model "llama"),
which our worker's SPM tokenizer loads; its size must equal the config's vocab_size. Without it a
synthetic vocabulary is written, so tests and benchmarks can build GGUF files without downloads.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from pyslm import llama  # noqa: E402
from pyslm.spm_vocab import read_spm_vocab  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dict", help="torch.save'd state dict with HF names")
    parser.add_argument("--config", help="Hugging Face config.json")
    parser.add_argument("--random", choices=llama.ARCHITECTURES,
                        help="write a random model of this architecture instead")
    parser.add_argument("--shape", default="{}",
                        help="JSON DecoderConfig overrides for --random (hidden_size, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--type", default="f32", choices=sorted(llama.ggml_quants.TYPES))
    parser.add_argument("--name")
    parser.add_argument("--spm-vocab", help="SentencePiece .vocab file (spm_train) to embed")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.random:
        config = llama.DecoderConfig(architecture=args.random, **json.loads(args.shape))
        state = llama.random_state_dict(config, seed=args.seed)
    else:
        if not args.state_dict or not args.config:
            parser.error("--state-dict and --config are required without --random")
        with open(args.config, encoding="utf-8") as f:
            config = llama.DecoderConfig.from_hf(json.load(f))
        state = torch.load(args.state_dict, map_location="cpu")
        expected = llama.state_dict_shapes(config)
        for name, shape in expected.items():
            if name not in state:
                sys.exit(f"{args.state_dict}: missing tensor {name}")
            if tuple(state[name].shape) != tuple(shape):
                sys.exit(f"{args.state_dict}: tensor {name} has shape {tuple(state[name].shape)}, "
                         f"expected {shape}")
    vocabulary = {}
    if args.spm_vocab:
        try:
            pieces, scores, types = read_spm_vocab(args.spm_vocab)
        except (OSError, ValueError) as error:
            sys.exit(str(error))
        if len(pieces) != config.vocab_size:
            sys.exit(f"{args.spm_vocab}: {len(pieces)} pieces, but the model's vocab_size is "
                     f"{config.vocab_size}")
        vocabulary = dict(tokens=pieces, scores=scores, token_types=types)
    llama.to_gguf(config, state, args.out, weight_type=args.type, name=args.name, **vocabulary)
    print(f"wrote {args.out} ({config.architecture}, {config.num_layers} layers, {args.type})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
