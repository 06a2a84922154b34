#!/usr/bin/env bash
# promtool on the committed Prometheus files: both scrape configurations (which load the rule
# files), the rules on their own, and the rule unit tests. Exit 77 (CTest skip) without promtool.
set -euo pipefail
if ! command -v promtool >/dev/null; then
  echo "SKIP: promtool is not installed (tools/install-deps.sh installs Debian's prometheus)"
  exit 77
fi
dir="$(cd "$(dirname "$0")/../../monitoring/prometheus" && pwd)"
# Debian's Prometheus is built without Kubernetes service discovery, so its promtool rejects
# kubernetes_sd_configs: check the production file with that block swapped for an empty static
# one (relabelling, rules and the rest are still checked) after checking the block's shape.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 - "$dir/prometheus.yml" "$tmp/prometheus.yml" <<'PY'
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
for job in config["scrape_configs"]:
    for sd in job.pop("kubernetes_sd_configs", []):
        assert set(sd) <= {"role", "namespaces", "selectors"}, f"{job['job_name']}: {sd}"
        assert sd["role"] in {"pod", "endpoints", "service", "node", "ingress"}, sd
        job.setdefault("static_configs", [{"targets": []}])
config["rule_files"] = [sys.argv[1].rsplit("/", 1)[0] + "/" + r for r in config["rule_files"]]
yaml.safe_dump(config, open(sys.argv[2], "w"))
PY
promtool check config "$tmp/prometheus.yml"
promtool check config "$dir/prometheus-local.yml"
promtool check rules "$dir"/rules/*.rules.yml
cd "$dir/tests"
promtool test rules *.test.yml
