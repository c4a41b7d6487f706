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
import type { State } from './register.ts';
import { neededValue, step, written } from './register.ts';
import { search } from './wgl.ts';

export type LinearizabilityResult =
  | { valid: true }
  | { valid: false; key: string; evidence: string }
  | { valid: 'unknown'; reason: string };

export interface CheckOptions {
  /** Search steps allowed per key before the verdict becomes 'unknown' (a timeout, not a pass). */
  maxStepsPerKey?: number;
}

/** A second or two of search per key; the cache holds at most one short string per step (~200 MB at most). */
export const DEFAULT_MAX_STEPS_PER_KEY = 2_000_000;

/**
 * Checks a history of single-key operations against a register per key. `valid: false` names the
 * first bad key in sorted order, with evidence; `valid: 'unknown'` means some key exhausted its
 * step budget and no other key was bad. Throws HistoryError on a malformed history.
 */
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

interface KeyPart {
  /** The ops the search places, in invocation order; bit i of the search's bitset is searched[i]. */
  searched: Operation[];
  /** Ops left out before the search, with the reason (shown in evidence). */
  excluded: Array<{ op: Operation; why: string }>;
}

/**
 * Drops what cannot change the verdict. Beyond `fail` ops: an unknown get constrains nothing, and
 * an unknown write of a value that no ok get reads and no cas expects can be taken out of any
 * linearization that contains it (until the next write nothing may look at the register, since
 * whatever looked would see that value), so leaving it out loses nothing and spares the search a
 * branch that would stay open for the rest of the history.
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
  // Invocation order, so that the placed set is mostly a solid prefix (see the cache key in wgl.ts).
  part.searched.sort((a, b) => a.invokeTime - b.invokeTime || a.id - b.id);
  return part;
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
  if (prefix.length === 0) lines.push('  (empty)');
  if (prefix.length > PREFIX_LINES) lines.push(`  ... ${prefix.length - PREFIX_LINES} earlier ops`);
  prefix.forEach((i, position) => {
    const after = step(state, ops[i]);
    if (after === undefined) throw new Error('linearizability evidence: prefix does not replay (checker bug)');
    state = after;
    if (position >= prefix.length - PREFIX_LINES) lines.push(`  ${describeOperation(ops[i])}  ⇒ ${showValue(state)}`);
  });
  lines.push(`After the prefix ${holds(state)}.`);

  const placed = new Set(prefix);
  const left = ops.map((_, i) => i).filter((i) => !placed.has(i));
  const stranded = strandedOps(ops, left, state);
  if (stranded.length > 0) {
    lines.push('These ops can never take effect after it: each needs a value that is not current, and no op left invoked before it completed writes that value:');
    for (const i of stranded.slice(0, CANDIDATE_LINES)) lines.push(`  ${describeOperation(ops[i])}: needs ${showValue(neededValue(ops[i]))}`);
    if (stranded.length > CANDIDATE_LINES) lines.push(`  ... ${stranded.length - CANDIDATE_LINES} more`);
  } else {
    const deadline = left
      .filter((i) => ops[i].outcome === 'ok')
      .sort((a, b) => (ops[a].completeTime ?? Infinity) - (ops[b].completeTime ?? Infinity) || a - b)[0];
    const due = ops[deadline];
    lines.push(`${describeOperation(due)} had to take effect by t=${due.completeTime}, but none of the ops that could go next fits:`);
    const candidates = left
      .filter((i) => ops[i].invokeTime <= (due.completeTime ?? Infinity))
      .sort((a, b) => ops[a].invokeTime - ops[b].invokeTime || a - b);
    for (const i of candidates.slice(0, CANDIDATE_LINES)) lines.push(`  ${describeOperation(ops[i])}: ${whyNotNext(ops, left, i, state)}`);
    if (candidates.length > CANDIDATE_LINES) lines.push(`  ... ${candidates.length - CANDIDATE_LINES} more`);
  }
  if (part.excluded.length > 0) {
    lines.push('Left out of the search:');
    for (const { op, why } of part.excluded.slice(0, EXCLUDED_LINES)) lines.push(`  ${describeOperation(op)}: ${why}`);
    if (part.excluded.length > EXCLUDED_LINES) lines.push(`  ... ${part.excluded.length - EXCLUDED_LINES} more`);
  }
  return lines.join('\n');
}

/**
 * The ok ops among `left` that need a value other than `state` which no op in `left` invoked by
 * their completion writes: the register can never hold that value for them.
 */
function strandedOps(ops: readonly Operation[], left: readonly number[], state: State): number[] {
  const earliestWrite = new Map<State, number>();
  for (const i of left) {
    if (ops[i].kind === 'get') continue;
    const value = written(ops[i]);
    earliestWrite.set(value, Math.min(earliestWrite.get(value) ?? Infinity, ops[i].invokeTime));
  }
  return left.filter((i) => {
    const needed = neededValue(ops[i]);
    return needed !== undefined && needed !== state && !((earliestWrite.get(needed) ?? Infinity) <= (ops[i].completeTime ?? Infinity));
  });
}

function holds(state: State): string {
  return state === null ? 'the key is absent' : `the register holds ${showValue(state)}`;
}

function writesNothing(value: State | undefined): string {
  return value === null || value === undefined ? 'no op left deletes the key' : `no op left writes ${showValue(value)}`;
}

function whyNotNext(ops: readonly Operation[], left: readonly number[], i: number, state: State): string {
  const op = ops[i];
  const after = step(state, op);
  if (after === undefined) {
    if (op.kind === 'get') return `read ${showValue(op.result?.value)} but ${holds(state)}`;
    return `expects ${showValue(op.expected)} but ${holds(state)}`;
  }
  const stranded = strandedOps(ops, left.filter((j) => j !== i), after);
  if (stranded.length > 0) {
    const more = stranded.length > 1 ? ` (and ${stranded.length - 1} more)` : '';
    const victim = ops[stranded[0]];
    return `placing it here strands ${describeOperation(victim)}${more}: ${writesNothing(neededValue(victim))} by t=${victim.completeTime}`;
  }
  return op.outcome === 'unknown'
    ? 'may take effect here (outcome unknown), but no continuation from there places every ok op'
    : 'fits here, but every continuation from there fails later';
}
