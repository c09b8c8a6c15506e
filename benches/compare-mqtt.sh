#!/usr/bin/env bash
# benches/compare-mqtt.sh: mqbridge's MQTT listener against Mosquitto and RabbitMQ's MQTT
# plugin, same machine, same run, same load tool.
#
# Starts mqbridge, Mosquitto (Debian's mosquitto, through conformance/peers/mosquitto.sh) and
# RabbitMQ with rabbitmq_mqtt (Debian's rabbitmq-server, through conformance/peers/rabbitmq.sh)
# on loopback, runs every MQTT scenario against all three with `mqbridge-bench`, prints
# Markdown tables on stdout and stops all three on exit. Progress and the raw RESULT lines go
# to stderr. See the MQTT section of docs/BENCHMARKS.md for what the scenarios mean.
#
# Environment (all optional):
#   BENCH_SECONDS=10          measured seconds per throughput cell (after a 1 s warm-up)
#   BENCH_ROUNDS=1            rounds; with more than one, each throughput cell is the median of
#                             the rounds (the idle scenario runs in round 1 only)
#   BENCH_BROKERS="mqbridge mosquitto rabbitmq"   which brokers to run
#   BENCH_IDLE_CONNECTIONS=10000   connections of the idle-memory scenario (0 skips it)
#   BENCH_MQBRIDGE_MQTT_PORT=18831, BENCH_MOSQUITTO_PORT=18832, BENCH_RABBITMQ_MQTT_PORT=18833,
#   BENCH_RABBITMQ_PORT=5673  (RabbitMQ's AMQP port, which its peer script needs)
#   BENCH_QUIET_WAIT_SECONDS=60  before each cell, wait up to this long for other work to leave
#                                the cores idle (0 disables); a shared machine skews figures
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
readonly repo_root
cd "$repo_root"

readonly seconds_per_scenario="${BENCH_SECONDS:-10}"
readonly rounds="${BENCH_ROUNDS:-1}"
readonly brokers="${BENCH_BROKERS:-mqbridge mosquitto rabbitmq}"
readonly idle_connections="${BENCH_IDLE_CONNECTIONS:-10000}"
readonly mqbridge_port="${BENCH_MQBRIDGE_MQTT_PORT:-18831}"
readonly mosquitto_port="${BENCH_MOSQUITTO_PORT:-18832}"
readonly rabbitmq_mqtt_port="${BENCH_RABBITMQ_MQTT_PORT:-18833}"
readonly rabbitmq_port="${BENCH_RABBITMQ_PORT:-5673}"
readonly target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
readonly rabbitmq_peer="$repo_root/conformance/peers/rabbitmq.sh"
readonly mosquitto_peer="$repo_root/conformance/peers/mosquitto.sh"
# Every broker is given the same credentials: RabbitMQ's MQTT plugin needs guest/guest (allowed
# from loopback only); mqbridge checks them against its default user; Mosquitto, configured
# with allow_anonymous, ignores them.
readonly credentials=(--username guest --password guest)
# File descriptors for the tool and the brokers (started from this script, so they inherit it):
# 10,000 idle connections need 10,000 on each side, plus a few hundred for everything else.
readonly open_files_wanted=65536
# A release build of mqbridge opens its listeners in well under a second; 30 s covers a cold disk.
readonly mqbridge_start_timeout_seconds=30
# A throughput cell's own stop (PUBACKs, disconnects) takes well under 15 s; a cell that exceeds
# warm-up + measurement + this is hung, and is killed so the table still completes.
readonly scenario_slack_seconds=30
# Opening 10,000 connections takes RabbitMQ about 40 s on 2 cores; the others take seconds.
readonly idle_timeout_seconds=300
readonly quiet_wait_seconds="${BENCH_QUIET_WAIT_SECONDS:-60}"
# Idle brokers use a few percent of the machine; above this, something else is running.
readonly quiet_busy_percent_max=10
# Above this 1-minute load average another job shares the 2 cores and the figures are suspect.
readonly quiet_load_max=0.5

# The throughput scenarios, as "label|qos|subscribers": 1 publisher, 100-byte payloads,
# subscribers at the publisher's QoS. The idle-memory scenario is separate (key "idle").
readonly scenarios=(
    "QoS 0, 1 -> 1, 100 B|0|1"
    "QoS 1, 1 -> 1, 100 B|1|1"
    "QoS 0, fan-out 1 -> 50, 100 B|0|50"
)
readonly all_brokers=(mqbridge mosquitto rabbitmq)

log() { echo "compare-mqtt.sh: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Process id of whatever listens on 127.0.0.1:PORT, so the tool can read the broker's CPU and
# memory (for RabbitMQ: the Erlang VM, beam.smp).
listener_pid() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

# ---------------------------------------------------------------------------------------------
# Brokers.
# ---------------------------------------------------------------------------------------------
declare -A broker_status=([mqbridge]="not run" [mosquitto]="not run" [rabbitmq]="not run")
declare -A broker_port=([mqbridge]="$mqbridge_port" [mosquitto]="$mosquitto_port"
    [rabbitmq]="$rabbitmq_mqtt_port")
rabbitmq_started=no
mosquitto_started=no
mqbridge_pid=""
mqbridge_data_dir=""

start_rabbitmq() {
    rabbitmq_started=yes # first, so that a half-started node is still stopped on exit
    RABBITMQ_PEER_MQTT_PORT="$rabbitmq_mqtt_port" "$rabbitmq_peer" start "$rabbitmq_port" \
        >/dev/null || { log "RabbitMQ did not start"; return 1; }
}

stop_rabbitmq() {
    [ "$rabbitmq_started" = yes ] || return 0
    "$rabbitmq_peer" stop "$rabbitmq_port" || log "stopping RabbitMQ failed"
    rabbitmq_started=no
}

start_mosquitto() {
    mosquitto_started=yes
    "$mosquitto_peer" start "$mosquitto_port" >/dev/null || { log "Mosquitto did not start"; return 1; }
}

stop_mosquitto() {
    [ "$mosquitto_started" = yes ] || return 0
    "$mosquitto_peer" stop "$mosquitto_port" || log "stopping Mosquitto failed"
    mosquitto_started=no
}

# The port mqbridge's log says its MQTT listener opened, or nothing yet.
mqbridge_logged_mqtt_port() {
    sed 's/\x1b\[[0-9;]*m//g' "$mqbridge_data_dir.log" 2>/dev/null \
        | grep 'listening.*protocol="mqtt"' | grep -o 'address=[^ ]*' | sed 's/.*://' | head -n 1
}

start_mqbridge() {
    if port_open "$mqbridge_port"; then
        log "port $mqbridge_port is already in use; stop what is there first"
        return 1
    fi
    mqbridge_data_dir="$(mktemp -d /tmp/mqbridge-bench-data.XXXXXX)"
    # Every listener not under test takes a free port, so that another broker (a test run,
    # a conformance run) on the default ports cannot stop this one from starting. Every
    # connection comes from 127.0.0.1, so the per-address cap (4,096 by default) is raised
    # above the idle scenario's connection count.
    MQBRIDGE_STOMP_PORT=0 MQBRIDGE_WS_PORT=0 MQBRIDGE_SQS_PORT=0 \
    "$target_dir/release/mqbridge" --bind 127.0.0.1 --amqp-port 0 --mqtt-port "$mqbridge_port" \
        --max-connections-per-address "$((idle_connections + 100))" \
        --data-dir "$mqbridge_data_dir" >"$mqbridge_data_dir.log" 2>&1 &
    mqbridge_pid=$!
    local deadline=$((SECONDS + mqbridge_start_timeout_seconds)) logged=""
    until [ -n "$logged" ] && port_open "$logged"; do
        if ! kill -0 "$mqbridge_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            log "mqbridge did not open its MQTT listener; last log lines:"
            tail -n 20 "$mqbridge_data_dir.log" >&2 || true
            stop_mqbridge
            return 1
        fi
        sleep 0.2
        logged="$(mqbridge_logged_mqtt_port)"
    done
    if [ "$logged" != "$mqbridge_port" ]; then
        # Measure where it really listens, and say so: the flag was not honoured.
        log "WARNING: mqbridge was asked for MQTT port $mqbridge_port but listens on $logged"
        broker_port[mqbridge]="$logged"
    fi
}

stop_mqbridge() {
    if [ -n "$mqbridge_pid" ]; then
        kill -TERM "$mqbridge_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$mqbridge_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$mqbridge_pid" 2>/dev/null || true
        wait "$mqbridge_pid" 2>/dev/null || true
        mqbridge_pid=""
    fi
    if [ -n "$mqbridge_data_dir" ]; then
        rm -rf "$mqbridge_data_dir" "$mqbridge_data_dir.log"
        mqbridge_data_dir=""
    fi
}

cleanup() {
    stop_mqbridge
    stop_mosquitto
    stop_rabbitmq
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts one broker; on failure records why in broker_status and returns 1.
start_broker() {
    local broker=$1
    broker_status[$broker]=""
    case "$broker" in
        mqbridge)
            log "building mqbridge (release)"
            if ! cargo build --release -q --bin mqbridge; then
                broker_status[mqbridge]="build failed"; return 1
            fi
            start_mqbridge || { broker_status[mqbridge]="did not start"; return 1; }
            ;;
        mosquitto) start_mosquitto || { broker_status[mosquitto]="did not start"; return 1; } ;;
        rabbitmq) start_rabbitmq || { broker_status[rabbitmq]="did not start"; return 1; } ;;
        *) log "unknown broker $broker (expected mqbridge, mosquitto or rabbitmq)"; exit 2 ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Measurement.
# ---------------------------------------------------------------------------------------------

# Percentage of the machine's CPU time spent busy over the next second.
busy_percent() {
    local first second
    first="$(head -n 1 /proc/stat)"
    sleep 1
    second="$(head -n 1 /proc/stat)"
    awk -v a="$first" -v b="$second" 'BEGIN {
        split(a, x); split(b, y); total = 0; idle = 0
        for (i = 2; i <= 9; i++) total += y[i] - x[i]
        idle = (y[5] - x[5]) + (y[6] - x[6])
        printf "%d\n", (total > 0 ? 100 * (total - idle) / total : 0)
    }'
}

# Waits, for at most quiet_wait_seconds, until no other work is using the cores.
wait_for_quiet() {
    local deadline=$((SECONDS + quiet_wait_seconds))
    while [ "$SECONDS" -lt "$deadline" ]; do
        [ "$(busy_percent)" -le "$quiet_busy_percent_max" ] && return 0
    done
    [ "$quiet_wait_seconds" -eq 0 ] || log "the machine stayed busy; measuring anyway"
}

# Runs one throughput scenario against one broker; prints its RESULT line, or nothing.
run_scenario() {
    local broker=$1 qos=$2 subscribers=$3 port pid
    port="${broker_port[$broker]}"
    pid="$(listener_pid "$port")"
    RUST_BACKTRACE=0 timeout "$((seconds_per_scenario + scenario_slack_seconds))" \
        "$target_dir/release/mqbridge-bench" mqtt --host 127.0.0.1 --port "$port" \
        --qos "$qos" --size 100 --subscribers "$subscribers" \
        --duration "${seconds_per_scenario}s" "${credentials[@]}" --scenario "$broker" \
        ${pid:+--broker-pid "$pid"} 2>"$work_dir/last.err" | grep '^RESULT ' || {
        log "$broker, QoS $qos, $subscribers subscriber(s): failed"
        tail -n 5 "$work_dir/last.err" >&2
        return 0
    }
}

# Runs the idle-memory scenario against one broker; prints its RESULT line, or nothing.
run_idle() {
    local broker=$1 port pid
    port="${broker_port[$broker]}"
    pid="$(listener_pid "$port")"
    if [ -z "$pid" ]; then
        log "$broker: no process listens on port $port; cannot read its memory"
        return 0
    fi
    RUST_BACKTRACE=0 timeout "$idle_timeout_seconds" \
        "$target_dir/release/mqbridge-bench" mqtt-idle --host 127.0.0.1 --port "$port" \
        --connections "$idle_connections" --broker-pid "$pid" "${credentials[@]}" \
        --scenario "$broker" 2>"$work_dir/last.err" | grep '^RESULT ' || {
        log "$broker, $idle_connections idle connections: failed"
        tail -n 5 "$work_dir/last.err" >&2
        return 0
    }
}

# Reads one field (e.g. received_per_s) from a RESULT line.
result_field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# The given field of each RESULT line on stdin.
fields() {
    local line
    while read -r line; do result_field "$line" "$1"; done
}

# Median of the numbers on stdin, or "error" when there are none.
median() {
    grep -E '^[0-9.]+$' | sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "error"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

raise_open_files() {
    ulimit -n "$open_files_wanted" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((idle_connections + 1000)) ]; then
        log "open-file limit $(ulimit -n) is too low for $idle_connections idle connections"
    fi
}

machine_description() {
    local cpu rabbitmq_version mosquitto_version load
    cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    rabbitmq_version="$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo unknown)"
    mosquitto_version="$(dpkg-query -W -f='${Version}' mosquitto 2>/dev/null || echo unknown)"
    load="$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- Machine: $(nproc) cores, ${cpu:-unknown CPU}, $(uname -sr)"
    echo "- mqbridge: $(git -C "$repo_root" describe --always --dirty 2>/dev/null || echo unknown)" \
        "(release build); Mosquitto: $mosquitto_version; RabbitMQ: $rabbitmq_version with" \
        "rabbitmq_mqtt (Debian packages)"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average before the run: $load"
    echo "- Client: mqbridge-bench mqtt, ${seconds_per_scenario} s per throughput cell after" \
        "1 s warm-up, $rounds round(s), loopback, same cores as the brokers;" \
        "open-file limit $(ulimit -n)"
}

main() {
    work_dir="$(mktemp -d /tmp/mqbridge-compare-mqtt.XXXXXX)"
    local load
    load="$(cut -d' ' -f1 /proc/loadavg)"
    if awk -v l="$load" -v m="$quiet_load_max" 'BEGIN { exit !(l > m) }'; then
        log "load average is $load: other work shares the cores and will skew the figures"
    fi
    raise_open_files
    log "building mqbridge-bench (release)"
    cargo build --release -q -p mqbridge-bench
    local description active=""
    description="$(machine_description)"
    for broker in $brokers; do
        if start_broker "$broker"; then active="$active $broker"; fi
    done
    for round in $(seq 1 "$rounds"); do
        measure_round "$round" "$active"
    done
    print_tables "$description"
    rm -rf "$work_dir"
}

# One round: the idle scenario first, in round 1 only, on brokers that have not yet carried
# traffic (memory freed by the throughput scenarios absorbs later rounds' connections: mqbridge
# and Mosquitto alike then report about 0 bytes each), then each throughput scenario against
# each broker in turn.
measure_round() {
    local round=$1 active=$2
    if [ "$idle_connections" -gt 0 ] && [ "$round" -eq 1 ]; then
        for broker in $active; do
            wait_for_quiet
            log "round $round: $broker: $idle_connections idle connections"
            run_idle "$broker" | tee -a "$work_dir/$broker.idle" >&2
        done
    fi
    for scenario in "${scenarios[@]}"; do
        IFS='|' read -r label qos subscribers <<<"$scenario"
        for broker in $active; do
            wait_for_quiet
            log "round $round: $broker: $label"
            run_scenario "$broker" "$qos" "$subscribers" \
                | tee -a "$work_dir/$broker.$qos.$subscribers" >&2
        done
    done
}

# The median of FIELD over the RESULT lines of BROKER in FILE-KEY, or why there is none.
cell() {
    local broker=$1 key=$2 field=$3 file="$work_dir/$1.$2"
    if [ -n "${broker_status[$broker]:-}" ]; then
        echo "${broker_status[$broker]}"
    elif [ -s "$file" ]; then
        fields "$field" <"$file" | median
    else
        echo "error"
    fi
}

# a / b with two decimals, or n/a when either is not a number.
ratio() {
    if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]]; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
    else
        echo "n/a"
    fi
}

# One table row: LABEL, then the three brokers' cells and the two ratios.
row() {
    local label=$1 key=$2 field=$3 figures=()
    for broker in "${all_brokers[@]}"; do figures+=("$(cell "$broker" "$key" "$field")"); done
    echo "| $label | ${figures[0]} | ${figures[1]} | ${figures[2]} |" \
        "$(ratio "${figures[0]}" "${figures[1]}") | $(ratio "${figures[0]}" "${figures[2]}") |"
}

print_tables() {
    echo "$1"
    echo
    echo "| scenario | mqbridge | Mosquitto | RabbitMQ | mqbridge/Mosquitto | mqbridge/RabbitMQ |"
    echo "|---|---:|---:|---:|---:|---:|"
    for scenario in "${scenarios[@]}"; do
        IFS='|' read -r label qos subscribers <<<"$scenario"
        row "$label (received msg/s)" "$qos.$subscribers" received_per_s
    done
    if [ "$idle_connections" -gt 0 ]; then
        row "$idle_connections idle connections (broker RSS bytes per connection; lower is better)" \
            idle per_connection_bytes
    fi
    echo
    echo "CPU in cores over the measured window (broker; load tool in brackets):"
    echo
    echo "| scenario | mqbridge | Mosquitto | RabbitMQ |"
    echo "|---|---:|---:|---:|"
    for scenario in "${scenarios[@]}"; do
        IFS='|' read -r label qos subscribers <<<"$scenario"
        local cells=()
        for broker in "${all_brokers[@]}"; do
            cells+=("$(cell "$broker" "$qos.$subscribers" broker_cpu) ($(cell "$broker" \
                "$qos.$subscribers" client_cpu))")
        done
        echo "| $label | ${cells[0]} | ${cells[1]} | ${cells[2]} |"
    done
    print_footer
}

print_footer() {
    local other
    other="$(cat "$work_dir"/*.[01].* 2>/dev/null | fields other_cpu | grep -E '^[0-9.]+$' \
        | sort -n | tail -n 1)"
    echo
    echo "msg/s = messages received per second, summed over subscribers (median over rounds);" \
        "the RESULT lines on stderr also give published/s, PUBACKs/s and per-subscriber rates."
    echo "Most CPU used by other processes during a cell: ${other:-n/a} cores" \
        "(above ~0.2 the figures are suspect; rerun on a quiet machine)."
}

main "$@"
