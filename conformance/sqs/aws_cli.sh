#!/usr/bin/env bash
# Amazon SQS through the aws CLI (v1, from PyPI as awscli, installed in the conformance venv):
# the habit `aws --endpoint-url http://localhost:9324 sqs ...` must work unmodified.
# Needs MQBRIDGE_SQS_URL; run it through conformance/run.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

readonly endpoint=${MQBRIDGE_SQS_URL:?set MQBRIDGE_SQS_URL (conformance/run does)}
readonly command_timeout_seconds=30
aws_bin="$(dirname "${CONFORMANCE_PYTHON:-python3}")/aws"
[ -x "$aws_bin" ] || aws_bin=aws
readonly aws_bin
# Any key is accepted from loopback in dev mode; the CLI insists on having one.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
export AWS_PAGER='' AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

sqs() { timeout "$command_timeout_seconds" "$aws_bin" --endpoint-url "$endpoint" --output text sqs "$@"; }

# SQS names allow letters, digits, - and _ only.
queue_name() { echo "conf-$1-$$-$RANDOM$RANDOM"; }

case_create_send_receive_delete() {
    local name url handle
    name=$(queue_name cli)
    url=$(sqs create-queue --queue-name "$name" --query QueueUrl)
    [[ "$url" == */000000000000/"$name" ]] || fail "unexpected queue URL $url"
    sqs send-message --queue-url "$url" --message-body 'hello from the aws cli' >/dev/null
    # A zero visibility timeout leaves the message visible for the next receive.
    expect_eq "body" 'hello from the aws cli' \
        "$(sqs receive-message --queue-url "$url" --visibility-timeout 0 --query 'Messages[0].Body')"
    handle=$(sqs receive-message --queue-url "$url" --wait-time-seconds 5 --query 'Messages[0].ReceiptHandle')
    [ -n "$handle" ] && [ "$handle" != None ] || fail "no message to delete"
    sqs delete-message --queue-url "$url" --receipt-handle "$handle"
    expect_eq "after delete" None "$(sqs receive-message --queue-url "$url" --query 'Messages[0].Body')"
    sqs delete-queue --queue-url "$url"
}

case_list_and_attributes() {
    local name url
    name=$(queue_name attrs)
    url=$(sqs create-queue --queue-name "$name" --attributes VisibilityTimeout=77 --query QueueUrl)
    expect_eq "listed" "$url" "$(sqs list-queues --queue-name-prefix "$name" --query 'QueueUrls[0]')"
    expect_eq "VisibilityTimeout" 77 \
        "$(sqs get-queue-attributes --queue-url "$url" --attribute-names All \
            --query 'Attributes.VisibilityTimeout')"
    sqs delete-queue --queue-url "$url"
}

case_missing_queue_fails() {
    local status=0
    sqs get-queue-url --queue-name "$(queue_name absent)" 2>err || status=$?
    [ "$status" -ne 0 ] || fail "get-queue-url of a missing queue succeeded"
    grep -q 'NonExistentQueue\|QueueDoesNotExist' err || fail "unexpected error: $(cat err)"
}

case_fifo_queue() {
    local name url first second
    name="$(queue_name fifo).fifo"
    url=$(sqs create-queue --queue-name "$name" --attributes FifoQueue=true --query QueueUrl)
    first=$(sqs send-message --queue-url "$url" --message-body one --message-group-id g \
        --message-deduplication-id d1 --query SequenceNumber)
    second=$(sqs send-message --queue-url "$url" --message-body one-again --message-group-id g \
        --message-deduplication-id d1 --query SequenceNumber)
    expect_eq "duplicate's sequence number" "$first" "$second"
    sqs send-message --queue-url "$url" --message-body two --message-group-id g \
        --message-deduplication-id d2 >/dev/null
    expect_eq "group order" "one	two" \
        "$(sqs receive-message --queue-url "$url" --max-number-of-messages 10 \
            --query 'Messages[].Body')"
    sqs delete-queue --queue-url "$url"
}

case_run "aws sqs create/send/receive/delete" case_create_send_receive_delete
case_run "aws sqs FIFO queue: order and deduplication" case_fifo_queue
case_run "aws sqs list-queues and get-queue-attributes" case_list_and_attributes
case_run "aws sqs get-queue-url of a missing queue fails" case_missing_queue_fails
suite_end
