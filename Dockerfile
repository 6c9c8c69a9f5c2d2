# Earmark service image. Build it with deploy/container/build-image (no registry needed: it makes
# the Debian base image locally with debootstrap), or with any engine that can pull debian:
#   podman build --format docker -t earmark .
# Run:  podman run -p 8080:8080 -v "$PWD/../shared/models/efficientat:/models:ro" earmark
ARG BASE=docker.io/library/debian:bookworm-slim

# ---- build stage: -dev packages, compiler, ccache ------------------------------------------------
FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive
COPY scripts/install-deps /src/scripts/install-deps
# Downloaded .debs stay in a build cache mount, so a change to install-deps re-downloads nothing.
RUN --mount=type=cache,id=earmark-apt,target=/var/cache/apt/archives \
    /src/scripts/install-deps --build-only && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# ccache hashes LANG/LC_*: the same value as CI's test build (.ci/run) so that its objects hit.
ENV LANG=C.UTF-8
# Only what the binary is built from, so edits to docs, tests or deploy/ keep the cached layers.
COPY CMakeLists.txt ./
COPY scripts/build scripts/build
COPY include include
COPY src src
COPY apps apps
# The built-in false-alarm calibration table, compiled into the library (data/calibration/README.md).
COPY data/calibration/mn04_as.json data/calibration/mn04_as.json
COPY deploy/container/runtime-packages /usr/local/bin/runtime-packages
# ccache: a build cache mount, or the host's ccache folder when deploy/container/build-image is given
# --ccache-dir (CI: the objects of its test build are reused, so the image compiles next to nothing).
# The same flags as scripts/test's build (RelWithDebInfo, -Werror; the binary is stripped below)
# without tests and benchmarks; CCACHE_BASEDIR/NOHASHDIR make hits independent of the checkout path.
ARG EARMARK_CCACHE_DIR=/ccache
RUN --mount=type=cache,id=earmark-ccache,target=/ccache \
    CCACHE_DIR="$EARMARK_CCACHE_DIR" CCACHE_BASEDIR=/src CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE=2G \
    CMAKE_CXX_COMPILER_LAUNCHER=ccache EARMARK_JOBS="$(nproc)" \
    sh -c 'ccache --zero-stats >/dev/null && ./scripts/build "$@"' build -DEARMARK_BUILD_TESTS=OFF -DEARMARK_BUILD_BENCH=OFF \
 && (CCACHE_DIR="$EARMARK_CCACHE_DIR" ccache --show-stats | grep -iE '^ *(hits|misses|cacheable)' || true) \
 && mkdir -p /out \
 && strip --strip-unneeded -o /out/earmark build/earmark \
 && runtime-packages /out/earmark > /out/runtime-packages \
 && /out/earmark version

# ---- runtime stage: shared libraries only, non-root ----------------------------------------------
FROM ${BASE} AS runtime
ARG EARMARK_VERSION=dev
LABEL org.opencontainers.image.title="earmark" \
      org.opencontainers.image.description="Sound event detection service (EfficientAT AudioSet, LibTorch)" \
      org.opencontainers.image.version="${EARMARK_VERSION}" \
      org.opencontainers.image.licenses="MIT"
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/runtime-packages /tmp/runtime-packages
# The packages that own the libraries the binary loads (ldd, see deploy/container/runtime-packages),
# OpenBLAS as the BLAS/LAPACK alternative (LibTorch's matmuls; the reference BLAS is ~30x slower),
# curl + ca-certificates for the model download and the health check, tini as PID 1.
RUN --mount=type=cache,id=earmark-apt,target=/var/cache/apt/archives \
    apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends $(cat /tmp/runtime-packages) \
      libopenblas0-pthread ca-certificates curl tini >/dev/null \
 && for lib in libblas.so.3 liblapack.so.3; do \
      p=$(ls /usr/lib/*/openblas-pthread/$lib) && t=$(basename "$(dirname "$(dirname "$p")")") \
      && update-alternatives --set "$lib-$t" "$p" >/dev/null || exit 1; \
    done \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/* /tmp/runtime-packages \
 && useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin earmark \
 && mkdir -p /models /data \
 && chown earmark:earmark /models /data
COPY --from=build /out/earmark /usr/local/bin/earmark
COPY scripts/fetch-models /usr/local/bin/earmark-fetch-models
COPY deploy/container/entrypoint /usr/local/bin/earmark-entrypoint
# Models: mount a folder with mn04_as_mAP_432.pt + class_labels_indices.csv at /models (read-only is
# fine), or let the entrypoint download them (sha256-verified) when /models is empty and writable.
# (PATH explicitly: an imported base image, as build-image makes, has no environment.)
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    EARMARK_MODELS=/models \
    EARMARK_STORE=/data \
    EARMARK_QUEUE=memory \
    HOME=/tmp
USER 10001:10001
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${EARMARK_PORT:-8080}/healthz" || exit 1
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/earmark-entrypoint"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
