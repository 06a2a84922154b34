#!/usr/bin/python3
"""Converts a BERT classifier to slm-gateway's GGUF (see tools/pyslm/bert.py for the format).

Two input layouts:
  Hugging Face directory (BertForSequenceClassification / BertForTokenClassification):
      convert_bert.py --hf-dir DIR --out model.gguf
    DIR holds config.json, pytorch_model.bin and vocab.txt; labels come from config.json's
    id2label unless --labels is given.
  Our own (or HF-named) state dict:
      convert_bert.py --state-dict model.pt --config config.json --vocab vocab.txt \
          --labels labels.txt --out model.gguf
    config.json holds pyslm.bert.BertConfig fields (or a HF BERT config.json).

--vocab: a HF vocab.txt (one token a line, "##" continuations) or a GGUF vocabulary file
(already in llama.cpp's phantom-space convention). --labels: one label a line.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pyslm import bert  # noqa: E402
from pyslm.gguf_reader import read_gguf  # noqa: E402

_HF_ARCHITECTURES = {
    "BertForSequenceClassification": bert.TEXT_CLASSIFICATION,
    "BertForTokenClassification": bert.TOKEN_CLASSIFICATION,
}


def config_from_hf(hf_config, state_dict, pooling=None):
    """BertConfig from a Hugging Face config.json dict (and the weights, for the head)."""
    activation = hf_config.get("hidden_act", "gelu")
    if activation != "gelu":
        raise ValueError(f"config.json: hidden_act is {activation!r}; only 'gelu' (erf) is "
                         "supported")
    if hf_config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("config.json: position_embedding_type must be 'absolute'")
    architectures = hf_config.get("architectures") or []
    task = None
    for architecture in architectures:
        task = _HF_ARCHITECTURES.get(architecture, task)
    if task is None:
        task = (bert.TEXT_CLASSIFICATION if "bert.pooler.dense.weight" in state_dict
                else bert.TOKEN_CLASSIFICATION)
    num_labels = state_dict["classifier.weight"].shape[0]
    return bert.BertConfig(
        vocab_size=hf_config["vocab_size"],
        num_labels=num_labels,
        hidden_size=hf_config["hidden_size"],
        num_layers=hf_config["num_hidden_layers"],
        num_heads=hf_config["num_attention_heads"],
        ffn_size=hf_config["intermediate_size"],
        context_length=hf_config["max_position_embeddings"],
        type_vocab_size=2 if "bert.embeddings.token_type_embeddings.weight" in state_dict else 0,
        layer_norm_eps=hf_config.get("layer_norm_eps", 1e-12),
        task=task,
        pooling=pooling or "cls",
        use_pooler="bert.pooler.dense.weight" in state_dict,
    )


def hf_labels(hf_config, num_labels):
    id2label = hf_config.get("id2label")
    if not id2label:
        return [f"LABEL_{i}" for i in range(num_labels)]
    return [id2label[str(i)] if str(i) in id2label else id2label[i] for i in range(num_labels)]


def read_vocab(path):
    """Tokens in phantom-space convention from a HF vocab.txt or a GGUF vocabulary."""
    if path.endswith(".gguf"):
        return read_gguf(path, load_tensors=False).metadata["tokenizer.ggml.tokens"]
    with open(path, encoding="utf-8") as f:
        return [bert.hf_to_phantom_token(line.rstrip("\n")) for line in f if line.rstrip("\n")]


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def load_torch(path):
    state_dict = torch.load(path, map_location="cpu")
    if not isinstance(state_dict, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state_dict).__name__}")
    return state_dict


def convert(args):
    if args.hf_dir:
        weights = os.path.join(args.hf_dir, "pytorch_model.bin")
        if not os.path.exists(weights):
            raise ValueError(f"{args.hf_dir}: no pytorch_model.bin (safetensors is not supported)")
        with open(os.path.join(args.hf_dir, "config.json"), encoding="utf-8") as f:
            hf_config = json.load(f)
        state_dict = load_torch(weights)
        config = config_from_hf(hf_config, state_dict, args.pooling)
        vocab_path = args.vocab or os.path.join(args.hf_dir, "vocab.txt")
        labels = read_lines(args.labels) if args.labels else hf_labels(hf_config,
                                                                       config.num_labels)
        name = args.name or os.path.basename(os.path.normpath(args.hf_dir))
    else:
        missing = [flag for flag, value in (("--config", args.config), ("--vocab", args.vocab),
                                            ("--labels", args.labels)) if not value]
        if missing:
            raise ValueError(f"--state-dict also needs {', '.join(missing)}")
        state_dict = load_torch(args.state_dict)
        with open(args.config, encoding="utf-8") as f:
            config_json = json.load(f)
        if "hidden_size" in config_json and "num_hidden_layers" in config_json:
            config = config_from_hf(config_json, state_dict, args.pooling)
        else:
            fields = {field.name for field in bert.dataclasses.fields(bert.BertConfig)}
            unknown = sorted(set(config_json) - fields)
            if unknown:
                raise ValueError(f"{args.config}: unknown fields {unknown}; expected {sorted(fields)}")
            config = bert.BertConfig(**config_json)
        vocab_path = args.vocab
        labels = read_lines(args.labels)
        name = args.name or os.path.splitext(os.path.basename(args.state_dict))[0]
    model = bert.load_state_dict(bert.BertEncoder(config), state_dict)
    tokens = read_vocab(vocab_path)
    bert.to_gguf(model, tokens, labels, args.out, name=name, embeddings_f16=args.embeddings_f16)
    return config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--hf-dir", help="Hugging Face model directory")
    source.add_argument("--state-dict", help="torch.save'd state dict")
    parser.add_argument("--config", help="JSON config (BertConfig fields or HF config.json)")
    parser.add_argument("--vocab", help="vocab.txt or a .gguf vocabulary")
    parser.add_argument("--labels", help="label names, one a line (index = class id)")
    parser.add_argument("--pooling", choices=["cls", "mean"],
                        help="override pooling for HF configs (default cls)")
    parser.add_argument("--name", help="general.name (default: from the input path)")
    parser.add_argument("--embeddings-f16", action="store_true",
                        help="store token and position embeddings as F16")
    parser.add_argument("--out", required=True, help="output .gguf path")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        config = convert(args)
    except (ValueError, KeyError, OSError, RuntimeError) as error:
        print(f"convert_bert: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {config.task}, {config.num_layers} layers, hidden "
          f"{config.hidden_size}, vocab {config.vocab_size}, {config.num_labels} labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
