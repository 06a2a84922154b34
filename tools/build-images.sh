#!/usr/bin/env bash
# Builds the container images of deploy/docker/*.Dockerfile without a Docker engine, with
# Debian's buildah (chroot isolation, vfs storage: no daemon, no overlay mounts, no user
# namespaces needed; runs as root). The base images the Dockerfiles name (debian:12 and
# debian:12-slim) are made locally with debootstrap from the Debian mirror in the host's apt
# sources, so the only network access is that mirror (and the npm registry, for the
# `npm ci` that tools/install-deps.sh runs in the build stage).
#
# Usage (from anywhere; as root):
#   tools/build-images.sh [--ref REF] [--tag TAG] [--models baked|none] [router] [worker]
#     --ref     git revision to build (default HEAD): the build context is `git archive REF`,
#               so uncommitted and ignored files (build dirs, node_modules) never enter it
#     --tag     image tag (default: the revision's short hash); images are slm-router:TAG and
#               slm-worker:TAG in buildah's local storage
#     --models  the worker Dockerfile's MODELS build argument (default baked)
#   Then, e.g.: buildah --storage-driver vfs push slm-worker:TAG docker-archive:/tmp/w.tar
#
# Slow (a full install and C++ build per image on the build machine): not part of `make test`.
# docs/operations.md ("Building the images") records sizes and times.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
ref=HEAD tag="" models=baked components=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ref) ref="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    router|worker) components+=("$1"); shift ;;
    *) echo "build-images: unknown argument '$1'" \
         "(expected --ref, --tag, --models, router, worker)" >&2
       exit 2 ;;
  esac
done
[ ${#components[@]} -gt 0 ] || components=(router worker)
case "$models" in
  baked|none) ;;
  *) echo "build-images: --models must be baked or none, not '$models'" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "build-images: run as root (buildah's chroot isolation and debootstrap need it)" >&2
  exit 1
fi
rev="$(git -C "$repo" rev-parse --verify "$ref^{commit}")"
[ -n "$tag" ] || tag="$(git -C "$repo" rev-parse --short "$rev")"

missing=()
for tool in buildah debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-images: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

buildah=(buildah --storage-driver vfs)
mirror="$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ \
  2>/dev/null | head -n1 | tr -d ' ' || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
work="$(mktemp -d /var/tmp/slm-images.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# Base images: Debian 12 minbase from debootstrap, committed as docker.io/library/debian:12 and
# :12-slim (what FROM debian:12 resolves to), once; later runs reuse them.
if ! "${buildah[@]}" inspect --type image docker.io/library/debian:12 >/dev/null 2>&1; then
  echo "build-images: debootstrap bookworm from $mirror"
  start=$SECONDS
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  # The same apt sources as Debian's official image; no downloaded packages or lists kept.
  cat >"$work/rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian*}/debian-security bookworm-security main
EOF
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  container="$("${buildah[@]}" from scratch)"
  mount="$("${buildah[@]}" mount "$container")"
  tar -C "$work/rootfs" -c . | tar -C "$mount" -x
  "${buildah[@]}" umount "$container" >/dev/null
  "${buildah[@]}" config --cmd /bin/bash \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$container"
  "${buildah[@]}" commit -q "$container" docker.io/library/debian:12 >/dev/null
  "${buildah[@]}" tag docker.io/library/debian:12 docker.io/library/debian:12-slim
  "${buildah[@]}" rm "$container" >/dev/null
  rm -rf "$work/rootfs"
  echo "build-images: base image debian:12 made in $((SECONDS - start)) s"
fi

# The build context: the committed tree at $rev.
mkdir "$work/context"
git -C "$repo" archive "$rev" | tar -C "$work/context" -x
for component in "${components[@]}"; do
  dockerfile="deploy/docker/$component.Dockerfile"
  args=()
  [ "$component" = worker ] && args=(--build-arg "MODELS=$models")
  echo "build-images: $dockerfile -> slm-$component:$tag"
  start=$SECONDS
  "${buildah[@]}" bud --isolation chroot --pull=never --layers \
    --ignorefile "$work/context/$dockerfile.dockerignore" \
    -f "$work/context/$dockerfile" -t "slm-$component:$tag" "${args[@]}" "$work/context"
  seconds=$((SECONDS - start))
  size="$("${buildah[@]}" images --format '{{.Size}}' "slm-$component:$tag" 2>/dev/null || true)"
  echo "build-images: slm-$component:$tag built in ${seconds} s${size:+, $size}"
done
"${buildah[@]}" images
