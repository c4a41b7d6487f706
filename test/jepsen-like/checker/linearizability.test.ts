import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Operation, Outcome } from './history.ts';
import { HistoryError, historyFromEvents } from './history.ts';
import type { LinearizabilityResult } from './linearizability.ts';
import { checkLinearizable } from './linearizability.ts';

// ---- builders: times are [invoke, complete]; `null` completion means outcome unknown ----

type Spec = Omit<Operation, 'id' | 'client'> & { client?: string };

function history(...specs: Spec[]): Operation[] {
  return specs.map((spec, id) => ({ ...spec, id, client: spec.client ?? `c${id}` }));
}
function times(t0: number, t1: number | null, outcome: Outcome) {
  return { invokeTime: t0, completeTime: outcome === 'unknown' ? null : t1, outcome };
}
const put = (key: string, value: string, t0: number, t1: number | null, outcome: Outcome = t1 === null ? 'unknown' : 'ok'): Spec => ({
  kind: 'put', key, value, ...times(t0, t1, outcome),
});
const del = (key: string, t0: number, t1: number | null, outcome: Outcome = t1 === null ? 'unknown' : 'ok'): Spec => ({
  kind: 'delete', key, ...times(t0, t1, outcome),
});
const get = (key: string, read: string | null, t0: number, t1: number): Spec => ({
  kind: 'get', key, result: { value: read }, ...times(t0, t1, 'ok'),
});
const cas = (key: string, expected: string | null, value: string, t0: number, t1: number | null, outcome: Outcome = t1 === null ? 'unknown' : 'ok'): Spec => ({
  kind: 'cas', key, expected, value, ...times(t0, t1, outcome),
});

function assertValid(result: LinearizabilityResult): void {
  assert.deepEqual(result, { valid: true }, result.valid === false ? result.evidence : JSON.stringify(result));
}
function assertInvalid(result: LinearizabilityResult, key: string): string {
  assert.equal(result.valid, false, `expected a violation, got ${JSON.stringify(result)}`);
  if (result.valid !== false) throw new Error('unreachable');
  assert.equal(result.key, key, result.evidence);
  return result.evidence;
}

// ---- hand-written histories ----

test('a sequential history that a register explains is linearizable', () => {
  assertValid(checkLinearizable(history(
    put('x', 'a', 0, 1), get('x', 'a', 2, 3), put('x', 'b', 4, 5), get('x', 'b', 6, 7),
    del('x', 8, 9), get('x', null, 10, 11),
  )));
});

test('a get concurrent with a put may read the old value or the new one', () => {
  assertValid(checkLinearizable(history(put('x', 'a', 0, 1), put('x', 'b', 2, 10), get('x', 'a', 3, 4))));
  assertValid(checkLinearizable(history(put('x', 'a', 0, 1), put('x', 'b', 2, 10), get('x', 'b', 3, 4))));
  // ...but once one read has seen the new value, a later read may not see the old one again.
  const evidence = assertInvalid(checkLinearizable(history(put('x', 'a', 0, 1), put('x', 'b', 2, 10), get('x', 'b', 3, 4), get('x', 'a', 5, 6))), 'x');
  assert.match(evidence, /#2 c2 get → "b" \[3, 4\] ok: read "b" but the register holds "a"/);
});

test('a stale read after a completed put is not linearizable, and the evidence names the read', () => {
  const evidence = assertInvalid(checkLinearizable(history(put('x', 'a', 0, 1), put('x', 'b', 2, 3), get('x', 'a', 4, 5))), 'x');
  assert.match(evidence, /key "x" is not linearizable/);
  assert.match(evidence, /After the prefix the register holds "a"/);
  assert.match(evidence, /#1 c1 put "b" \[2, 3\] ok: placing it here strands #2 c2 get → "a" \[4, 5\] ok: no op left writes "a" by t=5/);
});

test('a read of a value never written (a lost write) is not linearizable', () => {
  assertInvalid(checkLinearizable(history(put('x', 'a', 0, 1), put('x', 'b', 2, 3), get('x', 'zzz', 4, 5))), 'x');
  assertInvalid(checkLinearizable(history(put('x', 'a', 0, 1), get('x', null, 2, 3))), 'x');
});

test('a cas chain is linearizable only when each cas saw the value it expected', () => {
  assertValid(checkLinearizable(history(
    put('x', '1', 0, 1), cas('x', '1', '2', 2, 3), cas('x', '2', '3', 4, 5), get('x', '3', 6, 7),
  )));
  assertValid(checkLinearizable(history(cas('x', null, '1', 0, 1), get('x', '1', 2, 3))));
  // Two sequential cas from the same expected value cannot both succeed.
  assertInvalid(checkLinearizable(history(put('x', '1', 0, 1), cas('x', '1', '2', 2, 3), cas('x', '1', '3', 4, 5))), 'x');
  // Concurrent: one may win, the other must fail; both winning is an anomaly.
  assertValid(checkLinearizable(history(put('x', '1', 0, 1), cas('x', '1', '2', 2, 6), cas('x', '1', '3', 3, 5, 'fail'), get('x', '2', 7, 8))));
  assertInvalid(checkLinearizable(history(put('x', '1', 0, 1), cas('x', '1', '2', 2, 6), cas('x', '1', '3', 3, 5), get('x', '3', 7, 8))), 'x');
});

test('an unknown op that later reads show took effect is linearizable, even long after its invocation', () => {
  assertValid(checkLinearizable(history(put('x', 'a', 0, 1), put('x', 'b', 2, null), get('x', 'b', 10, 11))));
  assertValid(checkLinearizable(history(put('x', 'a', 0, 1), put('x', 'b', 2, null), get('x', 'a', 5, 6), get('x', 'b', 10, 11))));
  assertValid(checkLinearizable(history(put('x', 'a', 0, 1), cas('x', 'a', 'c', 2, null), get('x', 'c', 3, 4))));
  // A chain of unknown ops: only the second one's value is read, but it needs the first.
  assertValid(checkLinearizable(history(put('x', 'a', 0, 1), cas('x', 'a', 'b', 2, null), cas('x', 'b', 'c', 3, null), get('x', 'c', 5, 6))));
});

test('an unknown op whose value is never seen is linearizable (it may never have happened)', () => {
  assertValid(checkLinearizable(history(put('x', 'a', 0, 1), put('x', 'b', 2, null), get('x', 'a', 5, 6), get('x', 'a', 7, 8))));
  assertValid(checkLinearizable(history(put('x', 'a', 0, 1), del('x', 2, null), get('x', 'a', 5, 6))));
});

test('an unknown op cannot explain a read that completed before the op was invoked', () => {
  assertInvalid(checkLinearizable(history(put('x', 'a', 0, 1), get('x', 'b', 2, 3), put('x', 'b', 5, null))), 'x');
});

test('a failed op whose value is later read is not linearizable', () => {
  const evidence = assertInvalid(checkLinearizable(history(put('x', 'a', 0, 1), put('x', 'b', 2, 3, 'fail'), get('x', 'b', 4, 5))), 'x');
  assert.match(evidence, /#1 c1 put "b" \[2, 3\] fail: failed, so it never took effect/);
  assertInvalid(checkLinearizable(history(put('x', '1', 0, 1), cas('x', '1', '2', 2, 3, 'fail'), get('x', '2', 4, 5))), 'x');
});

test('a read of an absent key before any write returns null', () => {
  assertValid(checkLinearizable(history(get('x', null, 0, 1), put('x', 'a', 2, 3), get('x', 'a', 4, 5))));
  assertValid(checkLinearizable(history(get('x', null, 0, 1))));
});

test('real-time order is strict: an op completing at t and one invoked at t are concurrent', () => {
  assertValid(checkLinearizable(history(put('x', 'a', 0, 5), get('x', null, 5, 6))));
  assertInvalid(checkLinearizable(history(put('x', 'a', 0, 5), get('x', null, 6, 7))), 'x');
});

test('in a multi-key history only the bad key is reported', () => {
  const result = checkLinearizable(history(
    put('x', 'a', 0, 1), put('y', 'a', 0, 1), put('z', 'a', 0, 1),
    get('x', 'a', 2, 3), put('y', 'b', 2, 3), get('z', 'a', 2, 3),
    get('x', 'a', 4, 5), get('y', 'a', 4, 5), get('z', 'a', 4, 5),
  ));
  assertInvalid(result, 'y');
});

test('the step budget turns a long search into verdict unknown rather than a pass or a hang', () => {
  const ops = randomRegisterHistory(mulberry32(7), { ops: 200, keys: 1, clients: 8 });
  const result = checkLinearizable(ops, { maxStepsPerKey: 10 });
  assert.equal(result.valid, 'unknown');
  if (result.valid === 'unknown') assert.match(result.reason, /key "k0": gave up after 10 search steps/);
});

test('a bad key is reported even when another key ran out of budget', () => {
  const slow = randomRegisterHistory(mulberry32(7), { ops: 200, keys: 1, clients: 8 });
  const bad = history(put('x', 'a', 0, 1), put('x', 'b', 2, 3), get('x', 'a', 4, 5)).map((op) => ({ ...op, id: op.id + 1000 }));
  assertInvalid(checkLinearizable([...slow, ...bad], { maxStepsPerKey: 10 }), 'x');
});

test('historyFromEvents pairs completions with the client\'s open invocation', () => {
  const ops = historyFromEvents([
    { type: 'invoke', client: 'c1', time: 0, kind: 'put', key: 'x', value: 'a' },
    { type: 'invoke', client: 'c2', time: 1, kind: 'get', key: 'x' },
    { type: 'ok', client: 'c1', time: 2 },
    { type: 'ok', client: 'c2', time: 3, result: { value: 'a' } },
    { type: 'invoke', client: 'c1', time: 4, kind: 'cas', key: 'x', expected: 'a', value: 'b' },
    { type: 'info', client: 'c1', time: 5 },
    { type: 'invoke', client: 'c1', time: 6, kind: 'delete', key: 'x' },
    { type: 'fail', client: 'c1', time: 7 },
    { type: 'invoke', client: 'c2', time: 8, kind: 'get', key: 'x' },
  ]);
  assert.deepEqual(ops, [
    { id: 0, client: 'c1', kind: 'put', key: 'x', value: 'a', invokeTime: 0, completeTime: 2, outcome: 'ok' },
    { id: 1, client: 'c2', kind: 'get', key: 'x', invokeTime: 1, completeTime: 3, outcome: 'ok', result: { value: 'a' } },
    { id: 2, client: 'c1', kind: 'cas', key: 'x', expected: 'a', value: 'b', invokeTime: 4, completeTime: null, outcome: 'unknown' },
    { id: 3, client: 'c1', kind: 'delete', key: 'x', invokeTime: 6, completeTime: 7, outcome: 'fail' },
    { id: 4, client: 'c2', kind: 'get', key: 'x', invokeTime: 8, completeTime: null, outcome: 'unknown' },
  ]);
  assertValid(checkLinearizable(ops));
  const malformed = (f: () => unknown) => assert.throws(f, (e: unknown) => e instanceof HistoryError && e.code === 'ERR_BAD_HISTORY');
  malformed(() => historyFromEvents([{ type: 'ok', client: 'c1', time: 0 }]));
  malformed(() => historyFromEvents([
    { type: 'invoke', client: 'c1', time: 0, kind: 'get', key: 'x' },
    { type: 'invoke', client: 'c1', time: 1, kind: 'get', key: 'x' },
  ]));
  malformed(() => historyFromEvents([
    { type: 'invoke', client: 'c1', time: 0, kind: 'get', key: 'x' },
    { type: 'ok', client: 'c1', time: 1 },
  ]));
  malformed(() => checkLinearizable([...history(put('x', 'a', 0, 1)), ...history(put('x', 'b', 2, 3))]));
});

// ---- randomized: histories from a simulated atomic register ----

/** mulberry32: a small seeded PRNG, so every random history is reproducible from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)];
const int = (rand: () => number, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));

/**
 * Clients issue ops back to back on integer times (so endpoints often tie). Each op takes effect at
 * an integer point inside its interval, ties at one point in random order; the register's answers
 * at those points give the results. Some writes fail (never applied) and some become unknown
 * (applied or not, completion lost). A cas whose expected value is not current fails.
 */
function randomRegisterHistory(rand: () => number, shape: { ops: number; keys: number; clients: number; values?: number }): Operation[] {
  const clock = new Array<number>(shape.clients).fill(0);
  const planned: Array<{ op: Operation; point: number; tie: number; applies: boolean }> = [];
  const writtenSoFar = new Map<string, Array<string | null>>();
  for (let id = 0; id < shape.ops; id++) {
    const c = int(rand, 0, shape.clients - 1);
    const key = `k${int(rand, 0, shape.keys - 1)}`;
    const invokeTime = clock[c] + int(rand, 0, 2);
    const completeTime = invokeTime + int(rand, 0, 6);
    clock[c] = completeTime;
    const seen = writtenSoFar.get(key) ?? [null];
    writtenSoFar.set(key, seen);
    const kind = pick(rand, ['get', 'get', 'put', 'put', 'cas', 'delete'] as const);
    const op: Operation = { id, client: `c${c}`, kind, key, invokeTime, completeTime, outcome: 'ok' };
    if (kind === 'put' || kind === 'cas') {
      op.value = shape.values === undefined ? `v${id}` : `v${int(rand, 1, shape.values)}`;
      seen.push(op.value);
    }
    if (kind === 'cas') op.expected = rand() < 0.6 ? seen[seen.length - 2] : pick(rand, seen);
    let applies = true;
    const roll = rand();
    if (kind !== 'get' && roll < 0.05) {
      op.outcome = 'fail';
      applies = false;
    } else if (roll < 0.15) {
      op.outcome = 'unknown';
      applies = rand() < 0.5;
    }
    planned.push({ op, point: int(rand, invokeTime, completeTime), tie: rand(), applies });
  }
  planned.sort((a, b) => a.point - b.point || a.tie - b.tie);
  const register = new Map<string, string | null>();
  for (const { op, applies } of planned) {
    const current = register.get(op.key) ?? null;
    if (op.kind === 'get') {
      if (op.outcome === 'ok') op.result = { value: current };
    } else if (op.kind === 'cas' && op.expected !== current) {
      if (op.outcome === 'ok') op.outcome = 'fail'; // precondition false: the client saw a failure
    } else if (applies) {
      register.set(op.key, op.kind === 'delete' ? null : (op.value ?? null));
    }
  }
  for (const { op } of planned) if (op.outcome === 'unknown') op.completeTime = null;
  return planned.map((p) => p.op).sort((a, b) => a.id - b.id);
}

test('200 random histories of an atomic register are linearizable, and each fails once one read is corrupted', () => {
  let corrupted = 0;
  for (let seed = 1; seed <= 200; seed++) {
    const rand = mulberry32(seed);
    const ops = randomRegisterHistory(rand, { ops: int(rand, 10, 80), keys: int(rand, 1, 3), clients: int(rand, 2, 6) });
    const result = checkLinearizable(ops);
    assert.deepEqual(result, { valid: true }, `seed ${seed}: ${result.valid === false ? result.evidence : JSON.stringify(result)}`);

    const reads = ops.filter((op) => op.kind === 'get' && op.outcome === 'ok');
    if (reads.length === 0) continue;
    const victim = pick(rand, reads);
    victim.result = { value: 'never-written' };
    const broken = checkLinearizable(ops);
    assert.equal(broken.valid, false, `seed ${seed}: corrupting read #${victim.id} went unnoticed`);
    if (broken.valid === false) assert.equal(broken.key, victim.key, `seed ${seed}`);
    corrupted++;
  }
  assert.ok(corrupted >= 180, `only ${corrupted} histories had a read to corrupt`);
});

/**
 * The reference: every order of every subset of the unknown ops that real time allows, memoized on
 * (placed set, register). Exponential, simple, exact; written apart from the checker on purpose.
 */
function exhaustivelyLinearizable(ops: readonly Operation[]): boolean {
  const live = ops.filter((op) => op.outcome !== 'fail');
  assert.ok(live.length <= 30, 'the reference uses 32-bit masks');
  const okMask = live.reduce((mask, op, i) => (op.outcome === 'ok' ? mask | (1 << i) : mask), 0);
  // Only an ok op can precede another in real time: an unknown one never completes.
  const before = live.map((op) =>
    live.reduce((mask, other, j) => (other.outcome === 'ok' && (other.completeTime ?? Infinity) < op.invokeTime ? mask | (1 << j) : mask), 0),
  );
  const apply = (state: string | null, op: Operation): string | null | undefined => {
    if (op.kind === 'get') return op.result === undefined || op.result.value === state ? state : undefined;
    if (op.kind === 'cas' && op.expected !== state) return undefined;
    return op.kind === 'delete' ? null : (op.value ?? null);
  };
  const failed = new Set<string>();
  const completes = (mask: number, state: string | null): boolean => {
    if ((mask & okMask) === okMask) return true;
    const key = `${mask}:${JSON.stringify(state)}`;
    if (failed.has(key)) return false;
    for (let i = 0; i < live.length; i++) {
      if (mask & (1 << i) || (before[i] & ~mask) !== 0) continue;
      const after = apply(state, live[i]);
      if (after !== undefined && completes(mask | (1 << i), after)) return true;
    }
    failed.add(key);
    return false;
  };
  return completes(0, null);
}

/** Arbitrary ops on one key with arbitrary results: mostly not linearizable, many unknown outcomes. */
function arbitraryHistory(rand: () => number, size: number): Operation[] {
  const value = () => `v${int(rand, 1, 3)}`;
  const maybeAbsent = () => (rand() < 0.25 ? null : value());
  return history(
    ...Array.from({ length: size }, (): Spec => {
      const t0 = int(rand, 0, 10);
      const t1 = t0 + int(rand, 0, 4);
      const outcome = pick(rand, ['ok', 'ok', 'ok', 'unknown', 'unknown', 'fail'] as const);
      switch (pick(rand, ['get', 'get', 'put', 'put', 'cas', 'delete'] as const)) {
        case 'get':
          return outcome === 'ok' ? get('x', maybeAbsent(), t0, t1) : { kind: 'get', key: 'x', ...times(t0, t1, outcome) };
        case 'put':
          return put('x', value(), t0, t1, outcome);
        case 'delete':
          return del('x', t0, t1, outcome);
        case 'cas':
          return cas('x', maybeAbsent(), value(), t0, t1, outcome);
      }
    }),
  );
}

/** Up to two lies a faulty system could tell: a different value read, a write's outcome flipped. */
function perturb(rand: () => number, ops: Operation[], values: number): void {
  for (let k = int(rand, 0, 2); k > 0; k--) {
    const op = pick(rand, ops);
    if (op.kind === 'get' && op.outcome === 'ok') op.result = { value: rand() < 0.2 ? null : `v${int(rand, 1, values)}` };
    else if (op.kind !== 'get' && op.outcome === 'ok') op.outcome = 'fail';
    else if (op.kind !== 'get' && op.outcome === 'fail') op.outcome = 'ok';
  }
}

test('on 3000 random histories of up to 14 ops the checker agrees with an exhaustive search', () => {
  const rand = mulberry32(2024);
  const verdicts = { valid: 0, invalid: 0 };
  for (let round = 0; round < 3000; round++) {
    const values = int(rand, 2, 4);
    let ops: Operation[];
    if (round % 3 === 0) ops = arbitraryHistory(rand, int(rand, 1, 9));
    else {
      ops = randomRegisterHistory(rand, { ops: int(rand, 1, 14), keys: 1, clients: int(rand, 1, 5), values });
      perturb(rand, ops, values);
    }
    const expected = exhaustivelyLinearizable(ops);
    const result = checkLinearizable(ops);
    assert.equal(result.valid, expected, `round ${round}: ${JSON.stringify(ops)}\n${result.valid === false ? result.evidence : ''}`);
    verdicts[expected ? 'valid' : 'invalid']++;
  }
  assert.ok(verdicts.valid >= 1000 && verdicts.invalid >= 500, `unbalanced sample: ${JSON.stringify(verdicts)}`);
});

test('a read of a value written only after the read completed is found among 3000 ops with 20 concurrent clients', () => {
  const rand = mulberry32(5);
  const ops = randomRegisterHistory(rand, { ops: 3000, keys: 1, clients: 20 });
  assertValid(checkLinearizable(ops));
  const read = ops.filter((op) => op.kind === 'get' && op.outcome === 'ok')[700];
  const later = ops.find((op) => op.kind === 'put' && op.outcome !== 'fail' && op.invokeTime > (read.completeTime ?? Infinity));
  assert.ok(later?.value !== undefined);
  read.result = { value: later.value };
  const evidence = assertInvalid(checkLinearizable(ops), 'k0');
  assert.match(evidence, new RegExp(`#${read.id} c\\d+ get → "${later.value}"`));
});

test('2000 ops on 5 keys with 10 concurrent clients are checked to a verdict', () => {
  const ops = randomRegisterHistory(mulberry32(99), { ops: 2000, keys: 5, clients: 10 });
  assertValid(checkLinearizable(ops));
});
