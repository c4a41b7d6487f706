// ClusterStore over three in-process RaftNode members (real HTTP, real LevelDB): the bootstrap and
// leader races, leader-lease renewal and expiry (the Raft leader revokes it; watchers hear of it),
// release, member leases, CAS on config, defensive parsing, and a follower refusing writes.
// Each test uses its own scope, so they share one Raft group without seeing each other's keys.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { RaftNode } from '../raft/node/raft-node.ts';
import { RaftError } from '../raft/core/errors.ts';
import { ClusterStore } from './cluster-store.ts';
import type { LeaderView } from './cluster-view.ts';
import { sleep } from '../../test/support/processes.ts';
import { MemberSet, until } from '../../test/support/raft-members.ts';

const set = new MemberSet();
const now = (): number => performance.now();

before(async () => {
  await set.cluster(['a', 'b', 'c'], 'conclave-clusterstore-');
  await until('a raft leader', () => leaderNode());
});

after(() => set.stopAll());

function leaderNode(): RaftNode | undefined {
  return set.leader();
}

/** A store on the current Raft leader (writes need it for now). */
async function storeFor(scope: string): Promise<{ store: ClusterStore; node: RaftNode }> {
  const node = await until('a raft leader', () => leaderNode());
  return { store: new ClusterStore({ raft: node, scope, now }), node };
}

test('initialize: of two racing callers exactly one wins, and the view shows its sysid', async () => {
  const { store } = await storeFor('init');
  const other = new ClusterStore({ raft: (await storeFor('init')).node, scope: 'init', now });
  const [x, y] = await Promise.all([store.initialize('111'), other.initialize('222')]);
  assert.equal(Number(x) + Number(y), 1, `exactly one wins (got ${x}, ${y})`);
  assert.equal((await store.getCluster()).initialize, x ? '111' : '222');
  assert.equal(await store.initialize('333'), false, 'a later call loses too');
});

test('bootstrap placeholder: the winner of initialize("") completes it with its sysid; a failed bootstrap cancels it', async () => {
  const { store } = await storeFor('boot');
  assert.equal(await store.initialize(''), true);
  assert.equal(await store.initialize(''), false, 'the placeholder wins the race like a sysid');
  assert.equal((await store.getCluster()).initialize, '');
  assert.equal(await store.completeInitialize('4242'), true);
  assert.equal((await store.getCluster()).initialize, '4242');
  assert.equal(await store.cancelInitialize(), false, 'a completed initialize is never cancelled');
  assert.equal(await store.completeInitialize('9999'), false, 'nor overwritten by another sysid');

  const { store: other } = await storeFor('boot2');
  assert.equal(await other.initialize(''), true);
  assert.equal(await other.cancelInitialize(), true);
  assert.equal((await other.getCluster()).initialize, null, 'the race is open again');
});

test('leader race: one acquires, the other is refused and sees the holder', async () => {
  const { store } = await storeFor('race');
  const t0 = now();
  const [a, b] = await Promise.all([store.attemptToAcquireLeader('pg1', 5000), store.attemptToAcquireLeader('pg2', 5000)]);
  assert.equal(Number(a.acquired) + Number(b.acquired), 1, 'exactly one acquires');
  const [winner, holder, other] = a.acquired ? [a, 'pg1', 'pg2'] : [b, 'pg2', 'pg1'];
  assert.ok(winner.leaseExpiresAt !== null && winner.leaseExpiresAt >= t0 + 5000 && winner.leaseExpiresAt <= now() + 5000);
  const view = await store.getCluster();
  assert.equal(view.leader?.name, holder, 'the loser sees the holder');
  assert.equal(view.leader?.lease, store.leaderLeaseId(holder));
  assert.deepEqual(await store.attemptToAcquireLeader(other, 5000), { acquired: false, leaseExpiresAt: null });
  // The loser cannot renew a key it does not hold; the holder can.
  assert.equal((await store.updateLeader(other, 5000)).held, false);
  assert.equal((await store.updateLeader(holder, 5000)).held, true);
  // Someone deletes the key behind the holder's back (e.g. an operator): its lease is still alive,
  // but a renewed lease with no leader key on it is not leadership.
  const { node } = await storeFor('race');
  await node.propose({ type: 'delete', key: `${store.prefix}leader` });
  assert.ok(node.state.lease(store.leaderLeaseId(holder)), 'the lease itself is still there');
  assert.deepEqual(await store.updateLeader(holder, 5000), { held: false, leaseExpiresAt: null });
  await store.deleteLeader(holder);
});

test('updateLeader holds the key past its TTL; silence lets the Raft leader revoke it and watchLeader fires', async () => {
  const { store, node } = await storeFor('renew');
  const ttl = 500;
  const events: (LeaderView | null)[] = [];
  const unwatch = store.watchLeader((l) => events.push(l));
  const acquired = await store.attemptToAcquireLeader('pg1', ttl);
  assert.equal(acquired.acquired, true);
  const start = now();
  let lastSent = 0;
  while (now() - start < 3 * ttl) {
    await sleep(ttl / 4);
    lastSent = now();
    const r = await store.updateLeader('pg1', ttl);
    assert.equal(r.held, true);
    assert.ok(r.leaseExpiresAt !== null && r.leaseExpiresAt >= lastSent + ttl && r.leaseExpiresAt <= now() + ttl, 'counted from the send time');
  }
  assert.equal((await store.getCluster()).leader?.name, 'pg1', 'renewed past three TTLs');
  assert.equal(events.at(-1)?.name, 'pg1', 'watchLeader saw the acquisition');

  // Stop renewing: the Raft leader revokes the lease; never before the holder's own deadline.
  await until('watchLeader to report the deletion', () => events.at(-1) === null, ttl + 5_000);
  const gone = now();
  assert.ok(gone - lastSent >= ttl, `the key outlived the holder's deadline (${(gone - lastSent).toFixed(0)} ms >= ${ttl})`);
  assert.equal((await store.getCluster()).leader, null);
  assert.equal(node.state.lease(store.leaderLeaseId('pg1')), null);
  assert.deepEqual(await store.updateLeader('pg1', ttl), { held: false, leaseExpiresAt: null });
  unwatch();
});

test('deleteLeader releases at once and revokes the lease; it does not delete someone else\'s key', async () => {
  const { store, node } = await storeFor('release');
  assert.equal((await store.attemptToAcquireLeader('pg1', 60_000)).acquired, true);
  assert.equal(await store.deleteLeader('pg2'), false, 'the key names pg1');
  assert.equal((await store.getCluster()).leader?.name, 'pg1');
  assert.equal(await store.deleteLeader('pg1'), true);
  assert.equal((await store.getCluster()).leader, null, 'gone at once, long before the 60 s TTL');
  assert.equal(node.state.lease(store.leaderLeaseId('pg1')), null, 'lease revoked');
  assert.equal((await store.attemptToAcquireLeader('pg2', 60_000)).acquired, true, 'free for the next');
  await store.deleteLeader('pg2');
});

test('touchMember keeps a member while touched; it expires when touches stop', async () => {
  const { store } = await storeFor('members');
  const ttl = 500;
  const start = now();
  let i = 0;
  while (now() - start < 3 * ttl) {
    assert.equal(await store.touchMember('pg1', { state: 'running', role: 'replica', n: ++i }, ttl), true);
    await sleep(ttl / 4);
  }
  const view = await store.getCluster();
  assert.deepEqual(view.members.map((m) => [m.name, m.data.n]), [['pg1', i]], 'present with the last data');
  await until('the member to expire', async () => (await store.getCluster()).members.length === 0, ttl + 5_000);
  // After expiry the next touch re-grants the lease and the member is back.
  assert.equal(await store.touchMember('pg1', { state: 'running' }, ttl), true);
  assert.equal((await store.getCluster()).members[0]?.name, 'pg1');
});

test('setConfig and friends: CAS refused on a stale revision, accepted on the current one', async () => {
  const { store } = await storeFor('config');
  assert.equal(await store.setConfig({ ttl: 30 }, 0), true, 'create-if-absent');
  const v1 = (await store.getCluster()).config!;
  assert.deepEqual(v1.value, { ttl: 30 });
  assert.equal(await store.setConfig({ ttl: 40 }, v1.revision), true);
  assert.equal(await store.setConfig({ ttl: 50 }, v1.revision), false, 'stale revision refused');
  assert.deepEqual((await store.getCluster()).config?.value, { ttl: 40 });
  assert.equal(await store.setFailover({ member: 'pg2' }), true);
  const fo = (await store.getCluster()).failover!;
  assert.equal(await store.setFailover(null, fo.revision + 1000), false);
  assert.equal(await store.setFailover(null, fo.revision), true);
  assert.equal((await store.getCluster()).failover, null);
  assert.equal(await store.setSyncState({ leader: 'pg1', sync_standby: null }, 0), true);
  assert.equal(await store.setHistory([[1, 100, 'no recovery target', '2024-01-01', 'pg1']]), true);
  assert.equal(await store.setStatus({ optime: 100 }), true);
  const view = await store.getCluster();
  assert.deepEqual(view.sync?.value, { leader: 'pg1', sync_standby: null });
  assert.deepEqual(view.history?.value, [[1, 100, 'no recovery target', '2024-01-01', 'pg1']]);
  assert.deepEqual(view.status?.value, { optime: 100 });
  assert.deepEqual(view.problems, []);
});

test('a garbage value is reported in view.problems, not thrown', async () => {
  const { store, node } = await storeFor('garbage');
  await node.propose({ type: 'put', key: `${store.prefix}config`, value: '{not json' });
  await node.propose({ type: 'put', key: `${store.prefix}members/pg9`, value: '[1,2]' });
  await node.propose({ type: 'put', key: `${store.prefix}history`, value: '{"a":1}' });
  const view = await store.getCluster();
  assert.equal(view.config, null);
  assert.equal(view.history, null);
  assert.deepEqual(view.members, [{ name: 'pg9', data: {}, revision: view.members[0].revision }]);
  assert.equal(view.problems.length, 3);
  for (const k of ['config', 'members/pg9', 'history']) assert.ok(view.problems.some((p) => p.startsWith(`${store.prefix}${k}:`)), `names ${k}`);
});

test('on a Raft follower, reads work and writes fail with RaftError ERR_NOT_LEADER', async () => {
  const leader = await until('a raft leader', () => leaderNode());
  const follower = set.running.find((r) => r.node !== leader)!.node;
  const writer = new ClusterStore({ raft: leader, scope: 'follower', now });
  await writer.setConfig({ ttl: 30 });
  const store = new ClusterStore({ raft: follower, scope: 'follower', now });
  assert.deepEqual((await store.getCluster()).config?.value, { ttl: 30 }, 'linearizable read on a follower');
  const notLeader = (e: unknown): boolean => e instanceof RaftError && e.code === 'ERR_NOT_LEADER';
  await assert.rejects(store.initialize('1'), notLeader);
  await assert.rejects(store.attemptToAcquireLeader('pg1', 1000), notLeader);
  await assert.rejects(store.setConfig({ ttl: 40 }), notLeader);
  await assert.rejects(store.touchMember('pg1', {}, 1000), notLeader);
});

test('leaseExpiresAt counts from the moment the grant or keep-alive was sent, not from its answer', async () => {
  const node = await until('a raft leader', () => leaderNode());
  // A clock that jumps 1 s whenever a lease operation is sent: a store that read the clock after
  // the answer would report a deadline 1 s too late.
  let clock = 0;
  const sentAt: number[] = [];
  const raft = {
    propose: (op: Parameters<RaftNode['propose']>[0]) => {
      if (op.type === 'leaseGrant' || op.type === 'leaseKeepAlive') {
        sentAt.push(clock);
        clock += 1000;
      }
      return node.propose(op);
    },
    readBarrier: () => node.readBarrier(),
    get state() {
      return node.state;
    },
    on: node.on.bind(node),
    off: node.off.bind(node),
  };
  const store = new ClusterStore({ raft, scope: 'clock', now: () => clock });
  const a = await store.attemptToAcquireLeader('pg1', 30_000);
  assert.deepEqual(a, { acquired: true, leaseExpiresAt: sentAt[0] + 30_000 });
  const u = await store.updateLeader('pg1', 30_000);
  assert.deepEqual(u, { held: true, leaseExpiresAt: sentAt[1] + 30_000 });
  await store.deleteLeader('pg1');
});

test('a read answered from a state older than one already seen is refused as unavailable, not believed', async () => {
  // A store that goes back in time (a member restored from an old copy): the one situation a
  // real embedded member cannot produce on demand, so a stand-in replays it.
  let applied = 10;
  const stale = {
    propose: () => Promise.reject(new Error('read-only')),
    readBarrier: () => Promise.resolve(),
    state: { get appliedIndex() { return applied; }, get: () => null, range: () => [], lease: () => null },
    on: () => undefined,
    off: () => undefined,
  };
  const store = new ClusterStore({ raft: stale, scope: 'stale', now });
  await store.getCluster();
  applied = 7;
  await assert.rejects(store.getCluster(), (e: unknown) => (e as { code?: string }).code === 'ERR_STALE_READ');
  applied = 12;
  await store.getCluster();
});
