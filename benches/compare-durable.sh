#!/usr/bin/env bash
# benches/compare-durable.sh: durable messaging, mqbridge against RabbitMQ, same machine, same run.
#
# Persistent 1 KiB messages (delivery-mode 2) on a durable queue, publisher confirms (window
# 1000 per producer), consumers acking with multiple=true: 1 -> 1 and 4 -> 4 connections. Both
# brokers confirm only what is on disk: mqbridge with its default fsync_interval_ms = 0 (fdatasync
# before confirm), RabbitMQ by design for persistent messages on a durable classic queue.
# For mqbridge each cell also counts the journal's fdatasync calls (from its /metrics, read
# before and after the cell) and reports messages per fsync. Then it times mqbridge's recovery of BENCH_RECOVERY_MESSAGES
# stored messages: fill, stop, start, and time until the AMQP port accepts connections.
# Prints Markdown tables on stdout; progress and RESULT lines on stderr. See docs/BENCHMARKS.md.
#
# Environment (all optional):
#   BENCH_SECONDS=10              measured seconds per cell (after a 1 s warm-up)
#   BENCH_ROUNDS=1                rounds; with more, each cell is the median
#   BENCH_BROKERS="mqbridge rabbitmq"
#   BENCH_RABBITMQ_PORT=5683      AMQP port of the RabbitMQ peer
#   BENCH_MQBRIDGE_PORT=5684      AMQP port of mqbridge
#   BENCH_RECOVERY_MESSAGES=1000000   0 skips the recovery measurement
#   BENCH_QUIET_WAIT_SECONDS=60   before each cell, wait up to this long for idle cores
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
readonly repo_root
cd "$repo_root"

readonly seconds_per_cell="${BENCH_SECONDS:-10}"
readonly rounds="${BENCH_ROUNDS:-1}"
readonly brokers="${BENCH_BROKERS:-mqbridge rabbitmq}"
readonly rabbitmq_port="${BENCH_RABBITMQ_PORT:-5683}"
readonly mqbridge_port="${BENCH_MQBRIDGE_PORT:-5684}"
readonly recovery_messages="${BENCH_RECOVERY_MESSAGES:-1000000}"
readonly quiet_wait_seconds="${BENCH_QUIET_WAIT_SECONDS:-60}"
readonly target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
readonly rabbitmq_peer="$repo_root/conformance/peers/rabbitmq.sh"
readonly message_size=1024
readonly confirm_window=1000
# Replaying a large journal takes seconds; this bounds a broker that never comes up.
readonly mqbridge_start_timeout_seconds=120
# A cell's own stop (confirms, cancel, delete) takes well under 15 s; beyond this it is hung.
readonly cell_slack_seconds=30
# Idle brokers use a few percent of the machine; above this, something else is running.
readonly quiet_busy_percent_max=10

# "label|producers|consumers"
readonly scenarios=("1 KiB persistent, 1 -> 1|1|1" "1 KiB persistent, 4 -> 4|4|4")

log() { echo "compare-durable.sh: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
listener_pid() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2 || true
}
strip_colours() { sed 's/\x1b\[[0-9;]*m//g'; }

rabbitmq_started=no
mqbridge_pid=""
mqbridge_data_dir=""
management_port=""
work_dir=""

start_rabbitmq() {
    rabbitmq_started=yes
    "$rabbitmq_peer" start "$rabbitmq_port" >/dev/null
}

stop_rabbitmq() {
    [ "$rabbitmq_started" = yes ] || return 0
    "$rabbitmq_peer" stop "$rabbitmq_port" || log "stopping RabbitMQ failed"
    rabbitmq_started=no
}

# Starts mqbridge on $mqbridge_data_dir (created if empty) and waits for its AMQP port.
start_mqbridge() {
    [ -n "$mqbridge_data_dir" ] || mqbridge_data_dir="$(mktemp -d /tmp/mqbridge-durable.XXXXXX)"
    if port_open "$mqbridge_port"; then
        log "port $mqbridge_port is already in use; stop what is there first"
        return 1
    fi
    # Every listener not under test takes a free port, so that another broker on the default
    # ports cannot stop this one from starting.
    management_port="$(free_port)"
    NO_COLOR=1 MQBRIDGE_WS_PORT=0 MQBRIDGE_SQS_PORT=0 MQBRIDGE_MANAGEMENT_PORT="$management_port" \
        "$target_dir/release/mqbridge" --bind 127.0.0.1 \
        --amqp-port "$mqbridge_port" --mqtt-port 0 --stomp-port 0 \
        --data-dir "$mqbridge_data_dir" >"$mqbridge_data_dir.log" 2>&1 &
    mqbridge_pid=$!
    local deadline=$((SECONDS + mqbridge_start_timeout_seconds))
    until port_open "$mqbridge_port"; do
        if ! kill -0 "$mqbridge_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            log "mqbridge did not open port $mqbridge_port:"
            tail -n 20 "$mqbridge_data_dir.log" >&2 || true
            return 1
        fi
        sleep 0.05
    done
}

# Stops mqbridge gracefully (SIGTERM: it writes what is pending); keeps its data directory.
stop_mqbridge() {
    [ -n "$mqbridge_pid" ] || return 0
    kill -TERM "$mqbridge_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$mqbridge_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$mqbridge_pid" 2>/dev/null || true
    wait "$mqbridge_pid" 2>/dev/null || true
    mqbridge_pid=""
}

remove_mqbridge_data() {
    [ -n "$mqbridge_data_dir" ] && rm -rf "$mqbridge_data_dir" "$mqbridge_data_dir.log"
    mqbridge_data_dir=""
}

cleanup() {
    stop_mqbridge
    remove_mqbridge_data
    stop_rabbitmq
    [ -z "$work_dir" ] || rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Percentage of the machine's CPU time spent busy over the next second.
busy_percent() {
    local first second
    first="$(head -n 1 /proc/stat)"; sleep 1; second="$(head -n 1 /proc/stat)"
    awk -v a="$first" -v b="$second" 'BEGIN { split(a, x); split(b, y); t = 0
        for (i = 2; i <= 9; i++) t += y[i] - x[i]
        idle = (y[5] - x[5]) + (y[6] - x[6]); printf "%d\n", (t > 0 ? 100 * (t - idle) / t : 0) }'
}

wait_for_quiet() {
    local deadline=$((SECONDS + quiet_wait_seconds))
    while [ "$SECONDS" -lt "$deadline" ]; do
        [ "$(busy_percent)" -le "$quiet_busy_percent_max" ] && return 0
    done
    [ "$quiet_wait_seconds" -eq 0 ] || log "the machine stayed busy; measuring anyway"
}

# A free TCP port on loopback, for mqbridge's management listener.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# fdatasync calls mqbridge's journal has made so far; nothing if curl is missing or fails.
# Read from /metrics rather than counted with strace: tracing the journal thread stops it at
# every traced call, which slowed every confirm with it.
journal_fsyncs() {
    command -v curl >/dev/null || return 0
    curl -s --max-time 2 "http://127.0.0.1:$management_port/metrics" \
        | awk '$1 == "rabbitmq_io_sync_ops_total" { print $2 }' || true
}

result_field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# Runs one cell; appends its RESULT line (plus fsyncs= for mqbridge) to $work_dir/$broker.$p.
run_cell() {
    local broker=$1 producers=$2 consumers=$3 port pid fsyncs=""
    case "$broker" in mqbridge) port=$mqbridge_port ;; rabbitmq) port=$rabbitmq_port ;; esac
    pid="$(listener_pid "$port")"
    timeout "$((seconds_per_cell + cell_slack_seconds))" "$target_dir/release/mqbridge-bench" amqp \
        --url "amqp://guest:guest@127.0.0.1:$port/%2F" --durable --size "$message_size" \
        --confirm-window "$confirm_window" --producers "$producers" --consumers "$consumers" \
        --duration "${seconds_per_cell}s" --scenario "$broker" ${pid:+--broker-pid "$pid"} \
        >"$work_dir/cell.out" 2>"$work_dir/cell.err" &
    local bench=$!
    if [ "$broker" = mqbridge ]; then
        sleep 1 # the warm-up
        local before after
        before="$(journal_fsyncs)"
        sleep "$seconds_per_cell"
        after="$(journal_fsyncs)"
        [ -z "$before" ] || [ -z "$after" ] || fsyncs=$((after - before))
    fi
    if ! wait "$bench" || ! grep -q '^RESULT ' "$work_dir/cell.out"; then
        log "$broker, $producers -> $consumers: failed"; tail -n 5 "$work_dir/cell.err" >&2
        return 0
    fi
    local line
    line="$(grep '^RESULT ' "$work_dir/cell.out")${fsyncs:+ fsyncs=$fsyncs}"
    echo "$line" >&2
    echo "$line" >>"$work_dir/$broker.$producers"
}

median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "error"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Median of field $2 over the RESULT lines in file $1.
field_median() {
    [ -s "$1" ] || { echo error; return; }
    while read -r line; do result_field "$line" "$2"; done <"$1" | grep -E '^[0-9.]+$' | median || true
}

# Median messages per fsync: confirmed messages over the counted window / its fdatasync calls.
per_fsync_median() {
    [ -s "$1" ] || { echo n/a; return; }
    while read -r line; do
        local rate fsyncs
        rate="$(result_field "$line" confirmed_per_s)"; fsyncs="$(result_field "$line" fsyncs)"
        [ -n "$fsyncs" ] && [ "$fsyncs" -gt 0 ] || continue
        awk -v r="$rate" -v s="$seconds_per_cell" -v f="$fsyncs" 'BEGIN { printf "%.0f\n", r * s / f }'
    done <"$1" | median | sed 's/^error$/n\/a/' || true
}

print_throughput() {
    echo "| scenario (durable queue, confirms, window $confirm_window) | mqbridge msg/s" \
        "| RabbitMQ msg/s | ratio | mqbridge messages per fsync | CPU mqbridge / RabbitMQ |"
    echo "|---|---:|---:|---:|---:|---:|"
    for scenario in "${scenarios[@]}"; do
        IFS='|' read -r label producers _ <<<"$scenario"
        local ours theirs ratio
        ours="$(field_median "$work_dir/mqbridge.$producers" consumed_per_s)"
        theirs="$(field_median "$work_dir/rabbitmq.$producers" consumed_per_s)"
        ratio="$(awk -v a="$ours" -v b="$theirs" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }')"
        echo "| $label | $ours | $theirs | $ratio | $(per_fsync_median "$work_dir/mqbridge.$producers")" \
            "| $(field_median "$work_dir/mqbridge.$producers" broker_cpu) / $(field_median "$work_dir/rabbitmq.$producers" broker_cpu) |"
    done
    local other
    other="$(cat "$work_dir"/*.[0-9] 2>/dev/null | while read -r line; do result_field "$line" other_cpu; done \
        | grep -E '^[0-9.]+$' | sort -n | tail -n 1)"
    echo
    echo "msg/s = messages consumed per second (median over $rounds round(s)); most CPU used by" \
        "other processes during a cell: ${other:-n/a} cores."
}

# Fills a fresh mqbridge with $recovery_messages persistent 1 KiB messages, stops it, and
# times the next start until the AMQP port accepts connections.
measure_recovery() {
    stop_mqbridge; remove_mqbridge_data
    start_mqbridge
    log "recovery: storing $recovery_messages messages"
    "$target_dir/release/mqbridge-bench" amqp-fill --url "amqp://guest:guest@127.0.0.1:$mqbridge_port/%2F" \
        --queue recovery --messages "$recovery_messages" --size "$message_size" >&2
    stop_mqbridge
    local journal_bytes started ended
    journal_bytes="$(du -sb "$mqbridge_data_dir/journal" | cut -f1)"
    sync; wait_for_quiet
    started="$(date +%s.%N)"
    start_mqbridge
    ended="$(date +%s.%N)"
    local log_text replayed elapsed
    log_text="$(strip_colours <"$mqbridge_data_dir.log")"
    elapsed="$(sed -n 's/.*journal recovered.*elapsed_ms=\([0-9]*\).*/\1/p' <<<"$log_text" | tail -n 1)"
    replayed="$(sed -n 's/.*journal replayed.* messages=\([0-9]*\).*/\1/p' <<<"$log_text" | tail -n 1)"
    echo "| messages stored | journal on disk | replay (\"journal recovered\" elapsed_ms) | start to AMQP port open | messages replayed |"
    echo "|---:|---:|---:|---:|---:|"
    echo "| $recovery_messages | $((journal_bytes / 1048576)) MiB | ${elapsed:-?} ms" \
        "| $(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.0f", (b - a) * 1000 }') ms | ${replayed:-?} |"
    echo "(page cache warm: the journal was just written; the time includes process start-up)"
}

main() {
    work_dir="$(mktemp -d /tmp/mqbridge-compare-durable.XXXXXX)"
    log "building mqbridge and mqbridge-bench (release)"
    cargo build --release -q --bin mqbridge
    cargo build --release -q -p mqbridge-bench
    echo "- Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
    echo "- mqbridge $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src protocols || echo ' (with uncommitted changes)'); RabbitMQ $(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo unknown)"
    echo "- $(date -u '+%Y-%m-%d %H:%M UTC'); load average before: $(cut -d' ' -f1-3 /proc/loadavg); ${seconds_per_cell} s cells, $rounds round(s)"
    echo
    local active=""
    for broker in $brokers; do
        case "$broker" in
            mqbridge) start_mqbridge && active="$active mqbridge" ;;
            rabbitmq) start_rabbitmq && active="$active rabbitmq" ;;
        esac
    done
    for round in $(seq 1 "$rounds"); do
        for scenario in "${scenarios[@]}"; do
            IFS='|' read -r label producers consumers <<<"$scenario"
            for broker in $active; do
                wait_for_quiet
                log "round $round: $broker: $label"
                run_cell "$broker" "$producers" "$consumers"
            done
        done
    done
    print_throughput
    stop_rabbitmq
    if [ "$recovery_messages" -gt 0 ] && [[ " $brokers " == *" mqbridge "* ]]; then
        echo
        measure_recovery
    fi
}

main "$@"
