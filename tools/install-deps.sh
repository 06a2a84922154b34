#!/usr/bin/env bash
# Installs the Debian 12 packages slm-gateway needs to build, run and test.
# Idempotent: installs only what is missing; uses sudo when not root.
# --no-npm: skip Node.js and the npm tools (the container images' build stage: they are for
# tests and dashboards, and the build then reaches only the Debian mirror).
set -euo pipefail

with_npm=1
for arg in "$@"; do
  case "$arg" in
    --no-npm) with_npm=0 ;;
    *) echo "install-deps: unknown argument '$arg' (expected --no-npm)" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libdnnl-dev ocl-icd-opencl-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev libyaml-cpp-dev libre2-dev nlohmann-json3-dev
  libcurl4-openssl-dev
  python3-grpcio python3-protobuf python3-numpy python3-torch python3-yaml
  curl
  prometheus yamllint
  sentencepiece fortunes
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm come with the machine image; install Debian's when they are absent.
if [ "$with_npm" -eq 1 ]; then command -v npm >/dev/null 2>&1 || missing+=(nodejs npm); fi
# kubectl renders the Kustomize overlays (tests/deploy). Debian's kubernetes-client (1.20) where
# none is on PATH: installing it beside another kubectl package would collide on /usr/bin/kubectl.
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} Debian packages present"
else
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm tools pinned in tools/npm/package-lock.json (buf for proto lint; the Grafana SDK,
# kubernetes-models, kubernetes-types and typescript for monitoring/ and deploy/). npm ci runs
# again whenever the lock file differs from the one last installed (the stamp).
[ "$with_npm" -eq 1 ] || exit 0
npm_dir="$(cd "$(dirname "$0")" && pwd)/npm"
npm_stamp="$npm_dir/node_modules/.slm-installed-lock.json"
if [ ! -x "$npm_dir/node_modules/.bin/buf" ] || ! cmp -s "$npm_dir/package-lock.json" "$npm_stamp"; then
  echo "install-deps: npm ci in $npm_dir"
  (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$npm_dir/package-lock.json" "$npm_stamp"
fi
