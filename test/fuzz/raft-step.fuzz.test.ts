// Fuzzing the pure Raft core with messages a member should never send: impossible terms and indexes
// (negative, fractional, NaN, beyond 2^52), entries that break Log Matching or carry future terms,
// commits beyond the log, snapshots with no voters, acknowledgements of entries never sent, messages
// "from" the node itself. The node driver stops a member on any exception from the core
// (raft-node.ts guard), so step() must never throw here; and afterwards the victim's state must be
// self-consistent: term and commit never go back, the committed prefix never changes, log terms
// never fall, the leader's progress stays within its log. A message the core judges impossible
// must change nothing at all. A plausible lie (a forged vote, a plausible commit) may be acted on:
// Raft does not tolerate Byzantine members, only impossible input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TestNetwork } from '../../src/raft/core/test-network.ts';
import type { RawNode } from '../../src/raft/core/raw-node.ts';
import { encodeConfChange } from '../../src/raft/core/conf-change.ts';
import { MAX_RAFT_NUMBER, implausibility } from '../../src/raft/core/message-check.ts';
import type { Entry, Message } from '../../src/raft/core/types.ts';
import { hostileNumber, params } from './support.ts';

const RUNS = 400;
const IDS = ['a', 'b', 'c'];

// ---- Generators ---------------------------------------------------------------------------------

/** Mostly numbers a real cluster of this size uses, sometimes ones no member can send. */
const position = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 12 }) }, { weight: 1, arbitrary: hostileNumber });
const term = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 4 }) }, { weight: 1, arbitrary: hostileNumber });
const sender = fc.constantFrom(...IDS, 'z');
const ctx = fc.constantFrom('r1', 'r2', '');

const confData = fc.oneof(
  fc.record({ type: fc.constantFrom('addLearner' as const, 'promote' as const, 'remove' as const), node: fc.constantFrom(...IDS, 'd') }).map((cc) => encodeConfChange(cc)),
  fc.uint8Array({ maxLength: 8 }),
);

/** Entries after `index`: consecutive (the usual case) or scattered, with terms in or out of order. */
const entries = (index: number): fc.Arbitrary<Entry[]> =>
  fc.tuple(
    fc.array(fc.tuple(term, fc.boolean(), confData, fc.uint8Array({ maxLength: 4 })), { maxLength: 4 }),
    fc.boolean(),
    fc.array(position, { maxLength: 4 }),
  ).map(([es, consecutive, scatter]) =>
    es.map(([t, conf, cdata, data], i) => ({ term: t, index: consecutive || i >= scatter.length ? index + 1 + i : scatter[i]!, type: conf ? 'conf' : 'normal', data: conf ? cdata : data })),
  );

const message = (to: string): fc.Arbitrary<Message> => {
  const base = fc.record({ from: sender, to: fc.oneof({ weight: 9, arbitrary: fc.constant(to) }, { weight: 1, arbitrary: sender }), term });
  const m = fc.oneof(
    fc.tuple(base, position, term, position).chain(([b, index, logTerm, commit]) =>
      entries(Number.isSafeInteger(index) ? index : 0).map((es) => ({ ...b, type: 'app', index, logTerm, commit, entries: es }))),
    fc.tuple(base, position, fc.boolean(), position, term).map(([b, index, reject, hintIndex, hintTerm]) => ({ ...b, type: 'appResp', index, reject, hintIndex, hintTerm })),
    fc.tuple(base, fc.constantFrom('vote', 'preVote'), term, position, fc.boolean()).map(([b, type, logTerm, index, transfer]) => ({ ...b, type, logTerm, index, transfer })),
    fc.tuple(base, fc.constantFrom('voteResp', 'preVoteResp'), fc.boolean()).map(([b, type, reject]) => ({ ...b, type, reject })),
    fc.tuple(base, position, fc.option(ctx)).map(([b, commit, context]) => ({ ...b, type: 'heartbeat', commit, context })),
    fc.tuple(base, fc.option(ctx)).map(([b, context]) => ({ ...b, type: 'heartbeatResp', context })),
    fc.tuple(base, position, term, fc.subarray([...IDS, 'd']), fc.subarray(['d', 'e']), fc.uint8Array({ maxLength: 4 })).map(([b, index, t, voters, learners, data]) => ({
      ...b, type: 'snap', snapshot: { meta: { index, term: t, conf: { voters, learners } }, data },
    })),
    fc.tuple(base, ctx).map(([b, context]) => ({ ...b, type: 'readIndex', context })),
    fc.tuple(base, position, ctx).map(([b, index, context]) => ({ ...b, type: 'readIndexResp', index, context })),
    base.map((b) => ({ ...b, type: 'timeoutNow' })),
    fc.tuple(base, sender).map(([b, target]) => ({ ...b, type: 'transferLeader', target })),
  );
  return m as fc.Arbitrary<Message>;
};

type Op = { kind: 'step'; msg: Message } | { kind: 'tick'; n: number } | { kind: 'propose' } | { kind: 'settle' };

const ops = (victim: string): fc.Arbitrary<Op[]> =>
  fc.array(
    fc.oneof(
      { weight: 8, arbitrary: message(victim).map((msg): Op => ({ kind: 'step', msg })) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 25 }).map((n): Op => ({ kind: 'tick', n })) },
      { weight: 1, arbitrary: fc.constant<Op>({ kind: 'propose' }) },
      { weight: 2, arbitrary: fc.constant<Op>({ kind: 'settle' }) },
    ),
    { minLength: 1, maxLength: 25 },
  );

// ---- The cluster and the checks -------------------------------------------------------------------

/** a leads a cluster of three with a few entries committed; `victim` is whom the messages go to. */
function cluster(preVote: boolean): TestNetwork {
  const net = new TestNetwork(IDS, { preVote, checkQuorum: preVote });
  net.get('a').campaign();
  net.settle();
  for (let i = 0; i < 3; i++) net.propose('a', `v${i}`);
  return net;
}

const safe = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;

/** What must hold of one node at any time, and between two observations of it. */
class Watch {
  private lastTerm = 0;
  private lastCommit = 0;
  /** Terms of entries seen committed: a committed entry never changes. */
  private readonly committed = new Map<number, number>();

  check(node: RawNode, where: string): void {
    const r = node.raft;
    const st = node.status();
    const at = `${where}: ${st.id} ${JSON.stringify({ term: st.term, commit: st.commit, applied: st.applied, first: st.firstIndex, last: st.lastIndex, role: st.role })}`;
    for (const n of [st.term, st.commit, st.applied, st.lastIndex]) assert.ok(safe(n), `${at}: ${n} is not a safe index`);
    assert.ok(st.term >= this.lastTerm, `${at}: term went back from ${this.lastTerm}`);
    assert.ok(st.commit >= this.lastCommit, `${at}: commit went back from ${this.lastCommit}`);
    assert.ok(st.commit <= st.lastIndex, `${at}: commit beyond the log`);
    assert.ok(st.applied <= st.commit, `${at}: applied beyond commit`);
    assert.ok(st.firstIndex - 1 <= st.lastIndex, `${at}: first index beyond last + 1`);
    // Log terms never fall along the log and never exceed the node's term.
    let prev = r.log.term(st.firstIndex - 1);
    for (let i = st.firstIndex; i <= st.lastIndex; i++) {
      const t = r.log.term(i);
      assert.ok(safe(t) && t >= prev && t <= st.term, `${at}: entry ${i} has term ${t} after ${prev} (node term ${st.term})`);
      prev = t;
    }
    for (const [i, t] of this.committed) {
      if (i >= st.firstIndex && i <= st.lastIndex) assert.equal(r.log.term(i), t, `${at}: committed entry ${i} changed term`);
    }
    for (let i = Math.max(st.firstIndex, this.lastCommit + 1); i <= st.commit; i++) this.committed.set(i, r.log.term(i));
    if (st.role === 'leader') {
      assert.equal(st.lead, st.id, `${at}: a leader names another leader`);
      assert.equal(st.vote, st.id, `${at}: a leader did not vote for itself`);
      for (const [id, pr] of Object.entries(st.progress)) {
        assert.ok(safe(pr.match) && pr.match <= st.lastIndex, `${at}: ${id}'s match ${pr.match} beyond the log`);
        assert.ok(safe(pr.next) && pr.next > pr.match && pr.next <= st.lastIndex + 1, `${at}: ${id}'s next ${pr.next} (match ${pr.match})`);
      }
    }
    assert.ok(st.conf.voters.length > 0, `${at}: no voters left`);
    this.lastTerm = st.term;
    this.lastCommit = st.commit;
  }
}

/** The victim's whole observable state, to show that a refused message changed nothing. */
function stateOf(node: RawNode): string {
  const r = node.raft;
  return JSON.stringify({ status: node.status(), msgs: r.msgs, readStates: r.readStates, unstable: r.log.unstable.entries.map((e) => [e.index, e.term]), elapsed: r.electionElapsed });
}

function run(net: TestNetwork, victim: string, script: Op[]): void {
  const watches = new Map(IDS.map((id) => [id, new Watch()]));
  const checkAll = (where: string): void => {
    for (const id of IDS) watches.get(id)!.check(net.get(id), where);
  };
  checkAll('before');
  script.forEach((op, i) => {
    const where = `op ${i} (${op.kind}${op.kind === 'step' ? ` ${op.msg.type}` : ''})`;
    const node = net.get(victim);
    if (op.kind === 'step') {
      const impossible = implausibility(op.msg) !== null || op.msg.to !== victim || op.msg.from === victim;
      const before = impossible ? stateOf(node) : '';
      const refused = node.raft.refusedMessages;
      node.step(op.msg);
      if (impossible) {
        assert.equal(stateOf(node), before, `${where}: an impossible message changed state: ${JSON.stringify(op.msg)}`);
        assert.equal(node.raft.refusedMessages, refused + 1, `${where}: not counted as refused`);
      }
    } else if (op.kind === 'tick') {
      for (let t = 0; t < op.n; t++) net.tickAll();
    } else if (op.kind === 'propose') {
      const leader = net.leader();
      if (leader) {
        try {
          net.get(leader).propose([new Uint8Array([i])]);
        } catch {
          // refused (a transfer under way, or the leader just stepped down): fine
        }
      }
    }
    // The driver persists and applies every Ready; it throws if the core hands it anything
    // inconsistent (a gap, an old snapshot, an undecodable conf change).
    net.stabilize(5000);
    checkAll(where);
  });
}

// ---- Properties -----------------------------------------------------------------------------------

for (const preVote of [true, false]) {
  for (const victim of ['a', 'b']) {
    test(`step: impossible messages to the ${victim === 'a' ? 'leader' : 'follower'} never throw nor corrupt (preVote ${preVote})`, () => {
      fc.assert(fc.property(ops(victim), (script) => run(cluster(preVote), victim, script)), params(RUNS, 0.25));
    });
  }
}

test('step: a single message of any shape is refused or handled, never thrown', () => {
  const junk = fc.oneof(fc.constant(null), fc.constant(undefined), fc.integer(), fc.string(), fc.object(), fc.array(fc.anything(), { maxLength: 3 }));
  const shape = fc.record({
    type: fc.oneof(fc.constantFrom('app', 'appResp', 'vote', 'preVote', 'voteResp', 'preVoteResp', 'heartbeat', 'heartbeatResp', 'snap', 'readIndex', 'readIndexResp', 'timeoutNow', 'transferLeader'), fc.string()),
    from: fc.oneof(sender, junk), to: fc.oneof(fc.constant('b'), junk), term: fc.oneof(term, junk), index: fc.oneof(position, junk), logTerm: fc.oneof(term, junk),
    commit: fc.oneof(position, junk), entries: fc.oneof(entries(2), junk), reject: fc.oneof(fc.boolean(), junk), transfer: fc.oneof(fc.boolean(), junk),
    hintIndex: fc.oneof(position, junk), hintTerm: fc.oneof(term, junk), context: fc.oneof(ctx, junk), target: fc.oneof(sender, junk),
    snapshot: fc.oneof(junk, fc.record({ meta: fc.oneof(junk, fc.record({ index: fc.oneof(position, junk), term: fc.oneof(term, junk), conf: fc.oneof(junk, fc.record({ voters: fc.oneof(junk, fc.constant(['a'])), learners: fc.oneof(junk, fc.constant([])) })) })), data: fc.oneof(junk, fc.uint8Array({ maxLength: 2 })) })),
  }, { requiredKeys: ['type'] });
  fc.assert(
    fc.property(fc.constantFrom('a', 'b'), shape, (victim, msg) => {
      const net = cluster(true);
      const w = new Watch();
      w.check(net.get(victim), 'before');
      net.get(victim).step({ ...msg, to: msg.to === 'b' ? victim : msg.to } as unknown as Message);
      net.stabilize(5000);
      w.check(net.get(victim), 'after');
    }),
    params(RUNS, 2),
  );
});

// ---- Regression tests: each input the fuzzer (or its first probes) found -----------------------------

/** A cluster led by a, with entries 1..5 committed everywhere; returns it and a step-and-settle helper. */
function settled(): { net: TestNetwork; deliver: (to: string, m: Message) => void } {
  const net = cluster(true);
  return {
    net,
    deliver: (to, m) => {
      net.get(to).step(m);
      net.stabilize();
    },
  };
}

test('regression: an append acknowledged beyond the leader\'s log is dropped (it stalled commits for good)', () => {
  const { net, deliver } = settled();
  deliver('a', { type: 'appResp', from: 'b', to: 'a', term: 1, index: 1e15, reject: false, hintIndex: 0, hintTerm: 0 });
  deliver('a', { type: 'appResp', from: 'c', to: 'a', term: 1, index: 1e15, reject: false, hintIndex: 0, hintTerm: 0 });
  assert.equal(net.get('a').status().progress.b!.match, 5);
  net.propose('a', 'after');
  assert.deepEqual(net.appliedTexts('b').at(-1), 'after', 'commits still advance');
});

test('regression: a message "from" the node itself is dropped (a forged ack counted unpersisted entries)', () => {
  const { net } = settled();
  const a = net.get('a');
  a.propose([new Uint8Array([1])]); // not yet persisted on a: its own match must not move
  a.step({ type: 'appResp', from: 'a', to: 'a', term: 1, index: 6, reject: false, hintIndex: 0, hintTerm: 0 });
  assert.equal(a.status().progress.a!.match, 5);
  assert.match(a.raft.lastRefusal ?? '', /to itself/);
});

test('regression: entries of a term above the message\'s are dropped (they made a log ahead of every term)', () => {
  const { net, deliver } = settled();
  deliver('b', { type: 'app', from: 'a', to: 'b', term: 1, logTerm: 1, index: 5, commit: 6, entries: [{ term: 99, index: 6, type: 'normal', data: new Uint8Array() }] });
  assert.equal(net.get('b').status().lastIndex, 5);
  assert.match(net.get('b').raft.lastRefusal ?? '', /term 99 is above the leader's term 1/);
});

test('regression: entries that do not follow the append\'s index are dropped (they left a gap in the log)', () => {
  const { net, deliver } = settled();
  deliver('b', { type: 'app', from: 'a', to: 'b', term: 1, logTerm: 1, index: 5, commit: 5, entries: [{ term: 1, index: 10, type: 'normal', data: new Uint8Array() }] });
  assert.equal(net.get('b').status().lastIndex, 5);
});

test('regression: a snapshot with no voters is dropped (the member could never elect anyone again)', () => {
  const { net, deliver } = settled();
  deliver('b', { type: 'snap', from: 'a', to: 'b', term: 1, snapshot: { meta: { index: 50, term: 1, conf: { voters: [], learners: [] } }, data: new Uint8Array() } });
  assert.deepEqual(net.get('b').status().conf.voters, IDS);
  assert.equal(net.get('b').status().commit, 5);
});

test('regression: a term beyond 2^52 is dropped (at 2^53 a new election no longer raises the term)', () => {
  const { net, deliver } = settled();
  deliver('b', { type: 'heartbeat', from: 'c', to: 'b', term: Number.MAX_SAFE_INTEGER, commit: 0, context: null });
  deliver('b', { type: 'snap', from: 'a', to: 'b', term: 1, snapshot: { meta: { index: MAX_RAFT_NUMBER + 1, term: 1, conf: { voters: IDS, learners: [] } }, data: new Uint8Array() } });
  assert.equal(net.get('b').status().term, 1);
  assert.equal(net.get('b').status().lastIndex, 5);
});

test('regression: an undecodable conf entry is dropped before it enters the log (applying it stopped the node)', () => {
  const { net, deliver } = settled();
  deliver('b', { type: 'app', from: 'a', to: 'b', term: 1, logTerm: 1, index: 5, commit: 6, entries: [{ term: 1, index: 6, type: 'conf', data: new Uint8Array([1, 2]) }] });
  assert.equal(net.get('b').status().lastIndex, 5);
  assert.match(net.get('b').raft.lastRefusal ?? '', /conf change entry is not valid JSON/);
});

test('regression: NaN, negative and fractional numbers are dropped, not compared', () => {
  const { net } = settled();
  const b = net.get('b');
  const before = stateOf(b);
  for (const bad of [NaN, -1, 2.5, Infinity]) {
    b.step({ type: 'heartbeat', from: 'a', to: 'b', term: bad, commit: 0, context: null });
    b.step({ type: 'app', from: 'a', to: 'b', term: 1, logTerm: 1, index: bad, commit: 5, entries: [] });
    b.step({ type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: bad, context: null });
  }
  assert.equal(stateOf(b), before);
  assert.equal(b.raft.refusedMessages, 12);
});

test('regression: a snapshot naming a member both voter and learner is dropped (it left no voter)', () => {
  const { net, deliver } = settled();
  deliver('b', { type: 'snap', from: 'a', to: 'b', term: 1, snapshot: { meta: { index: 6, term: 0, conf: { voters: ['d'], learners: ['d'] } }, data: new Uint8Array() } });
  assert.deepEqual(net.get('b').status().conf.voters, IDS);
  assert.match(net.get('b').raft.lastRefusal ?? '', /d as both voter and learner/);
});

test('a snapshot the application cannot install is dropped when the driver gives checkSnapshot', () => {
  const net = new TestNetwork(IDS, { checkSnapshot: (s) => (s.data.length > 0 && s.data[0] === 0xff ? 'undecodable state' : null) });
  net.get('a').campaign();
  net.settle();
  const b = net.get('b');
  const before = stateOf(b);
  b.step({ type: 'snap', from: 'a', to: 'b', term: 1, snapshot: { meta: { index: 9, term: 1, conf: { voters: IDS, learners: [] } }, data: new Uint8Array([0xff]) } });
  assert.equal(stateOf(b), before);
  assert.match(b.raft.lastRefusal ?? '', /snapshot at 9 cannot be installed: undecodable state/);
  b.step({ type: 'snap', from: 'a', to: 'b', term: 1, snapshot: { meta: { index: 9, term: 1, conf: { voters: IDS, learners: [] } }, data: new Uint8Array([1]) } });
  assert.equal(b.status().commit, 9, 'a good one is installed');
});

test('regression: a follower rejecting an entry it acknowledged is probed once per heartbeat, not in a hot loop', () => {
  // Found at 20,000 runs: a forged snapshot (index 6, term 0) replaced b's acknowledged entry 6.
  // The leader's next could not drop below match + 1, so it resent the same append at once,
  // forever ("network did not stabilize": a livelock with no tick in between).
  const { net } = settled();
  net.get('a').propose([new Uint8Array([0])]);
  net.stabilize(); // b acknowledges entry 6 but does not learn that it committed
  net.get('b').step({ type: 'snap', from: 'a', to: 'b', term: 2, snapshot: { meta: { index: 6, term: 0, conf: { voters: ['b'], learners: [] } }, data: new Uint8Array() } });
  net.stabilize();
  const before = net.delivered.length;
  for (let t = 0; t < 30; t++) net.tickAll(); // throws if the network never goes quiet
  const appsToB = net.delivered.slice(before).filter((m) => m.type === 'app' && m.to === 'b').length;
  assert.ok(appsToB <= 60, `${appsToB} appends to b in 30 ticks`);
});

test('regression: a term that does not convert to text is refused, not a TypeError in the refusal message', () => {
  const { net } = settled();
  const b = net.get('b');
  b.step({ type: 'timeoutNow', from: 'a', to: 'b', term: { toString: [] } } as unknown as Message);
  b.step({ type: Symbol('x'), from: 'a', to: 'b', term: 1 } as unknown as Message);
  assert.equal(b.raft.refusedMessages, 2);
});
