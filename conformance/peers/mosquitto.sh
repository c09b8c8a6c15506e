#!/usr/bin/env bash
# Start or stop a private Mosquitto broker (Debian's mosquitto) on loopback, as a reference
# peer for the MQTT benchmarks and conformance checks.
#
#   conformance/peers/mosquitto.sh start [PORT]   # installs mosquitto if missing; default 18832
#   conformance/peers/mosquitto.sh stop  [PORT]
#   conformance/peers/mosquitto.sh status [PORT]
#
# Each PORT gets its own broker with its own configuration and state under
# ${MOSQUITTO_PEER_BASE:-/tmp/mqbridge-bench-mosquitto}-PORT (wiped on start): a listener on
# 127.0.0.1:PORT only, anonymous clients allowed (any user name and password are accepted too),
# no connection limit, no persistence. The system-wide service is never touched. The broker
# inherits the caller's open-file limit, so raise it (`ulimit -n`) before `start` for many
# connections. On success `start` prints the broker's process id on stdout.
set -euo pipefail

readonly start_timeout_seconds=30 # Mosquitto opens its listener in milliseconds.
readonly mosquitto_bin=/usr/sbin/mosquitto

command=${1:-}
port=${2:-18832}
base="${MOSQUITTO_PEER_BASE:-/tmp/mqbridge-bench-mosquitto}-${port}"

log() { echo "mosquitto.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_mosquitto() {
    [ -x "$mosquitto_bin" ] && return 0
    log "installing mosquitto (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y -q mosquitto >&2; then
        as_root apt-get update -q >&2
        as_root apt-get install -y -q mosquitto >&2
    fi
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
    install_mosquitto
    if port_open "$port"; then
        log "port $port is already in use; stop what is there first"
        exit 1
    fi
    rm -rf "$base"
    mkdir -p "$base"
    # Mosquitto drops root privileges to this user when started as root; `user root` keeps it
    # able to write its log in $base.
    cat >"$base/mosquitto.conf" <<EOF_CONF
listener $port 127.0.0.1
allow_anonymous true
max_connections -1
persistence false
user $(id -un)
log_dest file $base/mosquitto.log
log_type error
log_type warning
EOF_CONF
    log "starting mosquitto on 127.0.0.1:$port (state in $base)"
    setsid "$mosquitto_bin" -c "$base/mosquitto.conf" >"$base/startup.log" 2>&1 </dev/null &
    echo $! >"$base/mosquitto.pid"
    local deadline=$((SECONDS + start_timeout_seconds))
    until port_open "$port"; do
        if ! kill -0 "$(cat "$base/mosquitto.pid")" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            log "mosquitto did not open port $port; last log lines:"
            tail -n 20 "$base/startup.log" "$base/mosquitto.log" >&2 2>/dev/null || true
            stop
            exit 1
        fi
        sleep 0.1
    done
    log "started mosquitto $("$mosquitto_bin" -h 2>/dev/null | sed -n 's/^mosquitto version //p')"
    cat "$base/mosquitto.pid"
}

stop() {
    if [ ! -f "$base/mosquitto.pid" ]; then
        log "no state for port $port ($base); nothing to stop"
        return 0
    fi
    local pid
    pid="$(cat "$base/mosquitto.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$base/mosquitto.pid"
    log "stopped mosquitto on port $port"
}

status() {
    if [ -f "$base/mosquitto.pid" ] && kill -0 "$(cat "$base/mosquitto.pid")" 2>/dev/null; then
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
