"""Requesters and responders for request/response across protocols.

A requester names where replies go in its own protocol's way (AMQP: `reply_to` = a queue;
MQTT 5: Response Topic + Correlation Data; STOMP: `reply-to:/temp-queue/...`; SQS: a
`reply-to` attribute naming a queue) and sends one request. A responder answers the way its
own protocol's clients do, from what it was given: AMQP publishes to the default exchange with
the routing key `reply_to`, MQTT 5 publishes to the Response Topic with the Correlation Data,
STOMP sends to the `reply-to` header. The reply must reach the requester with its correlation.
"""

import base64
import re

import pika
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import mapping
from clients import (V5, WAIT_SECONDS, MqttClient, Route, StompClient, amqp_connect,
                     string_attribute)

# A queue name as AMQP 0-9-1 allows it: what `reply_to` holds for a queue.
QUEUE_NAME = r"[A-Za-z0-9_.:-]+"
STOMP_TEMP_QUEUE = "rr"  # The requester's /temp-queue/ name.


def reply_body(request_body):
    return b"pong: " + request_body


def request_route(case, source):
    token = case.token
    route = Route(source, token, key=f"rr.{token}.request", mqtt_topic=f"rr/{token}/request",
                  queue=f"conf-rr-{token}")
    if source == "queue":
        case.queues.append(route.queue)
    return route


# ---- Requesters: __init__ prepares the reply path; send(); check_reply() -> mismatches. ----

class AmqpRequester:
    """Replies go to a server-named exclusive queue (`amq.gen-...`)."""

    source = "topic"

    def __init__(self, case, route):
        self.route = route
        self.connection = amqp_connect()
        case.on_close(self.connection.close)
        self.channel = self.connection.channel()
        self.reply_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.reply_to = re.compile(re.escape(self.reply_queue))
        self.correlation = f"rr-corr-{route.token}"
        self.body = b"ping \x00\xff " + route.token.encode()

    def send(self):
        channel = self.connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("amq.topic", self.route.key, self.body, pika.BasicProperties(
            reply_to=self.reply_queue, correlation_id=self.correlation), mandatory=True)

    def check_reply(self):
        for method, properties, body in self.channel.consume(
                self.reply_queue, auto_ack=True, inactivity_timeout=WAIT_SECONDS):
            self.channel.cancel()
            assert method is not None, f"no reply in {self.reply_queue} within {WAIT_SECONDS}s"
            problems = []
            mapping.mismatch(problems, "reply correlation-id", self.correlation,
                             properties.correlation_id)
            mapping.mismatch(problems, "reply body", reply_body(self.body), body)
            return problems


class MqttRequester:
    """MQTT 5: Response Topic `rr/<token>/reply` and Correlation Data."""

    source = "topic"

    def __init__(self, case, route):
        self.route = route
        self.client = MqttClient(case, V5)
        self.reply_topic = f"rr/{route.token}/reply"
        self.reply_to = re.compile(re.escape(f"/topic/rr.{route.token}.reply"))
        self.client.subscribe(self.reply_topic)
        self.correlation = f"rr-corr-{route.token}".encode()
        self.body = b"ping \x00\xff " + route.token.encode()

    def send(self):
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = self.reply_topic
        properties.CorrelationData = self.correlation
        self.client.publish(self.route.mqtt_topic, self.body, 1, properties)

    def check_reply(self):
        message = self.client.receive()
        problems = []
        mapping.mismatch(problems, "reply topic", self.reply_topic, message.topic)
        mapping.mismatch(problems, "reply Correlation Data", self.correlation,
                         getattr(message.properties, "CorrelationData", None))
        mapping.mismatch(problems, "reply payload", reply_body(self.body), message.payload)
        return problems


class StompRequester:
    """`reply-to:/temp-queue/rr`: the broker makes the queue and names it in `reply_to`."""

    source = "topic"

    def __init__(self, case, route):
        self.route = route
        self.client = StompClient(case)
        # A queue (the reply-address table's first row) named as the naming table says.
        self.reply_to = re.compile(rf"stomp-temp-{QUEUE_NAME}")
        self.correlation = f"rr-corr-{route.token}"
        self.body = b"ping \x00\xff " + route.token.encode()

    def send(self):
        self.client.send(f"/topic/{self.route.key}", self.body, {
            "reply-to": f"/temp-queue/{STOMP_TEMP_QUEUE}", "correlation-id": self.correlation})

    def check_reply(self):
        frame = self.client.receive()
        problems = []
        mapping.mismatch(problems, "reply correlation-id", self.correlation,
                         frame.headers.get("correlation-id"))
        mapping.mismatch(problems, "reply body", reply_body(self.body), frame.body)
        return problems


class SqsRequester:
    """Requests to an SQS queue; a `reply-to` attribute names the SQS reply queue."""

    source = "queue"

    def __init__(self, case, route):
        self.sqs = case.sqs
        self.request_url = case.sqs.create_queue(QueueName=route.queue)["QueueUrl"]
        self.reply_queue = f"conf-rr-reply-{route.token}"
        case.queues.append(self.reply_queue)
        self.reply_url = case.sqs.create_queue(QueueName=self.reply_queue)["QueueUrl"]
        self.reply_to = re.compile(re.escape(self.reply_queue))
        self.correlation = f"rr-corr-{route.token}"
        self.body = f"ping {route.token}"

    def send(self):
        self.sqs.send_message(QueueUrl=self.request_url, MessageBody=self.body, MessageAttributes={
            "reply-to": string_attribute(self.reply_queue),
            "correlation-id": string_attribute(self.correlation)})

    def check_reply(self):
        messages = self.sqs.receive_message(
            QueueUrl=self.reply_url, WaitTimeSeconds=int(WAIT_SECONDS),
            MessageAttributeNames=["All"]).get("Messages", [])
        assert messages, f"no reply in {self.reply_url} within {WAIT_SECONDS}s"
        [message] = messages
        attributes = message.get("MessageAttributes", {})
        body = message["Body"].encode("utf-8")
        if attributes.get("content-transfer-encoding", {}).get("StringValue") == "base64":
            body = base64.b64decode(message["Body"])
        problems = []
        mapping.mismatch(problems, "reply attribute correlation-id", self.correlation,
                         attributes.get("correlation-id", {}).get("StringValue"))
        mapping.mismatch(problems, "reply body", reply_body(self.body.encode()), body)
        return problems


# ---- Responders: __init__ subscribes; serve() answers one request and returns the reply
# address as its protocol showed it and mapped back to the core's form. ----

class AmqpResponder:
    def __init__(self, case, route):
        self.queue = route.queue
        if route.source == "topic":
            case.channel.queue_declare(route.queue)
            case.queues.append(route.queue)
            case.channel.queue_bind(route.queue, "amq.topic", route.key)
        self.connection = amqp_connect()
        case.on_close(self.connection.close)

    def serve(self):
        channel = self.connection.channel()
        for method, properties, body in channel.consume(
                self.queue, auto_ack=True, inactivity_timeout=WAIT_SECONDS):
            channel.cancel()
            assert method is not None, f"no request in {self.queue} within {WAIT_SECONDS}s"
            break
        assert properties.reply_to, f"request without reply_to: {properties}"
        channel.confirm_delivery()
        # mandatory: a reply address the broker cannot route fails here, not as a silent loss.
        channel.basic_publish("", properties.reply_to, reply_body(body), pika.BasicProperties(
            correlation_id=properties.correlation_id), mandatory=True)
        return properties.reply_to, properties.reply_to


class MqttResponder:
    def __init__(self, case, route):
        assert route.source == "topic", "an MQTT client cannot subscribe to a queue"
        self.client = MqttClient(case, V5)
        self.client.subscribe(route.mqtt_topic)

    def serve(self):
        message = self.client.receive()
        response_topic = getattr(message.properties, "ResponseTopic", None)
        assert response_topic, f"request without Response Topic: {message.properties}"
        reply = Properties(PacketTypes.PUBLISH)
        correlation = getattr(message.properties, "CorrelationData", None)
        if correlation is not None:
            reply.CorrelationData = correlation
        self.client.publish(response_topic, reply_body(message.payload), 1, reply)
        return response_topic, reply_from_mqtt(response_topic)


class StompResponder:
    def __init__(self, case, route):
        self.client = StompClient(case)
        destination = (f"/topic/{route.key}" if route.source == "topic"
                       else f"/amq/queue/{route.queue}")
        self.client.subscribe(destination)

    def serve(self):
        frame = self.client.receive()
        reply_to = frame.headers.get("reply-to")
        assert reply_to, f"request without reply-to: {frame.headers}"
        headers = {}
        if "correlation-id" in frame.headers:
            headers["correlation-id"] = frame.headers["correlation-id"]
        self.client.send(reply_to, reply_body(frame.body), headers)
        return reply_to, reply_from_stomp(reply_to)


def reply_from_mqtt(topic):
    """The reply-address table read backwards, from MQTT 5's Response Topic."""
    if topic.startswith("$queue/"):
        return topic[len("$queue/"):]
    if topic.startswith("$exchange/"):
        return "/exchange/" + topic[len("$exchange/"):]
    return "/topic/" + topic.replace("/", ".")


def reply_from_stomp(reply_to):
    """The reply-address table read backwards, from STOMP's `reply-to`."""
    prefix = "/reply-queue/"
    return reply_to[len(prefix):] if reply_to.startswith(prefix) else reply_to


REQUESTERS = {"amqp": AmqpRequester, "mqtt5": MqttRequester, "stomp": StompRequester,
              "sqs": SqsRequester}
RESPONDERS = {"amqp": AmqpResponder, "mqtt5": MqttResponder, "stomp": StompResponder}
