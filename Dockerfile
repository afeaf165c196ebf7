# Conclave container image: the `conclave` binary (gateway `serve` and agent `worker`), the shipped
# configuration and the Meridian example. Used by the Helm chart in deploy/helm/conclave
# (docs/deploy.md).
#
#   docker build -t REGISTRY/conclave:TAG .
#
# The runtime image holds no model and no llama-server: on Kubernetes, inference runs in its own
# llama.cpp pods (or an external OpenAI-compatible endpoint) and Conclave uses provider `openai`.

# Swift 6.3.1 on Debian 12 (bookworm): the toolchain the project is built and tested with.
ARG SWIFT_IMAGE=swift:6.3.1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${SWIFT_IMAGE} AS builder

# Headers for the system libraries the package links: SQLite (GRDB), libpq (the SQL connector's
# PostgreSQL driver) and the NATS C client.
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update -q \
    && apt-get install -y -q --no-install-recommends libsqlite3-dev libnats-dev libpq-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# Package.resolved is not committed; `Package.*` copies it when the build context has one.
# The manifest declares the test targets too, so their folders must exist for it to load.
COPY Package.* ./
COPY Sources ./Sources
COPY Tests ./Tests
# SwiftPM's resource bundles (the built-in workflows, GRDB's) are looked up next to the binary,
# so they are staged with it.
RUN swift build -c release --product conclave --static-swift-stdlib \
    && mkdir -p /staging \
    && BIN="$(swift build -c release --show-bin-path)" \
    && cp "$BIN/conclave" /staging/ \
    && cp -R "$BIN"/*.resources /staging/ \
    && strip /staging/conclave

# ---------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime

# Runtime libraries only: SQLite, libpq, pdftotext (PDF ingestion), OpenBLAS (the MiniLM embedder loads
# it at run time), the NATS C client, CA certificates, and curl for the health check.
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update -q \
    && apt-get install -y -q --no-install-recommends \
        libsqlite3-0 libpq5 poppler-utils libopenblas0-pthread libnats3.4 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# A fixed non-root user; the Helm chart runs the pods as the same uid.
RUN groupadd --system --gid 10001 conclave \
    && useradd --system --uid 10001 --gid 10001 --home-dir /opt/conclave --shell /usr/sbin/nologin conclave

COPY --from=builder /staging/ /usr/local/bin/
COPY --chown=root:root config/ /opt/conclave/config/
COPY --chown=root:root examples/meridian/ /opt/conclave/examples/meridian/
# var/ is where relative default paths write (the audit key, logs); the chart mounts an emptyDir
# there. `conclave --help` fails the build when a shared library the binary needs is missing.
RUN mkdir -p /opt/conclave/var && chown 10001:10001 /opt/conclave/var \
    && conclave --help >/dev/null

USER 10001:10001
WORKDIR /opt/conclave
ENV CONCLAVE_HOME=/opt/conclave

EXPOSE 8080

# Any non-zero exit (curl -f fails on an HTTP error) marks the container unhealthy.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]

ENTRYPOINT ["conclave"]
CMD ["serve", "--config", "/etc/conclave/conclave.yaml"]
