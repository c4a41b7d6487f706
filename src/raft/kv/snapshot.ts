// The snapshot format of the key-value state machine: every key, the revision, the applied index,
// the session table and the leases. Canonical: the same state always encodes to the same bytes (keys
// and leases sorted, sessions in least-recently-used order, tuples in fixed field order), which is what lets the
// determinism tests compare replicas byte for byte. Decoding checks everything and fails with
// ERR_CORRUPT_STORE; a snapshot can come from disk or from a peer (MsgSnap).
import { KV_ERROR_CODES, MAX_CLIENT_ID_BYTES, MAX_LEASE_ID_BYTES, MAX_LEASE_TTL_MS } from './commands.ts';
import type { KeyValue, KvResult, LeaseInfo } from './commands.ts';
import { expectArray, expectBool, expectInt, expectOneOf, expectRecord, expectString, failWith, pack, unpack } from './codec.ts';
import type { Fail } from './codec.ts';

const FORMAT = 'conclave-kv';
/** 2: keys carry their lease, and the leases are listed. A version 1 snapshot is refused. */
const FORMAT_VERSION = 2;

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
  /** Sorted by id; each lists its keys sorted, and exactly the keys whose `lease` names it. */
  leases: LeaseInfo[];
}

type KvTuple = [key: string, value: string, createRevision: number, modRevision: number, version: number, lease: string | null];

const kvTuple = (kv: KeyValue): KvTuple => [kv.key, kv.value, kv.createRevision, kv.modRevision, kv.version, kv.lease];

function resultTuple(r: KvResult): unknown[] {
  switch (r.type) {
    case 'put': return [r.type, r.revision, r.prev === null ? null : kvTuple(r.prev)];
    case 'delete': return [r.type, r.revision, r.deleted];
    case 'cas': return [r.type, r.succeeded, r.revision, r.current === null ? null : kvTuple(r.current)];
    case 'deletePrefix': return [r.type, r.revision, r.deleted];
    case 'leaseGrant': return [r.type, r.revision, r.lease, r.ttlMs, r.renewals];
    case 'leaseKeepAlive': return [r.type, r.revision, r.lease, r.found, r.ttlMs, r.renewals];
    case 'leaseRevoke': return [r.type, r.revision, r.lease, r.revoked, r.deleted];
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
    leases: state.leases.map((l) => [l.lease, l.ttlMs, l.renewals, l.keys]),
  });
}

const fail = failWith('ERR_CORRUPT_STORE', 'kv snapshot');

export function decodeSnapshot(data: Uint8Array): KvState {
  const raw = expectRecord(unpack(data, 'ERR_CORRUPT_STORE', 'kv snapshot'), 'snapshot',
    ['format', 'version', 'appliedIndex', 'revision', 'kvs', 'sessions', 'leases'], fail);
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
  return { appliedIndex, revision, kvs, sessions, leases: decodeLeases(raw.leases, kvs) };
}

/**
 * The lease list, checked against the keys: a lease lists exactly the keys whose `lease` field
 * names it. The state machine trusts that agreement (a revoke deletes what the lease lists), so a
 * snapshot breaking it is corrupt.
 */
function decodeLeases(value: unknown, kvs: readonly KeyValue[]): LeaseInfo[] {
  const byKey = new Map(kvs.map((kv) => [kv.key, kv]));
  const leases: LeaseInfo[] = [];
  const listed = new Set<string>();
  expectArray(value, 'snapshot.leases', fail).forEach((t, i) => {
    const field = `snapshot.leases[${i}]`;
    const [rawId, rawTtl, rawRenewals, rawKeys] = expectArray(t, field, fail, 4);
    const lease = expectString(rawId, `${field}.lease`, fail, { nonEmpty: true, maxBytes: MAX_LEASE_ID_BYTES });
    if (i > 0 && !(leases[i - 1].lease < lease)) fail(`${field}.lease`, 'is out of order or duplicated');
    const ttlMs = expectInt(rawTtl, `${field}.ttlMs`, fail, 1, MAX_LEASE_TTL_MS);
    const renewals = expectInt(rawRenewals, `${field}.renewals`, fail);
    const keys = expectArray(rawKeys, `${field}.keys`, fail).map((k, j) => {
      const key = expectString(k, `${field}.keys[${j}]`, fail);
      if (byKey.get(key)?.lease !== lease) fail(`${field}.keys[${j}]`, 'is not a key attached to this lease');
      return key;
    });
    keys.forEach((key, j) => {
      if (j > 0 && !(keys[j - 1] < key)) fail(`${field}.keys[${j}]`, 'is out of order or duplicated');
    });
    for (const key of keys) listed.add(key);
    leases.push(Object.freeze({ lease, ttlMs, renewals, keys: Object.freeze(keys) }));
  });
  // Each listed key names the lease listing it, so a key is listed by at most one lease; what is
  // left to check is that no key names a lease that leaves it out (or does not exist).
  const unlisted = kvs.findIndex((kv) => kv.lease !== null && !listed.has(kv.key));
  if (unlisted >= 0) fail(`snapshot.kvs[${unlisted}].lease`, 'names a lease that does not list the key');
  return leases;
}

function decodeKv(value: unknown, field: string, revision: number, onFail: Fail): KeyValue {
  const [key, v, create, mod, version, lease] = expectArray(value, field, onFail, 6);
  const kv = {
    key: expectString(key, `${field}.key`, onFail, { nonEmpty: true }),
    value: expectString(v, `${field}.value`, onFail),
    createRevision: expectInt(create, `${field}.createRevision`, onFail, 1),
    modRevision: expectInt(mod, `${field}.modRevision`, onFail, 1),
    version: expectInt(version, `${field}.version`, onFail, 1),
    lease: lease === null ? null : expectString(lease, `${field}.lease`, onFail, { nonEmpty: true, maxBytes: MAX_LEASE_ID_BYTES }),
  };
  if (kv.createRevision > kv.modRevision) onFail(`${field}.createRevision`, 'is after modRevision');
  if (kv.modRevision > revision) onFail(`${field}.modRevision`, 'is after the store revision');
  return Object.freeze(kv);
}

const RESULT_TYPES = ['put', 'delete', 'cas', 'deletePrefix', 'leaseGrant', 'leaseKeepAlive', 'leaseRevoke', 'error'] as const;

function decodeResult(value: unknown, field: string, revision: number): KvResult {
  const t = expectArray(value, field, fail);
  const type = expectOneOf(t[0], `${field}.type`, RESULT_TYPES, fail);
  const rev = (v: unknown, f: string): number => {
    const r = expectInt(v, f, fail);
    if (r > revision) fail(f, 'is after the store revision');
    return r;
  };
  const kvOrNull = (v: unknown, f: string): KeyValue | null => (v === null ? null : decodeKv(v, f, revision, fail));
  // A result records the lease as it was then (it may be revoked since): checked alone, not against the table.
  const lease = (v: unknown): string => expectString(v, `${field}.lease`, fail, { nonEmpty: true, maxBytes: MAX_LEASE_ID_BYTES });
  const ttl = (v: unknown): number => expectInt(v, `${field}.ttlMs`, fail, type === 'leaseKeepAlive' ? 0 : 1, MAX_LEASE_TTL_MS);
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
    case 'leaseGrant': {
      expectArray(t, field, fail, 5);
      return Object.freeze({
        type,
        revision: rev(t[1], `${field}.revision`),
        lease: lease(t[2]),
        ttlMs: ttl(t[3]),
        renewals: expectInt(t[4], `${field}.renewals`, fail),
      });
    }
    case 'leaseKeepAlive': {
      expectArray(t, field, fail, 6);
      return Object.freeze({
        type,
        revision: rev(t[1], `${field}.revision`),
        lease: lease(t[2]),
        found: expectBool(t[3], `${field}.found`, fail),
        ttlMs: ttl(t[4]),
        renewals: expectInt(t[5], `${field}.renewals`, fail),
      });
    }
    case 'leaseRevoke': {
      expectArray(t, field, fail, 5);
      return Object.freeze({
        type,
        revision: rev(t[1], `${field}.revision`),
        lease: lease(t[2]),
        revoked: expectBool(t[3], `${field}.revoked`, fail),
        deleted: expectInt(t[4], `${field}.deleted`, fail),
      });
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
