"""docs/metrics.md is the truth about /metrics: every documented metric is exposed by the process
kinds that should expose it, nothing undocumented appears, labels match, names follow Prometheus
conventions and label sets stay bounded. Runs the real slm-gateway, slm-router and slm-worker."""
import os
import tempfile
import unittest

import catalogue
import harness
import topology


class CatalogueParsingTest(unittest.TestCase):
    """The checker itself: it must catch what it claims to catch."""

    METRICS = {"slmgw_router_requests_total": {"type": "counter",
                                               "labels": frozenset({"route"}),
                                               "source": "router"},
               "slmgw_worker_queue_depth": {"type": "gauge", "labels": frozenset({"model"}),
                                            "source": "worker"}}

    def test_documented_catalogue_parses_and_names_follow_conventions(self):
        metrics, ignored = catalogue.parse_catalogue()
        self.assertIn("slmgw_router_requests_total", metrics)
        self.assertIn("exposer_scrapes_total", ignored)
        self.assertEqual(catalogue.check_names(metrics), [])

    def test_naming_violations_are_reported(self):
        bad = {"router_hits": {"type": "counter", "labels": frozenset(), "source": "router"},
               "slmgw_x_latency_ms": {"type": "histogram", "labels": frozenset({"Bad-Label"}),
                                      "source": "router"},
               "slmgw_depth_total": {"type": "gauge", "labels": frozenset(), "source": "worker"}}
        problems = "\n".join(catalogue.check_names(bad))
        for needle in ["router_hits: name must start with slmgw_",
                       "router_hits: a counter's name must end in _total",
                       "slmgw_x_latency_ms: use base units",
                       "slmgw_x_latency_ms: a time histogram's name must end in _seconds",
                       "'Bad-Label'", "slmgw_depth_total: only counters end in _total"]:
            self.assertIn(needle, problems)

    def test_scrape_differences_are_reported(self):
        text = "\n".join([
            "# TYPE slmgw_router_requests_total counter",
            'slmgw_router_requests_total{route="a",model="m"} 1',
            "# TYPE slmgw_router_surprise_total counter",
            "slmgw_router_surprise_total 3",
            "# TYPE exposer_scrapes_total counter",
            "exposer_scrapes_total 3",
        ]) + "\n"
        families = catalogue.parse_exposition(text)
        problems = "\n".join(catalogue.check_scrape("p", families, self.METRICS,
                                                    {"exposer_scrapes_total"},
                                                    {"router", "worker"})
                              + catalogue.check_missing([(families, {"router", "worker"})],
                                                        self.METRICS))
        self.assertIn("slmgw_router_surprise_total (counter) is exposed but not documented",
                      problems)
        self.assertIn("has labels ['model', 'route'], documented ['route']", problems)
        self.assertIn("slmgw_worker_queue_depth is documented (worker) but no worker process "
                      "exposes it", problems)
        self.assertNotIn("exposer", problems)

    def test_unbounded_labels_are_reported(self):
        lines = ["# TYPE slmgw_worker_queue_depth gauge"]
        lines += [f'slmgw_worker_queue_depth{{model="m{i}"}} 1'
                  for i in range(catalogue.MAX_VALUES_PER_LABEL + 1)]
        lines += ['slmgw_worker_queue_depth{model="free text, with spaces"} 1']
        families = catalogue.parse_exposition("\n".join(lines) + "\n")
        problems = "\n".join(catalogue.check_scrape("p", families, self.METRICS, set(),
                                                    {"worker"}))
        self.assertIn(f"label model has {catalogue.MAX_VALUES_PER_LABEL + 2} values", problems)
        self.assertIn("does not look like a bounded identifier", problems)

    def test_exposition_parser_handles_histograms_and_escapes(self):
        text = ("# TYPE h histogram\n"
                'h_bucket{le="0.1",route="a\\"b"} 1\nh_bucket{le="+Inf",route="a\\"b"} 2\n'
                'h_sum{route="a\\"b"} 0.3\nh_count{route="a\\"b"} 2\n')
        families = catalogue.parse_exposition(text)
        self.assertEqual(list(families), ["h"])
        self.assertEqual(len(families["h"]["samples"]), 4)
        self.assertEqual(families["h"]["samples"][0][1], {"le": "0.1", "route": 'a\\"b'})

    def test_malformed_catalogue_is_an_error_naming_the_row(self):
        with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as f:
            f.write("## Catalogue\n\n| metric | type |\n|---|---|\n| `slmgw_a_total` | counter |\n")
        try:
            with self.assertRaisesRegex(ValueError, "slmgw_a_total.*expected 6 cells"):
                catalogue.parse_catalogue(f.name)
        finally:
            os.unlink(f.name)


class LiveCatalogueTest(unittest.TestCase):
    """The real processes against docs/metrics.md."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.temporary_directory()
        cls.topology = topology.Topology(cls.tmp.name).start()
        cls.codes = cls.topology.drive(rounds=3)

    @classmethod
    def tearDownClass(cls):
        cls.topology.stop()
        cls.tmp.cleanup()

    def test_traffic_covered_success_and_errors(self):
        for code in ["OK", "INVALID_ARGUMENT", "NOT_FOUND", "UNAVAILABLE"]:
            self.assertGreater(self.codes.get(code, 0), 0, f"no {code} in {self.codes}")

    def test_every_metric_is_documented_and_every_documented_metric_is_exposed(self):
        metrics, ignored = catalogue.parse_catalogue()
        kinds = {"gateway": (self.topology.gateway, {"router", "worker"}),
                 "router": (self.topology.router, {"router"}),
                 "worker": (self.topology.worker, {"worker"})}
        problems, scrapes = [], []
        for process, (server, sources) in kinds.items():
            families = catalogue.parse_exposition(server.metrics())
            problems += catalogue.check_scrape(f"slm-{process}", families, metrics, ignored,
                                               sources)
            scrapes.append((families, sources))
        problems += catalogue.check_missing(scrapes, metrics)
        self.assertEqual(problems, [], "docs/metrics.md and /metrics disagree:\n  "
                         + "\n  ".join(problems))

    def test_errors_and_retries_were_counted(self):
        router = catalogue.parse_exposition(self.topology.router.metrics())
        upstream = [s for s in router["slmgw_router_upstream_errors_total"]["samples"]
                    if s[1].get("pool") == "down"]
        self.assertTrue(upstream and sum(s[2] for s in upstream) >= 3, upstream)
        outcomes = {s[1]["outcome"] for s in router["slmgw_router_requests_total"]["samples"]}
        self.assertTrue({"ok", "invalid_argument", "not_found", "unavailable"} <= outcomes,
                        outcomes)

    def test_generation_fallbacks_cascades_and_learned_tiers_were_counted(self):
        # drive(rounds=3) sends each of these requests 3 times (see topology.drive).
        router, gateway = self.topology.router.metrics(), self.topology.gateway.metrics()
        value = harness.metric_value
        self.assertEqual(value(router, "slmgw_router_fallbacks_total", reason="unavailable",
                               source="rescued", target="sentiment"), 3)
        self.assertEqual(value(router, "slmgw_router_fallbacks_total", reason="low_confidence",
                               source="picky", target="big"), 3)
        self.assertEqual(value(router, "slmgw_router_cascade_escalations_total", route="picky",
                               operation="classify"), 3)
        self.assertEqual(value(router, "slmgw_router_upstream_requests_total", upstream="big",
                               outcome="ok"), 3)
        self.assertEqual(value(router, "slmgw_router_upstream_latency_seconds_count",
                               upstream="big"), 3)
        # Only "the plot was bad" (no task, no hint) reaches the gateway's fast tier.
        self.assertEqual(value(gateway, "slmgw_router_confidence_ratio_count", signal="fast"), 3)
        # Generate and GenerateStream, 4 tokens each, on the in-process decoder "chat".
        self.assertEqual(value(gateway, "slmgw_worker_time_to_first_token_seconds_count",
                               model="chat"), 6)
        self.assertEqual(value(gateway, "slmgw_worker_time_per_output_token_seconds_count",
                               model="chat"), 6)
        self.assertEqual(value(gateway, "slmgw_worker_active_sequences", model="chat"), 0)
        self.assertEqual(value(gateway, "slmgw_worker_kv_cache_used_bytes", model="chat"), 0)
        self.assertEqual(value(gateway, "slmgw_worker_kv_cache_budget_bytes", model="chat"),
                         8 * 1024 * 1024)  # kv_cache_mb: 8


if __name__ == "__main__":
    unittest.main()
