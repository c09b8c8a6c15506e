#!/usr/bin/env bash
# The management HTTP API through rabbitmqadmin, RabbitMQ's own command-line client of it
# (taken out of Debian's rabbitmq-server package by conformance/run into conformance/.tools):
# list, declare, publish, get, purge and delete, and policies, as an operator's scripts use them.
# Needs MQBRIDGE_MANAGEMENT_URL (http://HOST:PORT); cases that cross to AMQP also use
# MQBRIDGE_AMQP_URL. Run it through conformance/run.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

readonly url=${MQBRIDGE_MANAGEMENT_URL:?set MQBRIDGE_MANAGEMENT_URL (conformance/run does)}
readonly tool=${RABBITMQADMIN:-${CONFORMANCE_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}/.tools/rabbitmqadmin}
readonly command_timeout_seconds=10
host_port=${url#http://}
host_port=${host_port%%/*}
readonly host=${host_port%:*} port=${host_port##*:}

# rabbitmqadmin as guest; -q leaves out status lines and table headers, -f tsv gives one
# tab-separated line per row.
admin() {
    timeout "$command_timeout_seconds" python3 "$tool" -H "$host" -P "$port" \
        -u guest -p guest "$@"
}
rows() { admin -q -f tsv "$@"; }

# The value of COLUMN (second column of `list queues name COLUMN`) for queue NAME.
queue_column() {
    rows list queues name "$2" | awk -F '\t' -v name="$1" '$1 == name { print $2 }'
}

# Waits until queue NAME reports EXPECTED messages: queue statistics are eventually
# consistent (RabbitMQ's are refreshed every 5 s), so a count is read until it matches.
expect_messages() {
    local what=$1 queue=$2 expected=$3 attempt actual=""
    for attempt in $(seq 1 100); do
        actual=$(queue_column "$queue" messages)
        [ "$actual" = "$expected" ] && return 0
        sleep 0.1
    done
    fail "$what: expected $expected messages in $queue, got '$actual'"
}

case_declare_then_list_queues() {
    local queue
    queue=$(unique_name admin-declare)
    expect_eq "declare output" "queue declared" "$(admin declare queue name="$queue" durable=false)"
    expect_messages "a new queue" "$queue" 0
    rows list queues name durable auto_delete | grep -qxF "$queue	False	False" ||
        fail "list queues does not show $queue as declared: $(rows list queues name durable auto_delete)"
    admin delete queue name="$queue" >/dev/null
}

case_publish_then_get() {
    local queue
    queue=$(unique_name admin-get)
    admin declare queue name="$queue" durable=false >/dev/null
    expect_eq "publish output" "Message published" \
        "$(admin publish routing_key="$queue" payload='hello from rabbitmqadmin')"
    expect_messages "after publish" "$queue" 1
    # The default ack mode requeues; the message is still there afterwards.
    admin get queue="$queue" >peek
    grep -q 'hello from rabbitmqadmin' peek || fail "get printed: $(cat peek)"
    expect_messages "after a requeueing get" "$queue" 1
    rows get queue="$queue" ackmode=ack_requeue_false >taken
    grep -q 'hello from rabbitmqadmin' taken || fail "get printed: $(cat taken)"
    expect_messages "after an acking get" "$queue" 0
    admin delete queue name="$queue" >/dev/null
}

case_publish_from_stdin_reaches_amqp_get() {
    [ -n "${MQBRIDGE_AMQP_URL:-}" ] || fail "MQBRIDGE_AMQP_URL is not set"
    local queue
    queue=$(unique_name admin-stdin)
    admin declare queue name="$queue" durable=false >/dev/null
    printf 'line one\nline two\n' | admin publish routing_key="$queue" >/dev/null
    timeout "$command_timeout_seconds" amqp-get -u "$MQBRIDGE_AMQP_URL" -q "$queue" >body
    expect_eq "body read over AMQP" "$(printf 'line one\nline two\n')" "$(cat body)"
    admin delete queue name="$queue" >/dev/null
}

case_list_exchanges_has_the_built_ins() {
    local listed
    listed=$(rows list exchanges name type)
    for expected in "amq.direct	direct" "amq.fanout	fanout" "amq.topic	topic" \
        "amq.headers	headers" "amq.match	headers"; do
        grep -qxF "$expected" <<<"$listed" || fail "no '$expected' in: $listed"
    done
}

case_exchange_binding_and_routing() {
    local exchange queue
    exchange=$(unique_name admin-x)
    queue=$(unique_name admin-bound)
    admin declare exchange name="$exchange" type=topic durable=false >/dev/null
    admin declare queue name="$queue" durable=false >/dev/null
    expect_eq "binding output" "binding declared" \
        "$(admin declare binding source="$exchange" destination="$queue" routing_key='orders.*')"
    rows list bindings source destination routing_key | grep -qxF "$exchange	$queue	orders.*" ||
        fail "list bindings: $(rows list bindings source destination routing_key)"
    admin publish exchange="$exchange" routing_key=orders.new payload=routed >/dev/null
    admin publish exchange="$exchange" routing_key=invoices.new payload=dropped >/dev/null
    expect_messages "routed by the binding" "$queue" 1
    admin delete binding source="$exchange" destination_type=queue destination="$queue" \
        properties_key='orders.*' >/dev/null
    admin publish exchange="$exchange" routing_key=orders.new payload=unbound >/dev/null
    # A get that takes the one routed message proves the unbound publish did not arrive.
    rows get queue="$queue" ackmode=ack_requeue_false count=5 >taken
    expect_eq "messages taken" 1 "$(wc -l <taken)"
    grep -q routed taken || fail "get printed: $(cat taken)"
    admin delete queue name="$queue" >/dev/null
    admin delete exchange name="$exchange" >/dev/null
}

case_purge_and_delete_queue() {
    local queue
    queue=$(unique_name admin-delete)
    admin declare queue name="$queue" durable=false >/dev/null
    admin publish routing_key="$queue" payload=one >/dev/null
    admin publish routing_key="$queue" payload=two >/dev/null
    expect_eq "purge output" "queue purged" "$(admin purge queue name="$queue")"
    expect_messages "after purge" "$queue" 0
    expect_eq "delete output" "queue deleted" "$(admin delete queue name="$queue")"
    if rows list queues name | grep -qxF "$queue"; then
        fail "$queue is still listed after delete"
    fi
}

case_policy_limits_a_queue() {
    local queue policy
    queue=$(unique_name admin-policy)
    policy=$(unique_name cap)
    admin declare queue name="$queue" durable=false >/dev/null
    expect_eq "policy output" "policy declared" \
        "$(admin declare policy name="$policy" pattern="^$queue\$" apply-to=queues priority=1 \
            definition='{"max-length": 1}')"
    rows list policies name pattern apply-to priority | grep -qxF "$policy	^$queue\$	queues	1" ||
        fail "list policies: $(rows list policies name pattern apply-to priority)"
    for payload in one two three; do
        admin publish routing_key="$queue" payload="$payload" >/dev/null
    done
    expect_messages "capped by the policy" "$queue" 1
    expect_eq "queue's policy" "$policy" "$(queue_column "$queue" policy)"
    expect_eq "delete output" "policy deleted" "$(admin delete policy name="$policy")"
    admin delete queue name="$queue" >/dev/null
}

case_show_overview() {
    local version exchanges
    IFS=$'\t' read -r version exchanges < <(rows show overview rabbitmq_version object_totals.exchanges)
    [[ "$version" =~ ^[0-9]+\.[0-9]+ ]] || fail "rabbitmq_version '$version'"
    [ "${exchanges:-0}" -ge 6 ] || fail "object_totals.exchanges '$exchanges': the built-ins at least"
}

case_wrong_password_is_refused() {
    local status=0
    timeout "$command_timeout_seconds" python3 "$tool" -H "$host" -P "$port" \
        -u guest -p wrong list queues >out 2>&1 || status=$?
    [ "$status" -ne 0 ] || fail "rabbitmqadmin succeeded with a wrong password"
    grep -q 'Access refused' out || fail "unexpected output: $(cat out)"
}

case_run "declare queue, then list queues" case_declare_then_list_queues
case_run "publish, then get with both ack modes" case_publish_then_get
case_run "publish from stdin, read with amqp-get" case_publish_from_stdin_reaches_amqp_get
case_run "list exchanges has the built-ins" case_list_exchanges_has_the_built_ins
case_run "exchange, binding, routing, unbinding" case_exchange_binding_and_routing
case_run "purge queue, delete queue" case_purge_and_delete_queue
case_run "declare policy, it caps a queue, delete it" case_policy_limits_a_queue
case_run "show overview" case_show_overview
case_run "a wrong password is refused" case_wrong_password_is_refused
suite_end
