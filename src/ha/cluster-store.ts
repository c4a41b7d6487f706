// The cluster store the HA loop reads and writes: Patroni's DCS operations (reference §4,
// AbstractDCS) over the embedded Raft key-value store. Every write that can race is a
// compare-and-set on the key's modRevision, as Patroni's etcd3 backend does with mod_revision.
//
// Errors: a RaftError from the Raft layer (ERR_NOT_LEADER on a follower, ERR_TIMEOUT,
// ERR_PROPOSAL_DROPPED, ERR_STOPPED) is never swallowed. The agent must then treat the store as
// unavailable for this cycle (Patroni: DCSError), not as "the key was refused": a false result
// means the store answered no, a throw means it did not answer. Only the former may demote a
// leader's belief that someone else holds the key (reference §4, failsafe).
//
// Timing (the lease rule, see raft-node.ts): the Raft leader decides a lease's expiry on its own
// clock, counting from when it applied the last renewal, and a new Raft leader restarts every
// countdown. The earliest moment the key can vanish is therefore after the renewal was sent plus
// the TTL, so the holder counts its lease from just before it sent the renewal; it can only be
// early, never late. That is what `leaseExpiresAt` reports.
import type { KeyValue, KvOp, KvResult, KvErrorCode } from '../raft/kv/commands.ts';
import type { KeyChange } from '../raft/kv/state-machine.ts';
import type { ReplicatedKv } from './replicated-kv.ts';
import { KEYS, parseClusterView } from './cluster-view.ts';
import type { ClusterView, JsonObject, LeaderView } from './cluster-view.ts';

export interface ClusterStoreOptions {
  raft: ReplicatedKv;
  /** Patroni's `namespace`, default '/service'. */
  namespace?: string;
  scope: string;
  /** Monotonic milliseconds (performance.now in production); never wall-clock time. */
  now: () => number;
}

/** `leaseExpiresAt`: the holder's conservative deadline on `now`'s clock; null when not held. */
export interface AcquireResult {
  readonly acquired: boolean;
  readonly leaseExpiresAt: number | null;
}

export interface UpdateResult {
  readonly held: boolean;
  readonly leaseExpiresAt: number | null;
}

/**
 * The KV store refused a command deterministically (a value over the size limit, a stale session).
 * A bug or a misuse, not unavailability: carries the KV's code.
 */
export class ClusterStoreError extends Error {
  readonly code: KvErrorCode;
  constructor(code: KvErrorCode, message: string) {
    super(message);
    this.name = 'ClusterStoreError';
    this.code = code;
  }
}

/** A read answered from a state older than one this store already saw (code ERR_STALE_READ). */
export class StaleReadError extends Error {
  readonly code = 'ERR_STALE_READ';
  constructor(message: string) {
    super(message);
    this.name = 'StaleReadError';
  }
}

export class ClusterStore {
  private readonly raft: ReplicatedKv;
  /** The highest applied index a read of ours has seen; no later answer may be older. */
  private highestSeenIndex = 0;
  private readonly now: () => number;
  /** `${namespace}/${scope}/` */
  readonly prefix: string;
  /** Members whose lease this store has granted; afterwards it is only kept alive. */
  private readonly memberLeases = new Set<string>();

  constructor(opts: ClusterStoreOptions) {
    this.raft = opts.raft;
    this.now = opts.now;
    const ns = (opts.namespace ?? '/service').replace(/\/+$/, '');
    this.prefix = `${ns}/${opts.scope}/`;
  }

  private key(name: string): string {
    return this.prefix + name;
  }

  /*
   * Lease ids are global in the KV, not per key prefix; scoping them by prefix keeps two clusters
   * (scopes) that share one Raft group, and have a member name in common, from renewing or revoking
   * each other's leases.
   */
  leaderLeaseId(name: string): string {
    return `${this.prefix}leader:${name}`;
  }

  memberLeaseId(name: string): string {
    return `${this.prefix}member:${name}`;
  }

  /** A linearizable snapshot of the whole prefix (ReadIndex, then one local range read). */
  async getCluster(): Promise<ClusterView> {
    await this.raft.readBarrier();
    // After a ReadIndex barrier the state is at least as new as any write committed before the
    // call, so this cannot fail with our own embedded member; it is the guard the issue asks for
    // against an answer from a member that is behind (a restored or replaced store), which must
    // read as "store unavailable", never as an older truth.
    const index = this.raft.state.appliedIndex;
    if (index < this.highestSeenIndex) throw new StaleReadError(`the store answered from index ${index}, behind index ${this.highestSeenIndex} already seen`);
    this.highestSeenIndex = index;
    return parseClusterView(this.prefix, this.raft.state.range(this.prefix));
  }

  /** Create-if-absent race at bootstrap; true if this call created the key. */
  async initialize(sysid: string): Promise<boolean> {
    return this.casOk(await this.propose({ type: 'cas', key: this.key(KEYS.initialize), expectRevision: 0, value: sysid }));
  }

  /**
   * Replaces the bootstrap placeholder ('' written by initialize('')) with the system identifier
   * once initdb has made one; false if the key no longer holds the placeholder.
   */
  async completeInitialize(sysid: string): Promise<boolean> {
    const key = this.key(KEYS.initialize);
    await this.raft.readBarrier();
    const current = this.raft.state.get(key);
    if (current === null) return this.initialize(sysid);
    if (current.value !== '') return current.value === sysid;
    return this.casOk(await this.propose({ type: 'cas', key, expectRevision: current.modRevision, value: sysid }));
  }

  /** A failed bootstrap gives the race back: deletes `initialize` only if it still holds the placeholder. */
  async cancelInitialize(): Promise<boolean> {
    const key = this.key(KEYS.initialize);
    await this.raft.readBarrier();
    const current = this.raft.state.get(key);
    if (current === null || current.value !== '') return false;
    return this.casOk(await this.propose({ type: 'cas', key, expectRevision: current.modRevision, value: null }));
  }

  /**
   * Creates the leader key, attached to a fresh lease `leaderLeaseId(name)`. False if the key
   * exists, whoever holds it (Patroni: attempt_to_acquire_leader is create-only; a holder that
   * finds its own name there renews with updateLeader instead).
   */
  async attemptToAcquireLeader(name: string, ttlMs: number): Promise<AcquireResult> {
    const leaderKey = this.key(KEYS.leader);
    const lease = this.leaderLeaseId(name);
    // Cheap refusal without touching the lease: granting an existing lease renews it, which must
    // only happen when we intend to hold the key.
    await this.raft.readBarrier();
    if (this.raft.state.get(leaderKey)) return { acquired: false, leaseExpiresAt: null };
    const sentAt = this.now();
    this.expectType(await this.propose({ type: 'leaseGrant', lease, ttlMs }), 'leaseGrant');
    const r = await this.propose({ type: 'cas', key: leaderKey, expectRevision: 0, value: name, lease });
    // The lease may already have been revoked (a TTL shorter than the round trip): not acquired.
    if (r.type === 'error' && r.error === 'ERR_LEASE_NOT_FOUND') return { acquired: false, leaseExpiresAt: null };
    if (this.casOk(r)) return { acquired: true, leaseExpiresAt: sentAt + ttlMs };
    // Lost the race: drop the lease we granted, unless the key (somehow) is attached to it.
    const current = r.type === 'cas' ? r.current : null;
    if (current?.lease !== lease) await this.propose({ type: 'leaseRevoke', lease, renewals: null });
    return { acquired: false, leaseExpiresAt: null };
  }

  /**
   * Renews the leader lease if the leader key still names `name` and is attached to its lease
   * (Patroni: _update_leader, a CAS on value==me plus a TTL refresh). The TTL is the one granted
   * at acquisition: a changed `ttl` takes effect at the next acquisition, and meanwhile the
   * deadline is counted with the smaller of the two so it is never late.
   */
  async updateLeader(name: string, ttlMs: number): Promise<UpdateResult> {
    const lease = this.leaderLeaseId(name);
    await this.raft.readBarrier();
    if (!this.holds(this.raft.state.get(this.key(KEYS.leader)), name, lease)) return { held: false, leaseExpiresAt: null };
    const sentAt = this.now();
    const r = this.expectType(await this.propose({ type: 'leaseKeepAlive', lease }), 'leaseKeepAlive');
    // Check again after the renewal applied here: the key may have been deleted in between (the
    // lease itself renewed fine), and a renewed lease with no leader key on it is not leadership.
    if (!r.found || !this.holds(this.raft.state.get(this.key(KEYS.leader)), name, lease)) return { held: false, leaseExpiresAt: null };
    return { held: true, leaseExpiresAt: sentAt + Math.min(ttlMs, r.ttlMs) };
  }

  /** Deletes the leader key if it names us, then revokes our leader lease whatever happened. */
  async deleteLeader(name: string): Promise<boolean> {
    const leaderKey = this.key(KEYS.leader);
    await this.raft.readBarrier();
    const current = this.raft.state.get(leaderKey);
    let deleted = false;
    if (current && current.value === name) {
      deleted = this.casOk(await this.propose({ type: 'cas', key: leaderKey, expectRevision: current.modRevision, value: null }));
    }
    // Unconditional: a lease that outlived our key serves nothing, and the key may have gone
    // between the read and the delete.
    await this.propose({ type: 'leaseRevoke', lease: this.leaderLeaseId(name), renewals: null });
    return deleted;
  }

  /** Writes `members/<name>` attached to the member's lease (granted once, then kept alive). */
  async touchMember(name: string, data: JsonObject, ttlMs: number): Promise<boolean> {
    const lease = this.memberLeaseId(name);
    let renewed = false;
    if (this.memberLeases.has(name)) {
      const r = this.expectType(await this.propose({ type: 'leaseKeepAlive', lease }), 'leaseKeepAlive');
      renewed = r.found && r.ttlMs === ttlMs;
    }
    // (Re)grant when new, expired (the member key went with it), or the TTL changed.
    if (!renewed) this.expectType(await this.propose({ type: 'leaseGrant', lease, ttlMs }), 'leaseGrant');
    this.memberLeases.add(name);
    const key = this.key(KEYS.membersDir + name);
    const value = JSON.stringify(data);
    // Unchanged data on a renewed lease needs no write: the keep-alive above has applied here, so
    // this local read shows whether the key is still there with this value. Halves an idle
    // member's writes.
    const current = this.raft.state.get(key);
    if (renewed && current !== null && current.value === value && current.lease === lease) return true;
    const r = await this.propose({ type: 'put', key, value, lease });
    if (r.type === 'error' && r.error === 'ERR_LEASE_NOT_FOUND') {
      // Revoked between renewal and put (a TTL shorter than a round trip); next cycle re-grants.
      this.memberLeases.delete(name);
      return false;
    }
    this.expectType(r, 'put');
    return true;
  }

  setConfig(value: JsonObject, expectRevision?: number): Promise<boolean> {
    return this.write(KEYS.config, JSON.stringify(value), expectRevision);
  }

  /** null deletes the key (a CAS delete when expectRevision is given). */
  setFailover(value: JsonObject | null, expectRevision?: number): Promise<boolean> {
    return this.write(KEYS.failover, value === null ? null : JSON.stringify(value), expectRevision);
  }

  /** null deletes the key. */
  setSyncState(value: JsonObject | null, expectRevision?: number): Promise<boolean> {
    return this.write(KEYS.sync, value === null ? null : JSON.stringify(value), expectRevision);
  }

  setHistory(value: unknown[]): Promise<boolean> {
    return this.write(KEYS.history, JSON.stringify(value));
  }

  setStatus(value: JsonObject): Promise<boolean> {
    return this.write(KEYS.status, JSON.stringify(value));
  }

  /**
   * An operator removed a member: the primary then drops its slot at once instead of keeping it
   * member_slots_ttl. The mark stays; a member of that name that joins again writes its member
   * key, which keeps its slot as for any member.
   */
  async markRemoved(name: string, raftId: string | null): Promise<void> {
    await this.write(KEYS.removedDir + name, JSON.stringify({ raft_id: raftId, removed_at: new Date().toISOString() }));
  }

  /** Deletes `members/<name>` (its lease, on the removed member's side, then serves nothing). */
  deleteMemberKey(name: string): Promise<boolean> {
    return this.write(KEYS.membersDir + name, null);
  }

  setFailsafe(value: JsonObject): Promise<boolean> {
    return this.write(KEYS.failsafe, JSON.stringify(value));
  }

  /**
   * Calls `cb` each time an applied entry changes the leader key (null: deleted, e.g. by a lease
   * revoke). Local and unconfirmed: a wake-up for replicas to run a cycle at once, not a read to
   * decide on (decide on getCluster). Returns the function that stops watching.
   */
  watchLeader(cb: (leader: LeaderView | null, index: number) => void): () => void {
    const leaderKey = this.key(KEYS.leader);
    const listener = (changes: KeyChange[], index: number): void => {
      for (const c of changes) {
        if (c.key !== leaderKey) continue;
        cb(c.kv ? { name: c.kv.value, revision: c.kv.modRevision, lease: c.kv.lease } : null, index);
      }
    };
    this.raft.on('changes', listener);
    return () => {
      this.raft.off('changes', listener);
    };
  }

  // ---- helpers ------------------------------------------------------------------------------

  private async write(name: string, value: string | null, expectRevision?: number): Promise<boolean> {
    const key = this.key(name);
    if (expectRevision !== undefined) return this.casOk(await this.propose({ type: 'cas', key, expectRevision, value }));
    if (value === null) return this.expectType(await this.propose({ type: 'delete', key }), 'delete').deleted;
    this.expectType(await this.propose({ type: 'put', key, value }), 'put');
    return true;
  }

  private holds(kv: KeyValue | null, name: string, lease: string): boolean {
    return kv !== null && kv.value === name && kv.lease === lease;
  }

  /** RaftErrors pass through untouched (see the header). */
  private propose(op: KvOp): Promise<KvResult> {
    return this.raft.propose(op);
  }

  private casOk(r: KvResult): boolean {
    return this.expectType(r, 'cas').succeeded;
  }

  private expectType<T extends Exclude<KvResult['type'], 'error'>>(r: KvResult, type: T): Extract<KvResult, { type: T }> {
    if (r.type === 'error') throw new ClusterStoreError(r.error, `the store refused the command: ${r.message}`);
    if (r.type !== type) throw new Error(`expected a ${type} result, got ${r.type}`);
    return r as Extract<KvResult, { type: T }>;
  }
}
