# syntax=docker/dockerfile:1
# slm-router: the public gRPC API; dispatches to slm-worker pools. Build from the repository root:
#   docker build -f deploy/docker/router.Dockerfile -t slm-router .
# Checked statically by tests/deploy; built for real (no Docker engine) by tools/build-images.sh.

# Build stage: the same install script and CMake build as `make build`.
FROM debian:12 AS build
WORKDIR /src
COPY tools/install-deps.sh tools/install-deps.sh
# --no-npm: the npm tools are for tests and dashboards; the build reaches only the Debian mirror.
RUN bash tools/install-deps.sh --no-npm && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build --target slm-router slmctl
# The Debian packages that hold the binaries' shared libraries, for the runtime stage. A library
# is registered under the path ldd prints (/lib/... for libc6, zlib1g) or under its real path.
RUN for lib in $(ldd build/slm-router build/slmctl | awk '/=>/ {print $3}' | sort -u); do \
      { dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")"; } | cut -d: -f1; \
    done | sort -u > build/runtime-packages.txt

# Runtime stage: only the shared libraries the binary needs, a non-root user.
FROM debian:12-slim AS runtime
COPY --from=build /src/build/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -qq \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y -qq --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 slm \
 && useradd --system --uid 10001 --gid slm --no-create-home --shell /usr/sbin/nologin slm
COPY --from=build /src/build/slm-router /src/build/slmctl /usr/local/bin/
USER 10001:10001
EXPOSE 50051 9464
ENTRYPOINT ["/usr/local/bin/slm-router"]
CMD ["--config", "/etc/slm-gateway/router.yaml"]
