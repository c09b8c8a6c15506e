"""Amazon SQS conformance through boto3 (AWS JSON 1.0, the protocol current botocore speaks)
and raw Query-protocol requests (form in, XML out) through urllib.

AWS's documented behaviour is the reference: boto3 verifies MD5OfMessageBody and
MD5OfMessageAttributes itself, and raises ClientError with AWS's error codes. Every case uses its
own queue and bounds every wait. Needs MQBRIDGE_SQS_URL (conformance/run sets it).
"""

import hashlib
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ElementTree

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ.get("MQBRIDGE_SQS_URL", "http://127.0.0.1:9324")
NAMESPACE = {"sqs": "http://queue.amazonaws.com/doc/2012-11-05/"}
REQUEST_TIMEOUT_SECONDS = 30  # Above the longest long poll (20 s).


@pytest.fixture(scope="module")
def sqs():
    return boto3.client(
        "sqs",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, read_timeout=REQUEST_TIMEOUT_SECONDS),
    )


def unique(prefix):
    return f"conf-{prefix}-{uuid.uuid4().hex[:12]}"


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_create_get_list_delete_queue(sqs):
    name = unique("life")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert url.endswith(f"/000000000000/{name}")
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    listed = sqs.list_queues(QueueNamePrefix=name)["QueueUrls"]
    assert listed == [url]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(ClientError) as excinfo:
        sqs.get_queue_url(QueueName=name)
    assert error_code(excinfo) in ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")


def test_queue_attributes_and_tags(sqs):
    url = sqs.create_queue(
        QueueName=unique("attrs"), Attributes={"VisibilityTimeout": "45"}, tags={"team": "core"}
    )["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "45"
    assert attributes["QueueArn"].startswith("arn:aws:sqs:us-east-1:000000000000:conf-attrs-")
    assert attributes["ApproximateNumberOfMessages"] == "0"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "600"})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])
    assert got["Attributes"] == {"MessageRetentionPeriod": "600"}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "ci"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "ci"}
    with pytest.raises(ClientError) as excinfo:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "-1"})
    assert error_code(excinfo) == "InvalidAttributeValue"


def test_send_receive_delete_with_attributes(sqs):
    url = sqs.create_queue(QueueName=unique("msg"))["QueueUrl"]
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody="h\u00e9llo <xml> & \r\n",
        MessageAttributes={
            "s": {"DataType": "String", "StringValue": "v"},
            "n": {"DataType": "Number.float", "StringValue": "1.50"},
            "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
    )
    assert "MD5OfMessageAttributes" in sent
    answer = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )
    [message] = answer["Messages"]
    assert message["Body"] == "h\u00e9llo <xml> & \r\n"
    assert message["MessageId"] == sent["MessageId"]
    assert message["MessageAttributes"]["n"] == {"DataType": "Number.float", "StringValue": "1.50"}
    assert message["MessageAttributes"]["b"]["BinaryValue"] == b"\x00\xff"
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_batches(sqs):
    url = sqs.create_queue(QueueName=unique("batch"))["QueueUrl"]
    entries = [{"Id": f"e{i}", "MessageBody": f"body {i}"} for i in range(10)]
    sent = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert len(sent["Successful"]) == 10
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 10
    changed = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[{"Id": "c0", "ReceiptHandle": messages[0]["ReceiptHandle"], "VisibilityTimeout": 60}],
    )
    assert [e["Id"] for e in changed["Successful"]] == ["c0"]
    deletes = [{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
    deletes[-1] = {"Id": "bad", "ReceiptHandle": "bogus"}
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=deletes)
    assert len(deleted["Successful"]) == 9
    assert deleted["Failed"][0]["Id"] == "bad"
    assert deleted["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}] * 2)
    assert error_code(excinfo) in (
        "BatchEntryIdsNotDistinct",
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    )


def test_visibility_timeout_and_stale_handles(sqs):
    url = sqs.create_queue(QueueName=unique("vis"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"][0]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    time.sleep(1.3)
    second = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["All"])
    [again] = second["Messages"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    with pytest.raises(ClientError) as excinfo:
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=5
        )
    assert error_code(excinfo) in ("MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])


def test_long_poll_returns_when_a_message_arrives(sqs):
    url = sqs.create_queue(QueueName=unique("poll"))["QueueUrl"]
    started = time.monotonic()
    empty = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert "Messages" not in empty
    assert time.monotonic() - started >= 0.9
    sqs.send_message(QueueUrl=url, MessageBody="now")
    started = time.monotonic()
    answer = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
    assert len(answer["Messages"]) == 1
    assert time.monotonic() - started < 5


def test_errors_have_aws_codes(sqs):
    url = sqs.create_queue(QueueName=unique("err"))["QueueUrl"]
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="bad \x01 char")
    assert error_code(excinfo) == "InvalidMessageContents"
    with pytest.raises(ClientError) as excinfo:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert error_code(excinfo) == "InvalidParameterValue"
    with pytest.raises(ClientError) as excinfo:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="nonsense")
    assert error_code(excinfo) == "ReceiptHandleIsInvalid"
    with pytest.raises(ClientError) as excinfo:
        sqs.create_queue(QueueName=url.rsplit("/", 1)[1], Attributes={"DelaySeconds": "5"})
    assert error_code(excinfo) in ("QueueAlreadyExists", "QueueNameExists")


def query(path, **params):
    """One Query-protocol request; returns (status, parsed XML root)."""
    body = urllib.parse.urlencode({**params, "Version": "2012-11-05"}).encode()
    request = urllib.request.Request(
        ENDPOINT.rstrip("/") + path,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return response.status, ElementTree.fromstring(response.read())
    except urllib.error.HTTPError as error:
        return error.code, ElementTree.fromstring(error.read())


def test_query_protocol_round_trip_in_xml():
    name = unique("query")
    status, root = query("/", Action="CreateQueue", QueueName=name)
    assert status == 200
    assert root.tag == "{http://queue.amazonaws.com/doc/2012-11-05/}CreateQueueResponse"
    url = root.find("sqs:CreateQueueResult/sqs:QueueUrl", NAMESPACE).text
    assert url.endswith(f"/000000000000/{name}")
    assert root.find("sqs:ResponseMetadata/sqs:RequestId", NAMESPACE).text
    path = urllib.parse.urlsplit(url).path
    status, root = query(path, Action="SendMessage", MessageBody="q & a")
    assert status == 200
    md5 = root.find("sqs:SendMessageResult/sqs:MD5OfMessageBody", NAMESPACE).text
    assert md5 == hashlib.md5(b"q & a").hexdigest()
    status, root = query(path, Action="ReceiveMessage", **{"AttributeName.1": "All"})
    assert status == 200
    message = root.find("sqs:ReceiveMessageResult/sqs:Message", NAMESPACE)
    assert message.find("sqs:Body", NAMESPACE).text == "q & a"
    names = [a.find("sqs:Name", NAMESPACE).text for a in message.findall("sqs:Attribute", NAMESPACE)]
    assert "SentTimestamp" in names


def test_query_protocol_errors_are_error_responses():
    status, root = query("/", Action="GetQueueUrl", QueueName=unique("absent"))
    assert status == 400
    assert root.tag == "{http://queue.amazonaws.com/doc/2012-11-05/}ErrorResponse"
    assert root.find("sqs:Error/sqs:Code", NAMESPACE).text == "AWS.SimpleQueueService.NonExistentQueue"
    assert root.find("sqs:Error/sqs:Type", NAMESPACE).text == "Sender"


def test_delay_seconds_hides_a_message_until_due(sqs):
    url = sqs.create_queue(QueueName=unique("delay"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    counts = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )
    assert counts["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    answer = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
    assert [m["Body"] for m in answer["Messages"]] == ["later"]


def test_fifo_queue_orders_groups_and_deduplicates(sqs):
    url = sqs.create_queue(
        QueueName=unique("order") + ".fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    sent = [
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)
        for body, group in [("a1", "a"), ("b1", "b"), ("a2", "a")]
    ]
    # Content-based deduplication: the same body again is answered as the first send was.
    again = sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="a")
    assert again["MessageId"] == sent[0]["MessageId"]
    assert again["SequenceNumber"] == sent[0]["SequenceNumber"]
    assert int(sent[2]["SequenceNumber"]) > int(sent[0]["SequenceNumber"])

    first = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=1, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert [m["Body"] for m in first] == ["a1"]
    assert first[0]["Attributes"]["MessageGroupId"] == "a"
    # Group a is in flight: the next receive gets only group b.
    second = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in second] == ["b1"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    third = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in third] == ["a2"]

    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="no group")
    assert error_code(excinfo) == "MissingParameter"


def wait_until(what, check, seconds=10):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"never became true: {what}"
        time.sleep(0.05)


def test_dead_letter_redrive_round_trip(sqs):
    dlq_name, source_name = unique("dlq"), unique("src")
    dlq = sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    policy = f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"1"}}'
    source = sqs.create_queue(QueueName=source_name, Attributes={"RedrivePolicy": policy})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=source, MessageBody="poison")

    def dead_lettered():
        # Received once with visibility 0, the next receive moves it to the dead-letter queue.
        sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)
        counts = sqs.get_queue_attributes(
            QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return counts["Attributes"]["ApproximateNumberOfMessages"] == "1"

    wait_until("the message is dead-lettered", dead_lettered)
    with pytest.raises(ClientError) as excinfo:
        sqs.start_message_move_task(SourceArn=dlq_arn.replace(dlq_name, source_name))
    assert error_code(excinfo) == "InvalidParameterValue"

    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert handle

    def completed():
        [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
        return task["Status"] == "COMPLETED" and task["ApproximateNumberOfMessagesMoved"] == 1

    wait_until("the move task completes", completed)
    with pytest.raises(ClientError) as excinfo:
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert error_code(excinfo) == "ResourceNotFoundException"
    back = sqs.receive_message(QueueUrl=source, WaitTimeSeconds=5)["Messages"]
    assert [m["Body"] for m in back] == ["poison"]
