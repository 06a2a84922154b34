"""Metric names referenced by the committed dashboards and Prometheus rules."""
import glob
import json
import os
import re

import yaml

import catalogue

MONITORING = os.path.join(catalogue.REPO, "monitoring")
DASHBOARDS = sorted(glob.glob(os.path.join(MONITORING, "grafana", "dashboards", "*.json")))
RULE_FILES = sorted(glob.glob(os.path.join(MONITORING, "prometheus", "rules", "*.rules.yml")))
PENDING_PATH = os.path.join(MONITORING, "pending-metrics.txt")
# Grafana's interval variables, replaced by fixed windows to run a panel's query directly.
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__interval": "5s", "$__range": "5m"}


def pending_metrics():
    """{name: reason} from monitoring/pending-metrics.txt."""
    result = {}
    with open(PENDING_PATH, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                result[name] = reason.strip()
    return result


def panels():
    """Yields (dashboard file, panel title, pending reason or None, [expr])."""
    for path in DASHBOARDS:
        with open(path, encoding="utf-8") as f:
            board = json.load(f)
        for panel in board.get("panels", []):
            if panel.get("type") == "row":
                continue
            match = re.match(r"\[pending: ([^\]]*)\]", panel.get("description", ""))
            yield (os.path.basename(path), panel["title"], match.group(1) if match else None,
                   [t["expr"] for t in panel.get("targets", [])])


def rules():
    """Yields (rule file, record or alert name, expr)."""
    for path in RULE_FILES:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for group in doc["groups"]:
            for rule in group["rules"]:
                yield os.path.basename(path), rule.get("record") or rule.get("alert"), rule["expr"]


def recorded_names():
    return {name for _, name, _ in rules() if ":" in name or name.startswith("gen_ai_")}


def metric_names(expr):
    """slmgw_* metric names in a PromQL expression, histogram suffixes removed."""
    names = set()
    for name in re.findall(r"\b(slmgw_[a-z0-9_]+)", expr):
        names.add(re.sub(r"_(bucket|sum|count)$", "", name))
    return names


def substitute(expr):
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr
