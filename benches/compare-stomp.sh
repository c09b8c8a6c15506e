#!/usr/bin/env bash
# benches/compare-stomp.sh: mqbridge's STOMP listener against RabbitMQ's STOMP plugin and
# Apache ActiveMQ, same machine, same run, same load tool (issue 4's benchmark).
#
# Starts mqbridge, RabbitMQ with rabbitmq_stomp (Debian's rabbitmq-server, a private node with
# its own state, as conformance/peers/rabbitmq.sh starts one, plus the plugin) and ActiveMQ
# (Debian's activemq, a private instance with only a STOMP transport connector, started from
# this script's own activemq.xml; the system-wide instances are never touched) on loopback,
# runs `mqbridge-bench stomp` against each (1 producer -> 1 consumer on a fresh /queue/, 1 KiB
# bodies, client-individual acks, 1000 unacked at most each way), prints a Markdown table on
# stdout and stops all three on exit. Progress and the RESULT lines go to stderr.
#
# Environment (all optional):
#   BENCH_SECONDS=10          measured seconds per cell (after a 1 s warm-up)
#   BENCH_ROUNDS=1            rounds; with more than one, each cell is the median of the rounds
#   BENCH_BROKERS="mqbridge rabbitmq activemq"   which brokers to run
#   BENCH_MQBRIDGE_STOMP_PORT=18861, BENCH_RABBITMQ_STOMP_PORT=18862,
#   BENCH_ACTIVEMQ_STOMP_PORT=18863, BENCH_RABBITMQ_PORT=5674 (RabbitMQ's AMQP port)
#   BENCH_QUIET_WAIT_SECONDS=60  before each cell, wait up to this long for idle cores
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
readonly repo_root
cd "$repo_root"

readonly seconds_per_scenario="${BENCH_SECONDS:-10}"
readonly rounds="${BENCH_ROUNDS:-1}"
readonly brokers="${BENCH_BROKERS:-mqbridge rabbitmq activemq}"
readonly mqbridge_port="${BENCH_MQBRIDGE_STOMP_PORT:-18861}"
readonly rabbitmq_stomp_port="${BENCH_RABBITMQ_STOMP_PORT:-18862}"
readonly activemq_port="${BENCH_ACTIVEMQ_STOMP_PORT:-18863}"
readonly rabbitmq_port="${BENCH_RABBITMQ_PORT:-5674}"
readonly target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
readonly quiet_wait_seconds="${BENCH_QUIET_WAIT_SECONDS:-60}"
readonly quiet_busy_percent_max=10
# A cell's own stop takes well under 15 s; past warm-up + measurement + this, it is hung.
readonly scenario_slack_seconds=30
readonly start_timeout_seconds=90
readonly all_brokers=(mqbridge rabbitmq activemq)

log() { echo "compare-stomp.sh: $*" >&2; }
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

declare -A broker_status=([mqbridge]="not run" [rabbitmq]="not run" [activemq]="not run")
declare -A broker_port=([mqbridge]="$mqbridge_port" [rabbitmq]="$rabbitmq_stomp_port"
    [activemq]="$activemq_port")
work_dir="$(mktemp -d /tmp/mqbridge-compare-stomp.XXXXXX)"
mqbridge_pid="" activemq_pid="" rabbitmq_pid=""

# --- mqbridge -------------------------------------------------------------------------------
start_mqbridge() {
    cargo build --release -q --bin mqbridge || return 1
    port_open "$mqbridge_port" && { log "port $mqbridge_port is in use"; return 1; }
    mkdir -p "$work_dir/mqbridge"
    MQBRIDGE_MQTT_PORT=0 MQBRIDGE_WS_PORT=0 MQBRIDGE_SQS_PORT=0 \
    "$target_dir/release/mqbridge" --bind 127.0.0.1 --amqp-port 0 --stomp-port "$mqbridge_port" \
        --data-dir "$work_dir/mqbridge" >"$work_dir/mqbridge.log" 2>&1 &
    mqbridge_pid=$!
    wait_for_port "$mqbridge_port" "$mqbridge_pid" \
        || { tail -n 20 "$work_dir/mqbridge.log" >&2; return 1; }
}

# --- RabbitMQ: conformance/peers/rabbitmq.sh's private node, with rabbitmq_stomp ------------
readonly rabbit_sbin=/usr/lib/rabbitmq/bin
rabbit_env() {
    local base="$work_dir/rabbitmq" dist_port=$((rabbitmq_port + 20000))
    export HOME="$base/home" RABBITMQ_NODENAME="mqbridge-stomp-$rabbitmq_port@localhost"
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
    echo '[rabbitmq_stomp].' >"$base/enabled_plugins"
    cat >"$base/rabbitmq.conf" <<EOF_CONF
loopback_users.guest = true
disk_free_limit.absolute = 1
vm_memory_high_watermark.relative = 0.9
stomp.listeners.tcp.default = 127.0.0.1:$rabbitmq_stomp_port
EOF_CONF
    (
        rabbit_env
        setsid "$rabbit_sbin/rabbitmq-server" >"$base/log/startup.log" 2>&1 </dev/null &
        echo $! >"$base/wrapper.pid"
    )
    rabbitmq_pid="$(cat "$base/wrapper.pid")"
    wait_for_port "$rabbitmq_stomp_port" "$rabbitmq_pid" \
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

# --- ActiveMQ: Debian's package, a private instance ----------------------------------------
# Debian's /etc/activemq/instances-available/main/activemq.xml has one OpenWire connector on
# 61616 and a KahaDB store; this copy keeps the store and has only a STOMP connector.
start_activemq() {
    [ -f /usr/share/activemq/bin/activemq.jar ] \
        || { log "activemq is not installed (apt-get install activemq)"; return 1; }
    local base="$work_dir/activemq"
    mkdir -p "$base/conf" "$base/data"
    cat >"$base/conf/activemq.xml" <<EOF_XML
<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="bench"
          dataDirectory="$base/data">
    <persistenceAdapter><kahaDB directory="$base/data/kahadb"/></persistenceAdapter>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:$activemq_port"/>
    </transportConnectors>
  </broker>
</beans>
EOF_XML
    # Debian's defaults (/usr/share/activemq/activemq-options): a 512 MB heap.
    (
        cd "$base"
        setsid java -Xms512M -Xmx512M -Dorg.apache.activemq.UseDedicatedTaskRunner=true \
            -Dactivemq.home=/usr/share/activemq -Dactivemq.base="$base" \
            -Dactivemq.conf="$base/conf" -Dactivemq.data="$base/data" \
            -jar /usr/share/activemq/bin/activemq.jar start "xbean:file:$base/conf/activemq.xml" \
            >"$base/out.log" 2>&1 </dev/null &
        echo $! >"$base/pid"
    )
    activemq_pid="$(cat "$base/pid")"
    wait_for_port "$activemq_port" "$activemq_pid" || { tail -n 20 "$base/out.log" >&2; return 1; }
}

cleanup() {
    stop_pid "$mqbridge_pid"
    stop_pid "$activemq_pid"
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
run_cell() {
    local broker=$1 port="${broker_port[$1]}" pid
    pid="$(listener_pid "$port")"
    RUST_BACKTRACE=0 timeout "$((seconds_per_scenario + scenario_slack_seconds))" \
        "$target_dir/release/mqbridge-bench" stomp --port "$port" --size 1024 \
        --duration "${seconds_per_scenario}s" --scenario "$broker" ${pid:+--broker-pid "$pid"} \
        2>"$work_dir/last.err" | grep '^RESULT ' || {
        log "$broker: failed"; tail -n 5 "$work_dir/last.err" >&2; return 0; }
}
result_field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
fields() { local line; while read -r line; do result_field "$line" "$1"; done; }
median() {
    grep -E '^[0-9.]+$' | sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "error"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
cell() {
    local file="$work_dir/$1.results"
    if [ -n "${broker_status[$1]:-}" ]; then echo "${broker_status[$1]}"
    elif [ -s "$file" ]; then fields "$2" <"$file" | median
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
    for broker in $brokers; do
        broker_status[$broker]=""
        log "starting $broker"
        if "start_$broker"; then active="$active $broker"; else
            broker_status[$broker]="did not start"; log "$broker did not start"; fi
    done
    for round in $(seq 1 "$rounds"); do
        for broker in $active; do
            wait_for_quiet
            log "round $round: $broker"
            run_cell "$broker" | tee -a "$work_dir/$broker.results" >&2
        done
    done
    local figures=() cpu=()
    for broker in "${all_brokers[@]}"; do
        figures+=("$(cell "$broker" received_per_s)")
        cpu+=("$(cell "$broker" broker_cpu) ($(cell "$broker" client_cpu); other $(cell "$broker" other_cpu))")
    done
    echo "- Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "- mqbridge $(git describe --always --dirty 2>/dev/null) (release); RabbitMQ" \
        "$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo unknown) with" \
        "rabbitmq_stomp; ActiveMQ $(dpkg-query -W -f='${Version}' activemq 2>/dev/null || echo unknown)" \
        "(Debian packages)"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average before the run: $load;" \
        "${seconds_per_scenario} s per cell after 1 s warm-up, $rounds round(s), median"
    echo
    echo "| STOMP 1 -> 1, /queue/, 1 KiB, client-individual | mqbridge | RabbitMQ | ActiveMQ |" \
        "mqbridge/RabbitMQ | mqbridge/ActiveMQ |"
    echo "|---|---:|---:|---:|---:|---:|"
    echo "| received msg/s | ${figures[0]} | ${figures[1]} | ${figures[2]} |" \
        "$(ratio "${figures[0]}" "${figures[1]}") | $(ratio "${figures[0]}" "${figures[2]}") |"
    echo "| CPU cores: broker (client; other processes) | ${cpu[0]} | ${cpu[1]} | ${cpu[2]} | | |"
}

main "$@"
