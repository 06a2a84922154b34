"""Every dashboard panel's query, run against a real Prometheus that scrapes the real processes
with the committed local scrape configuration and rules: each must parse and return data (a
panel marked pending must return none, until its metric lands). Also checks the SLO recording
rules and the OpenTelemetry GenAI aliases. Bounded: scrape and rule interval 1 s, at most 60 s
of waiting."""
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import unittest
import urllib.parse
import urllib.request

import yaml

import harness
import promql_refs
import topology

PROMETHEUS = shutil.which("prometheus")
LOCAL_CONFIG = os.path.join(promql_refs.MONITORING, "prometheus", "prometheus-local.yml")
WAIT_SECONDS = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(PROMETHEUS, "prometheus is not installed (tools/install-deps.sh installs "
                     "Debian's prometheus)")
class DashboardQueriesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.temporary_directory()
        d = cls.tmp.name
        cls.topology = topology.Topology(d).start()
        # The committed local configuration, templated to this test's ports and intervals.
        os.makedirs(f"{d}/targets")
        with open(f"{d}/targets/local.json", "w") as f:
            json.dump([{"targets": targets, "labels": {"job": job}}
                       for job, targets in cls.topology.scrape_targets().items()], f)
        with open(LOCAL_CONFIG) as f:
            config = yaml.safe_load(f)
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config["rule_files"] = [os.path.join(os.path.dirname(LOCAL_CONFIG), r)
                                for r in config["rule_files"]]
        config["scrape_configs"][0]["file_sd_configs"][0]["files"] = [f"{d}/targets/*.json"]
        with open(f"{d}/prometheus.yml", "w") as f:
            yaml.safe_dump(config, f)
        cls.prometheus_url = f"http://127.0.0.1:{free_port()}"
        cls.prometheus_log = open(f"{d}/prometheus.log", "wb")
        cls.prometheus = subprocess.Popen(
            [PROMETHEUS, f"--config.file={d}/prometheus.yml", f"--storage.tsdb.path={d}/tsdb",
             "--web.listen-address=" + cls.prometheus_url[len("http://"):]],
            stdout=cls.prometheus_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                urllib.request.urlopen(cls.prometheus_url + "/-/ready", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline or cls.prometheus.poll() is not None:
                    cls.tearDownClass()
                    raise RuntimeError("prometheus did not become ready; see its log")
                time.sleep(0.2)
        # Traffic all along, so every rate() window holds increases.
        cls.stop_traffic = threading.Event()
        cls.traffic = threading.Thread(target=cls._drive, daemon=True)
        cls.traffic.start()

    @classmethod
    def _drive(cls):
        while not cls.stop_traffic.is_set():
            cls.topology.drive(rounds=1)
            cls.stop_traffic.wait(0.3)

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "traffic"):
            cls.stop_traffic.set()
            cls.traffic.join(timeout=30)
        cls.prometheus.terminate()
        cls.prometheus.wait(timeout=30)
        cls.prometheus_log.close()
        cls.topology.stop()
        cls.tmp.cleanup()

    def query(self, expr):
        """Returns (status, result list) of an instant query; raises on HTTP errors other than
        400 (a PromQL parse error, returned as status "error")."""
        url = (f"{self.prometheus_url}/api/v1/query?"
               + urllib.parse.urlencode({"query": expr}))
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            body = json.load(error)
        if body["status"] != "success":
            return "error: " + body.get("error", "?"), []
        return "success", body["data"]["result"]

    def wait_for(self, expressions):
        """Polls until every expression returns data or WAIT_SECONDS pass; returns
        {expr: (status, result)} of the last round."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            results = {}
            for expr in expressions:
                try:
                    results[expr] = self.query(expr)
                except OSError as error:  # Prometheus still starting
                    results[expr] = (f"unreachable: {error}", [])
            if all(r[1] for r in results.values()) or time.monotonic() > deadline:
                return results
            if self.prometheus.poll() is not None:
                with open(self.prometheus_log.name, "rb") as f:
                    self.fail(f"prometheus exited: {f.read().decode()[-2000:]}")
            time.sleep(1)

    def test_every_target_is_scraped(self):
        results = self.wait_for(['up{job="slm-gateway"} == 1', 'up{job="slm-router"} == 1',
                                 'up{job="slm-worker"} == 1'])
        for expr, (status, result) in results.items():
            self.assertTrue(result, f"{expr}: {status}, no data")

    def test_every_panel_query_parses_and_returns_data(self):
        live, pending = {}, {}
        for board, title, reason, exprs in promql_refs.panels():
            for expr in exprs:
                query = promql_refs.substitute(expr)
                (pending if reason else live)[query] = f"{board}: '{title}'"
        self.assertGreaterEqual(len(live), 20)
        results = self.wait_for(list(live))
        problems = [f"{live[q]}: {status}, {len(result)} series: {q}"
                    for q, (status, result) in results.items() if not result]
        for query, where in pending.items():
            status, result = self.query(query)
            if status != "success":
                problems.append(f"{where} (pending): {status}: {query}")
            elif result:
                problems.append(f"{where} is marked pending but returns data: its metric landed; "
                                "remove the mark (monitoring/grafana/generate.js) and the "
                                "metric from monitoring/pending-metrics.txt")
        self.assertEqual(problems, [], "\n".join(problems))

    def test_recording_rules_and_genai_aliases_return_data(self):
        names = sorted(promql_refs.recorded_names())
        self.assertIn("gen_ai_server_request_duration_seconds_bucket", names)
        self.assertIn("gen_ai_server_time_to_first_token_seconds_bucket", names)
        results = self.wait_for(names)
        empty = [f"{n}: {results[n][0]}" for n in names if not results[n][1]]
        self.assertEqual(empty, [])
        status, result = self.query(
            'sum by (gen_ai_token_type) (gen_ai_client_token_usage_sum'
            '{gen_ai_provider_name="slm-gateway",gen_ai_request_model="sentiment"})')
        self.assertEqual(status, "success")
        self.assertEqual({r["metric"].get("gen_ai_token_type") for r in result}, {"input"})
        # Against the independent source: the alias equals the worker's own counter.
        status, source = self.query(
            'sum(slmgw_worker_tokens_total{model="sentiment",direction="input"})')
        self.assertGreater(float(source[0]["value"][1]), 0)
        self.assertLessEqual(float(result[0]["value"][1]), float(source[0]["value"][1]))
        # Time to first token of the decoder: the alias counts no more requests than the source
        # (the rule ran at or before the latest scrape), and some.
        for name in ("time_to_first_token", "time_per_output_token"):
            status, result = self.query(
                f'sum(gen_ai_server_{name}_seconds_count{{gen_ai_request_model="chat",'
                'gen_ai_operation_name="generate",gen_ai_provider_name="slm-gateway"})')
            self.assertEqual(status, "success")
            status, source = self.query(f'sum(slmgw_worker_{name}_seconds_count{{model="chat"}})')
            self.assertGreater(float(result[0]["value"][1]), 0, name)
            self.assertLessEqual(float(result[0]["value"][1]), float(source[0]["value"][1]), name)

    def test_a_broken_query_is_reported(self):
        status, result = self.query("sum by (route (slmgw_router_requests_total)")
        self.assertTrue(status.startswith("error"), status)
        self.assertEqual(result, [])


if __name__ == "__main__":
    unittest.main()
