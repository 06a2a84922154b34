"""slmctl tokenize / detokenize, run as a subprocess on a tiny GGUF vocabulary written here
(hermetic), and on llama.cpp's vocabularies when $SLM_SHARED_DATA_DIR has them.

Expected ids are worked out by hand from SentencePiece's rules for the tiny vocabulary, and come
from llama.cpp's .out files for the shared ones.
"""
import json
import os
import subprocess
import tempfile
import unittest

from pyslm import gguf_writer as w

SLMCTL = os.environ.get("SLMCTL", "")


def run(args, stdin):
    return subprocess.run([SLMCTL] + args, input=stdin, capture_output=True, timeout=60)


def write_tiny_spm(path):
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    scores = [0.0] * len(tokens)
    for text, score in [("\u2581", -10.0), ("\u2581hi", -1.0), ("h", -5.0), ("i", -5.0),
                        ("hi", -2.0)]:
        tokens.append(text)
        types.append(1)
        scores.append(score)
    writer = w.GGUFWriter()
    writer.add_string("general.architecture", "llama")
    writer.add_string("tokenizer.ggml.model", "llama")
    writer.add_string_array("tokenizer.ggml.tokens", tokens)
    writer.add_i32_array("tokenizer.ggml.token_type", types)
    writer.add_array("tokenizer.ggml.scores", w.TYPE_FLOAT32, scores)
    writer.add_u32("tokenizer.ggml.bos_token_id", 1)
    writer.add_u32("tokenizer.ggml.eos_token_id", 2)
    writer.add_u32("tokenizer.ggml.unknown_token_id", 0)
    writer.write(path)


@unittest.skipUnless(SLMCTL and os.path.exists(SLMCTL), "SLMCTL (the slmctl binary) not set")
class SlmctlTokenizeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model = os.path.join(cls.tmp.name, "tiny.gguf")
        write_tiny_spm(cls.model)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_tokenize_prints_json_ids(self):
        # "hi é" -> "▁hi▁é": h+i (-2), then ▁+hi (-1) = 260; "▁" 259; "é" has no piece: bytes.
        result = run(["tokenize", "--model", self.model, "--add-special"], "hi é".encode())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout), [1, 260, 259, 3 + 0xC3, 3 + 0xA9])
        result = run(["tokenize", "--model", self.model], b"")
        self.assertEqual(json.loads(result.stdout), [])

    def test_detokenize_round_trips(self):
        text = "hi  hi\n\u00e9\u20ac x".encode()
        ids = run(["tokenize", "--model", self.model, "--add-special"], text).stdout
        result = run(["detokenize", "--model", self.model], ids)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, text)
        result = run(["detokenize", "--model", self.model, "--render-special"], b"[1, 260]")
        self.assertEqual(result.stdout, b"<s>hi")

    def test_bad_input(self):
        for stdin, message in [(b"1, 2", b"JSON array"), (b"[1, x]", b"'x' is not a token id"),
                               (b"[99999]", b"outside the vocabulary")]:
            result = run(["detokenize", "--model", self.model], stdin)
            self.assertEqual(result.returncode, 2)
            self.assertIn(message, result.stderr)
        result = run(["tokenize", "--model", os.path.join(self.tmp.name, "none.gguf")], b"x")
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"none.gguf", result.stderr)
        result = run(["tokenize"], b"x")
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"--model", result.stderr)

    def test_llama_cpp_vectors_from_the_shell(self):
        data = os.environ.get("SLM_SHARED_DATA_DIR", "")
        base = os.path.join(data, "tokenizers", "ggml-vocab-phi-3.gguf")
        if not data or not os.path.exists(base + ".inp"):
            self.skipTest("shared data absent: need $SLM_SHARED_DATA_DIR/tokenizers/"
                          "ggml-vocab-phi-3.gguf{,.inp,.out}")
        with open(base + ".inp", "rb") as f:
            cases = f.read().split(b"\n__ggml_vocab_test__\n")[:-1]
        with open(base + ".out") as f:
            expected = [[int(t) for t in line.split()] for line in f.read().splitlines()]
        for i in (1, 18, 22, 32, 43):  # Führer, 🦙, emoji ZWJ, mixed CJK, Vietnamese
            result = run(["tokenize", "--model", base], cases[i])
            self.assertEqual(json.loads(result.stdout), expected[i], cases[i])
            back = run(["detokenize", "--model", base], result.stdout)
            self.assertEqual(back.stdout, cases[i])


if __name__ == "__main__":
    unittest.main()
