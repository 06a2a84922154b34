"""Dashboards and rules reference only metrics that exist (docs/metrics.md) or are listed as
pending (monitoring/pending-metrics.txt), and the pending marks agree with that list. No
processes are started; this is the cheap check that keeps monitoring/ in step with the code."""
import unittest

import catalogue
import promql_refs


class ReferencesTest(unittest.TestCase):
    def setUp(self):
        self.documented, _ = catalogue.parse_catalogue()
        self.pending = promql_refs.pending_metrics()

    def test_pending_metrics_have_not_landed(self):
        landed = sorted(set(self.pending) & set(self.documented))
        self.assertEqual(landed, [], "now in docs/metrics.md: remove from "
                         "monitoring/pending-metrics.txt and unmark their panels in "
                         "monitoring/grafana/generate.js")

    def test_dashboards_reference_known_metrics_and_pending_marks_match(self):
        problems = []
        count = 0
        for board, title, pending, exprs in promql_refs.panels():
            names = set().union(*(promql_refs.metric_names(e) for e in exprs))
            count += 1
            unknown = names - set(self.documented) - set(self.pending)
            if unknown:
                problems.append(f"{board}: '{title}' uses undocumented {sorted(unknown)}")
            waiting = names & set(self.pending)
            if waiting and not pending:
                problems.append(f"{board}: '{title}' uses pending {sorted(waiting)} but is not "
                                "marked pending")
            if pending and not waiting:
                problems.append(f"{board}: '{title}' is marked pending but uses no pending metric")
        self.assertGreaterEqual(count, 30, "fewer panels than the four dashboards hold")
        self.assertEqual(problems, [], "\n".join(problems))

    def test_rules_reference_known_metrics(self):
        problems = []
        for path, name, expr in promql_refs.rules():
            unknown = promql_refs.metric_names(expr) - set(self.documented) - set(self.pending)
            if unknown:
                problems.append(f"{path}: {name} uses undocumented {sorted(unknown)}")
        self.assertEqual(problems, [], "\n".join(problems))

    def test_metric_name_extraction(self):
        self.assertEqual(promql_refs.metric_names(
            'histogram_quantile(0.9, sum by (le) (rate(slmgw_a_seconds_bucket[5m]))) / '
            'slmgw_b_total{x="slmgw_not"} + slmgw:c:rate5m'),
            {"slmgw_a_seconds", "slmgw_b_total", "slmgw_not"})


if __name__ == "__main__":
    unittest.main()
