// Linearizability checker for key-value histories: Wing & Gong's search with Lowe's memoization,
// the approach of Porcupine (jepsen.md §4), against a register model per key. Pure: no I/O, no clock.
//
// Rules the checker applies (jepsen.md §1):
// - P-compositionality (Herlihy & Wing; Porcupine's Partition): a history is linearizable iff each
//   key's sub-history is, so every key is searched on its own, in sorted key order.
// - Real-time order is strict: A precedes B only if A.completeTime < B.invokeTime. An op that
//   completes at t and one invoked at t are concurrent, so either order is allowed. This is the
//   conservative choice: it never reports an anomaly that a tie in the harness clock could explain.
// - `ok` ops must be placed between invoke and completion. `fail` ops never took effect and are left
//   out (a failed cas was a read of some other value; leaving it out is the conservative model).
// - `unknown` ops complete at +∞: the search may place them anywhere after their invocation, or
//   never. The search succeeds once every `ok` op is placed.

import type { Operation } from './history.ts';
import { HistoryError, describeOperation, showValue, validateOperation } from './history.ts';

export type LinearizabilityResult =
  | { valid: true }
  | { valid: false; key: string; evidence: string }
  | { valid: 'unknown'; reason: string };

export interface CheckOptions {
  /** Search steps allowed per key before the verdict becomes 'unknown' (a timeout, not a pass). */
  maxStepsPerKey?: number;
}

/** About a second of search per key on this machine; the cache grows by at most one entry per step. */
export const DEFAULT_MAX_STEPS_PER_KEY = 2_000_000;

type State = string | null;

export function checkLinearizable(ops: readonly Operation[], options: CheckOptions = {}): LinearizabilityResult {
  const maxSteps = options.maxStepsPerKey ?? DEFAULT_MAX_STEPS_PER_KEY;
  const byKey = new Map<string, Operation[]>();
  const ids = new Set<number>();
  for (const op of ops) {
    validateOperation(op);
    if (ids.has(op.id)) throw new HistoryError(`two operations share id #${op.id}`);
    ids.add(op.id);
    const list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, [op]);
    else list.push(op);
  }
  const timedOut: string[] = [];
  for (const key of [...byKey.keys()].sort()) {
    const part = prepareKey(byKey.get(key) ?? []);
    const outcome = search(part.searched, maxSteps);
    if (outcome.kind === 'fail') return { valid: false, key, evidence: explainFailure(key, part, outcome.prefix) };
    if (outcome.kind === 'budget') {
      timedOut.push(
        `key ${JSON.stringify(key)}: gave up after ${maxSteps} search steps over ${part.searched.length} ops ` +
          `(deepest partial linearization: ${outcome.deepest} ops)`,
      );
    }
  }
  if (timedOut.length > 0) {
    return { valid: 'unknown', reason: `search budget exhausted, no anomaly found elsewhere; ${timedOut.join('; ')}` };
  }
  return { valid: true };
}

/** Register model, as Porcupine's Step: the state after `op`, or undefined if `op` cannot happen in `state`. */
function step(state: State, op: Operation): State | undefined {
  switch (op.kind) {
    case 'get':
      return op.result === undefined || op.result.value === state ? state : undefined;
    case 'put':
      return written(op);
    case 'delete':
      return null;
    case 'cas':
      return op.expected === state ? written(op) : undefined;
  }
}

function written(op: Operation): State {
  if (op.kind === 'delete') return null;
  if (op.value === undefined) throw new HistoryError(`op #${op.id}: ${op.kind} without a value`);
  return op.value;
}

interface KeyPart {
  /** The ops the search places, in invocation order; bit i of the search's bitset is searched[i]. */
  searched: Operation[];
  /** Ops left out before the search, with the reason (shown in evidence). */
  excluded: Array<{ op: Operation; why: string }>;
}

/**
 * Drops what cannot change the verdict. Beyond `fail` ops: an unknown get constrains nothing, and
 * an unknown write whose value no op ever observes can be left out of any linearization that
 * contains it (until the next write nothing may observe the register, since every observer would
 * have to see that value), so leaving it out loses nothing and saves the search a branch that
 * stays open for the rest of the history.
 */
function prepareKey(ops: readonly Operation[]): KeyPart {
  const observed = new Set<State>();
  for (const op of ops) {
    if (op.kind === 'get' && op.outcome === 'ok' && op.result !== undefined) observed.add(op.result.value);
    if (op.kind === 'cas' && op.outcome !== 'fail') observed.add(op.expected ?? null);
  }
  const part: KeyPart = { searched: [], excluded: [] };
  for (const op of ops) {
    if (op.outcome === 'fail') part.excluded.push({ op, why: 'failed, so it never took effect' });
    else if (op.outcome === 'unknown' && op.kind === 'get') part.excluded.push({ op, why: 'unknown read: constrains nothing' });
    else if (op.outcome === 'unknown' && !observed.has(written(op))) {
      part.excluded.push({ op, why: 'unknown write whose value nothing observes: leaving it out loses no linearization' });
    } else part.searched.push(op);
  }
  // Invocation order, so that the placed set is mostly a solid prefix (see configKey in search).
  part.searched.sort((a, b) => a.invokeTime - b.invokeTime || a.id - b.id);
  return part;
}

type SearchOutcome = { kind: 'ok' } | { kind: 'fail'; prefix: number[] } | { kind: 'budget'; deepest: number };

/**
 * Depth-first search over linearizations (WGL). The history is a doubly linked list of call and
 * return entries in time order; the calls before the first return are the ops that may take
 * effect next. Placing an op lifts its call and return out of the list; reaching a return means
 * that op can be put off no longer, so the search backtracks. Lowe's cache of (placed-set, state)
 * pairs prunes subtrees already explored: what remains depends only on that pair.
 */
function search(ops: readonly Operation[], maxSteps: number): SearchOutcome {
  const n = ops.length;
  let remainingOk = ops.filter((op) => op.outcome === 'ok').length;
  if (remainingOk === 0) return { kind: 'ok' };

  // Node 0 is the head; node 1 + i is op i's call, node 1 + n + i its return.
  const NIL = -1;
  const next = new Int32Array(2 * n + 1).fill(NIL);
  const prev = new Int32Array(2 * n + 1).fill(NIL);
  const timeOf = (node: number): number => {
    if (node <= n) return ops[node - 1].invokeTime;
    const op = ops[node - n - 1];
    return op.outcome === 'ok' && op.completeTime !== null ? op.completeTime : Infinity;
  };
  const order = Array.from({ length: 2 * n }, (_, k) => k + 1);
  order.sort((a, b) => {
    const ta = timeOf(a);
    const tb = timeOf(b);
    if (ta !== tb) return ta < tb ? -1 : 1;
    return a - b; // calls (nodes 1..n) before returns at equal times: the strict real-time rule
  });
  let last = 0;
  for (const node of order) {
    next[last] = node;
    prev[node] = last;
    last = node;
  }

  const unlink = (node: number): void => {
    next[prev[node]] = next[node];
    if (next[node] !== NIL) prev[next[node]] = prev[node];
  };
  const relink = (node: number): void => {
    next[prev[node]] = node;
    if (next[node] !== NIL) prev[next[node]] = node;
  };

  const bits = new Uint32Array((n + 31) >>> 5);
  const bitsAsChars = new Uint16Array(bits.buffer);
  const cache = new Set<string>();
  const stackCall = new Int32Array(n);
  const stackForced = new Uint8Array(n);
  const stackState: State[] = new Array<State>(n).fill(null);
  const stackHighest = new Int32Array(n + 1).fill(-1); // [d]: highest op index placed in the first d
  let depth = 0;
  let state: State = null;
  let lowest = 0; // lowest op index not placed: every op below it is placed
  let best: number[] = [];

  /**
   * The cache key of (placed set, state). Ops are indexed in invocation order, so the placed set is
   * all ops below `lowest` plus a few above it: the key holds only the bitset words from `lowest` to
   * the highest placed op, with their position and count, which makes it exact and short.
   */
  const configKey = (after: State, highest: number): string => {
    const lo = lowest >>> 5;
    const hi = highest < 0 ? -1 : highest >>> 5;
    const words = hi >= lo ? hi - lo + 1 : 0;
    let key = String.fromCharCode(lo & 0xffff, lo >>> 16, words & 0xffff, words >>> 16);
    if (words > 0) key += String.fromCharCode.apply(null, bitsAsChars.subarray(2 * lo, 2 * (hi + 1)) as unknown as number[]);
    return after === null ? key + '\u0000' : key + '\u0001' + after;
  };

  /** Linearizes op `call - 1` next, unless (placed set, state) after it is cached: already explored. */
  const place = (call: number, after: State, forced: boolean): boolean => {
    const i = call - 1;
    const previousLowest = lowest;
    bits[i >>> 5] |= 1 << (i & 31);
    const highest = Math.max(stackHighest[depth], i);
    while (lowest < n && (bits[lowest >>> 5] & (1 << (lowest & 31))) !== 0) lowest++;
    const key = configKey(after, highest);
    if (cache.has(key)) {
      bits[i >>> 5] &= ~(1 << (i & 31));
      lowest = previousLowest;
      return false;
    }
    cache.add(key);
    stackCall[depth] = call;
    stackForced[depth] = forced ? 1 : 0;
    stackState[depth] = state;
    depth++;
    stackHighest[depth] = highest;
    state = after;
    unlink(call);
    unlink(call + n);
    if (ops[i].outcome === 'ok') remainingOk--;
    return true;
  };
  /** Undoes placements up to the last free choice; returns its call node, or NIL when none is left. */
  const backtrack = (): number => {
    while (depth > 0) {
      depth--;
      const call = stackCall[depth];
      const i = call - 1;
      state = stackState[depth];
      bits[i >>> 5] &= ~(1 << (i & 31));
      if (i < lowest) lowest = i;
      relink(call + n);
      relink(call);
      if (ops[i].outcome === 'ok') remainingOk++;
      if (stackForced[depth] === 0) return call;
    }
    return NIL;
  };
  /** A minimal get that reads the current state: placing it first loses no linearization (see below). */
  const readOfState = (): number => {
    for (let node = next[0]; node !== NIL && node <= n; node = next[node]) {
      const op = ops[node - 1];
      if (op.kind === 'get' && step(state, op) !== undefined) return node;
    }
    return NIL;
  };

  let node = next[0];
  let fresh = true; // at a configuration not yet scanned for a read of the current state
  for (let steps = 0; remainingOk > 0; steps++) {
    if (steps >= maxSteps) return { kind: 'budget', deepest: Math.max(best.length, depth) };
    if (node === NIL) throw new Error('linearizability search ran off the list with ok ops left (checker bug)');
    if (fresh) {
      // A read of the current state among the minimal calls can go first without loss: it changes no
      // state, and nothing remaining has to precede it, so any linearization of the rest can be
      // rearranged to start with it. Placing it is then the only move tried from here, which takes
      // reads out of the branching (the DFS branches only on writes).
      fresh = false;
      const read = readOfState();
      if (read !== NIL) {
        if (place(read, state, true)) {
          fresh = true;
          node = next[0];
          continue;
        }
        // Explored before, so this configuration fails: back to the last free choice.
        const call = backtrack();
        if (call === NIL) return { kind: 'fail', prefix: best };
        node = next[call];
        continue;
      }
      node = next[0];
    }
    if (node <= n) {
      const after = step(state, ops[node - 1]);
      if (after !== undefined && place(node, after, false)) {
        node = next[0];
        fresh = true;
      } else node = next[node];
    } else {
      // A return: that op can be put off no longer, and nothing placeable is left before it.
      if (depth > best.length) best = Array.from(stackCall.subarray(0, depth), (call) => call - 1);
      const call = backtrack();
      if (call === NIL) return { kind: 'fail', prefix: best };
      node = next[call];
    }
  }
  return { kind: 'ok' };
}

const PREFIX_LINES = 15;
const CANDIDATE_LINES = 12;
const EXCLUDED_LINES = 10;

/** The longest linearizable prefix, the op whose deadline passed, and why nothing else fits there. */
function explainFailure(key: string, part: KeyPart, prefix: readonly number[]): string {
  const ops = part.searched;
  const okCount = ops.filter((op) => op.outcome === 'ok').length;
  const lines = [
    `key ${JSON.stringify(key)} is not linearizable: ${ops.length} ops searched (${okCount} ok, ` +
      `${ops.length - okCount} unknown); the longest linearizable prefix places ${prefix.length} of them.`,
    'Longest linearizable prefix, in linearization order (register value after each op):',
  ];
  let state: State = null;
  if (prefix.length === 0) lines.push('  (empty: no op can go first)');
  if (prefix.length > PREFIX_LINES) lines.push(`  ... ${prefix.length - PREFIX_LINES} earlier ops`);
  prefix.forEach((i, position) => {
    const after = step(state, ops[i]);
    if (after === undefined) throw new Error('linearizability evidence: prefix does not replay (checker bug)');
    state = after;
    if (position >= prefix.length - PREFIX_LINES) lines.push(`  ${describeOperation(ops[i])}  ⇒ ${showValue(state)}`);
  });
  lines.push(`After the prefix the register holds ${showValue(state)}.`);

  const placed = new Set(prefix);
  const left = ops.map((_, i) => i).filter((i) => !placed.has(i));
  const deadline = left
    .filter((i) => ops[i].outcome === 'ok')
    .sort((a, b) => (ops[a].completeTime ?? Infinity) - (ops[b].completeTime ?? Infinity) || a - b)[0];
  const due = ops[deadline];
  lines.push(`${describeOperation(due)} had to take effect by t=${due.completeTime}, but none of the ops that could go next fits:`);
  const candidates = left
    .filter((i) => ops[i].invokeTime <= (due.completeTime ?? Infinity))
    .sort((a, b) => ops[a].invokeTime - ops[b].invokeTime || a - b);
  for (const i of candidates.slice(0, CANDIDATE_LINES)) lines.push(`  ${describeOperation(ops[i])}: ${whyNotNext(state, ops[i])}`);
  if (candidates.length > CANDIDATE_LINES) lines.push(`  ... ${candidates.length - CANDIDATE_LINES} more`);
  if (part.excluded.length > 0) {
    lines.push('Left out of the search:');
    for (const { op, why } of part.excluded.slice(0, EXCLUDED_LINES)) lines.push(`  ${describeOperation(op)}: ${why}`);
    if (part.excluded.length > EXCLUDED_LINES) lines.push(`  ... ${part.excluded.length - EXCLUDED_LINES} more`);
  }
  return lines.join('\n');
}

function whyNotNext(state: State, op: Operation): string {
  if (step(state, op) === undefined) {
    if (op.kind === 'get') return `read ${showValue(op.result?.value)} but the register holds ${showValue(state)}`;
    return `expects ${showValue(op.expected)} but the register holds ${showValue(state)}`;
  }
  return op.outcome === 'unknown'
    ? 'may take effect here (outcome unknown), but no continuation from there places every ok op'
    : 'fits here, but every continuation from there fails later';
}
