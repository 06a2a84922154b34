"""The hashed-feature entity tagger: tools/pyslm/ngram_tagger.py's tokens and features (against
hand-written expectations), train_entity_tagger.py (a tiny run), and the committed
models/entities-wnut17.gguf against its model card through the Python reference."""

import contextlib
import io
import os
import sys
import tempfile
import unittest

import torch

from pyslm import ngram_tagger
from pyslm.gguf_reader import read_gguf

torch.set_num_threads(1)  # the build machine's cores are shared
TOOLS_DIR = os.path.join(os.path.dirname(os.path.abspath(ngram_tagger.__file__)), "..")
sys.path.insert(0, os.path.join(TOOLS_DIR, "train"))
import train_entity_tagger  # noqa: E402
import train_wnut17  # noqa: E402

REPO_DIR = os.path.dirname(os.path.abspath(TOOLS_DIR))
DATA_DIR = os.environ.get("SLM_SHARED_DATA_DIR", "")
WNUT17 = os.path.join(DATA_DIR, "wnut17")
MODEL = os.path.join(REPO_DIR, "models", "entities-wnut17.gguf")


class FeaturesTest(unittest.TestCase):
    def test_tokens_are_non_whitespace_runs_with_byte_spans(self):
        data, spans, words = ngram_tagger.split("  Zo\u00eb\tis\n\nhere\r\v ")
        self.assertEqual(spans, [(2, 6), (7, 9), (11, 15)])
        self.assertEqual(words, ["Zo\u00eb".encode(), b"is", b"here"])
        self.assertEqual(ngram_tagger.split(" \t ")[1], [])

    def test_shape_and_lower(self):
        self.assertEqual(ngram_tagger.shape(b"McDonald's"), b"XxXxx'x")
        self.assertEqual(ngram_tagger.shape(b"iPhone7"), b"xXxxd")
        self.assertEqual(ngram_tagger.shape("Zo\u00eb".encode()), b"Xxuu")
        self.assertEqual(ngram_tagger.shape(b"@USER_123"), b"@XX_dd")
        self.assertEqual(ngram_tagger.lower("\u00c9COLE Abc".encode()), "\u00c9cole abc".encode())

    def test_features_of_a_token(self):
        words = [b"I", b"love", b"NEW", b"York"]
        features = ngram_tagger.token_features(words, 3)
        self.assertEqual(features, [
            b"b", b"w=York", b"l=york", b"s=Xxx", b"p1=y", b"x1=k", b"p2=yo", b"x2=rk",
            b"p3=yor", b"x3=ork", b"p4=york", b"x4=york", b"c=10", b"a=0",
            b"l-2=love", b"s-2=xx", b"l-1=new", b"s-1=XX", b"l1=<pad>", b"l2=<pad>",
            b"sl=XX|Xxx", b"sr=Xxx|$", b"lw=new|york", b"r=3|1"])
        self.assertEqual(ngram_tagger.token_features([b"A"], 0)[12:14], [b"c=11", b"a=1"])

    def test_hash_is_seeded_fnv1a(self):
        # FNV-1a 64 of the empty input is the offset basis; one byte changes it as specified.
        self.assertEqual(ngram_tagger.fnv1a(b""), 0xCBF29CE484222325)
        self.assertEqual(ngram_tagger.fnv1a(b"a"), 0xAF63DC4C8601EC8C)
        featurizer = ngram_tagger.Featurizer(1000, 5)
        base = ngram_tagger.fnv1a((5).to_bytes(4, "little"))
        self.assertEqual(featurizer.hashes([b"x"])[0][0], ngram_tagger.fnv1a(b"b", base))


class TrainingTest(unittest.TestCase):
    def test_learns_a_tiny_gazetteer(self):
        names = ["Alice", "Bob", "Carol", "Dave"]
        places = ["Paris", "Rome", "Oslo", "Lima"]
        sentences = []
        for i in range(160):
            name, place = names[i % 4], places[(i // 4) % 4]
            sentences.append([("yesterday", "O"), (name, "B-person"), ("went", "O"),
                              ("to", "O"), (place, "B-location"), ("!", "O")])
        with tempfile.TemporaryDirectory() as tmp:
            for file_name, part in (("train.conll", sentences), ("dev.conll", sentences[:24])):
                with open(os.path.join(tmp, file_name), "w") as f:
                    f.write("\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in part))
            out = os.path.join(tmp, "tiny.gguf")
            log = io.StringIO()
            with contextlib.redirect_stdout(log):
                code = train_entity_tagger.main([
                    "--data", tmp, "--out", out, "--name", "tiny", "--buckets", "4096",
                    "--dim", "8", "--epochs", "4", "--lr", "2e-2", "--seed", "3",
                    "--members", "2"])
            self.assertEqual(code, 0, log.getvalue())
            self.assertIn("F1 1.0000", log.getvalue().splitlines()[-1], log.getvalue())
            metadata = read_gguf(out, load_tensors=False).metadata
            self.assertEqual(metadata["general.architecture"], "ngram_tagger")
            self.assertEqual(metadata["slmgw.task"], "token_classification")
            self.assertEqual(list(metadata["slmgw.labels"]),
                             ["O", "B-location", "I-location", "B-person", "I-person"])


@unittest.skipUnless(os.path.exists(os.path.join(WNUT17, "dev.conll")),
                     f"{WNUT17} not found: set SLM_SHARED_DATA_DIR to the shared data folder")
class Wnut17ModelTest(unittest.TestCase):
    def test_wnut17_model_matches_its_card(self):
        stored = read_gguf(MODEL)
        meta = stored.metadata
        self.assertEqual(meta["general.architecture"], "ngram_tagger")
        self.assertLessEqual(os.path.getsize(MODEL), 6 * 1024 * 1024)
        labels = list(meta["slmgw.labels"])
        featurizer = ngram_tagger.Featurizer(meta["ngram_tagger.buckets"],
                                             meta["ngram_tagger.hash_seed"])
        sentences = train_wnut17.read_conll(os.path.join(WNUT17, "dev.conll"))
        predicted = []
        for sentence in sentences:
            words = [token.encode("utf-8") for token, _ in sentence]
            probabilities = ngram_tagger.probabilities(
                featurizer, stored.tensors, meta["ngram_tagger.activation"], words)
            predicted.append([labels[i] for i in probabilities.argmax(-1)])
        _, _, f1 = train_wnut17.entity_f1([[t for _, t in s] for s in sentences], predicted)
        self.assertGreaterEqual(f1, CARD_F1 - 0.002)


CARD_F1 = 0.2953  # models/entities-wnut17.md (choices made on a train slice, not dev)


if __name__ == "__main__":
    unittest.main()
