// The driver-facing API of the core (etcd raft rawnode.go): feed it ticks, messages and
// proposals; take a Ready, persist / send / apply it, then advance().
import type { ConfChange, ConfState, HardState, Message, NodeId, Ready, SoftState } from './types.ts';
import { Raft } from './raft.ts';
import type { RaftConfig } from './raft.ts';
import { invariant } from './errors.ts';
import { encodeConfChange } from './conf-change.ts';

/** Messages only a leader sends, which depend on nothing this node has yet to persist. */
const SEND_BEFORE_PERSIST = new Set<Message['type']>(['app', 'heartbeat', 'snap', 'timeoutNow', 'readIndexResp']);

export interface Status {
  id: NodeId;
  term: number;
  vote: NodeId | null;
  lead: NodeId | null;
  role: SoftState['role'];
  commit: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  conf: ConfState;
  leadTransferee: NodeId | null;
  progress: Record<NodeId, { match: number; next: number; state: string; lastHeardTick: number; isLearner: boolean }>;
}

export class RawNode {
  readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  /**
   * Readies handed out and not yet advanced, oldest first. A driver may take a new Ready before
   * the previous one's write completes, as long as it completes writes and calls advance() in
   * the order it took them (etcd: async storage writes).
   */
  private outstanding: Ready[] = [];

  constructor(cfg: RaftConfig) {
    this.raft = new Raft(cfg);
    this.prevSoft = this.softState();
    this.prevHard = this.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  step(m: Message): void {
    this.raft.step(m);
  }

  campaign(): void {
    this.raft.campaignNow();
  }

  propose(datas: Uint8Array[]): { firstIndex: number; term: number } {
    return this.raft.propose(datas);
  }

  proposeConfChange(cc: ConfChange): { firstIndex: number; term: number } {
    return this.raft.proposeConfChange(cc, encodeConfChange(cc));
  }

  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  readIndex(context: string): void {
    this.raft.readIndex(context);
  }

  transferLeadership(target: NodeId): void {
    this.raft.transferLeadership(target);
  }

  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  private softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.role };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }

  hasReady(): boolean {
    const r = this.raft;
    const soft = this.softState();
    if (soft.leader !== this.prevSoft.leader || soft.role !== this.prevSoft.role) return true;
    const hard = this.hardState();
    if (hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote) return true;
    return (
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.log.nextUnstableEntries().length > 0 ||
      r.log.unstable.nextSnapshot() !== null ||
      r.log.hasNextCommittedEnts()
    );
  }

  ready(): Ready {
    const r = this.raft;
    const soft = this.softState();
    const hard = this.hardState();
    const softChanged = soft.leader !== this.prevSoft.leader || soft.role !== this.prevSoft.role;
    // The commit index is volatile state (Raft Figure 2): it is written along with entries or a
    // term/vote change, never on its own, so a commit that advances does not cost a disk write and
    // hold up the next batch. After a restart the leader tells us the commit index again.
    const entries = r.log.nextUnstableEntries();
    const snapshot = r.log.unstable.nextSnapshot();
    const entriesPending = entries.length > 0 || snapshot !== null;
    const hardChanged = hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote || (entriesPending && hard.commit !== this.prevHard.commit);
    const messagesNow: Message[] = [];
    const messages: Message[] = [];
    for (const m of r.msgs) (SEND_BEFORE_PERSIST.has(m.type) ? messagesNow : messages).push(m);
    r.msgs = [];
    const rd: Ready = {
      softState: softChanged ? soft : null,
      hardState: hardChanged ? hard : null,
      entries,
      snapshot,
      committedEntries: r.log.nextCommittedEnts(),
      messagesNow,
      messages,
      readStates: r.readStates,
      mustSync: entries.length > 0 || hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote,
    };
    r.readStates = [];
    if (softChanged) this.prevSoft = soft;
    if (hardChanged) this.prevHard = hard;
    r.log.unstable.acceptInProgress();
    if (rd.committedEntries.length > 0) r.log.acceptApplying(rd.committedEntries[rd.committedEntries.length - 1].index);
    this.outstanding.push(rd);
    return rd;
  }

  /** The driver persisted, sent and applied `rd`, the oldest Ready it has not advanced yet. */
  advance(rd: Ready): void {
    invariant(this.outstanding[0] === rd, 'advance() must follow the order in which Readies were handed out');
    this.outstanding.shift();
    const log = this.raft.log;
    if (rd.snapshot) {
      log.stableSnapTo(rd.snapshot.meta.index);
      log.appliedTo(rd.snapshot.meta.index);
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      this.raft.onPersisted(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) {
      const last = rd.committedEntries[rd.committedEntries.length - 1];
      log.appliedTo(last.index);
      if (this.raft.role === 'leader') this.raft.reduceUncommittedSize(rd.committedEntries);
    }
  }

  status(): Status {
    const r = this.raft;
    const progress: Status['progress'] = {};
    for (const [id, pr] of r.prs) {
      progress[id] = { match: pr.match, next: pr.next, state: pr.state, lastHeardTick: pr.lastHeardTick, isLearner: pr.isLearner };
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      lead: r.lead,
      role: r.role,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      firstIndex: r.log.firstIndex(),
      conf: r.confState(),
      leadTransferee: r.leadTransferee,
      progress,
    };
  }
}

