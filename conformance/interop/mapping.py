"""ARCHITECTURE.md's mapping table, as checks on what each client library delivered.

An `Expected` is the core message a publish should become (the table's "in" side, built by
the publishers in clients.py). Each `check_*` compares one receiver's delivery with it (the
"out" side) and returns every mismatch as a line, so a failing case shows all of them at once.

Properties are kept under their text names (`content-type`, `priority`, `amqp-message-id`,
...), the names that MQTT 5 user properties, STOMP headers and SQS attributes use. Values are
the core's: `expiration` in milliseconds, `priority` and `timestamp` as integers, `reply-to` in
the core's reply-address form (a queue name, `/topic/RK` or `/exchange/X/RK`).

MQTT and STOMP cannot carry U+0000 in a string (a NUL ends a STOMP frame, [MQTT-1.5.4-2]): the
table's text reaches them with U+FFFD in its place, which `nul_replaced` applies to what is
expected.
"""

import base64
import binascii
import json
import math
from dataclasses import dataclass, field

TEXT_NAMES = (  # Properties without an MQTT field: user properties under these names.
    "content-encoding", "priority", "amqp-message-id", "timestamp", "type", "app-id", "user-id",
)
PROPERTY_NAMES = ("content-type", "correlation-id", "reply-to", "expiration") + TEXT_NAMES
AMQP_ATTRIBUTES = {
    "content-type": "content_type", "content-encoding": "content_encoding",
    "correlation-id": "correlation_id", "reply-to": "reply_to", "expiration": "expiration",
    "priority": "priority", "amqp-message-id": "message_id", "timestamp": "timestamp",
    "type": "type", "app-id": "app_id", "user-id": "user_id",
}
# Set by the MQTT adapter on the way in and never sent out to MQTT clients (the table's row
# "header x-mqtt-client-id, x-mqtt-username: set in; not sent out").
MQTT_ONLY_IN = ("x-mqtt-client-id", "x-mqtt-username")
# Headers MQTT 5 carries in a field of its own rather than as a user property.
MQTT_FIELDS = ("x-mqtt-payload-format", "x-correlation-id")
# The user_id row's MQTT 5 "out": not sent (MQTT subscribers are not told who published).
MQTT_NOT_SENT = ("user-id",)
SQS_ATTRIBUTES_MAX = 10  # AWS's limit; the table says further attributes are not delivered.
SQS_ACCOUNT_ID = "000000000000"
# How much a Message Expiry Interval may have counted down between publish and delivery.
EXPIRY_SLACK_SECONDS = 5


class Near:
    """An integer known only roughly (a time stamped by the broker): equal within `slack`.

    Also equal to the same number written as decimal text, for the places where the table
    leaves open whether a timestamp inside a JSON text form is a number or a string."""

    def __init__(self, value, slack):
        self.value, self.slack = value, slack

    def __eq__(self, other):
        if isinstance(other, str) and other.isdigit():
            other = int(other)
        if isinstance(other, bool) or not isinstance(other, int):
            return False
        return abs(other - self.value) <= self.slack

    def scaled(self, factor):
        return Near(self.value * factor, self.slack * factor)

    def __repr__(self):
        return f"{self.value}±{self.slack}"


class AnyText:
    """Some text the table does not fix (a value the receiving queue decides)."""

    def __eq__(self, other):
        return isinstance(other, str)

    def __repr__(self):
        return "<any text>"


def text_form(value):
    """The text form of a property value (timestamps roughly known stay Near)."""
    return value if isinstance(value, (str, Near)) else str(value)


def nul_replaced(value):
    """Text as MQTT and STOMP carry it: U+0000 as U+FFFD."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


@dataclass(frozen=True)
class Header:
    """An expected header: its AMQP value (as pika decodes it), its text form, the SQS data
    types it may arrive as (empty: none, SQS has no non-empty value for it), and, for an
    array of strings from MQTT, the repeated user property values it stands for."""

    amqp: object
    text: object
    sqs_types: tuple = ("String", "Number")
    as_json: bool = False
    repeated: tuple = None

    def amqp_matches(self, got):
        # Bytes go out as a long string with the same bytes (protocols/amqp/src/translate.rs),
        # which pika gives as str when they are UTF-8.
        if isinstance(self.amqp, bytes) and isinstance(got, str):
            return got.encode("utf-8") == self.amqp
        return self.amqp == got

    def text_matches(self, got, nul_free=False):
        """`nul_free`: the receiver is MQTT or STOMP (JSON escapes U+0000, so only plain text
        changes)."""
        if not self.as_json:
            return got == (nul_replaced(self.text) if nul_free else self.text)
        try:
            return json.loads(got) == self.text
        except (TypeError, ValueError):
            return False

    def sqs_matches(self, attribute):
        data_type = attribute.get("DataType", "").split(".")[0]
        if data_type not in self.sqs_types:
            return False
        if data_type == "Binary":
            want = self.amqp.encode("utf-8") if isinstance(self.amqp, str) else self.amqp
            return attribute.get("BinaryValue") == want
        return self.text_matches(attribute.get("StringValue"))


def text_header(value):
    # Strings that are not SQS text reach SQS as Binary (the table's "other headers" row).
    return Header(value, value, ("String",) if is_sqs_text(value.encode()) else ("Binary",))


def integer_header(value):
    return Header(value, str(value), ("Number",))


def bytes_header(value):
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = base64.b64encode(value).decode("ascii")
    return Header(value, text, ("Binary",))


def json_header(amqp, parsed):
    """An array or table: JSON text wherever only text can go."""
    return Header(amqp, parsed, ("String",), as_json=True)


def strings_header(values):
    """Repeated MQTT 5 user properties: an array of strings."""
    return Header(list(values), list(values), ("String",), as_json=True, repeated=tuple(values))


def other_header(amqp, text):
    """Booleans, decimals, timestamps: their text form; the table names no SQS type for them."""
    return Header(amqp, text)


def void_header():
    return Header(None, "", ())


@dataclass
class Expected:
    """The core message one publish should have become. `unchecked` names properties the
    message has but the table leaves to the queue (SQS SendMessage's expiration is the
    queue's MessageRetentionPeriod)."""

    body: bytes
    persistent: bool
    properties: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    unchecked: frozenset = frozenset()

    def property(self, name):
        return self.properties.get(name)


def reply_for_mqtt(reply_to):
    """The reply-address table's MQTT 5 column."""
    if reply_to.startswith("/topic/"):
        return reply_to[len("/topic/"):].replace(".", "/")
    if reply_to.startswith("/exchange/"):
        return "$exchange/" + reply_to[len("/exchange/"):]
    return "$queue/" + reply_to


def reply_for_stomp(reply_to):
    """The reply-address table's STOMP column."""
    return reply_to if reply_to.startswith("/") else "/reply-queue/" + reply_to


def mismatch(problems, what, want, got):
    if not want == got:  # `want` first: a Near on the left decides.
        problems.append(f"{what}: want {want!r}, got {got!r}")


def check_amqp(expected, properties, body):
    problems = []
    mismatch(problems, "body", expected.body, body)
    mismatch(problems, "delivery-mode", 2 if expected.persistent else 1,
             properties.delivery_mode or 1)
    for name, attribute in AMQP_ATTRIBUTES.items():
        if name in expected.unchecked:
            continue
        want = expected.property(name)
        if name == "expiration" and want is not None:
            want = str(want)
        mismatch(problems, name, want, getattr(properties, attribute))
    got_headers = properties.headers or {}
    for name, header in expected.headers.items():
        if name not in got_headers:
            problems.append(f"header {name}: missing (want {header.amqp!r})")
        elif not header.amqp_matches(got_headers[name]):
            problems.append(f"header {name}: want {header.amqp!r}, got {got_headers[name]!r}")
    return problems


def check_mqtt(expected, message, topic, version5):
    """An MQTT 3.1.1 client gets topic, QoS and payload; an MQTT 5 client also the fields and
    user properties."""
    problems = []
    mismatch(problems, "payload", expected.body, message.payload)
    mismatch(problems, "topic", topic, message.topic)
    # The subscription is QoS 1: persistent messages come at QoS 1, others at QoS 0.
    mismatch(problems, "QoS", 1 if expected.persistent else 0, message.qos)
    if version5:
        problems += check_mqtt5_properties(expected, message.properties)
    return problems


def check_mqtt5_properties(expected, properties):
    problems = []
    field_of = lambda name: getattr(properties, name, None)  # noqa: E731 (absent is None)
    mismatch(problems, "Content Type", nul_replaced(expected.property("content-type")),
             field_of("ContentType"))
    correlation = expected.property("correlation-id")
    if correlation is not None:
        correlation = correlation.encode("utf-8")
    elif "x-correlation-id" in expected.headers:
        correlation = expected.headers["x-correlation-id"].amqp
    mismatch(problems, "Correlation Data", correlation, field_of("CorrelationData"))
    reply_to = expected.property("reply-to")
    mismatch(problems, "Response Topic", reply_to and nul_replaced(reply_for_mqtt(reply_to)),
             field_of("ResponseTopic"))
    expiration = expected.property("expiration")
    interval = field_of("MessageExpiryInterval")
    if "expiration" in expected.unchecked:
        pass
    elif expiration is None:
        mismatch(problems, "Message Expiry Interval", None, interval)
    else:
        # Rounded up, less the time the message waited [MQTT-3.3.2-6].
        ceiling = math.ceil(expiration / 1000)
        if interval is None or not ceiling - EXPIRY_SLACK_SECONDS <= interval <= ceiling:
            problems.append(f"Message Expiry Interval: want about {ceiling}, got {interval!r}")
    payload_format = expected.headers.get("x-mqtt-payload-format")
    got_format = field_of("PayloadFormatIndicator")
    if payload_format is None or payload_format.amqp == 0:
        # 0 is what an absent indicator means [MQTT-3.3.2.3.2].
        got_format = got_format or None
        payload_format = None
    mismatch(problems, "Payload Format Indicator",
             payload_format and payload_format.amqp, got_format)
    got = {}
    for name, value in field_of("UserProperty") or []:
        got.setdefault(name, []).append(value)
    for name in TEXT_NAMES:
        if name in expected.unchecked:
            continue
        value = None if name in MQTT_NOT_SENT else expected.property(name)
        want = None if value is None else [nul_replaced(text_form(value))]
        mismatch(problems, f"user property {name}", want, got.get(name))
    for name, header in expected.headers.items():
        if name in MQTT_FIELDS:
            continue
        if name in MQTT_ONLY_IN:
            mismatch(problems, f"user property {name} (not sent out)", None, got.get(name))
            continue
        values = got.get(name)
        if header.repeated is not None:
            mismatch(problems, f"user property {name}",
                     [nul_replaced(value) for value in header.repeated], values)
        elif (values is None or len(values) != 1
              or not header.text_matches(values[0], nul_free=True)):
            want = nul_replaced(header.text)
            problems.append(f"user property {name}: want [{want!r}], got {values!r}")
    return problems


def check_stomp(expected, headers, body):
    problems = []
    mismatch(problems, "body", expected.body, body)
    persistent = headers.get("persistent")
    if expected.persistent:
        mismatch(problems, "persistent", "true", persistent)
    elif persistent not in (None, "false"):
        problems.append(f"persistent: want absent or 'false', got {persistent!r}")
    for name in PROPERTY_NAMES:
        if name in expected.unchecked:
            continue
        want = expected.property(name)
        if want is not None:
            want = reply_for_stomp(want) if name == "reply-to" else text_form(want)
        mismatch(problems, f"header {name}", nul_replaced(want), headers.get(name))
    for name, header in expected.headers.items():
        got = headers.get(name)
        if got is None or not header.text_matches(got, nul_free=True):
            problems.append(f"header {name}: want {nul_replaced(header.text)!r}, got {got!r}")
    return problems


def sqs_property_attributes(expected):
    """The attributes of the table's property rows, by name, as Headers. (No `expiration`:
    SQS has no per-message expiry, the table's expiration row says "not shown".)"""
    wanted = {}
    for name in ("content-type", "correlation-id", "reply-to", "content-encoding", "type",
                 "app-id"):
        value = expected.property(name)
        if value is not None:
            wanted[name] = text_header(value)
    priority = expected.property("priority")
    if priority is not None:
        wanted["priority"] = integer_header(priority)
    return wanted


def check_sqs(expected, message, received_at):
    """Body, attributes and the system attributes of the message_id, timestamp and user_id
    rows. AWS's limit of ten attributes sits in the table's "other headers" row: every
    property's attribute must come, headers may be held back only once ten are delivered.
    `received_at` (a Near, seconds) is the SentTimestamp of a message without a timestamp."""
    problems = []
    attributes = message.get("MessageAttributes", {})
    system = message.get("Attributes", {})
    body = message["Body"].encode("utf-8")
    encoding = attributes.get("content-transfer-encoding", {}).get("StringValue")
    if encoding == "base64":
        try:
            body = base64.b64decode(message["Body"], validate=True)
        except binascii.Error:
            problems.append(f"body: not base64 as its attribute says: {message['Body']!r}")
    mismatch(problems, "body", expected.body, body)
    mismatch(problems, "attribute content-transfer-encoding",
             None if is_sqs_text(expected.body) else "base64", encoding)
    properties = sqs_property_attributes(expected)
    headers = {name: header for name, header in expected.headers.items() if header.sqs_types}
    # Three text names have system attributes of their own in the table; an attribute of the
    # same name is tolerated if it is right.
    tolerated = {name: other_header(None, text_form(expected.property(name)))
                 for name in ("amqp-message-id", "timestamp", "user-id")
                 if expected.property(name) is not None}
    for name, attribute in attributes.items():
        # Headers this table does not name (the broker's own) may come too, as any header.
        header = properties.get(name) or headers.get(name) or tolerated.get(name)
        if header is not None and not header.sqs_matches(attribute):
            problems.append(f"attribute {name}: want {header.text!r} as one of "
                            f"{header.sqs_types}, got {attribute!r}")
    if "expiration" in attributes:
        problems.append(f"attribute expiration: want none, got {attributes['expiration']!r}")
    missing = sorted(set(properties) - set(attributes))
    if missing:
        problems.append(f"attributes missing: {missing} (got {sorted(attributes)})")
    missing = sorted(set(headers) - set(attributes))
    if missing and len(attributes) < SQS_ATTRIBUTES_MAX:
        problems.append(f"header attributes missing with {len(attributes)} of "
                        f"{SQS_ATTRIBUTES_MAX} delivered: {missing} (got {sorted(attributes)})")
    message_id = expected.property("amqp-message-id")
    if message_id is not None:
        mismatch(problems, "MessageId", message_id, message.get("MessageId"))
    timestamp = expected.property("timestamp")
    if timestamp is None:
        timestamp = received_at
    sent = system.get("SentTimestamp")
    want = timestamp.scaled(1000) if isinstance(timestamp, Near) else timestamp * 1000
    mismatch(problems, "SentTimestamp", want, sent and int(sent))
    mismatch(problems, "SenderId", expected.property("user-id") or SQS_ACCOUNT_ID,
             system.get("SenderId"))
    return problems


def is_sqs_text(body):
    """AWS's allowed message characters (the broker's `is_valid_text`)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c in "\t\n\r" or "\x20" <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd"
               or c >= "\U00010000" for c in text)


def dead_lettered(expected, queue, now):
    """The message as it leaves `queue` (message TTL 0) for its dead-letter exchange:
    RabbitMQ's `x-death` history and summary headers added, the per-message expiration moved
    into the history."""
    properties = dict(expected.properties)
    expiration = properties.pop("expiration", None)
    death = {"count": 1, "reason": "expired", "queue": queue, "time": now, "exchange": "",
             "routing-keys": [queue]}
    if "expiration" in expected.unchecked:
        death["original-expiration"] = AnyText()
    elif expiration is not None:
        death["original-expiration"] = str(expiration)
    headers = dict(expected.headers)
    headers["x-death"] = json_header(None, [death])
    for end in ("first", "last"):
        headers[f"x-{end}-death-reason"] = text_header("expired")
        headers[f"x-{end}-death-queue"] = text_header(queue)
        headers[f"x-{end}-death-exchange"] = text_header("")
    return Expected(expected.body, expected.persistent, properties, headers,
                    expected.unchecked - {"expiration"})
