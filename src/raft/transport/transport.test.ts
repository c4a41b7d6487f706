// Raft transport: the codec against hostile bytes, and a real fastify server with PeerTransport.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { Packr } from 'msgpackr';
import { request } from 'undici';
import { RaftError } from '../core/errors.ts';
import type { Message } from '../core/types.ts';
import { decodeMessages, encodeMessages } from './codec.ts';
import type { DecodeLimits } from './codec.ts';
import { PeerTransport } from './client.ts';
import { RAFT_MESSAGES_PATH, RAFT_STREAM_PATH, STREAM_CONTENT_TYPE, registerRaftServer } from './server.ts';
import type { RaftServerOptions } from './server.ts';

const LIMITS: DecodeLimits = { maxBytes: 1 << 20, maxMessages: 1000 };
const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const base = { from: 'n1', to: 'n2', term: 7 };

const everyType: Message[] = [
  { ...base, type: 'app', logTerm: 6, index: 10, commit: 9, entries: [
    { term: 6, index: 11, type: 'normal', data: bytes(0, 255, 1, 128) },
    { term: 7, index: 12, type: 'conf', data: bytes() },
    { term: 7, index: 13, type: 'normal', data: new Uint8Array(70_000).fill(0xc1) },
  ] },
  { ...base, type: 'app', logTerm: 0, index: 0, commit: 0, entries: [] },
  { ...base, type: 'appResp', index: 12, reject: true, hintIndex: 5, hintTerm: 3 },
  { ...base, type: 'vote', logTerm: 6, index: 12, transfer: false },
  { ...base, type: 'preVote', logTerm: 6, index: 12, transfer: true },
  { ...base, type: 'voteResp', reject: false },
  { ...base, type: 'preVoteResp', reject: true },
  { ...base, type: 'heartbeat', commit: 12, context: null },
  { ...base, type: 'heartbeat', commit: 12, context: 'read-1' },
  { ...base, type: 'heartbeatResp', context: 'read-1' },
  { ...base, type: 'heartbeatResp', context: null },
  { ...base, type: 'snap', snapshot: { meta: { index: 100, term: 6, conf: { voters: ['n1', 'n2', 'n3'], learners: ['n4'] } }, data: bytes(9, 8, 7) } },
  { ...base, type: 'readIndex', context: 'ctx' },
  { ...base, type: 'readIndexResp', index: 99, context: 'ctx' },
  { ...base, type: 'timeoutNow' },
  { ...base, type: 'transferLeader', target: 'n3', term: Number.MAX_SAFE_INTEGER },
];

/** The same without the 70 kB entry, for tests that decode a body thousands of times. */
const everyTypeSmall: Message[] = everyType.map((m) => (m.type === 'app' ? { ...m, entries: m.entries.slice(0, 2) } : m));

const raw = new Packr({ useRecords: false });
/** Encodes arbitrary values, for bodies our encoder would never produce. */
const encodeRaw = (v: unknown): Uint8Array => raw.pack(v);

function assertBad(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof RaftError, `expected RaftError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_BAD_MESSAGE');
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

/** A seeded PRNG (mulberry32) so a failing fuzz case can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('codec', () => {
  test('every message type survives a round trip', () => {
    const decoded = decodeMessages(encodeMessages(everyType), { maxBytes: 1 << 20, maxMessages: 100 });
    assert.deepEqual(decoded, everyType);
    const app = decoded[0];
    assert.ok(app.type === 'app');
    assert.equal(Object.getPrototypeOf(app.entries[0].data), Uint8Array.prototype, 'data is a plain Uint8Array copy');
  });

  test('an empty array is a valid, empty body', () => {
    assert.deepEqual(decodeMessages(encodeMessages([]), LIMITS), []);
  });

  test('unknown fields are stripped, the result has exactly the fields of the type', () => {
    const [m] = decodeMessages(encodeRaw([{ ...base, type: 'voteResp', reject: true, extra: { deep: [1, 2] }, constructor: 'x' }]), LIMITS);
    assert.deepEqual(Object.keys(m).sort(), ['from', 'reject', 'term', 'to', 'type']);
    const [hb] = decodeMessages(encodeRaw([{ ...base, type: 'timeoutNow', context: 'not for this type' }]), LIMITS);
    assert.deepEqual(hb, { ...base, type: 'timeoutNow' });
  });

  const vote = { ...base, type: 'vote', logTerm: 1, index: 1, transfer: false };
  const entry = (index: number): unknown => ({ term: 1, index, type: 'normal', data: bytes(1) });
  const rejects: [string, unknown, RegExp][] = [
    ['not an array', { ...vote }, /must be an array of messages/],
    ['a message that is not a map', [[1, 2]], /message 0: message must be a map/],
    ['unknown type', [{ ...vote, type: 'gossip' }], /message 0: field 'type'/],
    ['type from Object.prototype', [{ ...vote, type: 'toString' }], /field 'type'/],
    ['negative term', [{ ...vote, term: -1 }], /message 0: field 'term' must be a non-negative safe integer/],
    ['non-integer index', [vote, { ...vote, index: 1.5 }], /message 1: field 'index' must be a non-negative safe integer/],
    ['unsafe integer', [{ ...vote, index: 2 ** 60 }], /field 'index'/],
    ['string where a number is expected', [{ ...vote, logTerm: '5' }], /field 'logTerm'/],
    ['missing field', [{ type: 'voteResp', from: 'a', to: 'b', term: 1 }], /field 'reject' must be a boolean/],
    ['number where a boolean is expected', [{ ...vote, transfer: 1 }], /field 'transfer' must be a boolean/],
    ['empty from', [{ ...vote, from: '' }], /field 'from'/],
    ['over-long to', [{ ...vote, to: 'x'.repeat(129) }], /field 'to'/],
    ['entry indexes not consecutive', [{ ...base, type: 'app', logTerm: 1, index: 0, commit: 0, entries: [entry(1), entry(3)] }], /entry 1: index 3 does not follow 1/],
    ['entries not following index', [{ ...base, type: 'app', logTerm: 1, index: 4, commit: 0, entries: [entry(1)] }], /must be index \+ 1/],
    ['entry data not binary', [{ ...base, type: 'app', logTerm: 1, index: 0, commit: 0, entries: [{ term: 1, index: 1, type: 'normal', data: 'abc' }] }], /entry 0: field 'data' must be binary/],
    ['bad entry type', [{ ...base, type: 'app', logTerm: 1, index: 0, commit: 0, entries: [{ ...(entry(1) as object), type: 'weird' }] }], /entry 0: field 'type'/],
    ['entries not an array', [{ ...base, type: 'app', logTerm: 1, index: 0, commit: 0, entries: {} }], /field 'entries' must be an array/],
    ['context on heartbeat not a string', [{ ...base, type: 'heartbeat', commit: 1, context: 5 }], /field 'context' must be a string or null/],
    ['null context on readIndex', [{ ...base, type: 'readIndex', context: null }], /field 'context' must be a string/],
    ['transferLeader without target', [{ ...base, type: 'transferLeader' }], /field 'target'/],
    ['snapshot voters not strings', [{ ...base, type: 'snap', snapshot: { meta: { index: 1, term: 1, conf: { voters: [1], learners: [] } }, data: bytes() } }], /voters\[0\]/],
    ['snapshot without conf', [{ ...base, type: 'snap', snapshot: { meta: { index: 1, term: 1 }, data: bytes() } }], /field 'conf' must be a map/],
    ['a Set instead of a map', [new Set([1])], /message 0: message must be a map/],
    ['a Date instead of a number', [{ ...vote, term: new Date(0) }], /field 'term'/],
  ];
  for (const [name, value, pattern] of rejects) {
    test(`rejects ${name}`, () => assertBad(() => decodeMessages(encodeRaw(value), LIMITS), pattern));
  }

  test('rejects more messages than the limit', () => {
    const msgs = Array.from({ length: 11 }, () => vote);
    assertBad(() => decodeMessages(encodeRaw(msgs), { maxBytes: 1 << 20, maxMessages: 10 }), /11 messages exceed the limit of 10/);
  });

  test('rejects a body over the byte limit before decoding it', () => {
    const body = encodeMessages(everyType);
    assertBad(() => decodeMessages(body, { maxBytes: body.byteLength - 1, maxMessages: 100 }), /exceeds the limit/);
  });

  test('rejects truncated msgpack at every cut', () => {
    const body = encodeMessages(everyTypeSmall);
    for (let cut = 0; cut < body.byteLength; cut++) {
      assertBad(() => decodeMessages(body.subarray(0, cut), LIMITS));
    }
  });

  test('rejects trailing bytes after the array', () => {
    const body = encodeMessages([everyType[3]]);
    assertBad(() => decodeMessages(Buffer.concat([body, bytes(0xc0)]), LIMITS), /not valid msgpack/);
  });

  test('rejects deeply nested arrays and maps without overflowing', () => {
    const arrays = new Uint8Array(500_000).fill(0x91); // [[[[...]]]]
    arrays[arrays.length - 1] = 0x90;
    assertBad(() => decodeMessages(arrays, LIMITS), /not valid msgpack/);
    const maps = new Uint8Array(400_001);
    for (let i = 0; i < 400_000; i += 2) maps.set([0x81, 0xa0], i); // {"": {"": ...}}
    maps[400_000] = 0x80;
    assertBad(() => decodeMessages(Buffer.concat([bytes(0x91), maps]), LIMITS));
  });

  test('rejects huge declared lengths in a small body', () => {
    assertBad(() => decodeMessages(bytes(0xdd, 0xff, 0xff, 0xff, 0xff, 0x90), LIMITS)); // array32 of 4G items
    assertBad(() => decodeMessages(bytes(0x91, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x61), LIMITS)); // str32 of 4 GB
    assertBad(() => decodeMessages(bytes(0x91, 0xc6, 0xff, 0xff, 0xff, 0xff, 0x61), LIMITS)); // bin32 of 4 GB
  });

  test('random bytes only ever yield ERR_BAD_MESSAGE', () => {
    const rand = rng(42);
    const valid = encodeMessages(everyTypeSmall);
    for (let i = 0; i < 2000; i++) {
      let body: Uint8Array;
      if (i % 2 === 0) {
        body = new Uint8Array(Math.floor(rand() * 300));
        for (let j = 0; j < body.length; j++) body[j] = Math.floor(rand() * 256);
        if (i % 4 === 0 && body.length > 0) body[0] = 0x90 | (body[0] & 0x0f); // start as an array more often
      } else {
        // A valid body with a few bytes changed reaches much deeper into the validation.
        body = Uint8Array.from(valid);
        for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) body[Math.floor(rand() * body.length)] = Math.floor(rand() * 256);
      }
      try {
        decodeMessages(body, LIMITS);
      } catch (err) {
        assert.ok(err instanceof RaftError && err.code === 'ERR_BAD_MESSAGE', `case ${i}: threw ${String(err)}`);
      }
    }
  });
});

/** Polls until `cond` holds; the transport's work happens on the event loop, not in the call. */
async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const apps: FastifyInstance[] = [];
const transports: PeerTransport[] = [];
const rawServers: Server[] = [];
after(async () => {
  await Promise.all(transports.map((t) => t.close()));
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all(rawServers.map((s) => new Promise((r) => s.close(r))));
});

async function startNode(opts: RaftServerOptions, port = 0, setup: (app: FastifyInstance) => void = () => {}) {
  const app = Fastify({ logger: false });
  apps.push(app);
  setup(app);
  const server = registerRaftServer(app, opts);
  await app.listen({ host: '127.0.0.1', port });
  const { port: chosen } = app.server.address() as AddressInfo;
  return { app, stats: server.stats, port: chosen, url: `http://127.0.0.1:${chosen}` };
}

function newTransport(opts: ConstructorParameters<typeof PeerTransport>[0] = {}): PeerTransport {
  const t = new PeerTransport(opts);
  transports.push(t);
  return t;
}

function lengthPrefix(body: Uint8Array): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(body.byteLength, 0);
  return b;
}

const hb = (i: number, to = 'n2', from = 'n1'): Message => ({ type: 'heartbeat', from, to, term: 1, commit: i, context: null });

async function post(url: string, body: Uint8Array | string, contentType = 'application/msgpack') {
  const res = await request(url + RAFT_MESSAGES_PATH, { method: 'POST', headers: { 'content-type': contentType }, body });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? (JSON.parse(text) as { error: string; message: string }) : null };
}

describe('server and PeerTransport', () => {
  test('1000 messages arrive in order, batched into fewer requests', async () => {
    const got: number[] = [];
    let calls = 0;
    const node = await startNode({ localId: 'n2', handler: (msgs) => { calls++; for (const m of msgs) got.push((m as { commit: number }).commit); } });
    const t = newTransport();
    t.setPeers({ n2: node.url });
    // Sent over many ticks, so later messages pile up while a request is in flight.
    for (let i = 0; i < 1000; i++) {
      t.send([hb(i)]);
      if (i % 37 === 0) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => got.length === 1000 && t.stats().get('n2')?.sent === 1000, '1000 messages acknowledged');
    assert.deepEqual(got, Array.from({ length: 1000 }, (_, i) => i));
    assert.ok(calls < 1000, `expected batching, got ${calls} requests`);
    const s = t.stats().get('n2');
    assert.ok(s);
    assert.equal(s.sent, 1000);
    assert.equal(s.failed, 0);
    assert.equal(s.dropped, 0);
    assert.ok(s.lastContact !== null && s.lastContact <= performance.now());
    assert.equal(node.stats.received, 1000);
    assert.equal(node.stats.rejected, 0);
  });

  test('bad bodies get 400 and are counted; the server keeps serving', async () => {
    const got: Message[] = [];
    const node = await startNode({
      localId: 'n2',
      handler: (msgs) => {
        if (msgs.some((m) => m.term === 666)) throw new RaftError('ERR_BAD_MESSAGE', 'term of the beast');
        if (msgs.some((m) => m.term === 500)) throw new Error('handler bug');
        got.push(...msgs);
      },
      isKnownSender: (from) => from !== 'stranger',
      limits: { maxBytes: 4096, maxMessages: 50 },
    });
    const cases: [string, Uint8Array | string, number, RegExp][] = [
      ['random bytes', bytes(0xc1, 0x00, 0xff), 400, /not valid msgpack/],
      ['empty body', bytes(), 400, /not valid msgpack/],
      ['not an array', encodeRaw({ a: 1 }), 400, /array of messages/],
      ['negative term', encodeRaw([{ ...hb(1), term: -3 }]), 400, /field 'term'/],
      ['wrong recipient', encodeMessages([hb(1), hb(2, 'n3')]), 400, /message 1: addressed to 'n3', this node is 'n2'/],
      ['unknown sender', encodeMessages([hb(1, 'n2', 'stranger')]), 400, /unknown sender 'stranger'/],
      ['refused by the handler', encodeMessages([{ ...hb(1), term: 666 }]), 400, /term of the beast/],
      ['too many messages', encodeMessages(Array.from({ length: 51 }, (_, i) => hb(i))), 400, /exceed the limit/],
      ['too large', new Uint8Array(5000), 413, /.+/],
    ];
    let rejected = 0;
    for (const [name, body, status, pattern] of cases) {
      const res = await post(node.url, body);
      assert.equal(res.status, status, name);
      assert.equal(res.json?.error, 'ERR_BAD_MESSAGE', name);
      assert.match(res.json?.message ?? '', pattern, name);
      assert.equal(node.stats.rejected, ++rejected, name);
    }
    const json = await post(node.url, '[]', 'application/json');
    assert.equal(json.status, 415);
    const bug = await post(node.url, encodeMessages([{ ...hb(1), term: 500 }]));
    assert.equal(bug.status, 500);
    assert.equal(node.stats.rejected, rejected + 2);
    assert.equal(got.length, 0, 'nothing from a refused body reaches the handler');

    const ok = await post(node.url, encodeMessages([hb(1), hb(2)]));
    assert.equal(ok.status, 204);
    assert.deepEqual(got, [hb(1), hb(2)]);
    assert.equal(node.stats.received, 2);
  });

  test('a peer that is down: send does not throw, failure is reported, delivery resumes when it is up', async () => {
    // Take a free port, then free it: nothing listens there until the peer "comes up".
    const probe = await startNode({ localId: 'n2', handler: () => {} });
    const port = probe.port;
    await probe.app.close();

    const unreachable: string[] = [];
    const t = newTransport({ timeoutMs: 300, onUnreachable: (p) => unreachable.push(p) });
    t.setPeers(new Map([['n2', `http://127.0.0.1:${port}`]]));
    assert.doesNotThrow(() => t.send([hb(1), hb(2)]));
    await waitFor(() => (t.stats().get('n2')?.failed ?? 0) >= 1, 'a failed request');
    assert.ok(unreachable.includes('n2'));
    assert.match(t.stats().get('n2')?.lastError ?? '', /ECONNREFUSED|connect/i);
    assert.equal(t.stats().get('n2')?.sent, 0);

    const got: number[] = [];
    await startNode({ localId: 'n2', handler: (msgs) => got.push(...msgs.map((m) => (m as { commit: number }).commit)) }, port);
    t.send([hb(3), hb(4)]);
    await waitFor(() => got.length === 2 && t.stats().get('n2')?.sent === 2, 'delivery after the peer came up');
    assert.deepEqual(got, [3, 4], 'the lost batch is not resent; Raft retransmits');
  });

  test('a peer that accepts but never answers times out and the queue moves on', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => { sockets.push(s); s.on('error', () => {}); });
    rawServers.push(silent);
    silent.on('close', () => sockets.forEach((s) => s.destroy()));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as AddressInfo;
    const unreachable: string[] = [];
    const t = newTransport({ timeoutMs: 150, onUnreachable: (p) => unreachable.push(p) });
    t.setPeers({ n2: `http://127.0.0.1:${port}` });
    t.send([hb(1)]);
    await waitFor(() => (t.stats().get('n2')?.failed ?? 0) >= 1, 'the stream to time out', 3000);
    t.send([hb(2)]); // a new stream, which times out too
    await waitFor(() => (t.stats().get('n2')?.failed ?? 0) >= 2, 'the second stream to time out', 3000);
    assert.deepEqual(unreachable, ['n2', 'n2']);
    assert.match(t.stats().get('n2')?.lastError ?? '', /timeout/i);
    sockets.forEach((s) => s.destroy());
  });

  test('the queue is bounded: the oldest messages are dropped first', async () => {
    const got: number[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => { release = r; });
    // The server holds the stream before reading it, so the first frame stays unacknowledged and,
    // with a window of one frame, everything sent after it queues at the client.
    const node = await startNode({ localId: 'n2', handler: (msgs) => got.push(...msgs.map((m) => (m as { commit: number }).commit)) }, 0,
      (app) => app.addHook('onRequest', async () => { await gate; }));
    const t = newTransport({ maxQueueMessages: 10, maxInflightFrames: 1 });
    t.setPeers({ n2: node.url });
    t.send([hb(0)]);
    await waitFor(() => t.stats().get('n2')?.inFlight === true, 'first request in flight');
    t.send(Array.from({ length: 30 }, (_, i) => hb(i + 1)));
    assert.equal(t.stats().get('n2')?.dropped, 20);
    assert.equal(t.stats().get('n2')?.queued, 10);
    release();
    await waitFor(() => got.length === 11, 'the kept messages');
    assert.deepEqual(got, [0, ...Array.from({ length: 10 }, (_, i) => i + 21)]);
  });

  test('a bad frame on a stream ends that stream and is counted; the server keeps serving', async () => {
    const got: number[] = [];
    const node = await startNode({ localId: 'n2', handler: (msgs) => got.push(...msgs.map((m) => (m as { commit: number }).commit)), limits: { maxBytes: 4096, maxMessages: 50 } });
    for (const [name, frame] of [
      ['garbage body', Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from([0xc1, 0xc1, 0xc1])])],
      ['oversized frame', Buffer.from([0, 1, 0, 0])],
      ['wrong recipient', Buffer.concat([lengthPrefix(encodeMessages([hb(1, 'n9')])), encodeMessages([hb(1, 'n9')])])],
    ] as const) {
      const res = await request(node.url + RAFT_STREAM_PATH, { method: 'POST', headers: { 'content-type': STREAM_CONTENT_TYPE }, body: frame });
      await res.body.text().catch(() => '');
      await waitFor(() => node.stats.rejected >= 1, name);
    }
    assert.equal(node.stats.rejected, 3);
    assert.equal(got.length, 0);
    const t = newTransport();
    t.setPeers({ n2: node.url });
    t.send([hb(7)]);
    await waitFor(() => got.length === 1, 'delivery on a good stream');
    assert.deepEqual(got, [7]);
  });

  test('messages to unknown peers are dropped and counted', () => {
    const t = newTransport();
    t.setPeers({});
    t.send([hb(1, 'nobody')]);
    assert.equal(t.unknownPeerDrops, 1);
  });
});
