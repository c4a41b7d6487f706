// Commands of the replicated key-value store and the results of applying them. The model is etcd
// v3's (mvcc/kvstore.go): one global revision, and per key createRevision, modRevision, version.
// A command travels as msgpack in a Raft entry; proposals come from the network, so decoding
// checks every field and names the bad one.
import { expectInt, expectOneOf, expectRecord, expectString, failWith, pack, unpack, utf8Length } from './codec.ts';

/** etcd's defaults are 1.5 MiB per request; ours are per field, which is what Patroni needs. */
export const MAX_KEY_BYTES = 1024;
export const MAX_VALUE_BYTES = 1024 * 1024;
/** Bounds the memory one session costs; a structural limit, so a longer id is a bad message. */
export const MAX_CLIENT_ID_BYTES = 256;

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
}

export interface PutOp {
  readonly type: 'put';
  readonly key: string;
  readonly value: string;
}

export interface DeleteOp {
  readonly type: 'delete';
  readonly key: string;
}

/**
 * Compare-and-set on modRevision (etcd Txn with a mod_revision compare). `expectRevision` 0 means
 * "the key must not exist"; `value` null means delete.
 */
export interface CasOp {
  readonly type: 'cas';
  readonly key: string;
  readonly expectRevision: number;
  readonly value: string | null;
}

/** Deletes every key starting with `prefix`; the empty prefix deletes every key. */
export interface DeletePrefixOp {
  readonly type: 'deletePrefix';
  readonly prefix: string;
}

export type KvOp = PutOp | DeleteOp | CasOp | DeletePrefixOp;
export type KvOpType = KvOp['type'];
export const KV_OP_TYPES: readonly KvOpType[] = ['put', 'delete', 'cas', 'deletePrefix'];

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

/**
 * A command that applied as a deterministic refusal; every replica refuses it the same way.
 * - ERR_BAD_MESSAGE: the entry did not decode to a valid command (nothing changed, no session touched).
 * - ERR_STALE_SEQ: the client has already had a later command applied.
 * - ERR_TOO_LARGE: a key, prefix or value over its limit (the session records this outcome).
 */
export type KvErrorCode = 'ERR_BAD_MESSAGE' | 'ERR_STALE_SEQ' | 'ERR_TOO_LARGE';
export const KV_ERROR_CODES: readonly KvErrorCode[] = ['ERR_BAD_MESSAGE', 'ERR_STALE_SEQ', 'ERR_TOO_LARGE'];

export interface KvErrorResult {
  readonly type: 'error';
  readonly error: KvErrorCode;
  readonly message: string;
}

export type KvResult = PutResult | DeleteResult | CasResult | DeletePrefixResult | KvErrorResult;

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

function validateOp(type: KvOpType, value: unknown): KvOp {
  const key = (raw: unknown): string => expectString(raw, 'command.op.key', fail, { nonEmpty: true });
  switch (type) {
    case 'put': {
      const op = expectRecord(value, 'command.op', ['type', 'key', 'value'], fail);
      return { type, key: key(op.key), value: expectString(op.value, 'command.op.value', fail) };
    }
    case 'delete': {
      const op = expectRecord(value, 'command.op', ['type', 'key'], fail);
      return { type, key: key(op.key) };
    }
    case 'cas': {
      const op = expectRecord(value, 'command.op', ['type', 'key', 'expectRevision', 'value'], fail);
      return {
        type,
        key: key(op.key),
        expectRevision: expectInt(op.expectRevision, 'command.op.expectRevision', fail, 0),
        value: op.value === null ? null : expectString(op.value, 'command.op.value', fail),
      };
    }
    case 'deletePrefix': {
      const op = expectRecord(value, 'command.op', ['type', 'prefix'], fail);
      return { type, prefix: expectString(op.prefix, 'command.op.prefix', fail) };
    }
  }
}

/**
 * Encodes a command for a Raft proposal. Validates first, so this node never proposes what every
 * replica would refuse to decode; size limits are left to limitViolation (call it to refuse early).
 */
export function encodeCommand(cmd: KvCommand): Uint8Array {
  const { clientId, seq, op } = validateCommand(cmd);
  // Fields in a fixed order: the same command always encodes to the same bytes.
  let wireOp: Record<string, unknown>;
  switch (op.type) {
    case 'put': wireOp = { type: op.type, key: op.key, value: op.value }; break;
    case 'delete': wireOp = { type: op.type, key: op.key }; break;
    case 'cas': wireOp = { type: op.type, key: op.key, expectRevision: op.expectRevision, value: op.value }; break;
    case 'deletePrefix': wireOp = { type: op.type, prefix: op.prefix }; break;
  }
  return pack({ clientId, seq, op: wireOp });
}

/** Decodes an entry's data; throws RaftError ERR_BAD_MESSAGE naming the bad field. */
export function decodeCommand(data: Uint8Array): KvCommand {
  return validateCommand(unpack(data, 'ERR_BAD_MESSAGE', 'kv command'));
}

/** Why `op` breaks a size limit, or null. Deterministic: a function of the command alone. */
export function limitViolation(op: KvOp): string | null {
  const over = (field: string, s: string, limit: number): string | null => {
    const bytes = utf8Length(s);
    return bytes > limit ? `${field} is ${bytes} bytes, limit ${limit}` : null;
  };
  switch (op.type) {
    case 'put': return over('key', op.key, MAX_KEY_BYTES) ?? over('value', op.value, MAX_VALUE_BYTES);
    case 'delete': return over('key', op.key, MAX_KEY_BYTES);
    case 'cas': return over('key', op.key, MAX_KEY_BYTES) ?? (op.value === null ? null : over('value', op.value, MAX_VALUE_BYTES));
    case 'deletePrefix': return over('prefix', op.prefix, MAX_KEY_BYTES);
  }
}
