// Commands of the replicated key-value store and the results of applying them. The model is etcd
// v3's (mvcc/kvstore.go): one global revision, and per key createRevision, modRevision, version.
// A command travels as msgpack in a Raft entry; proposals come from the network, so decoding
// checks every field and names the bad one.
//
// Leases follow etcd v3's (lease/lessor.go) with one difference that keeps the state machine free of
// time: a lease here never expires by itself. The Raft leader counts down each lease's TTL on its
// own monotonic clock and, when it runs out, proposes a leaseRevoke; a new leader restarts every
// countdown. So the replicated state holds only the TTL, a renewal counter and the attached keys.
import { expectInt, expectOneOf, expectRecord, expectString, failWith, pack, unpack, utf8Length } from './codec.ts';

/** etcd's defaults are 1.5 MiB per request; ours are per field, which is what Patroni needs. */
export const MAX_KEY_BYTES = 1024;
export const MAX_VALUE_BYTES = 1024 * 1024;
/** Bounds the memory one session costs; a structural limit, so a longer id is a bad message. */
export const MAX_CLIENT_ID_BYTES = 256;
/** Lease ids are bookkeeping like client ids: a structural limit, checked when decoding. */
export const MAX_LEASE_ID_BYTES = 256;
/** An hour: longer than any HA loop needs, short enough that a forgotten lease does go. */
export const MAX_LEASE_TTL_MS = 3_600_000;

/** A key as stored. Objects handed out by the state machine are frozen: they are shared with its state. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
  /** Revision of the write that created the key (since its last deletion). */
  readonly createRevision: number;
  /** Revision of the last write to the key. */
  readonly modRevision: number;
  /** Writes since creation: 1 after the creating write; a deletion ends the key's life. */
  readonly version: number;
  /** The lease the key is attached to (revoking it deletes the key), or null. */
  readonly lease: string | null;
}

/** A lease as the state machine holds it; what the leader needs to (re)start its countdown. */
export interface LeaseInfo {
  readonly lease: string;
  readonly ttlMs: number;
  /** Grants of an existing lease plus keep-alives; lets a revoke lose to a renewal that beat it. */
  readonly renewals: number;
  /** Attached keys, sorted (UTF-16 code unit order, like the store's keys). */
  readonly keys: readonly string[];
}

/**
 * `lease` attaches the key to that lease (it must exist); without it the key is attached to none,
 * whatever it was attached to before (etcd's Put does the same). Omit the field rather than set it
 * to undefined: the decoder accepts only a string there.
 */
export interface PutOp {
  readonly type: 'put';
  readonly key: string;
  readonly value: string;
  readonly lease?: string;
}

export interface DeleteOp {
  readonly type: 'delete';
  readonly key: string;
}

/**
 * Compare-and-set on modRevision (etcd Txn with a mod_revision compare). `expectRevision` 0 means
 * "the key must not exist"; `value` null means delete. `lease` as for put, and only with a value.
 */
export interface CasOp {
  readonly type: 'cas';
  readonly key: string;
  readonly expectRevision: number;
  readonly value: string | null;
  readonly lease?: string;
}

/** Deletes every key starting with `prefix`; the empty prefix deletes every key. */
export interface DeletePrefixOp {
  readonly type: 'deletePrefix';
  readonly prefix: string;
}

/** Creates a lease, or sets the TTL of an existing one (which counts as a renewal). */
export interface LeaseGrantOp {
  readonly type: 'leaseGrant';
  readonly lease: string;
  readonly ttlMs: number;
}

/** Renews a lease: the leader restarts its countdown when it applies this. */
export interface LeaseKeepAliveOp {
  readonly type: 'leaseKeepAlive';
  readonly lease: string;
}

/**
 * Revokes a lease and deletes its keys. `renewals` is the counter the leader saw when it decided
 * the lease had expired: if a keep-alive committed in between, the counter moved and the revoke
 * does nothing, so a client that renewed in time keeps its lease. null revokes unconditionally.
 */
export interface LeaseRevokeOp {
  readonly type: 'leaseRevoke';
  readonly lease: string;
  readonly renewals: number | null;
}

export type KvOp = PutOp | DeleteOp | CasOp | DeletePrefixOp | LeaseGrantOp | LeaseKeepAliveOp | LeaseRevokeOp;
export type KvOpType = KvOp['type'];
export const KV_OP_TYPES: readonly KvOpType[] = ['put', 'delete', 'cas', 'deletePrefix', 'leaseGrant', 'leaseKeepAlive', 'leaseRevoke'];

/**
 * An operation in its session envelope. `seq` grows with each new command of the client (gaps are
 * allowed); a retry reuses the same (clientId, seq) and gets the first outcome (thesis §6.3).
 */
export interface KvCommand {
  readonly clientId: string;
  readonly seq: number;
  readonly op: KvOp;
}

/** `revision` is the store's revision after the command, as in etcd's response header. */
export interface PutResult {
  readonly type: 'put';
  readonly revision: number;
  readonly prev: KeyValue | null;
}

export interface DeleteResult {
  readonly type: 'delete';
  readonly revision: number;
  readonly deleted: boolean;
}

/**
 * On success `current` is the key as the command left it (null if deleted or still absent); on
 * failure nothing changed and `current` is the key as it is (null if absent).
 */
export interface CasResult {
  readonly type: 'cas';
  readonly succeeded: boolean;
  readonly revision: number;
  readonly current: KeyValue | null;
}

export interface DeletePrefixResult {
  readonly type: 'deletePrefix';
  readonly revision: number;
  readonly deleted: number;
}

/*
 * Lease results carry `revision` like every other result (etcd puts a header revision on lease
 * responses too), so a caller can read the store's revision off any successful result.
 */

/** The lease as the grant left it; `renewals` is 0 for a new lease. */
export interface LeaseGrantResult {
  readonly type: 'leaseGrant';
  readonly revision: number;
  readonly lease: string;
  readonly ttlMs: number;
  readonly renewals: number;
}

/** When `found` is false nothing changed and `ttlMs` and `renewals` are 0. */
export interface LeaseKeepAliveResult {
  readonly type: 'leaseKeepAlive';
  readonly revision: number;
  readonly lease: string;
  readonly found: boolean;
  readonly ttlMs: number;
  readonly renewals: number;
}

/** `revoked` false: no such lease, or its renewal counter had moved; nothing changed. */
export interface LeaseRevokeResult {
  readonly type: 'leaseRevoke';
  /** After the deletion when keys were deleted; otherwise unchanged. */
  readonly revision: number;
  readonly lease: string;
  readonly revoked: boolean;
  /** Keys deleted with the lease, all at one new revision. */
  readonly deleted: number;
}

/**
 * A command that applied as a deterministic refusal; every replica refuses it the same way.
 * - ERR_BAD_MESSAGE: the entry did not decode to a valid command (nothing changed, no session touched).
 * - ERR_STALE_SEQ: the client has already had a later command applied.
 * - ERR_TOO_LARGE: a key, prefix or value over its limit (the session records this outcome).
 * - ERR_LEASE_NOT_FOUND: a put or cas named a lease that does not exist, typically one the leader
 *   revoked meanwhile; nothing changed (the session records this outcome).
 */
export type KvErrorCode = 'ERR_BAD_MESSAGE' | 'ERR_STALE_SEQ' | 'ERR_TOO_LARGE' | 'ERR_LEASE_NOT_FOUND';
export const KV_ERROR_CODES: readonly KvErrorCode[] = ['ERR_BAD_MESSAGE', 'ERR_STALE_SEQ', 'ERR_TOO_LARGE', 'ERR_LEASE_NOT_FOUND'];

export interface KvErrorResult {
  readonly type: 'error';
  readonly error: KvErrorCode;
  readonly message: string;
}

export type KvResult = PutResult | DeleteResult | CasResult | DeletePrefixResult
  | LeaseGrantResult | LeaseKeepAliveResult | LeaseRevokeResult | KvErrorResult;

const fail = failWith('ERR_BAD_MESSAGE', 'kv command');

/**
 * Checks an untrusted value field by field; throws RaftError ERR_BAD_MESSAGE naming the first bad
 * field (e.g. "kv command: command.op.key must be a string"). Size limits are not checked here
 * (see limitViolation): an over-long key is a well-formed command that applies as a refusal.
 */
export function validateCommand(value: unknown): KvCommand {
  const cmd = expectRecord(value, 'command', ['clientId', 'seq', 'op'], fail);
  const clientId = expectString(cmd.clientId, 'command.clientId', fail, { nonEmpty: true, maxBytes: MAX_CLIENT_ID_BYTES });
  const seq = expectInt(cmd.seq, 'command.seq', fail, 1);
  if (typeof cmd.op !== 'object' || cmd.op === null) fail('command.op', 'must be a map');
  const type = expectOneOf((cmd.op as { type?: unknown }).type, 'command.op.type', KV_OP_TYPES, fail);
  return { clientId, seq, op: validateOp(type, cmd.op) };
}

// Module-level rather than closures inside validateOp: every replica decodes every entry, and
// making these functions afresh per entry showed in a busy node's profile.
const PUT_FIELDS = ['type', 'key', 'value'];
const PUT_FIELDS_LEASED = [...PUT_FIELDS, 'lease'];
const CAS_FIELDS = ['type', 'key', 'expectRevision', 'value'];
const CAS_FIELDS_LEASED = [...CAS_FIELDS, 'lease'];
const key = (raw: unknown): string => expectString(raw, 'command.op.key', fail, { nonEmpty: true });
const lease = (raw: unknown): string => expectString(raw, 'command.op.lease', fail, { nonEmpty: true, maxBytes: MAX_LEASE_ID_BYTES });

function validateOp(type: KvOpType, value: unknown): KvOp {
  // `lease` is optional on writes: the map's own key decides, so that expectRecord still rejects
  // every field it does not know.
  const hasLease = Object.hasOwn(value as object, 'lease');
  switch (type) {
    case 'put': {
      const op = expectRecord(value, 'command.op', hasLease ? PUT_FIELDS_LEASED : PUT_FIELDS, fail);
      const put: PutOp = { type, key: key(op.key), value: expectString(op.value, 'command.op.value', fail) };
      return hasLease ? { ...put, lease: lease(op.lease) } : put;
    }
    case 'delete': {
      const op = expectRecord(value, 'command.op', ['type', 'key'], fail);
      return { type, key: key(op.key) };
    }
    case 'cas': {
      const op = expectRecord(value, 'command.op', hasLease ? CAS_FIELDS_LEASED : CAS_FIELDS, fail);
      const cas: CasOp = {
        type,
        key: key(op.key),
        expectRevision: expectInt(op.expectRevision, 'command.op.expectRevision', fail, 0),
        value: op.value === null ? null : expectString(op.value, 'command.op.value', fail),
      };
      if (!hasLease) return cas;
      // A delete attaches nothing: a lease there would mean nothing, so it is a malformed command.
      if (cas.value === null) fail('command.op.lease', 'is not allowed when command.op.value is null');
      return { ...cas, lease: lease(op.lease) };
    }
    case 'deletePrefix': {
      const op = expectRecord(value, 'command.op', ['type', 'prefix'], fail);
      return { type, prefix: expectString(op.prefix, 'command.op.prefix', fail) };
    }
    case 'leaseGrant': {
      const op = expectRecord(value, 'command.op', ['type', 'lease', 'ttlMs'], fail);
      return { type, lease: lease(op.lease), ttlMs: expectInt(op.ttlMs, 'command.op.ttlMs', fail, 1, MAX_LEASE_TTL_MS) };
    }
    case 'leaseKeepAlive': {
      const op = expectRecord(value, 'command.op', ['type', 'lease'], fail);
      return { type, lease: lease(op.lease) };
    }
    case 'leaseRevoke': {
      const op = expectRecord(value, 'command.op', ['type', 'lease', 'renewals'], fail);
      const renewals = op.renewals === null ? null : expectInt(op.renewals, 'command.op.renewals', fail, 0);
      return { type, lease: lease(op.lease), renewals };
    }
  }
}

/**
 * Encodes a command for a Raft proposal. Validates first, so this node never proposes what every
 * replica would refuse to decode; size limits are left to limitViolation (call it to refuse early).
 */
export function encodeCommand(cmd: KvCommand): Uint8Array {
  const { clientId, seq, op } = validateCommand(cmd);
  // Fields in a fixed order: the same command always encodes to the same bytes. An absent lease
  // is left out rather than sent as nil, so commands without leases encode as they always did.
  let wireOp: Record<string, unknown>;
  switch (op.type) {
    case 'put': wireOp = { type: op.type, key: op.key, value: op.value }; break;
    case 'delete': wireOp = { type: op.type, key: op.key }; break;
    case 'cas': wireOp = { type: op.type, key: op.key, expectRevision: op.expectRevision, value: op.value }; break;
    case 'deletePrefix': wireOp = { type: op.type, prefix: op.prefix }; break;
    case 'leaseGrant': wireOp = { type: op.type, lease: op.lease, ttlMs: op.ttlMs }; break;
    case 'leaseKeepAlive': wireOp = { type: op.type, lease: op.lease }; break;
    case 'leaseRevoke': wireOp = { type: op.type, lease: op.lease, renewals: op.renewals }; break;
  }
  if ((op.type === 'put' || op.type === 'cas') && op.lease !== undefined) wireOp.lease = op.lease;
  return pack({ clientId, seq, op: wireOp });
}

/** Decodes an entry's data; throws RaftError ERR_BAD_MESSAGE naming the bad field. */
export function decodeCommand(data: Uint8Array): KvCommand {
  return validateCommand(unpack(data, 'ERR_BAD_MESSAGE', 'kv command'));
}

/** Why `op` breaks a size limit, or null. Deterministic: a function of the command alone. */
export function limitViolation(op: KvOp): string | null {
  switch (op.type) {
    case 'put': return over('key', op.key, MAX_KEY_BYTES) ?? over('value', op.value, MAX_VALUE_BYTES);
    case 'delete': return over('key', op.key, MAX_KEY_BYTES);
    case 'cas': return over('key', op.key, MAX_KEY_BYTES) ?? (op.value === null ? null : over('value', op.value, MAX_VALUE_BYTES));
    case 'deletePrefix': return over('prefix', op.prefix, MAX_KEY_BYTES);
    // Lease ids and TTLs are bounded by validateCommand already.
    case 'leaseGrant':
    case 'leaseKeepAlive':
    case 'leaseRevoke': return null;
  }
}

function over(field: string, s: string, limit: number): string | null {
  const bytes = utf8Length(s);
  return bytes > limit ? `${field} is ${bytes} bytes, limit ${limit}` : null;
}
