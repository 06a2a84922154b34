"""slmctl eval against a real slm-gateway with tiny random models: the report's arithmetic
(accuracy, route accuracy, entity precision/recall/F1, specialist share, percentiles) is
checked against answers predicted by the PyTorch reference (tools/pyslm/bert.py)."""
import json
import os
import subprocess
import textwrap
import unittest

import torch

import harness
from pyslm import bert

SENTIMENT = ["negative", "positive"]
ENTITY_TYPES = ["person", "location"]
SENTENCES = ["the movie was great and the plot was good", "ada lovelace visited london",
             "paris is not very bad", "a film in paris and london", "the plot is terrible",
             "ada visited paris and the film was very good"]


def config(models_dir):
    return textwrap.dedent(f"""\
        limits:
          default_deadline_ms: 10000
        workers:
          - name: sentiment
            model_path: {models_dir}/tiny-sentiment.gguf
            dtype: f32
          - name: entities
            model_path: {models_dir}/tiny-entities.gguf
            dtype: f32
        pools:
          - name: sentiment
            endpoints: ["inprocess:sentiment"]
          - name: entities
            endpoints: ["inprocess:entities"]
        routes:
          - name: sentiment
            tasks: [sentiment]
            pool: sentiment
          - name: entities
            tasks: [entities]
            pool: entities
        default_route: sentiment
        """)


def reference_label(model, tokens, text):
    probabilities = harness.reference_probabilities(model, tokens, text)
    return SENTIMENT[max(range(len(probabilities)), key=probabilities.__getitem__)]


def reference_chunks(model, tokens, words):
    """The worker's BIO decoding (workers/encoder/bio.h) over single-piece words: the argmax
    label of each word, O ends, B- starts, I-x extends an open x, else starts."""
    ids = [tokens.index("[CLS]")] + [tokens.index("\u2581" + w) for w in words] + \
        [tokens.index("[SEP]")]
    best = model.forward_ids(ids)[1:-1].argmax(-1).tolist()
    chunks, open_type = [], None
    for i, label in enumerate(harness.ENTITY_LABELS[b] for b in best):
        if label == "O":
            open_type = None
            continue
        tag, kind = label.split("-", 1)
        if tag == "B" or open_type != kind:
            chunks.append([kind, i, i])
            open_type = kind
        else:
            chunks[-1][2] = i
    return [tuple(c) for c in chunks]


def tags_for(chunks, length):
    tags = ["O"] * length
    for kind, first, last in chunks:
        tags[first] = f"B-{kind}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{kind}"
    return tags


class SlmctlEvalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.temporary_directory()
        d = cls.tmp.name
        cls.sentiment, cls.tokens = harness.write_model(
            f"{d}/tiny-sentiment.gguf", bert.TEXT_CLASSIFICATION, SENTIMENT, seed=11)
        cls.entities, _ = harness.write_model(f"{d}/tiny-entities.gguf",
                                              bert.TOKEN_CLASSIFICATION, harness.ENTITY_LABELS,
                                              seed=12)
        with open(f"{d}/gateway.yaml", "w") as f:
            f.write(config(d))
        cls.gateway = harness.Process("slm-gateway", ["--config", f"{d}/gateway.yaml"], d)
        cls.gateway.wait_ready()

    @classmethod
    def tearDownClass(cls):
        code = cls.gateway.stop()
        cls.tmp.cleanup()
        assert code == 0, f"slm-gateway exited with {code}"

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def slmctl(self, *args):
        result = subprocess.run(
            [os.path.join(harness.BUILD_DIR, "slmctl"), "--target", self.gateway.address]
            + list(args), capture_output=True, timeout=120)
        return result.returncode, result.stdout.decode(), result.stderr.decode()

    def eval_json(self, *args):
        code, out, err = self.slmctl("eval", "--json", *args)
        self.assertEqual(code, 0, err)
        return json.loads(out)

    def test_sst2_accuracy_and_route_accuracy(self):
        # Every third sentence carries the wrong label: accuracy 4/6 exactly.
        rows = []
        for i, text in enumerate(SENTENCES):
            label = SENTIMENT.index(reference_label(self.sentiment, self.tokens, text))
            rows.append(f"{label if i % 3 else 1 - label}\t{text}")
        with open(self.path("dev.tsv"), "w") as f:
            f.write("label\tsentence\n" + "\n".join(rows) + "\n")
        report = self.eval_json("--format", "sst2", "--task", "sentiment",
                                "--expect_route", "sentiment", self.path("dev.tsv"))
        self.assertEqual(report["requests"], 6)
        self.assertEqual(report["errors"], 0)
        self.assertEqual(report["label"], {"judged": 6, "correct": 4, "accuracy": 4 / 6})
        self.assertEqual(report["route"]["correct"], 6)
        self.assertEqual(report["served_by"], {"specialist": 6, "fallback": 0,
                                               "specialist_share": 1.0})
        self.assertEqual(report["requests_by_route"], {"sentiment": 6})
        latency = report["latency_ms"]
        self.assertGreater(latency["p50"], 0)
        self.assertLessEqual(latency["p50"], latency["p90"])
        self.assertLessEqual(latency["p90"], latency["p99"])
        self.assertLessEqual(latency["p99"], latency["max"])
        # --limit and a wrong expected route.
        report = self.eval_json("--format", "sst2", "--task", "sentiment", "--limit", "2",
                                "--expect_route", "entities", self.path("dev.tsv"))
        self.assertEqual(report["requests"], 2)
        self.assertEqual(report["route"], {"judged": 2, "correct": 0, "accuracy": 0.0})
        code, out, _ = self.slmctl("eval", "--format", "sst2", "--task", "sentiment",
                                   self.path("dev.tsv"))
        self.assertEqual(code, 0)
        self.assertIn("label accuracy         0.6667 (4/6)", out)
        self.assertIn("latency ms", out)

    def test_conll_entity_f1(self):
        gold_total = predicted_total = true_positive = 0
        blocks = []
        for i, text in enumerate(SENTENCES):
            words = text.split()
            predicted = reference_chunks(self.entities, self.tokens, words)
            gold = list(predicted)
            if i % 2 == 1 and gold:
                gold = gold[1:]  # an entity the gold lacks: a false positive
            if i % 3 == 0:
                gold.append(("person", len(words) - 1, len(words) - 1))  # maybe a miss
            gold = sorted(set(gold), key=lambda c: c[1])
            # Keep gold chunks disjoint so that they survive the BIO round trip.
            disjoint = []
            for chunk in gold:
                if not disjoint or chunk[1] > disjoint[-1][2]:
                    disjoint.append(chunk)
            predicted_total += len(set(predicted))
            gold_total += len(disjoint)
            true_positive += len(set(predicted) & set(disjoint))
            blocks.append("\n".join(f"{w}\t{t}" for w, t in
                                    zip(words, tags_for(disjoint, len(words)))))
        with open(self.path("dev.conll"), "w") as f:
            f.write("\n\n".join(blocks) + "\n")
        report = self.eval_json("--format", "conll", "--task", "entities", self.path("dev.conll"))
        entities = report["entities"]
        self.assertEqual(entities["sentences"], len(SENTENCES))
        self.assertEqual((entities["true_positive"], entities["gold"], entities["predicted"]),
                         (true_positive, gold_total, predicted_total))
        precision = true_positive / predicted_total if predicted_total else 0.0
        recall = true_positive / gold_total if gold_total else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        self.assertAlmostEqual(entities["f1"], f1, places=9)
        self.assertEqual(report["label"]["judged"], 0)

    def test_mixed_workload(self):
        text = SENTENCES[0]
        label = reference_label(self.sentiment, self.tokens, text)
        rows = [{"text": text, "task": "sentiment", "expected_route": "sentiment",
                 "expected_label": label},
                {"text": text, "expected_route": "entities", "expected_label": label},
                {"text": SENTENCES[1], "task": "entities", "rpc": "entities",
                 "expected_route": "entities"},
                {"text": SENTENCES[2], "task": "nonexistent-task"}]
        with open(self.path("mixed.jsonl"), "w") as f:
            f.write("\n".join(json.dumps(row) for row in rows) + "\n")
        report = self.eval_json("--format", "mixed", self.path("mixed.jsonl"))
        self.assertEqual(report["requests"], 4)
        ok = report["requests"] - report["errors"]
        self.assertEqual(report["served_by"]["specialist"] + report["served_by"]["fallback"], ok)
        # Row 2 goes to the default route (sentiment): right label, wrong route.
        self.assertEqual(report["route"]["judged"], 3)
        self.assertEqual(report["route"]["correct"], 2)
        self.assertEqual(report["label"], {"judged": 2, "correct": 2, "accuracy": 1.0})
        self.assertEqual(report["entities"]["sentences"], 1)

    def test_classify_prints_the_answer_of_the_top_label(self):
        with open(self.path("answers.json"), "w") as f:
            json.dump({"negative": "Sorry to hear that.", "positive": "Glad you liked it."}, f)
        text = SENTENCES[2]
        expected = {"negative": "Sorry to hear that.", "positive": "Glad you liked it."}[
            reference_label(self.sentiment, self.tokens, text)]
        code, out, err = self.slmctl("classify", "--task", "sentiment", "--answers",
                                     self.path("answers.json"), text)
        self.assertEqual(code, 0, err)
        self.assertIn(f"answer: {expected}\n", out)
        code, out, err = self.slmctl("classify", "--json", "--task", "sentiment", "--answers",
                                     self.path("answers.json"), text)
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["answer"], expected)
        with open(self.path("answers-bad.json"), "w") as f:
            f.write("[1, 2]")
        code, _, err = self.slmctl("classify", "--task", "sentiment", "--answers",
                                   self.path("answers-bad.json"), text)
        self.assertEqual(code, 2)
        self.assertIn("expected a JSON object", err)

    def test_bad_input(self):
        cases = {
            "bad.tsv": ("label\ttext\nno tab here\n", "sst2", "bad.tsv:2"),
            "bad-label.tsv": ("label\ttext\n7\thello\n", "sst2", "no name in --labels"),
            "bad.csv": ("text,category\n\"unterminated,x\n", "banking77", "unterminated"),
            "bad-header.csv": ("words,intent\nhi,card\n", "banking77", "header"),
            "bad.jsonl": ('{"text": "hi"}\nnot json\n', "mixed", "bad.jsonl:2"),
            "bad-rpc.jsonl": ('{"text": "hi", "rpc": "generate"}\n', "mixed", "rpc"),
            "bad-clinc.jsonl": ('{"text": "hi", "intent": "x"}\n', "clinc150", "domain"),
            "bad.conll": ("word\tX-person\n", "conll", "BIO tag"),
            "empty.conll": ("\n\n", "conll", "no examples"),
        }
        for name, (content, file_format, message) in cases.items():
            with self.subTest(name=name):
                with open(self.path(name), "w") as f:
                    f.write(content)
                code, _, err = self.slmctl("eval", "--format", file_format, self.path(name))
                self.assertEqual(code, 2)
                self.assertIn(message, err)
        code, _, err = self.slmctl("eval", "--format", "xml", self.path("bad.tsv"))
        self.assertEqual(code, 2)
        self.assertIn("--format must be", err)
        code, _, err = self.slmctl("eval", "--format", "sst2", self.path("missing.tsv"))
        self.assertEqual(code, 2)
        self.assertIn("cannot open", err)


@unittest.skipUnless(os.path.exists(os.path.join(os.environ.get("SLM_MODELS_DIR", ""),
                                                 "banking77-intent.gguf")),
                     "SLM_MODELS_DIR has no banking77-intent.gguf")
class DefaultBankingRouteTest(unittest.TestCase):
    """The embedded default routes task "banking" to the Banking77 specialist; slmctl prints
    the intent's answer from models/banking77-answers.json."""

    def test_banking_questions_get_their_intent_and_answer(self):
        models = os.environ["SLM_MODELS_DIR"]
        with open(os.path.join(models, "banking77-answers.json")) as f:
            answers = json.load(f)
        with harness.temporary_directory() as d:
            gateway = harness.Process("slm-gateway", [], d).wait_ready()
            try:
                for text, intent in (("I lost my card, someone may have stolen it",
                                      "lost_or_stolen_card"),
                                     ("my new card still has not arrived", "card_arrival")):
                    result = subprocess.run(
                        [os.path.join(harness.BUILD_DIR, "slmctl"), "--target",
                         gateway.address, "classify", "--json", "--task", "banking",
                         "--answers", os.path.join(models, "banking77-answers.json"), text],
                        capture_output=True, timeout=60)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    response = json.loads(result.stdout)
                    self.assertEqual(response["labels"][0]["label"], intent)
                    self.assertEqual(response["answer"], answers[intent])
                    self.assertEqual(response["served_by"]["route"], "banking")
            finally:
                self.assertEqual(gateway.stop(), 0)


if __name__ == "__main__":
    torch.set_num_threads(1)
    unittest.main()
