"""train_sentiment.py on a tiny synthetic data set, and the committed SST-2 model checked
against its model card (size, format, dev accuracy through the PyTorch reference)."""

import contextlib
import io
import os
import sys
import tempfile
import unittest

import numpy as np
import torch

import gguf_test_reader
from pyslm import bert, ngram
from pyslm.gguf_reader import read_gguf
from pyslm.wordpiece import WordPieceTokenizer

torch.set_num_threads(1)  # the build machine's cores are shared
TOOLS_DIR = os.path.join(os.path.dirname(os.path.abspath(bert.__file__)), "..")
sys.path.insert(0, os.path.join(TOOLS_DIR, "train"))
import train_sentiment  # noqa: E402
import train_sentiment_ngram  # noqa: E402

REPO_DIR = os.path.dirname(os.path.abspath(TOOLS_DIR))
MODEL = os.path.join(REPO_DIR, "models", "sentiment-sst2.gguf")
DATA_DIR = os.environ.get("SLM_SHARED_DATA_DIR", "")
VOCAB = os.path.join(DATA_DIR, "tokenizers", "ggml-vocab-bert-bge.gguf")
SST2_DEV = os.path.join(DATA_DIR, "sst2", "dev.tsv")
MIN_DEV_ACCURACY = 0.819  # measured 0.8211 (models/sentiment-sst2.md; chosen on a train slice)


def model_from_gguf(path):
    stored = read_gguf(path)
    metadata = stored.metadata
    config = bert.BertConfig(
        vocab_size=len(metadata["tokenizer.ggml.tokens"]),
        num_labels=len(metadata["slmgw.labels"]),
        hidden_size=metadata["bert.embedding_length"],
        num_layers=metadata["bert.block_count"],
        num_heads=metadata["bert.attention.head_count"],
        ffn_size=metadata["bert.feed_forward_length"],
        context_length=metadata["bert.context_length"],
        type_vocab_size=2 if "token_types.weight" in stored.tensors else 0,
        layer_norm_eps=metadata["bert.attention.layer_norm_epsilon"],
        task=metadata["slmgw.task"], pooling=metadata["slmgw.pooling"],
        use_pooler="cls.pooler.weight" in stored.tensors)
    model = bert.BertEncoder(config)
    model.load_state_dict({bert.gguf_to_module_name(name): torch.from_numpy(
        array.astype(np.float32)) for name, array in stored.tensors.items()})
    model.eval()
    return model, metadata


@unittest.skipUnless(os.path.exists(VOCAB),
                     f"{VOCAB} not found: set SLM_SHARED_DATA_DIR to the shared data folder")
class TrainTinyTest(unittest.TestCase):
    def test_learns_separable_data(self):
        positive = ["good", "great", "fun", "lovely", "superb"]
        negative = ["bad", "awful", "dull", "boring", "terrible"]
        rows = []
        for i in range(200):
            words = positive if i % 2 else negative
            rows.append(f"{i % 2}\tthe film was {words[i % 5]} and {words[(i // 2) % 5]} .")
        with tempfile.TemporaryDirectory() as tmp:
            for name, part in (("train.tsv", rows), ("dev.tsv", rows[:40])):
                with open(os.path.join(tmp, name), "w") as f:
                    f.write("label\tsentence\n" + "\n".join(part) + "\n")
            out = os.path.join(tmp, "tiny.gguf")
            log = io.StringIO()
            with contextlib.redirect_stdout(log):
                code = train_sentiment.main([
                    "--data", tmp, "--vocab", VOCAB, "--out", out, "--name", "tiny",
                    "--layers", "1", "--hidden", "16", "--heads", "2", "--ffn", "32",
                    "--context", "16", "--epochs", "6", "--batch-size", "16", "--lr", "3e-3", "--ema", "0",
                    "--seed", "7"])
            self.assertEqual(code, 0, log.getvalue())
            parsed = gguf_test_reader.parse_file(out)
            model, metadata = model_from_gguf(out)
        self.assertEqual(parsed["tensors"]["token_embd.weight"][1], 1)  # F16
        self.assertEqual(parsed["tensors"]["position_embd.weight"][1], 1)
        self.assertEqual(parsed["tensors"]["blk.0.attn_q.weight"][1], 0)  # F32
        self.assertEqual(metadata["slmgw.labels"], ["negative", "positive"])
        self.assertEqual(metadata["slmgw.pooling"], "mean")
        tokens = metadata["tokenizer.ggml.tokens"]
        for special in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "\u2581z", "z",
                        "\u2581superb", "\u2581boring"):
            self.assertIn(special, tokens)
        self.assertNotIn("\u2581cinema", tokens)  # pruned: not in the training text
        tokenizer = WordPieceTokenizer(tokens)
        good = model.forward_ids(tokenizer.encode("the film was great and fun ."))
        bad = model.forward_ids(tokenizer.encode("the film was dull and awful ."))
        self.assertEqual(int(good.argmax()), 1)
        self.assertEqual(int(bad.argmax()), 0)


class TrainNgramTinyTest(unittest.TestCase):
    """train_sentiment_ngram.py learns separable data; its members average into one model."""

    def test_learns_separable_data(self):
        rows = [("1", f"a great fun film {i}") for i in range(60)]
        rows += [("0", f"a dull awful film {i}") for i in range(60)]
        with tempfile.TemporaryDirectory() as tmp:
            for name, part in (("train.tsv", rows), ("dev.tsv", rows[::10])):
                with open(os.path.join(tmp, name), "w") as f:
                    f.write("label\tsentence\n" + "".join(f"{l}\t{t}\n" for l, t in part))
            out = os.path.join(tmp, "tiny.gguf")
            log = io.StringIO()
            with contextlib.redirect_stdout(log):
                code = train_sentiment_ngram.main([
                    "--data", tmp, "--out", out, "--buckets", "4096", "--dim", "4",
                    "--epochs", "3", "--batch-size", "8", "--lr", "5e-2", "--members", "2"])
            self.assertEqual(code, 0, log.getvalue())
            self.assertIn("dev accuracy 1.0000", log.getvalue().splitlines()[-1], log.getvalue())
            metadata = read_gguf(out, load_tensors=False).metadata
            self.assertEqual(metadata["general.architecture"], "ngram")
            self.assertEqual(metadata["ngram.dim"], 2)  # averaged members: one row per label
            with open(os.path.join(tmp, "bad.tsv"), "w") as f:
                f.write("label\tsentence\n7\thello\n")
            with self.assertRaisesRegex(ValueError, "bad.tsv:2"):
                train_sentiment_ngram.read_sst2(os.path.join(tmp, "bad.tsv"))


@unittest.skipUnless(os.path.exists(MODEL), f"{MODEL} not trained yet")
class CommittedModelTest(unittest.TestCase):
    """The committed model is the n-gram classifier (tools/train/train_sentiment_ngram.py) since
    it beat the from-scratch BERT (80.16 %) on dev."""

    def test_format_and_size(self):
        self.assertLessEqual(os.path.getsize(MODEL), 4 * 1024 * 1024)
        parsed = gguf_test_reader.parse_file(MODEL)
        metadata = {key: value for key, (_, value) in parsed["metadata"].items()}
        self.assertEqual(metadata["general.architecture"], "ngram")
        self.assertEqual(metadata["slmgw.task"], "text_classification")
        self.assertEqual(metadata["slmgw.labels"], (8, ["negative", "positive"]))
        self.assertEqual(parsed["tensors"]["token_embd.weight"][1], 1)  # f16

    @unittest.skipUnless(os.path.exists(SST2_DEV), f"{SST2_DEV} not found")
    def test_dev_accuracy(self):
        stored = read_gguf(MODEL)
        meta, tensors = stored.metadata, stored.tensors
        featurizer = ngram.Featurizer(meta["ngram.buckets"], meta["ngram.hash_seed"],
                                      meta["ngram.word_ngrams"], meta["ngram.char_ngram_min"],
                                      meta["ngram.char_ngram_max"])
        rows = train_sentiment.read_tsv(SST2_DEV)
        correct = sum(int(np.argmax(ngram.probabilities(
            featurizer, tensors["token_embd.weight"], tensors["output.weight"],
            tensors["output.bias"], text.encode("utf-8")))) == int(label) for label, text in rows)
        self.assertGreaterEqual(correct / len(rows), MIN_DEV_ACCURACY)


if __name__ == "__main__":
    unittest.main()
