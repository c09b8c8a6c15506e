#!/usr/bin/env bash
# Amazon SNS through the aws CLI (v1, from PyPI as awscli, installed in the conformance venv):
# the habit `aws --endpoint-url http://localhost:9324 sns ...` must work unmodified, with
# `aws sqs` on the same endpoint for the subscribed queues.
# Needs MQBRIDGE_SNS_URL (and MQBRIDGE_SQS_URL, by default the same); run it through
# conformance/run.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

readonly endpoint=${MQBRIDGE_SNS_URL:?set MQBRIDGE_SNS_URL (conformance/run does)}
readonly sqs_endpoint=${MQBRIDGE_SQS_URL:-$endpoint}
readonly command_timeout_seconds=30
python_bin=${CONFORMANCE_PYTHON:-python3}
aws_bin="$(dirname "$python_bin")/aws"
[ -x "$aws_bin" ] || aws_bin=aws
readonly aws_bin python_bin
# Any key is accepted from loopback in dev mode; the CLI insists on having one.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
export AWS_PAGER='' AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

sns() {
    timeout "$command_timeout_seconds" "$aws_bin" --endpoint-url "$endpoint" --output text sns "$@"
}
sqs() {
    timeout "$command_timeout_seconds" "$aws_bin" --endpoint-url "$sqs_endpoint" --output text \
        sqs "$@"
}

# Topic and queue names allow letters, digits, - and _ only.
resource_name() { echo "conf-$1-$$-$RANDOM$RANDOM"; }

# The field $2 of the JSON document $1: a string as it is, anything else as sorted JSON.
json_field() {
    "$python_bin" -c '
import json, sys
value = json.loads(sys.argv[1])[sys.argv[2]]
print(value if isinstance(value, str) else json.dumps(value, sort_keys=True))' "$1" "$2"
}

case_topic_lifecycle() {
    local name arn
    name=$(resource_name topic)
    arn=$(sns create-topic --name "$name" --query TopicArn)
    expect_eq "topic ARN" "arn:aws:sns:us-east-1:000000000000:$name" "$arn"
    sns list-topics --query 'Topics[].TopicArn' | tr '\t' '\n' | grep -qxF "$arn" ||
        fail "list-topics does not list $arn"
    sns set-topic-attributes --topic-arn "$arn" --attribute-name DisplayName \
        --attribute-value 'From the CLI'
    expect_eq "DisplayName" 'From the CLI' \
        "$(sns get-topic-attributes --topic-arn "$arn" --query Attributes.DisplayName)"
    sns delete-topic --topic-arn "$arn"
    if sns list-topics --query 'Topics[].TopicArn' | tr '\t' '\n' | grep -qxF "$arn"; then
        fail "list-topics still lists $arn after delete-topic"
    fi
}

case_subscribe_queue_publish_receive() {
    local topic_name topic queue_url queue_arn subscription message_id body
    topic_name=$(resource_name pubsub)
    topic=$(sns create-topic --name "$topic_name" --query TopicArn)
    queue_url=$(sqs create-queue --queue-name "$(resource_name pubsub-queue)" --query QueueUrl)
    queue_arn=$(sqs get-queue-attributes --queue-url "$queue_url" --attribute-names QueueArn \
        --query Attributes.QueueArn)
    subscription=$(sns subscribe --topic-arn "$topic" --protocol sqs \
        --notification-endpoint "$queue_arn" --query SubscriptionArn)
    [[ "$subscription" == "$topic":* ]] || fail "unexpected subscription ARN $subscription"
    expect_eq "subscribed endpoint" "$queue_arn" "$(sns list-subscriptions-by-topic \
        --topic-arn "$topic" --query 'Subscriptions[0].Endpoint')"
    message_id=$(sns publish --topic-arn "$topic" --subject 'CLI subject' \
        --message 'hello from the aws cli' \
        --message-attributes '{"kind": {"DataType": "String", "StringValue": "greeting"}}' \
        --query MessageId)
    [ -n "$message_id" ] && [ "$message_id" != None ] || fail "publish returned no MessageId"
    # The body is the JSON envelope (one line: its strings are JSON-escaped).
    body=$(sqs receive-message --queue-url "$queue_url" --wait-time-seconds 10 \
        --query 'Messages[0].Body')
    [ -n "$body" ] && [ "$body" != None ] ||
        fail "no message reached the subscribed queue within 10 s"
    expect_eq "Type" Notification "$(json_field "$body" Type)"
    expect_eq "Message" 'hello from the aws cli' "$(json_field "$body" Message)"
    expect_eq "Subject" 'CLI subject' "$(json_field "$body" Subject)"
    expect_eq "TopicArn" "$topic" "$(json_field "$body" TopicArn)"
    expect_eq "MessageId" "$message_id" "$(json_field "$body" MessageId)"
    expect_eq "MessageAttributes" '{"kind": {"Type": "String", "Value": "greeting"}}' \
        "$(json_field "$body" MessageAttributes)"
    sns unsubscribe --subscription-arn "$subscription"
    expect_eq "subscriptions after unsubscribe" "" "$(sns list-subscriptions-by-topic \
        --topic-arn "$topic" --query 'Subscriptions[].SubscriptionArn')"
    sns delete-topic --topic-arn "$topic"
    sqs delete-queue --queue-url "$queue_url"
}

case_missing_topic_fails() {
    local status=0
    sns get-topic-attributes \
        --topic-arn "arn:aws:sns:us-east-1:000000000000:$(resource_name absent)" 2>err || status=$?
    # The aws CLI v1 exits with 255 when the service answers with an error.
    expect_eq "exit status" 255 "$status"
    grep -q '(NotFound) when calling the GetTopicAttributes operation' err ||
        fail "unexpected error: $(cat err)"
}

case_publish_batch_duplicate_ids_fails() {
    local topic status=0
    topic=$(sns create-topic --name "$(resource_name batch)" --query TopicArn)
    sns publish-batch --topic-arn "$topic" --publish-batch-request-entries \
        Id=same,Message=one Id=same,Message=two 2>err || status=$?
    expect_eq "exit status" 255 "$status"
    grep -q '(BatchEntryIdsNotDistinct) when calling the PublishBatch operation' err ||
        fail "unexpected error: $(cat err)"
    sns delete-topic --topic-arn "$topic"
}

case_run "aws sns create-topic/list-topics/delete-topic" case_topic_lifecycle
case_run "aws sns subscribe an SQS queue, publish, aws sqs receive-message" \
    case_subscribe_queue_publish_receive
case_run "aws sns get-topic-attributes of a missing topic fails with NotFound" \
    case_missing_topic_fails
case_run "aws sns publish-batch with duplicate ids fails with BatchEntryIdsNotDistinct" \
    case_publish_batch_duplicate_ids_fails
suite_end
