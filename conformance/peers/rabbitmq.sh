#!/usr/bin/env bash
# Start or stop a private RabbitMQ node (Debian's rabbitmq-server) on loopback, as a reference
# peer for the conformance suites and the benchmarks.
#
#   conformance/peers/rabbitmq.sh start [PORT]   # installs rabbitmq-server if missing; default 5673
#   conformance/peers/rabbitmq.sh stop  [PORT]
#   conformance/peers/rabbitmq.sh status [PORT]
#
# Each PORT gets its own node (mqbridge-rmq-PORT@localhost), its own state under
# ${RABBITMQ_PEER_BASE:-/tmp/mqbridge-rabbitmq}-PORT (wiped on start), its own Erlang cookie (HOME
# is pointed there) and no plugins. It listens on 127.0.0.1:PORT only; the Erlang distribution
# port is PORT+20000 (or PORT-20000 above 45535). The system-wide service is never touched.
# On success `start` prints the AMQP URL (user guest/guest, vhost /) on stdout.
#
# With RABBITMQ_PEER_MQTT_PORT=MQTT_PORT set at `start`, the node also enables the rabbitmq_mqtt
# plugin with a listener on 127.0.0.1:MQTT_PORT (clients log in as guest/guest, from loopback),
# and `start` waits for that port too. Unset (the default), the node has no plugins.
set -euo pipefail

readonly start_timeout_seconds=90 # A cold Erlang VM on a 2-core machine boots in ~5-15 s.
readonly rabbit_sbin=/usr/lib/rabbitmq/bin

command=${1:-}
port=${2:-5673}
mqtt_port="${RABBITMQ_PEER_MQTT_PORT:-}"
base="${RABBITMQ_PEER_BASE:-/tmp/mqbridge-rabbitmq}-${port}"
node="mqbridge-rmq-${port}@localhost"

log() { echo "rabbitmq.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_rabbitmq() {
    [ -x "$rabbit_sbin/rabbitmq-server" ] && return 0
    log "installing rabbitmq-server (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y -q rabbitmq-server >&2; then
        as_root apt-get update -q >&2
        as_root apt-get install -y -q rabbitmq-server >&2
    fi
}

# Environment shared by the server and the CLI tools, so that rabbitmqctl finds the node and
# reads the same cookie.
node_env() {
    local dist_port=$((port + 20000))
    [ "$dist_port" -le 65535 ] || dist_port=$((port - 20000))
    export HOME="$base/home"
    export RABBITMQ_NODENAME="$node"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$port"
    export RABBITMQ_DIST_PORT="$dist_port"
    export RABBITMQ_CTL_DIST_PORT_MIN=$((dist_port + 1))
    export RABBITMQ_CTL_DIST_PORT_MAX=$((dist_port + 11))
    export RABBITMQ_CONF_ENV_FILE="$base/rabbitmq-env.conf"
    export RABBITMQ_CONFIG_FILE="$base/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$base/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins"
    export RABBITMQ_MNESIA_BASE="$base/mnesia"
    export RABBITMQ_LOG_BASE="$base/log"
    export RABBITMQ_PID_FILE="$base/rabbitmq.pid"
    # Loopback only: the AMQP listener (above), epmd if this node starts it, and the Erlang
    # distribution listeners of the node and of the CLI tools.
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
    install_rabbitmq
    if port_open "$port"; then
        log "port $port is already in use; stop what is there first"
        exit 1
    fi
    rm -rf "$base"
    mkdir -p "$base/home" "$base/mnesia" "$base/log"
    : >"$base/rabbitmq-env.conf"
    echo '[].' >"$base/enabled_plugins"
    echo '[].' >"$base/advanced.config"
    cat >"$base/rabbitmq.conf" <<'EOF'
loopback_users.guest = true
# The peer is a reference for behaviour, not for resource alarms: never block publishers.
disk_free_limit.absolute = 1
vm_memory_high_watermark.relative = 0.9
EOF
    if [ -n "$mqtt_port" ]; then
        echo '[rabbitmq_mqtt].' >"$base/enabled_plugins"
        echo "mqtt.listeners.tcp.default = 127.0.0.1:$mqtt_port" >>"$base/rabbitmq.conf"
    fi
    if pgrep -x epmd >/dev/null; then echo no >"$base/started-epmd"; else echo yes >"$base/started-epmd"; fi
    node_env
    log "starting $node on 127.0.0.1:$port (state in $base)"
    # setsid: the node must outlive this script and not receive the caller's terminal signals.
    setsid "$rabbit_sbin/rabbitmq-server" >"$base/log/startup.log" 2>&1 </dev/null &
    echo $! >"$base/wrapper.pid"
    local deadline=$((SECONDS + start_timeout_seconds))
    until port_open "$port"; do
        if ! kill -0 "$(cat "$base/wrapper.pid")" 2>/dev/null; then
            log "rabbitmq-server exited during boot; last log lines:"
            tail -n 30 "$base/log/startup.log" >&2 || true
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "no listener on port $port after ${start_timeout_seconds}s"
            tail -n 30 "$base/log/startup.log" >&2 || true
            stop
            exit 1
        fi
        sleep 0.5
    done
    # The listener opens before the boot finishes; wait for the boot to complete.
    "$rabbit_sbin/rabbitmqctl" -q await_startup --timeout "$start_timeout_seconds" >&2
    if [ -n "$mqtt_port" ] && ! port_open "$mqtt_port"; then
        log "no MQTT listener on port $mqtt_port after the boot; last log lines:"
        tail -n 30 "$base/log/startup.log" >&2 || true
        stop
        exit 1
    fi
    log "started $node ($((SECONDS))s)"
    echo "amqp://guest:guest@127.0.0.1:$port/%2F"
}

stop() {
    if [ ! -d "$base" ]; then
        log "no state for port $port ($base); nothing to stop"
        return 0
    fi
    node_env
    local pid=""
    [ -f "$RABBITMQ_PID_FILE" ] && pid=$(cat "$RABBITMQ_PID_FILE")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        # With the pid file, rabbitmqctl stop also waits for the VM to exit.
        if ! timeout 60 "$rabbit_sbin/rabbitmqctl" -q stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1; then
            log "rabbitmqctl stop failed; sending TERM"
        fi
    fi
    # Whatever rabbitmqctl managed, make sure the VM and its wrapper shell are gone.
    local p
    for p in "$pid" "$(cat "$base/wrapper.pid" 2>/dev/null || true)"; do
        [ -n "$p" ] || continue
        kill -TERM "$p" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
        kill -KILL "$p" 2>/dev/null || true
    done
    # epmd outlives the node; stop it only if this script started it (epmd -kill also refuses
    # while any other node is still registered).
    if [ "$(cat "$base/started-epmd" 2>/dev/null || true)" = yes ]; then
        epmd -kill >/dev/null 2>&1 || true
    fi
    log "stopped $node"
}

status() {
    node_env
    if "$rabbit_sbin/rabbitmqctl" -q status >/dev/null 2>&1; then
        echo running
    else
        echo stopped
        return 1
    fi
}

case "$command" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *)
        echo "usage: $0 start|stop|status [PORT]" >&2
        exit 2
        ;;
esac
