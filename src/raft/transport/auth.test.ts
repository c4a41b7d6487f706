// Proof of membership on the Raft port: the signing scheme by itself, then a real Raft port
// (fastify + installRaftAuth + the message routes) talked to by members, strangers and replayers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { request } from 'undici';
import type { Message } from '../core/types.ts';
import { AUTH_HEADER, AuthError, EPOCH_HEADER, RaftAuth, STREAM_BODY } from './auth.ts';
import type { AuthRefusal } from './auth.ts';
import { installRaftAuth } from './auth-hooks.ts';
import { raftRequest } from './auth-request.ts';
import { PeerTransport } from './client.ts';
import { encodeMessages } from './codec.ts';
import { MSGPACK_CONTENT_TYPE, RAFT_MESSAGES_PATH, registerRaftServer } from './server.ts';

const SECRET = 'a-shared-secret-of-some-length';
const member = (id: string, opts: { secret?: string | null; scope?: string; now?: () => number } = {}): RaftAuth =>
  new RaftAuth({ secret: opts.secret === undefined ? SECRET : opts.secret, scope: opts.scope ?? 'demo', self: { id, incarnation: `inc-${id}` }, epochMs: 1000, ...(opts.now ? { now: opts.now } : {}) });
const never = (): boolean => false;

function refusedFor(reason: AuthRefusal): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof AuthError, `expected AuthError, got ${String(err)}`);
    assert.equal(err.reason, reason, err.message);
    return true;
  };
}

/** Signs as `client` for `server`, having learned its epoch as a first answer would teach it. */
function signedFor(client: RaftAuth, server: RaftAuth, path = '/raft/v1/messages', body: Buffer | null = Buffer.from('x')): string {
  client.learn('http://s', { [EPOCH_HEADER]: server.epoch() });
  return client.sign('http://s', 'POST', path, body)!.header;
}

describe('the signing scheme', () => {
  test('a member signs, the receiver verifies once; a second use of the same request is a replay', () => {
    const server = member('b');
    const header = signedFor(member('a'), server);
    const peer = server.verify('POST', '/raft/v1/messages', header, never);
    assert.deepEqual([peer.id, peer.incarnation], ['a', 'inc-a']);
    server.checkBody(peer, peer.body);
    assert.throws(() => server.verify('POST', '/raft/v1/messages', header, never), refusedFor('replayed'));
  });

  test('no header, garbage, another secret, another scope, another path: each refused and counted', () => {
    const server = member('b');
    assert.throws(() => server.verify('POST', '/p', undefined, never), refusedFor('missing'));
    assert.throws(() => server.verify('POST', '/p', 'v1;nonsense', never), refusedFor('malformed'));
    assert.throws(() => server.verify('POST', '/p', 'v2;a=b', never), refusedFor('malformed'));
    assert.throws(() => server.verify('POST', '/p', 'x'.repeat(5000), never), refusedFor('malformed'));
    assert.throws(() => server.verify('POST', '/raft/v1/messages', signedFor(member('a', { secret: 'another-secret-entirely' }), server), never), refusedFor('signature'));
    assert.throws(() => server.verify('POST', '/raft/v1/messages', signedFor(member('a', { scope: 'other-cluster' }), server), never), (err: unknown) => {
      assert.ok(err instanceof AuthError && err.reason === 'scope');
      assert.match(err.message, /belongs to cluster "other-cluster", not "demo"/);
      return true;
    });
    assert.throws(() => server.verify('POST', '/raft/v1/propose', signedFor(member('a'), server, '/raft/v1/messages'), never), refusedFor('signature'));
    assert.throws(() => server.verify('GET', '/raft/v1/messages', signedFor(member('a'), server), never), refusedFor('signature'));
    assert.equal(server.stats.refused, 8);
    assert.equal(server.stats.accepted, 0);
    assert.deepEqual(server.stats.refusedBy, { missing: 1, malformed: 3, signature: 3, scope: 1 });
  });

  test('a tampered field or body is refused', () => {
    const server = member('b');
    const header = signedFor(member('a'), server);
    assert.throws(() => server.verify('POST', '/raft/v1/messages', header.replace('id=a', 'id=c'), never), refusedFor('signature'));
    const peer = server.verify('POST', '/raft/v1/messages', header, never);
    assert.throws(() => server.checkBody(peer, 'another-digest'), refusedFor('body'));
  });

  test('freshness comes from epochs on the receiver clock: none yet, current, previous, expired', () => {
    let now = 0;
    const server = member('b', { now: () => now });
    const client = member('a');
    // Never heard of the server: signs for no epoch and is told which one to use.
    assert.throws(() => server.verify('POST', '/p', client.sign('http://s', 'POST', '/p', null)!.header, never), refusedFor('epoch'));
    client.learn('http://s', { [EPOCH_HEADER]: server.epoch() });
    const early = client.sign('http://s', 'POST', '/p', null)!.header;
    now = 1500; // one rotation: the epoch signed for is now the previous one, still good
    server.verify('POST', '/p', early, never);
    const late = client.sign('http://s', 'POST', '/p', null)!.header;
    now = 2600; // two rotations: gone
    assert.throws(() => server.verify('POST', '/p', late, never), refusedFor('epoch'));
  });

  test('a removed incarnation is refused with 403', () => {
    const server = member('b');
    const header = signedFor(member('a'), server);
    assert.throws(
      () => server.verify('POST', '/raft/v1/messages', header, (id, inc) => id === 'a' && inc === 'inc-a'),
      (err: unknown) => err instanceof AuthError && err.reason === 'removed' && err.status === 403 && err.code === 'ERR_REMOVED',
    );
  });

  test('stream frames: accepted in order, refused when altered, dropped or reordered', () => {
    const a = member('a');
    const sign = a.frameSigner('nonce-1');
    const frames = [Buffer.from('one'), Buffer.from('two'), Buffer.from('three')];
    const macs = frames.map((f) => sign(f));
    const inOrder = a.frameVerifier('nonce-1');
    frames.forEach((f, i) => inOrder(f, macs[i]!));
    assert.throws(() => a.frameVerifier('nonce-1')(Buffer.from('onE'), macs[0]!), refusedFor('frame'));
    const skipping = a.frameVerifier('nonce-1');
    skipping(frames[0]!, macs[0]!);
    assert.throws(() => skipping(frames[2]!, macs[2]!), refusedFor('frame'));
    assert.throws(() => a.frameVerifier('nonce-2')(frames[0]!, macs[0]!), refusedFor('frame'), 'another stream’s key');
  });

  test('without a secret nothing is signed', () => {
    assert.equal(member('a', { secret: null }).sign('http://s', 'POST', '/p', STREAM_BODY), null);
  });
});

describe('a Raft port behind the gate', () => {
  let app: FastifyInstance;
  let url = '';
  const serverAuth = member('b');
  const received: Message[] = [];
  const heartbeat = (from: string): Message => ({ type: 'heartbeat', from, to: 'b', term: 3, commit: 0, context: null });

  before(async () => {
    app = Fastify({ logger: false });
    installRaftAuth(app, serverAuth, { isRemoved: (id, inc) => id === 'gone' && inc === 'inc-gone', logger: pino({ level: 'silent' }) });
    registerRaftServer(app, { localId: 'b', handler: (msgs) => received.push(...msgs), auth: serverAuth });
    app.get('/v1/status', async () => ({ ok: true }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  after(() => app.close());

  test('a member is refused once for want of the epoch, then served', async () => {
    const a = member('a');
    const res = await raftRequest(a, `${url}/v1/status`, { timeoutMs: 2000 });
    assert.equal(res.status, 200);
    assert.ok(typeof res.headers[EPOCH_HEADER] === 'string');
    assert.equal(serverAuth.stats.refusedBy.epoch, 1, 'the first try, answered with the epoch');
  });

  test('unsigned requests, other secrets and replays get 401 and change nothing', async () => {
    const before = received.length;
    const body = Buffer.from(encodeMessages([heartbeat('a')]));
    const unsigned = await request(`${url}${RAFT_MESSAGES_PATH}`, { method: 'POST', headers: { 'content-type': MSGPACK_CONTENT_TYPE }, body });
    assert.equal(unsigned.statusCode, 401);
    assert.match(await unsigned.body.text(), /no x-conclave-auth header/);

    const stranger = await raftRequest(member('a', { secret: 'not-the-cluster-secret' }), `${url}${RAFT_MESSAGES_PATH}`, { method: 'POST', contentType: MSGPACK_CONTENT_TYPE, body, timeoutMs: 2000 });
    assert.equal(stranger.status, 401);

    // A member's request, captured and sent again byte for byte.
    const a = member('a');
    await raftRequest(a, `${url}/v1/status`, { timeoutMs: 2000 }); // learns the epoch
    const header = a.sign(new URL(url).origin, 'POST', RAFT_MESSAGES_PATH, body)!.header;
    const send = () => request(`${url}${RAFT_MESSAGES_PATH}`, { method: 'POST', headers: { 'content-type': MSGPACK_CONTENT_TYPE, [AUTH_HEADER]: header }, body });
    assert.equal((await send()).statusCode, 204);
    const replay = await send();
    assert.equal(replay.statusCode, 401);
    assert.match(await replay.body.text(), /replayed/);
    assert.equal(received.length, before + 1, 'only the genuine request was delivered');

    // A signed header with another body.
    const header2 = a.sign(new URL(url).origin, 'POST', RAFT_MESSAGES_PATH, body)!.header;
    const forged = await request(`${url}${RAFT_MESSAGES_PATH}`, { method: 'POST', headers: { 'content-type': MSGPACK_CONTENT_TYPE, [AUTH_HEADER]: header2 }, body: Buffer.from(encodeMessages([heartbeat('a'), heartbeat('a')])) });
    assert.equal(forged.statusCode, 401);
    assert.equal(received.length, before + 1);
  });

  test('a member may not speak for another, and a removed incarnation gets 403', async () => {
    const a = member('a');
    const res = await raftRequest(a, `${url}${RAFT_MESSAGES_PATH}`, { method: 'POST', contentType: MSGPACK_CONTENT_TYPE, body: Buffer.from(encodeMessages([heartbeat('c')])), timeoutMs: 2000 });
    assert.equal(res.status, 400);
    assert.match(res.body.toString(), /signed by 'a'/);
    const gone = await raftRequest(member('gone'), `${url}/v1/status`, { timeoutMs: 2000 });
    assert.equal(gone.status, 403);
    assert.match(gone.body.toString(), /ERR_REMOVED/);
  });

  test('a stream refused for want of the epoch loses nothing: its first messages arrive, in order, and the peer is not reported unreachable', async () => {
    // A Raft follower has only ever sent to the leader; when the leader dies, its first PreVote to
    // the other survivor opens a stream with no epoch. Dropping it would cost an election timeout.
    const before = received.length;
    const epochRefusals = serverAuth.stats.refusedBy.epoch ?? 0;
    const unreachable: string[] = [];
    const a = new PeerTransport({ auth: member('a'), timeoutMs: 2000, onUnreachable: (p) => unreachable.push(p) });
    a.setPeers({ b: url });
    a.send([1, 2, 3].map((commit) => ({ ...heartbeat('a'), commit })));
    const deadline = Date.now() + 5000;
    while (received.length < before + 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const stats = a.stats().get('b')!;
    await a.close();
    assert.equal(serverAuth.stats.refusedBy.epoch, epochRefusals + 1, 'the first stream was refused for its epoch');
    assert.deepEqual(received.slice(before).map((m) => (m as { commit: number }).commit), [1, 2, 3]);
    assert.deepEqual(unreachable, []);
    assert.equal(stats.dropped, 0);
    assert.equal(stats.failed, 0);
  });

  test('the message stream: a member streams, a stranger is refused and delivers nothing', async () => {
    const before = received.length;
    const a = new PeerTransport({ auth: member('a'), timeoutMs: 2000 });
    a.setPeers({ b: url });
    const deadline = Date.now() + 5000;
    while (received.length < before + 3 && Date.now() < deadline) {
      a.send([heartbeat('a')]);
      await new Promise((r) => setTimeout(r, 100));
    }
    await a.close();
    assert.ok(received.length >= before + 3, 'the member got through (after one refusal for the epoch)');

    const count = received.length;
    const refusedBefore = serverAuth.stats.refused;
    const stranger = new PeerTransport({ auth: member('x', { secret: 'not-the-cluster-secret' }), timeoutMs: 2000 });
    stranger.setPeers({ b: url });
    for (let i = 0; i < 5; i++) {
      stranger.send([heartbeat('x')]);
      await new Promise((r) => setTimeout(r, 100));
    }
    const stats = stranger.stats().get('b')!;
    await stranger.close();
    assert.equal(received.length, count, 'nothing from the stranger was delivered');
    assert.ok(serverAuth.stats.refused > refusedBefore, 'its attempts were counted');
    assert.match(stats.lastError ?? '', /401/);
  });
});
