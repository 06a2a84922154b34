"""Dispatch under faults, with real processes on loopback: slm-router in front of slm-worker
processes that are killed, stopped (SIGSTOP) or overloaded, and a configuration file that is
changed under a running router. Every test is bounded in requests and time."""
import os
import signal
import textwrap
import threading
import time
import unittest

import grpc

import harness
from pyslm import bert
from slmgw.v1 import gateway_pb2
from slmgw.v1 import gateway_pb2_grpc
from slmgw.v1 import types_pb2

LONG_TEXT = " ".join(["the movie was great and the plot was very good"] * 40)


def wait_until(predicate, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def rss_bytes(process):
    """The process's resident set size (VmRSS in /proc/PID/status)."""
    with open(f"/proc/{process.process.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{process.process.pid}/status")


# Growth of the router's resident memory over a burst beyond capacity that the test accepts:
# the burst's requests are shed or served, so what it allocated must not stay (or grow unbounded).
BURST_RSS_GROWTH_LIMIT = 64 << 20


def stop_process(process):
    """SIGSTOP, then waits until every thread of the process is stopped (state T)."""
    process.process.send_signal(signal.SIGSTOP)
    pid = process.process.pid

    def stopped():
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
                    return False
        return True
    return wait_until(stopped, timeout=5)


class DispatchFaultsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.temporary_directory()
        d = cls.tmp.name
        harness.write_model(f"{d}/tiny.gguf", bert.TEXT_CLASSIFICATION, ["negative", "positive"])
        # Slow enough (tens of ms per long request) that requests are in flight when a worker dies.
        harness.write_model(f"{d}/slow.gguf", bert.TEXT_CLASSIFICATION, ["negative", "positive"],
                            layers=8, hidden=256, heads=4, ffn=1024, context=512, seed=3)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        self.dir = self.tmp.name
        self.processes = []

    def tearDown(self):
        for process in self.processes:
            if process.process.poll() is None:
                process.process.send_signal(signal.SIGCONT)
                process.stop(signal.SIGKILL)

    def write(self, name, text):
        path = f"{self.dir}/{name}"
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_worker(self, model="tiny.gguf", concurrency=1, max_queue_depth=64):
        config = self.write(f"worker-{len(self.processes)}.yaml", textwrap.dedent(f"""\
            workers:
              - name: sentiment
                model_path: {self.dir}/{model}
                concurrency: {concurrency}
                max_queue_depth: {max_queue_depth}
            """))
        worker = harness.Process("slm-worker", ["--config", config], self.dir).wait_ready()
        self.processes.append(worker)
        return worker

    def router_config(self, endpoints, route_extra="", extra=""):
        listed = ", ".join(f'"{e}"' for e in endpoints)
        return textwrap.dedent(f"""\
            server:
              config_poll_interval_ms: 100
            dispatch:
              max_attempts: 3
              retry_budget_min_per_second: 50
            pools:
              - name: sentiment-pool
                endpoints: [{listed}]
                health_check_interval_ms: 200
            routes:
              - name: sentiment
                tasks: [sentiment]
                pool: sentiment-pool
            """) + textwrap.indent(route_extra, "    ") + extra + "default_route: sentiment\n"

    def start_router(self, config_text, name="router.yaml"):
        path = self.write(name, config_text)
        router = harness.Process("slm-router", ["--config", path], self.dir).wait_ready()
        self.processes.append(router)
        return router, path

    def test_a_worker_killed_mid_request_is_retried_elsewhere(self):
        a = self.start_worker("slow.gguf")
        b = self.start_worker("slow.gguf")
        router, _ = self.start_router(self.router_config([a.address, b.address]))
        # Both endpoints must have passed a health check, or every request may go to the one
        # that passed first (unhealthy endpoints are picked only when nothing else is left).
        self.assertTrue(wait_until(lambda: harness.metric_value(
            router.metrics(), "slmgw_router_endpoints", pool="sentiment-pool",
            state="ready") == 2, timeout=30), router.metrics())
        results = []
        lock = threading.Lock()

        def call(i):
            with harness.channel(router.address) as ch:
                stub = gateway_pb2_grpc.GatewayServiceStub(ch)
                try:
                    response = stub.Classify(
                        gateway_pb2.ClassifyRequest(text=f"{i} {LONG_TEXT}"), timeout=60)
                    outcome = ("ok", response.served_by.worker)
                except grpc.RpcError as error:
                    outcome = (error.code().name, error.details())
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        # Kill `a` while it holds requests (computing or queued).
        def busy():
            text = a.metrics()
            in_flight = harness.metric_value(text, "slmgw_worker_in_flight") or 0
            queued = harness.metric_value(text, "slmgw_worker_queue_depth") or 0
            return in_flight + queued > 0
        self.assertTrue(wait_until(busy, timeout=30, interval=0.005), "worker a never got work")
        a.stop(signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=90)
        self.assertEqual(len(results), 6, results)
        self.assertEqual([r for r in results if r[0] != "ok"], [], results)
        metrics = router.metrics()
        self.assertGreaterEqual(harness.metric_value(metrics, "slmgw_router_retries_total",
                                                     pool="sentiment-pool") or 0, 1)
        # b computed every request that `a` did not finish: no request lost.
        self.assertEqual(harness.metric_value(b.metrics(), "slmgw_worker_requests_total",
                                              outcome="ok") + sum(
                             1 for _, w in results if w == a.address), 6)

    def test_a_stopped_worker_is_hedged_and_deadlines_are_honoured(self):
        a = self.start_worker()
        b = self.start_worker()
        route_hedged = "hedge: {delay_ms: 100}\n"
        extra = ("  - name: unhedged\n"
                 "    tasks: [unhedged]\n"
                 "    pool: stopped-pool\n")
        config = self.router_config([a.address, b.address], route_extra=route_hedged,
                                    extra=extra)
        config = config.replace("routes:", ("  - name: stopped-pool\n"
                                            f'    endpoints: ["{a.address}"]\n'
                                            "    health_check_interval_ms: 0\n"
                                            "routes:"), 1)
        router, _ = self.start_router(config)
        with harness.channel(router.address) as ch:
            stub = gateway_pb2_grpc.GatewayServiceStub(ch)
            stub.Classify(gateway_pb2.ClassifyRequest(text="warm up"), timeout=10)
            self.assertTrue(stop_process(a))
            for i in range(8):
                start = time.monotonic()
                response = stub.Classify(gateway_pb2.ClassifyRequest(text=f"great {i}"),
                                         timeout=5)
                self.assertEqual(response.served_by.worker, b.address)
                self.assertLess(time.monotonic() - start, 3)
            # Without a hedge, the caller's deadline is honoured.
            start = time.monotonic()
            with self.assertRaises(grpc.RpcError) as caught:
                stub.Classify(gateway_pb2.ClassifyRequest(
                    text="x", options=types_pb2.RequestOptions(task="unhedged")), timeout=0.5)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
            self.assertLess(time.monotonic() - start, 2.0)
        a.process.send_signal(signal.SIGCONT)

    def test_a_stopped_worker_is_hedged_after_the_latency_percentile(self):
        a = self.start_worker()
        b = self.start_worker()
        # No fixed delay: the hedge waits for the route's recent p90 worker latency. No health
        # checks, so the stopped worker stays pickable and only hedging can save its requests.
        config = self.router_config([a.address, b.address],
                                    route_extra="hedge: {percentile: 90}\n")
        config = config.replace("health_check_interval_ms: 200", "health_check_interval_ms: 0")
        router, _ = self.start_router(config)
        with harness.channel(router.address) as ch:
            stub = gateway_pb2_grpc.GatewayServiceStub(ch)
            for i in range(40):  # enough samples for the percentile (LatencyTracker: 20)
                stub.Classify(gateway_pb2.ClassifyRequest(text=f"warm up {i}"), timeout=10)
            a_ok_before = harness.metric_value(a.metrics(), "slmgw_worker_requests_total",
                                               outcome="ok") or 0
            self.assertTrue(stop_process(a))
            hedges_before = harness.metric_value(router.metrics(), "slmgw_router_hedges_total",
                                                 pool="sentiment-pool") or 0
            # A long deadline: a loser that was not cancelled would still be computed by `a`
            # once it runs again.
            for i in range(12):
                start = time.monotonic()
                response = stub.Classify(gateway_pb2.ClassifyRequest(text=f"great {i}"),
                                         timeout=30)
                self.assertEqual(response.served_by.worker, b.address)
                self.assertLess(time.monotonic() - start, 2.0)
            metrics = router.metrics()
        hedges = (harness.metric_value(metrics, "slmgw_router_hedges_total",
                                       pool="sentiment-pool") or 0) - hedges_before
        # The first pick is `a` half of the time (power of two choices at equal load).
        self.assertGreaterEqual(hedges, 1, metrics)
        self.assertLessEqual(hedges, 12)
        a.process.send_signal(signal.SIGCONT)
        # The losers were cancelled: `a` drops them (cancelled before reaching the model) and
        # computes none of them.
        time.sleep(1.0)
        self.assertEqual(harness.metric_value(a.metrics(), "slmgw_worker_requests_total",
                                              outcome="ok") or 0, a_ok_before)
        # Cancelled attempts are not failures: no cooldown, no upstream error counted.
        self.assertIsNone(harness.metric_value(metrics, "slmgw_router_upstream_errors_total",
                                               pool="sentiment-pool"))

    def test_all_workers_of_a_pool_down_is_unavailable_naming_the_pool(self):
        a = self.start_worker()
        b = self.start_worker()
        router, _ = self.start_router(self.router_config([a.address, b.address]))
        a.stop(signal.SIGKILL)
        b.stop(signal.SIGKILL)
        with harness.channel(router.address) as ch:
            stub = gateway_pb2_grpc.GatewayServiceStub(ch)
            for i in range(6):
                start = time.monotonic()
                with self.assertRaises(grpc.RpcError) as caught:
                    stub.Classify(gateway_pb2.ClassifyRequest(text="hello"), timeout=10)
                self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)
                self.assertIn("pool 'sentiment-pool'", caught.exception.details())
                self.assertLess(time.monotonic() - start, 5)
        metrics = router.metrics()
        # Repeated failures opened the endpoints' circuits.
        self.assertGreaterEqual(harness.metric_value(
            metrics, "slmgw_router_endpoint_cooldowns_total", pool="sentiment-pool") or 0, 1)

    def test_a_burst_beyond_capacity_is_shed_and_every_request_answered_once(self):
        worker = self.start_worker("slow.gguf", concurrency=1)
        router, _ = self.start_router(self.router_config(
            [worker.address], route_extra="max_concurrency: 2\n"))
        with harness.channel(router.address) as ch:  # warm up: channels, first allocations
            gateway_pb2_grpc.GatewayServiceStub(ch).Classify(
                gateway_pb2.ClassifyRequest(text="warm up"), timeout=60)
        rss_before = rss_bytes(router)
        outcomes = {}
        retry_after = []
        lock = threading.Lock()
        barrier = threading.Barrier(24)

        def call(i):
            with harness.channel(router.address) as ch:
                stub = gateway_pb2_grpc.GatewayServiceStub(ch)
                barrier.wait()
                try:
                    stub.Classify(gateway_pb2.ClassifyRequest(text=f"{i} {LONG_TEXT}"),
                                  timeout=60)
                    outcome = "ok"
                except grpc.RpcError as error:
                    outcome = error.code().name
                    hint = dict(error.trailing_metadata() or ()).get("retry-after-ms")
                    if hint is not None:
                        with lock:
                            retry_after.append(int(hint))
            with lock:
                self.assertNotIn(i, outcomes)
                outcomes[i] = outcome

        threads = [threading.Thread(target=call, args=(i,)) for i in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        self.assertEqual(len(outcomes), 24)
        rss_after = rss_bytes(router)
        print(f"router VmRSS before the burst {rss_before / 2**20:.1f} MiB, after "
              f"{rss_after / 2**20:.1f} MiB (growth {(rss_after - rss_before) / 2**20:+.1f} MiB)")
        self.assertLess(rss_after - rss_before, BURST_RSS_GROWTH_LIMIT)
        counts = {}
        for outcome in outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        self.assertEqual(set(counts), {"ok", "RESOURCE_EXHAUSTED"}, counts)
        self.assertGreaterEqual(counts["ok"], 2)
        self.assertGreaterEqual(counts["RESOURCE_EXHAUSTED"], 1)
        self.assertEqual(len(retry_after), counts["RESOURCE_EXHAUSTED"])
        self.assertTrue(all(hint > 0 for hint in retry_after))
        self.assertEqual(harness.metric_value(router.metrics(), "slmgw_router_load_shed_total",
                                              route="sentiment", reason="route_concurrency"),
                         counts["RESOURCE_EXHAUSTED"])
        # The worker computed each admitted request once (and the warm-up request).
        self.assertEqual(harness.metric_value(worker.metrics(), "slmgw_worker_requests_total",
                                              outcome="ok"), counts["ok"] + 1)

    def test_config_reload_applies_good_files_and_keeps_serving_on_a_bad_one(self):
        worker = self.start_worker()
        router, path = self.start_router(self.router_config([worker.address]))

        def reloads(outcome):
            return harness.metric_value(router.metrics(), "slmgw_router_config_reloads_total",
                                        outcome=outcome) or 0

        with harness.channel(router.address) as ch:
            stub = gateway_pb2_grpc.GatewayServiceStub(ch)

            def route_of(hint):
                return stub.Route(gateway_pb2.RouteRequest(
                    text="x", options=types_pb2.RequestOptions(route_hint=hint)),
                    timeout=5).decision.route

            with self.assertRaises(grpc.RpcError):
                route_of("second")
            good = self.router_config([worker.address], extra=(
                "  - name: second\n"
                "    tasks: [second]\n"
                "    pool: sentiment-pool\n"))
            with open(path + ".tmp", "w") as f:
                f.write(good)
            os.replace(path + ".tmp", path)
            self.assertTrue(wait_until(lambda: reloads("applied") >= 1), router.output())
            self.assertEqual(route_of("second"), "second")

            with open(path + ".tmp", "w") as f:
                f.write(good.replace("tasks: [second]", "taskz: [second]"))
            os.replace(path + ".tmp", path)
            self.assertTrue(wait_until(lambda: reloads("invalid") >= 1), router.output())
            self.assertIn("taskz", router.output())
            # The previous configuration keeps serving.
            self.assertEqual(route_of("second"), "second")
            response = stub.Classify(gateway_pb2.ClassifyRequest(
                text="fine", options=types_pb2.RequestOptions(task="second")), timeout=10)
            self.assertEqual(response.served_by.route, "second")
            self.assertEqual(reloads("applied"), 1)


if __name__ == "__main__":
    unittest.main()
