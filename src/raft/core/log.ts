// The Raft log as the core sees it: the stable part (LogStorage, on disk) followed by the unstable
// part (appended here, not yet handed to the driver for persistence). etcd raft: log.go and
// log_unstable.go. Also owns the commit and apply cursors.
import type { Entry, Snapshot } from './types.ts';
import type { LogStorage } from './storage.ts';
import { limitSize } from './storage.ts';
import { RaftError, invariant } from './errors.ts';

class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  /** Index of entries[0]; when entries is empty, the next index to be appended here. */
  offset: number;
  /**
   * Entries below this index (and the snapshot, if snapshotInProgress) were handed to the driver
   * in a Ready whose write has not completed yet (etcd offsetInProgress). Several Readies can be
   * outstanding, so a leader keeps appending while its disk is busy.
   */
  offsetInProgress: number;
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  /** Entries not yet handed to the driver. */
  nextEntries(): Entry[] {
    const inProgress = this.offsetInProgress - this.offset;
    return inProgress >= this.entries.length ? [] : this.entries.slice(inProgress);
  }

  nextSnapshot(): Snapshot | null {
    return this.snapshot && !this.snapshotInProgress ? this.snapshot : null;
  }

  acceptInProgress(): void {
    this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot) this.snapshotInProgress = true;
  }

  maybeLastIndex(): number | null {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot) return this.snapshot.meta.index;
    return null;
  }

  maybeFirstIndex(): number | null {
    return this.snapshot ? this.snapshot.meta.index + 1 : null;
  }

  maybeTerm(i: number): number | null {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.meta.index === i) return this.snapshot.meta.term;
      return null;
    }
    const last = this.maybeLastIndex();
    if (last === null || i > last) return null;
    return this.entries[i - this.offset].term;
  }

  /** The driver made entries up to (i, t) durable: forget them here unless they were replaced since. */
  stableTo(i: number, t: number): void {
    const term = this.maybeTerm(i);
    if (term === null || term !== t || i < this.offset) return;
    this.entries = this.entries.slice(i + 1 - this.offset);
    this.offset = i + 1;
    this.offsetInProgress = Math.max(this.offsetInProgress, this.offset);
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.meta.index === i) {
      this.snapshot = null;
      this.snapshotInProgress = false;
    }
  }

  restore(snap: Snapshot): void {
    this.offset = snap.meta.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = snap;
    this.snapshotInProgress = false;
  }

  truncateAndAppend(ents: Entry[]): void {
    const after = ents[0].index;
    if (after === this.offset + this.entries.length) {
      this.entries = this.entries.concat(ents);
    } else if (after <= this.offset) {
      // Everything from `after` on is replaced, including entries the driver may already hold or
      // be writing: it will write these again, and an entry at index i replaces every stored
      // entry >= i. Writes complete in order, so the replacement lands last.
      this.offset = after;
      this.entries = ents.slice();
      this.offsetInProgress = this.offset;
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents);
      this.offsetInProgress = Math.min(this.offsetInProgress, after);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly storage: LogStorage;
  readonly unstable: Unstable;
  /** Highest index known to be stored on a quorum. */
  committed: number;
  /** Highest index the state machine has applied. */
  applied: number;
  /** Highest index handed to the driver for applying (>= applied while Readies are outstanding). */
  applying: number;
  readonly maxApplyBytes: number;

  constructor(storage: LogStorage, maxApplyBytes: number) {
    this.storage = storage;
    this.maxApplyBytes = maxApplyBytes;
    this.unstable = new Unstable(storage.lastIndex() + 1);
    // Everything up to the snapshot point counts as committed and applied. The snapshot may lie
    // past the compaction point (trailing entries are kept for slow followers).
    const snapshotIndex = Math.max(storage.firstIndex() - 1, storage.snapshot().meta.index);
    this.committed = snapshotIndex;
    this.applied = storage.firstIndex() - 1;
    this.applying = this.applied;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of entry i; throws ERR_COMPACTED below the first index, 0 beyond the last one. */
  term(i: number): number {
    const dummy = this.firstIndex() - 1;
    if (i < dummy) throw new RaftError('ERR_COMPACTED', `term(${i}): compacted below ${dummy}`);
    if (i > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(i);
    if (t !== null) return t;
    return this.storage.term(i);
  }

  /** term() with 0 for anything out of range; for comparisons where "unknown" means "no match". */
  termOrZero(i: number): number {
    try {
      return this.term(i);
    } catch (e) {
      if (e instanceof RaftError && (e.code === 'ERR_COMPACTED' || e.code === 'ERR_UNAVAILABLE')) return 0;
      throw e;
    }
  }

  matchTerm(i: number, t: number): boolean {
    // term() answers 0 beyond the last index, so the range must be checked here: a missing
    // entry never matches, even an expected term of 0.
    if (i > this.lastIndex() || i < this.firstIndex() - 1) return false;
    return this.term(i) === t;
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, term) at least as up to date as ours? */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The follower side of AppendEntries: if our log matches (index, logTerm), append what conflicts
   * or is new and advance commit. Returns the last index the leader's message covers, or null on
   * mismatch. Entries already present are never truncated (a stale, reordered append must not cut
   * off entries that follow it).
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | null {
    if (!this.matchTerm(index, logTerm)) return null;
    const lastNew = index + ents.length;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      invariant(conflict > this.committed, `entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
      this.append(ents.slice(conflict - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    invariant(ents[0].index - 1 >= this.committed, `append at ${ents[0].index} would overwrite committed ${this.committed}`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** First entry whose index is new or whose term differs from ours; 0 when all match. */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`: the leader uses it to skip a whole
   * term of mismatched entries per round trip instead of one entry (etcd findConflictByTerm).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (; i >= this.firstIndex() - 1; i--) {
      const t = this.termOrZero(i);
      if (t <= term) return { index: i, term: t };
      if (i === 0) break;
    }
    return { index: i, term: 0 };
  }

  commitTo(toCommit: number): void {
    if (toCommit <= this.committed) return; // commit never goes backwards
    invariant(toCommit <= this.lastIndex(), `commit ${toCommit} beyond last index ${this.lastIndex()}`);
    this.committed = toCommit;
  }

  /** Figure-8 rule: commit by counting replicas only an entry of the leader's own term. */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    invariant(i <= this.committed && i >= this.applied, `applied ${i} outside [${this.applied}, ${this.committed}]`);
    this.applied = i;
    this.applying = Math.max(this.applying, i);
  }

  acceptApplying(i: number): void {
    this.applying = Math.max(this.applying, i);
  }

  /** Committed entries not yet handed out; none while a snapshot waits to be installed first. */
  hasNextCommittedEnts(): boolean {
    return this.committed > this.applying && !this.unstable.snapshot;
  }

  nextCommittedEnts(): Entry[] {
    if (!this.hasNextCommittedEnts()) return [];
    const lo = Math.max(this.applying + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1, this.maxApplyBytes);
  }

  entriesFrom(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  /** Entries [lo, hi) from storage and the unstable tail; throws ERR_COMPACTED below firstIndex. */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    if (lo === hi) return [];
    if (lo < this.firstIndex()) throw new RaftError('ERR_COMPACTED', `slice(${lo}): compacted below ${this.firstIndex()}`);
    invariant(hi <= this.lastIndex() + 1, `slice(${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    let ents: Entry[] = [];
    if (lo < this.unstable.offset) {
      const storedHi = Math.min(hi, this.unstable.offset);
      ents = this.storage.entries(lo, storedHi, maxSize);
      if (ents.length < storedHi - lo) return ents; // size limit reached inside storage
    }
    if (hi > this.unstable.offset) {
      const tail = this.unstable.slice(Math.max(lo, this.unstable.offset), hi);
      ents = ents.length > 0 ? ents.concat(tail) : tail;
    }
    return limitSize(ents, maxSize);
  }

  /** Entries not yet handed to the driver for persistence. */
  nextUnstableEntries(): Entry[] {
    return this.unstable.nextEntries();
  }

  /** The last index that is durable and still part of our log. */
  stableLastIndex(): number {
    if (this.unstable.snapshot) return 0; // only followers restore snapshots; nothing to count yet
    return Math.min(this.storage.lastIndex(), this.unstable.offset - 1);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  restore(snap: Snapshot): void {
    this.committed = snap.meta.index;
    this.unstable.restore(snap);
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }
}
