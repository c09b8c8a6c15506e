# syntax=docker/dockerfile:1
#
# mqbridge container image.
#
#   docker build -t mqbridge .
#   docker run -d --name mqbridge -v mqbridge-data:/data \
#       -e MQBRIDGE_DEFAULT_USER=admin -e MQBRIDGE_DEFAULT_PASS=change-me \
#       -e MQBRIDGE_AWS_ACCESS_KEYS=AKIAADMIN:change-me-too:admin \
#       -p 5672:5672 -p 1883:1883 -p 61613:61613 -p 15675:15675 -p 9324:9324 -p 15672:15672 \
#       mqbridge
#
# MQBRIDGE_DEFAULT_USER / MQBRIDGE_DEFAULT_PASS create the initial user on first start (an empty
# /data). Set them: the built-in guest/guest user may only connect from loopback (RabbitMQ's
# rule), and inside a container every client arrives from outside loopback. For the same reason
# the SQS API needs an access key (ID:SECRET:USER, signed SigV4 by the SDKs); without one it
# accepts loopback clients only.
# Any other setting can be given as an MQBRIDGE_* variable or a flag after the image name.
#
# Ports: AMQP 5672, AMQPS 5671, MQTT 1883, MQTTS 8883, STOMP 61613, STOMP+TLS 61614,
# WebSocket 15675 (MQTT or STOMP), WSS 15676, SQS/SNS HTTP API 9324, management and /metrics 15672.

FROM rust:1-slim-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the crates.io downloads and the build between image builds; the binary
# is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin mqbridge \
    && install -D -m 0755 target/release/mqbridge /out/mqbridge

FROM debian:bookworm-slim
# ca-certificates: for outbound TLS (SNS HTTPS subscriptions). Unpinned on purpose: the Debian
# point release decides the version, and a pin would break at the next one.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 mqbridge \
    && useradd --system --uid 10001 --gid mqbridge --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin mqbridge \
    && install -d -o mqbridge -g mqbridge -m 0750 /data
COPY --from=builder /out/mqbridge /usr/local/bin/mqbridge
COPY LICENSE /usr/share/doc/mqbridge/LICENSE

ENV MQBRIDGE_BIND=0.0.0.0 \
    MQBRIDGE_DATA_DIR=/data
VOLUME /data
EXPOSE 5672 5671 1883 8883 61613 61614 15675 15676 9324 15672
# Numeric, so that runtimes enforcing non-root (runAsNonRoot) can check it.
USER 10001:10001
WORKDIR /data
# The broker is PID 1: it handles SIGTERM itself (graceful shutdown: drain, flush, exit).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/mqbridge"]
