#!/usr/bin/env bash
# MQTT through the Mosquitto command-line clients (Debian package mosquitto-clients):
# mosquitto_pub and mosquitto_sub, MQTT 3.1, 3.1.1 and 5, and their interplay with AMQP 0-9-1
# clients on the amq.topic exchange (pika from conformance/.venv).
# Needs MQBRIDGE_MQTT_URL (and MQBRIDGE_AMQP_URL for the AMQP cases, which are skipped without
# it); run it through conformance/run.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

readonly url=${MQBRIDGE_MQTT_URL:?set MQBRIDGE_MQTT_URL (conformance/run does)}
readonly amqp_url=${MQBRIDGE_AMQP_URL:-}
readonly command_timeout_seconds=15 # Above mosquitto_sub's own -W 10.
host_port=${url#mqtt://}
host_port=${host_port%%/*}
readonly host=${host_port%:*} port=${host_port##*:}

pub() { timeout "$command_timeout_seconds" mosquitto_pub -h "$host" -p "$port" "$@"; }

# An MQTT topic level unique to this run (no '/', '.', '+' or '#').
unique_level() {
    echo "conf-$1-$$-$RANDOM$RANDOM"
}

# sub_start OUTPUT ARGS...: starts mosquitto_sub for one message (-C 1 -W 10) in the background,
# printing it as "message TOPIC QOS RETAIN PAYLOAD", and returns once its SUBACK has arrived, so
# that whatever is published next is routed to it. Sets sub_pid.
sub_start() {
    local output=$1
    shift
    # stdbuf: the debug lines go to stdout, which is block-buffered when it is a file.
    timeout "$command_timeout_seconds" stdbuf -oL mosquitto_sub -h "$host" -p "$port" -d \
        -C 1 -W 10 -F 'message %t %q %r %p' "$@" >"$output" 2>&1 &
    sub_pid=$!
    local deadline=$((SECONDS + 10))
    until grep -q 'received SUBACK' "$output"; do
        kill -0 "$sub_pid" 2>/dev/null || fail "mosquitto_sub exited early: $(cat "$output")"
        [ "$SECONDS" -lt "$deadline" ] || fail "no SUBACK within 10s: $(cat "$output")"
        sleep 0.05
    done
}

# sub_wait OUTPUT: waits for the mosquitto_sub of sub_start; sets received to its message line.
sub_wait() {
    wait "$sub_pid" || fail "mosquitto_sub failed (status $?): $(cat "$1")"
    received=$(grep '^message ' "$1") || fail "mosquitto_sub printed no message: $(cat "$1")"
}

round_trip() {
    local version=$1 qos=$2 topic
    topic="$(unique_level trip)/sensor/temp"
    sub_start sub.out -V "$version" -q "$qos" -t "${topic%%/*}/+/temp"
    pub -V "$version" -q "$qos" -t "${topic%%/*}/sensor/humidity" -m 'not for you'
    pub -V "$version" -q "$qos" -t "$topic" -m "hello qos $qos"
    sub_wait sub.out
    expect_eq "received" "message $topic $qos 0 hello qos $qos" "$received"
}

case_qos0_v311() { round_trip mqttv311 0; }
case_qos1_v311() { round_trip mqttv311 1; }
case_qos0_v5() { round_trip 5 0; }
case_qos1_v5() { round_trip 5 1; }

case_v31() {
    local topic
    topic="$(unique_level v31)/old"
    sub_start sub.out -V mqttv31 -q 1 -t "${topic%%/*}/#"
    pub -V mqttv31 -q 1 -t "$topic" -m 'MQIsdp'
    sub_wait sub.out
    expect_eq "received" "message $topic 1 0 MQIsdp" "$received"
}

case_retained_for_later_subscriber() {
    local topic
    topic="$(unique_level retained)/status"
    pub -q 1 -r -t "$topic" -m 'online'
    sub_start sub.out -q 1 -t "$topic"
    sub_wait sub.out
    expect_eq "retained" "message $topic 1 1 online" "$received"
    # -n sends an empty message: with -r it deletes the retained one.
    pub -q 1 -r -n -t "$topic"
    sub_start after.out -q 1 -t "$topic"
    pub -q 1 -t "$topic" -m 'marker'
    sub_wait after.out
    expect_eq "first message after the clear" "message $topic 1 0 marker" "$received"
}

case_wrong_password_refused() {
    local status=0
    pub -u guest -P wrong -t "$(unique_level password)" -m 'refused' >out 2>&1 || status=$?
    [ "$status" -ne 0 ] || fail "mosquitto_pub with a wrong password succeeded: $(cat out)"
    [ "$status" -ne 124 ] || fail "mosquitto_pub with a wrong password hung: $(cat out)"
    grep -qi 'refused' out || fail "no refusal in mosquitto_pub's output: $(cat out)"
}

case_guest_credentials() {
    local topic
    topic="$(unique_level guest)/t"
    sub_start sub.out -u guest -P guest -q 1 -t "$topic"
    pub -u guest -P guest -q 1 -t "$topic" -m 'as guest'
    sub_wait sub.out
    expect_eq "received" "message $topic 1 0 as guest" "$received"
}

# The topic a/b is the routing key a.b on amq.topic.
case_mosquitto_pub_to_amqp_consumer() {
    local level
    level=$(unique_level toamqp)
    timeout "$command_timeout_seconds" "$CONFORMANCE_PYTHON" - "$amqp_url" "$level" <<'EOF' &
import sys
import pika

url, level = sys.argv[1], sys.argv[2]
parameters = pika.URLParameters(url)
parameters.socket_timeout = 5
connection = pika.BlockingConnection(parameters)
channel = connection.channel()
queue = channel.queue_declare("", exclusive=True).method.queue
channel.queue_bind(queue, "amq.topic", routing_key=f"{level}.*.b")
open("ready", "w").close()
for method, properties, body in channel.consume(queue, auto_ack=True, inactivity_timeout=10):
    assert method is not None, "no message within 10s"
    assert method.exchange == "amq.topic", method
    assert method.routing_key == f"{level}.a.b", method.routing_key
    assert body == b"from mosquitto_pub", body
    break
connection.close()
EOF
    local consumer=$! deadline=$((SECONDS + 10))
    until [ -e ready ]; do
        kill -0 "$consumer" 2>/dev/null || fail "the AMQP consumer exited before binding"
        [ "$SECONDS" -lt "$deadline" ] || fail "the AMQP consumer did not bind within 10s"
        sleep 0.05
    done
    pub -q 1 -t "$level/x/c" -m 'not for you'
    pub -q 1 -t "$level/a/b" -m 'from mosquitto_pub'
    wait "$consumer" || fail "the AMQP consumer did not get the message"
}

case_amqp_publish_to_mosquitto_sub() {
    local level
    level=$(unique_level fromamqp)
    sub_start sub.out -q 1 -t "$level/a/b"
    timeout "$command_timeout_seconds" "$CONFORMANCE_PYTHON" - "$amqp_url" "$level" <<'EOF'
import sys
import pika

url, level = sys.argv[1], sys.argv[2]
parameters = pika.URLParameters(url)
parameters.socket_timeout = 5
connection = pika.BlockingConnection(parameters)
channel = connection.channel()
channel.confirm_delivery()
channel.basic_publish("amq.topic", f"{level}.a.c", b"not for you")
channel.basic_publish("amq.topic", f"{level}.a.b", b"from pika")
connection.close()
EOF
    sub_wait sub.out
    # The QoS of a message from AMQP is the broker's choice (0 or 1): compare the rest.
    [[ "$received" =~ ^message\ $level/a/b\ [01]\ 0\ from\ pika$ ]] ||
        fail "expected 'message $level/a/b 0|1 0 from pika', got '$received'"
}

# amqp_case NAME FUNCTION: runs the case only when an AMQP listener is there to talk to.
amqp_case() {
    if [ -n "$amqp_url" ]; then
        case_run "$1" "$2"
    else
        echo "SKIPPED $1 (MQBRIDGE_AMQP_URL is not set)"
        echo "skip $1" >>"${CONFORMANCE_RESULTS:-/dev/null}"
    fi
}

case_run "QoS 0 round trip, MQTT 3.1.1" case_qos0_v311
case_run "QoS 1 round trip, MQTT 3.1.1" case_qos1_v311
case_run "QoS 0 round trip, MQTT 5" case_qos0_v5
case_run "QoS 1 round trip, MQTT 5" case_qos1_v5
case_run "MQTT 3.1 (-V mqttv31) round trip" case_v31
case_run "retained message for a later subscriber, then cleared" case_retained_for_later_subscriber
case_run "wrong password refused" case_wrong_password_refused
case_run "guest/guest round trip" case_guest_credentials
amqp_case "mosquitto_pub reaches an AMQP consumer on amq.topic" case_mosquitto_pub_to_amqp_consumer
amqp_case "AMQP publish to amq.topic reaches mosquitto_sub" case_amqp_publish_to_mosquitto_sub
suite_end
