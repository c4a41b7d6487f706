// The model one key's history is checked against: a register holding a string or nothing, as
// Porcupine's Model (Init, Step), plus the per-value bookkeeping the search prunes with. Pure.

import type { Operation } from './history.ts';
import { HistoryError } from './history.ts';

/** The register: a value, or null when the key is absent (its initial state). */
export type State = string | null;

/** Porcupine's Step: the state after `op`, or undefined if `op` cannot take effect in `state`. */
export function step(state: State, op: Operation): State | undefined {
  switch (op.kind) {
    case 'get':
      return op.result === undefined || op.result.value === state ? state : undefined;
    case 'put':
    case 'delete':
      return written(op);
    case 'cas':
      return op.expected === state ? written(op) : undefined;
  }
}

/** The value a write leaves in the register (null for delete). */
export function written(op: Operation): State {
  if (op.kind === 'delete') return null;
  if (op.value === undefined) throw new HistoryError(`op #${op.id}: ${op.kind} without a value`);
  return op.value;
}

/** The value that must be current when an `ok` op takes effect (get: the value read; cas: expected). */
export function neededValue(op: Operation): State | undefined {
  if (op.outcome !== 'ok') return undefined;
  if (op.kind === 'get') return op.result?.value;
  if (op.kind === 'cas') return op.expected ?? null;
  return undefined;
}

export const NONE = -1;

/**
 * The ops of one key by value, values as small integers (null is 0). Tracks, as ops are placed
 * and unplaced (last in, first out), whether a value can still become current in time for every
 * `ok` op left that needs it.
 */
export class ValueIndex {
  /** Per op: the value id it needs current (a get's read, a cas's expected), or NONE. */
  readonly needs: Int32Array;
  /** Per op: the value id it leaves in the register, or NONE for a get. */
  readonly writes: Int32Array;
  /** Per op: an `ok` get or cas, which must find its value current. */
  readonly isReader: Uint8Array;
  /** Per op: an `ok` put or delete of a value no op needs (see wgl.ts). */
  readonly blind: Uint8Array;
  readonly valueCount: number;

  // Per value, the readers sorted by completion and the writers sorted by invocation, flattened,
  // with a cursor on the first one not placed (every one before the cursor is placed).
  private readonly readers: Int32Array;
  private readonly readerStart: Int32Array;
  private readonly readerAt: Int32Array;
  private readonly firstReader: Int32Array;
  private readonly writers: Int32Array;
  private readonly writerStart: Int32Array;
  private readonly writerAt: Int32Array;
  private readonly firstWriter: Int32Array;
  private readonly placed: Uint8Array;

  constructor(private readonly ops: readonly Operation[]) {
    const ids = new Map<State, number>([[null, 0]]);
    const intern = (value: State): number => {
      let id = ids.get(value);
      if (id === undefined) ids.set(value, (id = ids.size));
      return id;
    };
    this.needs = Int32Array.from(ops, (op) => {
      if (op.kind === 'cas') return intern(op.expected ?? null);
      return op.kind === 'get' && op.result !== undefined ? intern(op.result.value) : NONE;
    });
    this.writes = Int32Array.from(ops, (op) => (op.kind === 'get' ? NONE : intern(written(op))));
    this.isReader = Uint8Array.from(ops, (op) => (neededValue(op) !== undefined ? 1 : 0));
    this.valueCount = ids.size;
    const needed = new Uint8Array(ids.size);
    for (const v of this.needs) if (v !== NONE) needed[v] = 1;
    this.blind = Uint8Array.from(ops, (op, i) =>
      op.outcome === 'ok' && (op.kind === 'put' || op.kind === 'delete') && !needed[this.writes[i]] ? 1 : 0,
    );

    const complete = (i: number): number => ops[i].completeTime ?? Infinity;
    [this.readers, this.readerStart, this.readerAt] = groupByValue(ids.size, ops.length, (i) => (this.isReader[i] ? this.needs[i] : NONE), complete);
    [this.writers, this.writerStart, this.writerAt] = groupByValue(ids.size, ops.length, (i) => this.writes[i], (i) => ops[i].invokeTime);
    this.firstReader = this.readerStart.slice(0, ids.size);
    this.firstWriter = this.writerStart.slice(0, ids.size);
    this.placed = new Uint8Array(ops.length);
  }

  place(i: number): void {
    this.placed[i] = 1;
    if (this.isReader[i]) advance(this.firstReader, this.needs[i], this.readers, this.readerStart, this.placed);
    if (this.writes[i] !== NONE) advance(this.firstWriter, this.writes[i], this.writers, this.writerStart, this.placed);
  }

  unplace(i: number): void {
    this.placed[i] = 0;
    if (this.isReader[i]) this.firstReader[this.needs[i]] = Math.min(this.firstReader[this.needs[i]], this.readerAt[i]);
    if (this.writes[i] !== NONE) this.firstWriter[this.writes[i]] = Math.min(this.firstWriter[this.writes[i]], this.writerAt[i]);
  }

  /**
   * Whether some `ok` op left needs `value` while no op left can make it current in time: a writer
   * invoked after that op completed would be linearized after it (strict real-time order).
   * Only meaningful when `value` is not the current state.
   */
  unreachable(value: number): boolean {
    const r = this.firstReader[value];
    if (r === this.readerStart[value + 1]) return false; // nothing left needs it
    const w = this.firstWriter[value];
    if (w === this.writerStart[value + 1]) return true; // nothing left writes it
    return this.ops[this.writers[w]].invokeTime > (this.ops[this.readers[r]].completeTime ?? Infinity);
  }
}

/** Counting sort of op indices into per-value segments, each sorted by `time`; also each op's position. */
function groupByValue(
  values: number,
  n: number,
  valueOf: (i: number) => number,
  time: (i: number) => number,
): [list: Int32Array, start: Int32Array, at: Int32Array] {
  const start = new Int32Array(values + 1);
  for (let i = 0; i < n; i++) if (valueOf(i) !== NONE) start[valueOf(i) + 1]++;
  for (let v = 0; v < values; v++) start[v + 1] += start[v];
  const fill = start.slice(0, values);
  const list = new Int32Array(start[values]);
  for (let i = 0; i < n; i++) if (valueOf(i) !== NONE) list[fill[valueOf(i)]++] = i;
  for (let v = 0; v < values; v++) list.subarray(start[v], start[v + 1]).sort((a, b) => time(a) - time(b) || a - b);
  const at = new Int32Array(n).fill(NONE);
  list.forEach((i, position) => (at[i] = position));
  return [list, start, at];
}

function advance(first: Int32Array, value: number, list: Int32Array, start: Int32Array, placed: Uint8Array): void {
  let k = first[value];
  while (k < start[value + 1] && placed[list[k]]) k++;
  first[value] = k;
}
