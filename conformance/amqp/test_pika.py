"""AMQP 0-9-1 conformance through pika, the most used Python client.

RabbitMQ is the reference: every case passes against RabbitMQ (conformance/peers/rabbitmq.sh),
and mqbridge must behave the same. Each case uses its own queues and exchanges (unique names),
bounds every wait, and deletes what it declared. Needs MQBRIDGE_AMQP_URL (conformance/run sets it).
"""

import contextlib
import datetime
import decimal
import os
import signal
import time
import uuid

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, NackError, UnroutableError

AMQP_URL = os.environ.get("MQBRIDGE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
WAIT_SECONDS = 5.0  # The longest any case waits for one expected delivery.
POLL_SECONDS = 0.02
QUIET_SECONDS = 0.3  # How long "nothing more arrives" is watched for.
TEARDOWN_SECONDS = 10.0  # Closing and cleaning up after a case, even against a stuck broker.

REPLY_ACCESS_REFUSED = 403
REPLY_NOT_FOUND = 404
REPLY_RESOURCE_LOCKED = 405
REPLY_PRECONDITION_FAILED = 406
REPLY_NO_ROUTE = 312


def connect():
    parameters = pika.URLParameters(AMQP_URL)
    parameters.socket_timeout = 5
    parameters.blocked_connection_timeout = 10
    parameters.connection_attempts = 1
    parameters.stack_timeout = 5
    return pika.BlockingConnection(parameters)


class Broker:
    """One connection per case plus the names it declared, deleted at teardown."""

    def __init__(self, case_name):
        self.case_name = case_name.replace("[", ".").replace("]", "")
        self.connections = []
        self.queues = []
        self.exchanges = []
        self.connection = self.connect()
        self.channel = self.connection.channel()

    def connect(self):
        connection = connect()
        self.connections.append(connection)
        return connection

    def name(self, suffix):
        return f"conf.{self.case_name}.{suffix}.{uuid.uuid4().hex[:8]}"

    def queue(self, suffix="q", channel=None, **options):
        name = self.name(suffix)
        (channel or self.channel).queue_declare(name, **options)
        self.queues.append(name)
        return name

    def exchange(self, suffix, exchange_type, **options):
        name = self.name(suffix)
        self.channel.exchange_declare(name, exchange_type, **options)
        self.exchanges.append(name)
        return name

    def publisher(self):
        """A channel in confirm mode: when publish returns, the message is routed and queued."""
        channel = self.connection.channel()
        channel.confirm_delivery()
        return channel

    def message_count(self, queue):
        channel = self.connection.channel()
        count = channel.queue_declare(queue, passive=True).method.message_count
        channel.close()
        return count

    def close(self):
        # pika's blocking calls have no timeout of their own, and pytest-timeout's alarm may
        # already have fired during the case: bound the teardown separately.
        with bounded(TEARDOWN_SECONDS):
            # Closing first releases exclusive queues, which no other connection may delete.
            for connection in self.connections:
                if connection.is_open:
                    connection.close()
            cleanup = connect()
            channel = cleanup.channel()
            for queue in self.queues:
                channel.queue_delete(queue)
            for exchange in self.exchanges:
                channel.exchange_delete(exchange)
            cleanup.close()


@contextlib.contextmanager
def bounded(seconds):
    """Raises TimeoutError in the block after `seconds`; restores any alarm set before it."""

    def expire(_signal_number, _frame):
        raise TimeoutError(f"took longer than {seconds}s")

    started = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, expire)
    previous_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay:
            remaining = previous_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(remaining, 0.001))


@pytest.fixture
def broker(request):
    broker = Broker(request.node.name)
    yield broker
    broker.close()


def get_within(channel, queue, seconds=WAIT_SECONDS, auto_ack=True):
    """basic.get until a message arrives; fails the case after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=auto_ack)
        if method is not None:
            return method, properties, body
        assert time.monotonic() < deadline, f"no message in {queue} within {seconds}s"
        time.sleep(POLL_SECONDS)


def drain(channel, queue):
    """Every body currently in `queue`, in order."""
    bodies = []
    while True:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body)


def process_until(connection, condition, seconds=WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {seconds}s"
        connection.process_data_events(time_limit=POLL_SECONDS)


def expect_channel_error(reply_code, action):
    with pytest.raises(ChannelClosedByBroker) as raised:
        action()
    assert raised.value.reply_code == reply_code, raised.value


# ---- Messages and their properties ----


def test_round_trip_keeps_body_and_every_property(broker):
    queue = broker.queue()
    headers = {
        "string": "text é",
        "int": 42,
        "negative": -7,
        "long": 2**40,
        "bool": True,
        "bytes": b"\x00\x01\xff",
        "decimal": decimal.Decimal("1.23"),
        "timestamp": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        "list": [1, "two", False],
        "table": {"nested": "yes", "n": 1},
        "void": None,
    }
    sent = pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers=headers,
        delivery_mode=2,
        priority=5,
        correlation_id="correlation-1",
        reply_to="reply.queue",
        expiration="60000",
        message_id="message-1",
        timestamp=1700000000,
        type="order.created",
        user_id="guest",
        app_id="conformance",
    )
    body = b'{"binary": "\x00\xff"}'
    broker.publisher().basic_publish("", queue, body, sent)

    for method, received, received_body in broker.channel.consume(
        queue, inactivity_timeout=WAIT_SECONDS
    ):
        assert method is not None, "no delivery"
        broker.channel.basic_ack(method.delivery_tag)
        break
    broker.channel.cancel()
    assert received_body == body
    assert method.redelivered is False
    assert method.exchange == ""
    assert method.routing_key == queue
    for field in (
        "content_type",
        "content_encoding",
        "delivery_mode",
        "priority",
        "correlation_id",
        "reply_to",
        "expiration",
        "message_id",
        "timestamp",
        "type",
        "user_id",
        "app_id",
    ):
        assert getattr(received, field) == getattr(sent, field), field
    assert received.headers == headers


def test_publisher_confirms_all_1000(broker):
    queue = broker.queue()
    publisher = broker.publisher()
    for number in range(1000):
        # In confirm mode pika's basic_publish returns only after basic.ack; a nack raises.
        publisher.basic_publish("", queue, str(number).encode())
    assert broker.message_count(queue) == 1000


def test_mandatory_unroutable_is_returned_in_confirm_mode(broker):
    publisher = broker.publisher()
    key = broker.name("nowhere")
    with pytest.raises(UnroutableError) as raised:
        publisher.basic_publish("", key, b"lost", mandatory=True)
    (returned,) = raised.value.messages
    assert returned.method.reply_code == REPLY_NO_ROUTE
    assert returned.method.routing_key == key
    assert returned.body == b"lost"


def test_mandatory_unroutable_is_returned_without_confirms(broker):
    returns = []
    broker.channel.add_on_return_callback(
        lambda _channel, method, _properties, body: returns.append((method, body))
    )
    key = broker.name("nowhere")
    broker.channel.basic_publish("", key, b"lost", mandatory=True)
    process_until(broker.connection, lambda: returns)
    method, body = returns[0]
    assert (method.reply_code, method.reply_text) == (REPLY_NO_ROUTE, "NO_ROUTE")
    assert (method.exchange, method.routing_key, body) == ("", key, b"lost")


# ---- Dead-lettering, TTL, length limits ----


def dead_letter_setup(broker, **queue_arguments):
    dlx = broker.exchange("dlx", "fanout")
    dead = broker.queue("dead")
    broker.channel.queue_bind(dead, dlx)
    queue = broker.queue(arguments={"x-dead-letter-exchange": dlx, **queue_arguments})
    return queue, dlx, dead


def assert_x_death(properties, queue, reason, routing_key):
    (death,) = properties.headers["x-death"]
    assert death["queue"] == queue
    assert death["reason"] == reason
    assert death["count"] == 1
    assert death["exchange"] == ""
    assert death["routing-keys"] == [routing_key]
    assert isinstance(death["time"], datetime.datetime)
    assert properties.headers["x-first-death-queue"] == queue
    assert properties.headers["x-first-death-reason"] == reason
    assert properties.headers["x-first-death-exchange"] == ""
    return death


def test_reject_without_requeue_dead_letters_with_x_death(broker):
    queue, _dlx, dead = dead_letter_setup(broker)
    broker.publisher().basic_publish("", queue, b"bad", pika.BasicProperties(headers={"k": "v"}))
    method, _, _ = get_within(broker.channel, queue, auto_ack=False)
    broker.channel.basic_reject(method.delivery_tag, requeue=False)

    _, properties, body = get_within(broker.channel, dead)
    assert body == b"bad"
    assert properties.headers["k"] == "v"
    assert_x_death(properties, queue, "rejected", queue)
    assert broker.message_count(queue) == 0


def test_queue_message_ttl_expires_into_dlx(broker):
    queue, _dlx, dead = dead_letter_setup(broker, **{"x-message-ttl": 100})
    broker.publisher().basic_publish("", queue, b"short-lived")
    _, properties, body = get_within(broker.channel, dead)
    assert body == b"short-lived"
    assert_x_death(properties, queue, "expired", queue)
    assert broker.message_count(queue) == 0


def test_per_message_expiration_drops_only_that_message(broker):
    queue = broker.queue()
    publisher = broker.publisher()
    publisher.basic_publish("", queue, b"expires", pika.BasicProperties(expiration="50"))
    publisher.basic_publish("", queue, b"stays")
    time.sleep(0.3)
    assert drain(broker.channel, queue) == [b"stays"]


def test_per_message_expiration_dead_letters_with_original_expiration(broker):
    queue, _dlx, dead = dead_letter_setup(broker)
    broker.publisher().basic_publish("", queue, b"expires", pika.BasicProperties(expiration="100"))
    _, properties, body = get_within(broker.channel, dead)
    assert body == b"expires"
    death = assert_x_death(properties, queue, "expired", queue)
    assert death["original-expiration"] == "100"
    assert properties.expiration is None


def test_max_length_drops_the_head_by_default(broker):
    queue = broker.queue(arguments={"x-max-length": 3})
    publisher = broker.publisher()
    for number in range(1, 6):
        publisher.basic_publish("", queue, f"m{number}".encode())
    assert broker.message_count(queue) == 3
    assert drain(broker.channel, queue) == [b"m3", b"m4", b"m5"]


def test_overflow_reject_publish_nacks_in_confirm_mode(broker):
    queue = broker.queue(arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
    publisher = broker.publisher()
    publisher.basic_publish("", queue, b"m1")
    publisher.basic_publish("", queue, b"m2")
    with pytest.raises(NackError):
        publisher.basic_publish("", queue, b"m3")
    assert drain(broker.channel, queue) == [b"m1", b"m2"]


# ---- Transactions, get, acknowledgements, flow ----


def test_tx_commit_publishes_and_rollback_discards(broker):
    queue = broker.queue()
    tx = broker.connection.channel()
    tx.tx_select()
    tx.basic_publish("", queue, b"committed")
    assert broker.message_count(queue) == 0, "a publish is visible before tx.commit"
    tx.tx_commit()
    assert broker.message_count(queue) == 1
    tx.basic_publish("", queue, b"rolled back")
    tx.tx_rollback()
    assert broker.message_count(queue) == 1
    tx.tx_commit()
    assert drain(broker.channel, queue) == [b"committed"]


def test_basic_get_empty_then_get_and_ack(broker):
    queue = broker.queue()
    assert broker.channel.basic_get(queue) == (None, None, None)
    publisher = broker.publisher()
    for body in (b"first", b"second", b"third"):
        publisher.basic_publish("", queue, body)

    method, _, body = broker.channel.basic_get(queue, auto_ack=False)
    assert body == b"first"
    assert method.message_count == 2, "get-ok counts the messages left"
    assert method.redelivered is False
    broker.channel.basic_ack(method.delivery_tag)

    method, _, body = broker.channel.basic_get(queue, auto_ack=True)
    assert (body, method.message_count) == (b"second", 1)
    assert broker.message_count(queue) == 1


def test_prefetch_one_alternates_between_two_consumers(broker):
    queue = broker.queue()
    deliveries = []
    channels = {}
    for worker in ("A", "B"):
        channel = broker.connection.channel()
        channel.basic_qos(prefetch_count=1)
        channel.basic_consume(
            queue,
            lambda _ch, method, _props, body, worker=worker: deliveries.append(
                (worker, method.delivery_tag, body)
            ),
        )
        channels[worker] = channel
    publisher = broker.publisher()
    for number in range(1, 5):
        publisher.basic_publish("", queue, f"m{number}".encode())

    process_until(broker.connection, lambda: len(deliveries) >= 2)
    broker.connection.process_data_events(time_limit=QUIET_SECONDS)
    assert len(deliveries) == 2, "prefetch 1 allows one unacked message per consumer"
    assert {worker for worker, _, _ in deliveries} == {"A", "B"}
    assert sorted(body for _, _, body in deliveries) == [b"m1", b"m2"]

    for expected_count, body in ((3, b"m3"), (4, b"m4")):
        worker, tag, _ = deliveries[expected_count - 3]
        channels[worker].basic_ack(tag)
        process_until(broker.connection, lambda n=expected_count: len(deliveries) >= n)
        assert deliveries[-1][0] == worker, "the freed consumer receives the next message"
        assert deliveries[-1][2] == body


def test_basic_recover_requeues_as_redelivered(broker):
    queue = broker.queue()
    broker.publisher().basic_publish("", queue, b"again")
    method, _, _ = broker.channel.basic_get(queue, auto_ack=False)
    assert method.redelivered is False
    broker.channel.basic_recover(requeue=True)
    method, _, body = get_within(broker.channel, queue, auto_ack=False)
    assert (body, method.redelivered) == (b"again", True)
    broker.channel.basic_ack(method.delivery_tag)
    assert broker.message_count(queue) == 0


def test_nack_with_requeue_redelivers(broker):
    queue = broker.queue()
    broker.publisher().basic_publish("", queue, b"retry")
    method, _, _ = broker.channel.basic_get(queue, auto_ack=False)
    broker.channel.basic_nack(method.delivery_tag, requeue=True)
    method, _, body = get_within(broker.channel, queue, auto_ack=False)
    assert (body, method.redelivered) == (b"retry", True)
    broker.channel.basic_ack(method.delivery_tag)


def test_unacked_message_is_requeued_when_its_channel_closes(broker):
    queue = broker.queue()
    broker.publisher().basic_publish("", queue, b"in flight")
    consumer = broker.connection.channel()
    method, _, _ = consumer.basic_get(queue, auto_ack=False)
    assert method is not None
    consumer.close()
    method, _, body = get_within(broker.channel, queue)
    assert (body, method.redelivered) == (b"in flight", True)


def test_basic_cancel_stops_deliveries(broker):
    queue = broker.queue()
    received = []
    tag = broker.channel.basic_consume(
        queue, lambda _ch, _method, _props, body: received.append(body), auto_ack=True
    )
    publisher = broker.publisher()
    publisher.basic_publish("", queue, b"before")
    process_until(broker.connection, lambda: received)
    broker.channel.basic_cancel(tag)
    publisher.basic_publish("", queue, b"after")
    broker.connection.process_data_events(time_limit=QUIET_SECONDS)
    assert received == [b"before"]
    assert broker.message_count(queue) == 1


# ---- Declarations and their errors ----


def test_declare_ok_reports_message_and_consumer_counts(broker):
    queue = broker.queue()
    broker.publisher().basic_publish("", queue, b"one")
    declare_ok = broker.channel.queue_declare(queue, passive=True).method
    assert (declare_ok.queue, declare_ok.message_count, declare_ok.consumer_count) == (queue, 1, 0)
    consumer = broker.connection.channel()
    consumer.basic_qos(prefetch_count=1)
    consumer.basic_consume(queue, lambda *_: None)
    declare_ok = broker.channel.queue_declare(queue, passive=True).method
    assert declare_ok.consumer_count == 1


def test_server_named_exclusive_queue(broker):
    declare_ok = broker.channel.queue_declare("", exclusive=True).method
    assert declare_ok.queue.startswith("amq.gen-"), declare_ok.queue
    broker.publisher().basic_publish("", declare_ok.queue, b"reply")
    assert get_within(broker.channel, declare_ok.queue)[2] == b"reply"


def test_exclusive_queue_is_locked_to_its_connection(broker):
    queue = broker.queue(exclusive=True)
    other = broker.connect()
    expect_channel_error(REPLY_RESOURCE_LOCKED, lambda: other.channel().queue_declare(queue))
    expect_channel_error(
        REPLY_RESOURCE_LOCKED, lambda: other.channel().basic_consume(queue, lambda *_: None)
    )
    assert broker.message_count(queue) == 0, "the owner still uses it"


def test_passive_declare_of_missing_queue_is_404(broker):
    channel = broker.connection.channel()
    missing = broker.name("missing")
    expect_channel_error(REPLY_NOT_FOUND, lambda: channel.queue_declare(missing, passive=True))
    assert not channel.is_open
    assert broker.connection.is_open, "a channel error leaves the connection open"
    assert broker.connection.channel().is_open


def test_redeclare_with_different_durable_is_406(broker):
    queue = broker.queue(durable=False)
    channel = broker.connection.channel()
    expect_channel_error(
        REPLY_PRECONDITION_FAILED, lambda: channel.queue_declare(queue, durable=True)
    )


def test_exchange_name_starting_with_amq_is_403(broker):
    channel = broker.connection.channel()
    name = "amq." + broker.name("reserved")
    expect_channel_error(REPLY_ACCESS_REFUSED, lambda: channel.exchange_declare(name, "direct"))


def test_delete_if_empty_on_non_empty_queue_is_406(broker):
    queue = broker.queue()
    broker.publisher().basic_publish("", queue, b"keep")
    channel = broker.connection.channel()
    expect_channel_error(
        REPLY_PRECONDITION_FAILED, lambda: channel.queue_delete(queue, if_empty=True)
    )
    assert broker.message_count(queue) == 1


def test_purge_returns_the_count(broker):
    queue = broker.queue()
    publisher = broker.publisher()
    for number in range(5):
        publisher.basic_publish("", queue, str(number).encode())
    assert broker.channel.queue_purge(queue).method.message_count == 5
    assert broker.message_count(queue) == 0


# ---- Routing ----


def bind_queues(broker, exchange, keys_by_suffix):
    queues = {}
    for suffix, key in keys_by_suffix.items():
        queues[suffix] = broker.queue(suffix)
        broker.channel.queue_bind(queues[suffix], exchange, routing_key=key)
    return queues


def test_topic_exchange_star_and_hash(broker):
    exchange = broker.exchange("topic", "topic")
    patterns = {
        "star_middle": "stock.*.nyse",
        "hash_tail": "stock.#",
        "hash_only": "#",
        "star_head": "*.eur",
        "hash_head": "#.nyse",
        "star_tail": "stock.*",
    }
    queues = bind_queues(broker, exchange, patterns)
    keys = ["stock.usd.nyse", "stock.eur", "stock", "stock.a.b.nyse", "bond.eur", "nyse"]
    publisher = broker.publisher()
    for key in keys:
        publisher.basic_publish(exchange, key, key.encode())
    expected = {
        "star_middle": ["stock.usd.nyse"],
        "hash_tail": ["stock.usd.nyse", "stock.eur", "stock", "stock.a.b.nyse"],
        "hash_only": keys,
        "star_head": ["stock.eur", "bond.eur"],
        "hash_head": ["stock.usd.nyse", "stock.a.b.nyse", "nyse"],
        "star_tail": ["stock.eur"],
    }
    for suffix, queue in queues.items():
        received = [body.decode() for body in drain(broker.channel, queue)]
        assert received == expected[suffix], patterns[suffix]


def test_headers_exchange_any_and_all(broker):
    exchange = broker.exchange("headers", "headers")
    match_all = broker.queue("all")
    match_any = broker.queue("any")
    broker.channel.queue_bind(
        match_all, exchange, arguments={"x-match": "all", "format": "pdf", "type": "report"}
    )
    broker.channel.queue_bind(
        match_any, exchange, arguments={"x-match": "any", "format": "pdf", "type": "log"}
    )
    messages = {
        b"pdf-report": {"format": "pdf", "type": "report"},
        b"pdf-report-extra": {"format": "pdf", "type": "report", "extra": 1},
        b"pdf": {"format": "pdf"},
        b"log": {"type": "log"},
        b"zip-report": {"format": "zip", "type": "report"},
        b"none": {},
    }
    publisher = broker.publisher()
    for body, headers in messages.items():
        publisher.basic_publish(exchange, "", body, pika.BasicProperties(headers=headers))
    assert drain(broker.channel, match_all) == [b"pdf-report", b"pdf-report-extra"]
    assert drain(broker.channel, match_any) == [b"pdf-report", b"pdf-report-extra", b"pdf", b"log"]


def test_fanout_reaches_three_queues(broker):
    exchange = broker.exchange("fanout", "fanout")
    queues = bind_queues(broker, exchange, {"one": "", "two": "x", "three": "y"})
    broker.publisher().basic_publish(exchange, "ignored.key", b"everyone")
    for queue in queues.values():
        assert drain(broker.channel, queue) == [b"everyone"]


def test_exchange_to_exchange_binding(broker):
    source = broker.exchange("source", "direct")
    destination = broker.exchange("destination", "fanout")
    broker.channel.exchange_bind(destination, source, routing_key="forward")
    (queue,) = bind_queues(broker, destination, {"sink": ""}).values()
    publisher = broker.publisher()
    publisher.basic_publish(source, "forward", b"forwarded")
    publisher.basic_publish(source, "other", b"not forwarded")
    assert drain(broker.channel, queue) == [b"forwarded"]


def test_alternate_exchange_receives_unroutable(broker):
    alternate = broker.exchange("alternate", "fanout")
    exchange = broker.exchange("main", "direct", arguments={"alternate-exchange": alternate})
    routed = bind_queues(broker, exchange, {"routed": "known"})["routed"]
    unrouted = bind_queues(broker, alternate, {"unrouted": ""})["unrouted"]
    publisher = broker.publisher()
    publisher.basic_publish(exchange, "known", b"to routed")
    # Routed through the alternate exchange, so a mandatory publish is not returned.
    publisher.basic_publish(exchange, "unknown", b"to alternate", mandatory=True)
    assert drain(broker.channel, routed) == [b"to routed"]
    assert drain(broker.channel, unrouted) == [b"to alternate"]


def test_max_priority_delivers_highest_first(broker):
    queue = broker.queue(arguments={"x-max-priority": 10})
    publisher = broker.publisher()
    for body, priority in ((b"p1", 1), (b"p5", 5), (b"none", None), (b"p9", 9), (b"p5b", 5)):
        publisher.basic_publish("", queue, body, pika.BasicProperties(priority=priority))
    assert drain(broker.channel, queue) == [b"p9", b"p5", b"p5b", b"p1", b"none"]
