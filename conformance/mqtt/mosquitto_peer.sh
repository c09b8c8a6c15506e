#!/usr/bin/env bash
# A private Mosquitto, the reference for the MQTT suites.
#
#   conformance/mqtt/mosquitto_peer.sh start PORT   installs mosquitto if missing, starts it on
#                                                   127.0.0.1:PORT, prints the URL
#   conformance/mqtt/mosquitto_peer.sh stop PORT
#
# It allows anonymous clients and knows the user guest/guest, as mqbridge does from loopback.
# Its state (config, password file, pid, log) lives in MOSQUITTO_PEER_BASE (default
# /tmp/mqbridge-mosquitto-PORT), wiped on start; persistence is off.
set -euo pipefail

command=${1:?usage: $0 start|stop PORT}
port=${2:?usage: $0 start|stop PORT}
base=${MOSQUITTO_PEER_BASE:-${TMPDIR:-/tmp}/mqbridge-mosquitto-$port}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

stop() {
    [ -s "$base/pid" ] || return 0
    local pid deadline=$((SECONDS + 10))
    pid=$(cat "$base/pid")
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$base/pid"
}

start() {
    if ! command -v mosquitto >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        as_root apt-get install -y -q mosquitto >&2 ||
            { as_root apt-get update -q >&2 && as_root apt-get install -y -q mosquitto >&2; }
    fi
    stop
    rm -rf "$base"
    mkdir -p "$base"
    : >"$base/passwd"
    mosquitto_passwd -b "$base/passwd" guest guest
    chmod 644 "$base/passwd" # Mosquitto drops to its own user when started as root.
    cat >"$base/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
password_file $base/passwd
persistence false
EOF
    mosquitto -c "$base/mosquitto.conf" >"$base/log" 2>&1 </dev/null &
    echo $! >"$base/pid"
    local deadline=$((SECONDS + 10))
    # Not a port probe: another program may hold the port (mosquitto then exits).
    until grep -q ' running$' "$base/log"; do
        kill -0 "$(cat "$base/pid")" 2>/dev/null || { cat "$base/log" >&2; exit 1; }
        [ "$SECONDS" -lt "$deadline" ] || { echo "mosquitto did not listen on $port" >&2; exit 1; }
        sleep 0.1
    done
    echo "mqtt://127.0.0.1:$port"
}

case "$command" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop PORT" >&2 && exit 2 ;;
esac
