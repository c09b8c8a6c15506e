"""Amazon SNS conformance through boto3 (the Query protocol, which botocore speaks for SNS),
with SQS queues as subscribers (boto3's sqs client), and one raw JSON-protocol round trip
(`X-Amz-Target: SNS_20100331.<Action>`) through urllib.

AWS's documented behaviour is the reference: the Notification envelope an SQS subscriber gets,
raw delivery, filter policies, FIFO ordering and deduplication, and AWS's error codes (boto3
raises ClientError with them). Every case uses its own topic and queues and bounds every wait.
Needs MQBRIDGE_SNS_URL (conformance/run sets it; the SQS API is at MQBRIDGE_SQS_URL, by default
the same endpoint).
"""

import base64
import json
import os
import re
import time
import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ.get("MQBRIDGE_SNS_URL", "http://127.0.0.1:9324")
SQS_ENDPOINT = os.environ.get("MQBRIDGE_SQS_URL", ENDPOINT)
REQUEST_TIMEOUT_SECONDS = 30
DELIVERY_TIMEOUT_SECONDS = 10  # From Publish to the message in the subscribed queue.


def client(service, endpoint):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, read_timeout=REQUEST_TIMEOUT_SECONDS),
    )


@pytest.fixture(scope="module")
def sns():
    return client("sns", ENDPOINT)


@pytest.fixture(scope="module")
def sqs():
    return client("sqs", SQS_ENDPOINT)


def unique(prefix):
    return f"conf-{prefix}-{uuid.uuid4().hex[:12]}"


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def new_queue(sqs, prefix, fifo=False):
    """A fresh SQS queue: (url, arn)."""
    if fifo:
        url = sqs.create_queue(
            QueueName=unique(prefix) + ".fifo", Attributes={"FifoQueue": "true"}
        )["QueueUrl"]
    else:
        url = sqs.create_queue(QueueName=unique(prefix))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def subscribed_queue(sns, sqs, topic_arn, prefix, fifo=False, **attributes):
    """A fresh queue subscribed to the topic: (url, subscription ARN)."""
    url, arn = new_queue(sqs, prefix, fifo)
    subscription = sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    assert subscription.startswith(topic_arn + ":")
    return url, subscription


def receive(sqs, url, count, seconds=DELIVERY_TIMEOUT_SECONDS):
    """Receives (and deletes) messages until `count` arrived; fails after `seconds`."""
    messages = []
    deadline = time.monotonic() + seconds
    while len(messages) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(messages)} of {count} messages arrived within {seconds}s"
        answer = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, count - len(messages)),
            WaitTimeSeconds=max(1, min(5, int(left))),
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        for message in answer.get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            messages.append(message)
    return messages


def assert_empty(sqs, url):
    answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert [m["Body"] for m in answer.get("Messages", [])] == []


def test_create_list_get_set_delete_topic(sns):
    name = unique("topic")
    arn = sns.create_topic(Name=name, Attributes={"DisplayName": "first"})["TopicArn"]
    assert arn == f"arn:aws:sns:us-east-1:000000000000:{name}"
    # Creating it again with the same attributes is answered with the same ARN.
    assert sns.create_topic(Name=name, Attributes={"DisplayName": "first"})["TopicArn"] == arn
    listed = []
    for page in sns.get_paginator("list_topics").paginate(PaginationConfig={"MaxItems": 10_000}):
        listed += [t["TopicArn"] for t in page["Topics"]]
    assert arn in listed
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["TopicArn"] == arn
    assert attributes["Owner"] == "000000000000"
    assert attributes["DisplayName"] == "first"
    assert attributes["SubscriptionsConfirmed"] == "0"
    assert attributes["SubscriptionsPending"] == "0"
    assert json.loads(attributes["Policy"])["Statement"][0]["Resource"] == arn
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="second")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "second"
    with pytest.raises(ClientError) as excinfo:
        sns.create_topic(Name=name, Attributes={"DisplayName": "other"})
    assert error_code(excinfo) == "InvalidParameter"
    sns.delete_topic(TopicArn=arn)
    with pytest.raises(ClientError) as excinfo:
        sns.get_topic_attributes(TopicArn=arn)
    assert error_code(excinfo) == "NotFound"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # Deleting a topic that is gone succeeds, as on AWS.
    sns.delete_topic(TopicArn=arn)


def test_topic_tags(sns):
    arn = sns.create_topic(Name=unique("tags"), Tags=[{"Key": "team", "Value": "core"}])[
        "TopicArn"
    ]
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "team", "Value": "core"}
    ]
    sns.tag_resource(
        ResourceArn=arn, Tags=[{"Key": "env", "Value": "ci"}, {"Key": "team", "Value": "edge"}]
    )
    tags = sns.list_tags_for_resource(ResourceArn=arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "ci"), ("team", "edge")]
    sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "ci"}]
    with pytest.raises(ClientError) as excinfo:
        sns.list_tags_for_resource(ResourceArn=arn + "-absent")
    assert error_code(excinfo) == "ResourceNotFound"
    sns.delete_topic(TopicArn=arn)


def test_publish_to_a_queue_delivers_the_json_envelope(sns, sqs):
    topic = sns.create_topic(Name=unique("envelope"))["TopicArn"]
    url, subscription = subscribed_queue(sns, sqs, topic, "envelope")
    text = "h\u00e9llo <xml> & \"quotes\"\nline two"
    published = sns.publish(
        TopicArn=topic,
        Message=text,
        Subject="Greeting",
        MessageAttributes={
            "color": {"DataType": "String", "StringValue": "red"},
            "size": {"DataType": "Number", "StringValue": "42"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
    )
    [message] = receive(sqs, url, 1)
    envelope = json.loads(message["Body"])
    assert envelope["Type"] == "Notification"
    assert envelope["MessageId"] == published["MessageId"]
    assert envelope["TopicArn"] == topic
    assert envelope["Subject"] == "Greeting"
    assert envelope["Message"] == text
    assert envelope["MessageAttributes"] == {
        "color": {"Type": "String", "Value": "red"},
        "size": {"Type": "Number", "Value": "42"},
        "blob": {"Type": "Binary", "Value": base64.b64encode(b"\x00\xff").decode()},
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", envelope["Timestamp"])
    assert envelope["SignatureVersion"] == "1"
    assert len(base64.b64decode(envelope["Signature"])) >= 128
    assert envelope["UnsubscribeURL"].endswith(
        "Action=Unsubscribe&SubscriptionArn=" + subscription.replace(":", "%3A")
    )
    # The certificate that signs the envelope is served where SigningCertURL says.
    with urllib.request.urlopen(envelope["SigningCertURL"], timeout=REQUEST_TIMEOUT_SECONDS) as r:
        assert r.read().startswith(b"-----BEGIN CERTIFICATE-----")
    # The envelope is the body: the SQS message carries no message attributes of its own.
    assert "MessageAttributes" not in message
    assert_empty(sqs, url)
    sns.delete_topic(TopicArn=topic)


def test_raw_message_delivery_keeps_the_body_and_attributes(sns, sqs):
    topic = sns.create_topic(Name=unique("raw"))["TopicArn"]
    url, subscription = subscribed_queue(sns, sqs, topic, "raw", RawMessageDelivery="true")
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]
    assert attributes["RawMessageDelivery"] == "true"
    assert attributes["PendingConfirmation"] == "false"
    assert attributes["Protocol"] == "sqs"
    published = sns.publish(
        TopicArn=topic,
        Message='{"not": "wrapped"}',
        Subject="ignored when raw",
        MessageAttributes={
            "color": {"DataType": "String", "StringValue": "blue"},
            "n": {"DataType": "Number", "StringValue": "1.5"},
        },
    )
    [message] = receive(sqs, url, 1)
    assert message["Body"] == '{"not": "wrapped"}'
    assert message["MessageAttributes"] == {
        "color": {"DataType": "String", "StringValue": "blue"},
        "n": {"DataType": "Number", "StringValue": "1.5"},
    }
    assert message["MessageId"] == published["MessageId"]
    # Switched back to the envelope, the next message is wrapped.
    sns.set_subscription_attributes(
        SubscriptionArn=subscription, AttributeName="RawMessageDelivery", AttributeValue="false"
    )
    sns.publish(TopicArn=topic, Message="wrapped now")
    [message] = receive(sqs, url, 1)
    assert json.loads(message["Body"])["Message"] == "wrapped now"
    sns.delete_topic(TopicArn=topic)


def test_filter_policy_on_message_attributes(sns, sqs):
    topic = sns.create_topic(Name=unique("filter"))["TopicArn"]
    policy = {"color": ["red", {"prefix": "gre"}], "size": [{"numeric": [">", 10]}]}
    url, subscription = subscribed_queue(
        sns, sqs, topic, "filter", FilterPolicy=json.dumps(policy), RawMessageDelivery="true"
    )
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]
    assert json.loads(attributes["FilterPolicy"]) == policy
    assert attributes["FilterPolicyScope"] == "MessageAttributes"

    def publish(body, color=None, size=None):
        message_attributes = {}
        if color is not None:
            message_attributes["color"] = {"DataType": "String", "StringValue": color}
        if size is not None:
            message_attributes["size"] = {"DataType": "Number", "StringValue": str(size)}
        sns.publish(TopicArn=topic, Message=body, MessageAttributes=message_attributes)

    publish("no attributes")
    publish("blue is not listed", color="blue", size=50)
    publish("too small", color="red", size=5)
    publish("no size", color="red")
    publish("red match", color="red", size=11)
    publish("prefix match", color="green", size=100)
    # One delivery task per subscription, in publish order: once the last matching message is
    # in, every earlier message has been filtered.
    assert [m["Body"] for m in receive(sqs, url, 2)] == ["red match", "prefix match"]
    assert_empty(sqs, url)
    sns.delete_topic(TopicArn=topic)


def test_filter_policy_on_the_message_body_with_a_nested_key(sns, sqs):
    topic = sns.create_topic(Name=unique("bodyfilter"))["TopicArn"]
    policy = {"order": {"status": ["shipped"], "total": [{"numeric": [">=", 100]}]}}
    url, subscription = subscribed_queue(
        sns,
        sqs,
        topic,
        "bodyfilter",
        FilterPolicyScope="MessageBody",
        FilterPolicy=json.dumps(policy),
    )
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]
    assert attributes["FilterPolicyScope"] == "MessageBody"
    bodies = [
        "plain text is not a JSON object",
        json.dumps({"status": "shipped", "total": 500}),  # Not under "order".
        json.dumps({"order": {"status": "pending", "total": 500}}),
        json.dumps({"order": {"status": "shipped", "total": 99}}),
        json.dumps({"order": {"status": "shipped", "total": 100, "id": 1}}),
        json.dumps({"order": {"status": ["new", "shipped"], "total": 250.5, "id": 2}}),
    ]
    for body in bodies:
        # Attributes do not matter in body scope.
        sns.publish(
            TopicArn=topic,
            Message=body,
            MessageAttributes={"status": {"DataType": "String", "StringValue": "shipped"}},
        )
    delivered = [json.loads(m["Body"])["Message"] for m in receive(sqs, url, 2)]
    assert [json.loads(body)["order"]["id"] for body in delivered] == [1, 2]
    assert_empty(sqs, url)
    sns.delete_topic(TopicArn=topic)


def test_publish_batch(sns, sqs):
    topic = sns.create_topic(Name=unique("batch"))["TopicArn"]
    url, _ = subscribed_queue(sns, sqs, topic, "batch", RawMessageDelivery="true")
    entries = [
        {
            "Id": f"entry-{i}",
            "Message": f"body {i}",
            "MessageAttributes": {"i": {"DataType": "Number", "StringValue": str(i)}},
        }
        for i in range(10)
    ]
    answer = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)
    assert answer["Failed"] == []
    assert [e["Id"] for e in answer["Successful"]] == [f"entry-{i}" for i in range(10)]
    message_ids = {e["Id"]: e["MessageId"] for e in answer["Successful"]}
    assert len(set(message_ids.values())) == 10
    messages = receive(sqs, url, 10)
    assert sorted(m["Body"] for m in messages) == sorted(f"body {i}" for i in range(10))
    for message in messages:
        i = message["MessageAttributes"]["i"]["StringValue"]
        assert message["Body"] == f"body {i}"
        assert message["MessageId"] == message_ids[f"entry-{i}"]
    assert_empty(sqs, url)
    sns.delete_topic(TopicArn=topic)


def test_fifo_topic_to_a_fifo_queue_keeps_order_and_deduplicates(sns, sqs):
    topic = sns.create_topic(Name=unique("order") + ".fifo", Attributes={"FifoTopic": "true"})[
        "TopicArn"
    ]
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["FifoTopic"] == "true"
    url, _ = subscribed_queue(sns, sqs, topic, "order", fifo=True)
    published = [
        sns.publish(
            TopicArn=topic,
            Message=f"step {i}",
            MessageGroupId="g",
            MessageDeduplicationId=f"d{i}",
        )
        for i in range(5)
    ]
    sequences = [int(p["SequenceNumber"]) for p in published]
    assert sequences == sorted(sequences) and len(set(sequences)) == 5
    # The same deduplication id within five minutes: the first publish's answer, no delivery.
    again = sns.publish(
        TopicArn=topic, Message="step 0 again", MessageGroupId="g", MessageDeduplicationId="d0"
    )
    assert again["MessageId"] == published[0]["MessageId"]
    assert again["SequenceNumber"] == published[0]["SequenceNumber"]
    messages = receive(sqs, url, 5)
    envelopes = [json.loads(m["Body"]) for m in messages]
    assert [e["Message"] for e in envelopes] == [f"step {i}" for i in range(5)]
    assert [e["MessageId"] for e in envelopes] == [p["MessageId"] for p in published]
    assert [e["SequenceNumber"] for e in envelopes] == [p["SequenceNumber"] for p in published]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"g"}
    assert_empty(sqs, url)

    with pytest.raises(ClientError) as excinfo:
        sns.publish(TopicArn=topic, Message="no group", MessageDeduplicationId="x")
    assert error_code(excinfo) == "InvalidParameter"
    sns.delete_topic(TopicArn=topic)


def test_errors_have_aws_codes(sns, sqs):
    missing = f"arn:aws:sns:us-east-1:000000000000:{unique('absent')}"
    with pytest.raises(ClientError) as excinfo:
        sns.get_topic_attributes(TopicArn=missing)
    assert error_code(excinfo) == "NotFound"
    with pytest.raises(ClientError) as excinfo:
        sns.publish(TopicArn=missing, Message="nobody")
    assert error_code(excinfo) == "NotFound"

    topic = sns.create_topic(Name=unique("errors"))["TopicArn"]
    url, subscription = subscribed_queue(sns, sqs, topic, "errors", RawMessageDelivery="true")
    with pytest.raises(ClientError) as excinfo:
        sns.publish(TopicArn=topic, Message="x" * 300 * 1024)
    assert error_code(excinfo) == "InvalidParameter"
    with pytest.raises(ClientError) as excinfo:
        sns.publish(TopicArn=topic, Message="")
    assert error_code(excinfo) == "InvalidParameter"

    _, queue_arn = new_queue(sqs, "errors-filter")
    for policy in ['{"color": ["red"', '{"color": "red"}', '{"size": [{"numeric": [">", "x"]}]}']:
        with pytest.raises(ClientError) as excinfo:
            sns.subscribe(
                TopicArn=topic,
                Protocol="sqs",
                Endpoint=queue_arn,
                Attributes={"FilterPolicy": policy},
            )
        assert error_code(excinfo) == "InvalidParameter", policy
        with pytest.raises(ClientError) as excinfo:
            sns.set_subscription_attributes(
                SubscriptionArn=subscription, AttributeName="FilterPolicy", AttributeValue=policy
            )
        assert error_code(excinfo) == "InvalidParameter", policy
    # The refused subscribe made nothing, and the refused change left the subscription as it was.
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in subscriptions] == [subscription]
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]
    assert "FilterPolicy" not in attributes

    with pytest.raises(ClientError) as excinfo:
        sns.publish_batch(
            TopicArn=topic,
            PublishBatchRequestEntries=[
                {"Id": "same", "Message": "one"},
                {"Id": "same", "Message": "two"},
            ],
        )
    assert error_code(excinfo) == "BatchEntryIdsNotDistinct"
    with pytest.raises(ClientError) as excinfo:
        sns.publish_batch(
            TopicArn=topic,
            PublishBatchRequestEntries=[{"Id": f"e{i}", "Message": "m"} for i in range(11)],
        )
    assert error_code(excinfo) == "TooManyEntriesInBatchRequest"
    with pytest.raises(ClientError) as excinfo:
        sns.subscribe(TopicArn=topic, Protocol="carrier-pigeon", Endpoint="loft")
    assert error_code(excinfo) == "InvalidParameter"
    # Nothing refused was published.
    assert_empty(sqs, url)
    sns.delete_topic(TopicArn=topic)


def test_list_subscriptions_by_topic_and_unsubscribe(sns, sqs):
    topic = sns.create_topic(Name=unique("subs"))["TopicArn"]
    other = sns.create_topic(Name=unique("subs-other"))["TopicArn"]
    first_url, first = subscribed_queue(sns, sqs, topic, "subs-a", RawMessageDelivery="true")
    second_url, second = subscribed_queue(sns, sqs, topic, "subs-b", RawMessageDelivery="true")
    subscribed_queue(sns, sqs, other, "subs-other")
    first_arn = sqs.get_queue_attributes(QueueUrl=first_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    # Subscribing the same endpoint again is answered with the same subscription.
    assert (
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=first_arn)["SubscriptionArn"]
        == first
    )
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted(s["SubscriptionArn"] for s in listed) == sorted([first, second])
    for item in listed:
        assert item["TopicArn"] == topic
        assert item["Protocol"] == "sqs"
        assert item["Owner"] == "000000000000"
        assert item["Endpoint"].startswith("arn:aws:sqs:us-east-1:000000000000:conf-subs-")
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsConfirmed"] == "2"
    everything = []
    for page in sns.get_paginator("list_subscriptions").paginate(
        PaginationConfig={"MaxItems": 10_000}
    ):
        everything += [s["SubscriptionArn"] for s in page["Subscriptions"]]
    assert {first, second} <= set(everything)

    sns.publish(TopicArn=topic, Message="to both")
    assert [m["Body"] for m in receive(sqs, first_url, 1)] == ["to both"]
    assert [m["Body"] for m in receive(sqs, second_url, 1)] == ["to both"]

    sns.unsubscribe(SubscriptionArn=first)
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in listed] == [second]
    with pytest.raises(ClientError) as excinfo:
        sns.get_subscription_attributes(SubscriptionArn=first)
    assert error_code(excinfo) == "NotFound"
    with pytest.raises(ClientError) as excinfo:
        sns.unsubscribe(SubscriptionArn=first)
    assert error_code(excinfo) == "NotFound"
    sns.publish(TopicArn=topic, Message="only the second")
    assert [m["Body"] for m in receive(sqs, second_url, 1)] == ["only the second"]
    assert_empty(sqs, first_url)

    # Deleting the topic ends its subscriptions.
    sns.delete_topic(TopicArn=topic)
    everything = sns.list_subscriptions()["Subscriptions"]
    assert second not in [s["SubscriptionArn"] for s in everything]
    sns.delete_topic(TopicArn=other)


def json_request(action, body):
    """One JSON-protocol request; returns (status, headers, parsed body)."""
    request = urllib.request.Request(
        ENDPOINT,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"SNS_20100331.{action}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def test_json_protocol_round_trip(sqs):
    name = unique("json")
    status, _, answer = json_request(
        "CreateTopic", {"Name": name, "Tags": [{"Key": "k", "Value": "v"}]}
    )
    assert status == 200
    topic = answer["TopicArn"]
    assert topic == f"arn:aws:sns:us-east-1:000000000000:{name}"
    _, queue_arn = new_queue(sqs, "json")
    url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"]
    status, _, answer = json_request(
        "Subscribe",
        {
            "TopicArn": topic,
            "Protocol": "sqs",
            "Endpoint": queue_arn,
            "Attributes": {"RawMessageDelivery": "true"},
        },
    )
    assert status == 200
    assert answer["SubscriptionArn"].startswith(topic + ":")
    status, _, answer = json_request(
        "Publish",
        {
            "TopicArn": topic,
            "Message": "over JSON",
            "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}},
        },
    )
    assert status == 200
    [message] = receive(sqs, url, 1)
    assert message["Body"] == "over JSON"
    assert message["MessageId"] == answer["MessageId"]
    assert message["MessageAttributes"] == {"k": {"DataType": "String", "StringValue": "v"}}
    status, _, answer = json_request("ListTagsForResource", {"ResourceArn": topic})
    assert answer == {"Tags": [{"Key": "k", "Value": "v"}]}

    status, headers, answer = json_request("GetTopicAttributes", {"TopicArn": topic + "-absent"})
    assert status == 404
    assert answer["__type"].endswith("NotFoundException")
    assert headers["x-amzn-query-error"] == "NotFound;Sender"
    status, _, _ = json_request("DeleteTopic", {"TopicArn": topic})
    assert status == 200
