// Value encoding of the Raft store: a 4-byte big-endian CRC-32 of the payload, then the payload
// as plain MessagePack. Decoders check the checksum first and then the shape, so a damaged or
// foreign value is reported as such instead of flowing into the Raft core as a wrong number.
import { Packr } from 'msgpackr';
import type { Entry, HardState, SnapshotMeta } from '../raft/core/types.ts';
import { crc32 } from './crc32.ts';

// Records off: the on-disk format stays standard MessagePack, readable by any decoder, and does
// not depend on msgpackr's record extension.
const packr = new Packr({ useRecords: false });

const CRC_LENGTH = 4;

/** Thrown by the decoders; the store adds the directory and the key (it alone knows them). */
export class BadValueError extends Error {
  override name = 'BadValueError';
}

function seal(payload: unknown): Buffer {
  const body = packr.pack(payload);
  const value = Buffer.allocUnsafe(CRC_LENGTH + body.length);
  value.writeUInt32BE(crc32(body), 0);
  value.set(body, CRC_LENGTH);
  return value;
}

function unseal(value: Uint8Array): unknown {
  if (value.length < CRC_LENGTH + 1) throw new BadValueError(`value is ${value.length} bytes, too short to hold a checksum and a payload`);
  const buf = Buffer.from(value.buffer, value.byteOffset, value.length);
  const stored = buf.readUInt32BE(0);
  const body = buf.subarray(CRC_LENGTH);
  const computed = crc32(body);
  if (stored !== computed) throw new BadValueError(`checksum mismatch (stored ${hex(stored)}, computed ${hex(computed)})`);
  try {
    return packr.unpack(body);
  } catch (err) {
    throw new BadValueError(`MessagePack payload does not decode: ${(err as Error).message}`);
  }
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

function expect(condition: boolean, what: string): asserts condition {
  if (!condition) throw new BadValueError(`payload is not ${what}`);
}

// Entries are the bulk of the store, so they are tuples rather than maps: a map would repeat the
// field names in every entry. The type is a small code for the same reason.
const ENTRY_TYPES = ['normal', 'conf'] as const;

export function encodeEntry(e: Entry): Buffer {
  return seal([e.term, e.index, ENTRY_TYPES.indexOf(e.type), e.data]);
}

export function decodeEntry(value: Uint8Array): Entry {
  const v = unseal(value);
  expect(Array.isArray(v) && v.length === 4, 'a log entry [term, index, type, data]');
  const [term, index, type, data] = v as unknown[];
  expect(isCount(term) && isCount(index) && index > 0, 'a log entry with a valid term and index');
  expect(type === 0 || type === 1, 'a log entry of a known type');
  expect(data instanceof Uint8Array, 'a log entry with binary data');
  return { term, index, type: ENTRY_TYPES[type], data };
}

export function encodeHardState(hs: HardState): Buffer {
  return seal({ term: hs.term, vote: hs.vote, commit: hs.commit });
}

export function decodeHardState(value: Uint8Array): HardState {
  const v = unseal(value);
  expect(isRecord(v) && isCount(v.term) && isCount(v.commit) && (v.vote === null || typeof v.vote === 'string'), 'a hard state {term, vote, commit}');
  return { term: v.term as number, vote: v.vote as string | null, commit: v.commit as number };
}

export function encodeSnapshotMeta(meta: SnapshotMeta): Buffer {
  return seal({ index: meta.index, term: meta.term, conf: { voters: meta.conf.voters, learners: meta.conf.learners } });
}

export function decodeSnapshotMeta(value: Uint8Array): SnapshotMeta {
  const v = unseal(value);
  expect(isRecord(v) && isCount(v.index) && isCount(v.term), 'snapshot metadata {index, term, conf}');
  const conf = v.conf;
  expect(isRecord(conf) && isStringArray(conf.voters) && isStringArray(conf.learners), 'a snapshot configuration {voters, learners}');
  return { index: v.index as number, term: v.term as number, conf: { voters: conf.voters, learners: conf.learners } };
}

export function encodeBytes(data: Uint8Array): Buffer {
  return seal(data);
}

export function decodeBytes(value: Uint8Array): Uint8Array {
  const v = unseal(value);
  expect(v instanceof Uint8Array, 'binary data');
  return v;
}

export function encodeMeta(meta: Record<string, unknown>): Buffer {
  return seal(meta);
}

export function decodeMeta(value: Uint8Array): Record<string, unknown> {
  const v = unseal(value);
  expect(isRecord(v), 'a metadata map');
  return v;
}
