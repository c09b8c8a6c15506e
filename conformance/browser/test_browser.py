"""A real browser against mqbridge's WebSocket port: headless Chromium (Debian's `chromium`)
loads page.html, whose MQTT.js or @stomp/stompjs subscribes over ws://; mosquitto_pub or pika
publishes; the page reports what it received and publishes it back, and pika reads that.

A case passes only if the page received exactly the published bodies, in order, and exactly
those came back. Needs MQBRIDGE_WS_URL and MQBRIDGE_AMQP_URL (conformance/run sets both), the
`chromium` and `mosquitto_pub` commands, and node_modules (conformance/run installs them).
"""

import http.server
import json
import os
import queue
import random
import shutil
import subprocess
import tempfile
import threading
import urllib.parse
from pathlib import Path

import pika
import pytest

PAGE_DIR = Path(__file__).resolve().parent
WS_URL = os.environ.get("MQBRIDGE_WS_URL", "")
AMQP_URL = os.environ.get("MQBRIDGE_AMQP_URL", "")
# Chromium's first start in a fresh profile takes a few seconds on a small machine.
READY_TIMEOUT_SECONDS = 60
RESULT_TIMEOUT_SECONDS = 30
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-dev-shm-usage",
]

pytestmark = [
    pytest.mark.skipif(
        not WS_URL or not AMQP_URL, reason="needs MQBRIDGE_WS_URL and MQBRIDGE_AMQP_URL"
    ),
    pytest.mark.timeout(150),
]

BODIES = [
    "hello from the other side",
    "ünïcödé ✓ 日本語",
    '{"json": [1, 2, 3], "nested": {"ok": true}}',
    "x" * 65536,
]


class Page(http.server.SimpleHTTPRequestHandler):
    """Serves the page and node_modules; takes the page's /ready and /result reports."""

    reports: "queue.Queue[tuple[str, dict]]"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(PAGE_DIR), **kwargs)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.reports.put((self.path, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class Browser:
    """One headless Chromium on one page, with the HTTP server that hears its reports."""

    def __init__(self, query: dict):
        reports: "queue.Queue[tuple[str, dict]]" = queue.Queue()
        handler = type("Handler", (Page,), {"reports": reports})
        self.reports = reports
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        port = self.server.server_address[1]
        url = f"http://127.0.0.1:{port}/page.html?{urllib.parse.urlencode(query)}"
        self.profile = tempfile.mkdtemp(prefix="mqbridge-chromium-")
        self.log = open(os.path.join(self.profile, "chromium.log"), "w+")
        command = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", url]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)

    def report(self, path: str, timeout: float) -> dict:
        try:
            got, body = self.reports.get(timeout=timeout)
        except queue.Empty:
            self.log.seek(0)
            said = self.log.read()[-3000:]
            pytest.fail(f"the page sent no {path} in {timeout}s; chromium said:\n{said}")
        if "error" in body:
            pytest.fail(f"the page failed: {body['error']} (received {body.get('received')})")
        assert got == path, f"expected {path}, the page sent {got}: {body}"
        return body

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.server.shutdown()
        self.server.server_close()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no chromium on PATH (conformance/run installs Debian's chromium)")


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{random.randrange(1 << 30)}"


def echo_queue(channel, topic: str) -> str:
    """A queue bound to amq.topic for the MQTT topic `topic` (its routing key uses dots)."""
    name = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(name, "amq.topic", routing_key=topic.replace("/", "."))
    return name


def drain(channel, name: str, expected: int) -> list[str]:
    bodies = []
    for _ in range(expected):
        method, _, body = channel.basic_get(name, auto_ack=True)
        if method is None:
            break
        bodies.append(body.decode("utf-8"))
    return bodies


def run_page(mode: str, publish) -> None:
    listen, echo = unique("conf/browser/in"), unique("conf/browser/echo")
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    echoed = echo_queue(channel, echo)
    query = {"mode": mode, "ws": WS_URL, "listen": listen, "echo": echo, "count": len(BODIES)}
    browser = Browser(query)
    try:
        browser.report("/ready", READY_TIMEOUT_SECONDS)
        publish(channel, listen)
        result = browser.report("/result", RESULT_TIMEOUT_SECONDS)
        assert result["received"] == BODIES, "the page received something else"
        connection.process_data_events(time_limit=1)
        assert drain(channel, echoed, len(BODIES) + 1) == BODIES, "the page's publishes differ"
    finally:
        browser.close()
        connection.close()


def test_mqtt_js_receives_mosquitto_pub_bodies_and_publishes_them_back():
    mqtt_url = urllib.parse.urlparse(os.environ.get("MQBRIDGE_MQTT_URL", ""))
    if not mqtt_url.port:
        pytest.skip("needs MQBRIDGE_MQTT_URL for mosquitto_pub")
    address = ["-h", mqtt_url.hostname, "-p", str(mqtt_url.port)]

    def publish(_channel, topic):
        for body in BODIES:
            command = ["mosquitto_pub", *address, "-q", "1", "-t", topic, "-m", body]
            subprocess.run(command, check=True, timeout=15)

    run_page("mqtt", publish)


def test_stompjs_receives_pika_bodies_and_sends_them_back():
    def publish(channel, topic):
        for body in BODIES:
            channel.basic_publish("amq.topic", topic.replace("/", "."), body.encode("utf-8"))

    run_page("stomp", publish)
