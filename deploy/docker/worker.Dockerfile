# syntax=docker/dockerfile:1
# slm-worker: serves one model over slmgw.v1.WorkerService. Build from the repository root:
#   docker build -f deploy/docker/worker.Dockerfile -t slm-worker .
# Models: the repository's models/ are baked into /models (--models_dir); a deployment that
# mounts its own volume at /models replaces them (build with --build-arg MODELS=none to bake
# none). Checked statically by tests/deploy; built for real (no Docker engine) by
# tools/build-images.sh.

FROM debian:12 AS build
WORKDIR /src
COPY tools/install-deps.sh tools/install-deps.sh
# --no-npm: the npm tools are for tests and dashboards; the build reaches only the Debian mirror.
RUN bash tools/install-deps.sh --no-npm && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build --target slm-worker slmctl
# The Debian packages that hold the binaries' shared libraries, for the runtime stage. A library
# is registered under the path ldd prints (/lib/... for libc6, zlib1g) or under its real path.
RUN for lib in $(ldd build/slm-worker build/slmctl | awk '/=>/ {print $3}' | sort -u); do \
      { dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")"; } | cut -d: -f1; \
    done | sort -u > build/runtime-packages.txt

FROM debian:12-slim AS runtime
ARG MODELS=baked
COPY --from=build /src/build/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -qq \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y -qq --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 slm \
 && useradd --system --uid 10001 --gid slm --no-create-home --shell /usr/sbin/nologin slm
COPY --from=build /src/build/slm-worker /src/build/slmctl /usr/local/bin/
COPY models/ /models/
RUN if [ "$MODELS" = "none" ]; then rm -rf /models/*; fi
ENV OMP_WAIT_POLICY=PASSIVE SLM_MODELS_DIR=/models
USER 10001:10001
EXPOSE 50061 9464
ENTRYPOINT ["/usr/local/bin/slm-worker"]
CMD ["--config", "/etc/slm-gateway/worker.yaml", "--models_dir", "/models"]
