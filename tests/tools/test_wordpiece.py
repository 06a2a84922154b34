"""pyslm.wordpiece against llama.cpp's BERT tokenizer test vectors (bge vocabulary) and a few
hand-checked cases."""

import os
import unittest

from pyslm.gguf_reader import read_gguf
from pyslm.wordpiece import WordPieceTokenizer, basic_tokenize

DATA_DIR = os.environ.get("SLM_SHARED_DATA_DIR", "")
VOCAB = os.path.join(DATA_DIR, "tokenizers", "ggml-vocab-bert-bge.gguf")


class BasicTokenizeTest(unittest.TestCase):
    def test_lowercase_accents_punctuation(self):
        self.assertEqual(basic_tokenize("  H\u00e9llo,\tWORLD!! it's"),
                         ["hello", ",", "world", "!", "!", "it", "'", "s"])

    def test_cjk_and_control(self):
        self.assertEqual(basic_tokenize("a\u4e2d\u6587b\x07c"), ["a", "\u4e2d", "\u6587", "bc"])


class WordPiecesTest(unittest.TestCase):
    def setUp(self):
        tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "\u2581play", "ing", "\u2581playing",
                  "\u2581p", "lay", "ed", "\u2581!", "s"]
        self.tokenizer = WordPieceTokenizer(tokens)

    def test_longest_match_first(self):
        self.assertEqual(self.tokenizer.tokenize("playing played plays"),
                         [6, 4, 9, 4, 11])

    def test_uncoverable_word_is_one_unknown(self):
        self.assertEqual(self.tokenizer.tokenize("playx !"), [1, 10])

    def test_encode_adds_specials_and_truncates(self):
        self.assertEqual(self.tokenizer.encode("plays !"), [2, 4, 11, 10, 3])
        self.assertEqual(self.tokenizer.encode("plays !", max_length=4), [2, 4, 11, 3])


@unittest.skipUnless(os.path.exists(VOCAB),
                     f"{VOCAB} not found: set SLM_SHARED_DATA_DIR to the shared data folder")
class LlamaCppVectorsTest(unittest.TestCase):
    def test_bge_vectors(self):
        tokenizer = WordPieceTokenizer(read_gguf(VOCAB, load_tensors=False)
                                       .metadata["tokenizer.ggml.tokens"])
        with open(VOCAB + ".inp", encoding="utf-8") as f:
            inputs = f.read().split("\n__ggml_vocab_test__\n")
        with open(VOCAB + ".out", encoding="utf-8") as f:
            outputs = f.read().split("\n")
        self.assertGreater(len(inputs), 40)
        for text, expected in zip(inputs, outputs):
            with self.subTest(text=text):
                self.assertEqual(tokenizer.tokenize(text), [int(i) for i in expected.split()])


if __name__ == "__main__":
    unittest.main()
