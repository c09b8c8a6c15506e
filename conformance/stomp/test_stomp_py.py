"""STOMP 1.0, 1.1 and 1.2 conformance through stomp.py.

RabbitMQ's STOMP plugin is the reference: every case uses only what it documents (destinations,
ack modes, receipts, transactions, durable subscriptions, temp queues), connects to vhost "/"
as guest, uses its own queue and topic names and bounds every wait. Needs MQBRIDGE_STOMP_URL
(conformance/run sets it).
"""

import os
import queue
import sys
import time
import urllib.parse
import uuid

import pytest

# pytest's importlib mode imports this file as `stomp.test_stomp_py` and registers a
# placeholder `stomp` module for this folder first, which would hide the stomp.py client. Drop
# the placeholder so that `import stomp` finds the client.
if not hasattr(sys.modules.get("stomp"), "Connection12"):
    sys.modules.pop("stomp", None)
import stomp  # noqa: E402 (after the placeholder is gone)

STOMP_URL = urllib.parse.urlsplit(os.environ.get("MQBRIDGE_STOMP_URL", "stomp://127.0.0.1:61613"))
HOST, PORT = STOMP_URL.hostname or "127.0.0.1", STOMP_URL.port or 61613
WAIT_SECONDS = 5.0  # The longest any case waits for one expected frame.
QUIET_SECONDS = 0.5  # How long "nothing (else) arrives" is watched for.

VERSIONS = [
    pytest.param(stomp.Connection10, "1.0", id="v10"),
    pytest.param(stomp.Connection11, "1.1", id="v11"),
    pytest.param(stomp.Connection12, "1.2", id="v12"),
]
ACKING_VERSIONS = VERSIONS[1:]  # stomp.py offers NACK from 1.1 on.


def unique(prefix):
    return f"conf-{prefix}-{uuid.uuid4().hex[:12]}"


class Collector(stomp.ConnectionListener):
    """Frames from the broker, by kind, in thread-safe queues."""

    def __init__(self):
        self.messages = queue.Queue()
        self.receipts = queue.Queue()
        self.errors = queue.Queue()
        self.disconnected = queue.Queue()

    def on_message(self, frame):
        self.messages.put(frame)

    def on_receipt(self, frame):
        self.receipts.put(frame.headers.get("receipt-id"))

    def on_error(self, frame):
        self.errors.put(frame)

    def on_disconnected(self):
        self.disconnected.put(True)


class Client:
    """One stomp.py connection with a Collector; closed by the fixture."""

    def __init__(self, connection_class=stomp.Connection12, heartbeats=(0, 0), decode=True):
        kwargs = {"heartbeats": heartbeats} if connection_class is not stomp.Connection10 else {}
        if connection_class is not stomp.Connection10:
            kwargs["vhost"] = "/"
        self.connection = connection_class([(HOST, PORT)], auto_decode=decode, **kwargs)
        self.events = Collector()
        self.connection.set_listener("collector", self.events)
        self.connection.connect("guest", "guest", wait=True)

    def message(self):
        return self.events.messages.get(timeout=WAIT_SECONDS)

    def quiet(self):
        with pytest.raises(queue.Empty):
            frame = self.events.messages.get(timeout=QUIET_SECONDS)
            raise AssertionError(f"unexpected message {frame}")

    def receipt(self, expected):
        assert self.events.receipts.get(timeout=WAIT_SECONDS) == expected

    def send_confirmed(self, destination, body, **headers):
        receipt = unique("receipt")
        self.connection.send(destination, body, headers={"receipt": receipt, **headers})
        self.receipt(receipt)

    def subscribe(self, destination, subscription, ack="auto", **headers):
        receipt = unique("receipt")
        self.connection.subscribe(destination, subscription, ack=ack, headers={"receipt": receipt, **headers})
        self.receipt(receipt)

    def close(self):
        if self.connection.is_connected():
            self.connection.disconnect()


@pytest.fixture
def clients():
    opened = []

    def make(*args, **kwargs):
        client = Client(*args, **kwargs)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def ack_id(frame):
    return frame.headers.get("ack") or frame.headers["message-id"]


@pytest.mark.parametrize("connection_class,version", VERSIONS)
def test_send_and_receive_in_each_version(clients, connection_class, version):
    client = clients(connection_class)
    destination = f"/queue/{unique('basic')}"
    client.subscribe(destination, "s1")
    client.send_confirmed(destination, "hello", **{"x-custom": "value"})
    frame = client.message()
    assert frame.body == "hello"
    assert frame.headers["destination"] == destination
    assert frame.headers["subscription"] == "s1"
    assert frame.headers["x-custom"] == "value"


@pytest.mark.parametrize("connection_class,version", VERSIONS)
def test_client_individual_ack_and_redelivery(clients, connection_class, version):
    client = clients(connection_class)
    destination = f"/queue/{unique('individual')}"
    for body in ("a", "b"):
        client.send_confirmed(destination, body)
    client.subscribe(destination, "s", ack="client-individual")
    first, second = client.message(), client.message()
    assert (first.body, second.body) == ("a", "b")
    if version == "1.0":
        client.connection.ack(first.headers["message-id"])
    else:
        args = (ack_id(first),) if version == "1.2" else (first.headers["message-id"], "s")
        client.connection.ack(*args)
    client.close()
    again = clients(connection_class)
    again.subscribe(destination, "s")
    frame = again.message()
    assert frame.body == "b"
    assert frame.headers.get("redelivered") == "true"
    again.quiet()


def test_client_ack_is_cumulative(clients):
    client = clients()
    destination = f"/queue/{unique('cumulative')}"
    for body in ("a", "b", "c"):
        client.send_confirmed(destination, body)
    client.subscribe(destination, "s", ack="client")
    frames = [client.message() for _ in range(3)]
    client.connection.ack(ack_id(frames[1]))
    client.close()
    again = clients()
    again.subscribe(destination, "s")
    assert again.message().body == "c"
    again.quiet()


@pytest.mark.parametrize("connection_class,version", ACKING_VERSIONS)
def test_nack_requeues(clients, connection_class, version):
    client = clients(connection_class)
    destination = f"/queue/{unique('nack')}"
    client.send_confirmed(destination, "retry")
    client.subscribe(destination, "s", ack="client-individual")
    first = client.message()
    args = (ack_id(first),) if version == "1.2" else (first.headers["message-id"], "s")
    client.connection.nack(*args)
    again = client.message()
    assert again.body == "retry"
    assert again.headers.get("redelivered") == "true"


def test_prefetch_count_bounds_unacked_messages(clients):
    client = clients()
    destination = f"/queue/{unique('prefetch')}"
    for i in range(4):
        client.send_confirmed(destination, str(i))
    client.subscribe(destination, "s", ack="client-individual", **{"prefetch-count": "1"})
    first = client.message()
    client.quiet()
    client.connection.ack(ack_id(first))
    assert client.message().body == "1"


def test_transaction_commit_and_abort(clients):
    client = clients()
    destination = f"/queue/{unique('tx')}"
    client.subscribe(destination, "s")
    aborted = client.connection.begin()
    client.connection.send(destination, "never", transaction=aborted)
    client.connection.abort(aborted)
    committed = client.connection.begin()
    client.connection.send(destination, "one", transaction=committed)
    client.connection.send(destination, "two", transaction=committed)
    client.quiet()
    receipt = unique("commit")
    client.connection.commit(committed, headers={"receipt": receipt})
    client.receipt(receipt)
    assert [client.message().body, client.message().body] == ["one", "two"]
    client.quiet()


def test_ack_inside_a_transaction(clients):
    client = clients()
    destination = f"/queue/{unique('txack')}"
    client.send_confirmed(destination, "m")
    client.subscribe(destination, "s", ack="client-individual")
    frame = client.message()
    transaction = client.connection.begin()
    client.connection.ack(ack_id(frame), transaction=transaction)
    client.connection.commit(transaction)
    client.close()
    again = clients()
    again.subscribe(destination, "s")
    again.quiet()


def test_receipts_answer_every_frame(clients):
    client = clients()
    destination = f"/queue/{unique('receipt')}"
    client.subscribe(destination, "s")
    client.send_confirmed(destination, "x")
    assert client.message().body == "x"
    receipt = unique("unsubscribe")
    client.connection.unsubscribe("s", headers={"receipt": receipt})
    client.receipt(receipt)
    receipt = unique("disconnect")
    client.connection.disconnect(receipt=receipt)
    assert not client.connection.is_connected()


def test_topic_reaches_every_subscriber(clients):
    first, second = clients(), clients()
    topic = f"/topic/{unique('fan')}.news"
    first.subscribe(topic, "a")
    second.subscribe(topic, "b")
    first.send_confirmed(topic, "extra")
    assert first.message().body == "extra"
    assert second.message().body == "extra"


def test_durable_topic_subscription_keeps_messages_while_away(clients):
    topic = f"/topic/{unique('durable')}"
    durable = {"durable": "true", "auto-delete": "false"}
    subscriber = clients()
    subscriber.subscribe(topic, "keeper", **durable)
    subscriber.close()
    publisher = clients()
    publisher.send_confirmed(topic, "while away")
    subscriber = clients()
    subscriber.subscribe(topic, "keeper", **durable)
    assert subscriber.message().body == "while away"
    receipt = unique("forget")
    subscriber.connection.unsubscribe("keeper", headers={"receipt": receipt, **durable})
    subscriber.receipt(receipt)


def test_temp_queue_carries_the_reply(clients):
    server, requester = clients(), clients()
    service = f"/queue/{unique('service')}"
    server.subscribe(service, "requests")
    requester.send_confirmed(service, "ping", **{"reply-to": "/temp-queue/answers"})
    request = server.message()
    reply_to = request.headers["reply-to"]
    assert reply_to.startswith("/reply-queue/")
    server.send_confirmed(reply_to, "pong")
    reply = requester.message()
    assert reply.body == "pong"
    assert reply.headers["subscription"] == "/temp-queue/answers"


@pytest.mark.parametrize("connection_class,version", VERSIONS)
def test_binary_bodies_with_nul(clients, connection_class, version):
    client = clients(connection_class, decode=False)
    destination = f"/queue/{unique('binary')}"
    client.subscribe(destination, "s")
    body = bytes(range(256)) * 40
    client.send_confirmed(destination, body)
    frame = client.message()
    assert frame.body == body


def test_headers_and_properties_round_trip(clients):
    client = clients()
    destination = f"/queue/{unique('props')}"
    client.subscribe(destination, "s")
    headers = {
        "persistent": "true",
        "priority": "4",
        "correlation-id": "corr-1",
        "content-type": "text/plain",
        "tenant": "a:b\\c",
    }
    client.send_confirmed(destination, "p", **headers)
    frame = client.message()
    for name, value in headers.items():
        assert frame.headers.get(name) == value, name


def test_heartbeats_keep_a_quiet_connection_open(clients):
    client = clients(stomp.Connection12, heartbeats=(500, 500))
    time.sleep(2.5)
    assert client.connection.is_connected()
    destination = f"/queue/{unique('beat')}"
    client.subscribe(destination, "s")
    client.send_confirmed(destination, "still here")
    assert client.message().body == "still here"


def test_an_invalid_destination_gets_an_error_frame(clients):
    client = clients()
    client.connection.send("not-a-destination", "x")
    error = client.events.errors.get(timeout=WAIT_SECONDS)
    assert error.headers.get("message")
    client.events.disconnected.get(timeout=WAIT_SECONDS)
