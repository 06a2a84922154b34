"""Fallback to an OpenAI-compatible upstream with the real slm-router on loopback: a pool whose
only worker is down falls back to a route served by a scripted HTTP server standing in for the
paid service (Python http.server), for Classify (label prompt), Generate and GenerateStream.
Checks the API key reaches the upstream from an environment variable and never the router's log,
and that the fallback and upstream metrics count what happened. Then slm-router in front of a
real slm-worker (tiny random llama): routed generation equals the worker's, and a route whose
cascade_threshold the model cannot reach escalates to the upstream. Bounded: a few requests."""
import http.server
import json
import os
import socket
import textwrap
import threading
import unittest

import grpc

import harness
import test_generation_e2e
from slmgw.v1 import gateway_pb2
from slmgw.v1 import gateway_pb2_grpc
from slmgw.v1 import types_pb2
from slmgw.v1 import worker_pb2
from slmgw.v1 import worker_pb2_grpc

API_KEY = "sk-e2e-secret-123"


class FakeOpenAI(http.server.BaseHTTPRequestHandler):
    """Answers /v1/chat/completions: the label "positive" to classification prompts, a fixed
    sentence otherwise, as JSON or as server-sent events when the request streams."""
    requests = []  # (path, headers, body) of every request

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append((self.path, dict(self.headers), body))
        system = body["messages"][0]["content"]
        text = "Positive." if "text classifier" in system else "Hello from the big model"
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ["Hello", " from", " the big model"]:
                chunk = {"model": "big-v1", "choices": [{"delta": {"content": piece}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            final = {"choices": [{"delta": {}, "finish_reason": "stop"}]}
            usage = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}
            self.wfile.write(f"data: {json.dumps(final)}\n\ndata: {json.dumps(usage)}\n\n"
                             "data: [DONE]\n\n".encode())
            return
        answer = {"model": "big-v1",
                  "choices": [{"message": {"role": "assistant", "content": text},
                               "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 21, "completion_tokens": 2}}
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FallbackE2ETest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
        threading.Thread(target=cls.upstream.serve_forever, daemon=True).start()
        cls.tmp = harness.temporary_directory()
        config = os.path.join(cls.tmp.name, "router.yaml")
        with open(config, "w") as f:
            f.write(textwrap.dedent(f"""\
                pools:
                  - name: small
                    endpoints: ["127.0.0.1:{closed_port()}"]
                upstreams:
                  - name: big
                    base_url: http://127.0.0.1:{cls.upstream.server_port}
                    model: big-model
                    api_key_env: SLM_E2E_UPSTREAM_KEY
                    timeout_ms: 5000
                routes:
                  - name: small
                    tasks: [small]
                    pool: small
                    fallback: [big]
                  - name: big
                    tasks: [big]
                    upstream: big
                    labels: [positive, negative]
                default_route: small
                """))
        os.environ["SLM_E2E_UPSTREAM_KEY"] = API_KEY
        cls.router = harness.Process("slm-router", ["--config", config], cls.tmp.name)
        cls.router.wait_ready()
        cls.stub = gateway_pb2_grpc.GatewayServiceStub(harness.channel(cls.router.address))

    @classmethod
    def tearDownClass(cls):
        cls.router.stop()
        cls.upstream.shutdown()
        cls.tmp.cleanup()

    def options(self, task="small"):
        return types_pb2.RequestOptions(task=task)

    def test_classify_falls_back_to_the_upstream_label_prompt(self):
        response = self.stub.Classify(
            gateway_pb2.ClassifyRequest(text="a great film", options=self.options()), timeout=10)
        self.assertEqual(response.labels[0].label, "positive")
        self.assertEqual(response.served_by.route, "big")
        self.assertEqual(response.served_by.worker, "upstream:big")
        self.assertTrue(response.served_by.fell_back)
        self.assertEqual(response.served_by.fallback_reason, "unavailable")
        path, headers, body = FakeOpenAI.requests[-1]
        self.assertEqual(path, "/v1/chat/completions")
        self.assertEqual(headers["Authorization"], f"Bearer {API_KEY}")
        self.assertIn("positive, negative", body["messages"][0]["content"])
        self.assertEqual(body["model"], "big-model")

    def test_generate_and_stream_fall_back(self):
        response = self.stub.Generate(
            gateway_pb2.GenerateRequest(prompt="say hello", options=self.options()), timeout=10)
        self.assertEqual(response.text, "Hello from the big model")
        self.assertEqual(response.served_by.model, "big-v1")
        self.assertEqual(response.served_by.usage.input_tokens, 21)
        messages = list(self.stub.GenerateStream(
            gateway_pb2.GenerateStreamRequest(prompt="say hello", options=self.options()),
            timeout=10))
        self.assertEqual("".join(m.text_delta for m in messages), "Hello from the big model")
        self.assertEqual(messages[-1].finish_reason, "stop")
        self.assertEqual(messages[-1].served_by.fallback_reason, "unavailable")
        self.assertEqual(messages[-1].served_by.usage.output_tokens, 3)

    def test_metrics_count_fallbacks_and_upstream_requests_and_the_key_is_not_logged(self):
        self.stub.Classify(
            gateway_pb2.ClassifyRequest(text="fine", options=self.options()), timeout=10)
        metrics = self.router.metrics()
        self.assertGreaterEqual(
            harness.metric_value(metrics, "slmgw_router_fallbacks_total", reason="unavailable",
                                 source="small", target="big") or 0, 1)
        self.assertGreaterEqual(
            harness.metric_value(metrics, "slmgw_router_upstream_requests_total", upstream="big",
                                 outcome="ok") or 0, 1)
        self.assertIsNotNone(
            harness.metric_value(metrics, "slmgw_router_upstream_latency_seconds_count",
                                 upstream="big"))
        self.assertNotIn(API_KEY, self.router.output())


class GenerationThroughRouterTest(unittest.TestCase):
    """slm-router in front of a real slm-worker serving a tiny random llama: the router's
    Generate and GenerateStream give exactly what the worker gives, and a route whose
    cascade_threshold the random model cannot reach escalates to the upstream."""

    @classmethod
    def setUpClass(cls):
        cls.upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
        threading.Thread(target=cls.upstream.serve_forever, daemon=True).start()
        cls.tmp = harness.temporary_directory()
        model_path = os.path.join(cls.tmp.name, "tiny-llama.gguf")
        test_generation_e2e.write_tiny_llama(model_path)
        worker_config = os.path.join(cls.tmp.name, "worker.yaml")
        with open(worker_config, "w") as f:
            f.write(textwrap.dedent(f"""\
                workers:
                  - name: tiny
                    model_path: {model_path}
                    dtype: f32
                    kv_dtype: f32
                    kv_cache_mb: 32
                """))
        cls.worker = harness.Process("slm-worker", ["--config", worker_config], cls.tmp.name)
        cls.worker.wait_ready()
        router_config = os.path.join(cls.tmp.name, "router.yaml")
        with open(router_config, "w") as f:
            f.write(textwrap.dedent(f"""\
                pools:
                  - name: tiny
                    endpoints: ["{cls.worker.address}"]
                upstreams:
                  - {{name: big, base_url: "http://127.0.0.1:{cls.upstream.server_port}",
                      model: big-model}}
                routes:
                  - {{name: tiny, tasks: [tiny], pool: tiny}}
                  - {{name: picky, tasks: [picky], pool: tiny, cascade_threshold: 0.99,
                      fallback: [big]}}
                  - {{name: big, tasks: [big], upstream: big}}
                default_route: tiny
                """))
        cls.router = harness.Process("slm-router", ["--config", router_config], cls.tmp.name)
        cls.router.wait_ready()
        cls.gateway = gateway_pb2_grpc.GatewayServiceStub(harness.channel(cls.router.address))
        cls.direct = worker_pb2_grpc.WorkerServiceStub(harness.channel(cls.worker.address))

    @classmethod
    def tearDownClass(cls):
        cls.router.stop()
        cls.worker.stop()
        cls.upstream.shutdown()
        cls.tmp.cleanup()

    def test_router_generation_equals_the_workers(self):
        sampling = types_pb2.SamplingParams(max_tokens=12)
        direct = self.direct.Generate(worker_pb2.WorkerServiceGenerateRequest(
            prompt="hello world", sampling=sampling), timeout=60)
        routed = self.gateway.Generate(gateway_pb2.GenerateRequest(
            prompt="hello world", sampling=sampling,
            options=types_pb2.RequestOptions(task="tiny")), timeout=60)
        self.assertEqual(routed.text, direct.text)
        self.assertEqual(routed.finish_reason, "length")
        self.assertEqual(routed.served_by.route, "tiny")
        self.assertEqual(routed.served_by.worker, self.worker.address)
        self.assertEqual(routed.served_by.usage.output_tokens, 12)
        self.assertEqual(len(routed.token_logprobs), 0)
        self.assertFalse(routed.served_by.fell_back)
        stream = list(self.gateway.GenerateStream(gateway_pb2.GenerateStreamRequest(
            prompt="hello world", sampling=types_pb2.SamplingParams(max_tokens=12,
                                                                   return_logprobs=True),
            options=types_pb2.RequestOptions(task="tiny")), timeout=60))
        self.assertEqual("".join(m.text_delta for m in stream), direct.text)
        self.assertEqual(sum(len(m.token_logprobs) for m in stream), 12)
        self.assertEqual(stream[-1].served_by.usage.output_tokens, 12)
        self.assertGreater(stream[-1].served_by.confidence, 0)

    def test_unsure_generation_escalates_to_the_upstream(self):
        routed = self.gateway.Generate(gateway_pb2.GenerateRequest(
            prompt="hello world", sampling=types_pb2.SamplingParams(max_tokens=8),
            options=types_pb2.RequestOptions(task="picky")), timeout=60)
        # A random 64-token model is far below 0.99 per token: the upstream answers.
        self.assertEqual(routed.text, "Hello from the big model")
        self.assertEqual(routed.served_by.route, "big")
        self.assertEqual(routed.served_by.fallback_reason, "low_confidence")
        metrics = self.router.metrics()
        self.assertEqual(harness.metric_value(metrics, "slmgw_router_cascade_escalations_total",
                                              route="picky", operation="generate"), 1)


if __name__ == "__main__":
    unittest.main()
