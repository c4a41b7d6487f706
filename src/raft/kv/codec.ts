// The msgpack codec and the field checkers shared by the command and snapshot formats. Both formats
// are read from outside the process (proposals from the network, snapshots from disk or a peer),
// so nothing decoded is trusted until a checker has looked at every field.
import { Packr, Unpackr } from 'msgpackr';
import { RaftError } from '../core/errors.ts';
import type { RaftErrorCode } from '../core/errors.ts';

// Records off (a msgpackr extension other decoders cannot read); structured clone off so that
// decoding never builds shared or cyclic references. The unpacker is stateless between calls in
// this mode (record definitions in one message do not outlive it), so every replica decodes an
// entry the same way whatever it decoded before.
const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false });

/** Encodes plain data; the caller builds objects in a fixed field order so the bytes are canonical. */
export function pack(value: unknown): Uint8Array {
  // Copy: msgpackr hands out views of its shared buffer, and callers keep these bytes.
  return new Uint8Array(packr.pack(value));
}

/** Decodes msgpack, turning any decoder failure into a coded error that names `what`. */
export function unpack(data: Uint8Array, code: RaftErrorCode, what: string): unknown {
  if (!(data instanceof Uint8Array)) throw new RaftError(code, `${what}: expected bytes`);
  try {
    // A fresh view of the same bytes: msgpackr caches a DataView as a property on what it reads,
    // and the caller's array (a log entry, a snapshot) should come back as it was given.
    return unpackr.unpack(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  } catch (cause) {
    // The message stays fixed (the decoder's own wording may change between versions); the
    // detail travels in `cause`.
    throw new RaftError(code, `${what}: not valid msgpack`, { cause });
  }
}

/** Reports a bad field; `field` is a path such as `command.key`. */
export type Fail = (field: string, problem: string) => never;

export const failWith = (code: RaftErrorCode, what: string): Fail => (field, problem) => {
  throw new RaftError(code, `${what}: ${field} ${problem}`);
};

/** A plain msgpack map with exactly the given keys: none missing, none extra. */
export function expectRecord(value: unknown, field: string, keys: readonly string[], fail: Fail): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) {
    fail(field, 'must be a map');
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!keys.includes(key)) fail(`${field}.${key}`, 'is not a known field');
  }
  for (const key of keys) {
    if (!Object.hasOwn(record, key)) fail(`${field}.${key}`, 'is missing');
  }
  return record;
}

export function expectArray(value: unknown, field: string, fail: Fail, length?: number): unknown[] {
  if (!Array.isArray(value)) fail(field, 'must be an array');
  if (length !== undefined && value.length !== length) fail(field, `must have ${length} elements`);
  return value;
}

/** A safe integer in [min, max]. Rejects floats, NaN, bigints (msgpack int64 beyond 2^53) and strings. */
export function expectInt(value: unknown, field: string, fail: Fail, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail(field, 'must be an integer');
  if (value < min) fail(field, `must be >= ${min}`);
  if (value > max) fail(field, `must be <= ${max}`);
  // msgpack has no -0, but a float64 -0 would decode as one and compare equal to 0; normalise.
  return value + 0;
}

export function expectBool(value: unknown, field: string, fail: Fail): boolean {
  if (typeof value !== 'boolean') fail(field, 'must be a boolean');
  return value;
}

/**
 * A well-formed Unicode string (no lone surrogates: they have no UTF-8 form, so their byte length
 * and round trip through msgpack would be ill-defined).
 */
export function expectString(value: unknown, field: string, fail: Fail, opts: { nonEmpty?: boolean; maxBytes?: number } = {}): string {
  if (typeof value !== 'string') fail(field, 'must be a string');
  const bytes = utf8Length(value);
  if (bytes < 0) fail(field, 'is not well-formed Unicode');
  if (opts.nonEmpty === true && bytes === 0) fail(field, 'must not be empty');
  if (opts.maxBytes !== undefined && bytes > opts.maxBytes) fail(field, `is ${bytes} bytes, limit ${opts.maxBytes}`);
  return value;
}

export function expectOneOf<T extends string>(value: unknown, field: string, allowed: readonly T[], fail: Fail): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    fail(field, `must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** UTF-8 length of `s`, or -1 if it holds a lone surrogate. Pure (no TextEncoder needed). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return -1;
      n += 4;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return -1;
    else n += 3;
  }
  return n;
}
