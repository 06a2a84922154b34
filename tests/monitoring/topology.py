"""A small slm-gateway deployment on loopback for the monitoring tests, and traffic for it.

Topology (every process from tests/e2e/harness.py, real binaries on ephemeral ports):
  gateway: slm-gateway with three in-process workers (sentiment f32, entities int8, a tiny random
           llama decoder "chat") and the learned fast tier (a random n-gram model whose labels
           all map to the sentiment route), so requests without a task or hint are decided by it
  worker:  slm-worker serving a sentiment model
  router:  slm-router with pool "sentiment" = [worker, an address nobody listens on] (so calls
           are retried) and pool "down" = [that address] (so calls fail UNAVAILABLE); route
           "rescued" on pool "down" falls back to "sentiment"; route "picky" on "sentiment" has a
           cascade_threshold the random model cannot reach and escalates to route "big", served
           by an OpenAI-compatible upstream (a loopback Python HTTP server, FakeOpenAI)
Traffic covers every operation the processes serve, successes and each error class we can cause
from outside: invalid_argument, not_found, unavailable, failed_precondition-like refusals; and
generation (unary and streamed), a fallback, a cascade escalation and upstream calls.
"""
import http.server
import socket
import textwrap
import threading

import grpc

import harness
import test_classification_e2e
import test_generation_e2e
from pyslm import bert
from test_fallback_e2e import FakeOpenAI
from slmgw.v1 import gateway_pb2
from slmgw.v1 import gateway_pb2_grpc
from slmgw.v1 import types_pb2


def unused_address():
    """A loopback address that refuses connections (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


class Topology:
    def __init__(self, workdir):
        self.dir = workdir
        self.processes = []
        self.upstream = None

    def _write(self, name, text):
        path = f"{self.dir}/{name}"
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self):
        d = self.dir
        harness.write_model(f"{d}/tiny-sentiment.gguf", bert.TEXT_CLASSIFICATION,
                            ["negative", "positive"])
        harness.write_model(f"{d}/tiny-entities.gguf", bert.TOKEN_CLASSIFICATION,
                            harness.ENTITY_LABELS, seed=2)
        test_generation_e2e.write_tiny_llama(f"{d}/tiny-llama.gguf")
        test_classification_e2e.write_ngram(f"{d}/fast.gguf")
        gateway_config = self._write("gateway.yaml", textwrap.dedent(f"""\
            workers:
              - name: sentiment
                model_path: {d}/tiny-sentiment.gguf
              - name: entities
                model_path: {d}/tiny-entities.gguf
                dtype: int8
              - name: chat
                model_path: {d}/tiny-llama.gguf
                dtype: f32
                kv_dtype: f32
                kv_cache_mb: 8
            pools:
              - name: sentiment
                endpoints: ["inprocess:sentiment"]
              - name: entities
                endpoints: ["inprocess:entities"]
              - name: chat
                endpoints: ["inprocess:chat"]
            routes:
              - name: sentiment
                tasks: [sentiment]
                pool: sentiment
              - name: entities
                tasks: [entities]
                pool: entities
              - name: chat
                tasks: [chat]
                pool: chat
            default_route: sentiment
            classification:
              fast:
                model_path: {d}/fast.gguf
                labels: {{bank: sentiment, travel: sentiment, oos: sentiment}}
            """))
        self.gateway = self._start("slm-gateway", ["--config", gateway_config])
        worker_config = self._write("worker.yaml", textwrap.dedent(f"""\
            workers:
              - name: sentiment
                model_path: {d}/tiny-sentiment.gguf
            """))
        self.worker = self._start("slm-worker", ["--config", worker_config])
        dead = unused_address()
        self.upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
        threading.Thread(target=self.upstream.serve_forever, daemon=True).start()
        router_config = self._write("router.yaml", textwrap.dedent(f"""\
            pools:
              - name: sentiment
                endpoints: ["{self.worker.address}", "{dead}"]
              - name: down
                endpoints: ["{dead}"]
            routes:
              - name: sentiment
                tasks: [sentiment]
                pool: sentiment
              - name: down
                tasks: [down]
                pool: down
                deadline_ms: 2000
              - name: rescued
                tasks: [rescued]
                pool: down
                fallback: [sentiment]
              - name: picky
                tasks: [picky]
                pool: sentiment
                cascade_threshold: 0.999
                fallback: [big]
              - name: big
                tasks: [big]
                upstream: big
                labels: [positive, negative]
            upstreams:
              - name: big
                base_url: http://127.0.0.1:{self.upstream.server_port}
                model: big-model
                timeout_ms: 5000
            default_route: sentiment
            """))
        self.router = self._start("slm-router", ["--config", router_config])
        return self

    def _start(self, binary, args):
        process = harness.Process(binary, args, self.dir)
        self.processes.append(process)
        return process.wait_ready()

    def stop(self):
        for process in reversed(self.processes):
            process.stop()
        if self.upstream is not None:
            self.upstream.shutdown()
            self.upstream.server_close()

    def scrape_targets(self):
        """{job: [host:port]} of every /metrics endpoint."""
        return {"slm-gateway": [f"127.0.0.1:{self.gateway.metrics_port}"],
                "slm-router": [f"127.0.0.1:{self.router.metrics_port}"],
                "slm-worker": [f"127.0.0.1:{self.worker.metrics_port}"]}

    def drive(self, rounds=3):
        """Sends a fixed mix of requests; returns {grpc code name: count} for the caller to check."""
        codes = {}
        for address in (self.gateway.address, self.router.address):
            with grpc.insecure_channel(address) as channel:
                stub = gateway_pb2_grpc.GatewayServiceStub(channel)
                calls = [
                    (stub.Classify, gateway_pb2.ClassifyRequest(
                        text="a good film", options=types_pb2.RequestOptions(task="sentiment"))),
                    (stub.Classify, gateway_pb2.ClassifyRequest(text="the plot was bad")),
                    (stub.Classify, gateway_pb2.ClassifyRequest(
                        text="great", options=types_pb2.RequestOptions(route_hint="sentiment"))),
                    (stub.Classify, gateway_pb2.ClassifyRequest(text="")),  # invalid_argument
                    (stub.Classify, gateway_pb2.ClassifyRequest(
                        text="x", options=types_pb2.RequestOptions(task="nope"))),  # not_found
                    (stub.Route, gateway_pb2.RouteRequest(
                        text="a film", options=types_pb2.RequestOptions(task="sentiment"))),
                    (stub.ExtractEntities, gateway_pb2.ExtractEntitiesRequest(
                        text="ada lovelace visited london",
                        options=types_pb2.RequestOptions(task="entities"))),
                    (stub.Classify, gateway_pb2.ClassifyRequest(
                        text="a film", options=types_pb2.RequestOptions(task="down"))),
                ]
                if address == self.gateway.address:
                    sampling = types_pb2.SamplingParams(max_tokens=4)
                    chat = types_pb2.RequestOptions(task="chat")
                    calls += [
                        (stub.Generate, gateway_pb2.GenerateRequest(
                            prompt="hello world", sampling=sampling, options=chat)),
                        (lambda request, timeout: list(stub.GenerateStream(request,
                                                                           timeout=timeout)),
                         gateway_pb2.GenerateStreamRequest(
                             prompt="hello there", sampling=sampling, options=chat)),
                    ]
                else:
                    calls += [
                        (stub.Classify, gateway_pb2.ClassifyRequest(  # falls back (unavailable)
                            text="a film", options=types_pb2.RequestOptions(task="rescued"))),
                        (stub.Classify, gateway_pb2.ClassifyRequest(  # escalates to the upstream
                            text="a film", options=types_pb2.RequestOptions(task="picky"))),
                    ]
                for _ in range(rounds):
                    for method, request in calls:
                        try:
                            method(request, timeout=10)
                            code = "OK"
                        except grpc.RpcError as error:
                            code = error.code().name
                        codes[code] = codes.get(code, 0) + 1
        return codes
