// Proposal forwarding over real HTTP: a follower's write reaches the leader, applies once, and is
// visible on the follower as soon as the call returns; a bad forwarded body is refused with a
// clear error and the member keeps serving.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { ForwardingKv, RAFT_PROPOSE_PATH } from './forwarding.ts';
import { RaftError } from '../core/errors.ts';
import { MemberSet, until } from '../../../test/support/raft-members.ts';

const set = new MemberSet();
after(() => set.stopAll());

test('a follower forwards writes to the leader and reads its own writes at once', async () => {
  const { members, peers } = await set.cluster(['a', 'b', 'c'], 'conclave-fwd-');
  const leaderId = (await until('a leader', () => set.leader())).id;
  const follower = [...members.values()].find((m) => m.node.id !== leaderId)!;
  await until('the follower to know the leader', () => follower.node.leaderUrl());
  const kv = new ForwardingKv(follower.node);

  for (let i = 0; i < 20; i++) {
    const r = await kv.propose({ type: 'put', key: `/f/${i}`, value: String(i) });
    assert.equal(r.type, 'put');
    // No readBarrier: the forwarder waited for the entry to apply here.
    assert.equal(kv.state.get(`/f/${i}`)?.value, String(i));
  }
  const cas = await kv.propose({ type: 'cas', key: '/f/0', expectRevision: 0, value: 'x' });
  assert.ok(cas.type === 'cas' && !cas.succeeded, 'a compare-and-set forwarded from a follower is still judged by the leader');

  // Garbage to the forwarding route: a 400 naming the problem, and the member still serves.
  const res = await request(peers[leaderId] + RAFT_PROPOSE_PATH, { method: 'POST', headers: { 'content-type': 'application/msgpack' }, body: Buffer.from([0xc1, 0x00]) });
  assert.equal(res.statusCode, 400);
  const body = (await res.body.json()) as { error: string; message: string };
  assert.equal(body.error, 'ERR_BAD_MESSAGE');
  assert.match(body.message, /kv command/);
  const again = await kv.propose({ type: 'put', key: '/f/after', value: '1' });
  assert.equal(again.type, 'put');
});

test('with no leader reachable a forwarded write fails with a coded error rather than hanging', async () => {
  const { members } = await set.cluster(['a', 'b', 'c'], 'conclave-fwd-');
  const leaderId = (await until('a leader', () => set.leader())).id;
  const follower = [...members.values()].find((m) => m.node.id !== leaderId)!;
  const kv = new ForwardingKv(follower.node, { timeoutMs: 1500 });
  for (const m of [...members.values()]) if (m !== follower) await set.stop(m);
  await assert.rejects(kv.propose({ type: 'put', key: '/g', value: '1' }), (e: unknown) => e instanceof RaftError && ['ERR_TIMEOUT', 'ERR_NOT_LEADER'].includes(e.code));
});
