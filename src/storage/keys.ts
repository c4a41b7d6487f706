// Key layout of the Raft store. One byte of prefix says what a key holds; log entries add the
// index as 8 bytes big-endian so that LevelDB's bytewise order is numeric order, which lets the
// store find the first and last entry with a one-key iterator and scan the log in index order.

export const HARD_STATE_KEY = Buffer.from([0x01]);
export const SNAPSHOT_META_KEY = Buffer.from([0x02]);
/** Kept apart from the metadata so reading the snapshot's index and term never loads its data. */
export const SNAPSHOT_DATA_KEY = Buffer.from([0x03]);
export const META_KEY = Buffer.from([0x04]);

const ENTRY_PREFIX = 0x10;
const ENTRY_KEY_LENGTH = 9;
const TWO_POW_32 = 2 ** 32;

/** Bounds that contain exactly the log entry keys: [ENTRY_RANGE.gte, ENTRY_RANGE.lt). */
export const ENTRY_RANGE = { gte: Buffer.from([ENTRY_PREFIX]), lt: Buffer.from([ENTRY_PREFIX + 1]) };

export function entryKey(index: number): Buffer {
  const key = Buffer.alloc(ENTRY_KEY_LENGTH);
  key[0] = ENTRY_PREFIX;
  // Two 32-bit halves: indexes stay below 2^53, so no BigInt is needed on this hot path.
  key.writeUInt32BE(Math.floor(index / TWO_POW_32), 1);
  key.writeUInt32BE(index >>> 0, 5);
  return key;
}

/** The index a log entry key stands for, or null when the key is malformed. */
export function entryIndexOf(key: Uint8Array): number | null {
  if (key.length !== ENTRY_KEY_LENGTH || key[0] !== ENTRY_PREFIX) return null;
  const buf = Buffer.from(key.buffer, key.byteOffset, key.length);
  const index = buf.readUInt32BE(1) * TWO_POW_32 + buf.readUInt32BE(5);
  return Number.isSafeInteger(index) ? index : null;
}
