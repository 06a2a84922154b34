"""convert_bert.py on a random Hugging Face-layout checkpoint, and pyslm.bert's forward pass
against an independent numpy implementation of HF BertModel written from HF tensor names."""

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

import gguf_test_reader
from pyslm import bert

torch.set_num_threads(1)  # the build machine's cores are shared

TOOLS_DIR = os.path.join(os.path.dirname(os.path.abspath(bert.__file__)), "..")
HIDDEN, LAYERS, HEADS, FFN, CONTEXT, LABELS = 16, 2, 4, 24, 12, 3
HF_VOCAB = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film",
            "##s", "good", "bad", "!", "##ing"]


def random_hf_state_dict(seed, token_classification=False):
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0, mean=0.0):
        return mean + scale * torch.randn(*shape, generator=generator)

    state = {
        "bert.embeddings.position_ids": torch.arange(CONTEXT).unsqueeze(0),
        "bert.embeddings.word_embeddings.weight": randn(len(HF_VOCAB), HIDDEN, scale=0.5),
        "bert.embeddings.position_embeddings.weight": randn(CONTEXT, HIDDEN, scale=0.5),
        "bert.embeddings.token_type_embeddings.weight": randn(2, HIDDEN, scale=0.5),
        "bert.embeddings.LayerNorm.weight": randn(HIDDEN, scale=0.1, mean=1.0),
        "bert.embeddings.LayerNorm.bias": randn(HIDDEN, scale=0.1),
    }
    shapes = {"attention.self.query": (HIDDEN, HIDDEN), "attention.self.key": (HIDDEN, HIDDEN),
              "attention.self.value": (HIDDEN, HIDDEN), "attention.output.dense": (HIDDEN, HIDDEN),
              "intermediate.dense": (FFN, HIDDEN), "output.dense": (HIDDEN, FFN)}
    for layer in range(LAYERS):
        prefix = f"bert.encoder.layer.{layer}."
        for name, (rows, cols) in shapes.items():
            state[prefix + name + ".weight"] = randn(rows, cols, scale=1 / math.sqrt(cols))
            state[prefix + name + ".bias"] = randn(rows, scale=0.1)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            state[prefix + norm + ".weight"] = randn(HIDDEN, scale=0.1, mean=1.0)
            state[prefix + norm + ".bias"] = randn(HIDDEN, scale=0.1)
    if not token_classification:
        state["bert.pooler.dense.weight"] = randn(HIDDEN, HIDDEN, scale=1 / math.sqrt(HIDDEN))
        state["bert.pooler.dense.bias"] = randn(HIDDEN, scale=0.1)
    state["classifier.weight"] = randn(LABELS, HIDDEN, scale=1 / math.sqrt(HIDDEN))
    state["classifier.bias"] = randn(LABELS, scale=0.1)
    return state


def numpy_hf_bert(state, ids, token_classification=False, eps=1e-12):
    """HF BertModel + classifier head in float64 numpy, straight from HF names."""
    w = {name: tensor.double().numpy() for name, tensor in state.items()}

    def layer_norm(x, prefix):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * w[prefix + ".weight"] + w[prefix + ".bias"]

    def linear(x, prefix):
        return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]

    def erf(values):
        return np.vectorize(math.erf)(values)

    n = len(ids)
    x = (w["bert.embeddings.word_embeddings.weight"][ids]
         + w["bert.embeddings.position_embeddings.weight"][:n]
         + w["bert.embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, "bert.embeddings.LayerNorm")
    head_dim = HIDDEN // HEADS
    for layer in range(LAYERS):
        p = f"bert.encoder.layer.{layer}."
        q, k, v = (linear(x, p + "attention.self." + m).reshape(n, HEADS, head_dim)
                   for m in ("query", "key", "value"))
        context = np.zeros((n, HEADS, head_dim))
        for h in range(HEADS):
            scores = q[:, h] @ k[:, h].T / math.sqrt(head_dim)
            probs = np.exp(scores - scores.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            context[:, h] = probs @ v[:, h]
        x = layer_norm(x + linear(context.reshape(n, HIDDEN), p + "attention.output.dense"),
                       p + "attention.output.LayerNorm")
        up = linear(x, p + "intermediate.dense")
        up = 0.5 * up * (1 + erf(up / math.sqrt(2)))
        x = layer_norm(x + linear(up, p + "output.dense"), p + "output.LayerNorm")
    if token_classification:
        return linear(x, "classifier")
    pooled = np.tanh(linear(x[0], "bert.pooler.dense"))
    return linear(pooled, "classifier")


def write_hf_dir(directory, state, architecture):
    config = {"architectures": [architecture], "hidden_act": "gelu", "hidden_size": HIDDEN,
              "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
              "intermediate_size": FFN, "max_position_embeddings": CONTEXT,
              "type_vocab_size": 2, "vocab_size": len(HF_VOCAB), "layer_norm_eps": 1e-12,
              "id2label": {"0": "neg", "1": "neu", "2": "pos"}}
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.write("\n".join(HF_VOCAB) + "\n")
    torch.save(state, os.path.join(directory, "pytorch_model.bin"))


def run_converter(*args):
    result = subprocess.run([sys.executable, os.path.join(TOOLS_DIR, "convert_bert.py"), *args],
                            capture_output=True, text=True)
    return result


class ReferenceTest(unittest.TestCase):
    """pyslm.bert (the reference the C++ encoder is tested against) equals HF math."""

    def check(self, token_classification):
        state = random_hf_state_dict(seed=1, token_classification=token_classification)
        task = bert.TOKEN_CLASSIFICATION if token_classification else bert.TEXT_CLASSIFICATION
        config = bert.BertConfig(vocab_size=len(HF_VOCAB), num_labels=LABELS, hidden_size=HIDDEN,
                                 num_layers=LAYERS, num_heads=HEADS, ffn_size=FFN,
                                 context_length=CONTEXT, task=task,
                                 use_pooler=not token_classification)
        model = bert.load_state_dict(bert.BertEncoder(config), state)
        for ids in ([3, 4], [3, 6, 7, 8, 9, 11, 4], [3] + list(range(2, 12)) + [4]):
            expected = numpy_hf_bert(state, ids, token_classification)
            actual = model.forward_ids(ids).double().numpy()
            # float32 against float64 over two layers: 1e-5 absolute is ~100x the observed error.
            np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)

    def test_sequence_classification(self):
        self.check(token_classification=False)

    def test_token_classification(self):
        self.check(token_classification=True)

    def test_mean_pooling_ignores_padding(self):
        config = bert.BertConfig(vocab_size=20, num_labels=2, hidden_size=8, num_heads=2,
                                 ffn_size=16, context_length=10, pooling="mean")
        model = bert.random_model(config, seed=3)
        ids = [1, 5, 6, 7, 2]
        alone = model.forward_ids(ids)
        padded = torch.tensor([ids + [0, 0, 0]])
        mask = torch.tensor([[1] * 5 + [0] * 3])
        with torch.no_grad():
            batched = model(padded, mask)[0]
        np.testing.assert_allclose(batched.numpy(), alone.numpy(), rtol=0, atol=1e-5)


class ConvertHfTest(unittest.TestCase):
    def convert(self, token_classification, *extra):
        architecture = ("BertForTokenClassification" if token_classification
                        else "BertForSequenceClassification")
        state = random_hf_state_dict(seed=2, token_classification=token_classification)
        with tempfile.TemporaryDirectory() as tmp:
            write_hf_dir(tmp, state, architecture)
            out = os.path.join(tmp, "model.gguf")
            result = run_converter("--hf-dir", tmp, "--out", out, *extra)
            self.assertEqual(result.returncode, 0, result.stderr)
            return state, gguf_test_reader.parse_file(out)

    def test_sequence_classification_metadata_and_tensors(self):
        state, parsed = self.convert(False)
        metadata = {key: value for key, (_, value) in parsed["metadata"].items()}
        self.assertEqual(metadata["general.architecture"], "bert")
        self.assertEqual(metadata["bert.context_length"], CONTEXT)
        self.assertEqual(metadata["bert.embedding_length"], HIDDEN)
        self.assertEqual(metadata["bert.block_count"], LAYERS)
        self.assertEqual(metadata["bert.feed_forward_length"], FFN)
        self.assertEqual(metadata["bert.attention.head_count"], HEADS)
        self.assertEqual(parsed["metadata"]["bert.attention.head_count"][0], 4)  # u32
        self.assertEqual(metadata["slmgw.task"], "text_classification")
        self.assertEqual(metadata["slmgw.pooling"], "cls")
        self.assertEqual(metadata["slmgw.labels"], (8, ["neg", "neu", "pos"]))
        self.assertEqual(metadata["tokenizer.ggml.model"], "bert")
        self.assertEqual(metadata["tokenizer.ggml.tokens"][1],
                         ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "\u2581the",
                          "\u2581film", "s", "\u2581good", "\u2581bad", "\u2581!", "ing"])
        self.assertEqual(metadata["tokenizer.ggml.token_type"],
                         (5, [3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1]))
        self.assertEqual(metadata["tokenizer.ggml.unknown_token_id"], 2)
        self.assertEqual(metadata["tokenizer.ggml.cls_token_id"], 3)
        self.assertEqual(metadata["tokenizer.ggml.seperator_token_id"], 4)
        self.assertEqual(metadata["tokenizer.ggml.padding_token_id"], 0)
        self.assertEqual(metadata["tokenizer.ggml.mask_token_id"], 5)

        expected_names = {"bert.embeddings.word_embeddings.weight": "token_embd.weight",
                          "bert.embeddings.position_embeddings.weight": "position_embd.weight",
                          "bert.embeddings.token_type_embeddings.weight": "token_types.weight",
                          "bert.embeddings.LayerNorm.bias": "token_embd_norm.bias",
                          "bert.encoder.layer.1.attention.self.key.weight": "blk.1.attn_k.weight",
                          "bert.encoder.layer.0.attention.output.dense.bias":
                              "blk.0.attn_output.bias",
                          "bert.encoder.layer.0.attention.output.LayerNorm.weight":
                              "blk.0.attn_output_norm.weight",
                          "bert.encoder.layer.1.intermediate.dense.weight": "blk.1.ffn_up.weight",
                          "bert.encoder.layer.1.output.dense.weight": "blk.1.ffn_down.weight",
                          "bert.encoder.layer.0.output.LayerNorm.bias":
                              "blk.0.layer_output_norm.bias",
                          "bert.pooler.dense.weight": "cls.pooler.weight",
                          "classifier.weight": "cls.output.weight",
                          "classifier.bias": "cls.output.bias"}
        tensors = parsed["tensors"]
        self.assertEqual(len(tensors), 5 + 16 * LAYERS + 4)
        for hf_name, gguf_name in expected_names.items():
            dims, tensor_type, _, array = tensors[gguf_name]
            self.assertEqual(tensor_type, 0, gguf_name)
            self.assertEqual(dims, list(reversed(state[hf_name].shape)), gguf_name)
            np.testing.assert_array_equal(array, state[hf_name].numpy(), err_msg=gguf_name)
        self.assertEqual(tensors["blk.1.ffn_up.weight"][0], [HIDDEN, FFN])

    def test_token_classification_has_no_pooler(self):
        _, parsed = self.convert(True)
        self.assertEqual(parsed["metadata"]["slmgw.task"][1], "token_classification")
        self.assertNotIn("cls.pooler.weight", parsed["tensors"])
        self.assertEqual(parsed["tensors"]["cls.output.weight"][0], [HIDDEN, LABELS])

    def test_embeddings_f16(self):
        state, parsed = self.convert(False, "--embeddings-f16")
        tensors = parsed["tensors"]
        for gguf_name, hf_name in (("token_embd.weight", "bert.embeddings.word_embeddings.weight"),
                                   ("position_embd.weight",
                                    "bert.embeddings.position_embeddings.weight")):
            self.assertEqual(tensors[gguf_name][1], 1)
            np.testing.assert_allclose(tensors[gguf_name][3].astype(np.float32),
                                       state[hf_name].numpy(), rtol=1e-3, atol=1e-4)
        self.assertEqual(tensors["token_types.weight"][1], 0)
        self.assertEqual(tensors["blk.0.attn_q.weight"][1], 0)

    def test_state_dict_layout_round_trip(self):
        # Our own layout: BertEncoder state dict + BertConfig JSON + vocab + labels.
        config = bert.BertConfig(vocab_size=len(HF_VOCAB), num_labels=2, hidden_size=8,
                                 num_heads=2, ffn_size=16, context_length=6, pooling="mean",
                                 type_vocab_size=0)
        model = bert.random_model(config, seed=5)
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(model.state_dict(), os.path.join(tmp, "model.pt"))
            with open(os.path.join(tmp, "config.json"), "w") as f:
                json.dump(bert.dataclasses.asdict(config), f)
            with open(os.path.join(tmp, "vocab.txt"), "w") as f:
                f.write("\n".join(HF_VOCAB) + "\n")
            with open(os.path.join(tmp, "labels.txt"), "w") as f:
                f.write("negative\npositive\n")
            out = os.path.join(tmp, "model.gguf")
            result = run_converter("--state-dict", os.path.join(tmp, "model.pt"),
                                   "--config", os.path.join(tmp, "config.json"),
                                   "--vocab", os.path.join(tmp, "vocab.txt"),
                                   "--labels", os.path.join(tmp, "labels.txt"), "--out", out)
            self.assertEqual(result.returncode, 0, result.stderr)
            parsed = gguf_test_reader.parse_file(out)
        self.assertEqual(parsed["metadata"]["slmgw.pooling"][1], "mean")
        self.assertNotIn("token_types.weight", parsed["tensors"])
        self.assertNotIn("cls.pooler.weight", parsed["tensors"])
        # Rebuild a model from the GGUF tensors alone: same logits as the original.
        rebuilt = bert.BertEncoder(config)
        rebuilt.load_state_dict({bert.gguf_to_module_name(name): torch.from_numpy(array.copy())
                                 for name, (_, _, _, array) in parsed["tensors"].items()})
        ids = [3, 6, 7, 8, 4]
        np.testing.assert_array_equal(rebuilt.forward_ids(ids).numpy(),
                                      model.forward_ids(ids).numpy())

    def test_unknown_config_field_is_named(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = bert.BertConfig(vocab_size=4, num_labels=2)
            torch.save(bert.BertEncoder(config).state_dict(), os.path.join(tmp, "m.pt"))
            with open(os.path.join(tmp, "c.json"), "w") as f:
                json.dump({"vocab_size": 4, "num_labels": 2, "hiden_size": 8}, f)
            result = run_converter("--state-dict", os.path.join(tmp, "m.pt"), "--config",
                                   os.path.join(tmp, "c.json"), "--vocab", "v", "--labels", "l",
                                   "--out", os.path.join(tmp, "o.gguf"))
        self.assertEqual(result.returncode, 1)
        self.assertIn("hiden_size", result.stderr)


if __name__ == "__main__":
    unittest.main()
