// One simulated member: a RawNode driven exactly as the real node runner drives it, with a
// "disk" that holds only what a completed synced write put there. A crash throws away
// everything else (the in-memory log cache, the state machine, the write in progress).
import type { Entry, Message, NodeId, Ready } from '../../../src/raft/core/types.ts';
import { MemoryStorage } from '../../../src/raft/core/storage.ts';
import { RawNode } from '../../../src/raft/core/raw-node.ts';
import { decodeConfChange } from '../../../src/raft/core/conf-change.ts';
import { RaftError } from '../../../src/raft/core/errors.ts';
import { KvStateMachine } from '../../../src/raft/kv/state-machine.ts';
import type { ApplyResult } from '../../../src/raft/kv/state-machine.ts';
import { encodeCommand } from '../../../src/raft/kv/commands.ts';
import type { KvResult } from '../../../src/raft/kv/commands.ts';
import { LeaseCountdown } from '../../../src/raft/node/lease-countdown.ts';
import type { EventQueue } from './event-queue.ts';
import type { Prng } from './prng.ts';

export interface NodeObserver {
  onRole(node: SimNode): void;
  onApply(node: SimNode, entry: Entry): void;
  /** A lease revoke took effect here (its keys are gone). */
  onLeaseRevoked(node: SimNode, lease: string): void;
  onDurable(node: SimNode): void;
  onCrashError(node: SimNode, error: unknown): void;
  /**
   * Buggify-style crash points (FoundationDB): at moments where a crash is most revealing the
   * cluster may crash this node on the spot. Returns whether it did.
   */
  crashPoint(node: SimNode, point: 'vote' | 'leader' | 'applied'): boolean;
  trace(line: string): void;
}

export interface SimNodeOptions {
  electionTick: number;
  heartbeatTick: number;
  tickMs: number;
  fsyncMin: number;
  fsyncMax: number;
  /** Take a snapshot after this many applied entries, keeping `trailingEntries` in the log. */
  snapshotEvery: number;
  trailingEntries: number;
  /** Planted bug: the durable hard state loses its vote. */
  forgetVote: boolean;
  maxSizePerMsg: number;
  /** Writes that may be outstanding at once (1 = one Ready at a time). */
  pipelineDepth: number;
}

type ProposalCallback = (outcome: { ok: true; result: ApplyResult } | { ok: false; reason: string }) => void;
type ReadCallback = (outcome: { ok: true; sm: KvStateMachine } | { ok: false; reason: string }) => void;

export class SimNode {
  readonly id: NodeId;
  alive = false;
  /** What survives a crash. */
  disk: MemoryStorage;
  cache!: MemoryStorage;
  raw!: RawNode;
  sm!: KvStateMachine;
  /** Bumped on every start, so events scheduled for a dead incarnation do nothing. */
  private incarnation = 0;
  /** Writes taken and not completed yet, and when the last of them completes. */
  private outstanding = 0;
  private lastWriteDone = 0;
  private pumping = false;
  private proposals = new Map<number, { term: number; cb: ProposalCallback }>();
  private reads = new Map<string, ReadCallback>();
  private readWaiters: { index: number; cb: ReadCallback }[] = [];
  private readCounter = 0;
  private lastRole = '';
  private lastCommit = 0;
  /** The leader's lease countdowns on virtual time, wired as the real node runner wires them. */
  private leaseCountdown: LeaseCountdown;
  private wasLeader = false;
  private revokeSeq = 0;
  /** The term in which this node last persisted as leader (for the 'leader' crash point). */
  private leaderSince = -1;
  private readonly opts: SimNodeOptions;
  private readonly queue: EventQueue;
  private readonly rng: Prng;
  private readonly send: (m: Message) => void;
  private readonly obs: NodeObserver;

  constructor(id: NodeId, disk: MemoryStorage, opts: SimNodeOptions, queue: EventQueue, rng: Prng, send: (m: Message) => void, obs: NodeObserver) {
    this.id = id;
    this.disk = disk;
    this.opts = opts;
    this.queue = queue;
    this.rng = rng;
    this.send = send;
    this.obs = obs;
    this.leaseCountdown = new LeaseCountdown(() => this.queue.now);
  }

  start(): void {
    this.incarnation++;
    this.alive = true;
    this.outstanding = 0;
    this.lastWriteDone = 0;
    this.cache = this.disk.clone();
    const snap = this.cache.snapshot();
    this.sm = KvStateMachine.fromSnapshot(snap.data, snap.meta.index);
    this.raw = new RawNode({
      id: this.id,
      storage: this.cache,
      electionTick: this.opts.electionTick,
      heartbeatTick: this.opts.heartbeatTick,
      applied: snap.meta.index,
      randomInt: (n) => this.rng.int(n),
      maxSizePerMsg: this.opts.maxSizePerMsg,
      maxInflightMsgs: 16,
    });
    this.lastCommit = this.raw.status().commit;
    this.lastRole = '';
    this.leaseCountdown = new LeaseCountdown(() => this.queue.now);
    this.wasLeader = false;
    this.leaderSince = -1;
    this.obs.trace(`${this.id} start term=${this.raw.raft.term} commit=${this.lastCommit} last=${this.raw.status().lastIndex}`);
    const inc = this.incarnation;
    const tick = (): void => {
      if (!this.alive || this.incarnation !== inc) return;
      this.guard(() => this.raw.tick());
      if (this.alive && this.incarnation === inc && this.raw.raft.role === 'leader') this.revokeExpiredLeases();
      this.queue.after(this.opts.tickMs, tick);
    };
    this.queue.after(this.rng.between(1, this.opts.tickMs), tick);
    this.pump();
  }

  crash(): void {
    if (!this.alive) return;
    this.alive = false;
    this.incarnation++;
    for (const p of this.proposals.values()) p.cb({ ok: false, reason: 'crashed' });
    for (const r of this.reads.values()) r({ ok: false, reason: 'crashed' });
    for (const w of this.readWaiters) w.cb({ ok: false, reason: 'crashed' });
    this.proposals.clear();
    this.reads.clear();
    this.readWaiters = [];
    this.obs.trace(`${this.id} crash (durable: term=${this.disk.hardState.term} vote=${this.disk.hardState.vote} commit=${this.disk.hardState.commit} last=${this.disk.lastIndex()})`);
  }

  receive(m: Message): void {
    if (!this.alive) return;
    this.guard(() => this.raw.step(m));
  }

  /** Runs core code; an exception from it is a finding, and the node stops like a real one. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.obs.onCrashError(this, e);
      this.crash();
      return;
    }
    if (!this.alive) return; // crashed at a crash point
    this.observe();
    this.pump();
  }

  private observe(): void {
    const r = this.raw.raft;
    const role = `${r.role}@${r.term}`;
    if (role !== this.lastRole) {
      this.lastRole = role;
      this.obs.trace(`${this.id} ${r.role} term=${r.term} last=${r.log.lastIndex()} commit=${r.log.committed}`);
      this.obs.onRole(this);
      const isLeader = r.role === 'leader';
      if (isLeader && !this.wasLeader) this.leaseCountdown.restartAll(this.sm.leases());
      if (!isLeader && this.wasLeader) this.leaseCountdown.clear();
      this.wasLeader = isLeader;
    }
    if (r.log.committed < this.lastCommit) this.obs.onCrashError(this, new Error(`commit index went back from ${this.lastCommit} to ${r.log.committed}`));
    this.lastCommit = r.log.committed;
  }

  /**
   * Hands Readies to the "disk" as the real runner does: the leader's appends go out at once,
   * committed entries are applied at once (they are durable on a quorum), and up to
   * `pipelineDepth` writes may be outstanding; writes complete in the order they were taken.
   */
  private pump(): void {
    // Applying an entry answers a client, which may propose at once: a nested pump would take a
    // newer Ready and schedule its write before this one's, breaking write order.
    if (this.pumping) return;
    this.pumping = true;
    try {
      this.pumpReadies();
    } finally {
      this.pumping = false;
    }
  }

  private pumpReadies(): void {
    while (this.alive && this.outstanding < this.opts.pipelineDepth && this.raw.hasReady()) {
      const rd = this.raw.ready();
      for (const m of rd.messagesNow) this.send(m);
      if (rd.snapshot) {
        this.sm = KvStateMachine.fromSnapshot(rd.snapshot.data, rd.snapshot.meta.index);
        this.obs.trace(`${this.id} installed snapshot at ${rd.snapshot.meta.index}`);
      }
      for (const e of rd.committedEntries) this.apply(e);
      for (const rs of rd.readStates) {
        const cb = this.reads.get(rs.context);
        if (!cb) continue;
        this.reads.delete(rs.context);
        this.readWaiters.push({ index: rs.index, cb });
      }
      this.serveReads();
      // A leader that has just applied (and so acknowledged) writes (Figure 8's S1 at (e)).
      if (rd.committedEntries.length > 0 && this.raw.raft.role === 'leader' && this.obs.crashPoint(this, 'applied')) return;
      this.outstanding++;
      const inc = this.incarnation;
      const needsDisk = rd.mustSync || rd.snapshot !== null || rd.hardState !== null;
      const done = Math.max(this.lastWriteDone, this.queue.now + (needsDisk ? this.rng.between(this.opts.fsyncMin, this.opts.fsyncMax) : 0));
      this.lastWriteDone = done;
      this.queue.at(done, () => {
        if (!this.alive || this.incarnation !== inc) return; // crashed before the write completed
        this.outstanding--;
        this.guard(() => this.persisted(rd));
      });
    }
  }

  private persisted(rd: Ready): void {
    // The synced write: snapshot, entries, hard state, atomically.
    for (const storage of [this.disk, this.cache]) {
      if (rd.snapshot) storage.applySnapshot(rd.snapshot);
      storage.append(rd.entries);
    }
    if (rd.hardState) {
      this.cache.setHardState(rd.hardState);
      this.disk.setHardState(this.opts.forgetVote ? { ...rd.hardState, vote: null } : rd.hardState);
    }
    this.obs.onDurable(this);
    for (const m of rd.messages) this.send(m);
    if (rd.hardState?.vote && this.obs.crashPoint(this, 'vote')) return;
    // A new leader whose no-op is on its disk but perhaps nowhere else (Figure 8's S5).
    const r = this.raw.raft;
    if (r.role === 'leader' && this.leaderSince !== r.term) {
      this.leaderSince = r.term;
      if (this.obs.crashPoint(this, 'leader')) return;
    }
    this.raw.advance(rd);
    this.maybeSnapshot();
  }

  private apply(e: Entry): void {
    this.obs.onApply(this, e);
    let result: ApplyResult | null = null;
    if (e.type === 'conf') {
      const cc = decodeConfChange(e.data);
      this.raw.applyConfChange(cc);
      this.sm.markApplied(e.index);
      this.obs.trace(`${this.id} applied conf ${cc.type} ${cc.node} at ${e.index} -> voters=${this.raw.raft.voters().join(',')} learners=${this.raw.raft.learners().join(',')}`);
    } else {
      result = this.sm.apply(e.index, e.data);
      if (result.result) this.noteLease(result.result);
    }
    const p = this.proposals.get(e.index);
    if (p) {
      this.proposals.delete(e.index);
      // Another entry took this index: ours was overwritten and can never commit.
      if (p.term !== e.term) p.cb({ ok: false, reason: `index ${e.index} committed in term ${e.term}, not ${p.term}` });
      else if (result) p.cb({ ok: true, result });
    }
  }

  private noteLease(result: KvResult): void {
    if (result.type === 'leaseRevoke' && result.revoked) {
      this.obs.onLeaseRevoked(this, result.lease);
      this.leaseCountdown.gone(result.lease);
      return;
    }
    if (this.raw.raft.role !== 'leader') return;
    if (result.type === 'leaseGrant' || (result.type === 'leaseKeepAlive' && result.found)) {
      this.leaseCountdown.renewed({ lease: result.lease, ttlMs: result.ttlMs, renewals: result.renewals });
    }
  }

  private revokeExpiredLeases(): void {
    for (const { lease, renewals } of this.leaseCountdown.expired()) {
      this.obs.trace(`${this.id} lease ${lease} expired on the leader clock (renewals ${renewals}): revoking`);
      const data = encodeCommand({ clientId: `${this.id}/revoker/${this.incarnation}`, seq: ++this.revokeSeq, op: { type: 'leaseRevoke', lease, renewals } });
      this.propose(data, (r) => {
        if (r.ok && r.result.result?.type === 'leaseRevoke' && r.result.result.revoked) return;
        if (!this.alive) return;
        if (!this.sm.lease(lease)) this.leaseCountdown.gone(lease);
        else this.leaseCountdown.revokeFailed(lease);
      });
    }
  }

  private serveReads(): void {
    const ready = this.readWaiters.filter((w) => w.index <= this.sm.appliedIndex);
    this.readWaiters = this.readWaiters.filter((w) => w.index > this.sm.appliedIndex);
    for (const w of ready) w.cb({ ok: true, sm: this.sm });
  }

  private maybeSnapshot(): void {
    const applied = this.sm.appliedIndex;
    const snapIndex = this.cache.snapshot().meta.index;
    if (applied - snapIndex < this.opts.snapshotEvery) return;
    // Entries applied early may still be on their way to disk: snapshot once they are there.
    if (applied > this.cache.lastIndex()) return;
    const data = this.sm.snapshot();
    const conf = this.raw.raft.confState();
    for (const storage of [this.disk, this.cache]) {
      storage.createSnapshot(applied, conf, data);
      const compactTo = applied - this.opts.trailingEntries;
      if (compactTo > storage.firstIndex()) storage.compact(compactTo);
    }
    this.obs.trace(`${this.id} snapshot at ${applied}, log now ${this.cache.firstIndex()}..${this.cache.lastIndex()}`);
  }

  // ---- client-facing -----------------------------------------------------------------------

  propose(data: Uint8Array, cb: ProposalCallback): void {
    if (!this.alive) return cb({ ok: false, reason: 'down' });
    let at: { firstIndex: number; term: number };
    try {
      at = this.raw.propose([data]);
    } catch (e) {
      if (e instanceof RaftError) return cb({ ok: false, reason: e.code });
      throw e;
    }
    this.proposals.set(at.firstIndex, { term: at.term, cb });
    this.observe();
    this.pump();
  }

  read(cb: ReadCallback): void {
    if (!this.alive) return cb({ ok: false, reason: 'down' });
    const ctx = `${this.id}:${this.incarnation}:${++this.readCounter}`;
    try {
      this.raw.readIndex(ctx);
    } catch (e) {
      if (e instanceof RaftError) return cb({ ok: false, reason: e.code });
      throw e;
    }
    this.reads.set(ctx, cb);
    this.pump();
  }

  proposeConfChange(cc: { type: 'addLearner' | 'promote' | 'remove'; node: NodeId }): string | null {
    if (!this.alive) return 'down';
    try {
      this.raw.proposeConfChange(cc);
    } catch (e) {
      if (e instanceof RaftError) return e.code;
      throw e;
    }
    this.pump();
    return null;
  }

  transferLeadership(target: NodeId): void {
    if (!this.alive) return;
    this.guard(() => this.raw.transferLeadership(target));
  }

  reportUnreachable(to: NodeId): void {
    if (!this.alive) return;
    this.guard(() => this.raw.reportUnreachable(to));
  }

  reportSnapshot(to: NodeId, ok: boolean): void {
    if (!this.alive) return;
    this.guard(() => this.raw.reportSnapshot(to, ok));
  }

  isLeader(): boolean {
    return this.alive && this.raw.raft.role === 'leader';
  }
}

export function newDisk(voters: NodeId[] | null): MemoryStorage {
  return voters ? MemoryStorage.bootstrap(voters) : new MemoryStorage();
}
