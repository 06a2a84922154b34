"""tools/convert_decoder.py and pyslm/llama.py's GGUF export, read back with the independent
gguf_test_reader: llama.cpp metadata names, tensor names, the Q/K row permutation for llama-style
RoPE (checked against rotary math done here), fused phi3 tensors, qwen2 biases, and errors."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

import gguf_test_reader
from pyslm import llama

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
CONVERT = os.path.join(TOOLS, "convert_decoder.py")

HF_CONFIG = {"architectures": ["LlamaForCausalLM"], "vocab_size": 300, "hidden_size": 64,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "intermediate_size": 96, "max_position_embeddings": 128, "rope_theta": 5000.0,
             "rms_norm_eps": 1e-6, "tie_word_embeddings": False}


def rope_rotate_half(x, angles):
    """HF: pairs (i, i + d/2)."""
    half = x.shape[-1] // 2
    cos, sin = np.cos(angles), np.sin(angles)
    a, b = x[..., :half], x[..., half:]
    return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)


def rope_adjacent(x, angles):
    """llama.cpp "norm": pairs (2i, 2i+1)."""
    out = x.copy()
    a, b = x[..., 0::2], x[..., 1::2]
    out[..., 0::2] = a * np.cos(angles) - b * np.sin(angles)
    out[..., 1::2] = a * np.sin(angles) + b * np.cos(angles)
    return out


class ConvertDecoderTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def convert(self, config_dict, state, extra=()):
        config_path = os.path.join(self.dir.name, "config.json")
        state_path = os.path.join(self.dir.name, "model.pt")
        out = os.path.join(self.dir.name, "model.gguf")
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump(config_dict, f)
        torch.save(state, state_path)
        result = subprocess.run([sys.executable, CONVERT, "--state-dict", state_path, "--config",
                                 config_path, "--out", out, *extra],
                                capture_output=True, text=True, check=False)
        return result, out

    def test_llama_metadata_names_and_permuted_qk(self):
        config = llama.DecoderConfig.from_hf(HF_CONFIG)
        state = llama.random_state_dict(config, seed=3)
        result, out = self.convert(HF_CONFIG, state)
        self.assertEqual(result.returncode, 0, result.stderr)
        gguf = gguf_test_reader.parse_file(out)
        meta = {k: v[1] for k, v in gguf["metadata"].items()}
        self.assertEqual(meta["general.architecture"], "llama")
        for key, want in [("llama.context_length", 128), ("llama.embedding_length", 64),
                          ("llama.block_count", 2), ("llama.feed_forward_length", 96),
                          ("llama.attention.head_count", 4), ("llama.attention.head_count_kv", 2),
                          ("llama.rope.dimension_count", 16)]:
            self.assertEqual(meta[key], want, key)
        self.assertAlmostEqual(meta["llama.rope.freq_base"], 5000.0)
        self.assertAlmostEqual(meta["llama.attention.layer_norm_rms_epsilon"], 1e-6)
        tensors = gguf["tensors"]
        expected = {"token_embd.weight", "output_norm.weight", "output.weight"}
        for i in range(2):
            expected |= {f"blk.{i}.{n}.weight" for n in
                         ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
                          "ffn_gate", "ffn_up", "ffn_down"]}
        self.assertEqual(set(tensors), expected)
        self.assertEqual(tensors["blk.0.attn_k.weight"][0], [64, 32])  # ggml dims {in, out}
        # Rotating the GGUF's q rows by adjacent pairs equals HF's rotate_half on HF rows.
        x = np.random.default_rng(0).standard_normal(64)
        hf_q = state["model.layers.1.self_attn.q_proj.weight"].numpy() @ x
        gguf_q = tensors["blk.1.attn_q.weight"][3] @ x
        angles = 7 * 5000.0 ** (-np.arange(0, 16, 2) / 16)
        for head in range(4):
            hf = rope_rotate_half(hf_q[head * 16:(head + 1) * 16], angles)
            ours = rope_adjacent(gguf_q[head * 16:(head + 1) * 16], angles)
            # Same rotated pairs, stored interleaved: ours[2i] = hf[i], ours[2i+1] = hf[i + 8].
            np.testing.assert_allclose(ours[0::2], hf[:8], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(ours[1::2], hf[8:], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(tensors["blk.0.attn_v.weight"][3],
                                      state["model.layers.0.self_attn.v_proj.weight"].numpy())

    def test_qwen2_keeps_hf_rows_and_biases_phi3_fuses(self):
        qwen = dict(HF_CONFIG, architectures=["Qwen2ForCausalLM"], tie_word_embeddings=True)
        config = llama.DecoderConfig.from_hf(qwen)
        state = llama.random_state_dict(config, seed=4)
        result, out = self.convert(qwen, state, ["--type", "f16"])
        self.assertEqual(result.returncode, 0, result.stderr)
        tensors = gguf_test_reader.parse_file(out)["tensors"]
        self.assertNotIn("output.weight", tensors)
        self.assertEqual(tensors["blk.0.attn_q.weight"][1], 1)  # F16
        self.assertEqual(tensors["blk.0.attn_q.bias"][1], 0)    # vectors stay F32
        np.testing.assert_allclose(tensors["blk.0.attn_q.weight"][3],
                                   state["model.layers.0.self_attn.q_proj.weight"].numpy(),
                                   rtol=1e-3, atol=1e-3)
        phi = dict(HF_CONFIG, architectures=["Phi3ForCausalLM"])
        config = llama.DecoderConfig.from_hf(phi)
        state = llama.random_state_dict(config, seed=5)
        result, out = self.convert(phi, state)
        self.assertEqual(result.returncode, 0, result.stderr)
        tensors = gguf_test_reader.parse_file(out)["tensors"]
        self.assertEqual(tensors["blk.1.attn_qkv.weight"][0], [64, 64 + 2 * 32])
        self.assertEqual(tensors["blk.1.ffn_up.weight"][0], [64, 2 * 96])
        self.assertNotIn("blk.1.ffn_gate.weight", tensors)

    def test_missing_or_misshaped_tensor_is_named(self):
        config = llama.DecoderConfig.from_hf(HF_CONFIG)
        state = llama.random_state_dict(config, seed=6)
        del state["model.layers.1.mlp.down_proj.weight"]
        result, _ = self.convert(HF_CONFIG, state)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("model.layers.1.mlp.down_proj.weight", result.stderr)
        state = llama.random_state_dict(config, seed=6)
        state["model.norm.weight"] = torch.ones(63)
        result, _ = self.convert(HF_CONFIG, state)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("model.norm.weight", result.stderr)

    def test_state_dict_from_gguf_inverts_the_export(self):
        # q8_0 export then read back (dequantized, Q/K rows un-permuted) equals the weights the
        # exporter's own round trip predicts; f32 reads back exactly.
        config = llama.DecoderConfig.from_hf(HF_CONFIG)
        state = llama.random_state_dict(config, seed=8)
        for kind in ("f32", "q8_0"):
            out = os.path.join(self.dir.name, f"{kind}.gguf")
            llama.to_gguf(config, state, out, weight_type=kind)
            read_config, read_state = llama.state_dict_from_gguf(out)
            self.assertEqual((read_config.hidden_size, read_config.num_kv_heads,
                              read_config.tie_embeddings), (64, 2, False))
            expected = llama.roundtrip_state_dict(config, state, kind)
            self.assertEqual(set(read_state), set(expected))
            for name, tensor in expected.items():
                self.assertTrue(torch.equal(read_state[name], tensor.float()), f"{kind} {name}")


# A small corpus for spm_train (byte fallback takes 259 of the 320 ids; the rest are merges).
SPM_CORPUS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Congress shall make no law respecting an establishment of religion.",
    "We the people of the United States, in order to form a more perfect union.",
    "A fortune cookie says: you will find a bug in the code you wrote yesterday.",
    "Numbers like 1790 and 2018 are split into digits by the tokenizer.",
] * 40


def train_tiny_spm(folder, vocab_size=320):
    """spm_train (Debian's sentencepiece) BPE with byte fallback, llama's conventions; returns
    the model prefix."""
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(SPM_CORPUS) + "\n")
    prefix = os.path.join(folder, "spm")
    subprocess.run(["spm_train", f"--input={corpus}", f"--model_prefix={prefix}",
                    f"--vocab_size={vocab_size}", "--model_type=bpe", "--byte_fallback=true",
                    "--normalization_rule_name=identity", "--remove_extra_whitespaces=false",
                    "--split_digits=true", "--unk_id=0", "--bos_id=1", "--eos_id=2",
                    "--pad_id=-1"], check=True, capture_output=True)
    return prefix


@unittest.skipUnless(shutil.which("spm_train"), "spm_train absent: install Debian's sentencepiece")
class ConvertSpmVocabularyTest(unittest.TestCase):
    """--spm-vocab embeds spm_train's vocabulary; the expected values are read from the .vocab
    file here, independently of pyslm.spm_vocab."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.prefix = train_tiny_spm(self.dir.name)

    def convert(self, vocab_path, vocab_size=320):
        out = os.path.join(self.dir.name, "model.gguf")
        shape = json.dumps({"vocab_size": vocab_size, "hidden_size": 32, "num_layers": 1,
                            "num_heads": 2, "num_kv_heads": 1, "ffn_size": 64})
        result = subprocess.run([sys.executable, CONVERT, "--random", "llama", "--shape", shape,
                                 "--spm-vocab", vocab_path, "--out", out],
                                capture_output=True, text=True, check=False)
        return result, out

    def test_pieces_scores_and_types_are_embedded(self):
        result, out = self.convert(self.prefix + ".vocab")
        self.assertEqual(result.returncode, 0, result.stderr)
        metadata = gguf_test_reader.parse_file(out)["metadata"]
        with open(self.prefix + ".vocab", encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t") for line in f]
        self.assertEqual(metadata["tokenizer.ggml.model"][1], "llama")
        self.assertEqual(metadata["tokenizer.ggml.tokens"][1][1], [r[0] for r in rows])
        self.assertEqual(metadata["tokenizer.ggml.scores"][1][1], [float(r[1]) for r in rows])
        types = metadata["tokenizer.ggml.token_type"][1][1]
        self.assertEqual(types[:3], [2, 3, 3])
        self.assertEqual(types[3:3 + 256], [6] * 256)  # <0x00> .. <0xFF> follow the specials
        self.assertEqual(rows[3 + 0x41][0], "<0x41>")
        self.assertEqual(set(types[259:]), {1})
        self.assertTrue(any(r[0].startswith("\u2581") for r in rows[259:]))

    def test_bad_vocabularies_are_named(self):
        result, _ = self.convert(self.prefix + ".vocab", vocab_size=400)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("320 pieces, but the model's vocab_size is 400", result.stderr)
        bad = os.path.join(self.dir.name, "bad.vocab")
        for content, message in [("<unk>\t0\n<s>\n", "bad.vocab:2: expected piece<TAB>score"),
                                 ("<unk>\t0\n<s>\tx\n", "bad.vocab:2: score 'x'"),
                                 ("a\t0\nb\t0\nc\t0\n", "<unk> <s> </s>")]:
            with open(bad, "w", encoding="utf-8") as f:
                f.write(content)
            result, _ = self.convert(bad)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn(message, result.stderr)
        result, _ = self.convert(os.path.join(self.dir.name, "none.vocab"))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("none.vocab", result.stderr)


if __name__ == "__main__":
    unittest.main()
