"""The specialists' training tools: train_sentiment.py's banking77 / clinc150-domain readers,
train_wnut17.py (seqeval arithmetic, CoNLL reading, BIO alignment, a tiny run), and the
committed specialist models checked against their model cards through the PyTorch reference."""

import contextlib
import csv
import io
import json
import os
import sys
import tempfile
import unittest

import torch

import gguf_test_reader
from pyslm import bert
from pyslm.wordpiece import WordPieceTokenizer

torch.set_num_threads(1)  # the build machine's cores are shared
TOOLS_DIR = os.path.join(os.path.dirname(os.path.abspath(bert.__file__)), "..")
sys.path.insert(0, os.path.join(TOOLS_DIR, "train"))
import train_sentiment  # noqa: E402
import train_wnut17  # noqa: E402
from test_train_sentiment import model_from_gguf  # noqa: E402

REPO_DIR = os.path.dirname(os.path.abspath(TOOLS_DIR))
DATA_DIR = os.environ.get("SLM_SHARED_DATA_DIR", "")
VOCAB = os.path.join(DATA_DIR, "tokenizers", "ggml-vocab-bert-bge.gguf")


class SeqevalTest(unittest.TestCase):
    def test_entity_spans_follow_seqeval(self):
        tags = ["B-person", "I-person", "O", "I-location", "I-location", "B-location",
                "I-person", "B-group"]
        self.assertEqual(train_wnut17.entity_spans(tags), {
            ("person", 0, 1), ("location", 3, 4), ("location", 5, 5), ("person", 6, 6),
            ("group", 7, 7)})

    def test_f1_by_hand(self):
        gold = [["B-person", "I-person", "O", "B-location"], ["O", "B-group"]]
        predicted = [["B-person", "O", "O", "B-location"], ["O", "B-group"]]
        # gold spans 3, predicted 3, exact matches 2 (the truncated person is wrong).
        precision, recall, f1 = train_wnut17.entity_f1(gold, predicted)
        self.assertAlmostEqual(precision, 2 / 3)
        self.assertAlmostEqual(recall, 2 / 3)
        self.assertAlmostEqual(f1, 2 / 3)
        self.assertEqual(train_wnut17.entity_f1([["O"]], [["O"]]), (0.0, 0.0, 0.0))


class ReadersTest(unittest.TestCase):
    def test_conll_and_its_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "a.conll")
            with open(path, "w") as f:
                f.write("Ada\tB-person\nsaid\tO\n\n\nhi\tO\n")
            self.assertEqual(train_wnut17.read_conll(path),
                             [[("Ada", "B-person"), ("said", "O")], [("hi", "O")]])
            with open(path, "w") as f:
                f.write("Ada\tB-person\nno-tag-here\n")
            with self.assertRaisesRegex(ValueError, "a.conll:2: expected token<TAB>tag"):
                train_wnut17.read_conll(path)

    def test_banking77_split_is_stratified_and_disjoint(self):
        rows = [(f"intent{i % 3}", f"text {i}") for i in range(60)]
        train, val = train_sentiment.stratified_split(rows, 0.1, seed=5)
        self.assertEqual(len(val), 6)  # 2 of each intent's 20
        self.assertEqual(sorted(label for label, _ in val), ["intent0"] * 2 + ["intent1"] * 2
                         + ["intent2"] * 2)
        self.assertEqual(sorted(train + val), sorted(rows))
        self.assertEqual(train_sentiment.stratified_split(rows, 0.1, seed=5), (train, val))

    def test_banking77_reader(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "categories.json"), "w") as f:
                json.dump(["card_arrival", "age_limit"], f)
            with open(os.path.join(tmp, "train.csv"), "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["text", "category"])
                for i in range(20):
                    writer.writerow([f"where is my card, number {i}?", "card_arrival"])
                    writer.writerow([f"how old must I be {i}", "age_limit"])
            labels, train, val = train_sentiment.read_banking77(tmp, 0.1, 1)
            self.assertEqual(labels, ["card_arrival", "age_limit"])
            self.assertEqual((len(train), len(val)), (36, 4))
            for label, text in train + val:  # quoted commas kept
                self.assertEqual(label == "card_arrival", text.startswith("where is my card, "))
            with open(os.path.join(tmp, "train.csv"), "a") as f:
                f.write("hello,unknown_intent\n")
            with self.assertRaisesRegex(ValueError, "train.csv:42: expected text,category"):
                train_sentiment.read_banking77(tmp, 0.1, 1)


@unittest.skipUnless(os.path.exists(VOCAB),
                     f"{VOCAB} not found: set SLM_SHARED_DATA_DIR to the shared data folder")
class Wnut17TinyTest(unittest.TestCase):
    def test_alignment_labels_first_pieces(self):
        tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "\u2581ada", "\u2581@",
                  "\u2581user", "\u2581_", "\u2581x", "\u2581said", "\u2581love", "lace"]
        tokenizer = WordPieceTokenizer(tokens)
        labels = ["O", "B-person", "I-person"]
        index = {label: i for i, label in enumerate(labels)}
        ids, targets, firsts = train_wnut17.encode_sentence(
            tokenizer, [("Ada", "B-person"), ("Lovelace", "I-person"), ("@user_x", "O"),
                        ("said", "O")], index, 64)
        pieces = [tokens[i] for i in ids]
        self.assertEqual(pieces, ["[CLS]", "\u2581ada", "\u2581love", "lace", "\u2581@",
                                  "\u2581user", "\u2581_", "\u2581x", "\u2581said", "[SEP]"])
        self.assertEqual(targets, [-100, 1, 2, -100, 0, 0, 0, 0, 0, -100])
        self.assertEqual(firsts, [1, 2, 4, 8])

    def test_learns_a_tiny_gazetteer(self):
        names = ["alice", "bob", "carol", "dave"]
        places = ["paris", "rome", "oslo", "lima"]
        sentences = []
        for i in range(120):
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
                code = train_wnut17.main([
                    "--data", tmp, "--vocab", VOCAB, "--out", out, "--name", "tiny",
                    "--layers", "1", "--hidden", "16", "--heads", "2", "--ffn", "32",
                    "--context", "32", "--epochs", "8", "--batch-size", "8", "--lr", "5e-3",
                    "--ema", "0", "--seed", "3"])
            self.assertEqual(code, 0, log.getvalue())
            self.assertIn("F1 1.0000", log.getvalue().splitlines()[-1], log.getvalue())
            model, metadata = model_from_gguf(out)
            self.assertEqual(metadata["slmgw.task"], bert.TOKEN_CLASSIFICATION)
            self.assertEqual(list(metadata["slmgw.labels"]),
                             ["O", "B-location", "I-location", "B-person", "I-person"])
            self.assertEqual(gguf_test_reader.parse_file(out)["tensors"]["token_embd.weight"][1],
                             1)


BANKING77 = os.path.join(DATA_DIR, "banking77")
BANKING77_MODEL = os.path.join(REPO_DIR, "models", "banking77-intent.gguf")
BANKING77_ANSWERS = os.path.join(REPO_DIR, "models", "banking77-answers.json")


@unittest.skipUnless(os.path.exists(os.path.join(BANKING77, "train.csv")),
                     f"{BANKING77} not found: set SLM_SHARED_DATA_DIR to the shared data folder")
class Banking77ModelTest(unittest.TestCase):
    """models/banking77-intent.gguf against its model card (87.04 % on the held-out split)."""

    def test_labels_answers_and_validation_accuracy(self):
        labels, _, val = train_sentiment.read_banking77(BANKING77, 0.1, 1234)
        model, metadata = model_from_gguf(BANKING77_MODEL)
        self.assertEqual(list(metadata["slmgw.labels"]), labels)
        with open(BANKING77_ANSWERS) as f:
            answers = json.load(f)
        self.assertEqual(sorted(answers), sorted(labels))
        self.assertTrue(all(isinstance(a, str) and 10 < len(a) < 300 for a in answers.values()))
        self.assertEqual(len(val), 1003)
        tokenizer = WordPieceTokenizer(metadata["tokenizer.ggml.tokens"])
        examples = [(tokenizer.encode(text, model.config.context_length), labels.index(label))
                    for label, text in val]
        predictions = train_sentiment.predict(model, examples, tokenizer.ids["[PAD]"])
        self.assertGreaterEqual(train_sentiment.accuracy(predictions, examples), 0.86)


WNUT17 = os.path.join(DATA_DIR, "wnut17")
CLINC150 = os.path.join(DATA_DIR, "clinc150")


@unittest.skipUnless(os.path.exists(os.path.join(WNUT17, "dev.conll")),
                     f"{WNUT17} not found: set SLM_SHARED_DATA_DIR to the shared data folder")
class SpecialistModelsTest(unittest.TestCase):
    # models/entities-wnut17.gguf is the hashed-feature tagger now: test_train_entity_tagger.py
    # checks it against its card.

    @unittest.skipUnless(os.path.exists(os.path.join(CLINC150, "domains.json")), "no clinc150")
    def test_clinc150_encoder_labels_are_the_intents(self):
        _, metadata = model_from_gguf(os.path.join(REPO_DIR, "models",
                                                   "router-clinc150-encoder.gguf"))
        with open(os.path.join(CLINC150, "domains.json")) as f:
            intents = {i for domain in json.load(f).values() for i in domain}
        self.assertEqual(sorted(metadata["slmgw.labels"]), sorted(intents | {"oos"}))
        self.assertEqual(len(intents), 150)


if __name__ == "__main__":
    unittest.main()
