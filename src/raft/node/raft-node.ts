// The node runner: drives the pure Raft core with real time, a LevelDB store and the HTTP
// transport, and applies committed entries to the key-value state machine. It runs the Ready
// loop of types.ts: send the leader's appends, write one synced batch, then send what depended
// on it, apply, advance. One write is in flight at a time; whatever arrives meanwhile (proposals,
// messages) lands in the next batch, which is how many proposals share one fsync.
import { EventEmitter } from 'node:events';
import { randomUUID, randomInt } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ConfChange, ConfState, Entry, Message, NodeId, Ready, Snapshot } from '../core/types.ts';
import { MemoryStorage, bootstrapSnapshot } from '../core/storage.ts';
import { RawNode } from '../core/raw-node.ts';
import type { Status } from '../core/raw-node.ts';
import { decodeConfChange } from '../core/conf-change.ts';
import { RaftError } from '../core/errors.ts';
import { KvStateMachine } from '../kv/state-machine.ts';
import type { KeyChange } from '../kv/state-machine.ts';
import { encodeCommand } from '../kv/commands.ts';
import type { KvOp, KvResult } from '../kv/commands.ts';
import { LevelRaftStore } from '../../storage/level-raft-store.ts';
import type { LoadedRaftState } from '../../storage/level-raft-store.ts';
import { PeerTransport } from '../transport/client.ts';
import { registerRaftServer } from '../transport/server.ts';
import { registerForwardingServer } from './forwarding.ts';
import { RAFT_JOIN_PATH, askedWhetherRemoved, registerMembershipServer } from './membership.ts';
import { installRaftAuth } from '../transport/auth-hooks.ts';
import type { RaftAuth } from '../transport/auth.ts';
import { trace, tracing } from './latency-trace.ts';
import { LeaseCountdown } from './lease-countdown.ts';
import type { RaftServer } from '../transport/server.ts';

/**
 * Disk writes a node may have outstanding at once. Deeper pipelines did not raise throughput on
 * the 2-core benchmark machine (it is CPU-bound there, and deeper means smaller batches); two
 * keep the disk busy between batches and cut p99 latency against one.
 */
const PIPELINE_DEPTH = 2;

/** Members' transport addresses live in the replicated store, so every leader can reach a joiner. */
export const PEER_KEY_PREFIX = '/conclave/raft/peers/';
/** Members removed from the cluster: the leader refuses their forwarded writes. */
export const REMOVED_KEY_PREFIX = '/conclave/raft/removed/';

/** The value of a removal mark: when, and which incarnation of the member (null: not known). */
interface RemovalRecord {
  at: number;
  incarnation: string | null;
}

/** Older marks hold only a timestamp: no incarnation. */
function parseRemoval(value: string): RemovalRecord {
  try {
    const v = JSON.parse(value) as Partial<RemovalRecord>;
    return { at: typeof v.at === 'number' ? v.at : 0, incarnation: typeof v.incarnation === 'string' ? v.incarnation : null };
  } catch {
    return { at: 0, incarnation: null };
  }
}

export interface RaftNodeOptions {
  id: NodeId;
  dataDir: string;
  /** The founding voters and their URLs; used to bootstrap an empty store and to reach peers. */
  peers: Record<NodeId, string>;
  /** Start empty and wait to be added by the cluster, instead of bootstrapping a new one. */
  join?: boolean;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Take a snapshot after this many applied entries; keep `trailingEntries` for slow followers. */
  snapshotEvery?: number;
  trailingEntries?: number;
  requestTimeoutMs?: number;
  logger: Logger;
  /** Proof of membership on every request this node makes and answers (transport/auth.ts); absent: none. */
  auth?: RaftAuth;
}

interface PendingProposal {
  term: number;
  resolve: (r: Applied) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** A proposal's outcome and the log index it applied at (what a forwarding member waits for). */
export interface Applied {
  readonly result: KvResult;
  readonly index: number;
}

interface PendingRead {
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class RaftNode extends EventEmitter {
  readonly id: NodeId;
  private readonly opts: Required<Omit<RaftNodeOptions, 'join' | 'logger' | 'auth'>>;
  /** Signs this node's requests to its peers (when it has a secret) and carries its TLS material; null: neither. */
  readonly auth: RaftAuth | null;
  /** The incarnation each member last signed with, so a removal can name the one refused from then on. */
  private readonly incarnations = new Map<NodeId, string>();
  private readonly log: Logger;
  private readonly store: LevelRaftStore;
  private readonly cache: MemoryStorage;
  private readonly raw: RawNode;
  private sm: KvStateMachine;
  private readonly transport: PeerTransport;
  private server: RaftServer | null = null;
  private readonly peerUrls = new Map<NodeId, string>();

  /** Readies taken whose write has not completed, and the chain their completions run on. */
  private outstanding = 0;
  private writes: Promise<void> = Promise.resolve();
  private snapshotting = false;
  /** The state machine's size when the latest snapshot was taken or installed (maybeSnapshot). */
  private sizeAtSnapshot = 0;
  private driving = false;
  private stopped = false;
  private fatal: Error | null = null;
  private ticker: NodeJS.Timeout | null = null;

  private readonly clientId = `node-${randomUUID()}`;
  private seq = 0;
  private queuedProposals: { data: Uint8Array; p: Omit<PendingProposal, 'term'> }[] = [];
  private proposals = new Map<number, PendingProposal>();
  private queuedReads: PendingRead[] = [];
  private readsByContext = new Map<string, PendingRead[]>();
  private readWaiters: { index: number; reads: PendingRead[] }[] = [];
  private readCounter = 0;
  private flushScheduled = false;
  private lastRole = '';
  /** Lease countdowns, kept only while this node is the Raft leader (lease-countdown.ts). */
  private readonly leaseCountdown = new LeaseCountdown(() => performance.now());
  private wasLeader = false;
  /** A learner promotion is in flight (promoteCaughtUpLearners). */
  private promoting = false;
  private ticksSincePromotionCheck = 0;
  private ticksWithoutLeader = 0;
  private removalCheckRunning = false;
  private removedNoticed = false;
  /** Started to join and not yet in the configuration. */
  private joinPending: boolean;

  private constructor(opts: RaftNodeOptions, store: LevelRaftStore, loaded: LoadedRaftState) {
    super();
    this.id = opts.id;
    this.log = opts.logger;
    this.opts = {
      id: opts.id,
      dataDir: opts.dataDir,
      peers: opts.peers,
      tickMs: opts.tickMs ?? 50,
      electionTicks: opts.electionTicks ?? 10,
      heartbeatTicks: opts.heartbeatTicks ?? 1,
      snapshotEvery: opts.snapshotEvery ?? 10_000,
      trailingEntries: opts.trailingEntries ?? 1_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 5_000,
    };
    this.auth = opts.auth ?? null;
    this.store = store;
    this.joinPending = opts.join === true;
    this.cache = cacheFrom(loaded);
    const snap = this.cache.snapshot();
    this.sm = KvStateMachine.fromSnapshot(snap.data, snap.meta.index);
    this.sizeAtSnapshot = this.sm.recordCount;
    for (const [id, url] of Object.entries(opts.peers)) this.peerUrls.set(id, url);
    this.learnPeersFromStore();
    this.transport = new PeerTransport({
      timeoutMs: Math.max(200, this.opts.tickMs * this.opts.electionTicks),
      onUnreachable: (peer) => this.raw.reportUnreachable(peer),
      auth: this.auth ?? undefined,
    });
    this.updateTransportPeers();
    this.raw = new RawNode({
      id: opts.id,
      storage: this.cache,
      electionTick: this.opts.electionTicks,
      heartbeatTick: this.opts.heartbeatTicks,
      applied: snap.meta.index,
      randomInt: (n) => randomInt(n),
      // A leader's snapshot this node could not apply must be refused at the door: installed, its
      // undecodable data would stop the node when applied.
      checkSnapshot: (s) => {
        try {
          KvStateMachine.fromSnapshot(s.data, s.meta.index);
          return null;
        } catch (err) {
          return (err as Error).message;
        }
      },
    });
  }

  /** Opens (or bootstraps) the node's store and attaches its transport route to `app`. */
  static async start(opts: RaftNodeOptions, app: FastifyInstance): Promise<RaftNode> {
    const store = await LevelRaftStore.open(opts.dataDir);
    let loaded: LoadedRaftState;
    try {
      loaded = await store.load();
      if (loaded.meta && loaded.meta.id !== opts.id) {
        throw new RaftError('ERR_CORRUPT_STORE', `data directory ${opts.dataDir} belongs to member ${JSON.stringify(loaded.meta.id)}, not ${JSON.stringify(opts.id)}`);
      }
      const fresh = loaded.snapshot === null && loaded.entries.length === 0 && loaded.hardState.term === 0;
      if (fresh && !opts.join) {
        const voters = Object.keys(opts.peers).sort();
        if (!voters.includes(opts.id)) throw new RaftError('ERR_INVARIANT', `member ${opts.id} is not among the founding peers ${voters.join(', ')}`);
        const snapshot = bootstrapSnapshot(voters);
        const hardState = { term: 0, vote: null, commit: snapshot.meta.index };
        await store.save({ entries: [], hardState, snapshot }, true);
        loaded = { ...loaded, snapshot, hardState };
        opts.logger.info({ voters }, 'bootstrapped a new raft cluster');
      }
      if (!loaded.meta) await store.saveMeta({ id: opts.id });
    } catch (err) {
      await store.close();
      throw err;
    }
    const node = new RaftNode(opts, store, loaded);
    // First, so that every route on the Raft port (these and those added later) sits behind it.
    if (node.auth?.enabled) installRaftAuth(app, node.auth, { isRemoved: (id, incarnation, path) => node.refusesIncarnation(id, incarnation, path), logger: opts.logger });
    node.server = registerRaftServer(app, {
      localId: opts.id,
      handler: (msgs) => node.receive(msgs),
      auth: node.auth?.enabled ? node.auth : undefined,
    });
    registerForwardingServer(app, node);
    registerMembershipServer(app, node);
    node.ticker = setInterval(() => node.onTick(), node.opts.tickMs);
    node.drive();
    return node;
  }

  // ---- the Ready loop -------------------------------------------------------------------------

  private onTick(): void {
    if (this.stopped) return;
    this.guard(() => this.raw.tick());
    if (!this.isLeader()) {
      this.checkRemoval();
      return;
    }
    this.revokeExpiredLeases();
    if (++this.ticksSincePromotionCheck >= this.opts.heartbeatTicks) {
      this.ticksSincePromotionCheck = 0;
      this.promoteCaughtUpLearners();
    }
  }

  /** Proposes a conditional revoke for each lease whose countdown ran out on this leader's clock. */
  private revokeExpiredLeases(): void {
    for (const { lease, renewals } of this.leaseCountdown.expired()) {
      this.log.info({ lease, renewals }, 'lease expired on the leader clock; revoking');
      this.propose({ type: 'leaseRevoke', lease, renewals }).then(
        (r) => {
          if (r.type === 'leaseRevoke' && r.revoked) return;
          // Refused: renewed in between (its apply restarted the countdown) or already gone.
          if (!this.sm.lease(lease)) this.leaseCountdown.gone(lease);
          else this.leaseCountdown.revokeFailed(lease);
        },
        () => this.leaseCountdown.revokeFailed(lease),
      );
    }
  }

  private receive(msgs: Message[]): void {
    if (this.stopped) throw new RaftError('ERR_STOPPED', `${this.id} is stopping`);
    if (tracing) trace(`${this.id} recv ${msgs.map((m) => `${m.type}<${m.from}`).join(',')}`);
    this.guard(() => {
      for (const m of msgs) this.raw.step(m);
    });
  }

  /** Runs core code; a broken invariant stops the node rather than let it run on corrupt. */
  private guard(fn: () => void): void {
    if (this.fatal) return;
    try {
      fn();
    } catch (err) {
      this.die(err);
      return;
    }
    this.noticeRole();
    this.drive();
  }

  private die(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.fatal = error;
    this.log.fatal({ err: error }, 'raft node stopped on an unrecoverable error');
    this.emit('fatal', error);
    void this.stop();
  }

  private noticeRole(): void {
    const st = this.raw.raft;
    const role = `${st.role}:${st.term}:${st.lead}`;
    if (role === this.lastRole) return;
    this.lastRole = role;
    this.log.info({ role: st.role, term: st.term, leader: st.lead }, 'raft role');
    this.emit('role', { role: st.role, term: st.term, leader: st.lead });
    if (st.role !== 'leader') this.failQueuedOnNotLeader();
    const isLeader = st.role === 'leader';
    if (isLeader && !this.wasLeader) this.leaseCountdown.restartAll(this.sm.leases()); // the lease rule: a new leader restarts every countdown
    if (!isLeader && this.wasLeader) this.leaseCountdown.clear();
    this.wasLeader = isLeader;
  }

  /**
   * Takes Readies while there are any, up to PIPELINE_DEPTH with writes outstanding: a leader
   * keeps sending appends while its disk is busy, and the disk never idles between batches.
   * Writes complete, and Readies are advanced, in the order they were taken (the store runs its
   * operations one after another, and `writes` chains the completions).
   */
  private drive(): void {
    // A listener of 'changes' (called while applying) may act on this node at once; a nested
    // drive would take a newer Ready and start its write before this one's.
    if (this.driving) return;
    this.driving = true;
    try {
      this.driveReadies();
    } finally {
      this.driving = false;
    }
  }

  private driveReadies(): void {
    while (!this.stopped && !this.fatal && this.outstanding < PIPELINE_DEPTH && this.raw.hasReady()) {
      const rd = this.raw.ready();
      if (tracing) trace(`${this.id} ready e=${rd.entries.length} c=${rd.committedEntries.length} now=${rd.messagesNow.map((m) => m.type).join(',')} later=${rd.messages.map((m) => m.type).join(',')}`);
      // The disk write first (the store starts it at once when idle), then the leader's appends.
      // A commit waits for the second of three durable copies, and at one write at a time the
      // leader's own was that second copy about half the time (CONCLAVE_TRACE); sending first
      // started it later by the time the sends took, about 0.1 ms.
      const needsWrite = rd.entries.length > 0 || rd.hardState !== null || rd.snapshot !== null;
      const write = needsWrite ? this.store.save({ entries: rd.entries, hardState: rd.hardState, snapshot: rd.snapshot }, rd.mustSync || rd.snapshot !== null) : null;
      this.outstanding++;
      this.writes = this.writes
        .then(() => write)
        .then(
          () => this.afterWrite(rd),
          (err) => this.die(new RaftError('ERR_CORRUPT_STORE', `writing the raft log failed: ${(err as Error).message}`, { cause: err })),
        );
      this.transport.send(rd.messagesNow);
      this.transport.flush();
      try {
        // Committed entries (and a leader's snapshot) are durable on a quorum already, so they
        // are applied while this node's own write runs rather than after it: otherwise, under
        // load, every answer would wait for the next batch's fsync as well as its own.
        if (rd.snapshot) this.installSnapshot(rd.snapshot);
        this.applyEntries(rd.committedEntries);
        for (const rs of rd.readStates) {
          const reads = this.readsByContext.get(rs.context);
          if (!reads) continue;
          this.readsByContext.delete(rs.context);
          this.readWaiters.push({ index: rs.index, reads });
        }
        this.serveReads();
      } catch (err) {
        this.die(err);
        return;
      }
    }
  }

  private afterWrite(rd: Ready): void {
    if (this.stopped || this.fatal) return;
    if (tracing) trace(`${this.id} written`);
    this.outstanding--;
    try {
      if (rd.snapshot) this.cache.applySnapshot(rd.snapshot);
      this.cache.append(rd.entries);
      if (rd.hardState) this.cache.setHardState(rd.hardState);
      // Durable now: what depended on this write may leave.
      this.transport.send(rd.messages);
      this.transport.flush();
      this.raw.advance(rd);
    } catch (err) {
      this.die(err);
      return;
    }
    this.maybeSnapshot();
    this.noticeRole();
    this.drive();
  }

  private installSnapshot(snap: Snapshot): void {
    this.sm = KvStateMachine.fromSnapshot(snap.data, snap.meta.index);
    this.sizeAtSnapshot = this.sm.recordCount;
    this.learnPeersFromStore();
    this.updateTransportPeers();
    this.log.info({ index: snap.meta.index, term: snap.meta.term }, 'installed snapshot from the leader');
    this.emit('snapshot', snap.meta.index);
  }

  private applyEntries(entries: Entry[]): void {
    for (const e of entries) {
      let result: KvResult | null = null;
      let changes: KeyChange[] = [];
      if (e.type === 'conf') {
        const cc = decodeConfChange(e.data);
        this.raw.applyConfChange(cc);
        this.sm.markApplied(e.index);
        this.log.info({ change: cc, index: e.index, conf: this.raw.raft.confState() }, 'membership changed');
        this.updateTransportPeers();
      } else {
        const applied = this.sm.apply(e.index, e.data);
        result = applied.result;
        changes = applied.changes;
        if (result && this.raw.raft.role === 'leader') this.noteLease(result);
      }
      const p = this.proposals.get(e.index);
      if (p) {
        this.proposals.delete(e.index);
        clearTimeout(p.timer);
        if (p.term !== e.term) p.reject(new RaftError('ERR_PROPOSAL_DROPPED', `entry ${e.index} was replaced by term ${e.term}'s: the proposal did not commit`));
        else p.resolve({ result: result ?? { type: 'error', error: 'ERR_BAD_MESSAGE', message: 'conf change' }, index: e.index });
      }
      if (changes.length > 0) {
        if (changes.some((c) => c.key.startsWith(PEER_KEY_PREFIX))) {
          this.learnPeersFromStore();
          this.updateTransportPeers();
        }
        this.emit('changes', changes, e.index);
      }
    }
  }

  /** Renewals applied on the leader restart their countdown; revokes end it. */
  private noteLease(result: KvResult): void {
    if (result.type === 'leaseGrant' || (result.type === 'leaseKeepAlive' && result.found)) {
      this.leaseCountdown.renewed({ lease: result.lease, ttlMs: result.ttlMs, renewals: result.renewals });
    } else if (result.type === 'leaseRevoke' && result.revoked) {
      this.leaseCountdown.gone(result.lease);
    }
  }

  /**
   * Snapshots the state machine every `snapshotEvery` entries, or every as many entries as the
   * state held records at the last snapshot if that is more, and compacts the log behind it. A
   * snapshot is made on the main thread of every member and costs in proportion to the state:
   * about 145 ms for 150,000 keys here. At a fixed 10,000 entries, a large store under load
   * stalled every member for that long every few seconds; paced by the state's size, the cost per
   * entry stays constant and the log never holds more entries than the state has records (plus
   * `snapshotEvery`). etcd's default is one snapshot per 100,000 entries.
   */
  private maybeSnapshot(): void {
    const applied = this.sm.appliedIndex;
    const interval = Math.max(this.opts.snapshotEvery, this.sizeAtSnapshot);
    if (this.snapshotting || applied - this.cache.snapshot().meta.index < interval) return;
    // Entries applied early may still be on their way to disk: snapshot once they are there.
    if (applied > this.cache.lastIndex()) return;
    this.snapshotting = true;
    const snapshot: Snapshot = { meta: { index: applied, term: this.cache.term(applied), conf: this.raw.raft.confState() }, data: this.sm.snapshot() };
    this.sizeAtSnapshot = this.sm.recordCount;
    const compactTo = applied - this.opts.trailingEntries;
    void (async () => {
      await this.store.saveSnapshot(snapshot);
      this.cache.createSnapshot(applied, snapshot.meta.conf, snapshot.data);
      if (compactTo > this.cache.firstIndex()) {
        await this.store.compact(compactTo);
        this.cache.compact(compactTo);
      }
      this.log.debug({ index: applied, firstIndex: this.cache.firstIndex() }, 'snapshot taken, log compacted');
    })().then(
      () => {
        this.snapshotting = false;
      },
      (err) => this.die(err),
    );
  }

  // ---- peers ----------------------------------------------------------------------------------

  private learnPeersFromStore(): void {
    for (const kv of this.sm.range(PEER_KEY_PREFIX)) this.peerUrls.set(kv.key.slice(PEER_KEY_PREFIX.length), kv.value);
  }

  private updateTransportPeers(): void {
    const peers: Record<NodeId, string> = {};
    for (const [id, url] of this.peerUrls) if (id !== this.id) peers[id] = url;
    this.transport.setPeers(peers);
  }

  // ---- proposals and reads ----------------------------------------------------------------------

  /** Replicates one key-value operation; resolves once it is applied here. */
  async propose(op: KvOp, session?: { clientId: string; seq: number }): Promise<KvResult> {
    return (await this.proposeIndexed(op, session)).result;
  }

  /** As propose, and also tells the index the operation applied at. */
  proposeIndexed(op: KvOp, session?: { clientId: string; seq: number }): Promise<Applied> {
    return new Promise((resolve, reject) => {
      if (this.fatal || this.stopped) return reject(new RaftError('ERR_STOPPED', `${this.id} is stopped`));
      if (this.raw.raft.role !== 'leader') return reject(this.notLeader());
      const data = encodeCommand({ clientId: session?.clientId ?? this.clientId, seq: session?.seq ?? ++this.seq, op });
      const timer = setTimeout(() => this.expireProposal(timer), this.opts.requestTimeoutMs);
      this.queuedProposals.push({ data, p: { resolve, reject, timer } });
      this.scheduleFlush();
    });
  }

  /**
   * Resolves once this node has applied `index` (an index some other member reported applied,
   * so it is committed and will reach this node unless the node stops or falls away).
   */
  waitApplied(index: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.fatal || this.stopped) return reject(new RaftError('ERR_STOPPED', `${this.id} is stopped`));
      if (this.sm.appliedIndex >= index) return resolve();
      const timer = setTimeout(() => this.expireRead(timer), this.opts.requestTimeoutMs);
      this.readWaiters.push({ index, reads: [{ resolve, reject, timer }] });
    });
  }

  /** Resolves when this node has applied everything committed before the call (ReadIndex). */
  readBarrier(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.fatal || this.stopped) return reject(new RaftError('ERR_STOPPED', `${this.id} is stopped`));
      const timer = setTimeout(() => this.expireRead(timer), this.opts.requestTimeoutMs);
      this.queuedReads.push({ resolve, reject, timer });
      this.scheduleFlush();
    });
  }

  /** The state machine, for reads after readBarrier(). */
  get state(): KvStateMachine {
    return this.sm;
  }

  /**
   * Proposals and reads made in the same synchronous stretch share one append and one read round.
   * A microtask, not setImmediate: waiting for the next loop turn cost a c=1 write ~2 ms. Batching
   * across requests happens anyway, because entries proposed during a disk write all go into the
   * next one.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (tracing) trace(`${this.id} flush p=${this.queuedProposals.length}`);
    const props = this.queuedProposals;
    this.queuedProposals = [];
    if (props.length > 0) {
      try {
        const at = this.raw.propose(props.map((q) => q.data));
        props.forEach((q, i) => this.proposals.set(at.firstIndex + i, { ...q.p, term: at.term }));
      } catch (err) {
        for (const q of props) {
          clearTimeout(q.p.timer);
          q.p.reject(err instanceof RaftError && err.code === 'ERR_NOT_LEADER' ? this.notLeader() : (err as Error));
        }
      }
    }
    const reads = this.queuedReads;
    this.queuedReads = [];
    if (reads.length > 0) {
      const ctx = `${this.id}/${++this.readCounter}`;
      try {
        this.raw.readIndex(ctx);
        this.readsByContext.set(ctx, reads);
      } catch (err) {
        for (const r of reads) {
          clearTimeout(r.timer);
          r.reject(err instanceof RaftError && err.code === 'ERR_NOT_LEADER' ? this.notLeader() : (err as Error));
        }
      }
    }
    this.noticeRole();
    this.drive();
  }

  private serveReads(): void {
    const applied = this.sm.appliedIndex;
    const ready = this.readWaiters.filter((w) => w.index <= applied);
    if (ready.length === 0) return;
    this.readWaiters = this.readWaiters.filter((w) => w.index > applied);
    for (const w of ready) {
      for (const r of w.reads) {
        clearTimeout(r.timer);
        r.resolve();
      }
    }
  }

  private expireProposal(timer: NodeJS.Timeout): void {
    const err = new RaftError('ERR_TIMEOUT', `no outcome within ${this.opts.requestTimeoutMs} ms; the write may or may not have been applied`);
    for (const [index, p] of this.proposals) {
      if (p.timer === timer) {
        this.proposals.delete(index);
        p.reject(err);
        return;
      }
    }
    const q = this.queuedProposals.findIndex((x) => x.p.timer === timer);
    if (q >= 0) this.queuedProposals.splice(q, 1)[0].p.reject(err);
  }

  private expireRead(timer: NodeJS.Timeout): void {
    const err = new RaftError('ERR_TIMEOUT', `read not confirmed within ${this.opts.requestTimeoutMs} ms`);
    const drop = (reads: PendingRead[]): PendingRead[] => {
      const hit = reads.find((r) => r.timer === timer);
      if (hit) hit.reject(err);
      return reads.filter((r) => r.timer !== timer);
    };
    this.queuedReads = drop(this.queuedReads);
    for (const [ctx, reads] of this.readsByContext) this.readsByContext.set(ctx, drop(reads));
    for (const w of this.readWaiters) w.reads = drop(w.reads);
  }

  /** Reads waiting for a leader's answer cannot get one from a node that lost its leader. */
  private failQueuedOnNotLeader(): void {
    if (this.raw.raft.lead !== null) return;
    for (const [ctx, reads] of this.readsByContext) {
      this.readsByContext.delete(ctx);
      for (const r of reads) {
        clearTimeout(r.timer);
        r.reject(this.notLeader());
      }
    }
  }

  private notLeader(): RaftError {
    const leader = this.raw.raft.lead;
    return new RaftError('ERR_NOT_LEADER', `${this.id} is not the raft leader${leader ? `; ${leader} is` : ''}`, { leaderHint: leader });
  }

  leaderUrl(): string | null {
    const leader = this.raw.raft.lead;
    return leader ? this.peerUrls.get(leader) ?? null : null;
  }

  // ---- membership and leadership ----------------------------------------------------------------

  /** Proposes one membership change (leader only) and resolves once it is applied here. */
  changeMembership(cc: ConfChange): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.fatal || this.stopped) return reject(new RaftError('ERR_STOPPED', `${this.id} is stopped`));
      if (this.raw.raft.role !== 'leader') return reject(this.notLeader());
      let at: { firstIndex: number; term: number };
      try {
        at = this.raw.proposeConfChange(cc);
      } catch (err) {
        return reject(err as Error);
      }
      const timer = setTimeout(() => {
        this.proposals.delete(at.firstIndex);
        reject(new RaftError('ERR_TIMEOUT', `membership change ${cc.type} ${cc.node} not applied within ${this.opts.requestTimeoutMs} ms; it may still apply`));
      }, this.opts.requestTimeoutMs);
      this.proposals.set(at.firstIndex, { term: at.term, resolve: () => resolve(), reject, timer });
      this.drive();
    });
  }

  /**
   * A new member asks to join (leader only): recorded with its address, added as a learner, and
   * promoted to voter by the leader once it has caught up (promoteCaughtUpLearners). Asking again
   * is harmless. A member removed earlier may join again: its removal mark is lifted first.
   */
  async admit(id: NodeId, url: string): Promise<ConfState> {
    if (this.raw.raft.role !== 'leader') throw this.notLeader();
    const conf = this.raw.raft.confState();
    if (conf.voters.includes(id) || conf.learners.includes(id)) return conf;
    if (this.sm.get(REMOVED_KEY_PREFIX + id)) await this.propose({ type: 'delete', key: REMOVED_KEY_PREFIX + id });
    await this.propose({ type: 'put', key: PEER_KEY_PREFIX + id, value: url });
    await this.changeMembership({ type: 'addLearner', node: id });
    this.log.info({ member: id, url }, 'admitted a new member as a learner');
    return this.raw.raft.confState();
  }

  /**
   * Removes a member (leader only). It is marked removed first, so that the leader refuses its
   * forwarded writes from then on (a removed agent still running learns it from that refusal),
   * then taken out of the configuration. The leader does not remove itself: it hands leadership
   * to another voter and answers ERR_NOT_LEADER, and the caller asks the new leader.
   */
  async removeMember(id: NodeId): Promise<ConfState> {
    if (this.raw.raft.role !== 'leader') throw this.notLeader();
    const conf = this.raw.raft.confState();
    if (id === this.id) {
      const successor = this.bestSuccessor();
      if (!successor) throw new RaftError('ERR_PROPOSAL_DROPPED', `${id} is the only voter; a cluster cannot remove its last voter`);
      this.transferLeadership(successor);
      throw new RaftError('ERR_NOT_LEADER', `${id} leads the raft group: handing leadership to ${successor} before it can be removed; ask again`, { leaderHint: successor });
    }
    if (!conf.voters.includes(id) && !conf.learners.includes(id)) return conf;
    const removal: RemovalRecord = { at: Date.now(), incarnation: this.incarnations.get(id) ?? null };
    await this.propose({ type: 'put', key: REMOVED_KEY_PREFIX + id, value: JSON.stringify(removal) });
    await this.changeMembership({ type: 'remove', node: id });
    await this.propose({ type: 'delete', key: PEER_KEY_PREFIX + id });
    this.log.info({ member: id }, 'removed a member');
    return this.raw.raft.confState();
  }

  /**
   * The Raft port's gate asks this for every signed request: refused are the removed member's
   * incarnation, or, when its removal did not learn which incarnation it was, everything from that
   * id but asking to join again (what an emptied data directory does, with a new incarnation).
   */
  refusesIncarnation(id: NodeId, incarnation: string, path: string): boolean {
    this.incarnations.set(id, incarnation);
    const record = this.sm.get(REMOVED_KEY_PREFIX + id);
    if (record === null) return false;
    const removed = parseRemoval(record.value);
    if (removed.incarnation !== null) return removed.incarnation === incarnation;
    return !(path === RAFT_JOIN_PATH || path === '/v1/status');
  }

  /** Whether `id` was removed from the cluster (and has not joined again since). */
  isRemoved(id: NodeId): boolean {
    return this.sm.get(REMOVED_KEY_PREFIX + id) !== null;
  }

  /** The other voter with the most of the log: the one a leadership transfer completes soonest. */
  private bestSuccessor(): NodeId | null {
    const progress = this.raw.status().progress;
    let best: NodeId | null = null;
    for (const id of this.raw.raft.voters()) {
      if (id === this.id) continue;
      if (best === null || (progress[id]?.match ?? 0) > (progress[best]?.match ?? 0)) best = id;
    }
    return best;
  }

  /**
   * A member that knows no leader for a while asks its peers whether it was removed: once out of
   * the configuration nobody sends it anything, so the log cannot tell it. Emits 'removed' once.
   */
  private checkRemoval(): void {
    if (this.raw.raft.lead !== null) {
      this.ticksWithoutLeader = 0;
      return;
    }
    // A member that asked to join may carry an old removal mark of its id until it is admitted.
    if (this.joinPending) this.joinPending = !this.raw.raft.voters().includes(this.id) && !this.raw.raft.learners().includes(this.id);
    if (this.joinPending || ++this.ticksWithoutLeader < 4 * this.opts.electionTicks || this.removalCheckRunning || this.removedNoticed) return;
    this.ticksWithoutLeader = 0;
    this.removalCheckRunning = true;
    const peers = [...this.peerUrls].filter(([id]) => id !== this.id).map(([, url]) => url);
    askedWhetherRemoved(this.auth, peers, this.id, REMOVED_KEY_PREFIX).then(
      (removed) => {
        this.removalCheckRunning = false;
        if (removed) this.noticeRemoved('a peer says this member was removed');
      },
      () => {
        this.removalCheckRunning = false;
      },
    );
  }

  /** This member was removed from the cluster (told by a peer or by the leader's refusal). */
  noticeRemoved(how: string): void {
    if (this.removedNoticed || this.stopped) return;
    this.removedNoticed = true;
    this.log.error({ how }, 'this member was removed from the cluster');
    this.emit('removed', new RaftError('ERR_REMOVED', `${this.id} was removed from the cluster: ${how}`));
  }

  /** Leader: a learner that has everything committed becomes a voter (one change at a time). */
  private promoteCaughtUpLearners(): void {
    if (this.promoting || this.raw.raft.role !== 'leader') return;
    const progress = this.raw.status().progress;
    const committed = this.raw.raft.log.committed;
    const ready = this.raw.raft.learners().find((id) => (progress[id]?.match ?? 0) >= committed);
    if (!ready) return;
    this.promoting = true;
    this.changeMembership({ type: 'promote', node: ready }).then(
      () => this.log.info({ member: ready }, 'a caught-up learner became a voter'),
      (err: Error) => this.log.debug({ member: ready, err: err.message }, 'promoting a learner failed; will retry'),
    ).finally(() => {
      this.promoting = false;
    });
  }

  transferLeadership(target: NodeId): void {
    this.guard(() => this.raw.transferLeadership(target));
  }

  status(): Status & { transport: unknown; rejected: number; refusedMessages: number; lastRefusedMessage: string | null } {
    const peers: Record<string, unknown> = {};
    for (const [id, st] of this.transport.stats()) peers[id] = st;
    // rejected: bodies the transport could not decode; refusedMessages: decoded messages the Raft
    // rules found impossible (core/message-check.ts) and dropped.
    return { ...this.raw.status(), transport: peers, rejected: this.server?.stats.rejected ?? 0, refusedMessages: this.raw.raft.refusedMessages, lastRefusedMessage: this.raw.raft.lastRefusal };
  }

  isLeader(): boolean {
    return this.raw.raft.role === 'leader';
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    const err = new RaftError('ERR_STOPPED', `${this.id} stopped`);
    for (const p of this.proposals.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    for (const q of this.queuedProposals) {
      clearTimeout(q.p.timer);
      q.p.reject(err);
    }
    for (const r of [...this.queuedReads, ...[...this.readsByContext.values()].flat(), ...this.readWaiters.flatMap((w) => w.reads)]) {
      clearTimeout(r.timer);
      r.reject(err);
    }
    await this.transport.close();
    await this.store.close();
  }
}

function cacheFrom(loaded: LoadedRaftState): MemoryStorage {
  const cache = new MemoryStorage();
  if (loaded.snapshot) cache.applySnapshot(loaded.snapshot);
  cache.append(loaded.entries);
  cache.setHardState(loaded.hardState);
  return cache;
}
