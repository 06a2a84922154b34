#!/usr/bin/env bash
# The committed dashboards are what monitoring/grafana/generate.js builds (exit 77, CTest skip,
# when node or the npm packages are missing: tools/install-deps.sh installs them).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
if ! command -v node >/dev/null || [ ! -d "$root/tools/npm/node_modules/@grafana/grafana-foundation-sdk" ]; then
  echo "SKIP: node or @grafana/grafana-foundation-sdk missing (run tools/install-deps.sh)"
  exit 77
fi
cd "$root"
node monitoring/grafana/generate.js --check
echo "dashboards up to date"
