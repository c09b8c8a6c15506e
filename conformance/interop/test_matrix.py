"""Interop matrix: publish with one protocol's client, receive with another's, for every pair.

Publishers: AMQP 0-9-1 (pika), MQTT 3.1.1 and 5 (paho), STOMP 1.2 (stomp.py), MQTT 5 and
STOMP over WebSocket, SQS and SNS (boto3). Receivers: the same but SNS. Each case uses fresh
names, publishes one message with every property and header its publisher can set (a binary
body where the protocol carries bytes; SQS does, base64 with `content-transfer-encoding`), and
checks what the receiver's client library got against ARCHITECTURE.md's mapping table
(mapping.py). Publishers that choose persistence are also run transient against every receiver
that shows it. Then request/response round trips across protocol pairs, by the reply-address
table. clients.py says how each pair is routed.

Needs MQBRIDGE_AMQP_URL, _MQTT_URL, _STOMP_URL, _WS_URL, _SQS_URL and _SNS_URL (conformance/run
sets them all). Every wait is bounded (clients.WAIT_SECONDS per event).
"""

import os
import sys

import pytest

# The importlib import mode puts no folder on sys.path; the helpers live beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import clients  # noqa: E402
import round_trips  # noqa: E402

URL_VARIABLES = ("MQBRIDGE_AMQP_URL", "MQBRIDGE_MQTT_URL", "MQBRIDGE_STOMP_URL", "MQBRIDGE_WS_URL",
                 "MQBRIDGE_SQS_URL", "MQBRIDGE_SNS_URL")
# The table is mqbridge's and no reference broker serves all six: against one that serves some
# (conformance/run with only MQBRIDGE_AMQP_URL, say) the suite is skipped.
pytestmark = pytest.mark.skipif(
    not all(os.environ.get(variable) for variable in URL_VARIABLES),
    reason=f"needs every one of {', '.join(URL_VARIABLES)}")

MATRIX = [
    pytest.param(publisher, receiver, True, id=f"{publisher}-to-{receiver}")
    for publisher in clients.PUBLISHERS
    for receiver in clients.RECEIVERS
] + [
    pytest.param(publisher, receiver, False, id=f"{publisher}-to-{receiver}-transient")
    for publisher, (_, _, can_be_transient) in clients.PUBLISHERS.items() if can_be_transient
    for receiver, (_, shows_persistence) in clients.RECEIVERS.items() if shows_persistence
]

ROUND_TRIPS = [
    pytest.param(requester, responder, id=f"{requester}-asks-{responder}")
    for requester in round_trips.REQUESTERS
    for responder in round_trips.RESPONDERS
    # SQS requests land in a queue, and no MQTT client can read a queue.
    if (requester, responder) != ("sqs", "mqtt5")
]


@pytest.fixture(scope="module")
def aws():
    return clients.aws_client("sqs", clients.SQS_URL), clients.aws_client("sns", clients.SNS_URL)


@pytest.fixture
def case(aws):
    case = clients.Case(*aws)
    yield case
    case.close()


@pytest.mark.parametrize("publisher,receiver,persistent", MATRIX)
def test_matrix(case, publisher, receiver, persistent):
    publish, source, _ = clients.PUBLISHERS[publisher]
    make_receiver, _ = clients.RECEIVERS[receiver]
    route = case.route(source)
    receiving = make_receiver(case, route)
    expected = publish(case, route, persistent)
    problems = receiving.check(expected)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("requester,responder", ROUND_TRIPS)
def test_request_response(case, requester, responder):
    requesting_class = round_trips.REQUESTERS[requester]
    route = round_trips.request_route(case, requesting_class.source)
    requesting = requesting_class(case, route)
    responding = round_trips.RESPONDERS[responder](case, route)
    requesting.send()
    seen, reply_to = responding.serve()
    assert requesting.reply_to.fullmatch(reply_to), (
        f"{responder} saw reply address {seen!r}, which means {reply_to!r}; "
        f"want {requesting.reply_to.pattern!r}")
    problems = requesting.check_reply()
    assert not problems, "\n".join(problems)
