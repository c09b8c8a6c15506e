#!/usr/bin/env bash
# benches/compare.sh: mqbridge against RabbitMQ, same machine, same run, same load tool.
#
# Starts RabbitMQ (Debian's rabbitmq-server, installed if missing, through
# conformance/peers/rabbitmq.sh) and mqbridge on loopback, runs every AMQP scenario against
# both with `mqbridge-bench`, prints a Markdown table on stdout and stops both peers on exit.
# Progress and the raw RESULT lines go to stderr. See docs/BENCHMARKS.md for what the
# scenarios mean and how to read the figures.
#
# Environment (all optional):
#   BENCH_SECONDS=10          measured seconds per scenario and broker (after a 1 s warm-up)
#   BENCH_ROUNDS=1            rounds; with more than one, each cell is the median of the rounds
#   BENCH_BROKERS="mqbridge rabbitmq"   which brokers to run (e.g. only "rabbitmq")
#   BENCH_CLIENT=raw          load-generator client: raw (fast) or lapin (cross-check)
#   BENCH_RABBITMQ_PORT=5673  AMQP port of the RabbitMQ peer
#   BENCH_MQBRIDGE_PORT=5674  AMQP port of mqbridge
#   BENCH_QUIET_WAIT_SECONDS=60  before each cell, wait up to this long for other work to leave
#                                the cores idle (0 disables); a shared machine skews figures
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
readonly repo_root
cd "$repo_root"

readonly seconds_per_scenario="${BENCH_SECONDS:-10}"
readonly rounds="${BENCH_ROUNDS:-1}"
readonly brokers="${BENCH_BROKERS:-mqbridge rabbitmq}"
readonly client="${BENCH_CLIENT:-raw}"
readonly rabbitmq_port="${BENCH_RABBITMQ_PORT:-5673}"
readonly mqbridge_port="${BENCH_MQBRIDGE_PORT:-5674}"
readonly target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
readonly rabbitmq_peer="$repo_root/conformance/peers/rabbitmq.sh"
# A release build of mqbridge opens its listener in well under a second; 30 s covers a cold disk.
readonly mqbridge_start_timeout_seconds=30
# Each scenario's own stop (confirms, cancel, queue delete) takes well under 15 s; a run that
# exceeds warm-up + measurement + this is hung, and is killed so the table still completes.
readonly scenario_slack_seconds=30
readonly quiet_wait_seconds="${BENCH_QUIET_WAIT_SECONDS:-60}"
# Idle brokers use a few percent of the machine; above this, something else is running.
readonly quiet_busy_percent_max=10
# Above this 1-minute load average another job shares the 2 cores and the figures are suspect.
readonly quiet_load_max=0.5

# The scenarios, as "label|size|confirm window": 1 producer -> 1 consumer, transient messages,
# consumer acking with multiple=true every 100 deliveries (prefetch 1000).
readonly scenarios=(
    "16 B, no confirms|16|0"
    "16 B, confirm window 1000|16|1000"
    "1 KiB, no confirms|1024|0"
    "1 KiB, confirm window 1000|1024|1000"
)

log() { echo "compare.sh: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Process id of whatever listens on 127.0.0.1:PORT, so the tool can report the broker's CPU.
listener_pid() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

# ---------------------------------------------------------------------------------------------
# Peers. RabbitMQ is started and stopped by the conformance suite's peer script, which installs
# Debian's rabbitmq-server if missing and runs a private node (own state, no plugins, loopback).
# ---------------------------------------------------------------------------------------------
rabbitmq_started=no
# Why a broker has no figures ("not run", "build failed", "did not start"); empty if it ran.
declare -A broker_status=([mqbridge]="not run" [rabbitmq]="not run")
mqbridge_pid=""
mqbridge_data_dir=""

start_rabbitmq() {
    if [ ! -x "$rabbitmq_peer" ]; then
        log "missing $rabbitmq_peer (it starts and stops the RabbitMQ peer)"
        exit 1
    fi
    # Marked as started first, so that a half-started node is still stopped on exit.
    rabbitmq_started=yes
    if ! "$rabbitmq_peer" start "$rabbitmq_port" >/dev/null; then
        log "RabbitMQ did not start on port $rabbitmq_port"
        return 1
    fi
}

stop_rabbitmq() {
    [ "$rabbitmq_started" = yes ] || return 0
    "$rabbitmq_peer" stop "$rabbitmq_port" || log "stopping RabbitMQ failed"
    rabbitmq_started=no
}

start_mqbridge() {
    if port_open "$mqbridge_port"; then
        log "port $mqbridge_port is already in use; stop what is there first"
        return 1
    fi
    mqbridge_data_dir="$(mktemp -d /tmp/mqbridge-bench-data.XXXXXX)"
    # Every listener not under test takes a free port, so that another broker (a test run,
    # a conformance run) on the default ports cannot stop this one from starting.
    MQBRIDGE_STOMP_PORT=0 MQBRIDGE_WS_PORT=0 MQBRIDGE_SQS_PORT=0 \
    "$target_dir/release/mqbridge" --bind 127.0.0.1 --amqp-port "$mqbridge_port" --mqtt-port 0 \
        --data-dir "$mqbridge_data_dir" >"$mqbridge_data_dir.log" 2>&1 &
    mqbridge_pid=$!
    local deadline=$((SECONDS + mqbridge_start_timeout_seconds))
    until port_open "$mqbridge_port"; do
        if ! kill -0 "$mqbridge_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            log "mqbridge did not open port $mqbridge_port; last log lines:"
            tail -n 20 "$mqbridge_data_dir.log" >&2 || true
            stop_mqbridge
            return 1
        fi
        sleep 0.2
    done
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
    stop_rabbitmq
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

# Runs one scenario against one broker; prints its RESULT line, or nothing if it failed.
run_scenario() {
    local broker=$1 size=$2 window=$3 port pid
    case "$broker" in
        mqbridge) port=$mqbridge_port ;;
        rabbitmq) port=$rabbitmq_port ;;
    esac
    pid="$(listener_pid "$port")"
    RUST_BACKTRACE=0 timeout "$((seconds_per_scenario + scenario_slack_seconds))" \
        "$target_dir/release/mqbridge-bench" amqp \
        --url "amqp://guest:guest@127.0.0.1:$port/%2F" \
        --size "$size" --confirm-window "$window" --duration "${seconds_per_scenario}s" \
        --producers 1 --consumers 1 --client "$client" --scenario "$broker" \
        ${pid:+--broker-pid "$pid"} 2>"$work_dir/last.err" | grep '^RESULT ' || {
        log "$broker, size $size, confirm window $window: failed"
        tail -n 5 "$work_dir/last.err" >&2
        return 0
    }
}

# Reads one field (e.g. consumed_per_s) from a RESULT line.
result_field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# The consumed_per_s field of each RESULT line on stdin.
consumed_rates() {
    local line
    while read -r line; do result_field "$line" consumed_per_s; done
}

# Median of the numbers on stdin, or "error" when there are none.
median() {
    sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "error"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

machine_description() {
    local cpu rabbitmq_version load
    cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    rabbitmq_version="$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo unknown)"
    load="$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- Machine: $(nproc) cores, ${cpu:-unknown CPU}, $(uname -sr)"
    echo "- RabbitMQ: $rabbitmq_version (Debian package), private node, no plugins"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average before the run: $load"
    echo "- Client: mqbridge-bench --client $client, ${seconds_per_scenario} s per cell" \
        "after 1 s warm-up, $rounds round(s), loopback, same cores as the brokers"
}

main() {
    work_dir="$(mktemp -d /tmp/mqbridge-compare.XXXXXX)"
    local load
    load="$(cut -d' ' -f1 /proc/loadavg)"
    if awk -v l="$load" -v m="$quiet_load_max" 'BEGIN { exit !(l > m) }'; then
        log "load average is $load: other work shares the cores and will skew the figures"
    fi
    log "building mqbridge-bench (release)"
    cargo build --release -q -p mqbridge-bench
    local description
    description="$(machine_description)"
    # A broker that fails to build or start gets that in its cells; the other is still measured.
    local active=""
    for broker in $brokers; do
        broker_status[$broker]=""
        case "$broker" in
            rabbitmq)
                if start_rabbitmq; then
                    active="$active rabbitmq"
                else
                    broker_status[rabbitmq]="did not start"
                fi
                ;;
            mqbridge)
                log "building mqbridge (release)"
                if ! cargo build --release -q --bin mqbridge; then
                    broker_status[mqbridge]="build failed"
                elif ! start_mqbridge; then
                    broker_status[mqbridge]="did not start"
                else
                    active="$active mqbridge"
                fi
                ;;
            *) log "unknown broker $broker (expected mqbridge or rabbitmq)"; exit 2 ;;
        esac
    done
    for round in $(seq 1 "$rounds"); do
        for scenario in "${scenarios[@]}"; do
            IFS='|' read -r label size window <<<"$scenario"
            for broker in $active; do
                wait_for_quiet
                log "round $round: $broker: $label"
                run_scenario "$broker" "$size" "$window" \
                    | tee -a "$work_dir/$broker.$size.$window" >&2
            done
        done
    done
    print_table "$description"
    rm -rf "$work_dir"
}

print_table() {
    echo "$1"
    echo
    echo "| scenario (1 producer -> 1 consumer, transient, acks with multiple)" \
        "| mqbridge msg/s | RabbitMQ msg/s | ratio mqbridge/RabbitMQ |"
    echo "|---|---:|---:|---:|"
    for scenario in "${scenarios[@]}"; do
        IFS='|' read -r label size window <<<"$scenario"
        local figures=()
        for broker in mqbridge rabbitmq; do
            local file="$work_dir/$broker.$size.$window"
            if [ -n "${broker_status[$broker]:-}" ]; then
                figures+=("${broker_status[$broker]}")
            elif [ -s "$file" ]; then
                figures+=("$(consumed_rates <"$file" | median)")
            else
                figures+=("error")
            fi
        done
        local ratio="n/a"
        if [[ "${figures[0]}" =~ ^[0-9]+$ && "${figures[1]}" =~ ^[0-9]+$ ]]; then
            ratio="$(awk -v a="${figures[0]}" -v b="${figures[1]}" \
                'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
        fi
        echo "| $label | ${figures[0]} | ${figures[1]} | $ratio |"
    done
    local other
    other="$(cat "$work_dir"/*.*.* 2>/dev/null | while read -r line; do
        result_field "$line" other_cpu
    done | grep -E '^[0-9.]+$' | sort -n | tail -n 1)"
    echo
    echo "msg/s = messages consumed per second (median over rounds);" \
        "the RESULT lines on stderr also give published/s and CPU use."
    echo "Most CPU used by other processes during a cell: ${other:-n/a} cores" \
        "(above ~0.2 the figures are suspect; rerun on a quiet machine)."
}

main "$@"
