// The snapshot format of the key-value state machine: every key, the revision, the applied index
// and the session table. Canonical: the same state always encodes to the same bytes (keys sorted,
// sessions in least-recently-used order, tuples in fixed field order), which is what lets the
// determinism tests compare replicas byte for byte. Decoding checks everything and fails with
// ERR_CORRUPT_STORE; a snapshot can come from disk or from a peer (MsgSnap).
import { KV_ERROR_CODES, MAX_CLIENT_ID_BYTES } from './commands.ts';
import type { KeyValue, KvResult } from './commands.ts';
import { expectArray, expectBool, expectInt, expectOneOf, expectRecord, expectString, failWith, pack, unpack } from './codec.ts';
import type { Fail } from './codec.ts';

const FORMAT = 'conclave-kv';
const FORMAT_VERSION = 1;

/** The latest command applied for one client, and when, for exactly-once retries (thesis §6.3). */
export interface Session {
  readonly seq: number;
  readonly result: KvResult;
  /** Index of the last entry that touched the session; orders eviction. */
  readonly lastIndex: number;
}

export interface KvState {
  appliedIndex: number;
  revision: number;
  /** Sorted by key. */
  kvs: KeyValue[];
  /** Ordered by lastIndex, least recently used first. */
  sessions: [clientId: string, session: Session][];
}

type KvTuple = [key: string, value: string, createRevision: number, modRevision: number, version: number];

const kvTuple = (kv: KeyValue): KvTuple => [kv.key, kv.value, kv.createRevision, kv.modRevision, kv.version];

function resultTuple(r: KvResult): unknown[] {
  switch (r.type) {
    case 'put': return [r.type, r.revision, r.prev === null ? null : kvTuple(r.prev)];
    case 'delete': return [r.type, r.revision, r.deleted];
    case 'cas': return [r.type, r.succeeded, r.revision, r.current === null ? null : kvTuple(r.current)];
    case 'deletePrefix': return [r.type, r.revision, r.deleted];
    case 'error': return [r.type, r.error, r.message];
  }
}

export function encodeSnapshot(state: KvState): Uint8Array {
  return pack({
    format: FORMAT,
    version: FORMAT_VERSION,
    appliedIndex: state.appliedIndex,
    revision: state.revision,
    kvs: state.kvs.map(kvTuple),
    sessions: state.sessions.map(([clientId, s]) => [clientId, s.seq, s.lastIndex, resultTuple(s.result)]),
  });
}

const fail = failWith('ERR_CORRUPT_STORE', 'kv snapshot');

export function decodeSnapshot(data: Uint8Array): KvState {
  const raw = expectRecord(unpack(data, 'ERR_CORRUPT_STORE', 'kv snapshot'), 'snapshot',
    ['format', 'version', 'appliedIndex', 'revision', 'kvs', 'sessions'], fail);
  if (raw.format !== FORMAT) fail('snapshot.format', `must be ${FORMAT}`);
  if (raw.version !== FORMAT_VERSION) fail('snapshot.version', `must be ${FORMAT_VERSION}`);
  const appliedIndex = expectInt(raw.appliedIndex, 'snapshot.appliedIndex', fail);
  const revision = expectInt(raw.revision, 'snapshot.revision', fail);

  const kvs: KeyValue[] = [];
  expectArray(raw.kvs, 'snapshot.kvs', fail).forEach((t, i) => {
    const kv = decodeKv(t, `snapshot.kvs[${i}]`, revision, fail);
    // Strictly ascending keys: sorted (range relies on it) and no duplicates.
    if (i > 0 && !(kvs[i - 1].key < kv.key)) fail(`snapshot.kvs[${i}].key`, 'is out of order or duplicated');
    kvs.push(kv);
  });

  const sessions: [string, Session][] = [];
  const seen = new Set<string>();
  let lastIndex = 0;
  expectArray(raw.sessions, 'snapshot.sessions', fail).forEach((t, i) => {
    const field = `snapshot.sessions[${i}]`;
    const [rawId, rawSeq, rawLast, rawResult] = expectArray(t, field, fail, 4);
    const clientId = expectString(rawId, `${field}.clientId`, fail, { nonEmpty: true, maxBytes: MAX_CLIENT_ID_BYTES });
    if (seen.has(clientId)) fail(`${field}.clientId`, 'is duplicated');
    seen.add(clientId);
    const seq = expectInt(rawSeq, `${field}.seq`, fail, 1);
    const last = expectInt(rawLast, `${field}.lastIndex`, fail, lastIndex + 1);
    if (last > appliedIndex) fail(`${field}.lastIndex`, 'is beyond appliedIndex');
    lastIndex = last;
    const result = decodeResult(rawResult, `${field}.result`, revision);
    sessions.push([clientId, Object.freeze({ seq, result, lastIndex: last })]);
  });
  return { appliedIndex, revision, kvs, sessions };
}

function decodeKv(value: unknown, field: string, revision: number, onFail: Fail): KeyValue {
  const [key, v, create, mod, version] = expectArray(value, field, onFail, 5);
  const kv = {
    key: expectString(key, `${field}.key`, onFail, { nonEmpty: true }),
    value: expectString(v, `${field}.value`, onFail),
    createRevision: expectInt(create, `${field}.createRevision`, onFail, 1),
    modRevision: expectInt(mod, `${field}.modRevision`, onFail, 1),
    version: expectInt(version, `${field}.version`, onFail, 1),
  };
  if (kv.createRevision > kv.modRevision) onFail(`${field}.createRevision`, 'is after modRevision');
  if (kv.modRevision > revision) onFail(`${field}.modRevision`, 'is after the store revision');
  return Object.freeze(kv);
}

function decodeResult(value: unknown, field: string, revision: number): KvResult {
  const t = expectArray(value, field, fail);
  const type = expectOneOf(t[0], `${field}.type`, ['put', 'delete', 'cas', 'deletePrefix', 'error'] as const, fail);
  const rev = (v: unknown, f: string): number => {
    const r = expectInt(v, f, fail);
    if (r > revision) fail(f, 'is after the store revision');
    return r;
  };
  const kvOrNull = (v: unknown, f: string): KeyValue | null => (v === null ? null : decodeKv(v, f, revision, fail));
  switch (type) {
    case 'put': {
      expectArray(t, field, fail, 3);
      return Object.freeze({ type, revision: rev(t[1], `${field}.revision`), prev: kvOrNull(t[2], `${field}.prev`) });
    }
    case 'delete': {
      expectArray(t, field, fail, 3);
      return Object.freeze({ type, revision: rev(t[1], `${field}.revision`), deleted: expectBool(t[2], `${field}.deleted`, fail) });
    }
    case 'cas': {
      expectArray(t, field, fail, 4);
      return Object.freeze({
        type,
        succeeded: expectBool(t[1], `${field}.succeeded`, fail),
        revision: rev(t[2], `${field}.revision`),
        current: kvOrNull(t[3], `${field}.current`),
      });
    }
    case 'deletePrefix': {
      expectArray(t, field, fail, 3);
      return Object.freeze({ type, revision: rev(t[1], `${field}.revision`), deleted: expectInt(t[2], `${field}.deleted`, fail) });
    }
    case 'error': {
      expectArray(t, field, fail, 3);
      return Object.freeze({
        type,
        error: expectOneOf(t[1], `${field}.error`, KV_ERROR_CODES, fail),
        message: expectString(t[2], `${field}.message`, fail),
      });
    }
  }
}
