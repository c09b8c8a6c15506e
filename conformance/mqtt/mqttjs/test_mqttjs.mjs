// MQTT 3.1.1 and 5 conformance through MQTT.js 5 over TCP, and MQTT 5 <-> STOMP request/response
// through MQTT.js and @stomp/stompjs (over @stomp/tcp-wrapper), by ARCHITECTURE.md's mapping table
// ("One message, every protocol", "Reply addresses").
//
// The MQTT-only cases use only what MQTT 3.1.1 and 5 define, so Mosquitto is their reference; the
// cross-protocol cases check mqbridge's table. Each case uses its own topics, queues and client
// ids and bounds every wait. Needs MQBRIDGE_MQTT_URL and, for the cross-protocol cases,
// MQBRIDGE_STOMP_URL (conformance/run sets both). Runs with node's built-in test runner: `npm test`
// in this folder.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';

import { Client as StompClient } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import mqtt from 'mqtt';

const MQTT_URL = process.env.MQBRIDGE_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const stompUrl = process.env.MQBRIDGE_STOMP_URL ? new URL(process.env.MQBRIDGE_STOMP_URL) : null;
const WAIT_MS = 5000; // The longest any case waits for one expected packet or frame.
const QUIET_MS = 500; // How long "nothing (else) arrives" is watched for.
const CASE_TIMEOUT_MS = 20000; // A whole case, a backstop behind the bounded waits.
const EXPIRY_SLACK_SECONDS = 5; // A Message Expiry Interval goes out less the time it waited.
const bounded = { timeout: CASE_TIMEOUT_MS };
const crossProtocol = {
  ...bounded,
  skip: stompUrl ? false : 'MQBRIDGE_STOMP_URL is not set',
};
const VERSIONS = [
  { protocolVersion: 4, label: 'MQTT 3.1.1' },
  { protocolVersion: 5, label: 'MQTT 5' },
];

function unique(prefix) {
  return `mqttjs-${prefix}-${randomUUID().slice(0, 12)}`;
}

// Rejects after `ms` with a message naming what was awaited.
function within(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Items in arrival order; `next` waits (bounded) for one, `quiet` asserts none arrives.
class Inbox {
  constructor(what) {
    this.what = what;
    this.items = [];
    this.waiters = [];
  }

  push(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  next(ms = WAIT_MS) {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    let waiter;
    const arrival = new Promise((resolve) => {
      waiter = resolve;
      this.waiters.push(resolve);
    });
    return within(arrival, this.what, ms).catch((error) => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      throw error;
    });
  }

  async quiet(ms = QUIET_MS) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    assert.deepEqual(this.items.map(describe), [], `unexpected ${this.what}`);
  }
}

function describe(item) {
  if (item?.command) return `${item.command} ${JSON.stringify(item.headers)} ${item.body}`;
  if (item?.packet) return `${item.topic} ${JSON.stringify(item.payload.toString())}`;
  return item;
}

// One MQTT.js client; every PUBLISH it gets lands in `messages`. Ended by the case.
async function mqttOpen(t, protocolVersion, options = {}) {
  const client = await within(
    mqtt.connectAsync(MQTT_URL, {
      protocolVersion,
      clientId: unique('client'),
      clean: true,
      reconnectPeriod: 0, // A dropped connection stays dropped: the will case relies on it.
      connectTimeout: WAIT_MS,
      ...options,
    }),
    `CONNACK (MQTT protocol version ${protocolVersion})`,
  );
  t.after(() => within(client.endAsync(), 'MQTT disconnect').catch(() => client.end(true)));
  client.messages = new Inbox(`PUBLISH to ${client.options.clientId}`);
  client.on('message', (topic, payload, packet) => {
    client.messages.push({ topic, payload, packet });
  });
  // Without a listener an 'error' event would throw outside the case; a failure shows instead
  // as the packet that does not arrive.
  client.on('error', () => {});
  return client;
}

// Subscribes and asserts the SUBACK granted the QoS asked for.
async function subscribed(client, filter, qos, options = {}) {
  const granted = await within(client.subscribeAsync(filter, { qos, ...options }), 'SUBACK');
  assert.deepEqual(granted.map((grant) => [grant.topic, grant.qos]), [[filter, qos]], 'SUBACK');
}

function published(client, topic, payload, options = {}) {
  return within(client.publishAsync(topic, payload, options), `acknowledgement of ${topic}`);
}

// One stompjs client over TCP; messages outside a subscription (temp queues) land in `unhandled`.
async function stompOpen(t) {
  const client = new StompClient({
    webSocketFactory: () => new TCPWrapper(stompUrl.hostname || '127.0.0.1', Number(stompUrl.port)),
    connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
    reconnectDelay: 0,
  });
  const connected = new Promise((resolve, reject) => {
    client.onConnect = resolve;
    client.onStompError = (frame) => reject(new Error(`ERROR frame: ${describe(frame)}`));
    client.onWebSocketClose = () => reject(new Error('connection closed before CONNECTED'));
  });
  client.unhandled = new Inbox('STOMP MESSAGE outside a subscription');
  client.onUnhandledMessage = (message) => client.unhandled.push(message);
  client.activate();
  t.after(() => {
    return within(client.deactivate(), 'STOMP disconnect').catch(() => client.forceDisconnect());
  });
  await within(connected, 'CONNECTED frame');
  return client;
}

function stompReceipt(client) {
  const receipt = unique('receipt');
  const arrival = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
  return { receipt, receipted: within(arrival, `RECEIPT ${receipt}`) };
}

async function stompSubscribe(client, destination) {
  const inbox = new Inbox(`STOMP MESSAGE on ${destination}`);
  const { receipt, receipted } = stompReceipt(client);
  client.subscribe(destination, (message) => inbox.push(message), { receipt });
  await receipted;
  return inbox;
}

async function stompSend(client, destination, body, headers = {}) {
  const { receipt, receipted } = stompReceipt(client);
  client.publish({ destination, body, headers: { ...headers, receipt } });
  await receipted;
}

function everyByte() {
  return Buffer.from(Array.from({ length: 256 }, (_, i) => i));
}

for (const { protocolVersion, label } of VERSIONS) {
  for (const qos of [0, 1, 2]) {
    const name = `${label}: QoS ${qos} publish reaches a QoS ${qos} subscriber once`;
    test(name, bounded, async (t) => {
      const base = unique(`qos${qos}`);
      const subscriber = await mqttOpen(t, protocolVersion);
      const publisher = await mqttOpen(t, protocolVersion);
      await subscribed(subscriber, `${base}/data`, qos);
      await published(publisher, `${base}/data`, everyByte(), { qos });
      const { topic, payload, packet } = await subscriber.messages.next();
      assert.equal(topic, `${base}/data`);
      assert.ok(payload.equals(everyByte()), 'the payload came byte for byte');
      assert.equal(packet.qos, qos);
      assert.equal(packet.retain, false);
      assert.equal(packet.dup, false);
      await subscriber.messages.quiet();
    });
  }

  const retainedName = `${label}: a retained message reaches a later wildcard subscriber, `
    + 'an empty one clears it';
  test(retainedName, bounded, async (t) => {
    const base = unique('retained');
    const publisher = await mqttOpen(t, protocolVersion);
    await published(publisher, `${base}/status/a`, 'online', { qos: 1, retain: true });

    const later = await mqttOpen(t, protocolVersion);
    await subscribed(later, `${base}/status/+`, 1);
    const first = await later.messages.next();
    assert.deepEqual([first.topic, first.payload.toString(), first.packet.retain],
      [`${base}/status/a`, 'online', true]);

    // A live subscriber gets the empty message too, not flagged retained [MQTT-3.3.1-9].
    await published(publisher, `${base}/status/a`, '', { qos: 1, retain: true });
    const cleared = await later.messages.next();
    assert.deepEqual([cleared.payload.length, cleared.packet.retain], [0, false]);

    const last = await mqttOpen(t, protocolVersion);
    await subscribed(last, `${base}/#`, 1);
    await published(publisher, `${base}/status/a`, 'marker', { qos: 1 });
    const marker = await last.messages.next();
    assert.deepEqual([marker.payload.toString(), marker.packet.retain], ['marker', false],
      'a retained message survived the clear');
  });

  const willName = `${label}: the will is published when the client's socket is destroyed`;
  test(willName, bounded, async (t) => {
    const base = unique('will');
    const watcher = await mqttOpen(t, protocolVersion);
    await subscribed(watcher, `${base}/will`, 1);
    const will = { topic: `${base}/will`, payload: Buffer.from('gone'), qos: 1, retain: false };
    if (protocolVersion === 5) will.properties = { contentType: 'text/plain' };
    const dying = await mqttOpen(t, protocolVersion, { will });
    const closed = new Promise((resolve) => dying.once('close', resolve));
    dying.stream.destroy(); // No DISCONNECT: the broker sees the connection drop.
    await within(closed, 'close of the destroyed socket');
    const { topic, payload, packet } = await watcher.messages.next();
    assert.deepEqual([topic, payload.toString(), packet.qos], [`${base}/will`, 'gone', 1]);
    if (protocolVersion === 5) assert.equal(packet.properties?.contentType, 'text/plain');
    await watcher.messages.quiet();
  });
}

test('MQTT 5: publish properties reach the subscriber unchanged', bounded, async (t) => {
  const base = unique('props');
  const subscriber = await mqttOpen(t, 5);
  const publisher = await mqttOpen(t, 5);
  await subscribed(subscriber, `${base}/props`, 1);
  const sent = {
    userProperties: { colour: 'blue', tag: ['first', 'second'] }, // A repeated name, in order.
    contentType: 'application/json',
    correlationData: Buffer.from([0x00, 0xff, 0x63, 0x6f, 0x72, 0x72]), // Not UTF-8.
    responseTopic: `${base}/reply`,
    messageExpiryInterval: 120,
    payloadFormatIndicator: true,
  };
  await published(publisher, `${base}/props`, '{"a": 1}', { qos: 1, properties: sent });
  const { payload, packet } = await subscriber.messages.next();
  const got = packet.properties ?? {};
  assert.equal(payload.toString(), '{"a": 1}');
  // Exactly the sent pairs: the table's x-mqtt-client-id and x-mqtt-username are not sent out.
  assert.deepEqual({ ...got.userProperties }, sent.userProperties);
  assert.equal(got.contentType, sent.contentType);
  assert.ok(Buffer.isBuffer(got.correlationData), 'Correlation Data arrives');
  assert.equal(got.correlationData.toString('hex'), sent.correlationData.toString('hex'));
  assert.equal(got.responseTopic, sent.responseTopic);
  assert.equal(got.payloadFormatIndicator, true);
  const expiry = got.messageExpiryInterval;
  assert.ok(expiry > 120 - EXPIRY_SLACK_SECONDS && expiry <= 120, `expiry interval ${expiry}`);
});

test('MQTT 5: a subscription identifier comes with its subscription only', bounded, async (t) => {
  const base = unique('subid');
  const subscriber = await mqttOpen(t, 5);
  const publisher = await mqttOpen(t, 5);
  await subscribed(subscriber, `${base}/+/id`, 1, { properties: { subscriptionIdentifier: 42 } });
  await subscribed(subscriber, `${base}/plain`, 1);
  await published(publisher, `${base}/x/id`, 'identified', { qos: 1 });
  const identified = await subscriber.messages.next();
  assert.equal(identified.payload.toString(), 'identified');
  assert.equal(identified.packet.properties?.subscriptionIdentifier, 42);
  await published(publisher, `${base}/plain`, 'plain', { qos: 1 });
  const plain = await subscriber.messages.next();
  assert.equal(plain.payload.toString(), 'plain');
  assert.equal(plain.packet.properties?.subscriptionIdentifier, undefined);
});

test('MQTT 5: no-local keeps a client\'s own publishes from it', bounded, async (t) => {
  const topic = `${unique('nolocal')}/chat`;
  const [local, other] = await Promise.all([mqttOpen(t, 5), mqttOpen(t, 5)]);
  await subscribed(local, topic, 1, { nl: true });
  await subscribed(other, topic, 1);
  await published(local, topic, 'own', { qos: 1 });
  assert.equal((await other.messages.next()).payload.toString(), 'own', 'the publish was routed');
  // Had "own" reached local's session, it would come before this later message.
  await published(other, topic, 'from-other', { qos: 1 });
  assert.equal((await local.messages.next()).payload.toString(), 'from-other');
  assert.equal((await other.messages.next()).payload.toString(), 'from-other');
  await local.messages.quiet();
});

const mqttAsks = 'MQTT 5 requester, STOMP responder: Response Topic is reply-to /topic/<key>';
test(mqttAsks, crossProtocol, async (t) => {
  const base = unique('mqtt-asks');
  const requester = await mqttOpen(t, 5);
  const responder = await stompOpen(t);
  const requests = await stompSubscribe(responder, `/topic/${base}.request`);
  await subscribed(requester, `${base}/reply`, 1);
  const correlation = `corr-${randomUUID()}`;
  await published(requester, `${base}/request`, 'ping', {
    qos: 1,
    properties: { responseTopic: `${base}/reply`, correlationData: Buffer.from(correlation) },
  });

  const request = await requests.next();
  assert.equal(request.body, 'ping');
  assert.equal(request.headers['reply-to'], `/topic/${base}.reply`);
  assert.equal(request.headers['correlation-id'], correlation);
  await stompSend(responder, request.headers['reply-to'], 'pong', {
    'correlation-id': request.headers['correlation-id'],
  });

  const reply = await requester.messages.next();
  assert.deepEqual([reply.topic, reply.payload.toString()], [`${base}/reply`, 'pong']);
  assert.equal(reply.packet.properties?.correlationData?.toString(), correlation);
});

const stompAsks = 'STOMP requester, MQTT 5 responder: /temp-queue/ is Response Topic $queue/<name>';
test(stompAsks, crossProtocol, async (t) => {
  const base = unique('stomp-asks');
  const requester = await stompOpen(t);
  const responder = await mqttOpen(t, 5);
  await subscribed(responder, `${base}/service`, 1);
  const correlation = `corr-${randomUUID()}`;
  await stompSend(requester, `/topic/${base}.service`, 'ping', {
    'reply-to': '/temp-queue/x',
    'correlation-id': correlation,
  });

  const { payload, packet } = await responder.messages.next();
  assert.equal(payload.toString(), 'ping');
  const responseTopic = packet.properties?.responseTopic;
  assert.match(responseTopic ?? '', /^\$queue\/[^/#+]+$/, 'Response Topic names the temp queue');
  assert.equal(packet.properties?.correlationData?.toString(), correlation);
  await published(responder, responseTopic, 'pong', {
    qos: 1,
    properties: { correlationData: packet.properties.correlationData },
  });

  const reply = await requester.unhandled.next();
  assert.equal(reply.body, 'pong');
  assert.equal(reply.headers.subscription, '/temp-queue/x');
  assert.equal(reply.headers['correlation-id'], correlation);
});

const toQueue = 'MQTT 5 publish to $queue/<q> reaches a STOMP subscriber on /queue/<q>';
test(toQueue, crossProtocol, async (t) => {
  const queue = unique('queue');
  const consumer = await stompOpen(t);
  const messages = await stompSubscribe(consumer, `/queue/${queue}`); // Declares the queue.
  const publisher = await mqttOpen(t, 5);
  const properties = { contentType: 'application/octet-stream' };
  await published(publisher, `$queue/${queue}`, Buffer.from('transient'), { qos: 0, properties });
  await published(publisher, `$queue/${queue}`, everyByte(), { qos: 1, properties });

  const transient = await messages.next();
  assert.equal(transient.body, 'transient');
  assert.ok([undefined, 'false'].includes(transient.headers.persistent), 'QoS 0 is transient');
  const persistent = await messages.next();
  assert.ok(Buffer.from(persistent.binaryBody).equals(everyByte()), 'the body came byte for byte');
  assert.equal(persistent.headers.persistent, 'true', 'QoS 1 is persistent');
  for (const message of [transient, persistent]) {
    assert.equal(message.headers['content-type'], 'application/octet-stream');
  }
  await messages.quiet();
});
