"""The broker's web console in a real browser: headless Chromium (Debian's `chromium`), driven
over its DevTools protocol with websocket-client, opens the console on the management port,
logs in as guest/guest, opens a queue declared beforehand through the API, publishes a message
from the page's form, and waits for the page's ready count to say 1; the API must then hold
that body in the queue. A screenshot of the Overview page is saved to
target/console-overview.png (a CI artifact).

Needs MQBRIDGE_MANAGEMENT_URL (conformance/run sets it) and the `chromium` command; the
overview case also needs MQBRIDGE_AMQP_URL, for a connection to count and messages to rate.
"""

import base64
import itertools
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pika
import pytest
import websocket

MANAGEMENT_URL = os.environ.get("MQBRIDGE_MANAGEMENT_URL", "").rstrip("/")
AMQP_URL = os.environ.get("MQBRIDGE_AMQP_URL", "")
SCREENSHOT = Path(__file__).resolve().parents[2] / "target" / "console-overview.png"
# Chromium's first start in a fresh profile takes a few seconds on a small machine.
START_TIMEOUT_SECONDS = 60
# How long the page may take to show what the broker did (it refreshes every 2 s).
PAGE_TIMEOUT_SECONDS = 20
CDP_TIMEOUT_SECONDS = 30
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1280,900",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]

pytestmark = [
    pytest.mark.skipif(not MANAGEMENT_URL, reason="needs MQBRIDGE_MANAGEMENT_URL"),
    pytest.mark.timeout(150),
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no chromium on PATH (conformance/run installs Debian's chromium)")


def api(method: str, path: str, body=None):
    """A management API request as guest; answers the JSON body (None when empty)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(MANAGEMENT_URL + path, data=data, method=method)
    token = base64.b64encode(b"guest:guest").decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text else None


class Page:
    """One headless Chromium and a DevTools session on its one page."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="mqbridge-chromium-")
        self.log = open(os.path.join(self.profile, "chromium.log"), "w+")
        command = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        self.ids = itertools.count(1)
        self.socket = websocket.create_connection(
            self._page_socket_url(), timeout=CDP_TIMEOUT_SECONDS, suppress_origin=True
        )
        self.send("Page.enable")
        self.send("Runtime.enable")

    def _page_socket_url(self) -> str:
        """The page target's DevTools address, once Chromium has written its port."""
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.fail(f"chromium exited with status {self.process.returncode}")
            lines = port_file.read_text().split() if port_file.exists() else []
            if lines:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{lines[0]}/json/list") as answer:
                        targets = json.load(answer)
                except (urllib.error.URLError, ConnectionError):
                    targets = []
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.2)
        self.fail(f"chromium offered no page to debug in {START_TIMEOUT_SECONDS}s")

    def fail(self, message: str):
        self.log.seek(0)
        pytest.fail(f"{message}; chromium said:\n{self.log.read()[-3000:]}")

    def send(self, method: str, params=None) -> dict:
        """One DevTools command; events arriving meanwhile are skipped."""
        command_id = next(self.ids)
        self.socket.send(json.dumps({"id": command_id, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") != command_id:
                continue
            if "error" in message:
                raise AssertionError(f"{method} failed: {message['error']}")
            return message["result"]

    def evaluate(self, expression: str):
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, what: str, expression: str, timeout: float = PAGE_TIMEOUT_SECONDS):
        """Polls `expression` in the page until it is truthy; answers its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() >= deadline:
                status = self.evaluate("document.getElementById('status')?.textContent")
                raise AssertionError(f"the page never showed {what} in {timeout}s ({status!r})")
            time.sleep(0.1)

    def navigate(self, url: str):
        self.send("Page.navigate", {"url": url})
        self.wait_for("a loaded page", "document.readyState === 'complete'", START_TIMEOUT_SECONDS)

    def type_into(self, element_id: str, text: str):
        """Focuses the field and types into it as a keyboard would."""
        self.evaluate(f"document.getElementById({json.dumps(element_id)}).focus()")
        self.send("Input.insertText", {"text": text})

    def click(self, selector: str):
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    def screenshot(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self):
        self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page():
    """A browser logged into the console as guest, shared by the cases in file order."""
    browser = Page()
    try:
        browser.navigate(MANAGEMENT_URL + "/")
        browser.wait_for("the login form", "!document.getElementById('login').hidden")
        browser.type_into("login-user", "guest")
        browser.type_into("login-password", "guest")
        browser.click("#login-submit")
        browser.wait_for("the signed-in tabs", "!document.getElementById('tabs').hidden")
        yield browser
    finally:
        browser.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{random.randrange(1 << 30)}"


def test_publish_from_the_queue_page_and_see_the_ready_count_change(page):
    name = unique("conf.console")
    api("PUT", f"/api/queues/%2F/{urllib.parse.quote(name, safe='')}", {"durable": False})
    body = f"published from the console ✓ {name}"
    try:
        page.click('#tabs a[data-tab="queues"]')
        row = f'#queues-table tr[data-queue="{name}"]'
        page.wait_for(f"the queue {name} listed", f"!!document.querySelector({json.dumps(row)})")
        page.click(row)
        ready = "document.getElementById('queue-ready')?.textContent"
        page.wait_for("the queue's ready count of 0", f"{ready} === '0'")
        page.type_into("publish-body", body)
        page.click("#publish-submit")
        page.wait_for("the ready count of 1", f"{ready} === '1'")
        assert page.evaluate("document.getElementById('publish-result').textContent") == "Published."

        held = api(
            "POST",
            f"/api/queues/%2F/{urllib.parse.quote(name, safe='')}/get",
            {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"},
        )
        assert [m["payload"] for m in held] == [body], "the queue holds what the page published"

        page.click("#get-submit")
        shown = page.wait_for(
            "the message the get form took",
            "[...document.querySelectorAll('#get-results pre.payload')].map(e => e.textContent)"
            ".join('\\n') || null",
        )
        assert shown == body, "the page shows the body it got"
    finally:
        api("DELETE", f"/api/queues/%2F/{urllib.parse.quote(name, safe='')}")


def test_users_page_lists_guest_with_its_permissions(page):
    page.click('#tabs a[data-tab="users"]')
    page.wait_for("guest in the users table", "!!document.querySelector('#users-table tr[data-user=\"guest\"]')")
    page.wait_for(
        "guest's permissions on /",
        "!!document.querySelector('#permissions-table tr[data-permission=\"//guest\"]')",
    )


def samples_drawn(page) -> int:
    return int(page.evaluate("document.getElementById('rate-chart')?.dataset.samples || 0"))


def exercise(channel, queue: str, count: int):
    """Publishes `count` messages to `queue` and takes them back, for the rate chart."""
    for number in range(count):
        channel.basic_publish("", queue, f"rate sample {number}".encode())
    for _ in range(count):
        method, _, _ = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break


def test_overview_counts_connections_by_protocol_and_draws_rates(page):
    if not AMQP_URL:
        pytest.skip("needs MQBRIDGE_AMQP_URL for a connection to count")
    parameters = pika.URLParameters(AMQP_URL)
    parameters.client_properties = {"connection_name": "console-check"}
    connection = pika.BlockingConnection(parameters)
    try:
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        page.click('#tabs a[data-tab="overview"]')
        by_protocol = "document.getElementById('connections-by-protocol')?.textContent || ''"
        page.wait_for("the AMQP connection counted", f"({by_protocol}).includes('AMQP 0-9-1')")
        # Traffic that grows between samples, so the chart draws lines that move.
        for round_number in range(1, 5):
            drawn = samples_drawn(page)
            exercise(channel, queue, 25 * round_number)
            page.wait_for("a new rate sample", f"Number(document.getElementById('rate-chart')"
                          f".dataset.samples) > {drawn}")
        totals = page.evaluate("document.getElementById('object-totals').textContent")
        assert "Queues" in totals and "Exchanges" in totals
        published = page.evaluate("document.getElementById('message-totals').textContent")
        assert "Published" in published
        page.screenshot(SCREENSHOT)
        assert SCREENSHOT.stat().st_size > 0
        print(f"screenshot: {SCREENSHOT}")

        page.click('#tabs a[data-tab="connections"]')
        page.wait_for(
            "the AMQP connection listed with its name and user",
            "[...document.querySelectorAll('#connections-table tbody tr')]"
            ".some(row => row.textContent.includes('AMQP 0-9-1')"
            " && row.textContent.includes('console-check') && row.textContent.includes('guest'))",
        )
    finally:
        connection.close()
