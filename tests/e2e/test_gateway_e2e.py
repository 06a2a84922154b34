"""End to end: slm-gateway, slm-router and slm-worker as real processes on loopback, called by
Python grpcio, by slmctl and over HTTP for /metrics."""
import json
import os
import signal
import subprocess
import textwrap
import threading
import time
import unittest

import grpc

import harness
import health_pb2
import health_pb2_grpc
import reflection_pb2
import reflection_pb2_grpc
from pyslm import bert
from slmgw.v1 import gateway_pb2
from slmgw.v1 import gateway_pb2_grpc
from slmgw.v1 import types_pb2


def all_in_one_config(models_dir, max_text_bytes=4096, slow_model=None):
    workers = textwrap.dedent(f"""\
        workers:
          - name: sentiment
            model_path: {models_dir}/tiny-sentiment.gguf
            dtype: f32
            concurrency: 2
          - name: entities
            model_path: {models_dir}/tiny-entities.gguf
            dtype: int8
        """)
    pools = textwrap.dedent("""\
        pools:
          - name: sentiment
            endpoints: ["inprocess:sentiment"]
          - name: entities
            endpoints: ["inprocess:entities"]
        """)
    routes = textwrap.dedent("""\
        routes:
          - name: sentiment
            tasks: [sentiment]
            pool: sentiment
          - name: entities
            tasks: [entities, ner]
            pool: entities
        """)
    if slow_model:
        workers += textwrap.indent(textwrap.dedent(f"""\
            - name: slow
              model_path: {slow_model}
              dtype: f32
            """), "  ")
        pools += '  - name: slow\n    endpoints: ["inprocess:slow"]\n'
        routes += "  - name: slow\n    tasks: [slow]\n    pool: slow\n"
    return (f"limits:\n  max_text_bytes: {max_text_bytes}\n  default_deadline_ms: 10000\n"
            + workers + pools + routes + "default_route: sentiment\n")


class AllInOneTest(unittest.TestCase):
    """One slm-gateway for the whole class: every request kind, errors, metrics, slmctl."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.temporary_directory()
        d = cls.tmp.name
        cls.sentiment_model, cls.tokens = harness.write_model(
            f"{d}/tiny-sentiment.gguf", bert.TEXT_CLASSIFICATION, ["negative", "positive"])
        harness.write_model(f"{d}/tiny-entities.gguf", bert.TOKEN_CLASSIFICATION,
                            harness.ENTITY_LABELS, seed=2)
        # Big enough that a 20 ms deadline expires while the worker computes.
        harness.write_model(f"{d}/slow.gguf", bert.TEXT_CLASSIFICATION, ["a", "b"], layers=8,
                            hidden=256, heads=4, ffn=1024, context=512, seed=3)
        cls.config_path = f"{d}/gateway.yaml"
        with open(cls.config_path, "w") as f:
            f.write(all_in_one_config(d, slow_model=f"{d}/slow.gguf"))
        cls.gateway = harness.Process("slm-gateway", ["--config", cls.config_path], d)
        cls.gateway.wait_ready()
        cls.channel = harness.channel(cls.gateway.address)
        cls.stub = gateway_pb2_grpc.GatewayServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code = cls.gateway.stop()
        cls.tmp.cleanup()
        assert code == 0, f"slm-gateway exited with {code}"

    def classify(self, text, timeout=10, **options):
        request = gateway_pb2.ClassifyRequest(text=text,
                                              options=types_pb2.RequestOptions(**options))
        return self.stub.Classify(request, timeout=timeout)

    def test_classify_matches_the_pytorch_reference(self):
        text = "The film was great, not bad!"
        response = self.classify(text, task="sentiment")
        self.assertEqual(len(response.labels), 2)
        expected = harness.reference_probabilities(self.sentiment_model, self.tokens, text)
        for label in response.labels:
            index = ["negative", "positive"].index(label.label)
            self.assertAlmostEqual(label.score, expected[index], delta=1e-4)
        self.assertGreaterEqual(response.labels[0].score, response.labels[1].score)
        served = response.served_by
        self.assertEqual(served.route, "sentiment")
        self.assertEqual(served.model, "sentiment")
        self.assertEqual(served.worker, "inprocess:sentiment")
        self.assertAlmostEqual(served.confidence, response.labels[0].score, places=6)
        self.assertFalse(served.fell_back)
        self.assertEqual(served.usage.input_tokens, 10)  # [CLS] 8 pieces [SEP]
        self.assertGreater(served.timings.total_us, 0)
        self.assertGreaterEqual(served.timings.total_us, served.timings.compute_us)

    def test_default_route_and_route_hint(self):
        self.assertEqual(self.classify("a good movie").served_by.route, "sentiment")
        self.assertEqual(self.classify("a good movie", route_hint="sentiment").served_by.route,
                         "sentiment")

    def test_entities_have_code_point_spans(self):
        text = "Ada Lovelace visited Paris — and London é"
        request = gateway_pb2.ExtractEntitiesRequest(
            text=text, options=types_pb2.RequestOptions(task="ner"))
        response = self.stub.ExtractEntities(request, timeout=10)
        self.assertEqual(response.served_by.route, "entities")
        self.assertEqual(response.served_by.model, "entities")
        for entity in response.entities:
            self.assertIn(entity.label, ["person", "location"])
            self.assertLess(entity.start, entity.end)
            self.assertEqual(text[entity.start:entity.end], entity.text)
            self.assertGreater(entity.score, 0.0)

    def test_route_dry_run_explains_itself(self):
        request = gateway_pb2.RouteRequest(text="x", options=types_pb2.RequestOptions(task="ner"))
        decision = self.stub.Route(request, timeout=10).decision
        self.assertEqual((decision.route, decision.pool), ("entities", "entities"))
        self.assertEqual([s.name for s in decision.signals], ["task"])
        self.assertIn("ner", decision.reason)

    def test_bad_requests_get_clear_errors(self):
        cases = [
            (dict(text=""), grpc.StatusCode.INVALID_ARGUMENT, "empty"),
            (dict(text="x" * 4097), grpc.StatusCode.INVALID_ARGUMENT, "4096"),
            (dict(text="hi", task="translate"), grpc.StatusCode.NOT_FOUND, "translate"),
            (dict(text="hi", route_hint="nowhere"), grpc.StatusCode.NOT_FOUND, "nowhere"),
        ]
        for kwargs, code, fragment in cases:
            text = kwargs.pop("text")
            with self.assertRaises(grpc.RpcError) as caught:
                self.classify(text, **kwargs)
            self.assertEqual(caught.exception.code(), code)
            self.assertIn(fragment, caught.exception.details())
        # Classification on the token-classification model is refused by the worker.
        with self.assertRaises(grpc.RpcError) as caught:
            self.classify("ada", task="ner")
        self.assertEqual(caught.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        # Generation on a route whose worker serves a classifier is refused by the worker.
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.Generate(gateway_pb2.GenerateRequest(prompt="hello"), timeout=10)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("cannot generate text", caught.exception.details())
        # The server is still fine.
        self.assertEqual(len(self.classify("still alive").labels), 2)

    def test_deadline_expires_and_the_worker_stops(self):
        before = harness.metric_value(self.gateway.metrics(), "slmgw_worker_requests_total",
                                      model="slow", outcome="deadline_exceeded") or 0
        long_text = " ".join(["good"] * 500)  # 502 tokens: tens of ms on the slow model
        with self.assertRaises(grpc.RpcError) as caught:
            self.classify(long_text, task="slow", timeout=0.02)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        deadline = time.monotonic() + 10
        after = before
        while time.monotonic() < deadline and after == before:
            time.sleep(0.05)
            after = harness.metric_value(self.gateway.metrics(), "slmgw_worker_requests_total",
                                         model="slow", outcome="deadline_exceeded") or 0
        self.assertEqual(after, before + 1, "the worker did not stop the expired request")

    def test_too_many_tokens_is_invalid_argument(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.classify(" ".join(["good"] * 200), task="sentiment")  # context is 128
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("128", caught.exception.details())

    def test_health_and_reflection(self):
        health = health_pb2_grpc.HealthStub(self.channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        self.assertEqual(reply.status, health_pb2.HealthCheckResponse.SERVING)
        reflection = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
        services = [s.name for r in responses for s in r.list_services_response.service]
        self.assertIn("slmgw.v1.GatewayService", services)

    def test_metrics_count_requests_by_route_model_and_outcome(self):
        before = harness.metric_value(self.gateway.metrics(), "slmgw_router_requests_total",
                                      route="sentiment", model="sentiment", outcome="ok") or 0
        for _ in range(3):
            self.classify("good film", task="sentiment")
        text = self.gateway.metrics()
        after = harness.metric_value(text, "slmgw_router_requests_total", route="sentiment",
                                     model="sentiment", outcome="ok")
        self.assertEqual(after, before + 3)
        for name in ["slmgw_router_request_duration_seconds_count",
                     "slmgw_router_overhead_seconds_count", "slmgw_router_in_flight",
                     "slmgw_worker_requests_total", "slmgw_worker_compute_duration_seconds_count",
                     "slmgw_worker_queue_depth", "slmgw_worker_tokens_total"]:
            self.assertIsNotNone(harness.metric_value(text, name), name)

    def test_slmctl(self):
        target = ["--target", self.gateway.address]
        code, out = harness.run_to_exit("slmctl", ["classify", "--task", "sentiment"] + target
                                        + ["a great film"])
        self.assertEqual(code, 0, out)
        self.assertIn("route=sentiment", out)
        code, out = harness.run_to_exit("slmctl", ["classify", "--json"] + target + ["bad"])
        self.assertEqual(code, 0, out)
        parsed = json.loads(out)
        self.assertEqual(len(parsed["labels"]), 2)
        self.assertEqual(parsed["served_by"]["route"], "sentiment")
        code, out = harness.run_to_exit("slmctl", ["entities", "--task", "ner"] + target
                                        + ["ada in london"])
        self.assertEqual(code, 0, out)
        self.assertIn("route=entities", out)
        code, out = harness.run_to_exit("slmctl", ["route", "--task", "ner"] + target + ["x"])
        self.assertEqual(code, 0, out)
        self.assertIn("route=entities", out)
        code, out = harness.run_to_exit("slmctl", ["health"] + target)
        self.assertEqual((code, out.strip()), (0, "SERVING"))
        code, out = harness.run_to_exit("slmctl", ["classify", "--task", "nope"] + target + ["x"])
        self.assertEqual(code, 1)
        self.assertIn("NOT_FOUND", out)
        code, out = harness.run_to_exit("slmctl", ["validate-config", self.config_path])
        self.assertEqual(code, 0, out)


class LifecycleTest(unittest.TestCase):
    """Split deployment, worker failure, graceful drain, bad configs and bad model files."""

    def setUp(self):
        self.tmp = harness.temporary_directory()
        self.dir = self.tmp.name
        self.model, self.tokens = harness.write_model(
            f"{self.dir}/tiny-sentiment.gguf", bert.TEXT_CLASSIFICATION, ["negative", "positive"])

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = f"{self.dir}/{name}"
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_router_and_worker_processes_and_a_worker_that_dies(self):
        worker_config = self.write("worker.yaml", textwrap.dedent(f"""\
            workers:
              - name: sentiment
                model_path: {self.dir}/tiny-sentiment.gguf
            """))
        worker = harness.Process("slm-worker", ["--config", worker_config], self.dir).wait_ready()
        router_config = self.write("router.yaml", textwrap.dedent(f"""\
            pools:
              - name: sentiment-pool
                endpoints: ["{worker.address}"]
            routes:
              - name: sentiment
                tasks: [sentiment]
                pool: sentiment-pool
            default_route: sentiment
            """))
        router = harness.Process("slm-router", ["--config", router_config], self.dir).wait_ready()
        try:
            with harness.channel(router.address) as ch:
                stub = gateway_pb2_grpc.GatewayServiceStub(ch)
                request = gateway_pb2.ClassifyRequest(text="a great film")
                response = stub.Classify(request, timeout=10)
                self.assertEqual(response.served_by.worker, worker.address)
                self.assertEqual(response.served_by.model, "sentiment")
                expected = harness.reference_probabilities(self.model, self.tokens,
                                                           "a great film")
                self.assertAlmostEqual(response.labels[0].score, max(expected), delta=1e-4)
                self.assertEqual(harness.metric_value(worker.metrics(),
                                                      "slmgw_worker_requests_total",
                                                      outcome="ok"), 1)
                worker.stop(signal.SIGKILL)
                with self.assertRaises(grpc.RpcError) as caught:
                    stub.Classify(request, timeout=10)
                self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)
                self.assertIn("sentiment-pool", caught.exception.details())
        finally:
            self.assertEqual(router.stop(), 0)

    def test_sigterm_drains_in_flight_requests_and_exits_zero(self):
        harness.write_model(f"{self.dir}/slow.gguf", bert.TEXT_CLASSIFICATION, ["a", "b"],
                            layers=8, hidden=256, heads=4, ffn=1024, context=512, seed=3)
        config = self.write("gateway.yaml", textwrap.dedent(f"""\
            server:
              drain_timeout_ms: 20000
            workers:
              - name: slow
                model_path: {self.dir}/slow.gguf
                max_queue_depth: 16
            pools:
              - name: slow
                endpoints: ["inprocess:slow"]
            routes:
              - name: slow
                tasks: [slow]
                pool: slow
            default_route: slow
            """))
        gateway = harness.Process("slm-gateway", ["--config", config], self.dir).wait_ready()
        results = []

        def call():
            with harness.channel(gateway.address) as ch:
                stub = gateway_pb2_grpc.GatewayServiceStub(ch)
                try:
                    stub.Classify(gateway_pb2.ClassifyRequest(text=" ".join(["good"] * 400)),
                                  timeout=60)
                    results.append("ok")
                except grpc.RpcError as error:
                    results.append(error.code())

        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.1)  # the requests are queued or computing (one at a time)
        code = gateway.stop(signal.SIGTERM, timeout=60)
        self.assertEqual(code, 0, gateway.output())
        for t in threads:
            t.join()
        self.assertEqual(results, ["ok"] * 8, gateway.output())

    def test_bad_configs_exit_with_a_message_naming_the_field(self):
        cases = {
            "unknown.yaml": ("server:\n  listen_adress: 1\n", "listen_adress"),
            "type.yaml": ("limits:\n  max_text_bytes: many\n", "max_text_bytes"),
            "missing.yaml": (f"workers:\n  - name: w\npools:\n  - name: p\n    endpoints: "
                             f"[\"inprocess:w\"]\nroutes:\n  - name: r\n    pool: p\n",
                             "model_path"),
        }
        for name, (text, fragment) in cases.items():
            path = self.write(name, text)
            code, out = harness.run_to_exit("slm-gateway", ["--config", path, "--listen",
                                                            "127.0.0.1:0", "--metrics_listen",
                                                            "127.0.0.1:0"])
            self.assertEqual(code, 2, out)
            self.assertIn(fragment, out)
            self.assertIn(name, out)
            code, out = harness.run_to_exit("slmctl", ["validate-config", path])
            self.assertEqual(code, 1, out)
            self.assertIn(fragment, out)

    def test_corrupt_model_files_are_load_errors_not_crashes(self):
        with open(f"{self.dir}/tiny-sentiment.gguf", "rb") as f:
            good = f.read()
        variants = {
            "magic.gguf": b"GGUX" + good[4:],
            "truncated.gguf": good[: len(good) // 2],
            "empty.gguf": b"",
            "counts.gguf": good[:8] + (2**62).to_bytes(8, "little") + good[16:],
        }
        for name, data in variants.items():
            with open(f"{self.dir}/{name}", "wb") as f:
                f.write(data)
            config = self.write(f"{name}.yaml", textwrap.dedent(f"""\
                workers:
                  - name: w
                    model_path: {self.dir}/{name}
                pools:
                  - name: p
                    endpoints: ["inprocess:w"]
                routes:
                  - name: r
                    pool: p
                """))
            code, out = harness.run_to_exit("slm-gateway", ["--config", config, "--listen",
                                                            "127.0.0.1:0", "--metrics_listen",
                                                            "127.0.0.1:0"])
            self.assertEqual(code, 1, f"{name}: {out}")
            self.assertIn(name, out)
            self.assertIn("cannot load model", out)


@unittest.skipUnless(os.path.exists(os.path.join(os.environ.get("SLM_MODELS_DIR", ""),
                                                 "sentiment-sst2.gguf")),
                     "models/sentiment-sst2.gguf is not built yet")
class DefaultConfigurationTest(unittest.TestCase):
    """`make run`'s embedded default: the trained sentiment specialist answers sensibly."""

    def test_embedded_default_serves_the_sentiment_specialist(self):
        with harness.temporary_directory() as d:
            gateway = harness.Process("slm-gateway", [], d).wait_ready()
            try:
                with harness.channel(gateway.address) as ch:
                    stub = gateway_pb2_grpc.GatewayServiceStub(ch)
                    def top(text):
                        # Untagged text is routed by the CLINC150 classifiers: name the task.
                        response = stub.Classify(gateway_pb2.ClassifyRequest(
                            text=text, options=types_pb2.RequestOptions(task="sentiment")),
                            timeout=10)
                        return response.labels[0].label
                    self.assertEqual(top("a wonderful, moving and beautifully acted film"),
                                     "positive")
                    self.assertEqual(top("a dull, tedious and badly written mess"), "negative")
            finally:
                self.assertEqual(gateway.stop(), 0)


if __name__ == "__main__":
    unittest.main()
