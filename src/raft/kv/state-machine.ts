// The replicated key-value state machine: what every node applies, entry by entry, from the
// committed Raft log. Pure and deterministic (no clock, randomness or I/O): replicas that apply the
// same entries hold the same state, down to the bytes of their snapshots. Reads (`get`, `range`)
// are served locally once the node has applied up to a ReadIndex (thesis §6.4). Leases are only
// recorded here; their expiry is the leader's decision, committed as a leaseRevoke (commands.ts).
import { invariant } from '../core/errors.ts';
import { decodeCommand, limitViolation } from './commands.ts';
import type { CasOp, KeyValue, KvCommand, KvErrorCode, KvErrorResult, KvOp, KvResult, LeaseInfo, LeaseRevokeOp } from './commands.ts';
import { decodeSnapshot, encodeSnapshot } from './snapshot.ts';
import type { Session } from './snapshot.ts';
import { SortedKeys } from './sorted-keys.ts';

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

/** A lease's mutable record; handed out only as a frozen LeaseInfo copy. */
interface Lease {
  ttlMs: number;
  renewals: number;
  readonly keys: Set<string>;
}

export class KvStateMachine {
  private applied = 0;
  private rev = 0;
  private readonly kvs = new Map<string, KeyValue>();
  /** The keys of `kvs`, sorted, for range and snapshot. */
  private readonly keys = new SortedKeys();
  /** Iteration order is least recently used first: a touched session is deleted and re-inserted. */
  private readonly sessions = new Map<string, Session>();
  /** Iteration order is never observed: everything handed out or snapshotted is sorted by id. */
  private readonly leaseTable = new Map<string, Lease>();

  /** Index of the last entry applied (or marked applied). */
  get appliedIndex(): number {
    return this.applied;
  }

  /**
   * The store's revision: bumped once by every command that changed a key. Lease bookkeeping
   * (grant, keep-alive) changes no key and no revision, as in etcd; a revoke that deletes keys does.
   */
  get revision(): number {
    return this.rev;
  }

  get size(): number {
    return this.kvs.size;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Records a snapshot holds (keys, sessions, leases): what taking one costs is in proportion to it. */
  get recordCount(): number {
    return this.keys.size + this.sessions.size + this.leaseTable.size;
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
    return this.keys.withPrefix(prefix).map((k) => this.kvs.get(k) as KeyValue);
  }

  /** A lease with its attached keys, or null if there is none by that id. */
  lease(id: string): LeaseInfo | null {
    const lease = this.leaseTable.get(id);
    return lease === undefined ? null : leaseInfo(id, lease);
  }

  /** Every lease, sorted by id: what a new leader restarts its countdowns from. */
  leases(): LeaseInfo[] {
    return [...this.leaseTable.keys()].sort().map((id) => leaseInfo(id, this.leaseTable.get(id) as Lease));
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
      kvs: this.keys.all().map((k) => this.kvs.get(k) as KeyValue),
      sessions: [...this.sessions],
      leases: this.leases(),
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
      sm.keys.append(kv.key); // decodeSnapshot checked they are sorted
    }
    for (const [clientId, session] of state.sessions) sm.sessions.set(clientId, session);
    // decodeSnapshot checked that these keys and the keys' lease fields agree.
    for (const { lease, ttlMs, renewals, keys } of state.leases) sm.leaseTable.set(lease, { ttlMs, renewals, keys: new Set(keys) });
    return sm;
  }

  private advance(index: number): void {
    // Strictly after, not exactly next: entries the node keeps to itself (conf changes) may skip
    // markApplied, and such a gap is harmless here. Going backwards would re-apply: stop instead.
    invariant(Number.isSafeInteger(index) && index > this.applied, `kv apply at index ${index} after ${this.applied}`);
    this.applied = index;
  }

  private execute(op: KvOp, changes: KeyChange[]): KvResult {
    // A write naming a lease that is gone (the leader revoked it meanwhile) is refused before
    // anything else is looked at, so it changes nothing whatever the key holds.
    if ((op.type === 'put' || op.type === 'cas') && op.lease !== undefined && !this.leaseTable.has(op.lease)) {
      return errorResult('ERR_LEASE_NOT_FOUND', `lease ${JSON.stringify(op.lease)} does not exist`);
    }
    switch (op.type) {
      case 'put': {
        const prev = this.get(op.key);
        const revision = ++this.rev;
        this.write(op.key, op.value, op.lease ?? null, prev, revision, changes);
        return Object.freeze({ type: op.type, revision, prev });
      }
      case 'delete': {
        const deleted = this.kvs.has(op.key);
        if (deleted) {
          this.rev++;
          this.removeKeys([op.key], changes);
        }
        return Object.freeze({ type: op.type, revision: this.rev, deleted });
      }
      case 'cas':
        return this.compareAndSet(op, changes);
      case 'deletePrefix': {
        const removed = this.keys.removePrefix(op.prefix);
        // One revision for the whole deletion, as etcd's DeleteRange (sub-revisions aside).
        if (removed.length > 0) {
          this.rev++;
          this.forget(removed, changes);
        }
        return Object.freeze({ type: op.type, revision: this.rev, deleted: removed.length });
      }
      case 'leaseGrant': {
        // Granting an existing lease is a renewal with a new TTL (the leader restarts its countdown).
        const lease = this.leaseTable.get(op.lease);
        if (lease === undefined) this.leaseTable.set(op.lease, { ttlMs: op.ttlMs, renewals: 0, keys: new Set() });
        else {
          lease.ttlMs = op.ttlMs;
          lease.renewals++;
        }
        const { ttlMs, renewals } = this.leaseTable.get(op.lease) as Lease;
        return Object.freeze({ type: op.type, revision: this.rev, lease: op.lease, ttlMs, renewals });
      }
      case 'leaseKeepAlive': {
        const lease = this.leaseTable.get(op.lease);
        if (lease === undefined) return Object.freeze({ type: op.type, revision: this.rev, lease: op.lease, found: false, ttlMs: 0, renewals: 0 });
        lease.renewals++;
        return Object.freeze({ type: op.type, revision: this.rev, lease: op.lease, found: true, ttlMs: lease.ttlMs, renewals: lease.renewals });
      }
      case 'leaseRevoke':
        return this.revoke(op, changes);
    }
  }

  private compareAndSet(op: CasOp, changes: KeyChange[]): KvResult {
    const current = this.get(op.key);
    const matches = op.expectRevision === 0 ? current === null : current?.modRevision === op.expectRevision;
    if (!matches) return Object.freeze({ type: op.type, succeeded: false, revision: this.rev, current });
    if (op.value !== null) {
      const revision = ++this.rev;
      const kv = this.write(op.key, op.value, op.lease ?? null, current, revision, changes);
      return Object.freeze({ type: op.type, succeeded: true, revision, current: kv });
    }
    // Delete; when the key is absent (expectRevision 0) there is nothing to do and no revision.
    if (current !== null) {
      this.rev++;
      this.removeKeys([op.key], changes);
    }
    return Object.freeze({ type: op.type, succeeded: true, revision: this.rev, current: null });
  }

  /**
   * The leader decided the lease expired having seen `op.renewals` renewals; if the counter has
   * moved since, a keep-alive committed first and wins. All attached keys go at one revision, as
   * etcd's lessor deletes them in one transaction.
   */
  private revoke(op: LeaseRevokeOp, changes: KeyChange[]): KvResult {
    const lease = this.leaseTable.get(op.lease);
    if (lease === undefined || (op.renewals !== null && op.renewals !== lease.renewals)) {
      return Object.freeze({ type: op.type, revision: this.rev, lease: op.lease, revoked: false, deleted: 0 });
    }
    const keys = [...lease.keys].sort();
    if (keys.length > 0) {
      this.rev++;
      this.removeKeys(keys, changes);
    }
    this.leaseTable.delete(op.lease);
    return Object.freeze({ type: op.type, revision: this.rev, lease: op.lease, revoked: true, deleted: keys.length });
  }

  /**
   * etcd mvcc semantics: createRevision survives updates; version counts writes since creation.
   * The key moves to `lease` (null: to none), whatever lease it had before.
   */
  private write(key: string, value: string, lease: string | null, prev: KeyValue | null, revision: number, changes: KeyChange[]): KeyValue {
    const kv: KeyValue = Object.freeze({
      key,
      value,
      createRevision: prev === null ? revision : prev.createRevision,
      modRevision: revision,
      version: prev === null ? 1 : prev.version + 1,
      lease,
    });
    if (prev === null) this.keys.insert(key);
    else this.detach(prev);
    if (lease !== null) (this.leaseTable.get(lease) as Lease).keys.add(key);
    this.kvs.set(key, kv);
    changes.push({ key, kv });
    return kv;
  }

  /** Removes existing keys, given sorted (not necessarily adjacent); the caller bumped the revision. */
  private removeKeys(keys: readonly string[], changes: KeyChange[]): void {
    for (const key of keys) invariant(this.keys.remove(key), `kv remove of missing key ${key}`);
    this.forget(keys, changes);
  }

  /** Drops keys already taken out of `keys` from the map and their leases, and reports them. */
  private forget(keys: readonly string[], changes: KeyChange[]): void {
    for (const key of keys) {
      const kv = this.kvs.get(key);
      invariant(kv !== undefined, `kv remove of missing key ${key}`);
      this.detach(kv);
      this.kvs.delete(key);
      changes.push({ key, kv: null });
    }
  }

  private detach(kv: KeyValue): void {
    if (kv.lease === null) return;
    const lease = this.leaseTable.get(kv.lease);
    invariant(lease !== undefined && lease.keys.delete(kv.key), `kv key ${kv.key} attached to missing lease ${kv.lease}`);
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

function leaseInfo(id: string, lease: Lease): LeaseInfo {
  return Object.freeze({ lease: id, ttlMs: lease.ttlMs, renewals: lease.renewals, keys: Object.freeze([...lease.keys].sort()) });
}

function errorResult(error: KvErrorCode, message: string): KvErrorResult {
  return Object.freeze({ type: 'error', error, message });
}
