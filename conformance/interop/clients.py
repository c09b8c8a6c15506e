"""One small publisher and one receiver per protocol, over real client libraries.

pika (AMQP 0-9-1), paho-mqtt (MQTT 3.1.1 and 5, over TCP and over WebSocket), stomp.py (STOMP
1.2 over TCP and over WebSocket) and boto3 (SQS, SNS). A `Case` holds one case's connections
and names and closes and deletes them at teardown. A `Route` is where one case's message
travels; a receiver subscribes to it before anything is published, then a publisher sends one
message with every property and header its protocol can set and returns the `Expected` core
message (the mapping table's "in" side). Every wait is bounded by WAIT_SECONDS.

Routes, by what the publisher can address:
- "topic": `amq.topic` with key `matrix.<token>` (MQTT topic `matrix/<token>`), for AMQP, MQTT
  and STOMP publishers.
- "queue": an SQS publisher can only send to a queue. AMQP, STOMP and SQS receivers read that
  queue. MQTT clients read only their session queue, so for them the queue has a message TTL
  of 0 and dead-letters into `amq.topic` with the MQTT subscriber's key: the message reaches
  MQTT dead-lettered, with `x-death` and without its expiration, as RabbitMQ does it.
- "sns": an SNS topic (a fanout exchange); SQS receivers subscribe with raw delivery, AMQP and
  STOMP receivers bind to the exchange, MQTT receivers subscribe to the topic's name after the
  exchange is bound to `amq.topic` (SNS routes with the topic's name as the key).
"""

import base64
import datetime
import decimal
import os
import queue
import time
import urllib.parse
import uuid
from dataclasses import dataclass

import boto3
import paho.mqtt.client as mqtt
import pika
import stomp
from botocore.config import Config
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from stomp.adapter.ws import WSStompConnection

import mapping
from mapping import Expected, Near

AMQP_URL = os.environ.get("MQBRIDGE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
MQTT_URL = urllib.parse.urlsplit(os.environ.get("MQBRIDGE_MQTT_URL", "mqtt://127.0.0.1:1883"))
STOMP_URL = urllib.parse.urlsplit(os.environ.get("MQBRIDGE_STOMP_URL", "stomp://127.0.0.1:61613"))
WS_URL = urllib.parse.urlsplit(os.environ.get("MQBRIDGE_WS_URL", "ws://127.0.0.1:15675"))
SQS_URL = os.environ.get("MQBRIDGE_SQS_URL", "http://127.0.0.1:9324")
SNS_URL = os.environ.get("MQBRIDGE_SNS_URL", SQS_URL)
USER = urllib.parse.urlsplit(AMQP_URL).username or "guest"
PASSWORD = urllib.parse.urlsplit(AMQP_URL).password or "guest"
# The MQTT and STOMP paths and subprotocols of the WebSocket listener (ARCHITECTURE.md).
MQTT_WS_PATH, STOMP_WS_PATH, STOMP_WS_SUBPROTOCOL = "/mqtt", "/ws", "v12.stomp"

WAIT_SECONDS = 5.0  # The longest any case waits for one expected event.
REQUEST_TIMEOUT_SECONDS = 10  # boto3's read timeout; above the longest SQS wait.
TIMESTAMP_SLACK_SECONDS = 10  # A broker-stamped time, against this machine's clock.
EXPIRATION_MS = 60_000  # Long enough never to expire during a case.

# Every byte value: NUL, bytes that are not UTF-8, and text characters.
BINARY_BODY = b"matrix body \x00" + bytes(range(256))
SNS_BODY = 'sns body ü € 😀 <&>"\' \t\n'
# UTF-8 bytes holding U+0000: text for MQTT and STOMP, where U+0000 becomes U+FFFD.
SQS_BYTES = "sqs \x00 bytes ü".encode()


def unique(prefix):
    return f"conf-{prefix}-{uuid.uuid4().hex[:12]}"


def now_near():
    return Near(int(time.time()), TIMESTAMP_SLACK_SECONDS)


def take(events, what):
    """The next event from a client's queue, or a failure naming what did not come."""
    try:
        return events.get(timeout=WAIT_SECONDS)
    except queue.Empty:
        raise AssertionError(f"no {what} within {WAIT_SECONDS}s") from None


def aws_client(service, endpoint):
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, read_timeout=REQUEST_TIMEOUT_SECONDS),
    )


def amqp_connect():
    parameters = pika.URLParameters(AMQP_URL)
    parameters.socket_timeout = WAIT_SECONDS
    parameters.blocked_connection_timeout = WAIT_SECONDS
    parameters.connection_attempts = 1
    parameters.stack_timeout = WAIT_SECONDS
    return pika.BlockingConnection(parameters)


@dataclass
class Route:
    source: str  # "topic", "queue" or "sns", see the module's doc.
    token: str
    key: str = ""
    mqtt_topic: str = ""
    queue: str = ""
    sns_topic: str = ""
    sns_arn: str = ""


class Case:
    """One case's admin AMQP channel, clients and names; all closed or deleted at teardown."""

    def __init__(self, sqs, sns):
        self.sqs, self.sns = sqs, sns
        self.token = uuid.uuid4().hex[:12]
        self.admin = amqp_connect()
        self.channel = self.admin.channel()
        self.queues, self.topics, self.closers = [], [], []

    def route(self, source):
        route = Route(source, self.token, key=f"matrix.{self.token}",
                      mqtt_topic=f"matrix/{self.token}", queue=f"conf-matrix-{self.token}")
        self.queues.append(route.queue)
        if source == "sns":
            route.sns_topic = f"conf-matrix-{self.token}"
            route.sns_arn = self.sns.create_topic(Name=route.sns_topic)["TopicArn"]
            self.topics.append(route.sns_arn)
        return route

    def on_close(self, closer):
        self.closers.append(closer)

    def close(self):
        errors = []
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception as error:  # noqa: BLE001 (every closer runs; the first is raised)
                errors.append(error)
        for arn in self.topics:
            self.sns.delete_topic(TopicArn=arn)
        if self.admin.is_open:
            self.admin.close()
        # A fresh connection: a failed case may have had the admin channel closed under it.
        cleanup = amqp_connect()
        channel = cleanup.channel()
        for name in self.queues:
            channel.queue_delete(name)
        cleanup.close()
        if errors:
            raise errors[0]


# ---- Receivers: subscribe in __init__, `check(expected)` waits and returns the mismatches. ----

class AmqpReceiver:
    def __init__(self, case, route):
        self.queue = route.queue
        if route.source == "queue":
            case.channel.queue_declare(route.queue, durable=True)
        else:
            case.channel.queue_declare(route.queue)
            exchange = route.sns_topic if route.source == "sns" else "amq.topic"
            case.channel.queue_bind(route.queue, exchange, route.key)
        self.connection = amqp_connect()
        case.on_close(self.connection.close)

    def receive(self):
        channel = self.connection.channel()
        for method, properties, body in channel.consume(
                self.queue, auto_ack=True, inactivity_timeout=WAIT_SECONDS):
            channel.cancel()
            assert method is not None, f"no message in {self.queue} within {WAIT_SECONDS}s"
            return properties, body

    def check(self, expected):
        return mapping.check_amqp(expected, *self.receive())


class MqttClient:
    """A connected paho client (as USER) running its loop in a thread; messages in a queue."""

    def __init__(self, case, version, websocket=False):
        self.version = version
        self.client_id = unique("mqtt")
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=version,
            transport="websockets" if websocket else "tcp", reconnect_on_failure=False)
        if websocket:
            self.client.ws_set_options(path=MQTT_WS_PATH)
        self.client.username_pw_set(USER, PASSWORD)
        self.messages, self.acks = queue.Queue(), queue.Queue()
        self.client.on_connect = lambda _c, _u, _f, code, _p: self.acks.put(code)
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: self.acks.put(codes[0])
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        url = WS_URL if websocket else MQTT_URL
        self.client.connect(url.hostname, url.port, keepalive=30)
        self.client.loop_start()
        case.on_close(self.close)
        code = take(self.acks, "CONNACK")
        assert not code.is_failure, f"CONNACK refused: {code}"

    def subscribe(self, topic):
        self.client.subscribe(topic, qos=1)
        code = take(self.acks, f"SUBACK for {topic}")
        assert code.value == 1, f"SUBACK for {topic}: {code}"

    def publish(self, topic, payload, qos, properties=None):
        info = self.client.publish(topic, payload, qos=qos, properties=properties)
        info.wait_for_publish(timeout=WAIT_SECONDS)
        assert info.is_published(), f"publish to {topic} not acknowledged"

    def receive(self):
        return take(self.messages, f"message for MQTT client {self.client_id}")

    def close(self):
        if self.client.is_connected():
            self.client.disconnect()
        self.client.loop_stop()


class MqttReceiver:
    def __init__(self, case, route, version, websocket=False):
        if route.source == "queue":
            case.channel.queue_declare(route.queue, durable=True, arguments={
                "x-message-ttl": 0, "x-dead-letter-exchange": "amq.topic",
                "x-dead-letter-routing-key": route.key})
            self.topic = route.mqtt_topic
        elif route.source == "sns":
            case.channel.exchange_bind("amq.topic", route.sns_topic, "")
            case.on_close(lambda: case.channel.exchange_unbind("amq.topic", route.sns_topic, ""))
            self.topic = route.sns_topic
        else:
            self.topic = route.mqtt_topic
        self.route = route
        self.version5 = version == mqtt.MQTTv5
        self.client = MqttClient(case, version, websocket)
        self.client.subscribe(self.topic)

    def check(self, expected):
        if self.route.source == "queue":
            expected = mapping.dead_lettered(expected, self.route.queue, now_near())
        return mapping.check_mqtt(expected, self.client.receive(), self.topic, self.version5)


class StompClient(stomp.ConnectionListener):
    """A stomp.py 1.2 connection as USER, over TCP or WebSocket; frames land in queues."""

    def __init__(self, case, websocket=False):
        if websocket:
            self.connection = WSStompConnection(
                [(WS_URL.hostname, WS_URL.port)], ws_path=STOMP_WS_PATH,
                header={"Sec-WebSocket-Protocol": STOMP_WS_SUBPROTOCOL},
                # Binary WebSocket messages: a text message must be UTF-8, a body need not be.
                binary_mode=True, auto_decode=False, vhost="/", timeout=WAIT_SECONDS,
                reconnect_attempts_max=1)
        else:
            self.connection = stomp.Connection12(
                [(STOMP_URL.hostname, STOMP_URL.port)], auto_decode=False, vhost="/",
                timeout=WAIT_SECONDS, reconnect_attempts_max=1)
        self.frames, self.receipts = queue.Queue(), queue.Queue()
        self.connection.set_listener("interop", self)
        self.connection.connect(USER, PASSWORD, wait=True)
        case.on_close(self.close)

    def on_message(self, frame):
        self.frames.put(frame)

    def on_receipt(self, frame):
        self.receipts.put(frame.headers.get("receipt-id"))

    def on_error(self, frame):
        self.frames.put(frame)

    def confirmed(self, send, **arguments):
        receipt = unique("receipt")
        headers = {**arguments.pop("headers", {}), "receipt": receipt}
        send(headers=headers, **arguments)
        assert take(self.receipts, f"STOMP RECEIPT {receipt}") == receipt

    def subscribe(self, destination):
        self.confirmed(self.connection.subscribe, destination=destination, id=unique("sub"),
                       ack="auto")

    def send(self, destination, body, headers):
        self.confirmed(self.connection.send, destination=destination, body=body,
                       headers=headers)

    def receive(self):
        frame = take(self.frames, "STOMP MESSAGE")
        assert frame.cmd == "MESSAGE", f"{frame.cmd} {frame.headers} {frame.body!r}"
        return frame

    def close(self):
        if self.connection.is_connected():
            self.connection.disconnect()


class StompReceiver:
    def __init__(self, case, route, websocket=False):
        self.client = StompClient(case, websocket)
        if route.source == "queue":
            destination = f"/queue/{route.queue}"
        elif route.source == "sns":
            destination = f"/exchange/{route.sns_topic}"
        else:
            destination = f"/topic/{route.key}"
        self.client.subscribe(destination)

    def check(self, expected):
        frame = self.client.receive()
        return mapping.check_stomp(expected, frame.headers, frame.body)


class SqsReceiver:
    def __init__(self, case, route):
        self.sqs = case.sqs
        self.url = case.sqs.create_queue(QueueName=route.queue)["QueueUrl"]
        if route.source == "topic":
            case.channel.queue_bind(route.queue, "amq.topic", route.key)
        elif route.source == "sns":
            arn = case.sqs.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            case.sns.subscribe(TopicArn=route.sns_arn, Protocol="sqs", Endpoint=arn,
                               Attributes={"RawMessageDelivery": "true"})

    def receive(self):
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=1, WaitTimeSeconds=int(WAIT_SECONDS),
            MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        assert messages, f"no SQS message within {WAIT_SECONDS}s"
        return messages[0]

    def check(self, expected):
        return mapping.check_sqs(expected, self.receive(), now_near())


# ---- Publishers: `publish(case, route, persistent)` sends and returns the Expected. ----

def publish_amqp(case, route, persistent):
    token = route.token
    headers = {
        "x-text": "amqp ü €", "x-int": 42, "x-long": -(2**40), "x-bool": True,
        "x-bytes": b"\x00\xff\x80amqp", "x-utf8-bytes": "plain ü".encode(),
        "x-decimal": decimal.Decimal("0.05"),
        "x-time": datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc),
        "x-array": ["a", 7, False, None],
        "x-table": {"k": "v", "n": 2, "raw": b"\x00\xff", "inner": {"t": True}},
        "x-void": None,
    }
    properties = {
        "content-type": "application/x-matrix-amqp", "content-encoding": "x-amqp-encoding",
        "correlation-id": f"corr-{token}", "reply-to": f"reply-{token}",
        "expiration": EXPIRATION_MS, "priority": 3, "amqp-message-id": f"amqp-msg-{token}",
        "timestamp": 1_700_000_000, "type": "amqp.kind", "app-id": "amqp-app", "user-id": USER,
    }
    channel = case.admin.channel()
    channel.confirm_delivery()
    channel.basic_publish("amq.topic", route.key, BINARY_BODY, pika.BasicProperties(
        delivery_mode=2 if persistent else 1, headers=headers,
        **{mapping.AMQP_ATTRIBUTES[name]: str(value) if name == "expiration" else value
           for name, value in properties.items()}), mandatory=True)
    channel.close()
    return Expected(BINARY_BODY, persistent, properties, {
        "x-text": mapping.text_header("amqp ü €"),
        "x-int": mapping.integer_header(42),
        "x-long": mapping.integer_header(-(2**40)),
        "x-bool": mapping.other_header(True, "true"),
        "x-bytes": mapping.bytes_header(b"\x00\xff\x80amqp"),
        "x-utf8-bytes": mapping.bytes_header("plain ü".encode()),
        "x-decimal": mapping.other_header(decimal.Decimal("0.05"), "0.05"),
        "x-time": mapping.other_header(headers["x-time"], "1700000000"),
        "x-array": mapping.json_header(headers["x-array"], ["a", 7, False, None]),
        "x-table": mapping.json_header(
            headers["x-table"], {"k": "v", "n": 2, "raw": "AP8=", "inner": {"t": True}}),
        "x-void": mapping.void_header(),
    })


def publish_mqtt(case, route, persistent, version, websocket=False):
    """MQTT 5 over WebSocket sends Correlation Data that is not UTF-8 (the table's
    `x-correlation-id` case); MQTT 5 over TCP sends UTF-8 Correlation Data. The user is the
    CONNECT username; there is a timestamp only as MQTT 5's `timestamp` user property (the
    broker stamps no time)."""
    token = route.token
    client = MqttClient(case, version, websocket)
    expected = Expected(BINARY_BODY, persistent, {"user-id": USER}, {
        "x-mqtt-client-id": mapping.text_header(client.client_id),
        "x-mqtt-username": mapping.text_header(USER),
    })
    properties = None
    if version == mqtt.MQTTv5:
        properties = Properties(PacketTypes.PUBLISH)
        properties.ContentType = "application/x-matrix-mqtt"
        correlation = (b"\xff\xfe" if websocket else b"") + f"corr-{token}".encode()
        properties.CorrelationData = correlation
        properties.ResponseTopic = f"matrix/reply/{token}"
        properties.MessageExpiryInterval = EXPIRATION_MS // 1000
        properties.PayloadFormatIndicator = 0  # Unspecified bytes.
        text_named = {"content-encoding": "x-mqtt-encoding", "priority": 5,
                      "amqp-message-id": f"mqtt-msg-{token}", "timestamp": 1_700_000_002,
                      "type": "mqtt.kind", "app-id": "mqtt-app"}
        # paho appends on every assignment to UserProperty: assign the whole list once.
        properties.UserProperty = [(name, str(value)) for name, value in text_named.items()] + [
            ("x-text", "mqtt ü €"), ("x-repeat", "first"), ("x-repeat", "second")]
        expected.properties.update(text_named, **{
            "content-type": properties.ContentType, "reply-to": f"/topic/matrix.reply.{token}",
            "expiration": EXPIRATION_MS})
        if websocket:
            expected.headers["x-correlation-id"] = mapping.bytes_header(correlation)
        else:
            expected.properties["correlation-id"] = correlation.decode()
        expected.headers.update({
            "x-mqtt-payload-format": mapping.integer_header(0),
            "x-text": mapping.text_header("mqtt ü €"),
            "x-repeat": mapping.strings_header(["first", "second"]),
        })
    client.publish(route.mqtt_topic, BINARY_BODY, 1 if persistent else 0, properties)
    return expected


def publish_stomp(case, route, persistent, websocket=False):
    """Over TCP the message id goes as `amqp-message-id` and `user-id` is sent; over WebSocket
    the id goes as SEND's `message-id` and the login alone names the user."""
    token = route.token
    client = StompClient(case, websocket)
    properties = {
        "content-type": "application/x-matrix-stomp", "correlation-id": f"corr-{token}",
        "reply-to": (f"/topic/matrix.reply.{token}" if websocket
                     else f"/exchange/amq.direct/reply-{token}"),
        "content-encoding": "x-stomp-encoding", "priority": 4,
        "amqp-message-id": f"stomp-msg-{token}", "expiration": EXPIRATION_MS,
        "timestamp": 1_700_000_001, "type": "stomp.kind", "app-id": "stomp-app",
        "user-id": USER,
    }
    headers = {name: str(value) for name, value in properties.items()}
    if websocket:
        headers["message-id"] = headers.pop("amqp-message-id")
        del headers["user-id"]
    user_headers = {"x-text": "stomp ü: colon", "x-number": "17"}
    if persistent:
        headers["persistent"] = "true"
    client.send(f"/topic/{route.key}", BINARY_BODY, {**headers, **user_headers})
    return Expected(BINARY_BODY, persistent, properties,
                    {name: mapping.text_header(value) for name, value in user_headers.items()})


def publish_sqs(case, route, persistent):
    """A binary body goes base64 with `content-transfer-encoding: base64` (ten attributes,
    AWS's most). SQS has no per-message expiry: the message takes the queue's retention as
    its expiration, which the table leaves to the queue. In dev mode nobody is known to
    have sent it. The Binary attribute is UTF-8 holding U+0000, which MQTT and STOMP show
    as U+FFFD."""
    assert persistent, "every SQS message is persistent"
    token = route.token
    url = case.sqs.get_queue_url(QueueName=route.queue)["QueueUrl"]
    properties = {
        "content-type": "application/x-matrix-sqs", "correlation-id": f"corr-{token}",
        "reply-to": f"reply-{token}", "content-encoding": "x-sqs-encoding", "priority": 6,
        "type": "sqs.kind", "app-id": "sqs-app",
    }
    attributes = {name: string_attribute(value) for name, value in properties.items()}
    attributes["priority"]["DataType"] = "Number"
    attributes["content-transfer-encoding"] = string_attribute("base64")
    attributes["x-text"] = string_attribute("sqs ü €")
    attributes["x-bytes"] = {"DataType": "Binary", "BinaryValue": SQS_BYTES}
    sent = case.sqs.send_message(QueueUrl=url, MessageAttributes=attributes,
                                 MessageBody=base64.b64encode(BINARY_BODY).decode("ascii"))
    properties.update({"amqp-message-id": sent["MessageId"], "timestamp": now_near()})
    return Expected(BINARY_BODY, True, properties, {
        "x-text": mapping.text_header("sqs ü €"),
        "x-bytes": mapping.bytes_header(SQS_BYTES),
    }, unchecked=frozenset({"expiration"}))


def publish_sns(case, route, persistent):
    """SNS carries text only; ten attributes, AWS's most for SQS delivery. The table gives
    SNS no publisher (user_id row: "-") and its expiration "as SQS", which a topic has no
    retention period for: not checked."""
    assert persistent, "every SNS message is persistent"
    token = route.token
    properties = {
        "content-type": "text/plain; charset=utf-8", "correlation-id": f"corr-{token}",
        "reply-to": f"/exchange/amq.direct/reply-{token}", "content-encoding": "x-sns-encoding",
        "priority": 7, "type": "sns.kind", "app-id": "sns-app",
    }
    attributes = {name: string_attribute(value) for name, value in properties.items()}
    attributes["priority"]["DataType"] = "Number"
    attributes["x-text"] = string_attribute("sns ü €")
    attributes["x-number"] = {"DataType": "Number", "StringValue": "3"}
    attributes["x-bytes"] = {"DataType": "Binary", "BinaryValue": b"\x00\xffsns"}
    published = case.sns.publish(TopicArn=route.sns_arn, Message=SNS_BODY,
                                 MessageAttributes=attributes)
    properties.update({"amqp-message-id": published["MessageId"], "timestamp": now_near()})
    return Expected(SNS_BODY.encode("utf-8"), True, properties, {
        "x-text": mapping.text_header("sns ü €"),
        "x-number": mapping.integer_header(3),
        "x-bytes": mapping.bytes_header(b"\x00\xffsns"),
    }, unchecked=frozenset({"expiration"}))


def string_attribute(value):
    return {"DataType": "String", "StringValue": str(value)}


V311, V5 = mqtt.MQTTv311, mqtt.MQTTv5

# name -> (publish function, the route source it needs, whether it can publish transient)
PUBLISHERS = {
    "amqp": (publish_amqp, "topic", True),
    "mqtt311": (lambda c, r, p: publish_mqtt(c, r, p, V311), "topic", True),
    "mqtt5": (lambda c, r, p: publish_mqtt(c, r, p, V5), "topic", True),
    "stomp": (publish_stomp, "topic", True),
    "mqtt_ws": (lambda c, r, p: publish_mqtt(c, r, p, V5, websocket=True), "topic", True),
    "stomp_ws": (lambda c, r, p: publish_stomp(c, r, p, websocket=True), "topic", True),
    "sqs": (publish_sqs, "queue", False),
    "sns": (publish_sns, "sns", False),
}

# name -> (receiver factory, whether it shows persistence)
RECEIVERS = {
    "amqp": (AmqpReceiver, True),
    "mqtt311": (lambda c, r: MqttReceiver(c, r, V311), True),
    "mqtt5": (lambda c, r: MqttReceiver(c, r, V5), True),
    "stomp": (StompReceiver, True),
    "mqtt_ws": (lambda c, r: MqttReceiver(c, r, V5, websocket=True), True),
    "stomp_ws": (lambda c, r: StompReceiver(c, r, websocket=True), True),
    "sqs": (SqsReceiver, False),
}
