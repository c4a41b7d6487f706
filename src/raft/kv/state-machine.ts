// The replicated key-value state machine: what every node applies, entry by entry, from the
// committed Raft log. Pure and deterministic (no clock, randomness or I/O): replicas that apply the
// same entries hold the same state, down to the bytes of their snapshots. Reads (`get`, `range`)
// are served locally once the node has applied up to a ReadIndex (thesis §6.4).
import { invariant } from '../core/errors.ts';
import { decodeCommand, limitViolation } from './commands.ts';
import type { CasOp, KeyValue, KvCommand, KvErrorCode, KvErrorResult, KvOp, KvResult } from './commands.ts';
import { decodeSnapshot, encodeSnapshot } from './snapshot.ts';
import type { Session } from './snapshot.ts';

/**
 * Sessions kept for exactly-once retries. Beyond this, the session whose last entry is oldest is
 * dropped; a retry from that client would then apply again (thesis §6.3 expires sessions the same
 * way, deterministically, from the log). Part of the replicated behaviour: changing it is a
 * protocol change, which is why it is a constant and not an option.
 */
export const MAX_SESSIONS = 10_000;

/** One key a command changed; `kv` null means deleted. For waking watchers. */
export interface KeyChange {
  readonly key: string;
  readonly kv: KeyValue | null;
}

export interface ApplyResult {
  readonly index: number;
  /** Whose command it was, so the node can answer the proposer; null for no-ops and undecodable entries. */
  readonly request: { readonly clientId: string; readonly seq: number } | null;
  /** null only for the leader's no-op entry. */
  readonly result: KvResult | null;
  /** Empty unless the store changed. */
  readonly changes: KeyChange[];
}

export class KvStateMachine {
  private applied = 0;
  private rev = 0;
  private readonly kvs = new Map<string, KeyValue>();
  /** The keys of `kvs`, sorted (UTF-16 code unit order, JavaScript's `<`), for range and snapshot. */
  private readonly keys: string[] = [];
  /** Iteration order is least recently used first: a touched session is deleted and re-inserted. */
  private readonly sessions = new Map<string, Session>();

  /** Index of the last entry applied (or marked applied). */
  get appliedIndex(): number {
    return this.applied;
  }

  /** The store's revision: bumped once by every command that changed something. */
  get revision(): number {
    return this.rev;
  }

  get size(): number {
    return this.kvs.size;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** The last seq applied for a client, or null if it has no session. */
  sessionSeq(clientId: string): number | null {
    return this.sessions.get(clientId)?.seq ?? null;
  }

  get(key: string): KeyValue | null {
    return this.kvs.get(key) ?? null;
  }

  /** Every key starting with `prefix`, sorted by key; the empty prefix lists all keys. */
  range(prefix: string): KeyValue[] {
    const out: KeyValue[] = [];
    for (let i = lowerBound(this.keys, prefix); i < this.keys.length && this.keys[i].startsWith(prefix); i++) {
      out.push(this.kvs.get(this.keys[i]) as KeyValue);
    }
    return out;
  }

  /**
   * Applies one committed normal entry. Never throws for anything the data holds: an undecodable
   * entry applies as an ERR_BAD_MESSAGE result that changes nothing but appliedIndex, on every
   * replica alike. Throws ERR_INVARIANT only if the driver applies out of order.
   */
  apply(index: number, data: Uint8Array): ApplyResult {
    this.advance(index);
    if (data.length === 0) return { index, request: null, result: null, changes: [] }; // leader's no-op
    let cmd: KvCommand;
    try {
      cmd = decodeCommand(data);
    } catch (err) {
      // decodeCommand throws only RaftErrors with fixed messages (the decoder's detail is in cause).
      return { index, request: null, result: errorResult('ERR_BAD_MESSAGE', (err as Error).message), changes: [] };
    }
    const { clientId, seq, op } = cmd;
    const request = { clientId, seq };
    const session = this.sessions.get(clientId);
    if (session !== undefined && seq === session.seq) {
      // A retry of a command already applied: answer as the first time and change no key (thesis
      // §6.3); only the session moves to the back of the eviction order, its client being alive.
      this.touchSession(clientId, Object.freeze({ ...session, lastIndex: index }));
      return { index, request, result: session.result, changes: [] };
    }
    if (session !== undefined && seq < session.seq) {
      const message = `client ${clientId}: seq ${seq} is older than the last applied seq ${session.seq}`;
      return { index, request, result: errorResult('ERR_STALE_SEQ', message), changes: [] };
    }
    const changes: KeyChange[] = [];
    const tooLarge = limitViolation(op);
    const result = tooLarge === null ? this.execute(op, changes) : errorResult('ERR_TOO_LARGE', tooLarge);
    this.touchSession(clientId, Object.freeze({ seq, result, lastIndex: index }));
    return { index, request, result, changes };
  }

  /**
   * Records an entry the state machine does not consume (a conf change) as applied, so that
   * appliedIndex still reaches every committed index and reads waiting on it can proceed.
   */
  markApplied(index: number): void {
    this.advance(index);
  }

  /** The whole state, canonical: equal states give equal bytes. */
  snapshot(): Uint8Array {
    return encodeSnapshot({
      appliedIndex: this.applied,
      revision: this.rev,
      kvs: this.keys.map((k) => this.kvs.get(k) as KeyValue),
      sessions: [...this.sessions],
    });
  }

  /**
   * The state a Raft snapshot at `index` holds. The bootstrap snapshot carries no data: it stands
   * for the empty state, applied up to the snapshot point.
   */
  static fromSnapshot(data: Uint8Array, index: number): KvStateMachine {
    if (data.length > 0) return KvStateMachine.restore(data);
    const sm = new KvStateMachine();
    if (index > 0) sm.markApplied(index);
    return sm;
  }

  /** Rebuilds a state machine from snapshot(); throws RaftError ERR_CORRUPT_STORE on bad data. */
  static restore(data: Uint8Array): KvStateMachine {
    const state = decodeSnapshot(data);
    const sm = new KvStateMachine();
    sm.applied = state.appliedIndex;
    sm.rev = state.revision;
    for (const kv of state.kvs) {
      sm.kvs.set(kv.key, kv);
      sm.keys.push(kv.key); // decodeSnapshot checked they are sorted
    }
    for (const [clientId, session] of state.sessions) sm.sessions.set(clientId, session);
    return sm;
  }

  private advance(index: number): void {
    // Strictly after, not exactly next: entries the node keeps to itself (conf changes) may skip
    // markApplied, and such a gap is harmless here. Going backwards would re-apply: stop instead.
    invariant(Number.isSafeInteger(index) && index > this.applied, `kv apply at index ${index} after ${this.applied}`);
    this.applied = index;
  }

  private execute(op: KvOp, changes: KeyChange[]): KvResult {
    switch (op.type) {
      case 'put': {
        const prev = this.get(op.key);
        const revision = ++this.rev;
        this.write(op.key, op.value, prev, revision, changes);
        return Object.freeze({ type: op.type, revision, prev });
      }
      case 'delete': {
        const deleted = this.kvs.has(op.key);
        if (deleted) {
          this.rev++;
          this.remove([op.key], changes);
        }
        return Object.freeze({ type: op.type, revision: this.rev, deleted });
      }
      case 'cas':
        return this.compareAndSet(op, changes);
      case 'deletePrefix': {
        const lo = lowerBound(this.keys, op.prefix);
        let hi = lo;
        while (hi < this.keys.length && this.keys[hi].startsWith(op.prefix)) hi++;
        // One revision for the whole deletion, as etcd's DeleteRange (sub-revisions aside).
        if (hi > lo) {
          this.rev++;
          this.remove(this.keys.slice(lo, hi), changes);
        }
        return Object.freeze({ type: op.type, revision: this.rev, deleted: hi - lo });
      }
    }
  }

  private compareAndSet(op: CasOp, changes: KeyChange[]): KvResult {
    const current = this.get(op.key);
    const matches = op.expectRevision === 0 ? current === null : current?.modRevision === op.expectRevision;
    if (!matches) return Object.freeze({ type: op.type, succeeded: false, revision: this.rev, current });
    if (op.value !== null) {
      const revision = ++this.rev;
      const kv = this.write(op.key, op.value, current, revision, changes);
      return Object.freeze({ type: op.type, succeeded: true, revision, current: kv });
    }
    // Delete; when the key is absent (expectRevision 0) there is nothing to do and no revision.
    if (current !== null) {
      this.rev++;
      this.remove([op.key], changes);
    }
    return Object.freeze({ type: op.type, succeeded: true, revision: this.rev, current: null });
  }

  /** etcd mvcc semantics: createRevision survives updates; version counts writes since creation. */
  private write(key: string, value: string, prev: KeyValue | null, revision: number, changes: KeyChange[]): KeyValue {
    const kv: KeyValue = Object.freeze({
      key,
      value,
      createRevision: prev === null ? revision : prev.createRevision,
      modRevision: revision,
      version: prev === null ? 1 : prev.version + 1,
    });
    if (prev === null) this.keys.splice(lowerBound(this.keys, key), 0, key);
    this.kvs.set(key, kv);
    changes.push({ key, kv });
    return kv;
  }

  /** Removes existing keys, adjacent in sort order and given sorted; the caller bumped the revision. */
  private remove(keys: string[], changes: KeyChange[]): void {
    const at = lowerBound(this.keys, keys[0]);
    invariant(this.keys[at] === keys[0], `kv remove of missing key ${keys[0]}`);
    this.keys.splice(at, keys.length);
    for (const key of keys) {
      this.kvs.delete(key);
      changes.push({ key, kv: null });
    }
  }

  private touchSession(clientId: string, session: Session): void {
    this.sessions.delete(clientId);
    this.sessions.set(clientId, session);
    // Map order is lastIndex order, so the first key is the least recently used client.
    while (this.sessions.size > MAX_SESSIONS) {
      this.sessions.delete(this.sessions.keys().next().value as string);
    }
  }
}

function errorResult(error: KvErrorCode, message: string): KvErrorResult {
  return Object.freeze({ type: 'error', error, message });
}

/** First position whose key is >= `key`. */
function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
