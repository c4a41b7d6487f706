// The durable side of a Raft node: log entries, hard state, the latest snapshot and a small
// metadata blob, in LevelDB. The node runner writes each Ready here in one synced batch before
// sending the messages that depend on it (types.ts, Ready), and on start loads it all back into
// a MemoryStorage. load() refuses a store that is damaged or inconsistent (see validate.ts).
import { chmod, mkdir, readdir, stat } from 'node:fs/promises';
import { Level } from 'level';
import type { Entry, HardState, Snapshot } from '../raft/core/types.ts';
import { RaftError, invariant } from '../raft/core/errors.ts';
import {
  BadValueError, decodeBytes, decodeEntry, decodeHardState, decodeMeta, decodeSnapshotMeta,
  encodeBytes, encodeEntry, encodeHardState, encodeMeta, encodeSnapshotMeta,
} from './codec.ts';
import { ENTRY_RANGE, HARD_STATE_KEY, META_KEY, SNAPSHOT_DATA_KEY, SNAPSHOT_META_KEY, entryIndexOf, entryKey } from './keys.ts';
import { findInconsistency, type StoredEntry } from './validate.ts';

export interface RaftWrite {
  entries: Entry[];
  hardState: HardState | null;
  snapshot: Snapshot | null;
}

export interface LoadedRaftState {
  hardState: HardState;
  snapshot: Snapshot | null;
  /** The stored entries after the snapshot index, in order. */
  entries: Entry[];
  meta: Record<string, unknown> | null;
}

/**
 * What is on disk, tracked in memory so a write knows which keys to delete without scanning.
 * `first`/`last` are the smallest and largest stored entry indexes, null when none is stored.
 */
interface Bounds {
  first: number | null;
  last: number | null;
  snapIndex: number;
  snapTerm: number;
}

type Op = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

const EMPTY_HARD_STATE: HardState = { term: 0, vote: null, commit: 0 };

export class LevelRaftStore {
  private bounds: Bounds = { first: null, last: null, snapIndex: 0, snapTerm: 0 };
  /** Operations run one at a time: each plans its batch from the bounds the previous one left. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Operations queued or under way; with none, the next one starts synchronously (serial). */
  private running = 0;
  /** The reclaim under way, if any; close() waits for it. */
  private reclaiming: Promise<void> | null = null;

  private constructor(readonly dir: string, private readonly db: Level<Buffer, Buffer>) {}

  static async open(dir: string): Promise<LevelRaftStore> {
    await ensurePrivateDir(dir);
    await refuseLostCurrent(dir);
    const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    try {
      await db.open();
    } catch (err) {
      throw openFailure(dir, err);
    }
    const store = new LevelRaftStore(dir, db);
    try {
      await store.readBounds();
    } catch (err) {
      await db.close();
      throw store.asStoreError(err);
    }
    return store;
  }

  /** Reads everything back and validates it; throws ERR_CORRUPT_STORE naming what is wrong. */
  load(): Promise<LoadedRaftState> {
    return this.serial(async () => {
      try {
        return await this.readAll();
      } catch (err) {
        throw this.asStoreError(err);
      }
    });
  }

  /**
   * Writes one Ready in one atomic LevelDB batch, fsynced when `sync` is true. A snapshot drops
   * the entries it covers; an entry at index i replaces every stored entry >= i; entries at or
   * below the snapshot index are skipped (as MemoryStorage.append does).
   */
  save(batch: RaftWrite, sync: boolean): Promise<void> {
    return this.serial(async () => {
      const next = { ...this.bounds };
      const ops: Op[] = [];
      if (batch.snapshot) await this.planSnapshot(batch.snapshot, next, ops, 'install');
      if (batch.entries.length > 0) planEntries(batch.entries, next, ops);
      if (batch.hardState) ops.push(put(HARD_STATE_KEY, encodeHardState(batch.hardState)));
      await this.write(ops, sync, next);
    });
  }

  /**
   * Records a snapshot the application took of its own log, keeping the entries it covers so
   * that followers slightly behind can still be sent entries (etcd's SnapshotCatchUpEntries);
   * compact() drops them later. The log must hold the snapshot's last entry with its term.
   */
  saveSnapshot(snapshot: Snapshot): Promise<void> {
    return this.serial(async () => {
      const next = { ...this.bounds };
      const ops: Op[] = [];
      await this.planSnapshot(snapshot, next, ops, 'record');
      await this.write(ops, true, next);
    });
  }

  /** Deletes the entries with index <= `index`; they must be covered by the stored snapshot. */
  compact(index: number): Promise<void> {
    return this.serial(async () => {
      const { first, last, snapIndex } = this.bounds;
      if (index > snapIndex) {
        throw new RaftError('ERR_INVARIANT', `compact(${index}) refused: beyond the stored snapshot index ${snapIndex}, those entries exist nowhere else`);
      }
      if (first === null || last === null || index < first) return;
      const to = Math.min(index, last);
      const next = to === last ? { ...this.bounds, first: null, last: null } : { ...this.bounds, first: to + 1 };
      // Not synced: losing a compaction in a crash only leaves covered entries, which load accepts.
      await this.write(deleteRange(first, to), false, next);
      this.reclaim(to);
    });
  }

  /**
   * Deleting entries only writes tombstones; LevelDB frees their bytes when a compaction reaches
   * them, which at a few writes a second can be hours away, so the directory would grow long
   * after the log stopped. Compacting the deleted range (and the superseded snapshot blobs below
   * it in key order) right away keeps the directory near the size of what is live. LevelDB never
   * rewrites the deepest level that holds files, so when a flush lands there (a store with no other
   * files) its dead entries go at the next compaction instead: at most two snapshot intervals of
   * entries are ever on disk (measured over an hour at idle: docs/failover.md). It runs in
   * LevelDB's background thread beside later writes, not in the serial queue, so saves never wait
   * for it; one at a time, and a failure only leaves the space for LevelDB to reclaim itself.
   */
  private reclaim(to: number): void {
    if (this.reclaiming) return;
    // `level` is classic-level on Node; its type is the browser-neutral one, without compactRange.
    const db = this.db as unknown as { compactRange(start: Buffer, end: Buffer): Promise<void> };
    this.reclaiming = db
      .compactRange(Buffer.from([0x00]), entryKey(to + 1))
      .catch(() => undefined)
      .finally(() => {
        this.reclaiming = null;
      });
  }

  /** Resolves once no reclaim is under way (tests measure the directory after it). */
  async settled(): Promise<void> {
    await this.tail;
    while (this.reclaiming) await this.reclaiming;
  }

  /** A small blob the node keeps beside its log (e.g. cluster identity); synced. */
  saveMeta(meta: Record<string, unknown>): Promise<void> {
    return this.serial(() => this.db.put(META_KEY, encodeMeta(meta), { sync: true }));
  }

  close(): Promise<void> {
    return this.serial(async () => {
      if (this.reclaiming) await this.reclaiming;
      await this.db.close();
    });
  }

  /**
   * Runs `op` after every operation queued before it. With none under way it starts at once, in
   * the caller's turn, rather than a microtask later: the leader calls save() before it writes its
   * appends to the followers, so its own disk write is already running while those go out.
   */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.running === 0 ? startNow(op) : this.tail.then(op);
    this.running++;
    const settled = run.then(
      () => void this.running--,
      () => void this.running--,
    );
    this.tail = settled;
    return run;
  }

  /**
   * A chained batch rather than db.batch(array): level's array form copies and re-validates every
   * operation on the main thread, about 8 µs each against about 1.3 µs chained (measured here with
   * 50 entries a batch); on a busy leader that was a tenth of its CPU.
   */
  private async write(ops: Op[], sync: boolean, next: Bounds): Promise<void> {
    if (ops.length > 0) {
      const batch = this.db.batch();
      for (const op of ops) {
        if (op.type === 'put') batch.put(op.key, op.value);
        else batch.del(op.key);
      }
      await batch.write({ sync });
    }
    this.bounds = next; // only once the batch is on disk; a failed batch wrote nothing
  }

  // Raft Figure 13 (InstallSnapshot receiver, steps 6 and 7): if the log holds the snapshot's
  // last entry with the same term, the entries after it are still valid and stay; otherwise
  // they belong to a history the snapshot overrides and the whole log goes, as in
  // MemoryStorage.applySnapshot. A snapshot the node took itself ('record') always matches.
  private async planSnapshot(snap: Snapshot, b: Bounds, ops: Op[], mode: 'install' | 'record'): Promise<void> {
    const { index, term } = snap.meta;
    if (b.snapIndex > 0 && index <= b.snapIndex) {
      throw new RaftError('ERR_SNAP_OUT_OF_DATE', `snapshot ${index} is not newer than the stored snapshot ${b.snapIndex}`);
    }
    const matches = (await this.termAt(index, b)) === term;
    if (mode === 'record') {
      invariant(matches, `saveSnapshot at index ${index} term ${term}: the stored log does not hold that entry`);
    } else if (b.first !== null && b.last !== null) {
      const to = matches ? Math.min(index, b.last) : b.last;
      ops.push(...deleteRange(b.first, to));
      if (to >= b.last) b.first = b.last = null;
      else if (to >= b.first) b.first = to + 1;
    }
    ops.push(put(SNAPSHOT_META_KEY, encodeSnapshotMeta(snap.meta)), put(SNAPSHOT_DATA_KEY, encodeBytes(snap.data)));
    b.snapIndex = index;
    b.snapTerm = term;
  }

  /** Term of the entry at `index` as stored, or undefined when the store does not hold it. */
  private async termAt(index: number, b: Bounds): Promise<number | undefined> {
    if (index === b.snapIndex) return b.snapTerm;
    if (b.first === null || b.last === null || index < b.first || index > b.last) return undefined;
    const value = (await this.db.get(entryKey(index))) as Buffer | undefined;
    if (value === undefined) throw this.corrupt(`log entry ${index} is missing inside the stored range ${b.first}..${b.last}`);
    return this.decodeAt(`log entry ${index}`, decodeEntry, value).term;
  }

  /** Finds the log's ends and the snapshot point with two one-key seeks, no scan. */
  private async readBounds(): Promise<void> {
    const [firstKey] = await this.db.keys({ ...ENTRY_RANGE, limit: 1 }).all();
    const [lastKey] = await this.db.keys({ ...ENTRY_RANGE, limit: 1, reverse: true }).all();
    const metaValue = (await this.db.get(SNAPSHOT_META_KEY)) as Buffer | undefined;
    const snap = metaValue ? this.decodeAt('snapshot metadata', decodeSnapshotMeta, metaValue) : null;
    this.bounds = {
      first: firstKey ? this.keyIndex(firstKey) : null,
      last: lastKey ? this.keyIndex(lastKey) : null,
      snapIndex: snap?.index ?? 0,
      snapTerm: snap?.term ?? 0,
    };
  }

  private async readAll(): Promise<LoadedRaftState> {
    const keys = [HARD_STATE_KEY, SNAPSHOT_META_KEY, SNAPSHOT_DATA_KEY, META_KEY];
    const [hsValue, snapMetaValue, snapDataValue, metaValue] = (await this.db.getMany(keys)) as (Buffer | undefined)[];
    const hardState = hsValue ? this.decodeAt('hard state', decodeHardState, hsValue) : { ...EMPTY_HARD_STATE };
    if ((snapMetaValue === undefined) !== (snapDataValue === undefined)) {
      throw this.corrupt(snapMetaValue ? 'snapshot metadata is stored without snapshot data' : 'snapshot data is stored without snapshot metadata');
    }
    const snapshot = snapMetaValue && snapDataValue
      ? { meta: this.decodeAt('snapshot metadata', decodeSnapshotMeta, snapMetaValue), data: this.decodeAt('snapshot data', decodeBytes, snapDataValue) }
      : null;
    const meta = metaValue ? this.decodeAt('metadata', decodeMeta, metaValue) : null;

    const stored: StoredEntry[] = [];
    for await (const [key, value] of this.db.iterator({ ...ENTRY_RANGE })) {
      const keyIndex = this.keyIndex(key);
      stored.push({ keyIndex, entry: this.decodeAt(`log entry ${keyIndex}`, decodeEntry, value) });
    }
    const problem = findInconsistency({ hardState, snapshotMeta: snapshot?.meta ?? null, stored });
    if (problem !== null) throw this.corrupt(problem);

    const snapIndex = snapshot?.meta.index ?? 0;
    this.bounds = {
      first: stored.length > 0 ? stored[0].keyIndex : null,
      last: stored.length > 0 ? stored[stored.length - 1].keyIndex : null,
      snapIndex,
      snapTerm: snapshot?.meta.term ?? 0,
    };
    return { hardState, snapshot, entries: stored.filter((s) => s.keyIndex > snapIndex).map((s) => s.entry), meta };
  }

  private keyIndex(key: Buffer): number {
    const index = entryIndexOf(key);
    if (index === null) throw this.corrupt(`malformed log key 0x${key.toString('hex')}`);
    return index;
  }

  private decodeAt<T>(what: string, decode: (value: Uint8Array) => T, value: Uint8Array): T {
    try {
      return decode(value);
    } catch (err) {
      if (err instanceof BadValueError) throw this.corrupt(`${what}: ${err.message}`, err);
      throw err;
    }
  }

  private corrupt(problem: string, cause?: unknown): RaftError {
    return new RaftError('ERR_CORRUPT_STORE', `corrupt raft store at ${this.dir}: ${problem}`, { cause });
  }

  /** LevelDB's own corruption reports (a bad block found while reading) become ERR_CORRUPT_STORE. */
  private asStoreError(err: unknown): unknown {
    if (err instanceof RaftError) return err;
    if (levelCode(err) === 'LEVEL_CORRUPTION') return this.corrupt(`LevelDB reports corruption: ${levelMessage(err)}`, err);
    return err;
  }
}

/** Calls `op` now; a synchronous throw becomes a rejection, as it would inside a .then(). */
function startNow<T>(op: () => Promise<T>): Promise<T> {
  try {
    return op();
  } catch (err) {
    return Promise.reject(err);
  }
}

function planEntries(entries: Entry[], b: Bounds, ops: Op[]): void {
  for (let k = 1; k < entries.length; k++) {
    invariant(entries[k].index === entries[k - 1].index + 1, `save: entries ${entries[k - 1].index} and ${entries[k].index} are not consecutive`);
    invariant(entries[k].term >= entries[k - 1].term, `save: term goes down from ${entries[k - 1].term} to ${entries[k].term} at entry ${entries[k].index}`);
  }
  const fresh = entries.filter((e) => e.index > b.snapIndex);
  if (fresh.length === 0) return;
  const start = fresh[0].index;
  const end = fresh[fresh.length - 1].index;
  const lastIndex = Math.max(b.last ?? 0, b.snapIndex);
  invariant(start <= lastIndex + 1, `save: entries starting at ${start} would leave a gap after the last index ${lastIndex}`);
  for (const e of fresh) ops.push(put(entryKey(e.index), encodeEntry(e)));
  // An entry at index i replaces every stored entry >= i (Ready contract in types.ts), so the
  // stored tail beyond this batch goes too, or a stale suffix from an old term would survive.
  if (b.last !== null) ops.push(...deleteRange(end + 1, b.last));
  b.first = b.first === null ? start : Math.min(b.first, start);
  b.last = end;
}

function deleteRange(from: number, to: number): Op[] {
  const ops: Op[] = [];
  for (let i = from; i <= to; i++) ops.push({ type: 'del', key: entryKey(i) });
  return ops;
}

const put = (key: Buffer, value: Buffer): Op => ({ type: 'put', key, value });

/**
 * Creates `dir` (and missing parents) owner-only, 0700: the log holds the cluster's data. An
 * existing directory others may enter is narrowed to 0700; its old mode is returned so the agent
 * can warn (null: nothing changed). LevelDB's files inside follow the umask; the directory is
 * what keeps other users out.
 */
export async function ensurePrivateDir(dir: string): Promise<number | null> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const mode = (await stat(dir)).mode & 0o777;
  if ((mode & 0o077) === 0) return null;
  await chmod(dir, 0o700);
  return mode;
}

// LevelDB found nothing under CURRENT but its other files are there: opening with
// createIfMissing would start an empty store and the node would forget its vote and log, which
// Raft's safety rests on (Figure 2, persistent state). Refuse instead.
async function refuseLostCurrent(dir: string): Promise<void> {
  const names = await readdir(dir);
  if (names.includes('CURRENT')) return;
  const leftovers = names.filter((n) => /^\d+\.(log|ldb|sst)$|^MANIFEST-\d+$/.test(n));
  if (leftovers.length > 0) {
    throw new RaftError('ERR_CORRUPT_STORE', `corrupt raft store at ${dir}: LevelDB's CURRENT file is missing but ${leftovers.join(', ')} remain; refusing to start an empty store over them`);
  }
}

// LevelDB follows a garbled CURRENT as a file name and reports an IO error, a garbled MANIFEST
// as corruption; both mean the files cannot be trusted. A held lock says nothing about the
// files (another process has the store open), so it passes through unchanged.
function openFailure(dir: string, err: unknown): unknown {
  const code = levelCode(err);
  if (code !== 'LEVEL_CORRUPTION' && code !== 'LEVEL_IO_ERROR') return err;
  return new RaftError('ERR_CORRUPT_STORE', `corrupt raft store at ${dir}: LevelDB refused to open it: ${levelMessage(err)}`, { cause: err });
}

/** abstract-level wraps the binding's error in `cause`; the specific code is there. */
function levelCode(err: unknown): string | undefined {
  const e = err as { code?: string; cause?: { code?: string } } | null;
  return e?.cause?.code ?? e?.code;
}

function levelMessage(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } } | null;
  return e?.cause?.message ?? e?.message ?? String(err);
}
