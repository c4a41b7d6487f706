// decide() scenario by scenario: each test names a situation an operator would recognise and
// checks both the actions and the sentence the log, the REST status and the real-process tests use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.ts';
import type { DecideInput, LocalFacts, PeerReport } from './decide-types.ts';
import type { ClusterView, MemberView } from './cluster-view.ts';
import type { PgStatus, ControlData } from './postgres/types.ts';

const SYSID = '7300000000000000001';

const replicaPg = (pos = 1000, upstream = { host: '127.0.0.1', port: 5432 }): PgStatus => ({
  running: true, starting: false, role: 'replica', timeline: 1, walPosition: pos, receivedLsn: pos, replayedLsn: pos,
  replicationState: 'streaming', upstreamHost: upstream.host, upstreamPort: upstream.port, serverVersion: 150004, postmasterStartTime: null, pendingRestart: false,
});
const primaryPg = (pos = 1000): PgStatus => ({ ...replicaPg(pos), role: 'primary', receivedLsn: null, replayedLsn: null, replicationState: null, upstreamHost: null, upstreamPort: null });
const downPg: PgStatus = { ...replicaPg(), running: false, role: null, timeline: null, walPosition: null, receivedLsn: null, replayedLsn: null, replicationState: null, upstreamHost: null, upstreamPort: null };
const control = (state: string, timeline = 1): ControlData => ({ systemIdentifier: SYSID, state, timeline, checkpointLsn: 500, walLogHints: true, dataChecksums: true });

const member = (name: string, port: number, data: Record<string, unknown> = {}): MemberView => ({
  name, revision: 1, data: { conn_url: `postgres://127.0.0.1:${port}/postgres`, api_url: `http://127.0.0.1:${port + 3000}/patroni`, state: 'running', timeline: 1, ...data },
});

function cluster(over: Partial<ClusterView> = {}): ClusterView {
  return {
    initialize: SYSID, config: { value: {}, revision: 1 }, leader: null,
    members: [member('node1', 5432), member('node2', 5433), member('node3', 5434)],
    failover: null, sync: null, history: null, status: null, failsafe: null, removed: [], problems: [], ...over,
  };
}
const lockedBy = (name: string) => ({ name, revision: 5, lease: `/service/demo/leader:${name}` });

function input(me: Partial<LocalFacts> = {}, over: Partial<DecideInput> = {}): DecideInput {
  return {
    now: 10_000,
    wallNow: Date.UTC(2026, 10, 22, 12),
    me: { name: 'node2', nofailover: false, failoverPriority: 1, clonefrom: false, dataDirEmpty: false, control: control('in archive recovery'), pg: replicaPg(), task: null, rewindFailed: false, watchdogBlocksLeadership: null, primaryDownSince: null, ...me },
    cluster: cluster(), storeError: null, leaseExpiresAt: null, peers: [],
    settings: { ttlMs: 2000, maximumLagOnFailover: 1048576, checkTimeline: false, usePgRewind: true, removeDataDirectoryOnRewindFailure: false, removeDataDirectoryOnDivergedTimelines: false, useSlots: true, memberSlotsTtlMs: 1_800_000, primaryStartTimeoutMs: 300_000, paused: false, sync: { mode: false, strict: false, nodeCount: 1 } },
    membersLastSeen: new Map(),
    replication: null,
    managedSyncNames: null,
    ...over,
  };
}
const peer = (name: string, walPosition: number, extra: Partial<PeerReport> = {}): PeerReport => ({ name, reachable: true, role: 'replica', walPosition, timeline: 1, nofailover: false, failoverPriority: 1, ...extra });
const types = (d: { actions: readonly { type: string }[] }) => d.actions.map((a) => a.type);

test('an empty cluster is bootstrapped by a member that may become primary; a nofailover member waits', () => {
  const fresh = { dataDirEmpty: true, control: null, pg: downPg };
  const d = decide(input(fresh, { cluster: cluster({ initialize: null, members: [] }) }));
  assert.deepEqual(types(d), ['bootstrap']);
  assert.match(d.reason, /^bootstrapping a new cluster/);
  const n = decide(input({ ...fresh, nofailover: true }, { cluster: cluster({ initialize: null, members: [] }) }));
  assert.deepEqual(types(n), []);
  assert.match(n.reason, /nofailover/);
  const waiting = decide(input(fresh, { cluster: cluster({ initialize: SYSID }) }));
  assert.equal(waiting.reason, 'no action: waiting for the leader to bootstrap');
});

test('an empty member clones from the leader, or from a running member tagged clonefrom', () => {
  const fresh = { dataDirEmpty: true, control: null, pg: downPg, name: 'node3' };
  const d = decide(input(fresh, { cluster: cluster({ leader: lockedBy('node1') }) }));
  assert.deepEqual(d.actions, [{ type: 'clone', from: { name: 'node1', host: '127.0.0.1', port: 5432 } }]);
  const withCloneFrom = cluster({ leader: lockedBy('node1'), members: [member('node1', 5432), member('node2', 5433, { tags: { clonefrom: true } })] });
  const c = decide(input(fresh, { cluster: withCloneFrom }));
  assert.deepEqual(c.actions, [{ type: 'clone', from: { name: 'node2', host: '127.0.0.1', port: 5433 } }]);
});

test("another cluster's data directory is refused, never joined", () => {
  const d = decide(input({ control: { ...control('shut down'), systemIdentifier: '999' } }, { cluster: cluster({ leader: lockedBy('node1') }) }));
  assert.deepEqual(types(d), ['fatal']);
  assert.match(d.reason, /system identifier 999/);
});

test('with the store unavailable a replica keeps replicating and a primary runs on only until its lease deadline', () => {
  const r = decide(input({}, { cluster: null, storeError: 'ERR_TIMEOUT' }));
  assert.deepEqual(types(r), []);
  assert.match(r.reason, /still replicating/);
  const p = decide(input({ pg: primaryPg() }, { cluster: null, storeError: 'ERR_TIMEOUT', leaseExpiresAt: 11_200 }));
  assert.deepEqual(types(p), []);
  assert.match(p.reason, /still primary for at most 1200 ms/);
  const expired = decide(input({ pg: primaryPg() }, { cluster: null, storeError: 'ERR_TIMEOUT', leaseExpiresAt: 9_000 }));
  assert.deepEqual(expired.actions, [{ type: 'demote', mode: 'offline' }]);
});

test('a crashed primary that still holds the lock is restarted as primary', () => {
  const d = decide(input({ name: 'node1', pg: downPg, control: control('in production') }, { cluster: cluster({ leader: lockedBy('node1') }) }));
  assert.deepEqual(types(d), ['renewLock', 'startPrimary']);
});

test('a former primary rejoins with pg_rewind, but only after the new primary checkpointed', () => {
  const me = { name: 'node1', pg: downPg, control: control('in production') };
  const locked = cluster({ leader: lockedBy('node2'), members: [member('node1', 5432), member('node2', 5433, { timeline: 2 })] });
  const d = decide(input(me, { cluster: locked }));
  assert.deepEqual(d.actions, [{ type: 'startReplica', upstream: { name: 'node2', host: '127.0.0.1', port: 5433 }, rewind: true }]);
  const early = cluster({ ...locked, members: [member('node1', 5432), member('node2', 5433, { timeline: 2, checkpoint_after_promote: false })] });
  assert.match(decide(input(me, { cluster: early })).reason, /checkpoint after its promotion/);
  const failed = decide(input({ ...me, rewindFailed: true }, { cluster: locked }));
  assert.deepEqual(types(failed), []);
  const failedWipe = decide(input({ ...me, rewindFailed: true }, { cluster: locked, settings: { ...input().settings, removeDataDirectoryOnRewindFailure: true } }));
  assert.deepEqual(types(failedWipe), ['clone']);
  // pg_rewind off: start as is, or re-clone when remove_data_directory_on_diverged_timelines says so.
  const noRewind = { ...input().settings, usePgRewind: false };
  assert.deepEqual(types(decide(input(me, { cluster: locked, settings: noRewind }))), ['startReplica']);
  assert.deepEqual(types(decide(input(me, { cluster: locked, settings: { ...noRewind, removeDataDirectoryOnDivergedTimelines: true } }))), ['clone']);
  // A primary shut down cleanly whose shutdown checkpoint the new primary received before it
  // switched timeline follows without a rewind; one whose checkpoint came after the switch does not.
  const clean = { name: 'node1', pg: downPg, control: { ...control('shut down'), checkpointLsn: 500 } };
  const withHistory = (lsn: number) => ({ ...locked, history: { value: [[1, lsn, 'no recovery target specified', '', 'node2']], revision: 9 } });
  assert.deepEqual(decide(input(clean, { cluster: withHistory(600) })).actions, [{ type: 'startReplica', upstream: { name: 'node2', host: '127.0.0.1', port: 5433 }, rewind: false }]);
  assert.deepEqual(decide(input(clean, { cluster: withHistory(400) })).actions, [{ type: 'startReplica', upstream: { name: 'node2', host: '127.0.0.1', port: 5433 }, rewind: true }]);
  // The new leader holds the lock but is still promoting (same timeline, no history yet): wait.
  const promoting = cluster({ leader: lockedBy('node2'), members: [member('node1', 5432), member('node2', 5433, { timeline: 1 })] });
  assert.match(decide(input(clean, { cluster: promoting })).reason, /waiting for node2 to finish its promotion/);
  assert.deepEqual(types(decide(input(clean, { cluster: locked }))), ['startReplica'], 'on a later timeline with no history entry: rewind to be safe');
  // A replica that merely crashed restarts without rewinding.
  const replica = decide(input({ name: 'node3', pg: downPg, control: control('in archive recovery', 2) }, { cluster: locked }));
  assert.deepEqual(replica.actions, [{ type: 'startReplica', upstream: { name: 'node2', host: '127.0.0.1', port: 5433 }, rewind: false }]);
});

test('the healthiest replica takes a free lock and promotes', () => {
  const d = decide(input({ pg: replicaPg(2000) }, { peers: [peer('node3', 1500), peer('node1', 0, { reachable: false })] }));
  assert.deepEqual(d.actions, [{ type: 'acquireLock', promote: true }]);
  assert.equal(d.reason, 'promoted self because the leader lock was free and I am the healthiest member');
});

test('a replica does not race when a peer is further ahead, still primary, or equal with a higher priority', () => {
  const cases: [PeerReport, RegExp][] = [
    [peer('node3', 2001), /node3 is further ahead/],
    [peer('node1', 10, { role: 'primary' }), /node1 is still running as primary/],
    [peer('node3', 2000, { failoverPriority: 5 }), /higher failover_priority/],
  ];
  for (const [p, why] of cases) {
    const d = decide(input({ pg: replicaPg(2000) }, { peers: [p] }));
    assert.deepEqual(types(d), [], p.name);
    assert.match(d.reason, why);
  }
  // A nofailover peer further ahead does not stop us; our own nofailover tag does.
  assert.deepEqual(types(decide(input({ pg: replicaPg(2000) }, { peers: [peer('node3', 9000, { nofailover: true })] }))), ['acquireLock']);
  assert.match(decide(input({ pg: replicaPg(2000), nofailover: true })).reason, /tagged nofailover/);
  assert.match(decide(input({ pg: replicaPg(2000), failoverPriority: 0 })).reason, /tagged nofailover/);
});

test('a replica too far behind the last known primary position does not race', () => {
  const st = { value: { optime: 5_000_000 }, revision: 3 };
  const d = decide(input({ pg: replicaPg(1000) }, { cluster: cluster({ status: st }) }));
  assert.match(d.reason, /more than maximum_lag_on_failover/);
  assert.deepEqual(types(decide(input({ pg: replicaPg(4_500_000) }, { cluster: cluster({ status: st }) }))), ['acquireLock']);
});

test('check_timeline keeps a replica on an old timeline out of the race', () => {
  const hist = { value: [[1, 100, 'no recovery target specified', '', 'node1']], revision: 2 };
  const settings = { ...input().settings, checkTimeline: true };
  const d = decide(input({ pg: replicaPg(2000) }, { cluster: cluster({ history: hist }), settings }));
  assert.match(d.reason, /timeline 1 is behind the cluster's 2/);
});

test('the lock holder renews and keeps one slot per other member, and a vanished one for member_slots_ttl', () => {
  const seen = new Map([['node4', 10_000 - 60_000], ['node5', 10_000 - 2_000_000]]);
  const d = decide(input({ name: 'node1', pg: primaryPg() }, { cluster: cluster({ leader: lockedBy('node1') }), membersLastSeen: seen }));
  assert.deepEqual(d.actions, [{ type: 'renewLock' }, { type: 'syncSlots', members: ['node2', 'node3', 'node4'] }]);
  assert.equal(d.reason, 'no action: I am node1, the leader with the lock');
});

test('a lock holder whose postgres does not come back within primary_start_timeout gives the lock up', () => {
  const down = { ...downPg };
  const primaryControl = control('in production');
  const members = [member('node1', 5432, { role: 'primary' }), member('node2', 5433, { role: 'replica' }), member('node3', 5434, { role: 'replica' })];
  const holding = { cluster: cluster({ leader: lockedBy('node1'), members }) };
  const early = decide(input({ name: 'node1', pg: down, control: primaryControl, primaryDownSince: 10_000 - 299_000 }, holding));
  assert.deepEqual(early.actions, [{ type: 'renewLock' }, { type: 'startPrimary' }]);
  const late = decide(input({ name: 'node1', pg: down, control: primaryControl, primaryDownSince: 10_000 - 300_000 }, holding));
  assert.deepEqual(late.actions, [{ type: 'releaseLock' }]);
  assert.match(late.reason, /has not started as primary for 300 s \(primary_start_timeout 300 s\)/);
  // Nobody could take over: keep trying to start.
  const alone = cluster({ leader: lockedBy('node1'), members: [member('node1', 5432), member('node2', 5433, { role: 'replica', tags: { nofailover: true } })] });
  assert.deepEqual(decide(input({ name: 'node1', pg: down, control: primaryControl, primaryDownSince: 0 }, { cluster: alone })).actions, [{ type: 'renewLock' }, { type: 'startPrimary' }]);
  // 0: at once.
  const settings = { ...input().settings, primaryStartTimeoutMs: 0 };
  assert.deepEqual(decide(input({ name: 'node1', pg: down, control: primaryControl, primaryDownSince: 10_000 }, { ...holding, settings })).actions, [{ type: 'releaseLock' }]);
});

test('a replica that replayed WAL past the fork of the new leader\'s timeline is rewound, not left waiting', () => {
  const members = [member('node1', 5432, { timeline: 2, role: 'primary' }), member('node2', 5433), member('node3', 5434)];
  const history = { value: [[1, 5000, 'no recovery target specified', '', 'node1']], revision: 3 };
  const stuck = { ...replicaPg(6000), timeline: 1, replicationState: 'in archive recovery' as const, upstreamHost: '127.0.0.1', upstreamPort: 5432 };
  const d = decide(input({ pg: stuck }, { cluster: cluster({ leader: lockedBy('node1'), members, history }) }));
  assert.deepEqual(d.actions, [{ type: 'startReplica', upstream: { name: 'node1', host: '127.0.0.1', port: 5432 }, rewind: true }]);
  assert.match(d.reason, /replayed WAL up to 6000 on timeline 1, past where the leader's timeline forked off it \(5000\)/);
  // Received past the fork (that WAL may be the new timeline's) but replayed only up to it: a
  // replica switching timelines normally, nothing to do.
  assert.deepEqual(decide(input({ pg: { ...stuck, receivedLsn: 6000, replayedLsn: 5000 } }, { cluster: cluster({ leader: lockedBy('node1'), members, history }) })).actions, []);
  // Behind the fork: it will stream once it reaches the switch, nothing to do.
  const behind = decide(input({ pg: { ...stuck, receivedLsn: 4000, replayedLsn: 4000 } }, { cluster: cluster({ leader: lockedBy('node1'), members, history }) }));
  assert.deepEqual(behind.actions, []);
  // pg_rewind off: an operator is needed unless re-cloning is allowed.
  const noRewind = { ...input().settings, usePgRewind: false };
  assert.deepEqual(decide(input({ pg: stuck }, { cluster: cluster({ leader: lockedBy('node1'), members, history }), settings: noRewind })).actions, []);
  const reclone = { ...noRewind, removeDataDirectoryOnDivergedTimelines: true };
  assert.deepEqual(decide(input({ pg: stuck }, { cluster: cluster({ leader: lockedBy('node1'), members, history }), settings: reclone })).actions.map((a) => a.type), ['clone']);
});

test('a member tagged nostream gets no slot, although it was seen lately', () => {
  const members = [member('node1', 5432), member('node2', 5433), member('node3', 5434, { tags: { nostream: true } })];
  const seen = new Map([['node2', 9_000], ['node3', 9_000]]);
  const d = decide(input({ name: 'node1', pg: primaryPg() }, { cluster: cluster({ leader: lockedBy('node1'), members }), membersLastSeen: seen }));
  assert.deepEqual(d.actions, [{ type: 'renewLock' }, { type: 'syncSlots', members: ['node2'] }]);
});

test('a member an operator removed loses its slot at once, not after member_slots_ttl', () => {
  const seen = new Map([['node4', 10_000 - 60_000]]);
  const d = decide(input({ name: 'node1', pg: primaryPg() }, { cluster: cluster({ leader: lockedBy('node1'), removed: ['node4'] }), membersLastSeen: seen }));
  assert.deepEqual(d.actions, [{ type: 'renewLock' }, { type: 'syncSlots', members: ['node2', 'node3'] }]);
  // A removed name that has joined again (its member key is back) has its slot again.
  const back = decide(input({ name: 'node1', pg: primaryPg() }, { cluster: cluster({ leader: lockedBy('node1'), removed: ['node3'] }), membersLastSeen: seen }));
  assert.deepEqual(back.actions, [{ type: 'renewLock' }, { type: 'syncSlots', members: ['node2', 'node3', 'node4'] }]);
});

test('a primary that finds another member holding the lock demotes; a replica re-points at the leader', () => {
  const d = decide(input({ pg: primaryPg() }, { cluster: cluster({ leader: lockedBy('node1') }) }));
  assert.deepEqual(d.actions, [{ type: 'demote', mode: 'immediate-nolock' }]);
  assert.equal(d.reason, 'demoted self because node1 holds the leader lock');
  const elsewhere = decide(input({ pg: replicaPg(1000, { host: '127.0.0.1', port: 5434 }) }, { cluster: cluster({ leader: lockedBy('node1') }) }));
  assert.deepEqual(elsewhere.actions, [{ type: 'follow', upstream: { name: 'node1', host: '127.0.0.1', port: 5432 } }]);
  assert.equal(elsewhere.reason, 'no action: I am node2, a secondary, and following a leader (node1)');
  assert.deepEqual(types(decide(input({}, { cluster: cluster({ leader: lockedBy('node1') }) }))), []);
});

test('while a long task runs the holder only keeps its lock', () => {
  const d = decide(input({ name: 'node1', pg: downPg, task: 'promote' }, { cluster: cluster({ leader: lockedBy('node1') }) }));
  assert.deepEqual(types(d), ['renewLock']);
  assert.equal(d.reason, 'updated leader lock during promote');
});

test('a running primary finding the lock free takes it without promoting', () => {
  const d = decide(input({ name: 'node1', pg: primaryPg() }));
  assert.deepEqual(d.actions[0], { type: 'acquireLock', promote: false });
});

test('switchover on the leader: graceful demotion toward a healthy candidate, waiting for a schedule, refusing a bad request', () => {
  const replicaData = { role: 'replica', state: 'running' };
  const members = [member('node1', 5432, { role: 'primary' }), member('node2', 5433, replicaData), member('node3', 5434, { ...replicaData, tags: { nofailover: true } })];
  const withRequest = (value: Record<string, unknown>) => cluster({ leader: lockedBy('node1'), members, failover: { value, revision: 11 } });
  const leader = { name: 'node1', pg: primaryPg() };
  const now = decide(input(leader, { cluster: withRequest({ leader: 'node1', member: 'node2' }) }));
  assert.deepEqual(now.actions, [{ type: 'demote', mode: 'graceful' }]);
  assert.equal(now.reason, 'switchover: demoting myself gracefully in favour of node2');
  assert.deepEqual(decide(input(leader, { cluster: withRequest({ leader: 'node1' }) })).actions, [{ type: 'demote', mode: 'graceful' }], 'to the best replica');
  const later = decide(input(leader, { cluster: withRequest({ leader: 'node1', member: 'node2', scheduled_at: '2026-11-22T13:00:00Z' }) }));
  assert.equal(later.actions[0].type, 'renewLock');
  assert.match(later.reason, /a switchover is scheduled at 2026-11-22T13:00:00Z/);
  const due = decide(input(leader, { cluster: withRequest({ leader: 'node1', member: 'node2', scheduled_at: '2026-11-22T11:00:00Z' }) }));
  assert.deepEqual(due.actions, [{ type: 'demote', mode: 'graceful' }], 'a schedule that has come');
  for (const [value, why] of [
    [{ leader: 'node1', member: 'node3' }, /node3 is not a healthy replica that may take over/],
    [{ leader: 'node1', member: 'node9' }, /node9 is not a healthy replica/],
    [{ leader: 'node2', member: 'node3' }, /request for leader node2: I am the leader/],
  ] as const) {
    const d = decide(input(leader, { cluster: withRequest(value) }));
    assert.deepEqual(d.actions, [{ type: 'renewLock' }, { type: 'clearFailover', revision: 11 }]);
    assert.match(d.reason, why);
  }
});

test('switchover on the replicas: the named candidate races even when behind, the others and the former leader do not', () => {
  const request = { value: { leader: 'node1', member: 'node3' }, revision: 11 };
  const st = { value: { optime: 9_000_000 }, revision: 3 };
  const unlocked = cluster({ failover: request, status: st });
  const n3 = decide(input({ name: 'node3', pg: replicaPg(1000) }, { cluster: unlocked, peers: [peer('node2', 5000)] }));
  assert.deepEqual(n3.actions, [{ type: 'acquireLock', promote: true }], 'the candidate races though behind and though node2 is ahead');
  const n2 = decide(input({ pg: replicaPg(5000) }, { cluster: cluster({ failover: request }), peers: [peer('node3', 1000)] }));
  assert.match(n2.reason, /node3 is the requested failover candidate/);
  const former = decide(input({ name: 'node1', pg: replicaPg(5000) }, { cluster: cluster({ failover: request }), peers: [peer('node3', 1000)] }));
  assert.match(former.reason, /I am the former leader of a requested switchover/);
  // A candidate that cannot be reached does not hold the others back.
  const gone = decide(input({ pg: replicaPg(5000) }, { cluster: cluster({ failover: request }), peers: [peer('node3', 1000, { reachable: false })] }));
  assert.deepEqual(types(gone), ['acquireLock']);
});

test('pause mode: the leader keeps its lock while its postgres runs, nobody else acts', () => {
  const settings = { ...input().settings, paused: true };
  const leader = decide(input({ name: 'node1', pg: primaryPg() }, { cluster: cluster({ leader: lockedBy('node1') }), settings }));
  assert.deepEqual(types(leader), ['renewLock']);
  assert.equal(leader.reason, 'PAUSE: no action: I am node1, the leader with the lock');
  assert.deepEqual(types(decide(input({ name: 'node1', pg: downPg, control: control('in production') }, { cluster: cluster({ leader: lockedBy('node1') }), settings }))), ['releaseLock']);
  const free = decide(input({ pg: replicaPg(9000) }, { settings, peers: [peer('node3', 1)] }));
  assert.deepEqual(types(free), [], 'no race for a free lock');
  assert.equal(free.reason, 'PAUSE: no action: I am node2, a secondary, and there is no leader');
  assert.deepEqual(types(decide(input({ pg: downPg }, { cluster: cluster({ leader: lockedBy('node1') }), settings }))), [], 'no restart of a stopped postgres');
});

test('synchronous mode: only the members of the sync key race, and only against each other', () => {
  const settings = { ...input().settings, sync: { mode: true, strict: true, nodeCount: 1 } };
  const syncKey = { value: { leader: 'node1', sync_standby: 'node2' }, revision: 4 };
  const n3 = decide(input({ name: 'node3', pg: replicaPg(9000) }, { cluster: cluster({ sync: syncKey }), settings }));
  assert.match(n3.reason, /I am not a synchronous standby \(sync: node2\)/);
  const n2 = decide(input({ pg: replicaPg(1000) }, { cluster: cluster({ sync: syncKey }), settings, peers: [peer('node3', 9000)] }));
  assert.deepEqual(types(n2), ['acquireLock'], 'a non-sync peer further ahead does not stop the sync standby');
  const off = decide(input({ name: 'node3', pg: replicaPg(9000) }, { cluster: cluster({ sync: syncKey }) }));
  assert.deepEqual(types(off), ['acquireLock'], 'the key means nothing when synchronous mode is off');
});

test('watchdog required but not usable: the member neither bootstraps, nor races, nor restarts as primary', () => {
  const blocked = { watchdogBlocksLeadership: 'cannot use the watchdog device /dev/watchdog: ENOENT' };
  const why = 'the watchdog is required but not usable (cannot use the watchdog device /dev/watchdog: ENOENT)';
  const boot = decide(input({ ...blocked, dataDirEmpty: true, control: null, pg: downPg }, { cluster: cluster({ initialize: null, members: [] }) }));
  assert.deepEqual(types(boot), []);
  assert.equal(boot.reason, `no action: not bootstrapping a cluster: ${why}`);
  // The healthiest replica with a free lock does not race.
  const race = decide(input(blocked, { peers: [peer('node1', 900), peer('node3', 900)] }));
  assert.deepEqual(types(race), []);
  assert.equal(race.reason, `no action: the leader lock is free but I am not racing: ${why}`);
  assert.deepEqual(types(decide(input({}, { peers: [peer('node1', 900), peer('node3', 900)] }))), ['acquireLock'], 'without the block it races');
  // A running primary finding the lock free does not take it, and stops writes.
  const primary = decide(input({ ...blocked, pg: primaryPg() }));
  assert.deepEqual(primary.actions, [{ type: 'demote', mode: 'immediate-nolock' }]);
  assert.equal(primary.reason, `demoted self: the leader lock is free but I may not take it (${why})`);
  // Holding the lock with postgres down: give the lock up rather than start a primary.
  const down = decide(input({ ...blocked, name: 'node1', pg: downPg, control: control('in production') }, { cluster: cluster({ leader: lockedBy('node1') }) }));
  assert.deepEqual(down.actions, [{ type: 'releaseLock' }]);
  assert.equal(down.reason, `released the leader lock: ${why}`);
});

test('watchdog required and failing while leading: the primary demotes and releases the lock', () => {
  const failed = { watchdogBlocksLeadership: 'cannot feed the watchdog device /dev/watchdog: EIO' };
  const d = decide(input({ ...failed, name: 'node1', pg: primaryPg() }, { cluster: cluster({ leader: lockedBy('node1') }), leaseExpiresAt: 11_000 }));
  assert.deepEqual(d.actions, [{ type: 'demote', mode: 'immediate' }]);
  assert.equal(d.reason, 'demoted self because the watchdog is required but not usable (cannot feed the watchdog device /dev/watchdog: EIO)');
  // A lock won but not yet acted on (still a replica): released, not promoted.
  const won = decide(input({ ...failed, name: 'node1' }, { cluster: cluster({ leader: lockedBy('node1') }) }));
  assert.deepEqual(won.actions, [{ type: 'releaseLock' }]);
  // The other members are not affected by this member's watchdog: they follow as usual.
  assert.deepEqual(types(decide(input({}, { cluster: cluster({ leader: lockedBy('node1') }) }))), []);
});
