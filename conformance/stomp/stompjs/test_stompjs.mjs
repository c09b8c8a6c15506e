// STOMP conformance through @stomp/stompjs 7 over a plain TCP socket (@stomp/tcp-wrapper).
//
// RabbitMQ's STOMP plugin is the reference: every case uses only what it documents
// (destinations, ack modes, receipts, transactions, temp queues), logs in as guest to vhost "/",
// uses its own queue and topic names and bounds every wait. Needs MQBRIDGE_STOMP_URL
// (conformance/run sets it). Runs with node's built-in test runner: `npm test` in this folder.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';

import { Client, Versions } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';

const stompUrl = new URL(process.env.MQBRIDGE_STOMP_URL ?? 'stomp://127.0.0.1:61613');
const HOST = stompUrl.hostname || '127.0.0.1';
const PORT = Number(stompUrl.port || 61613);
const WAIT_MS = 5000; // The longest any case waits for one expected frame.
const QUIET_MS = 500; // How long "nothing (else) arrives" is watched for.
const CASE_TIMEOUT_MS = 20000; // A whole case, a backstop behind the bounded waits.
const bounded = { timeout: CASE_TIMEOUT_MS };

function unique(prefix) {
  return `conf-js-${prefix}-${randomUUID().slice(0, 12)}`;
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

function describe(frame) {
  if (!frame || !frame.command) return frame;
  return `${frame.command} ${JSON.stringify(frame.headers)} ${frame.body}`;
}

// One stompjs client over TCP, with the frames it got outside subscriptions; closed by the case.
class Session {
  static async open(t, { login = 'guest', passcode = 'guest', versions } = {}) {
    const session = new Session(login, passcode, versions);
    t.after(() => session.close());
    session.connected = await within(session.connecting, 'CONNECTED frame');
    return session;
  }

  constructor(login, passcode, versions) {
    this.errors = new Inbox('ERROR frame');
    this.closes = new Inbox('closed connection');
    this.unhandled = new Inbox('message outside a subscription');
    this.client = new Client({
      webSocketFactory: () => new TCPWrapper(HOST, PORT),
      connectHeaders: { login, passcode, host: '/' },
      reconnectDelay: 0,
      ...(versions ? { stompVersions: new Versions(versions) } : {}),
    });
    this.connecting = new Promise((resolve, reject) => {
      this.client.onConnect = resolve;
      this.client.onStompError = (frame) => {
        this.errors.push(frame);
        reject(new Error(`ERROR frame: ${describe(frame)}`));
      };
      this.client.onWebSocketClose = (event) => {
        this.closes.push(event);
        reject(new Error('connection closed before CONNECTED'));
      };
    });
    this.connecting.catch(() => {}); // A case that expects a refusal awaits it itself.
    this.client.onUnhandledMessage = (message) => this.unhandled.push(message);
    this.client.activate();
  }

  // Resolves with the RECEIPT frame for `receipt`; register before the frame is sent.
  receipt(receipt) {
    const arrival = new Promise((resolve) => this.client.watchForReceipt(receipt, resolve));
    return within(arrival, `RECEIPT ${receipt}`);
  }

  async subscribe(destination, headers = {}) {
    const inbox = new Inbox(`MESSAGE on ${destination}`);
    const receipt = unique('subscribed');
    const receipted = this.receipt(receipt);
    this.client.subscribe(destination, (message) => inbox.push(message), { ...headers, receipt });
    await receipted;
    return inbox;
  }

  async sendConfirmed(destination, params = {}) {
    const receipt = unique('sent');
    const receipted = this.receipt(receipt);
    this.client.publish({ destination, ...params, headers: { ...params.headers, receipt } });
    return receipted;
  }

  async settle(message, verb, headers = {}) {
    const receipt = unique(verb);
    const receipted = this.receipt(receipt);
    message[verb]({ ...headers, receipt });
    return receipted;
  }

  async close() {
    await within(this.client.deactivate(), 'disconnect').catch(() => this.client.forceDisconnect());
  }
}

test('CONNECT with login and passcode negotiates 1.2, or the best offered', bounded, async (t) => {
  const session = await Session.open(t);
  assert.equal(session.connected.command, 'CONNECTED');
  assert.equal(session.connected.headers.version, '1.2');
  assert.equal(session.client.connectedVersion, '1.2');
  assert.match(session.connected.headers['heart-beat'] ?? '', /^\d+,\d+$/);
  const older = await Session.open(t, { versions: ['1.0', '1.1'] });
  assert.equal(older.connected.headers.version, '1.1');
});

// The closing of the connection is not awaited: RabbitMQ closes it 10 s after the ERROR.
test('a wrong passcode gets an ERROR frame instead of CONNECTED', bounded, async (t) => {
  const session = new Session('guest', `wrong-${randomUUID()}`);
  t.after(() => session.close());
  await assert.rejects(within(session.connecting, 'refusal'), /ERROR frame/);
  const error = await session.errors.next();
  assert.ok(error.headers.message, 'the ERROR frame has a message header');
  assert.equal(session.client.connected, false);
});

test('/queue/ with client-individual acks: ACK removes, NACK redelivers', bounded, async (t) => {
  const session = await Session.open(t);
  const destination = `/queue/${unique('individual')}`;
  for (const body of ['a', 'b']) await session.sendConfirmed(destination, { body });
  const inbox = await session.subscribe(destination, { id: 's1', ack: 'client-individual' });
  const first = await inbox.next();
  const second = await inbox.next();
  assert.deepEqual([first.body, second.body], ['a', 'b']);
  for (const message of [first, second]) {
    assert.equal(message.headers.destination, destination);
    assert.equal(message.headers.subscription, 's1');
    assert.ok(message.headers['message-id'], 'MESSAGE has a message-id');
    assert.ok(message.headers.ack, 'a 1.2 MESSAGE in a client ack mode has an ack header');
    assert.notEqual(message.headers.redelivered, 'true');
  }
  await session.settle(first, 'ack');
  await session.settle(second, 'nack');
  const again = await inbox.next();
  assert.equal(again.body, 'b');
  assert.equal(again.headers.redelivered, 'true');
  await inbox.quiet();
  await session.settle(again, 'ack');
  await session.close();

  const later = await Session.open(t);
  const rest = await later.subscribe(destination, { id: 's2' });
  await rest.quiet();
});

test('/topic/ reaches both subscribers and no other key', bounded, async (t) => {
  const topic = `/topic/${unique('fan')}`;
  const [first, second, bystander, publisher] = await Promise.all(
    [1, 2, 3, 4].map(() => Session.open(t)),
  );
  const inboxes = [await first.subscribe(`${topic}.news`), await second.subscribe(`${topic}.news`)];
  const other = await bystander.subscribe(`${topic}.sport`);
  await publisher.sendConfirmed(`${topic}.news`, { body: 'extra' });
  for (const inbox of inboxes) {
    const message = await inbox.next();
    assert.equal(message.body, 'extra');
    assert.equal(message.headers.destination, `${topic}.news`);
  }
  await Promise.all([...inboxes, other].map((inbox) => inbox.quiet()));
});

test('a SEND with a receipt gets its RECEIPT once the message is stored', bounded, async (t) => {
  const session = await Session.open(t);
  const destination = `/queue/${unique('receipt')}`;
  const receipt = unique('mine');
  const receipted = session.receipt(receipt);
  session.client.publish({ destination, body: 'kept', headers: { receipt } });
  const frame = await receipted;
  assert.equal(frame.command, 'RECEIPT');
  assert.equal(frame.headers['receipt-id'], receipt);
  await session.close();

  const reader = await Session.open(t);
  const inbox = await reader.subscribe(destination);
  assert.equal((await inbox.next()).body, 'kept');
});

test('a transaction: ABORT drops its SENDs, COMMIT delivers them in order', bounded, async (t) => {
  const session = await Session.open(t);
  const destination = `/queue/${unique('tx')}`;
  const inbox = await session.subscribe(destination);
  const aborted = session.client.begin();
  session.client.publish({ destination, body: 'never', headers: { transaction: aborted.id } });
  aborted.abort();
  const committed = session.client.begin();
  for (const body of ['one', 'two']) {
    session.client.publish({ destination, body, headers: { transaction: committed.id } });
  }
  // A SEND outside the transaction overtakes the held ones; an unheld or leaked one comes first.
  await session.sendConfirmed(destination, { body: 'outside' });
  assert.equal((await inbox.next()).body, 'outside');
  committed.commit();
  await session.sendConfirmed(destination, { body: 'after' });
  const bodies = [];
  for (let i = 0; i < 3; i += 1) bodies.push((await inbox.next()).body);
  assert.deepEqual(bodies, ['one', 'two', 'after']);
  await inbox.quiet();
});

test('custom headers and a reply through /temp-queue/ round-trip', bounded, async (t) => {
  const [server, requester] = await Promise.all([Session.open(t), Session.open(t)]);
  const service = `/queue/${unique('service')}`;
  const requests = await server.subscribe(service, { id: 'requests' });
  const custom = {
    'correlation-id': `corr-${randomUUID()}`,
    'x-custom': 'value',
    // ":" and "\" travel escaped in 1.2 headers. No "\" right before "c", "n" or "r": stompjs
    // 7.5.0 unescapes one sequence kind at a time, so a correct \\c on the wire (an escaped
    // backslash, then "c") would come back as \: (FrameImpl.hdrValueUnEscape).
    tenant: 'a:b\\d',
    'x-unicode': 'grüße',
  };
  await requester.sendConfirmed(service, {
    body: 'ping',
    headers: { ...custom, 'reply-to': '/temp-queue/answers' },
  });
  const request = await requests.next();
  assert.equal(request.body, 'ping');
  for (const [name, value] of Object.entries(custom)) {
    assert.equal(request.headers[name], value, name);
  }
  const replyTo = request.headers['reply-to'];
  assert.match(replyTo ?? '', /^\/reply-queue\/./);

  await server.sendConfirmed(replyTo, {
    body: 'pong',
    headers: { 'correlation-id': request.headers['correlation-id'], 'x-answer': '42' },
  });
  const reply = await requester.unhandled.next();
  assert.equal(reply.body, 'pong');
  assert.equal(reply.headers.subscription, '/temp-queue/answers');
  assert.equal(reply.headers['correlation-id'], custom['correlation-id']);
  assert.equal(reply.headers['x-answer'], '42');
});

test('a binary body with NUL bytes round-trips with its content-length', bounded, async (t) => {
  const session = await Session.open(t);
  const destination = `/queue/${unique('binary')}`;
  const inbox = await session.subscribe(destination);
  const body = new Uint8Array(256 * 40 + 1); // Every byte value, from NUL on, and a NUL last.
  for (let i = 0; i < body.length - 1; i += 1) body[i] = i % 256;
  await session.sendConfirmed(destination, {
    binaryBody: body,
    headers: { 'content-type': 'application/octet-stream' },
  });
  const message = await inbox.next();
  assert.equal(message.headers['content-length'], String(body.length));
  assert.equal(message.headers['content-type'], 'application/octet-stream');
  assert.equal(message.binaryBody.length, body.length);
  const same = Buffer.from(message.binaryBody).equals(Buffer.from(body));
  assert.ok(same, 'the body came back byte for byte');
});

test('SUBSCRIBE to /amq/queue/ of a missing queue: ERROR, nothing created', bounded, async (t) => {
  const name = unique('missing');
  for (let attempt = 1; attempt <= 2; attempt += 1) {
    const session = await Session.open(t);
    const inbox = new Inbox('MESSAGE');
    session.client.subscribe(`/amq/queue/${name}`, (message) => inbox.push(message), {
      receipt: unique('never'),
    });
    const error = await session.errors.next();
    assert.equal(error.command, 'ERROR');
    assert.ok(error.headers.message, 'the ERROR frame has a message header');
    const text = `${error.headers.message}\n${error.body}`;
    assert.ok(text.includes(name), 'the ERROR names the queue');
    await session.closes.next();
    await inbox.quiet(0);
  }
});
