#!/usr/bin/env bash
# benches/compare-sqs.sh: mqbridge's Amazon SQS API against moto in server mode, same machine,
# same run, same load tool (the SQS issue's benchmark).
#
# Installs moto[server] from PyPI into a venv, starts `moto_server` and mqbridge (release
# build, SQS listener on a free port, every other listener on a free port, a temporary data
# directory) on loopback, and runs two `mqbridge-bench` scenarios against each, alternating
# peer by peer, for BENCH_ROUNDS rounds, each with many clients and with one (see `cells`):
#   - sqs-batch: producers send SendMessageBatch (10 x 1 KiB); consumers ReceiveMessage
#     (MaxNumberOfMessages 10, WaitTimeSeconds 1) + DeleteMessageBatch; producers pause while
#     more than BENCH_SQS_BACKLOG messages are sent and not deleted; then the queue is drained
#     and every message id checked (lost must be 0);
#   - sqs-send: concurrent clients send single SendMessage requests (1 KiB).
# Both speak AWS JSON 1.0 over HTTP/1.1. During mqbridge's batch cells the journal's fdatasync
# calls are counted (mqbridge's /metrics, read before and after) to give messages per fsync.
# Prints a Markdown table on stdout; progress and the RESULT lines go to stderr.
#
# Environment (all optional):
#   BENCH_SECONDS=10            measured seconds per cell (after a 1 s warm-up)
#   BENCH_ROUNDS=1              rounds; with more, each cell is the median of the rounds
#   BENCH_PEERS="mqbridge moto" which servers to run
#   BENCH_SQS_PRODUCERS=16, BENCH_SQS_CONSUMERS=16   sqs-batch client tasks
#   BENCH_SQS_BACKLOG=100       sqs-batch: most messages sent and not yet deleted
#   BENCH_SQS_CLIENTS=16        sqs-send client tasks
#   BENCH_VENV=DIR              venv to use (created, and moto[server] installed, if missing);
#                               default: a new one in the run's temporary directory
#   BENCH_MQBRIDGE_SQS_PORT, BENCH_MOTO_PORT   default: free ports
#   BENCH_QUIET_WAIT_SECONDS=60 before each cell, wait up to this long for idle cores
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
readonly repo_root
cd "$repo_root"

readonly seconds_per_cell="${BENCH_SECONDS:-10}"
readonly rounds="${BENCH_ROUNDS:-1}"
readonly peers="${BENCH_PEERS:-mqbridge moto}"
readonly producers="${BENCH_SQS_PRODUCERS:-16}"
readonly consumers="${BENCH_SQS_CONSUMERS:-16}"
readonly backlog="${BENCH_SQS_BACKLOG:-100}"
readonly clients="${BENCH_SQS_CLIENTS:-16}"
readonly quiet_wait_seconds="${BENCH_QUIET_WAIT_SECONDS:-60}"
readonly target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
readonly message_size=1024
readonly wait_seconds=1
# Idle servers use a few percent of the machine; above this, something else is running.
readonly quiet_busy_percent_max=10
# Warm-up, the drain after a batch cell (the tool gives up after 60 s) and the stop.
readonly cell_slack_seconds=90
readonly start_timeout_seconds=60

log() { echo "compare-sqs.sh: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for_port() { # PORT PID: until PORT opens, PID dies or the start timeout passes
    local deadline=$((SECONDS + start_timeout_seconds))
    until port_open "$1"; do
        kill -0 "$2" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
stop_pid() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.25; done
    kill -KILL "$1" 2>/dev/null || true
}

work_dir="$(mktemp -d /tmp/mqbridge-compare-sqs.XXXXXX)"
readonly work_dir
readonly venv="${BENCH_VENV:-$work_dir/venv}"
mqbridge_pid="" moto_pid="" management_port=""
declare -A peer_status=([mqbridge]="not run" [moto]="not run")
declare -A peer_port=([mqbridge]="${BENCH_MQBRIDGE_SQS_PORT:-}" [moto]="${BENCH_MOTO_PORT:-}")
declare -A peer_pid=()

cleanup() {
    stop_pid "$mqbridge_pid"
    stop_pid "$moto_pid"
    rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- mqbridge -------------------------------------------------------------------------------
start_mqbridge() {
    cargo build --release -q --bin mqbridge || return 1
    local port="${peer_port[mqbridge]:-$(free_port)}"
    peer_port[mqbridge]=$port
    port_open "$port" && { log "port $port is in use"; return 1; }
    mkdir -p "$work_dir/mqbridge"
    # Every listener not under test takes a free port, so that another broker on the default
    # ports cannot stop this one from starting.
    management_port="$(free_port)"
    NO_COLOR=1 MQBRIDGE_MQTT_PORT=0 MQBRIDGE_WS_PORT=0 MQBRIDGE_STOMP_PORT=0 \
        MQBRIDGE_MANAGEMENT_PORT="$management_port" \
        "$target_dir/release/mqbridge" --bind 127.0.0.1 --amqp-port 0 --sqs-port "$port" \
        --data-dir "$work_dir/mqbridge" >"$work_dir/mqbridge.log" 2>&1 &
    mqbridge_pid=$!
    peer_pid[mqbridge]=$mqbridge_pid
    wait_for_port "$port" "$mqbridge_pid" || { tail -n 20 "$work_dir/mqbridge.log" >&2; return 1; }
}

# --- moto: moto[server] from PyPI in a venv -------------------------------------------------
moto_version() { "$venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null; }
start_moto() {
    if ! moto_version >/dev/null; then
        log "installing moto[server] into $venv"
        python3 -m venv "$venv" || return 1
        "$venv/bin/pip" install -q 'moto[server]' >"$work_dir/pip.log" 2>&1 \
            || { tail -n 20 "$work_dir/pip.log" >&2; return 1; }
    fi
    local port="${peer_port[moto]:-$(free_port)}"
    peer_port[moto]=$port
    port_open "$port" && { log "port $port is in use"; return 1; }
    # moto_server: werkzeug's threaded server, one thread per connection, all state in memory.
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work_dir/moto.log" 2>&1 &
    moto_pid=$!
    peer_pid[moto]=$moto_pid
    wait_for_port "$port" "$moto_pid" || { tail -n 20 "$work_dir/moto.log" >&2; return 1; }
}

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
# fdatasync calls mqbridge's journal has made so far; nothing if curl is missing or fails.
# Read from /metrics rather than counted with strace: tracing the journal thread slowed it,
# and with it every send, by a fifth and more.
journal_fsyncs() {
    command -v curl >/dev/null || return 0
    curl -s --max-time 2 "http://127.0.0.1:$management_port/metrics" \
        | awk '$1 == "rabbitmq_io_sync_ops_total" { print $2 }' || true
}

# The cells of a round, each run against every peer with the same settings: the issue's
# concurrent load, and one client at a time, where moto does best (one interpreter lock, and
# work per message that grows with the messages in the queue, in-flight ones included).
readonly cells=(batch-n batch-1 send-n send-1)
cell_arguments() {
    case "$1" in
        batch-n) echo sqs-batch --producers "$producers" --consumers "$consumers" ;;
        batch-1) echo sqs-batch --producers 1 --consumers 1 ;;
        send-n) echo sqs-send --clients "$clients" ;;
        send-1) echo sqs-send --clients 1 ;;
    esac
    case "$1" in
        batch-*) echo --wait-seconds "$wait_seconds" --backlog-max "$backlog" ;;
    esac
}

# Runs cell $2 against peer $1; appends its RESULT line to $work_dir/$1.$2 (plus fsyncs= for
# mqbridge's batch cells).
run_cell() {
    local peer=$1 cell=$2 pid="${peer_pid[$1]}" counted="" fsyncs="" arguments
    read -r -a arguments <<<"$(cell_arguments "$cell" | tr '\n' ' ')"
    [[ "$peer $cell" != "mqbridge batch-"* ]] || counted=yes
    RUST_BACKTRACE=0 timeout "$((seconds_per_cell + cell_slack_seconds))" \
        "$target_dir/release/mqbridge-bench" "${arguments[@]}" \
        --endpoint "http://127.0.0.1:${peer_port[$peer]}" --size "$message_size" \
        --duration "${seconds_per_cell}s" --scenario "$peer" --broker-pid "$pid" \
        >"$work_dir/cell.out" 2>"$work_dir/cell.err" &
    local bench=$!
    if [ -n "$counted" ]; then
        sleep 1 # the warm-up
        local before after
        before="$(journal_fsyncs)"
        sleep "$seconds_per_cell"
        after="$(journal_fsyncs)"
        [ -z "$before" ] || [ -z "$after" ] || fsyncs=$((after - before))
    fi
    local status=0
    wait "$bench" || status=$?
    if ! grep -q '^RESULT ' "$work_dir/cell.out"; then
        log "$peer, $cell: failed"; tail -n 5 "$work_dir/cell.err" >&2
        return 0
    fi
    [ "$status" -eq 0 ] || { log "$peer, $cell: exit $status"; tail -n 3 "$work_dir/cell.err" >&2; }
    local line
    line="$(grep '^RESULT ' "$work_dir/cell.out")${fsyncs:+ fsyncs=$fsyncs}"
    echo "$line" >&2
    echo "$line" >>"$work_dir/$peer.$cell"
}

result_field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
median() {
    grep -E '^[0-9.]+$' | sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "error"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# Median of field $3 over peer $1's RESULT lines of cell $2.
figure() {
    local file="$work_dir/$1.$2" line
    if [ -n "${peer_status[$1]:-}" ]; then echo "${peer_status[$1]}"; return; fi
    [ -s "$file" ] || { echo error; return; }
    while read -r line; do result_field "$line" "$3"; done <"$file" | median
}
# Sum of field $2 over peer $1's RESULT lines of every batch cell (the loss check's counts).
total() {
    cat "$work_dir/$1".batch-* 2>/dev/null | while read -r line; do result_field "$line" "$2"; done \
        | awk '{ s += $1 } END { print s + 0 }'
}
# Median messages per fsync of mqbridge's cell $1: sent over the counted window / fsyncs.
per_fsync() {
    local file="$work_dir/mqbridge.$1" line
    [ -s "$file" ] || { echo n/a; return; }
    while read -r line; do
        local rate fsyncs
        rate="$(result_field "$line" sent_per_s)"; fsyncs="$(result_field "$line" fsyncs)"
        [ -n "$fsyncs" ] && [ "$fsyncs" -gt 0 ] || continue
        awk -v r="$rate" -v s="$seconds_per_cell" -v f="$fsyncs" 'BEGIN { printf "%.0f\n", r * s / f }'
    done <"$file" | median | sed 's/^error$/n\/a/'
}
ratio() {
    if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]]; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'
    else echo "n/a"; fi
}
larger() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0 ? a : b) }'; }
cpu() {
    echo "$(figure "$1" "$2" broker_cpu) ($(figure "$1" "$2" client_cpu); other $(figure "$1" "$2" other_cpu))"
}
# One table row: label, cell, field.
row() {
    local m o
    m="$(figure mqbridge "$2" "$3")"; o="$(figure moto "$2" "$3")"
    echo "| $1 | $m | $o | $(ratio "$m" "$o") | $(cpu mqbridge "$2") | $(cpu moto "$2") |"
}

print_tables() {
    local load=$1 best_m best_o
    echo "- Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "- mqbridge $(git describe --always --dirty 2>/dev/null) (release); moto $(moto_version || echo unknown)" \
        "(moto_server from PyPI, Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo unknown))"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average before the run: $load;" \
        "${seconds_per_cell} s per cell after 1 s warm-up, $rounds round(s), median"
    echo "- 1 KiB bodies; batch cells: WaitTimeSeconds $wait_seconds, producers pause while more" \
        "than $backlog messages are sent and not deleted"
    echo
    echo "| scenario | mqbridge | moto | mqbridge/moto | CPU mqbridge (tool; other) | CPU moto (tool; other) |"
    echo "|---|---:|---:|---:|---:|---:|"
    row "batch, $producers producers + $consumers consumers: msg/s end to end (deleted)" batch-n deleted_per_s
    row "batch, 1 producer + 1 consumer: msg/s end to end (deleted)" batch-1 deleted_per_s
    row "single SendMessage, $clients clients: requests/s" send-n sent_per_s
    row "single SendMessage, 1 client: requests/s" send-1 sent_per_s
    echo
    for kind in batch send; do
        local field=deleted_per_s
        [ "$kind" = batch ] || field=sent_per_s
        best_m="$(larger "$(figure mqbridge "$kind-n" $field)" "$(figure mqbridge "$kind-1" $field)")"
        best_o="$(larger "$(figure moto "$kind-n" $field)" "$(figure moto "$kind-1" $field)")"
        echo "- $kind, best cell of each: mqbridge $best_m, moto $best_o, ratio $(ratio "$best_m" "$best_o")"
    done
    echo "- msg/s sent in the batch cells: mqbridge $(figure mqbridge batch-n sent_per_s) /" \
        "$(figure mqbridge batch-1 sent_per_s), moto $(figure moto batch-n sent_per_s) /" \
        "$(figure moto batch-1 sent_per_s)"
    echo "- TCP connects/s (batch-n, send-n): mqbridge $(figure mqbridge batch-n connects_per_s)," \
        "$(figure mqbridge send-n connects_per_s); moto $(figure moto batch-n connects_per_s)," \
        "$(figure moto send-n connects_per_s)"
    echo "- Loss check over all batch cells (messages sent / lost / duplicates): mqbridge" \
        "$(total mqbridge sent_total) / $(total mqbridge lost) / $(total mqbridge duplicates);" \
        "moto $(total moto sent_total) / $(total moto lost) / $(total moto duplicates)"
    echo "- mqbridge messages per fdatasync: batch-n $(per_fsync batch-n), batch-1 $(per_fsync batch-1)"
}

main() {
    local load active=""
    load="$(cut -d' ' -f1-3 /proc/loadavg)"
    cargo build --release -q -p mqbridge-bench
    for peer in $peers; do
        peer_status[$peer]=""
        log "starting $peer"
        if "start_$peer"; then active="$active $peer"; else
            peer_status[$peer]="did not start"; log "$peer did not start"; fi
    done
    for round in $(seq 1 "$rounds"); do
        for cell in "${cells[@]}"; do
            for peer in $active; do
                wait_for_quiet
                log "round $round: $peer, $cell"
                run_cell "$peer" "$cell"
            done
        done
    done
    print_tables "$load"
}

main "$@"
