// The real harness's checkers on hand-made histories: each must pass a correct history and fail
// the history that breaks its claim, with evidence naming the operations involved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkConvergence, checkLostWrites, checkPromotions, checkSinglePrimary, checkStore, convergenceProblems, failoverTimes, formatLsn, parseLsn } from './checkers.ts';
import type { CommitInfo, ConvergenceSnapshot, NodeSnapshot, RunRecord, StoreOp } from './checkers.ts';
import type { ClientOp, NemesisEvent, RunEvent } from './types.ts';
import { classifyError } from './workload.ts';
import { buildSchedule, describeSchedule } from './schedule.ts';

const LEADER_KEY = '/service/test/leader';
let nextId = 0;

interface InsertSpec {
  node: string;
  value: number;
  at: [number, number | null];
  outcome?: ClientOp['outcome'];
  tl?: number;
  lsn?: number;
}

function insert(s: InsertSpec, commits: Map<number, CommitInfo>): ClientOp {
  const id = nextId++;
  const outcome = s.outcome ?? 'ok';
  if (outcome === 'ok') commits.set(id, { timeline: s.tl ?? 1, lsn: s.lsn ?? 1000 + s.value * 100 });
  return { type: 'client', id, client: `${s.node}-c0`, node: s.node, f: 'insert', value: s.value, invokedAt: s.at[0], completedAt: s.at[1], outcome };
}

function read(node: string, values: number[], at = 100_000): ClientOp {
  return { type: 'client', id: nextId++, client: `final-${node}`, node, f: 'read', value: null, invokedAt: at, completedAt: at + 10, outcome: 'ok', readValues: values };
}

function snapNode(name: string, role: 'primary' | 'replica', upstream: string | null, tl = 2): NodeSnapshot {
  return {
    name,
    role,
    timeline: tl,
    address: `10.0.0.${name.slice(1)}:5432`,
    receiver: upstream === null ? null : { status: 'streaming', upstream },
    raft: { role: name === 'n1' ? 'leader' : 'follower', term: 3, leader: 'n1', voters: ['n1', 'n2', 'n3'] },
  };
}

function healthySnapshot(primary = 'n1'): ConvergenceSnapshot {
  const addr = `10.0.0.${primary.slice(1)}:5432`;
  return { at: 5000, leaderKey: primary, nodes: ['n1', 'n2', 'n3'].map((n) => (n === primary ? snapNode(n, 'primary', null) : snapNode(n, 'replica', addr))) };
}

function record(history: RunEvent[], commits: Map<number, CommitInfo>, over: Partial<RunRecord> = {}): RunRecord {
  return {
    mode: 'sync-strict',
    history,
    commits,
    maximumLagOnFailover: 1_048_576,
    lagSlackBytes: 0,
    publishMarginMs: 1000,
    convergence: { healedAt: 0, boundMs: 60_000, convergedAt: 5000, last: healthySnapshot() },
    storeOps: [],
    leaderKey: LEADER_KEY,
    raftSamples: [],
    positions: [],
    decisions: [],
    mayFailOver: { n1: true, n2: true, n3: true },
    ...over,
  };
}

// ---------------------------------------------------------------------------------------------
// (1) lost writes

test('lost-writes: every acknowledged write present passes; unknown writes may be present or absent', () => {
  const commits = new Map<number, CommitInfo>();
  const h: RunEvent[] = [
    insert({ node: 'n1', value: 1, at: [0, 5] }, commits),
    insert({ node: 'n1', value: 2, at: [10, null], outcome: 'unknown' }, commits),
    insert({ node: 'n1', value: 3, at: [20, null], outcome: 'unknown' }, commits),
    insert({ node: 'n2', value: 4, at: [20, 22], outcome: 'fail' }, commits),
    read('n1', [1, 3]),
  ];
  const r = checkLostWrites(record(h, commits));
  assert.equal(r.valid, true, r.summary);
  assert.match(r.summary, /1 acknowledged, 0 lost; 2 unknown \(1 present\)/);
});

test('lost-writes: an acknowledged write missing after failover is a violation in sync-strict mode', () => {
  const commits = new Map<number, CommitInfo>();
  const h: RunEvent[] = [insert({ node: 'n1', value: 1, at: [0, 5] }, commits), insert({ node: 'n1', value: 2, at: [10, 15] }, commits), read('n1', [1])];
  const r = checkLostWrites(record(h, commits));
  assert.equal(r.valid, false);
  assert.match(r.evidence[0], /^lost: #\d+ n1-c0 insert 2 on n1 \[0\.010 s, 0\.015 s\] ok/);
});

test('lost-writes: a failed insert that is present, or a value never inserted, is a violation', () => {
  const commits = new Map<number, CommitInfo>();
  const h: RunEvent[] = [insert({ node: 'n2', value: 7, at: [0, 5], outcome: 'fail' }, commits), read('n1', [7, 99])];
  const r = checkLostWrites(record(h, commits));
  assert.equal(r.valid, false);
  assert.ok(r.evidence.some((e) => /value 99 .* never inserted/.test(e)));
  assert.ok(r.evidence.some((e) => /failed insert is present/.test(e)));
});

test('lost-writes: in async mode loss within maximum_lag_on_failover passes, beyond it fails', () => {
  const commits = new Map<number, CommitInfo>();
  const h: RunEvent[] = [
    insert({ node: 'n1', value: 1, at: [0, 5], tl: 1, lsn: 10_000 }, commits),
    insert({ node: 'n1', value: 2, at: [10, 15], tl: 1, lsn: 10_500 }, commits),
    insert({ node: 'n1', value: 3, at: [20, 25], tl: 1, lsn: 12_000 }, commits),
    insert({ node: 'n2', value: 4, at: [50, 55], tl: 2, lsn: 13_000 }, commits),
    read('n2', [1, 4]),
  ];
  const within = checkLostWrites(record(h, commits, { mode: 'async', maximumLagOnFailover: 2000, convergence: { healedAt: 0, boundMs: 1, convergedAt: 1, last: healthySnapshot('n2') } }));
  assert.equal(within.valid, true, within.summary);
  assert.match(within.summary, /2 lost.*worst lost write 2000 bytes/);
  const beyond = checkLostWrites(record(h, commits, { mode: 'async', maximumLagOnFailover: 1000, convergence: { healedAt: 0, boundMs: 1, convergedAt: 1, last: healthySnapshot('n2') } }));
  assert.equal(beyond.valid, false);
  assert.match(beyond.evidence[0], /lost 2000 bytes past n1's last surviving write: .*insert 3/);
});

test('lost-writes: no final read from a primary is unknown, not a pass', () => {
  const commits = new Map<number, CommitInfo>();
  const r = checkLostWrites(record([insert({ node: 'n1', value: 1, at: [0, 5] }, commits)], commits));
  assert.equal(r.valid, 'unknown');
});

// ---------------------------------------------------------------------------------------------
// (2) single primary

test('single-primary: a clean hand-over (old acks end before the new primary first acks) passes, also A→B→A', () => {
  const commits = new Map<number, CommitInfo>();
  const h: RunEvent[] = [
    insert({ node: 'n1', value: 1, at: [0, 5], tl: 1 }, commits),
    // Invoked before n2's first ack completed, acknowledged later: concurrent, allowed.
    insert({ node: 'n1', value: 2, at: [90, 120], tl: 1 }, commits),
    insert({ node: 'n2', value: 3, at: [95, 100], tl: 2 }, commits),
    insert({ node: 'n2', value: 4, at: [130, 135], tl: 2 }, commits),
    insert({ node: 'n1', value: 5, at: [300, 305], tl: 3 }, commits),
  ];
  const r = checkSinglePrimary(record(h, commits));
  assert.equal(r.valid, true, r.evidence.join('\n'));
  assert.match(r.summary, /3 primary reigns, none overlapping: n1@tl1 .* → n2@tl2 .* → n1@tl3/);
});

test('single-primary: the old primary acknowledging a write invoked after the new one took writes is a violation', () => {
  const commits = new Map<number, CommitInfo>();
  const h: RunEvent[] = [
    insert({ node: 'n1', value: 1, at: [0, 5], tl: 1 }, commits),
    insert({ node: 'n2', value: 2, at: [95, 100], tl: 2 }, commits),
    insert({ node: 'n1', value: 3, at: [101, 104], tl: 1 }, commits),
  ];
  const r = checkSinglePrimary(record(h, commits));
  assert.equal(r.valid, false);
  assert.equal(r.evidence.length, 1);
  assert.match(r.evidence[0], /n1 \(timeline 1\) acknowledged #\d+ n1-c0 insert 3 .* invoked after n2 \(timeline 2\) had acknowledged its first write as the newer primary: #\d+ n2-c0 insert 2/);
});

test('single-primary: two nodes promoted onto the same timeline and both taking writes is a violation', () => {
  const commits = new Map<number, CommitInfo>();
  const h: RunEvent[] = [
    insert({ node: 'n2', value: 1, at: [0, 5], tl: 2 }, commits),
    insert({ node: 'n3', value: 2, at: [10, 15], tl: 2 }, commits),
    insert({ node: 'n2', value: 3, at: [20, 25], tl: 2 }, commits),
    insert({ node: 'n3', value: 4, at: [30, 35], tl: 2 }, commits),
  ];
  const r = checkSinglePrimary(record(h, commits));
  assert.equal(r.valid, false);
  assert.match(r.evidence[0], /n2 \(timeline 2\) acknowledged .*insert 3/);
});

// ---------------------------------------------------------------------------------------------
// (3) convergence

test('convergence: a healthy snapshot and equal final reads pass', () => {
  const commits = new Map<number, CommitInfo>();
  const h = [read('n1', [1, 2]), read('n2', [2, 1]), read('n3', [1, 2])];
  assert.deepEqual(convergenceProblems(healthySnapshot()), []);
  const r = checkConvergence(record(h, commits));
  assert.equal(r.valid, true, r.evidence.join('\n'));
});

test('convergence: each way a snapshot can be wrong is named', () => {
  const s = healthySnapshot();
  const two = { ...s, nodes: s.nodes.map((n) => (n.name === 'n2' ? { ...n, role: 'primary' as const, receiver: null } : n)) };
  assert.match(convergenceProblems(two)[0], /2 primaries \(n1, n2\)/);
  const wrongUpstream = { ...s, nodes: s.nodes.map((n) => (n.name === 'n3' ? { ...n, receiver: { status: 'streaming', upstream: '10.0.0.2:5432' } } : n)) };
  assert.match(convergenceProblems(wrongUpstream).join(), /n3: streams from 10\.0\.0\.2:5432, not from n1/);
  const forked = { ...s, nodes: s.nodes.map((n) => (n.name === 'n3' ? { ...n, timeline: 1 } : n)) };
  assert.match(convergenceProblems(forked).join(), /n3: on timeline 1, the primary on 2/);
  assert.match(convergenceProblems({ ...s, leaderKey: 'n2' }).join(), /the leader key names n2, the primary is n1/);
  const raftSplit = { ...s, nodes: s.nodes.map((n) => (n.name === 'n3' ? { ...n, raft: { role: 'follower', term: 3, leader: 'n2', voters: ['n1', 'n2'] } } : n)) };
  const problems = convergenceProblems(raftSplit).join('\n');
  assert.match(problems, /disagree on the leader/);
  assert.match(problems, /disagree on the voters/);
});

test('convergence: not converged within the bound, or a replica whose final read differs, fails', () => {
  const commits = new Map<number, CommitInfo>();
  const late = checkConvergence(record([], commits, { convergence: { healedAt: 0, boundMs: 30_000, convergedAt: null, last: { ...healthySnapshot(), leaderKey: null } } }));
  assert.equal(late.valid, false);
  assert.match(late.evidence.join('\n'), /the leader key names nobody/);
  const differs = checkConvergence(record([read('n1', [1, 2]), read('n2', [1]), read('n3', [1, 2, 3])], commits));
  assert.equal(differs.valid, false);
  assert.match(differs.evidence[0], /n2 differs .*1 missing \(2\), 0 extra/);
  assert.match(differs.evidence[1], /n3 differs .*0 missing \(\), 1 extra \(3\)/);
});

// ---------------------------------------------------------------------------------------------
// (4) store

function storeOp(kind: 'get' | 'put', key: string, value: string | null, at: [number, number | null], extra: Partial<StoreOp> = {}): StoreOp {
  const op: StoreOp = { id: nextId++, client: 'probe', member: 'n1', kind, key, invokeTime: at[0], completeTime: at[1], outcome: at[1] === null ? 'unknown' : 'ok', ...extra };
  if (kind === 'put') op.value = value!;
  else op.result = { value };
  return op;
}

test('store: linearizable probes, forward-moving leader key reads and one leader per term pass', () => {
  const commits = new Map<number, CommitInfo>();
  const ops = [
    storeOp('put', 'p/1', 'a', [0, 5]),
    storeOp('get', 'p/1', 'a', [6, 8]),
    storeOp('get', LEADER_KEY, 'n1', [0, 3], { modRevision: 10 }),
    storeOp('get', LEADER_KEY, 'n2', [4, 9], { modRevision: 14 }),
    storeOp('get', LEADER_KEY, 'n1', [5, 8], { modRevision: 10 }), // concurrent with the read of 14: fine
  ];
  const samples = [
    { at: 0, node: 'n1', term: 2, role: 'leader', leader: 'n1' },
    { at: 1, node: 'n2', term: 3, role: 'leader', leader: 'n2' },
  ];
  const r = checkStore(record([], commits, { storeOps: ops, raftSamples: samples }));
  assert.equal(r.valid, true, r.evidence.join('\n'));
});

test('store: a stale leader key read, one revision with two values, two leaders in a term, or a non-linearizable probe fail', () => {
  const commits = new Map<number, CommitInfo>();
  const stale = [storeOp('get', LEADER_KEY, 'n2', [0, 3], { modRevision: 14 }), storeOp('get', LEADER_KEY, 'n1', [4, 6], { modRevision: 10 })];
  const r1 = checkStore(record([], commits, { storeOps: stale }));
  assert.equal(r1.valid, false);
  assert.match(r1.evidence[0], /stale leader key read: .*revision 10.* invoked after .*revision 14/);
  const forked = [storeOp('get', LEADER_KEY, 'n2', [0, 3], { modRevision: 14 }), storeOp('get', LEADER_KEY, 'n1', [4, 6], { modRevision: 14 })];
  assert.match(checkStore(record([], commits, { storeOps: forked })).evidence[0], /revision 14 read as two values/);
  const samples = [{ at: 0, node: 'n1', term: 3, role: 'leader', leader: 'n1' }, { at: 1, node: 'n2', term: 3, role: 'leader', leader: 'n2' }];
  assert.match(checkStore(record([], commits, { raftSamples: samples })).evidence[0], /two leaders in Raft term 3: n1 .* and n2/);
  const lostPut = [storeOp('put', 'p/1', 'a', [0, 5]), storeOp('get', 'p/1', null, [6, 8])];
  const r4 = checkStore(record([], commits, { storeOps: lostPut }));
  assert.equal(r4.valid, false);
  assert.match(r4.evidence[0], /probe operations not linearizable: key "p\/1"/);
});

// ---------------------------------------------------------------------------------------------
// (5) promotions

test('promotions: a nofailover node promoting itself, or a node far behind, is a violation', () => {
  const commits = new Map<number, CommitInfo>();
  const decisions = [{ at: 10_000, node: 'n3', msg: 'promoted self because the leader lock was free and I am the healthiest member' }];
  const ok = checkPromotions(record([], commits, { decisions }));
  assert.equal(ok.valid, true);
  const tagged = checkPromotions(record([], commits, { decisions, mayFailOver: { n1: true, n2: true, n3: false } }));
  assert.equal(tagged.valid, false);
  assert.match(tagged.evidence[0], /n3 is tagged nofailover but decided to promote itself/);
  // Deciding to is enough, even when the race was lost.
  const lostRace = [{ at: 10_000, node: 'n3', msg: 'promoted self because the leader lock was free and I am the healthiest member; but lost the race for the leader lock' }];
  assert.equal(checkPromotions(record([], commits, { decisions: lostRace, mayFailOver: { n3: false } })).valid, false);
  assert.match(checkPromotions(record([], commits, { decisions: lostRace })).summary, /^0 promotions, 1 lost races/);
  const positions = [
    { at: 8000, node: 'n1', role: 'primary' as const, position: 50_000_000 },
    { at: 9800, node: 'n1', role: 'primary' as const, position: 90_000_000 }, // too close to the promotion to count
    { at: 10_500, node: 'n3', role: 'primary' as const, position: 40_000_000 },
  ];
  const behind = checkPromotions(record([], commits, { decisions, positions }));
  assert.equal(behind.valid, false);
  assert.match(behind.evidence[0], /n3 promoted itself at 10\.000 s at least 10000000 bytes behind/);
  const near = checkPromotions(record([], commits, { decisions, positions, maximumLagOnFailover: 20_000_000 }));
  assert.equal(near.valid, true);
  assert.match(near.summary, /1 promotions \(n3@10\.000 s\), 0 lost races; lag judged for 1/);
});

// ---------------------------------------------------------------------------------------------

test('failover times: to another node, recovery of the same node, and uninterrupted writes', () => {
  const commits = new Map<number, CommitInfo>();
  const fault = (kind: string, at: number): NemesisEvent => ({ type: 'nemesis', phase: 'start', kind, targets: [], detail: '', at });
  const h: RunEvent[] = [
    insert({ node: 'n1', value: 1, at: [0, 5] }, commits),
    fault('partition-primary', 10),
    insert({ node: 'n2', value: 2, at: [2000, 2500] }, commits),
    fault('kill-postgres', 5000),
    insert({ node: 'n2', value: 3, at: [7000, 7200] }, commits),
    fault('partition-one', 10_000),
    insert({ node: 'n2', value: 4, at: [10_100, 10_200] }, commits),
    insert({ node: 'n2', value: 5, at: [10_300, 10_400] }, commits),
  ];
  assert.deepEqual(failoverTimes(h).map((f) => [f.fault, f.what, f.before, f.after, f.ms]), [
    ['partition-primary', 'failover', 'n1', 'n2', 2490],
    ['kill-postgres', 'recovered', 'n2', 'n2', 2200],
    ['partition-one', 'uninterrupted', 'n2', null, null],
  ]);
});

test('LSNs print and parse as PostgreSQL writes them', () => {
  assert.equal(formatLsn(parseLsn('1/A0001F8')), '1/A0001F8');
  assert.equal(parseLsn('0/3000060'), 0x3000060);
});

// ---------------------------------------------------------------------------------------------
// The workload's classification and the schedule (pure parts of the run).

test('classification: not sent, or an ERROR that rules out a commit, is fail; anything else after sending is unknown', () => {
  const pgError = (code: string, severity = 'ERROR') => Object.assign(new Error('x'), { code, severity });
  assert.equal(classifyError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), false), 'fail');
  assert.equal(classifyError(pgError('25006'), true), 'fail'); // cannot execute INSERT in a read-only transaction
  assert.equal(classifyError(pgError('23505'), true), 'fail');
  assert.equal(classifyError(pgError('57P01', 'FATAL'), true), 'unknown'); // terminating connection due to administrator command
  assert.equal(classifyError(pgError('57014'), true), 'unknown'); // canceled: may have been waiting for its standby after commit
  assert.equal(classifyError(new Error('Connection terminated unexpectedly'), true), 'unknown');
  assert.equal(classifyError(new Error('no answer within 2000 ms'), true), 'unknown');
});

test('schedule: the same seed gives the same schedule; every nemesis is drawn before any repeats; quiet and hold within bounds', () => {
  const opts = { seed: 42, nemeses: ['a', 'b', 'c'], durationMs: 90_000 };
  const s = buildSchedule(opts);
  assert.deepEqual(buildSchedule(opts), s);
  assert.notDeepEqual(buildSchedule({ ...opts, seed: 43 }), s);
  assert.deepEqual(new Set(s.faults.slice(0, 3).map((f) => f.nemesis)), new Set(['a', 'b', 'c']));
  let end = 0;
  for (const f of s.faults) {
    assert.ok(f.startAt - end >= 5000 && f.startAt - end <= 10_000, `quiet before fault ${f.index}`);
    assert.ok(f.holdMs >= 5000 && f.holdMs <= 15_000);
    end = f.startAt + f.holdMs;
  }
  assert.ok(end + 5000 <= 90_000);
  assert.match(describeSchedule(s), /^schedule \(seed 42, 90\.0 s of faults and quiet periods\):\n {3}1\. at \+ +\d+\.\d s {2}[abc] +held \d+\.\d s/);
});
