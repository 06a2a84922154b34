"""End to end: slm-gateway with both learned routing tiers (a random n-gram fast tier and a random
BERT encoder tier), rules and out-of-domain detection; Route dry-run decisions over gRPC checked
against a Python re-derivation from the reference probabilities (tools/pyslm/ngram.py for the
fast tier, PyTorch for the encoder) and the policy in router/classification/route_policy.h."""
import os
import textwrap
import unittest

import numpy as np

import harness
from pyslm import bert
from pyslm.gguf_writer import GGUFWriter
from pyslm.ngram import Featurizer, probabilities
from slmgw.v1 import gateway_pb2
from slmgw.v1 import gateway_pb2_grpc
from slmgw.v1 import types_pb2

LABELS = ["bank", "travel", "oos"]
ROUTE_OF = {"bank": "banking", "travel": "travel"}
TEXTS = ["the movie was great", "a bad plot", "ada visited london", "paris in the film",
         "very good", "not bad and not great", "lovelace", "the the the", "is", "plot twist"]


def write_ngram(path, seed=5):
    rng = np.random.default_rng(seed)
    writer = GGUFWriter()
    writer.add_string("general.architecture", "ngram")
    writer.add_string_array("slmgw.labels", LABELS)
    hyper = {"buckets": 512, "dim": 8, "hash_seed": 99, "word_ngrams": 2, "char_ngram_min": 3,
             "char_ngram_max": 4}
    for key, value in hyper.items():
        writer.add_u32("ngram." + key, value)
    embeddings = rng.standard_normal((512, 8)).astype(np.float16)
    weight = (rng.standard_normal((3, 8)) * 2).astype(np.float32)
    bias = np.zeros(3, dtype=np.float32)
    writer.add_tensor("token_embd.weight", embeddings, "f16")
    writer.add_tensor("output.weight", weight)
    writer.add_tensor("output.bias", bias)
    writer.write(path)
    featurizer = Featurizer(512, 99, 2, 3, 4)
    return lambda text: probabilities(featurizer, embeddings, weight, bias, text)


class ClassificationEndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.temporary_directory()
        d = cls.tmp.name
        cls.fast = staticmethod(write_ngram(f"{d}/fast.gguf"))
        encoder, tokens = harness.write_model(f"{d}/encoder.gguf", bert.TEXT_CLASSIFICATION,
                                              LABELS, seed=3)
        harness.write_model(f"{d}/general.gguf", bert.TEXT_CLASSIFICATION, ["a", "b"], seed=4)
        cls.encoder = staticmethod(
            lambda text: harness.reference_probabilities(encoder, tokens, text))
        # Thresholds from the data, so that some texts escalate and some fall back.
        fast_tops = sorted(max(cls.fast(t)) for t in TEXTS)
        cls.fast_threshold = round(float(fast_tops[len(fast_tops) // 2]), 4)
        cls.banking_threshold = 0.45
        cls.ood_threshold = 0.4
        config = textwrap.dedent(f"""\
            workers:
              - name: general
                model_path: {d}/general.gguf
            pools:
              - name: shared
                endpoints: ["inprocess:general"]
            routes:
              - name: banking
                pool: shared
                confidence_threshold: {cls.banking_threshold}
                fallback: [big]
              - name: travel
                tasks: [trip]
                pool: shared
              - name: general
                pool: shared
              - name: big
                pool: shared
            default_route: general
            classification:
              rules:
                - name: iban
                  route: banking
                  keywords: [iban]
                - name: vip
                  route: travel
                  tenants: [vip]
                  patterns: ["^fly"]
              fast:
                model_path: fast.gguf
                threshold: {cls.fast_threshold}
                labels: {{bank: banking, travel: travel}}
              encoder:
                model_path: encoder.gguf
                dtype: f32
                labels: {{bank: banking, travel: travel}}
              out_of_domain:
                label: oos
                threshold: {cls.ood_threshold}
                route: general
            """)
        cls.config_path = f"{d}/gateway.yaml"
        with open(cls.config_path, "w") as f:
            f.write(config)
        cls.gateway = harness.Process("slm-gateway", ["--config", cls.config_path,
                                                      "--models_dir", d], d)
        cls.gateway.wait_ready()
        cls.stub = gateway_pb2_grpc.GatewayServiceStub(harness.channel(cls.gateway.address))

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()
        cls.tmp.cleanup()

    def route(self, text, **options):
        request = gateway_pb2.RouteRequest(text=text, options=types_pb2.RequestOptions(**options))
        return self.stub.Route(request, timeout=10).decision

    def expected(self, text):
        """(route, signal names, confidence) by route_policy.h's rules."""
        signals = ["rule", "fast"]
        probs = self.fast(text)
        top = int(np.argmax(probs))
        last = False
        if probs[top] < self.fast_threshold:
            signals.append("encoder")
            probs = self.encoder(text)
            top = int(np.argmax(probs))
            last = True
        label, p = LABELS[top], float(probs[top])
        if label == "oos":
            return "general", signals + ["out_of_domain"], p
        route = ROUTE_OF[label]
        threshold = self.banking_threshold if route == "banking" else self.ood_threshold
        if p < threshold:
            return ("big" if route == "banking" else "general"), signals + ["out_of_domain"], p
        return route, signals, p

    def test_learned_decisions_match_the_reference(self):
        seen = set()
        for text in TEXTS:
            decision = self.route(text)
            route, signals, confidence = self.expected(text)
            names = [s.name for s in decision.signals]
            with self.subTest(text=text, reason=decision.reason):
                self.assertEqual(decision.route, route)
                self.assertEqual(decision.pool, "shared")
                self.assertEqual(names, signals)
                self.assertAlmostEqual(decision.confidence, confidence, places=4)
                self.assertTrue(all(s.duration_ns > 0 for s in decision.signals))
            seen.add(tuple(signals))
        # The thresholds were chosen so that both paths occur.
        self.assertIn(("rule", "fast"), {s[:2] for s in seen})
        self.assertTrue(any("encoder" in s for s in seen), seen)

    def test_hints_tasks_and_rules_come_first(self):
        decision = self.route("my IBAN please")
        self.assertEqual((decision.route, [s.name for s in decision.signals]),
                         ("banking", ["rule"]))
        self.assertEqual(decision.reason, "rule 'iban' -> route 'banking'")
        self.assertEqual(self.route("fly me away", tenant="vip").route, "travel")
        self.assertNotEqual([s.name for s in self.route("fly me away").signals], ["rule"])
        self.assertEqual([s.name for s in self.route("iban", task="trip").signals], ["task"])
        self.assertEqual(self.route("iban", route_hint="big").route, "big")

    def test_classify_records_signal_metrics(self):
        request = gateway_pb2.ClassifyRequest(text=TEXTS[0])
        response = self.stub.Classify(request, timeout=10)
        route, signals, _ = self.expected(TEXTS[0])
        self.assertEqual(response.served_by.route, route)
        metrics = self.gateway.metrics()
        self.assertGreaterEqual(harness.metric_value(
            metrics, "slmgw_router_decisions_total", route=route, signal=signals[-1]), 1)
        self.assertGreaterEqual(harness.metric_value(
            metrics, "slmgw_router_classification_duration_seconds_count", signal="fast"), 1)
        self.assertGreaterEqual(harness.metric_value(
            metrics, "slmgw_router_confidence_ratio_count", signal="fast"), 1)

    def test_bad_classification_config_is_refused_at_start(self):
        d = self.tmp.name
        with open(self.config_path) as f:
            text = f.read()
        # The fast tier's label map (the first one) loses 'travel'.
        bad = text.replace("labels: {bank: banking, travel: travel}", "labels: {bank: banking}", 1)
        self.assertNotEqual(bad, text)
        path = f"{d}/bad.yaml"
        with open(path, "w") as f:
            f.write(bad)
        code, output = harness.run_to_exit("slm-gateway", [
            "--config", path, "--models_dir", d, "--listen", "127.0.0.1:0",
            "--metrics_listen", "127.0.0.1:0"])
        self.assertNotEqual(code, 0)
        self.assertIn("has label 'travel' with no route", output)


@unittest.skipUnless(os.path.exists(os.path.join(os.environ.get("SLM_MODELS_DIR", ""),
                                                 "router-clinc150-ngram.gguf")),
                     "models/router-clinc150-ngram.gguf not present")
class TrainedRouterModelTest(unittest.TestCase):
    def test_domains_route_where_expected(self):
        models = os.environ["SLM_MODELS_DIR"]
        with harness.temporary_directory() as d:
            config = textwrap.dedent(f"""\
                workers: [{{name: w, model_path: {models}/sentiment-sst2.gguf}}]
                pools: [{{name: p, endpoints: ["inprocess:w"]}}]
                routes:
                  - {{name: banking, pool: p}}
                  - {{name: travel, pool: p}}
                  - {{name: general, pool: p}}
                default_route: general
                classification:
                  fast:
                    model_path: router-clinc150-ngram.gguf
                    labels: {{auto_and_commute: general, banking: banking, credit_cards: banking,
                              home: general, kitchen_and_dining: general, meta: general,
                              small_talk: general, travel: travel, utility: general,
                              work: general}}
                  out_of_domain: {{label: oos, threshold: 0.5, route: general}}
                """)
            path = f"{d}/gateway.yaml"
            with open(path, "w") as f:
                f.write(config)
            gateway = harness.Process("slm-gateway", ["--config", path, "--models_dir", models],
                                      d).wait_ready()
            try:
                stub = gateway_pb2_grpc.GatewayServiceStub(harness.channel(gateway.address))
                for text, route in [("how much money is in my checking account", "banking"),
                                    ("book me a flight to paris next week", "travel"),
                                    ("what is the capital of the moon's tallest volcano",
                                     "general")]:
                    decision = stub.Route(gateway_pb2.RouteRequest(text=text), timeout=10).decision
                    self.assertEqual(decision.route, route, decision.reason)
            finally:
                gateway.stop()


if __name__ == "__main__":
    unittest.main()
