// The Raft rules, as a pure state machine (Raft paper, Ongaro's thesis, etcd raft's raft.go).
// Time arrives as tick(), the network as step(msg); everything this node wants done is queued
// in `msgs` / `readStates` and the log's unstable tail, which RawNode turns into a Ready.
import type { ConfChange, ConfState, Entry, Message, MsgApp, MsgAppResp, MsgHeartbeat, MsgSnap, MsgVote, NodeId, ReadState, Role, Snapshot } from './types.ts';
import type { LogStorage } from './storage.ts';
import { RaftLog } from './log.ts';
import { Progress } from './progress.ts';
import { ReadOnly } from './read-only.ts';
import { RaftError, invariant } from './errors.ts';
import { implausibility } from './message-check.ts';

export interface RaftConfig {
  id: NodeId;
  storage: LogStorage;
  /** Ticks without hearing from a leader before campaigning; randomized in [e, 2e). */
  electionTick: number;
  heartbeatTick: number;
  /** Index the application has already applied (its state was restored up to here). */
  applied?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
  /** Proposals are refused while the uncommitted tail holds more than this many bytes. */
  maxUncommittedSize?: number;
  maxApplyBytes?: number;
  /** Injected randomness: an integer in [0, n). Keeps the core deterministic under a seeded PRNG. */
  randomInt: (n: number) => number;
  /**
   * Why a leader's snapshot cannot be installed (its data does not decode as the application's
   * state), or null. The core cannot judge the data itself; without this a bad snapshot is accepted
   * and the application fails when it installs it.
   */
  checkSnapshot?: (snap: Snapshot) => string | null;
}

type Campaign = 'preElection' | 'election' | 'transfer';

const EMPTY = new Uint8Array(0);

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId | null = null;
  lead: NodeId | null = null;
  role: Role = 'follower';
  readonly log: RaftLog;

  /** Outgoing messages; RawNode splits them into those safe to send before persisting and after. */
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  prs = new Map<NodeId, Progress>();
  /** sortedVoters(), kept until the configuration changes (applyConfState). */
  private voterCache: readonly NodeId[] | null = null;
  private votes = new Map<NodeId, boolean>();
  private readOnly = new ReadOnly();
  /** Reads asked before this leader committed an entry of its term wait here (raft.md §5.9). */
  private pendingReadIndex: { context: string; from: NodeId }[] = [];

  /** Messages step() dropped as impossible (message-check.ts), and the last reason, for status and tests. */
  refusedMessages = 0;
  lastRefusal: string | null = null;

  electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** Ticks since this node started; the leader stamps each peer's last answer with it. */
  private ticks = 0;
  private randomizedElectionTimeout = 0;
  readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;

  leadTransferee: NodeId | null = null;
  /** The leader's commit index moved and no append has carried it to the followers yet. */
  private commitToSend = false;
  /** No conf change may be proposed until the log is applied past this index. */
  private pendingConfIndex = 0;
  private uncommittedSize = 0;

  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxSizePerMsg: number;
  private readonly maxInflight: number;
  private readonly maxUncommittedSize: number;
  private readonly randomInt: (n: number) => number;
  private readonly checkSnapshot: ((snap: Snapshot) => string | null) | null;

  constructor(cfg: RaftConfig) {
    invariant(cfg.heartbeatTick > 0 && cfg.electionTick > cfg.heartbeatTick, 'electionTick must exceed heartbeatTick > 0');
    this.id = cfg.id;
    this.electionTimeout = cfg.electionTick;
    this.heartbeatTimeout = cfg.heartbeatTick;
    this.preVote = cfg.preVote ?? true;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.maxSizePerMsg = cfg.maxSizePerMsg ?? 1 << 20;
    this.maxInflight = cfg.maxInflightMsgs ?? 256;
    this.maxUncommittedSize = cfg.maxUncommittedSize ?? 64 << 20;
    this.randomInt = cfg.randomInt;
    this.checkSnapshot = cfg.checkSnapshot ?? null;
    this.log = new RaftLog(cfg.storage, cfg.maxApplyBytes ?? 4 << 20);

    const { hardState, conf } = cfg.storage.initialState();
    this.applyConfState(conf);
    if (hardState.term > 0 || hardState.commit > 0) {
      invariant(hardState.commit <= this.log.lastIndex(), `stored commit ${hardState.commit} beyond last index ${this.log.lastIndex()}`);
      this.term = hardState.term;
      this.vote = hardState.vote;
      this.log.commitTo(hardState.commit);
    }
    if (cfg.applied) this.log.appliedTo(cfg.applied);
    this.becomeFollower(this.term, null);
  }

  // ---- membership -------------------------------------------------------------------------

  isVoter(id: NodeId): boolean {
    const pr = this.prs.get(id);
    return pr !== undefined && !pr.isLearner;
  }

  voters(): NodeId[] {
    return [...this.sortedVoters()];
  }

  /**
   * The voters, sorted, computed once per configuration: the leader counts them on every append
   * answer (maybeCommit), and filtering and sorting the progress map each time was a measurable
   * part of its CPU. Shared: callers must not change it.
   */
  private sortedVoters(): readonly NodeId[] {
    return (this.voterCache ??= [...this.prs].filter(([, pr]) => !pr.isLearner).map(([id]) => id).sort());
  }

  learners(): NodeId[] {
    return [...this.prs].filter(([, pr]) => pr.isLearner).map(([id]) => id).sort();
  }

  confState(): ConfState {
    return { voters: this.voters(), learners: this.learners() };
  }

  /** Only voters campaign; a learner or a removed node never starts an election. */
  promotable(): boolean {
    return this.isVoter(this.id);
  }

  private quorum(): number {
    return Math.floor(this.sortedVoters().length / 2) + 1;
  }

  private applyConfState(conf: ConfState): void {
    const next = new Map<NodeId, Progress>();
    const last = this.log.lastIndex();
    const fresh = (learner: boolean): Progress => {
      const pr = new Progress(last + 1, this.maxInflight, learner);
      pr.lastHeardTick = this.ticks; // a new member gets one election timeout to answer
      return pr;
    };
    for (const id of conf.voters) next.set(id, this.prs.get(id) ?? fresh(false));
    for (const id of conf.learners) next.set(id, this.prs.get(id) ?? fresh(true));
    for (const id of conf.voters) next.get(id)!.isLearner = false;
    for (const id of conf.learners) next.get(id)!.isLearner = true;
    this.prs = next;
    this.voterCache = null;
  }

  /** Called when a conf-change entry is applied: membership changes take effect on apply. */
  applyConfChange(cc: ConfChange): ConfState {
    const voters = new Set(this.voters());
    const learners = new Set(this.learners());
    switch (cc.type) {
      case 'addLearner':
        if (!voters.has(cc.node)) learners.add(cc.node);
        break;
      case 'promote':
        if (learners.has(cc.node)) {
          learners.delete(cc.node);
          voters.add(cc.node);
        }
        break;
      case 'remove':
        voters.delete(cc.node);
        learners.delete(cc.node);
        break;
    }
    if (voters.size === 0) return this.confState(); // never leave a cluster with no voters
    this.applyConfState({ voters: [...voters], learners: [...learners] });

    if (this.role === 'leader') {
      if (!this.isVoter(this.id)) {
        // A removed (or demoted) leader steps down (etcd StepDownOnRemoval).
        this.becomeFollower(this.term, null);
      } else {
        if (this.leadTransferee !== null && !this.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
        // The quorum changed: entries may now be committed, and new members need their log.
        if (this.maybeCommit()) this.bcastAppend();
        else for (const id of this.prs.keys()) if (id !== this.id) this.maybeSendAppend(id, false);
      }
    }
    return this.confState();
  }

  // ---- role transitions -----------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + this.randomInt(this.electionTimeout);
    this.abortLeaderTransfer();
    this.votes.clear();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.prs) {
      const fresh = new Progress(last + 1, this.maxInflight, pr.isLearner);
      fresh.lastHeardTick = this.ticks; // a new leader gives every peer one election timeout
      if (id === this.id) fresh.match = this.log.stableLastIndex();
      this.prs.set(id, fresh);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.commitToSend = false;
    this.readOnly.reset();
    this.pendingReadIndex = [];
  }

  becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    invariant(this.role !== 'leader', 'leader cannot become pre-candidate');
    // A pre-candidate changes neither term nor vote (thesis §9.6): losing costs the cluster nothing.
    this.votes.clear();
    this.lead = null;
    this.role = 'preCandidate';
  }

  private becomeCandidate(): void {
    invariant(this.role !== 'leader', 'leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    invariant(this.role === 'candidate', 'only a candidate becomes leader');
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const self = this.prs.get(this.id)!;
    self.becomeReplicate();
    // A no-op entry of the new term lets the leader commit (Figure-8 rule) and serve ReadIndex.
    this.appendEntries([EMPTY], 'normal');
    // No conf change until everything up to and including the no-op is applied (raft.md §5.5).
    this.pendingConfIndex = this.log.lastIndex();
  }

  // ---- time -----------------------------------------------------------------------------

  tick(): void {
    this.ticks++;
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign(this.preVote ? 'preElection' : 'election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    // CheckQuorum, checked every tick: a leader that has not heard from a quorum within one
    // election timeout steps down, so it never outlives the time in which followers start an
    // election (etcd checks only at each election timeout, which can take up to two).
    if (this.checkQuorum && !this.quorumActive()) {
      this.becomeFollower(this.term, null);
      return;
    }
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      // A transfer that did not finish within an election timeout is abandoned.
      this.abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
    // A commit that no append has carried yet goes out now, at most one tick late. Sending it the
    // moment it advances (as etcd does) costs a round of empty appends per write; under load the
    // next write's append carries it anyway.
    if (this.commitToSend) this.bcastAppend();
  }

  private markActive(pr: Progress): void {
    pr.lastHeardTick = this.ticks;
  }

  private recentlyActive(pr: Progress): boolean {
    return this.ticks - pr.lastHeardTick < this.electionTimeout;
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const [id, pr] of this.prs) {
      if (pr.isLearner) continue;
      if (id === this.id || this.recentlyActive(pr)) active++;
    }
    return active >= this.quorum();
  }

  // ---- elections ------------------------------------------------------------------------

  /** Starts an election now (local request; e.g. a test or a single-node bootstrap). */
  campaignNow(): void {
    if (this.role === 'leader' || !this.promotable()) return;
    this.campaign(this.preVote ? 'preElection' : 'election');
  }

  private campaign(kind: Campaign): void {
    let term: number;
    let type: 'vote' | 'preVote';
    if (kind === 'preElection') {
      this.becomePreCandidate();
      type = 'preVote';
      term = this.term + 1; // the term we would run in, without adopting it
    } else {
      this.becomeCandidate();
      type = 'vote';
      term = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      // Single voter: the election is won by our own vote.
      if (kind === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const logTerm = this.log.lastTerm();
    const index = this.log.lastIndex();
    for (const id of this.voters()) {
      if (id === this.id) continue;
      this.send({ type, from: this.id, to: id, term, logTerm, index, transfer: kind === 'transfer' });
    }
  }

  private poll(id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    let yes = 0;
    let no = 0;
    for (const voter of this.voters()) {
      const v = this.votes.get(voter);
      if (v === true) yes++;
      else if (v === false) no++;
    }
    const q = this.quorum();
    if (yes >= q) return 'won';
    if (no > this.voters().length - q) return 'lost';
    return 'pending';
  }

  // ---- messages -------------------------------------------------------------------------

  private send(m: Message): void {
    this.msgs.push(m);
  }

  step(m: Message): void {
    const refusal = this.refusal(m);
    if (refusal !== null) {
      // Dropped, not thrown: the driver stops the node on any exception from the core, and a
      // peer's impossible message must not stop this one (message-check.ts).
      this.refusedMessages++;
      this.lastRefusal = refusal;
      return;
    }
    if (!this.stepTerm(m)) return;

    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
    }
  }

  /** Why `m` is impossible here, or null. Beyond message-check.ts: what only this node's state can tell. */
  private refusal(m: Message): string | null {
    const why = implausibility(m);
    if (why !== null) return why;
    if (m.to !== this.id) return `addressed to ${m.to}, this is ${this.id}`;
    if (m.from === this.id) return `claims to come from this node (${this.id})`;
    // A follower acknowledges only what a leader sent it, which is in the leader's log. A higher
    // index would raise its match past our log: a quorum of such answers would stall commits for good.
    if (m.type === 'appResp' && !m.reject && m.term === this.term && m.index > this.log.lastIndex()) {
      return `acknowledges index ${m.index}, beyond the last index ${this.log.lastIndex()}`;
    }
    // Only a snapshot that would be installed is worth decoding (restore() skips the others).
    if (m.type === 'snap' && this.checkSnapshot !== null && m.snapshot.meta.index > this.log.committed) {
      const why = this.checkSnapshot(m.snapshot);
      if (why !== null) return `snapshot at ${m.snapshot.meta.index} cannot be installed: ${why}`;
    }
    return null;
  }

  /** Term bookkeeping common to every role (etcd raft: Step). Returns whether to go on. */
  private stepTerm(m: Message): boolean {
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        // Leader stickiness: while we hear from a live leader, ignore disruptive campaigns,
        // unless the leader itself asked for this election by a transfer (raft.md §1.2, §5.6).
        const inLease = this.checkQuorum && this.lead !== null && this.electionElapsed < this.electionTimeout;
        if (inLease && !m.transfer) return false;
      }
      if (m.type === 'preVote') return true; // never change term because of a pre-vote
      if (m.type === 'preVoteResp' && !m.reject) return true; // a granted pre-vote carries the future term
      const fromLeader = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap';
      this.becomeFollower(m.term, fromLeader ? m.from : null);
      return true;
    }
    if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'app' || m.type === 'heartbeat')) {
        // A leader deposed while partitioned would otherwise never learn our term, and with
        // CheckQuorum/PreVote we would never raise ours to meet it. Tell it (etcd raft: Step).
        this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: 0, reject: false, hintIndex: 0, hintTerm: 0 });
      } else if (m.type === 'preVote') {
        // Refuse explicitly so the pre-candidate learns our term (no deadlock in mixed clusters).
        this.send({ type: 'preVoteResp', from: this.id, to: m.from, term: this.term, reject: true });
      }
      return false;
    }
    return true;
  }

  private handleVoteRequest(m: MsgVote): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.lead === null) ||
      (m.type === 'preVote' && m.term > this.term);
    const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // A granted pre-vote answers in the candidate's future term so it can count it.
      this.send({ type: respType, from: this.id, to: m.from, term: m.term, reject: false });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        break;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        break;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        break;
      case 'voteResp':
      case 'preVoteResp': {
        const expected = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
        if (m.type !== expected) return;
        const result = this.poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.role === 'preCandidate') this.campaign('election');
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, null);
        }
        break;
      }
      default:
        break;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        break;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        break;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        break;
      case 'timeoutNow':
        // The leader hands over to us: campaign at once, past every peer's stickiness.
        if (this.promotable()) this.campaign('transfer');
        break;
      case 'readIndexResp':
        this.readStates.push({ index: m.index, context: m.context });
        break;
      case 'transferLeader':
        if (this.lead !== null) this.send({ ...m, to: this.lead, from: this.id });
        break;
      default:
        break;
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.prs.get(m.from);
    switch (m.type) {
      case 'appResp':
        if (pr) this.handleAppendResponse(m, pr);
        break;
      case 'heartbeatResp':
        if (!pr) return;
        this.markActive(pr);
        pr.probeSent = false;
        // Appends lost in flight never free their window slots: a full window would stall this
        // follower for good. Each heartbeat answer frees one, so a new append goes out and the
        // follower's rejection of the gap sends us back to probing (etcd: FreeFirstOne).
        if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.log.lastIndex()) this.maybeSendAppend(m.from, true);
        if (m.context !== null) this.handleReadAck(m.from, m.context);
        break;
      case 'readIndex':
        if (pr) this.readIndexAsLeader(m.context, m.from);
        break;
      case 'transferLeader':
        if (pr) this.transferLeadership(m.target);
        break;
      default:
        break;
    }
  }

  // ---- replication: follower side --------------------------------------------------------

  private handleAppend(m: MsgApp): void {
    if (m.index < this.log.committed) {
      // Everything up to our commit index is already settled; tell the leader where we are.
      this.sendAppResp(m.from, this.log.committed, false);
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== null) {
      this.sendAppResp(m.from, lastNew, false);
      return;
    }
    // Mismatch: hint the leader at our last entry whose term is <= the leader's, to skip terms.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: m.index, reject: true, hintIndex: hint.index, hintTerm: hint.term });
  }

  private sendAppResp(to: NodeId, index: number, reject: boolean): void {
    this.send({ type: 'appResp', from: this.id, to, term: this.term, index, reject, hintIndex: 0, hintTerm: 0 });
  }

  private handleHeartbeat(m: MsgHeartbeat): void {
    // The leader sends min(match, commit), so this never passes our last index.
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({ type: 'heartbeatResp', from: this.id, to: m.from, term: this.term, context: m.context });
  }

  private handleSnapshot(m: MsgSnap): void {
    if (this.restore(m.snapshot)) this.sendAppResp(m.from, this.log.lastIndex(), false);
    else this.sendAppResp(m.from, this.log.committed, false);
  }

  /** Installs a leader's snapshot unless our log already holds it (raft.md §5.10). */
  private restore(snap: Snapshot): boolean {
    if (snap.meta.index <= this.log.committed) return false;
    const conf = snap.meta.conf;
    // Unlike etcd we accept a snapshot whose configuration does not name us yet: a member that
    // joins as a learner is added after the leader's latest snapshot. It cannot campaign until a
    // configuration names it a voter, so this is safe.
    if (this.log.matchTerm(snap.meta.index, snap.meta.term)) {
      // Our log already has this prefix: keep the suffix that follows it, just commit.
      this.log.commitTo(snap.meta.index);
      return false;
    }
    this.log.restore(snap);
    this.applyConfState(conf);
    for (const pr of this.prs.values()) {
      pr.match = 0;
      pr.next = this.log.lastIndex() + 1;
    }
    return true;
  }

  // ---- replication: leader side ----------------------------------------------------------

  private handleAppendResponse(m: MsgAppResp, pr: Progress): void {
    this.markActive(pr);
    if (m.reject) {
      const hint = this.log.findConflictByTerm(m.hintIndex, m.hintTerm);
      if (pr.maybeDecrTo(m.index, hint.index)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.maybeSendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      if (wasPaused && !pr.isPaused()) this.maybeSendAppend(m.from, false);
      return;
    }
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) pr.becomeProbe();
    else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);

    if (this.maybeCommit()) {
      this.commitToSend = true;
    } else if (wasPaused) {
      // It was waiting on this answer and may have missed the commit index meanwhile.
      this.maybeSendAppend(m.from, true);
    }
    while (this.maybeSendAppend(m.from, false));
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: 'timeoutNow', from: this.id, to: m.from, term: this.term });
    }
  }

  /** The driver made entries up to (index, term) durable here; the leader may count itself now. */
  onPersisted(index: number, term: number): void {
    this.log.stableTo(index, term);
    if (this.role !== 'leader') return;
    const self = this.prs.get(this.id);
    if (self && this.log.matchTerm(index, term) && self.maybeUpdate(index) && this.maybeCommit()) this.commitToSend = true;
  }

  private maybeCommit(): boolean {
    const matches = this.sortedVoters().map((id) => this.prs.get(id)!.match).sort((a, b) => b - a);
    const quorumMatch = matches[this.quorum() - 1];
    const wasCommittedInTerm = this.committedEntryInCurrentTerm();
    if (!this.log.maybeCommit(quorumMatch, this.term)) return false;
    if (!wasCommittedInTerm) this.releasePendingReadIndex();
    return true;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  private bcastAppend(): void {
    this.commitToSend = false; // every append carries the commit index
    for (const id of this.prs.keys()) if (id !== this.id) this.maybeSendAppend(id, true);
  }

  /**
   * Sends the follower what it lacks, or a snapshot if that was compacted away. `sendIfEmpty`
   * also sends an empty append (to carry the commit index or probe). Returns whether it sent.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused()) return false;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.log.term(pr.next - 1);
      ents = this.log.entriesFrom(pr.next, this.maxSizePerMsg);
    } catch (e) {
      if (e instanceof RaftError && e.code === 'ERR_COMPACTED') return this.sendSnapshot(to, pr);
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    const index = pr.next - 1;
    this.send({ type: 'app', from: this.id, to, term: this.term, logTerm: prevTerm, index, entries: ents, commit: this.log.committed });
    pr.sentEntries(index + ents.length, ents.length);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!this.recentlyActive(pr)) return false; // don't ship a snapshot to a node we have not heard from
    const snapshot = this.log.snapshot();
    invariant(snapshot.meta.index > 0, 'need a snapshot but none exists');
    this.send({ type: 'snap', from: this.id, to, term: this.term, snapshot });
    pr.becomeSnapshot(snapshot.meta.index);
    return true;
  }

  private bcastHeartbeat(): void {
    const context = this.readOnly.lastPendingContext();
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', from: this.id, to: id, term: this.term, commit, context });
    }
  }

  // ---- proposals --------------------------------------------------------------------------

  /** Appends entries as leader. Throws ERR_NOT_LEADER / ERR_PROPOSAL_DROPPED otherwise. */
  propose(datas: Uint8Array[], type: 'normal' | 'conf' = 'normal'): { firstIndex: number; term: number } {
    if (this.role !== 'leader') throw new RaftError('ERR_NOT_LEADER', `${this.id} is not the leader`, { leaderHint: this.lead });
    if (this.leadTransferee !== null) throw new RaftError('ERR_PROPOSAL_DROPPED', `leadership is being transferred to ${this.leadTransferee}`);
    let size = 0;
    for (const d of datas) size += d.length;
    if (this.uncommittedSize > 0 && this.uncommittedSize + size > this.maxUncommittedSize) {
      throw new RaftError('ERR_PROPOSAL_DROPPED', `uncommitted log is over ${this.maxUncommittedSize} bytes`);
    }
    const firstIndex = this.appendEntries(datas, type);
    this.bcastAppend();
    return { firstIndex, term: this.term };
  }

  proposeConfChange(cc: ConfChange, encoded: Uint8Array): { firstIndex: number; term: number } {
    if (this.role === 'leader') {
      if (!this.committedEntryInCurrentTerm() || this.pendingConfIndex > this.log.applied) {
        throw new RaftError('ERR_CONF_CHANGE_PENDING', 'a membership change is still in progress');
      }
      if (cc.type === 'remove' && !this.prs.has(cc.node)) throw new RaftError('ERR_PROPOSAL_DROPPED', `${cc.node} is not a member`);
      if (cc.type === 'promote' && !this.learners().includes(cc.node)) throw new RaftError('ERR_PROPOSAL_DROPPED', `${cc.node} is not a learner`);
      if (cc.type === 'addLearner' && this.prs.has(cc.node)) throw new RaftError('ERR_PROPOSAL_DROPPED', `${cc.node} is already a member`);
    }
    const result = this.propose([encoded], 'conf');
    this.pendingConfIndex = this.log.lastIndex();
    return result;
  }

  private appendEntries(datas: Uint8Array[], type: 'normal' | 'conf'): number {
    const first = this.log.lastIndex() + 1;
    const ents: Entry[] = datas.map((data, i) => ({ term: this.term, index: first + i, type, data }));
    for (const e of ents) this.uncommittedSize += e.data.length;
    this.log.append(ents);
    return first;
  }

  /** Applied entries leave the uncommitted tail (etcd reduceUncommittedSize). */
  reduceUncommittedSize(ents: Entry[]): void {
    for (const e of ents) this.uncommittedSize = Math.max(0, this.uncommittedSize - e.data.length);
  }

  // ---- linearizable reads -----------------------------------------------------------------

  /** Asks for a read index on behalf of the local application. */
  readIndex(context: string): void {
    if (this.role === 'leader') {
      this.readIndexAsLeader(context, this.id);
      return;
    }
    if (this.lead === null) throw new RaftError('ERR_NOT_LEADER', `${this.id} knows no leader`, { leaderHint: null });
    this.send({ type: 'readIndex', from: this.id, to: this.lead, term: this.term, context });
  }

  private readIndexAsLeader(context: string, from: NodeId): void {
    if (!this.committedEntryInCurrentTerm()) {
      // Until our no-op commits, our commit index may be behind what an old leader committed.
      this.pendingReadIndex.push({ context, from });
      return;
    }
    const index = this.log.committed;
    if (this.voters().length === 1) {
      this.answerRead(from, index, context);
      return;
    }
    this.readOnly.addRequest(index, context, from, this.id);
    // Confirm leadership with a heartbeat round carrying the read's context.
    const heartbeatContext = context;
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', from: this.id, to: id, term: this.term, commit, context: heartbeatContext });
    }
  }

  private handleReadAck(from: NodeId, context: string): void {
    if (!this.isVoter(from)) return;
    const acks = this.readOnly.recvAck(from, context);
    if (!acks) return;
    let voterAcks = 0;
    for (const id of acks) if (this.isVoter(id)) voterAcks++;
    if (voterAcks < this.quorum()) return;
    for (const req of this.readOnly.advance(context)) this.answerRead(req.from, req.index, req.context);
  }

  private answerRead(from: NodeId, index: number, context: string): void {
    if (from === this.id) this.readStates.push({ index, context });
    else this.send({ type: 'readIndexResp', from: this.id, to: from, term: this.term, index, context });
  }

  private releasePendingReadIndex(): void {
    const pending = this.pendingReadIndex;
    this.pendingReadIndex = [];
    for (const r of pending) this.readIndexAsLeader(r.context, r.from);
  }

  // ---- leadership transfer ---------------------------------------------------------------

  /** Hands leadership to `target` (thesis §3.10): catch it up, then tell it to campaign now. */
  transferLeadership(target: NodeId): void {
    if (this.role !== 'leader') {
      if (this.lead === null) throw new RaftError('ERR_NOT_LEADER', `${this.id} knows no leader`, { leaderHint: null });
      this.send({ type: 'transferLeader', from: this.id, to: this.lead, term: this.term, target });
      return;
    }
    if (target === this.id || !this.isVoter(target)) return;
    if (this.leadTransferee === target) return;
    this.abortLeaderTransfer();
    this.electionElapsed = 0; // the transfer must finish within one election timeout
    this.leadTransferee = target;
    const pr = this.prs.get(target)!;
    if (pr.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', from: this.id, to: target, term: this.term });
    else this.maybeSendAppend(target, true);
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = null;
  }

  // ---- transport feedback ----------------------------------------------------------------

  reportUnreachable(id: NodeId): void {
    const pr = this.prs.get(id);
    if (this.role === 'leader' && pr && pr.state === 'replicate') pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    const pr = this.prs.get(id);
    if (this.role !== 'leader' || !pr || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    // Wait for the follower's answer (or the next heartbeat) before probing again.
    pr.becomeProbe();
    pr.probeSent = true;
  }
}
