#!/usr/bin/env bash
# benches/overload.sh: mqbridge under overload (issue 11), one run of `mqbridge-bench overload`.
#
# Starts a release mqbridge with a small memory high watermark on its own ports and data
# directory, then 10,000 connections (idle MQTT ones plus the flood's own), a flood of
# persistent 1 KiB messages with publisher confirms from 4 AMQP publishers into one durable
# queue, well past the watermark, while one slow consumer drains it; then a fast drain and a
# recovery probe. The tool checks the broker's peak RSS against the watermark plus a stated
# margin, that no confirmed message was lost, and that publishing recovers. Prints a Markdown
# table on stdout and the RESULT line and progress on stderr; exits non-zero when a check
# fails. See "Overload (issue 11)" in docs/BENCHMARKS.md.
#
# Environment (all optional):
#   BENCH_SECONDS=30                flood duration
#   BENCH_WATERMARK_MIB=64          the broker's --memory-high-watermark-bytes, in MiB
#   BENCH_MARGIN_MIB=32             RSS allowed over (RSS with connections open + watermark)
#   BENCH_CONNECTIONS=10000         connections open during the flood
#   BENCH_PUBLISHERS=4              publisher connections
#   BENCH_MQBRIDGE_AMQP_PORT=5694, BENCH_MQBRIDGE_MQTT_PORT=18841
#   BENCH_QUIET_WAIT_SECONDS=60     wait up to this long for idle cores first (0 disables)
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
readonly repo_root
cd "$repo_root"

readonly flood_seconds="${BENCH_SECONDS:-30}"
readonly watermark_mib="${BENCH_WATERMARK_MIB:-64}"
readonly margin_mib="${BENCH_MARGIN_MIB:-32}"
readonly connections="${BENCH_CONNECTIONS:-10000}"
readonly publishers="${BENCH_PUBLISHERS:-4}"
readonly amqp_port="${BENCH_MQBRIDGE_AMQP_PORT:-5694}"
readonly mqtt_port="${BENCH_MQBRIDGE_MQTT_PORT:-18841}"
readonly quiet_wait_seconds="${BENCH_QUIET_WAIT_SECONDS:-60}"
readonly target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
readonly watermark_bytes=$((watermark_mib * 1024 * 1024))
# Both the tool and the broker (started from this script, so it inherits the limit) hold one
# descriptor per connection, plus a few hundred for everything else.
readonly open_files_wanted=65536
readonly open_files_spare=1000
readonly mqbridge_start_timeout_seconds=30
# Opening 10,000 connections takes seconds, the flood BENCH_SECONDS, the drain of a watermark's
# worth of messages a few seconds; past this the run is hung and is killed.
readonly run_slack_seconds=300
# Idle brokers use a few percent of the machine; above this, something else is running.
readonly quiet_busy_percent_max=10

log() { echo "overload.sh: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

mqbridge_pid=""
data_dir=""
work_dir=""

start_mqbridge() {
    local port
    for port in "$amqp_port" "$mqtt_port"; do
        if port_open "$port"; then
            log "port $port is already in use; stop what is there first"
            return 1
        fi
    done
    data_dir="$(mktemp -d /tmp/mqbridge-overload.XXXXXX)"
    # Every listener not under test takes a free port, so that another broker on the default
    # ports cannot stop this one from starting. Every connection comes from 127.0.0.1, so the
    # per-address cap (4,096 by default) is raised above the connection count.
    NO_COLOR=1 MQBRIDGE_WS_PORT=0 MQBRIDGE_SQS_PORT=0 MQBRIDGE_MANAGEMENT_PORT=0 \
        "$target_dir/release/mqbridge" --bind 127.0.0.1 --amqp-port "$amqp_port" \
        --mqtt-port "$mqtt_port" --stomp-port 0 --data-dir "$data_dir" \
        --memory-high-watermark-bytes "$watermark_bytes" \
        --max-connections-per-address "$((connections + open_files_spare))" >"$data_dir.log" 2>&1 &
    mqbridge_pid=$!
    local deadline=$((SECONDS + mqbridge_start_timeout_seconds))
    until port_open "$amqp_port" && port_open "$mqtt_port"; do
        if ! kill -0 "$mqbridge_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            log "mqbridge did not open ports $amqp_port and $mqtt_port:"
            tail -n 20 "$data_dir.log" >&2 || true
            return 1
        fi
        sleep 0.05
    done
}

stop_mqbridge() {
    [ -n "$mqbridge_pid" ] || return 0
    kill -TERM "$mqbridge_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$mqbridge_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$mqbridge_pid" 2>/dev/null || true
    wait "$mqbridge_pid" 2>/dev/null || true
    mqbridge_pid=""
}

cleanup() {
    stop_mqbridge
    [ -z "$data_dir" ] || rm -rf "$data_dir" "$data_dir.log"
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

raise_open_files() {
    ulimit -n "$open_files_wanted" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((connections + open_files_spare)) ]; then
        log "open-file limit $(ulimit -n) is too low for $connections connections"
        exit 1
    fi
}

result_field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

machine_description() {
    local cpu
    cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "- Machine: $(nproc) cores, ${cpu:-unknown CPU}, $(uname -sr)," \
        "$(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
    echo "- mqbridge: $(git -C "$repo_root" describe --always --dirty 2>/dev/null || echo unknown)" \
        "(release build), --memory-high-watermark-bytes $watermark_bytes ($watermark_mib MiB)"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average before the run:" \
        "$(cut -d' ' -f1-3 /proc/loadavg); open-file limit $(ulimit -n)"
    echo "- Flood: $publishers publishers, 1 KiB persistent, confirm window 1000, ${flood_seconds} s;" \
        "$connections connections open"
}

# One Markdown table of the RESULT line.
print_table() {
    local line=$1 field
    echo "| figure | value |"
    echo "|---|---:|"
    for field in connections idle_closed published confirmed nacked consumed lost duplicates \
        rss_start_mib rss_idle_mib per_connection_bytes watermark_mib margin_mib limit_mib \
        peak_rss_mib sampled_peak_mib held_at_peak held_max hwm_mib blocked_seconds blocked_events stalled_seconds \
        drain_ms recovery_ms client_cpu broker_cpu other_cpu pass; do
        echo "| $field | $(result_field "$line" "$field") |"
    done
}

main() {
    raise_open_files
    log "building mqbridge and mqbridge-bench (release)"
    cargo build --release -q -p mqbridge -p mqbridge-bench
    work_dir="$(mktemp -d /tmp/mqbridge-overload-run.XXXXXX)"
    start_mqbridge
    wait_for_quiet
    local description status=0
    description="$(machine_description)"
    log "flooding for ${flood_seconds} s past a ${watermark_mib} MiB watermark"
    RUST_BACKTRACE=0 timeout "$((flood_seconds + run_slack_seconds))" \
        "$target_dir/release/mqbridge-bench" overload \
        --url "amqp://guest:guest@127.0.0.1:$amqp_port/%2F" --mqtt-port "$mqtt_port" \
        --username guest --password guest --connections "$connections" \
        --publishers "$publishers" --size 1024 --confirm-window 1000 \
        --duration "${flood_seconds}s" --broker-pid "$mqbridge_pid" \
        --watermark-bytes "$watermark_bytes" --margin-mib "$margin_mib" \
        >"$work_dir/out" || status=$?
    local line
    line="$(grep '^RESULT ' "$work_dir/out" || true)"
    if [ -z "$line" ]; then
        log "the run printed no RESULT line (exit status $status)"
        exit 1
    fi
    echo "$line" >&2
    echo "$description"
    echo
    print_table "$line"
    if grep -q 'memory alarm set' "$data_dir.log"; then
        log "broker log: $(grep -c 'memory alarm set' "$data_dir.log") memory alarm(s) set"
    fi
    exit "$status"
}

main "$@"
