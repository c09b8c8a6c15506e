#!/usr/bin/env bash
# benches/compare-ws-tls.sh: MQTT over WebSocket and over TLS, mqbridge against Mosquitto and
# RabbitMQ's Web-MQTT plugin, same machine, same run, same load tool (issue 5's benchmark).
#
# Starts on loopback:
# - mqbridge with its plain MQTT, WebSocket (/ws, subprotocol mqtt) and MQTTS listeners, the
#   certificate and key of a throwaway CA generated here with openssl (every other listener on
#   a free port);
# - Mosquitto (Debian's mosquitto) from this script's own configuration: a plain listener, a
#   `protocol websockets` listener and a TLS listener with the same certificate;
# - RabbitMQ (Debian's rabbitmq-server) as conformance/peers/rabbitmq.sh starts its private
#   node, with the rabbitmq_web_mqtt plugin (path /ws).
# Then runs `mqbridge-bench mqtt` QoS 0, 1 publisher -> 1 subscriber, 100 B, over each
# transport a broker offers here, prints Markdown tables on stdout and stops everything on
# exit. The plain TCP cells give the WebSocket/TCP ratio; RabbitMQ is measured over WebSocket
# only (issue 5 compares TLS against Mosquitto).
#
# Environment (all optional):
#   BENCH_SECONDS=10          measured seconds per cell (after a 1 s warm-up)
#   BENCH_ROUNDS=1            rounds; with more than one, each cell is the median of the rounds
#   BENCH_BROKERS="mqbridge mosquitto rabbitmq"   which brokers to run
#   ports: BENCH_MQBRIDGE_{TCP,WS,TLS}_PORT=18871/18872/18873,
#   BENCH_MOSQUITTO_{TCP,WS,TLS}_PORT=18874/18875/18876, BENCH_RABBITMQ_WS_PORT=18877,
#   BENCH_RABBITMQ_PORT=5675 (RabbitMQ's AMQP port)
#   BENCH_QUIET_WAIT_SECONDS=60  before each cell, wait up to this long for idle cores
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
readonly repo_root
cd "$repo_root"

readonly seconds_per_scenario="${BENCH_SECONDS:-10}"
readonly rounds="${BENCH_ROUNDS:-1}"
readonly brokers="${BENCH_BROKERS:-mqbridge mosquitto rabbitmq}"
readonly rabbitmq_ws_port="${BENCH_RABBITMQ_WS_PORT:-18877}"
readonly rabbitmq_port="${BENCH_RABBITMQ_PORT:-5675}"
readonly target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
readonly quiet_wait_seconds="${BENCH_QUIET_WAIT_SECONDS:-60}"
readonly quiet_busy_percent_max=10
readonly scenario_slack_seconds=30
readonly start_timeout_seconds=90
readonly all_brokers=(mqbridge mosquitto rabbitmq)
readonly transports=(tcp ws tls)
# Which transports each broker is measured on, and where.
declare -A port=(
    [mqbridge.tcp]="${BENCH_MQBRIDGE_TCP_PORT:-18871}" [mqbridge.ws]="${BENCH_MQBRIDGE_WS_PORT:-18872}"
    [mqbridge.tls]="${BENCH_MQBRIDGE_TLS_PORT:-18873}"
    [mosquitto.tcp]="${BENCH_MOSQUITTO_TCP_PORT:-18874}" [mosquitto.ws]="${BENCH_MOSQUITTO_WS_PORT:-18875}"
    [mosquitto.tls]="${BENCH_MOSQUITTO_TLS_PORT:-18876}"
    [rabbitmq.ws]="$rabbitmq_ws_port"
)
# Same credentials everywhere: RabbitMQ needs guest/guest from loopback; the others accept them.
readonly credentials=(--username guest --password guest)

log() { echo "compare-ws-tls.sh: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
listener_pid() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}
wait_for_port() { # PORT PID: until PORT opens, PID dies or the start timeout passes
    local deadline=$((SECONDS + start_timeout_seconds))
    until port_open "$1"; do
        kill -0 "$2" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.3
    done
}
stop_pid() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.25; done
    kill -KILL "$1" 2>/dev/null || true
}

declare -A broker_status=([mqbridge]="not run" [mosquitto]="not run" [rabbitmq]="not run")
work_dir="$(mktemp -d /tmp/mqbridge-compare-ws-tls.XXXXXX)"
mqbridge_pid="" mosquitto_pid="" rabbitmq_pid=""

# A throwaway CA and a server certificate for IP 127.0.0.1, for every TLS listener here; the
# load tool trusts the CA (--ca-file).
make_certificate() {
    local dir="$work_dir/tls"
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mqbridge bench CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
}

# --- mqbridge -------------------------------------------------------------------------------
start_mqbridge() {
    cargo build --release -q --bin mqbridge || return 1
    mkdir -p "$work_dir/mqbridge"
    MQBRIDGE_STOMP_PORT=0 MQBRIDGE_SQS_PORT=0 MQBRIDGE_AMQPS_PORT=0 MQBRIDGE_STOMPS_PORT=0 \
    MQBRIDGE_WSS_PORT=0 \
    "$target_dir/release/mqbridge" --bind 127.0.0.1 --amqp-port 0 \
        --mqtt-port "${port[mqbridge.tcp]}" --ws-port "${port[mqbridge.ws]}" \
        --mqtts-port "${port[mqbridge.tls]}" --tls-cert-file "$work_dir/tls/server.pem" \
        --tls-key-file "$work_dir/tls/server.key" \
        --data-dir "$work_dir/mqbridge" >"$work_dir/mqbridge.log" 2>&1 &
    mqbridge_pid=$!
    local transport
    for transport in "${transports[@]}"; do
        wait_for_port "${port[mqbridge.$transport]}" "$mqbridge_pid" \
            || { tail -n 20 "$work_dir/mqbridge.log" >&2; return 1; }
    done
}

# --- Mosquitto: conformance/peers/mosquitto.sh's private broker, plus WebSocket and TLS ------
start_mosquitto() {
    [ -x /usr/sbin/mosquitto ] || { log "mosquitto is not installed"; return 1; }
    local base="$work_dir/mosquitto"
    mkdir -p "$base"
    cat >"$base/mosquitto.conf" <<EOF_CONF
per_listener_settings false
allow_anonymous true
max_connections -1
persistence false
user $(id -un)
log_dest file $base/mosquitto.log
log_type error
log_type warning
listener ${port[mosquitto.tcp]} 127.0.0.1
listener ${port[mosquitto.ws]} 127.0.0.1
protocol websockets
listener ${port[mosquitto.tls]} 127.0.0.1
certfile $work_dir/tls/server.pem
keyfile $work_dir/tls/server.key
cafile $work_dir/tls/ca.pem
EOF_CONF
    setsid /usr/sbin/mosquitto -c "$base/mosquitto.conf" >"$base/startup.log" 2>&1 </dev/null &
    mosquitto_pid=$!
    local transport
    for transport in "${transports[@]}"; do
        wait_for_port "${port[mosquitto.$transport]}" "$mosquitto_pid" \
            || { tail -n 20 "$base/startup.log" "$base/mosquitto.log" >&2; return 1; }
    done
}

# --- RabbitMQ: conformance/peers/rabbitmq.sh's private node, with rabbitmq_web_mqtt ----------
readonly rabbit_sbin=/usr/lib/rabbitmq/bin
rabbit_env() {
    local base="$work_dir/rabbitmq" dist_port=$((rabbitmq_port + 20000))
    export HOME="$base/home" RABBITMQ_NODENAME="mqbridge-webmqtt-$rabbitmq_port@localhost"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$rabbitmq_port"
    export RABBITMQ_DIST_PORT="$dist_port" RABBITMQ_CTL_DIST_PORT_MIN=$((dist_port + 1))
    export RABBITMQ_CTL_DIST_PORT_MAX=$((dist_port + 11))
    export RABBITMQ_CONF_ENV_FILE="$base/rabbitmq-env.conf" RABBITMQ_CONFIG_FILE="$base/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$base/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins"
    export RABBITMQ_MNESIA_BASE="$base/mnesia" RABBITMQ_LOG_BASE="$base/log"
    export RABBITMQ_PID_FILE="$base/rabbitmq.pid" ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}
start_rabbitmq() {
    [ -x "$rabbit_sbin/rabbitmq-server" ] || { log "rabbitmq-server is not installed"; return 1; }
    local base="$work_dir/rabbitmq"
    mkdir -p "$base/home" "$base/mnesia" "$base/log"
    : >"$base/rabbitmq-env.conf"
    echo '[].' >"$base/advanced.config"
    echo '[rabbitmq_web_mqtt].' >"$base/enabled_plugins"
    cat >"$base/rabbitmq.conf" <<EOF_CONF
loopback_users.guest = true
disk_free_limit.absolute = 1
vm_memory_high_watermark.relative = 0.9
web_mqtt.tcp.ip = 127.0.0.1
web_mqtt.tcp.port = $rabbitmq_ws_port
EOF_CONF
    (
        rabbit_env
        setsid "$rabbit_sbin/rabbitmq-server" >"$base/log/startup.log" 2>&1 </dev/null &
        echo $! >"$base/wrapper.pid"
    )
    rabbitmq_pid="$(cat "$base/wrapper.pid")"
    wait_for_port "$rabbitmq_ws_port" "$rabbitmq_pid" \
        || { tail -n 20 "$base/log/startup.log" >&2; return 1; }
}
stop_rabbitmq() {
    [ -n "$rabbitmq_pid" ] || return 0
    local vm
    vm="$(cat "$work_dir/rabbitmq/rabbitmq.pid" 2>/dev/null || true)"
    (rabbit_env; timeout 60 "$rabbit_sbin/rabbitmqctl" -q stop >/dev/null 2>&1) || true
    stop_pid "$vm"
    stop_pid "$rabbitmq_pid"
    rabbitmq_pid=""
}

cleanup() {
    stop_pid "$mqbridge_pid"
    stop_pid "$mosquitto_pid"
    stop_rabbitmq
    rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- measurement ----------------------------------------------------------------------------
busy_percent() {
    local first second
    first="$(head -n 1 /proc/stat)"; sleep 1; second="$(head -n 1 /proc/stat)"
    awk -v a="$first" -v b="$second" 'BEGIN { split(a, x); split(b, y); total = 0
        for (i = 2; i <= 9; i++) total += y[i] - x[i]
        idle = (y[5] - x[5]) + (y[6] - x[6])
        printf "%d\n", (total > 0 ? 100 * (total - idle) / total : 0) }'
}
wait_for_quiet() {
    local deadline=$((SECONDS + quiet_wait_seconds))
    while [ "$SECONDS" -lt "$deadline" ]; do
        [ "$(busy_percent)" -le "$quiet_busy_percent_max" ] && return 0
    done
    [ "$quiet_wait_seconds" -eq 0 ] || log "the machine stayed busy; measuring anyway"
}
run_cell() { # BROKER TRANSPORT
    local broker=$1 transport=$2 at="${port[$1.$2]}" pid
    pid="$(listener_pid "$at")"
    RUST_BACKTRACE=0 timeout "$((seconds_per_scenario + scenario_slack_seconds))" \
        "$target_dir/release/mqbridge-bench" mqtt --port "$at" --transport "$transport" \
        --ws-path /ws --ca-file "$work_dir/tls/ca.pem" --qos 0 --size 100 --subscribers 1 \
        --duration "${seconds_per_scenario}s" "${credentials[@]}" --scenario "$broker" \
        ${pid:+--broker-pid "$pid"} 2>"$work_dir/last.err" | grep '^RESULT ' || {
        log "$broker over $transport: failed"; tail -n 5 "$work_dir/last.err" >&2; return 0; }
}
result_field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
fields() { local line; while read -r line; do result_field "$line" "$1"; done; }
median() {
    grep -E '^[0-9.]+$' | sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "error"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
cell() { # BROKER TRANSPORT FIELD
    local file="$work_dir/$1.$2"
    if [ -n "${broker_status[$1]:-}" ]; then echo "${broker_status[$1]}"
    elif [ -s "$file" ]; then fields "$3" <"$file" | median
    else echo "error"; fi
}
ratio() {
    if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]]; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
    else echo "n/a"; fi
}

main() {
    local load active=""
    load="$(cut -d' ' -f1-3 /proc/loadavg)"
    cargo build --release -q -p mqbridge-bench
    make_certificate
    for broker in $brokers; do
        broker_status[$broker]=""
        log "starting $broker"
        if "start_$broker"; then active="$active $broker"; else
            broker_status[$broker]="did not start"; log "$broker did not start"; fi
    done
    for round in $(seq 1 "$rounds"); do
        for transport in "${transports[@]}"; do
            for broker in $active; do
                [ -n "${port[$broker.$transport]:-}" ] || continue
                wait_for_quiet
                log "round $round: $broker over $transport"
                run_cell "$broker" "$transport" | tee -a "$work_dir/$broker.$transport" >&2
            done
        done
    done
    echo "- Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "- mqbridge $(git describe --always --dirty 2>/dev/null) (release); Mosquitto" \
        "$(dpkg-query -W -f='${Version}' mosquitto 2>/dev/null || echo unknown); RabbitMQ" \
        "$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo unknown) with" \
        "rabbitmq_web_mqtt (Debian packages); TLS: RSA 2048 certificate, rustls client"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average before the run: $load;" \
        "${seconds_per_scenario} s per cell after 1 s warm-up, $rounds round(s), median"
    echo
    echo "| MQTT QoS 0, 1 -> 1, 100 B (received msg/s) | mqbridge | Mosquitto | RabbitMQ |" \
        "mqbridge/Mosquitto | mqbridge/RabbitMQ |"
    echo "|---|---:|---:|---:|---:|---:|"
    local transport broker figures cpu
    for transport in "${transports[@]}"; do
        figures=() cpu=()
        for broker in "${all_brokers[@]}"; do
            if [ -z "${port[$broker.$transport]:-}" ]; then
                figures+=("not measured"); cpu+=("-")
            else
                figures+=("$(cell "$broker" "$transport" received_per_s)")
                cpu+=("$(cell "$broker" "$transport" broker_cpu) ($(cell "$broker" "$transport" \
                    client_cpu); other $(cell "$broker" "$transport" other_cpu))")
            fi
        done
        echo "| $transport | ${figures[0]} | ${figures[1]} | ${figures[2]} |" \
            "$(ratio "${figures[0]}" "${figures[1]}") | $(ratio "${figures[0]}" "${figures[2]}") |"
        echo "| $transport: CPU cores, broker (client; other processes) | ${cpu[0]} | ${cpu[1]} |" \
            "${cpu[2]} | | |"
    done
    echo
    echo "mqbridge WebSocket / plain TCP: $(ratio "$(cell mqbridge ws received_per_s)" \
        "$(cell mqbridge tcp received_per_s)")"
}

main "$@"
