// RaftNode over real HTTP and real LevelDB, three members in this process: replication and
// linearizable reads, snapshots with log compaction, restart from disk, a member that joins as a
// learner (catching up by snapshot) and is promoted, removal, leadership transfer, and a store
// that belongs to another member being refused.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { RaftNode } from './raft-node.ts';
import { RaftError } from '../core/errors.ts';
import { sleep } from '../../../test/support/processes.ts';
import { MemberSet, until } from '../../../test/support/raft-members.ts';

const set = new MemberSet();
after(() => set.stopAll());

/** Snapshots every 50 entries keeping 5, so the tests see compaction and InstallSnapshot. */
const startMember = (id: string, port: number, dataDir: string, peers: Record<string, string>, extra: { join?: boolean } = {}) =>
  set.start(id, port, dataDir, peers, { trailingEntries: 5, snapshotEvery: 50, join: extra.join });
const stopMember = (m: { node: RaftNode; app: FastifyInstance }) => set.stop(m);

test('three members replicate, snapshot, restart from disk, take in a learner and transfer leadership', async () => {
  const root = await set.tempDir('conclave-raftnode-');
  const p = await set.allocatePorts(4);
  const ids = ['a', 'b', 'c'];
  const peers = Object.fromEntries(ids.map((id, i) => [id, `http://127.0.0.1:${p[i]}`]));
  const members = new Map<string, { node: RaftNode; app: FastifyInstance }>();
  for (const [i, id] of ids.entries()) members.set(id, await startMember(id, p[i], `${root}/${id}`, peers));

  const leaderOf = () => [...members.values()].find((m) => m.node.isLeader());
  let leader = await until('a leader', leaderOf);

  // 120 writes, so every member snapshots (every 50) and compacts its log.
  for (let i = 0; i < 120; i++) {
    const r = await leader.node.propose({ type: 'put', key: `k${i}`, value: `v${i}` });
    assert.equal(r.type, 'put');
  }
  const follower = [...members.values()].find((m) => m !== leader)!;
  await follower.node.readBarrier();
  assert.equal(follower.node.state.get('k119')?.value, 'v119', 'a linearizable read on a follower sees the last write');
  const st = leader.node.status();
  assert.ok(st.firstIndex > 50, `log compacted (first index ${st.firstIndex})`);

  // A follower refuses writes and names the leader.
  await assert.rejects(follower.node.propose({ type: 'put', key: 'x', value: 'y' }), (e: unknown) => e instanceof RaftError && e.code === 'ERR_NOT_LEADER' && e.leaderHint === leader.node.id);

  // Restart a follower from its data directory: it comes back with everything.
  const fid = follower.node.id;
  await stopMember(follower);
  await leader.node.propose({ type: 'put', key: 'while-down', value: '1' });
  const restarted = await startMember(fid, p[ids.indexOf(fid)], `${root}/${fid}`, peers);
  members.set(fid, restarted);
  await until('restarted member to catch up', () => restarted.node.state.get('while-down'));
  assert.equal(restarted.node.state.get('k7')?.value, 'v7');

  // A fourth member joins as a learner, catches up from a snapshot, and the leader makes it a
  // voter once it has caught up.
  const dUrl = `http://127.0.0.1:${p[3]}`;
  const d = await startMember('d', p[3], `${root}/d`, { ...peers, d: dUrl }, { join: true });
  const admitted = await leader.node.admit('d', dUrl);
  assert.ok(admitted.learners.includes('d') || admitted.voters.includes('d'));
  await until('learner to catch up', () => d.node.state.get('while-down'));
  await until('d to be a voter', () => leader.node.status().conf.voters.includes('d'));
  assert.deepEqual(leader.node.status().conf.learners, []);
  // A member ignores TimeoutNow until it has applied its own promotion (it may hold the entry
  // before it learns it is committed), so transfer only once d knows it is a voter.
  await until('d to know it is a voter', () => d.node.status().conf.voters.includes('d'));

  // Leadership transfer to the new member, then remove the old leader.
  const oldLeader = leader;
  oldLeader.node.transferLeadership('d');
  await until('d to lead', () => d.node.isLeader());
  leader = d;
  await leader.node.propose({ type: 'put', key: 'after-transfer', value: '1' });
  // The promotion may still be in flight on the new leader: retry until the removal is accepted.
  await until('removal done', async () => {
    try {
      await leader.node.removeMember(oldLeader.node.id);
      return true;
    } catch (e) {
      if (e instanceof RaftError && e.code === 'ERR_CONF_CHANGE_PENDING') return false;
      throw e;
    }
  });
  assert.ok(!leader.node.status().conf.voters.includes(oldLeader.node.id));
  assert.ok(leader.node.isRemoved(oldLeader.node.id));
  const r = await leader.node.propose({ type: 'put', key: 'after-removal', value: '1' });
  assert.equal(r.type, 'put');
  members.set('d', d);
});

test('a data directory that belongs to another member is refused with a clear error', async () => {
  const root = await set.tempDir('conclave-raftnode-');
  const [port] = await set.allocatePorts(1);
  const peers = { a: `http://127.0.0.1:${port}` };
  const first = await startMember('a', port, `${root}/a`, peers);
  await stopMember(first);
  await assert.rejects(
    RaftNode.start({ id: 'b', dataDir: `${root}/a`, peers: { b: peers.a }, logger: pino({ level: 'silent' }) }, Fastify()),
    (e: unknown) => e instanceof RaftError && e.code === 'ERR_CORRUPT_STORE' && /belongs to member "a"/.test(e.message),
  );
});

test('a single member elects itself and serves writes', async () => {
  const root = await set.tempDir('conclave-raftnode-');
  const [port] = await set.allocatePorts(1);
  const m = await startMember('solo', port, `${root}/solo`, { solo: `http://127.0.0.1:${port}` });
  await until('solo leader', () => m.node.isLeader());
  const r = await m.node.propose({ type: 'cas', key: 'k', expectRevision: 0, value: 'v' });
  assert.equal(r.type === 'cas' && r.succeeded, true);
  await m.node.readBarrier();
  assert.equal(m.node.state.get('k')?.value, 'v');
});

test('leases: keep-alives hold a leased key; silence lets the leader revoke it; a new leader restarts the countdown', async () => {
  const root = await set.tempDir('conclave-raftnode-');
  const p = await set.allocatePorts(3);
  const ids = ['a', 'b', 'c'];
  const peers = Object.fromEntries(ids.map((id, i) => [id, `http://127.0.0.1:${p[i]}`]));
  const members = new Map<string, { node: RaftNode; app: FastifyInstance }>();
  for (const [i, id] of ids.entries()) members.set(id, await startMember(id, p[i], `${root}/${id}`, peers));
  const leader = () => [...members.values()].find((m) => m.node.isLeader());
  await until('a leader', leader);
  const write = async (op: Parameters<RaftNode['propose']>[0]) => (await until('a leader', leader)).node.propose(op);
  const present = async (key: string) => {
    const m = (await until('a leader', leader)).node;
    await m.readBarrier();
    return m.state.get(key) !== null;
  };

  // Held by keep-alives well past its TTL.
  await write({ type: 'leaseGrant', lease: 'held', ttlMs: 400 });
  await write({ type: 'put', key: 'held-key', value: 'v', lease: 'held' });
  for (let i = 0; i < 10; i++) {
    await sleep(100);
    await write({ type: 'leaseKeepAlive', lease: 'held' });
  }
  assert.ok(await present('held-key'), 'renewed lease keeps its key');
  // Silence: the leader revokes it and the key goes with it.
  await until('the silent lease to be revoked', () => leader()?.node.state.lease('held') === null, 5_000);
  assert.equal(await present('held-key'), false);

  // A leadership change restarts the countdown: the key outlives its first deadline.
  const granted = performance.now();
  await write({ type: 'leaseGrant', lease: 'moved', ttlMs: 1500 });
  await write({ type: 'put', key: 'moved-key', value: 'v', lease: 'moved' });
  await sleep(1000);
  const old = leader()!;
  const target = ids.find((id) => id !== old.node.id)!;
  // Taken before the transfer starts, so the new leader's election (and countdown) begins later.
  const transferStarted = performance.now();
  old.node.transferLeadership(target);
  await until('the transfer', () => members.get(target)!.node.isLeader());
  const firstDeadline = granted + 1500;
  await sleep(Math.max(0, firstDeadline - performance.now()) + 200);
  assert.ok(await present('moved-key'), 'the new leader counts a full TTL from its election, not from the grant');
  await until('the moved lease to expire on the new leader', () => members.get(target)!.node.state.lease('moved') === null, 5_000);
  assert.ok(performance.now() - transferStarted >= 1500, 'not revoked before a full TTL on the new leader');
});

test('snapshots are paced by the state size: a small state every snapshotEvery entries, a growing one less and less often', async () => {
  const root = await set.tempDir('conclave-raftnode-');
  const [port] = await set.allocatePorts(1);
  const m = await set.start('paced', port, `${root}/paced`, { paced: `http://127.0.0.1:${port}` }, { snapshotEvery: 20, trailingEntries: 0 });
  await until('paced leader', () => m.node.isLeader());
  // With no trailing entries, each snapshot compacts the log to just after it: a new first index
  // marks a new snapshot. Writes go one at a time, and snapshots are at least 20 entries apart.
  const points: number[] = [];
  const note = (): void => {
    const first = m.node.status().firstIndex;
    if (first !== points.at(-1)) points.push(first);
  };
  const put = async (key: string): Promise<void> => {
    await m.node.propose({ type: 'put', key, value: 'v' });
    note();
  };
  note();
  for (let i = 0; i < 200; i++) await put('same'); // two records (a key, a session): every 20 entries
  await sleep(200);
  note();
  const small = points.length - 1;
  assert.ok(small >= 8, `a small state is snapshotted every ~20 entries (${small} snapshots in 200 writes: ${points.join(', ')})`);

  const before = points.length;
  for (let i = 0; i < 300; i++) await put(`k${i}`); // each write adds a record
  await sleep(200);
  note();
  const grown = points.slice(before - 1);
  const gaps = grown.slice(1).map((p, i) => p - grown[i]);
  assert.ok(gaps.length >= 3 && gaps.length <= 6, `a growing state is snapshotted less and less often (gaps ${gaps.join(', ')}); every 20 entries would be 15`);
  for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i] >= gaps[i - 1], `each gap at least the one before (gaps ${gaps.join(', ')})`);
});
