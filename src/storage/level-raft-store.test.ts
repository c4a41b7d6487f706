// Tests of the durable Raft store: what it writes comes back, the Ready write rules hold
// (suffix replacement, snapshot coverage, compaction), damage is reported as ERR_CORRUPT_STORE
// naming the problem, and acknowledged synced writes survive a SIGKILL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { RaftError } from '../raft/core/errors.ts';
import type { Entry, HardState, Snapshot } from '../raft/core/types.ts';
import { crc32 } from './crc32.ts';
import { encodeEntry, encodeHardState } from './codec.ts';
import { ENTRY_RANGE, HARD_STATE_KEY, entryKey } from './keys.ts';
import { LevelRaftStore, ensurePrivateDir } from './level-raft-store.ts';

let root = '';
let dirCount = 0;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'conclave-store-'));
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});
const freshDir = (): string => path.join(root, `store-${++dirCount}`);

const entry = (index: number, term: number, text = `e${index}`): Entry => ({ term, index, type: 'normal', data: Buffer.from(text) });
const entries = (from: number, to: number, term: number): Entry[] => Array.from({ length: to - from + 1 }, (_, k) => entry(from + k, term));
const hs = (term: number, commit: number, vote: string | null = 'a'): HardState => ({ term, vote, commit });
const snap = (index: number, term: number, text = 'state'): Snapshot => ({ meta: { index, term, conf: { voters: ['a', 'b', 'c'], learners: ['d'] } }, data: Buffer.from(text) });

/** Entries with data as hex, so Buffer and Uint8Array compare equal. */
const plain = (es: Entry[]): unknown[] => es.map((e) => ({ ...e, data: Buffer.from(e.data).toString('hex') }));
const indexes = (es: Entry[]): number[] => es.map((e) => e.index);

async function withStore<T>(dir: string, fn: (store: LevelRaftStore) => Promise<T>): Promise<T> {
  const store = await LevelRaftStore.open(dir);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** A raw LevelDB handle on a closed store's directory, to damage or inspect it. */
async function withRaw<T>(dir: string, fn: (db: Level<Buffer, Buffer>) => Promise<T>): Promise<T> {
  const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

const storedIndexes = (dir: string): Promise<number[]> =>
  withRaw(dir, async (db) => (await db.keys({ ...ENTRY_RANGE }).all()).map((k) => k.readUInt32BE(1) * 2 ** 32 + k.readUInt32BE(5)));

/** Asserts ERR_CORRUPT_STORE whose message names the directory and matches `problem`. */
async function rejectsCorrupt(action: Promise<unknown>, dir: string, problem: RegExp): Promise<void> {
  await assert.rejects(action, (err: unknown) => {
    assert.ok(err instanceof RaftError, `expected a RaftError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_CORRUPT_STORE');
    assert.ok(err.message.includes(dir), `message should name ${dir}: ${err.message}`);
    assert.match(err.message, problem);
    return true;
  });
}

const rejectsCode = (action: Promise<unknown>, code: string): Promise<void> =>
  assert.rejects(action, (err: unknown) => err instanceof RaftError && err.code === code);

test('crc32 matches the IEEE check value', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
});

describe('round trip', () => {
  test('entries, hard state, snapshot and meta come back as written, before and after reopening', async () => {
    const dir = freshDir();
    const conf: Entry = { term: 2, index: 5, type: 'conf', data: new Uint8Array([0, 255, 7]) };
    const expected = {
      hardState: hs(2, 4, 'b'),
      snapshot: snap(2, 1, 'app state'),
      entries: [entry(3, 1), entry(4, 2, ''), conf],
      meta: { clusterId: 'c-1', members: ['a', 'b'], created: 17 },
    };
    await withStore(dir, async (store) => {
      assert.deepEqual(await store.load(), { hardState: hs(0, 0, null), snapshot: null, entries: [], meta: null });
      await store.save({ entries: entries(1, 2, 1), hardState: hs(1, 0), snapshot: null }, true);
      await store.save({ entries: [entry(3, 1), entry(4, 2, ''), conf], hardState: expected.hardState, snapshot: expected.snapshot }, true);
      await store.saveMeta(expected.meta);
      const loaded = await store.load();
      assert.deepEqual(plain(loaded.entries), plain(expected.entries));
      assert.deepEqual(loaded.hardState, expected.hardState);
    });
    // Reopening reads only what is on disk.
    await withStore(dir, async (store) => {
      const loaded = await store.load();
      assert.deepEqual(loaded.hardState, expected.hardState);
      assert.deepEqual(loaded.meta, expected.meta);
      assert.deepEqual(loaded.snapshot?.meta, expected.snapshot.meta);
      assert.ok(loaded.snapshot?.data instanceof Uint8Array);
      assert.equal(Buffer.from(loaded.snapshot.data).toString(), 'app state');
      assert.deepEqual(plain(loaded.entries), plain(expected.entries));
      for (const e of loaded.entries) assert.ok(e.data instanceof Uint8Array);
      assert.equal(loaded.entries[2].type, 'conf');
    });
  });

  test('the data directory is created private to its owner', async () => {
    const dir = path.join(freshDir(), 'nested');
    await withStore(dir, async () => {});
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.dirname(dir)).mode & 0o777, 0o700, 'parents it creates too');
  });

  test('an existing data directory others may enter is narrowed to 0700, and its old mode reported', async () => {
    const dir = freshDir();
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    assert.equal(await ensurePrivateDir(dir), 0o755);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.equal(await ensurePrivateDir(dir), null, 'already private: nothing to report');
    fs.chmodSync(dir, 0o750);
    await withStore(dir, async () => {});
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700, 'open() narrows it as well');
  });

  test('indexes beyond 2^32 keep their numeric order across the 32-bit boundary', async () => {
    const dir = freshDir();
    const base = 2 ** 32 - 3;
    await withStore(dir, async (store) => {
      await store.save({ snapshot: snap(base, 7), entries: entries(base + 1, base + 5, 7), hardState: hs(7, base + 4) }, true);
    });
    await withStore(dir, async (store) => {
      const loaded = await store.load();
      assert.deepEqual(indexes(loaded.entries), [base + 1, base + 2, base + 3, base + 4, base + 5]);
    });
  });
});

describe('write rules', () => {
  test('an entry at index i replaces every stored entry >= i', async () => {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      await store.save({ entries: entries(1, 10, 1), hardState: hs(1, 3), snapshot: null }, true);
      await store.save({ entries: [entry(6, 2, 'new6'), entry(7, 2, 'new7')], hardState: hs(2, 3), snapshot: null }, true);
      const loaded = await store.load();
      assert.deepEqual(indexes(loaded.entries), [1, 2, 3, 4, 5, 6, 7]);
      assert.deepEqual(loaded.entries.map((e) => e.term), [1, 1, 1, 1, 1, 2, 2]);
      assert.equal(Buffer.from(loaded.entries[5].data).toString(), 'new6');
    });
    assert.deepEqual(await storedIndexes(dir), [1, 2, 3, 4, 5, 6, 7]);
    // A reopened store finds its bounds on disk: the next conflicting write still trims the tail.
    await withStore(dir, async (store) => {
      await store.save({ entries: [entry(5, 3)], hardState: hs(3, 3), snapshot: null }, true);
      assert.deepEqual(indexes((await store.load()).entries), [1, 2, 3, 4, 5]);
    });
  });

  test('save refuses entries that would leave a gap', async () => {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      await store.save({ entries: entries(1, 3, 1), hardState: hs(1, 0), snapshot: null }, true);
      await rejectsCode(store.save({ entries: [entry(5, 1)], hardState: null, snapshot: null }, true), 'ERR_INVARIANT');
      await rejectsCode(store.save({ entries: [entry(4, 1), entry(6, 1)], hardState: null, snapshot: null }, true), 'ERR_INVARIANT');
      assert.deepEqual(indexes((await store.load()).entries), [1, 2, 3]);
    });
  });

  test('a snapshot drops the entries it covers and keeps a matching suffix (Raft Figure 13)', async () => {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      await store.save({ entries: entries(1, 10, 1), hardState: hs(1, 5), snapshot: null }, true);
      await store.save({ entries: [], hardState: null, snapshot: snap(5, 1) }, true);
      const loaded = await store.load();
      assert.equal(loaded.snapshot?.meta.index, 5);
      assert.deepEqual(indexes(loaded.entries), [6, 7, 8, 9, 10]);
    });
    assert.deepEqual(await storedIndexes(dir), [6, 7, 8, 9, 10]);
  });

  test('a snapshot that contradicts the log discards the whole log; an older one is refused', async () => {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      await store.save({ entries: entries(1, 10, 1), hardState: hs(1, 5), snapshot: null }, true);
      // Entry 8 has term 1 here; a leader of term 3 sends a snapshot ending at 8 in term 3.
      await store.save({ entries: [], hardState: hs(3, 8), snapshot: snap(8, 3) }, true);
      const loaded = await store.load();
      assert.deepEqual(loaded.entries, []);
      assert.deepEqual(loaded.snapshot?.meta.index, 8);
      await rejectsCode(store.save({ entries: [], hardState: null, snapshot: snap(7, 3) }, true), 'ERR_SNAP_OUT_OF_DATE');
    });
    assert.deepEqual(await storedIndexes(dir), []);
  });

  test('compact deletes covered entries and refuses to pass the snapshot', async () => {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      await store.save({ entries: entries(1, 10, 1), hardState: hs(1, 8), snapshot: null }, true);
      await rejectsCode(store.compact(3), 'ERR_INVARIANT'); // no snapshot yet
      await store.saveSnapshot(snap(6, 1));
      assert.deepEqual(indexes((await store.load()).entries), [7, 8, 9, 10]);
      await store.compact(4);
      await rejectsCode(store.compact(7), 'ERR_INVARIANT');
    });
    assert.deepEqual(await storedIndexes(dir), [5, 6, 7, 8, 9, 10]);
    await withStore(dir, async (store) => {
      await store.compact(6);
      const loaded = await store.load();
      assert.deepEqual(indexes(loaded.entries), [7, 8, 9, 10]);
      assert.equal(loaded.snapshot?.meta.index, 6);
    });
    assert.deepEqual(await storedIndexes(dir), [7, 8, 9, 10]);
  });

  test('compaction gives the deleted entries\' bytes back: the directory stays near its live size', async () => {
    // An agent at idle appends a few renewals a second forever and compacts behind each snapshot.
    // Tombstones alone would leave every byte ever written on disk until LevelDB's own compaction
    // got round to them; the store reclaims the range at once.
    const dir = freshDir();
    const roundEntries = 400;
    const text = 'r'.repeat(300); // about the size of a lease renewal
    const rounds = 30; // 30 x 400 x 300 B = 3.6 MB written, under LevelDB's 4 MiB write buffer
    await withStore(dir, async (store) => {
      for (let round = 0; round < rounds; round++) {
        const from = round * roundEntries + 1;
        const to = from + roundEntries - 1;
        const batch = Array.from({ length: roundEntries }, (_, k) => entry(from + k, 1, text));
        await store.save({ entries: batch, hardState: hs(1, to), snapshot: null }, true);
        await store.saveSnapshot(snap(to, 1, 's'.repeat(2_000)));
        await store.compact(to);
      }
      await store.settled();
    });
    const bytes = fs.readdirSync(dir).reduce((sum, name) => sum + fs.statSync(path.join(dir, name)).size, 0);
    assert.ok(bytes < 200_000, `the store directory holds ${bytes} bytes after 3.6 MB written and all of it compacted away`);
  });
});

describe('corruption is reported, never loaded', () => {
  /** A closed store at `dir` with a snapshot at 2, entries 3..8 of term 1 and commit 6. */
  async function healthyStore(): Promise<string> {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      await store.save({ entries: entries(1, 8, 1), hardState: hs(1, 6), snapshot: null }, true);
      await store.save({ entries: [], hardState: null, snapshot: snap(2, 1) }, true);
      assert.deepEqual(indexes((await store.load()).entries), [3, 4, 5, 6, 7, 8]);
    });
    return dir;
  }
  const loadFrom = (dir: string): Promise<unknown> => withStore(dir, (store) => store.load());

  test('a flipped byte in a stored value fails its checksum', async () => {
    const dir = await healthyStore();
    await withRaw(dir, async (db) => {
      const value = Buffer.from(await db.get(entryKey(5)));
      value[value.length - 2] ^= 0x01;
      await db.put(entryKey(5), value);
    });
    await rejectsCorrupt(loadFrom(dir), dir, /log entry 5: checksum mismatch/);
  });

  test('a value with a valid checksum but an undecodable payload', async () => {
    const dir = await healthyStore();
    const body = Buffer.from([0x93, 0x01]); // a 3-element array cut short
    const value = Buffer.alloc(4 + body.length);
    value.writeUInt32BE(crc32(body), 0);
    body.copy(value, 4);
    await withRaw(dir, (db) => db.put(entryKey(4), value));
    await rejectsCorrupt(loadFrom(dir), dir, /log entry 4: MessagePack payload does not decode/);
  });

  test('a missing middle entry is a gap', async () => {
    const dir = await healthyStore();
    await withRaw(dir, (db) => db.del(entryKey(5)));
    await rejectsCorrupt(loadFrom(dir), dir, /gap in the log: entry 4 is followed by entry 6/);
  });

  test('an entry stored under another index', async () => {
    const dir = await healthyStore();
    await withRaw(dir, (db) => db.put(entryKey(5), encodeEntry(entry(6, 1))));
    await rejectsCorrupt(loadFrom(dir), dir, /stored under log index 5 says it is index 6/);
  });

  test('terms going down along the log', async () => {
    const dir = await healthyStore();
    await withRaw(dir, async (db) => {
      await db.put(HARD_STATE_KEY, encodeHardState(hs(2, 6)));
      await db.put(entryKey(6), encodeEntry(entry(6, 2)));
    });
    await rejectsCorrupt(loadFrom(dir), dir, /terms go down along the log: entry 7 has term 1 after term 2 at entry 6/);
  });

  test('a log that does not start right after the snapshot', async () => {
    const dir = await healthyStore();
    await withRaw(dir, (db) => db.del(entryKey(3)));
    await rejectsCorrupt(loadFrom(dir), dir, /log starts at entry 4 but the snapshot ends at index 2/);
  });

  test('commit beyond the last index', async () => {
    const dir = await healthyStore();
    await withRaw(dir, (db) => db.put(HARD_STATE_KEY, encodeHardState(hs(1, 9))));
    await rejectsCorrupt(loadFrom(dir), dir, /commit 9 is beyond the last index 8/);
  });

  test('hard state term below the last entry term', async () => {
    const dir = await healthyStore();
    await withRaw(dir, (db) => db.put(entryKey(8), encodeEntry(entry(8, 4))));
    await rejectsCorrupt(loadFrom(dir), dir, /hard state term 1 is below term 4 of the last log entry 8/);
  });

  test('snapshot metadata without its data', async () => {
    const dir = await healthyStore();
    await withRaw(dir, (db) => db.del(Buffer.from([0x03])));
    await rejectsCorrupt(loadFrom(dir), dir, /snapshot metadata is stored without snapshot data/);
  });

  for (const file of ['CURRENT', 'MANIFEST']) {
    test(`garbage in LevelDB's ${file} file fails the open with ERR_CORRUPT_STORE`, async () => {
      const dir = await healthyStore();
      const name = fs.readdirSync(dir).find((n) => n.startsWith(file));
      assert.ok(name, `no ${file} file in ${dir}`);
      fs.writeFileSync(path.join(dir, name), 'this is not a LevelDB file\n');
      await rejectsCorrupt(LevelRaftStore.open(dir), dir, /LevelDB refused to open it/);
    });
  }

  test('a lost CURRENT file is not taken for an empty store', async () => {
    const dir = await healthyStore();
    fs.rmSync(path.join(dir, 'CURRENT'));
    await rejectsCorrupt(LevelRaftStore.open(dir), dir, /CURRENT file is missing/);
  });
});

test('acknowledged synced writes survive SIGKILL', { timeout: 60_000 }, async () => {
  const dir = freshDir();
  const fixture = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));
  const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });

  let out = '';
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
  // Kill ~300 ms after the first acknowledgement, so the kill lands mid-stream, not during startup.
  child.stdout.on('data', (chunk: Buffer) => {
    if (out === '') setTimeout(() => child.kill('SIGKILL'), 300);
    out += chunk.toString();
  });
  const signal = await exited;
  assert.equal(signal, 'SIGKILL', `writer ended on its own before being killed: ${err}`);

  // Only complete lines are acknowledgements; a line cut by the kill proves nothing.
  const acks = out.split('\n').slice(0, -1).map((line) => line.split(' ').map(Number));
  assert.ok(acks.length >= 5, `too few acknowledged writes to test anything (${acks.length}): ${err}`);
  const [lastIndex, lastTerm, lastCommit] = acks[acks.length - 1];

  await withStore(dir, async (store) => {
    const loaded = await store.load(); // validates: no gap, terms, commit, checksums
    const snapIndex = loaded.snapshot?.meta.index ?? 0;
    const byIndex = new Map(loaded.entries.map((e) => [e.index, e]));
    for (const [index, term] of acks) {
      if (index <= snapIndex) continue;
      const stored = byIndex.get(index);
      assert.ok(stored, `acknowledged entry ${index} is missing after the crash`);
      // A later, unacknowledged rewrite may have raised its term; it cannot have lowered it.
      assert.ok(stored.term >= term, `entry ${index} has term ${stored.term}, acknowledged with ${term}`);
    }
    const storedLast = loaded.entries.at(-1)?.index ?? snapIndex;
    assert.ok(storedLast >= lastIndex, `log ends at ${storedLast}, but ${lastIndex} was acknowledged`);
    assert.ok(loaded.hardState.term >= lastTerm);
    assert.ok(loaded.hardState.commit >= lastCommit);
  });
});
