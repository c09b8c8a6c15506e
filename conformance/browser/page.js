// Runs in headless Chromium. The query string says what to do:
//   mode=mqtt|stomp  ws=ws://host:port  listen=<topic>  echo=<topic>  count=<n>
// MQTT topics are MQTT topic names ("conf/a"); STOMP uses /topic/<the same with dots>.
// It POSTs /ready once subscribed, then /result with the received bodies once it has `count`
// of them and has published each back to `echo` (or with an error).
"use strict";

const params = new URLSearchParams(location.search);
const mode = params.get("mode");
const wsUrl = params.get("ws");
const listen = params.get("listen");
const echo = params.get("echo");
const count = Number(params.get("count"));
const received = [];

function log(text) {
  document.getElementById("log").textContent += text + "\n";
}

function post(path, body) {
  return fetch(path, { method: "POST", body: JSON.stringify(body) });
}

function fail(error) {
  log("error: " + error);
  post("/result", { error: String(error), received });
}

function runMqtt() {
  const client = mqtt.connect(wsUrl + "/mqtt", {
    clientId: "browser-" + Math.random().toString(16).slice(2),
    reconnectPeriod: 0,
  });
  client.on("error", fail);
  client.on("connect", () => {
    client.subscribe(listen, { qos: 1 }, (error) => {
      if (error) return fail(error);
      post("/ready", { mode });
    });
  });
  client.on("message", (topic, payload) => {
    received.push(new TextDecoder().decode(payload));
    if (received.length < count) return;
    let pending = received.length;
    for (const body of received) {
      client.publish(echo, body, { qos: 1 }, (error) => {
        if (error) return fail(error);
        pending -= 1;
        if (pending === 0) post("/result", { received });
      });
    }
  });
}

function runStomp() {
  const destination = (topic) => "/topic/" + topic.split("/").join(".");
  const client = new StompJs.Client({
    brokerURL: wsUrl + "/ws",
    connectHeaders: { login: "guest", passcode: "guest", host: "/" },
    reconnectDelay: 0,
  });
  client.onStompError = (frame) => fail(frame.headers.message);
  client.onWebSocketError = () => fail("websocket error");
  client.onConnect = () => {
    client.watchForReceipt("subscribed", () => post("/ready", { mode }));
    client.subscribe(destination(listen), (message) => {
      received.push(message.body);
      if (received.length < count) return;
      received.forEach((body, index) => {
        const receipt = "echo-" + index;
        if (index === received.length - 1) {
          client.watchForReceipt(receipt, () => post("/result", { received }));
        }
        client.publish({ destination: destination(echo), body, headers: { receipt } });
      });
    }, { receipt: "subscribed" });
  };
  client.activate();
}

window.addEventListener("load", () => {
  try {
    if (mode === "mqtt") runMqtt();
    else if (mode === "stomp") runStomp();
    else fail("unknown mode " + mode);
  } catch (error) {
    fail(error);
  }
});
