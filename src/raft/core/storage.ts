// The core's read-only view of the stable log (etcd raft storage.go), and an in-memory
// implementation. The core reads synchronously; the node runner keeps a MemoryStorage as the
// cache of what its durable store (src/storage) holds, and updates both after each synced write.
import type { ConfState, Entry, HardState, Snapshot } from './types.ts';
import { RaftError, invariant } from './errors.ts';

export interface LogStorage {
  initialState(): { hardState: HardState; conf: ConfState };
  /** Entries in [lo, hi), at least one entry, then as many as fit in maxSize bytes of data. */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /** Term of entry i; valid for firstIndex()-1 ..= lastIndex(). */
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

export const bootstrapSnapshot = (voters: string[]): Snapshot => ({
  meta: { index: 1, term: 0, conf: { voters: [...voters].sort(), learners: [] } },
  data: new Uint8Array(0),
});

export const emptySnapshot = (): Snapshot => ({ meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: new Uint8Array(0) });

export class MemoryStorage implements LogStorage {
  hardState: HardState = { term: 0, vote: null, commit: 0 };
  private snap: Snapshot = emptySnapshot();
  /** ents[0] is a dummy standing for the snapshot point: its index and term. */
  private ents: Entry[] = [{ term: 0, index: 0, type: 'normal', data: new Uint8Array(0) }];

  /**
   * A founding member of a new cluster starts from snapshot 1 (term 0, empty state) holding the
   * initial configuration. Because the log then starts at 2, a node that joins later with an
   * empty store is always sent a snapshot, and so learns the configuration before any entry.
   */
  static bootstrap(voters: string[]): MemoryStorage {
    const storage = new MemoryStorage();
    storage.applySnapshot(bootstrapSnapshot(voters));
    storage.hardState = { term: 0, vote: null, commit: 1 };
    return storage;
  }

  initialState(): { hardState: HardState; conf: ConfState } {
    return { hardState: { ...this.hardState }, conf: this.snap.meta.conf };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  term(i: number): number {
    const offset = this.ents[0].index;
    if (i < offset) throw new RaftError('ERR_COMPACTED', `term(${i}): compacted below ${offset}`);
    if (i - offset >= this.ents.length) throw new RaftError('ERR_UNAVAILABLE', `term(${i}): beyond last index ${this.lastIndex()}`);
    return this.ents[i - offset].term;
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.ents[0].index;
    if (lo <= offset) throw new RaftError('ERR_COMPACTED', `entries(${lo}): compacted below ${offset + 1}`);
    if (hi > this.lastIndex() + 1) throw new RaftError('ERR_UNAVAILABLE', `entries(${lo}, ${hi}): beyond last index ${this.lastIndex()}`);
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSize);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces everything at or after the first new entry's index (Ready rule: entry i drops >= i). */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return; // all already compacted
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const offset = entries[0].index - this.ents[0].index;
    invariant(offset <= this.ents.length, `append at ${entries[0].index} leaves a gap after ${this.lastIndex()}`);
    this.ents = this.ents.slice(0, offset).concat(entries);
  }

  applySnapshot(snap: Snapshot): void {
    if (snap.meta.index <= this.snap.meta.index && this.snap.meta.index > 0) {
      throw new RaftError('ERR_SNAP_OUT_OF_DATE', `snapshot ${snap.meta.index} is not newer than ${this.snap.meta.index}`);
    }
    this.snap = snap;
    this.ents = [{ term: snap.meta.term, index: snap.meta.index, type: 'normal', data: new Uint8Array(0) }];
  }

  /** Records a snapshot the application took at `index`; compaction is a separate decision. */
  createSnapshot(index: number, conf: ConfState, data: Uint8Array): Snapshot {
    invariant(index <= this.lastIndex(), `snapshot at ${index} beyond last index ${this.lastIndex()}`);
    if (index <= this.snap.meta.index) return this.snap;
    this.snap = { meta: { index, term: this.term(index), conf }, data };
    return this.snap;
  }

  /** A copy sharing the (immutable) entries: what a restarted node reads back from disk. */
  clone(): MemoryStorage {
    const copy = new MemoryStorage();
    copy.hardState = { ...this.hardState };
    copy.snap = this.snap;
    copy.ents = this.ents.slice();
    return copy;
  }

  /** Discards entries before `index`; entry `index` becomes the dummy. */
  compact(index: number): void {
    const offset = this.ents[0].index;
    if (index <= offset) return;
    invariant(index <= this.lastIndex(), `compact(${index}) beyond last index ${this.lastIndex()}`);
    const dummy = this.ents[index - offset];
    this.ents = [{ term: dummy.term, index: dummy.index, type: 'normal', data: new Uint8Array(0) }, ...this.ents.slice(index - offset + 1)];
  }
}

/** Keeps at least one entry, then as many as fit in maxSize bytes of payload. */
export function limitSize(entries: Entry[], maxSize: number): Entry[] {
  if (entries.length === 0) return entries;
  let size = entries[0].data.length;
  let n = 1;
  while (n < entries.length) {
    size += entries[n].data.length;
    if (size > maxSize) break;
    n++;
  }
  return n === entries.length ? entries : entries.slice(0, n);
}
