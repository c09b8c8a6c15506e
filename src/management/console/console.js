// mqbridge's web console: client-side tabs over the management API (/api/...).
//
// The credentials typed into the login form are kept in sessionStorage (gone when the tab
// closes; "Log out" clears them) and sent as HTTP basic auth with every request. Requests use
// `credentials: "omit"`, so a refused login does not make the browser show its own password
// dialog. Pages are built with DOM calls, never from HTML strings, so names of queues and
// users are shown as text whatever they contain.
"use strict";

/** How often the open page asks the API again, and the overview samples message totals. */
const REFRESH_MS = 2000;
/** Samples the rate chart keeps: two minutes at one sample per refresh. */
const CHART_SAMPLES_MAX = 60;
/** Bytes of each message body a "Get messages" shows; the API truncates past this. */
const GET_TRUNCATE_BYTES = 50000;
const CREDENTIALS_KEY = "mqbridge.console.credentials";

// ---- Talking to the API ----

function credentials() {
  const stored = sessionStorage.getItem(CREDENTIALS_KEY);
  return stored ? JSON.parse(stored) : null;
}

/** Base64 of UTF-8, as basic auth wants (btoa alone takes Latin-1 only). */
function base64(text) {
  const bytes = new TextEncoder().encode(text);
  return btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));
}

/** A refused or failed request: the status and RabbitMQ's {error, reason} body. */
class ApiError extends Error {
  constructor(status, body) {
    super(body && body.reason ? `${body.reason} (HTTP ${status})` : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }

  /** 401 "not_authorized" is a refused login; "not_authorised" a refused action. */
  get loginRefused() {
    return this.status === 401 && this.body.error === "not_authorized";
  }
}

async function api(method, path, body, login = credentials()) {
  const headers = { Accept: "application/json" };
  if (login) {
    headers.Authorization = "Basic " + base64(`${login.user}:${login.password}`);
  }
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch (_) {
    parsed = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, parsed);
  }
  return parsed;
}

/** A path segment: vhost `/` becomes `%2F`, as the API expects. */
const seg = encodeURIComponent;

// ---- Building the DOM ----

/** An element with attributes (`on*` become listeners) and children (strings become text). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

/** Fills `tbody` with one row per item; `row(item)` answers [attributes, cells]. */
function fillRows(tbody, items, row, empty) {
  tbody.replaceChildren();
  if (items.length === 0) {
    const columns = tbody.closest("table").querySelectorAll("th").length;
    tbody.append(el("tr", {}, el("td", { colspan: columns, class: "note" }, empty)));
    return;
  }
  for (const item of items) {
    const [attributes, cells] = row(item);
    tbody.append(el("tr", attributes, cells.map((cell) => (cell instanceof Node ? cell : el("td", {}, cell)))));
  }
}

/** Columns whose cells are counts, aligned right. */
const NUMERIC_HEADINGS = new Set(["Ready", "Unacked", "Consumers", "Total"]);

function table(id, headings) {
  const cells = headings.map((h) => el("th", { class: NUMERIC_HEADINGS.has(h) ? "number" : null }, h));
  return el("table", { id }, el("thead", {}, el("tr", {}, cells)), el("tbody"));
}

const number = (value) => el("td", { class: "number" }, value ?? 0);
const yesNo = (value) => (value ? "yes" : "no");

function showError(error) {
  const status = document.getElementById("status");
  if (error && error.loginRefused) {
    logout("Your login was refused; log in again.");
    return;
  }
  status.textContent = error ? String(error.message || error) : "";
  status.hidden = !error;
}

// ---- Pages: each mounts into the view and answers a refresh() the timer calls ----

const pages = {
  overview: mountOverview,
  queues: mountQueues,
  queue: mountQueue,
  exchanges: mountExchanges,
  exchange: mountExchange,
  connections: mountConnections,
  users: mountUsers,
};

/** Message totals the chart turns into rates; kept across visits to the overview. */
const samples = [];

function mountOverview(view) {
  const totals = el("div", { class: "cards" });
  const canvas = el("canvas", { id: "rate-chart", width: 900, height: 220 });
  view.append(
    el("h1", { text: "Overview" }),
    el("p", { id: "overview-node", class: "note" }),
    totals,
    el("h2", { text: "Message rates" }),
    el("div", { class: "chart" },
      el("div", { class: "legend" },
        el("span", { class: "published", text: "published / s" }),
        el("span", { class: "delivered", text: "delivered / s" })),
      canvas),
  );
  return async () => {
    const [overview, connections] = await Promise.all([
      api("GET", "/api/overview"),
      api("GET", "/api/connections"),
    ]);
    const stats = overview.message_stats || {};
    samples.push({ time: Date.now(), published: stats.publish || 0, delivered: stats.deliver_get || 0 });
    if (samples.length > CHART_SAMPLES_MAX + 1) samples.shift();
    document.getElementById("overview-node").textContent =
      `${overview.product_name} ${overview.product_version} on ${overview.node}`;
    totals.replaceChildren(...overviewCards(overview, connections));
    drawRates(canvas, rates(samples));
  };
}

function card(id, title, entries) {
  return el("div", { class: "card", id },
    el("h2", { text: title }),
    el("dl", {}, entries.map(([name, value]) => [el("dt", {}, name), el("dd", {}, value ?? 0)])));
}

function overviewCards(overview, connections) {
  const byProtocol = new Map();
  for (const connection of connections) {
    byProtocol.set(connection.protocol, (byProtocol.get(connection.protocol) || 0) + 1);
  }
  const perProtocol = [...byProtocol.entries()].sort();
  const objects = overview.object_totals || {};
  const queued = overview.queue_totals || {};
  const stats = overview.message_stats || {};
  return [
    card("connections-by-protocol", "Connections by protocol",
      perProtocol.length ? perProtocol : [["(none)", 0]]),
    card("object-totals", "Objects", [
      ["Connections", objects.connections], ["Exchanges", objects.exchanges],
      ["Queues", objects.queues], ["Consumers", objects.consumers]]),
    card("queue-totals", "Queued messages", [
      ["Total", queued.messages], ["Ready", queued.messages_ready],
      ["Unacknowledged", queued.messages_unacknowledged]]),
    card("message-totals", "Messages since start", [
      ["Published", stats.publish], ["Delivered", stats.deliver_get], ["Acknowledged", stats.ack]]),
  ];
}

/** Per-second rates between consecutive samples of monotonic totals. */
function rates(list) {
  const out = [];
  for (let i = 1; i < list.length; i++) {
    const seconds = Math.max((list[i].time - list[i - 1].time) / 1000, 0.001);
    out.push({
      published: Math.max(list[i].published - list[i - 1].published, 0) / seconds,
      delivered: Math.max(list[i].delivered - list[i - 1].delivered, 0) / seconds,
    });
  }
  return out;
}

function drawRates(canvas, points) {
  canvas.dataset.samples = String(points.length);
  const width = (canvas.width = canvas.clientWidth || canvas.width);
  const height = canvas.height;
  const context = canvas.getContext("2d");
  const style = getComputedStyle(document.documentElement);
  const margin = { left: 48, right: 8, top: 8, bottom: 20 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const top = Math.max(1, ...points.map((p) => Math.max(p.published, p.delivered)));
  const scale = niceCeiling(top);
  context.clearRect(0, 0, width, height);
  context.font = "11px system-ui, sans-serif";
  context.fillStyle = style.getPropertyValue("--muted");
  context.strokeStyle = style.getPropertyValue("--line");
  for (let step = 0; step <= 4; step++) {
    const y = margin.top + plotHeight - (plotHeight * step) / 4;
    context.beginPath();
    context.moveTo(margin.left, y);
    context.lineTo(width - margin.right, y);
    context.stroke();
    context.fillText(formatRate((scale * step) / 4), 4, y + 4);
  }
  context.fillText(`last ${(CHART_SAMPLES_MAX * REFRESH_MS) / 60000} min`, margin.left, height - 4);
  const x = (i) => margin.left + (plotWidth * (i + CHART_SAMPLES_MAX - points.length)) / (CHART_SAMPLES_MAX - 1);
  const y = (value) => margin.top + plotHeight - (plotHeight * value) / scale;
  for (const series of ["published", "delivered"]) {
    context.strokeStyle = style.getPropertyValue(`--${series}`);
    context.lineWidth = 2;
    context.beginPath();
    points.forEach((point, i) => (i ? context.lineTo(x(i), y(point[series])) : context.moveTo(x(i), y(point[series]))));
    context.stroke();
    context.lineWidth = 1;
  }
}

/** 1, 2 or 5 times a power of ten, at least `value`: round numbers on the axis. */
function niceCeiling(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= value);
}

function formatRate(value) {
  return value >= 10 || value === 0 ? value.toFixed(0) : value.toFixed(1);
}

function mountQueues(view) {
  const list = table("queues-table", ["Virtual host", "Name", "Ready", "Unacked", "Consumers", "Total"]);
  view.append(el("h1", { text: "Queues" }), list,
    el("p", { class: "note", text: "Click a queue to see its bindings, publish to it or get its messages." }));
  return async () => {
    const queues = await api("GET", "/api/queues");
    queues.sort((a, b) => a.vhost.localeCompare(b.vhost) || a.name.localeCompare(b.name));
    fillRows(list.tBodies[0], queues, (queue) => [
      {
        class: "link",
        "data-queue": queue.name,
        "data-vhost": queue.vhost,
        onclick: () => (location.hash = `#/queues/${seg(queue.vhost)}/${seg(queue.name)}`),
      },
      [queue.vhost, queue.name, number(queue.messages_ready),
        number(queue.messages_unacknowledged), number(queue.consumers), number(queue.messages)],
    ], "No queues.");
  };
}

/** A form that publishes `body` to `exchange`; `routingKey()` gives the key. */
function publishForm(vhost, exchange, routingKey, keyInput, onPublished) {
  const body = el("textarea", { id: "publish-body", placeholder: "Message body" });
  const persistent = el("input", { type: "checkbox", id: "publish-persistent" });
  const result = el("span", { id: "publish-result", class: "note" });
  const form = el("form", {
    id: "publish-form",
    onsubmit: async (event) => {
      event.preventDefault();
      const path = `/api/exchanges/${seg(vhost)}/${seg(exchange || "amq.default")}/publish`;
      const message = {
        routing_key: routingKey(),
        payload: body.value,
        payload_encoding: "string",
        properties: persistent.checked ? { delivery_mode: 2 } : {},
      };
      try {
        const answer = await api("POST", path, message);
        result.textContent = answer.routed ? "Published." : "Published, but no queue took it (not routed).";
        await onPublished();
      } catch (error) {
        result.textContent = `Not published: ${error.message}`;
      }
    },
  },
  keyInput,
  el("label", { class: "wide" }, "Body", body),
  el("label", {}, el("span", {}, persistent, " persistent (delivery mode 2)")),
  el("button", { type: "submit", id: "publish-submit", text: "Publish message" }),
  result);
  return form;
}

function mountQueue(view, [vhost, name]) {
  const counts = el("dl", {},
    el("dt", {}, "Ready"), el("dd", { id: "queue-ready" }, "…"),
    el("dt", {}, "Unacked"), el("dd", { id: "queue-unacked" }, "…"),
    el("dt", {}, "Consumers"), el("dd", { id: "queue-consumers" }, "…"));
  const bindings = table("queue-bindings", ["Source exchange", "Routing key"]);
  const refresh = async () => {
    const [queue, bound] = await Promise.all([
      api("GET", `/api/queues/${seg(vhost)}/${seg(name)}`),
      api("GET", `/api/queues/${seg(vhost)}/${seg(name)}/bindings`),
    ]);
    document.getElementById("queue-ready").textContent = queue.messages_ready;
    document.getElementById("queue-unacked").textContent = queue.messages_unacknowledged;
    document.getElementById("queue-consumers").textContent = queue.consumers;
    fillRows(bindings.tBodies[0], bound, (binding) => [
      {}, [binding.source === "" ? "(AMQP default)" : binding.source, binding.routing_key],
    ], "No bindings.");
  };
  view.append(
    el("p", {}, el("a", { href: "#/queues", text: "← Queues" })),
    el("h1", { "data-queue": name }, `Queue ${name}`),
    el("p", { class: "note" }, `Virtual host ${vhost}`),
    el("div", { class: "cards" }, el("div", { class: "card" }, el("h2", { text: "Messages" }), counts)),
    el("h2", { text: "Bindings" }), bindings,
    el("h2", { text: "Publish message" }),
    el("p", { class: "note" }, "Sent through the default exchange with the queue's name as routing key."),
    publishForm(vhost, "", () => name, null, refresh),
    el("h2", { text: "Get messages" }),
    getForm(vhost, name, refresh),
  );
  return refresh;
}

function getForm(vhost, name, onTaken) {
  const count = el("input", { id: "get-count", type: "number", min: 1, value: 1 });
  const results = el("ul", { id: "get-results", class: "messages" });
  return el("div", {},
    el("form", {
      id: "get-form",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const messages = await api("POST", `/api/queues/${seg(vhost)}/${seg(name)}/get`, {
            count: Number(count.value) || 1,
            ackmode: "ack_requeue_true",
            encoding: "auto",
            truncate: GET_TRUNCATE_BYTES,
          });
          results.replaceChildren(...describeMessages(messages));
          await onTaken();
        } catch (error) {
          results.replaceChildren(el("li", { class: "error" }, error.message));
        }
      },
    },
    el("label", {}, "Messages", count),
    el("button", { type: "submit", id: "get-submit", text: "Get messages" }),
    el("span", { class: "note", text: "Looked at and requeued (ack mode ack_requeue_true)." })),
    results);
}

function describeMessages(messages) {
  if (messages.length === 0) return [el("li", { class: "note" }, "The queue is empty.")];
  return messages.map((message, i) => el("li", { "data-message": i },
    el("div", { class: "note" },
      `Exchange ${message.exchange === "" ? "(AMQP default)" : message.exchange}, routing key ${message.routing_key}, `,
      `${message.payload_bytes} bytes${message.redelivered ? ", redelivered" : ""}`,
      message.payload_encoding === "base64" ? " (binary, shown as base64)" : ""),
    el("pre", { class: "payload" }, message.payload)));
}

function mountExchanges(view) {
  const list = table("exchanges-table", ["Virtual host", "Name", "Type", "Durable", "Auto-delete", "Internal"]);
  view.append(
    el("h1", { text: "Exchanges and topics" }),
    el("p", { class: "note" },
      "MQTT and STOMP topics are routing keys on amq.topic (MQTT's a/b is a.b there); ",
      "SNS topics are exchanges of their own. Click an exchange to see where it routes and to publish to it."),
    list);
  return async () => {
    const exchanges = await api("GET", "/api/exchanges");
    exchanges.sort((a, b) => a.vhost.localeCompare(b.vhost) || a.name.localeCompare(b.name));
    fillRows(list.tBodies[0], exchanges, (exchange) => [
      {
        class: "link",
        "data-exchange": exchange.name,
        "data-vhost": exchange.vhost,
        onclick: () => (location.hash = `#/exchanges/${seg(exchange.vhost)}/${seg(exchange.name || "amq.default")}`),
      },
      [exchange.vhost, exchange.name === "" ? "(AMQP default)" : exchange.name, exchange.type,
        yesNo(exchange.durable), yesNo(exchange.auto_delete), yesNo(exchange.internal)],
    ], "No exchanges.");
  };
}

function mountExchange(view, [vhost, name]) {
  const bindings = table("exchange-bindings", ["Destination", "Kind", "Routing key"]);
  const key = el("input", { id: "publish-routing-key", placeholder: "e.g. sensors.kitchen" });
  view.append(
    el("p", {}, el("a", { href: "#/exchanges", text: "← Exchanges" })),
    el("h1", { "data-exchange": name }, `Exchange ${name}`),
    el("p", { class: "note" }, `Virtual host ${vhost}`),
    el("h2", { text: "Bindings from here" }), bindings,
    el("h2", { text: "Publish message" }),
    publishForm(vhost, name, () => key.value, el("label", {}, "Routing key", key), async () => {}),
  );
  return async () => {
    const bound = await api("GET", `/api/exchanges/${seg(vhost)}/${seg(name)}/bindings/source`);
    fillRows(bindings.tBodies[0], bound, (binding) => [
      {}, [binding.destination, binding.destination_type, binding.routing_key],
    ], name === "amq.default" ? "Routes to every queue by its name." : "No bindings.");
  };
}

/** The client's name for itself: an MQTT client id or an AMQP connection name. */
function clientId(connection) {
  const properties = connection.client_properties ?? {};
  return properties.client_id ?? properties.connection_name ?? "";
}

function mountConnections(view) {
  const list = table("connections-table",
    ["Protocol", "Client id", "User", "Virtual host", "Peer", "Listener", "TLS", "Connected since"]);
  view.append(el("h1", { text: "Connections" }), list);
  return async () => {
    const connections = await api("GET", "/api/connections");
    connections.sort((a, b) => a.connected_at - b.connected_at);
    fillRows(list.tBodies[0], connections, (connection) => [
      { "data-connection": connection.name },
      [connection.protocol, clientId(connection), connection.user ?? "", connection.vhost ?? "",
        `${connection.peer_host}:${connection.peer_port}`, connection.listener,
        yesNo(connection.ssl), new Date(connection.connected_at).toLocaleString()],
    ], "No connections.");
  };
}

function mountUsers(view) {
  const users = table("users-table", ["Name", "Tags", ""]);
  const permissions = table("permissions-table", ["User", "Virtual host", "Configure", "Write", "Read"]);
  const notice = el("p", { id: "users-refused", class: "note", hidden: true });
  const content = el("div", {},
    el("h2", { text: "Users" }), users, addUserForm(() => refresh()),
    el("h2", { text: "Permissions" }), permissions, permissionForm(() => refresh()));
  view.append(el("h1", { text: "Users and permissions" }), notice, content);
  const refresh = async () => {
    let listed;
    try {
      listed = await Promise.all([api("GET", "/api/users"), api("GET", "/api/permissions")]);
    } catch (error) {
      if (error.status !== 401 || error.loginRefused) throw error;
      notice.textContent = "Only users tagged administrator may see and change users and permissions; " +
        `${credentials().user} is not one. Ask an administrator, or log in as one.`;
      notice.hidden = false;
      content.hidden = true;
      return;
    }
    const [userList, permissionList] = listed;
    fillRows(users.tBodies[0], userList, (user) => [
      { "data-user": user.name },
      [user.name, (user.tags || []).join(", "),
        el("td", {}, el("button", {
          type: "button",
          class: "secondary",
          "data-delete-user": user.name,
          onclick: () => deleteUser(user.name, refresh),
        }, "Delete"))],
    ], "No users.");
    fillRows(permissions.tBodies[0], permissionList, (p) => [
      { "data-permission": `${p.vhost}/${p.user}` },
      [p.user, p.vhost, p.configure, p.write, p.read],
    ], "No permissions.");
  };
  return refresh;
}

async function deleteUser(name, refresh) {
  if (!confirm(`Delete user ${name}?`)) return;
  try {
    await api("DELETE", `/api/users/${seg(name)}`);
    await refresh();
  } catch (error) {
    showError(error);
  }
}

/** A form of labelled inputs; `submit(values)` runs on submit, then `done()`. */
function valuesForm(id, fields, button, submit, done) {
  const inputs = {};
  const result = el("span", { class: "note", id: `${id}-result` });
  const labels = fields.map(([name, label, attributes]) => {
    inputs[name] = el("input", { id: `${id}-${name}`, ...attributes });
    return el("label", {}, label, inputs[name]);
  });
  return el("form", {
    id,
    onsubmit: async (event) => {
      event.preventDefault();
      const values = Object.fromEntries(Object.entries(inputs).map(([name, input]) => [name, input.value]));
      try {
        await submit(values);
        result.textContent = "Saved.";
        await done();
      } catch (error) {
        result.textContent = `Not saved: ${error.message}`;
      }
    },
  }, labels, el("button", { type: "submit", id: `${id}-submit` }, button), result);
}

function addUserForm(done) {
  return valuesForm("user-form", [
    ["name", "Username", { required: true }],
    ["password", "Password", { type: "password", required: true, autocomplete: "new-password" }],
    ["tags", "Tags (comma-separated)", { placeholder: "management" }],
  ], "Add or update user", (values) => api("PUT", `/api/users/${seg(values.name)}`, {
    password: values.password,
    tags: values.tags,
  }), done);
}

function permissionForm(done) {
  return valuesForm("permission-form", [
    ["user", "User", { required: true }],
    ["vhost", "Virtual host", { value: "/", required: true }],
    ["configure", "Configure", { value: ".*" }],
    ["write", "Write", { value: ".*" }],
    ["read", "Read", { value: ".*" }],
  ], "Set permissions", (values) => api("PUT", `/api/permissions/${seg(values.vhost)}/${seg(values.user)}`, {
    configure: values.configure,
    write: values.write,
    read: values.read,
  }), done);
}

// ---- Routing, refreshing, logging in and out ----

let current = { refresh: null, timer: null, generation: 0 };

/** `#/queues/%2F/orders` -> the queue page with ["/", "orders"]. */
function route() {
  let parts;
  try {
    parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  } catch (_) {
    parts = []; // A malformed hand-typed address shows the overview.
  }
  const [tab = "overview", ...rest] = parts;
  if (tab === "queues" && rest.length === 2) return { page: "queue", tab, args: rest };
  if (tab === "exchanges" && rest.length === 2) return { page: "exchange", tab, args: rest };
  return pages[tab] ? { page: tab, tab, args: [] } : { page: "overview", tab: "overview", args: [] };
}

function show() {
  clearInterval(current.timer);
  if (!credentials()) return;
  const { page, tab, args } = route();
  for (const link of document.querySelectorAll("#tabs a")) {
    link.classList.toggle("active", link.dataset.tab === tab);
  }
  const view = document.getElementById("view");
  view.replaceChildren();
  view.dataset.page = page;
  showError(null);
  const generation = ++current.generation;
  const refresh = pages[page](view, args);
  // A slow answer for a page already left is dropped rather than drawn over the new one.
  const tick = async () => {
    try {
      if (generation === current.generation) await refresh();
    } catch (error) {
      if (generation === current.generation) showError(error);
    }
  };
  current.timer = setInterval(tick, REFRESH_MS);
  tick();
}

function showSignedIn(user) {
  document.getElementById("login").hidden = true;
  document.getElementById("view").hidden = false;
  document.getElementById("tabs").hidden = false;
  document.getElementById("session").hidden = false;
  document.getElementById("session-user").textContent = user;
  show();
}

function logout(message = "") {
  sessionStorage.removeItem(CREDENTIALS_KEY);
  clearInterval(current.timer);
  current.generation++;
  document.getElementById("view").replaceChildren();
  document.getElementById("view").hidden = true;
  document.getElementById("tabs").hidden = true;
  document.getElementById("session").hidden = true;
  document.getElementById("status").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message;
  document.getElementById("login-password").value = "";
}

async function login(event) {
  event.preventDefault();
  const login = {
    user: document.getElementById("login-user").value,
    password: document.getElementById("login-password").value,
  };
  const error = document.getElementById("login-error");
  error.textContent = "Logging in…";
  try {
    await api("GET", "/api/whoami", undefined, login);
  } catch (refused) {
    error.textContent = refused.status === 401
      ? `Login refused (${refused.body.reason || "wrong username or password"}).`
      : `The broker did not answer: ${refused.message}`;
    document.getElementById("login-password").value = "";
    return;
  }
  sessionStorage.setItem(CREDENTIALS_KEY, JSON.stringify(login));
  error.textContent = "";
  showSignedIn(login.user);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-form").addEventListener("submit", login);
  document.getElementById("logout").addEventListener("click", () => logout());
  window.addEventListener("hashchange", show);
  const stored = credentials();
  if (stored) showSignedIn(stored.user);
  else logout();
});
