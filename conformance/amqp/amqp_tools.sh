#!/usr/bin/env bash
# AMQP 0-9-1 through the rabbitmq-c command-line tools (Debian package amqp-tools):
# amqp-declare-queue, amqp-publish, amqp-get, amqp-consume, amqp-delete-queue.
# Needs MQBRIDGE_AMQP_URL; run it through conformance/run.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

readonly url=${MQBRIDGE_AMQP_URL:?set MQBRIDGE_AMQP_URL (conformance/run does)}
readonly command_timeout_seconds=10

declare_queue() { timeout "$command_timeout_seconds" amqp-declare-queue -u "$url" "$@"; }
publish() { timeout "$command_timeout_seconds" amqp-publish -u "$url" "$@"; }
get() { timeout "$command_timeout_seconds" amqp-get -u "$url" "$@"; }
consume() { timeout "$command_timeout_seconds" amqp-consume -u "$url" "$@"; }
delete_queue() { timeout "$command_timeout_seconds" amqp-delete-queue -u "$url" "$@"; }

case_declare_prints_queue_name() {
    local queue
    queue=$(unique_name declare)
    expect_eq "declared name" "$queue" "$(declare_queue -q "$queue")"
    delete_queue -q "$queue" >/dev/null
}

case_server_named_queue_is_usable() {
    local queue
    queue=$(declare_queue -q '')
    [ -n "$queue" ] || fail "empty server-generated queue name"
    publish -r "$queue" -b 'to a server-named queue'
    expect_eq "body" 'to a server-named queue' "$(get -q "$queue")"
    delete_queue -q "$queue" >/dev/null
}

case_publish_then_get_same_body() {
    local queue
    queue=$(unique_name get)
    declare_queue -q "$queue" >/dev/null
    publish -r "$queue" -b 'hello from amqp-publish'
    expect_eq "body" 'hello from amqp-publish' "$(get -q "$queue")"
    delete_queue -q "$queue" >/dev/null
}

case_get_on_empty_queue_exits_2() {
    local queue status=0
    queue=$(unique_name empty)
    declare_queue -q "$queue" >/dev/null
    get -q "$queue" >body || status=$?
    # amqp-get exits 2 when the server answers basic.get-empty.
    expect_eq "amqp-get exit status" 2 "$status"
    [ ! -s body ] || fail "amqp-get printed a body for an empty queue"
    delete_queue -q "$queue" >/dev/null
}

case_line_buffered_publish_consume_in_order() {
    local queue
    queue=$(unique_name lines)
    declare_queue -q "$queue" >/dev/null
    printf 'first\nsecond\nthird\n' | publish -r "$queue" -l
    # amqp-consume runs the command once per message with the body on stdin; -l keeps each
    # line's newline in its body.
    consume -q "$queue" -c 3 -- sh -c 'cat >>bodies; printf "|" >>bodies'
    expect_eq "bodies" "$(printf 'first\n|second\n|third\n|')" "$(cat bodies)"
    delete_queue -q "$queue" >/dev/null
}

case_large_binary_body_round_trip() {
    local queue
    queue=$(unique_name binary)
    declare_queue -q "$queue" >/dev/null
    # 300 KiB with NUL bytes: larger than the default frame_max (128 KiB), so the body is split
    # into several frames each way.
    head -c 307200 /dev/urandom >sent
    printf '\0\0end' >>sent
    publish -r "$queue" <sent
    consume -q "$queue" -c 1 -- sh -c 'cat >received'
    cmp sent received || fail "the received body differs from the sent one"
    delete_queue -q "$queue" >/dev/null
}

case_properties_reach_pika() {
    local queue
    queue=$(unique_name interop)
    declare_queue -q "$queue" >/dev/null
    publish -r "$queue" -p -C text/plain -E utf-8 -t reply.here -H 'x-colour: blue' \
        -H 'x-size: large' -b 'from amqp-publish'
    timeout "$command_timeout_seconds" "$CONFORMANCE_PYTHON" - "$url" "$queue" <<'EOF'
import sys
import pika

url, queue = sys.argv[1], sys.argv[2]
connection = pika.BlockingConnection(pika.URLParameters(url))
method, properties, body = connection.channel().basic_get(queue, auto_ack=True)
assert body == b"from amqp-publish", body
assert properties.delivery_mode == 2, properties
assert properties.content_type == "text/plain", properties
assert properties.content_encoding == "utf-8", properties
assert properties.reply_to == "reply.here", properties
assert properties.headers == {"x-colour": "blue", "x-size": "large"}, properties.headers
connection.close()
EOF
    delete_queue -q "$queue" >/dev/null
}

case_consume_binds_to_amq_topic() {
    local queue
    queue=$(unique_name topic)
    # amqp-consume declares the queue (auto-delete) and binds it to amq.topic itself.
    consume -q "$queue" -e amq.topic -r 'conf.*.sensor' -c 1 -- sh -c 'cat >received' &
    local consumer=$!
    # The binding exists only once amqp-consume has started: publish until it has received.
    # Each round publishes a non-matching key first; were it routed, it would arrive first.
    local attempt
    for attempt in $(seq 1 50); do
        publish -e amq.topic -r "conf.$queue.other" -b "other $attempt"
        publish -e amq.topic -r 'conf.kitchen.sensor' -b "reading $attempt"
        [ -s received ] && break
        sleep 0.1
    done
    wait "$consumer" || fail "amqp-consume failed"
    grep -q '^reading [0-9]*$' received || fail "unexpected body: $(cat received)"
}

case_delete_reports_message_count() {
    local queue
    queue=$(unique_name delete)
    declare_queue -q "$queue" >/dev/null
    publish -r "$queue" -b one
    publish -r "$queue" -b two
    expect_eq "message count in delete-ok" 2 "$(delete_queue -q "$queue")"
    local status=0
    get -q "$queue" >/dev/null 2>&1 || status=$?
    [ "$status" -ne 0 ] && [ "$status" -ne 2 ] || fail "the queue still exists after delete"
}

case_delete_if_empty_refuses_non_empty() {
    local queue
    queue=$(unique_name ifempty)
    declare_queue -q "$queue" >/dev/null
    publish -r "$queue" -b kept
    if delete_queue -q "$queue" -e >/dev/null 2>&1; then
        fail "delete --if-empty succeeded on a non-empty queue"
    fi
    expect_eq "body after the refused delete" kept "$(get -q "$queue")"
    delete_queue -q "$queue" >/dev/null
}

case_run "declare prints the queue name" case_declare_prints_queue_name
case_run "server-named queue is usable" case_server_named_queue_is_usable
case_run "publish then get returns the same body" case_publish_then_get_same_body
case_run "get on an empty queue exits 2" case_get_on_empty_queue_exits_2
case_run "line-buffered publish, consume in order" case_line_buffered_publish_consume_in_order
case_run "300 KiB binary body round trip" case_large_binary_body_round_trip
case_run "amqp-publish properties read by pika" case_properties_reach_pika
case_run "amqp-consume binds to amq.topic" case_consume_binds_to_amq_topic
case_run "delete reports the message count" case_delete_reports_message_count
case_run "delete --if-empty refuses a non-empty queue" case_delete_if_empty_refuses_non_empty
suite_end
