// Wing & Gong's linearizability search with Lowe's memoization, the checker of Porcupine
// (jepsen.md §4), over one key's history against a register (register.ts). Pure: no I/O, no clock.

import type { Operation } from './history.ts';
import { NONE, ValueIndex } from './register.ts';

export type SearchOutcome =
  | { kind: 'ok' }
  /** prefix: indices into the searched ops of the longest linearizable prefix found, in order. */
  | { kind: 'fail'; prefix: number[] }
  | { kind: 'budget'; deepest: number };

// Kinds of placement on the search stack.
const CHOICE = 0; // a free choice: on backtracking, the scan goes on with the next candidate
const FORCED = 1; // the only move tried from its configuration: backtracking passes through it
const CARRIED = 2; // a blind write placed as part of the CHOICE above it, undone with it

/**
 * Depth-first search over linearizations. The history is a doubly linked list of call and return
 * entries in time order; the calls before the first return are the ops that may take effect next.
 * Placing an op lifts its call and return out of the list; reaching a return means that op can be
 * put off no longer, so the search backtracks. Lowe's cache of (placed set, state) prunes what was
 * already explored: what remains depends only on that pair.
 *
 * `ok` ops must be placed; `unknown` ops return at +∞, so they may be placed any time after their
 * invocation, and the search succeeds without them once every `ok` op is placed. Real-time order
 * is strict (calls sort before returns at equal times): an op completing at t and one invoked at
 * t are concurrent.
 *
 * Register-specific prunings. Each skips only configurations that cannot complete, or moves whose
 * every completion can be rearranged into one the search still tries:
 * 1. Reads first. A get of the current state among the next candidates goes next, as the only
 *    move: it changes nothing and nothing left must precede it, so any completion can start with
 *    it. The search thus branches only on writes.
 * 2. Unreachable values. Moving the register off value v is dead if an `ok` op left needs v and
 *    no op left that writes v was invoked before that op completed: v can never be current for it.
 * 3. Blind writes. An `ok` put or delete of a value no op needs is only ever followed by a put or
 *    delete (or nothing), so in some completion it sits right before the first put or delete
 *    after it became a candidate, or at the end. The search therefore places the blind writes
 *    that can go together, as one move, and tries no put or delete while any of them can go.
 */
export function search(ops: readonly Operation[], maxSteps: number): SearchOutcome {
  const n = ops.length;
  let remainingOk = ops.filter((op) => op.outcome === 'ok').length;
  if (remainingOk === 0) return { kind: 'ok' };
  const values = new ValueIndex(ops);
  const { needs, writes, blind } = values;
  const isOk = Uint8Array.from(ops, (op) => (op.outcome === 'ok' ? 1 : 0));
  const unconditional = Uint8Array.from(ops, (op) => (op.kind === 'put' || op.kind === 'delete' ? 1 : 0));
  // The register starts absent (value 0); any other value must be reachable from the start.
  for (let v = 1; v < values.valueCount; v++) if (values.unreachable(v)) return { kind: 'fail', prefix: [] };

  // Node 0 is the head; node 1 + i is op i's call, node 1 + n + i its return.
  const next = new Int32Array(2 * n + 1).fill(NONE);
  const prev = new Int32Array(2 * n + 1).fill(NONE);
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
    if (next[node] !== NONE) prev[next[node]] = prev[node];
  };
  const relink = (node: number): void => {
    next[prev[node]] = node;
    if (next[node] !== NONE) prev[next[node]] = node;
  };

  const bits = new Uint32Array((n + 31) >>> 5);
  const bitsAsChars = new Uint16Array(bits.buffer);
  const cache = new Set<string>();
  const stackCall = new Int32Array(n);
  const stackKind = new Uint8Array(n);
  const stackResume = new Int32Array(n); // for a CHOICE: the node after which the scan goes on
  const stackState = new Int32Array(n); // the state before this placement
  const stackHighest = new Int32Array(n + 1).fill(-1); // [d]: highest op index among the first d placed
  let depth = 0;
  let state = 0;
  let lowest = 0; // lowest op index not placed: every op below it is placed
  let best: number[] = [];

  /** Appends op `call - 1` to the linearization, unchecked. */
  const push = (call: number, kind: number): void => {
    const i = call - 1;
    bits[i >>> 5] |= 1 << (i & 31);
    while (lowest < n && (bits[lowest >>> 5] & (1 << (lowest & 31))) !== 0) lowest++;
    values.place(i);
    stackCall[depth] = call;
    stackKind[depth] = kind;
    stackResume[depth] = call;
    stackState[depth] = state;
    depth++;
    stackHighest[depth] = Math.max(stackHighest[depth - 1], i);
    if (writes[i] !== NONE) state = writes[i];
    unlink(call);
    unlink(call + n);
    if (isOk[i]) remainingOk--;
  };
  /** Undoes the last push. */
  const pop = (): void => {
    depth--;
    const call = stackCall[depth];
    const i = call - 1;
    state = stackState[depth];
    bits[i >>> 5] &= ~(1 << (i & 31));
    if (i < lowest) lowest = i;
    values.unplace(i);
    relink(call + n);
    relink(call);
    if (isOk[i]) remainingOk++;
  };

  /**
   * Whether the configuration just reached, coming from state `before`, may complete and is new.
   * The cache key: when ops are indexed in invocation order (the caller's job), the placed set is
   * all ops below `lowest` plus a few above it, so the key holds the state, the word index of
   * `lowest` and only the bitset words from there to the highest placed op: exact, and short.
   */
  const viable = (before: number): boolean => {
    if (before !== state && values.unreachable(before)) return false;
    const lo = lowest >>> 5;
    const hi = stackHighest[depth] >>> 5; // depth > 0 here, so at least one op is placed
    let key = String.fromCharCode(state & 0xffff, state >>> 16, lo & 0xffff, lo >>> 16);
    if (hi >= lo) key += String.fromCharCode.apply(null, bitsAsChars.subarray(2 * lo, 2 * (hi + 1)) as unknown as number[]);
    if (cache.has(key)) return false;
    cache.add(key);
    return true;
  };
  /** Places op `call - 1` next if the configuration reached is viable. */
  const place = (call: number, kind: number): boolean => {
    const before = state;
    push(call, kind);
    if (viable(before)) return true;
    pop();
    return false;
  };
  /** Places every blind write that can go now, and those that this lets go, as one CHOICE (pruning 3). */
  const carryBlindWrites = (trigger: number): boolean => {
    const base = depth;
    const before = state;
    for (let node = next[0]; node !== NONE && node <= n; ) {
      if (!blind[node - 1]) {
        node = next[node];
        continue;
      }
      const after = prev[node];
      push(node, CARRIED);
      node = next[after];
    }
    if (!viable(before)) {
      while (depth > base) pop();
      return false;
    }
    stackKind[depth - 1] = CHOICE;
    stackResume[depth - 1] = trigger;
    return true;
  };
  const blindWriteCanGo = (): boolean => {
    for (let node = next[0]; node !== NONE && node <= n; node = next[node]) if (blind[node - 1]) return true;
    return false;
  };
  /** A candidate that is a get of the current state (pruning 1), or NONE. */
  const readOfState = (): number => {
    for (let node = next[0]; node !== NONE && node <= n; node = next[node]) {
      if (writes[node - 1] === NONE && needs[node - 1] === state) return node;
    }
    return NONE;
  };
  /** Tries op `call - 1` as the next free choice. */
  const choose = (call: number): boolean => {
    const i = call - 1;
    if (needs[i] !== NONE && needs[i] !== state) return false;
    if (blind[i]) return carryBlindWrites(call);
    if (unconditional[i] && blindWriteCanGo()) return false; // they go first (pruning 3)
    return place(call, CHOICE);
  };
  /** Undoes placements back to the last free choice; returns the node the scan goes on after, or NONE. */
  const backtrack = (): number => {
    while (depth > 0) {
      const kind = stackKind[depth - 1];
      const resume = stackResume[depth - 1];
      pop();
      if (kind === CHOICE) {
        while (depth > 0 && stackKind[depth - 1] === CARRIED) pop();
        return resume;
      }
    }
    return NONE;
  };

  let node = next[0];
  let fresh = true; // at a configuration not yet scanned for a get of the current state
  for (let steps = 0; remainingOk > 0; steps++) {
    if (steps >= maxSteps) return { kind: 'budget', deepest: Math.max(best.length, depth) };
    if (node === NONE) throw new Error('linearizability search ran off the list with ok ops left (checker bug)');
    if (fresh) {
      fresh = false;
      const read = readOfState();
      if (read !== NONE) {
        if (place(read, FORCED)) {
          fresh = true;
          node = next[0];
          continue;
        }
        // Its only move was explored before: this configuration fails, back to the last free choice.
        const resume = backtrack();
        if (resume === NONE) return { kind: 'fail', prefix: best };
        node = next[resume];
        continue;
      }
      node = next[0];
    }
    if (node <= n) {
      if (choose(node)) {
        node = next[0];
        fresh = true;
      } else node = next[node];
    } else {
      // A return: that op can be put off no longer, and nothing before it could be placed.
      if (depth > best.length) best = Array.from(stackCall.subarray(0, depth), (call) => call - 1);
      const resume = backtrack();
      if (resume === NONE) return { kind: 'fail', prefix: best };
      node = next[resume];
    }
  }
  return { kind: 'ok' };
}
