// Wire format of Raft messages between peers: one msgpack array of messages per HTTP body.
// The decoder faces the network, so it trusts nothing: the body is bounded before msgpackr sees it,
// every decoder failure (including a stack overflow from deep nesting) becomes ERR_BAD_MESSAGE, and
// the result is rebuilt field by field from types.ts so nothing the sender adds reaches the core.
import { Packr, Unpackr } from 'msgpackr';
import { RaftError } from '../core/errors.ts';
import { MESSAGE_TYPES } from '../core/types.ts';
import type { ConfState, Entry, Message, MessageType, NodeId, Snapshot } from '../core/types.ts';

export interface DecodeLimits {
  /** Largest body accepted, in bytes; checked before decoding. Must fit the largest snapshot. */
  maxBytes: number;
  /** Most messages in one body. */
  maxMessages: number;
}

export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = { maxBytes: 64 * 1024 * 1024, maxMessages: 8192 };

/** Longest node id accepted on the wire. */
export const MAX_NODE_ID_LENGTH = 128;

// Records and structured clone are msgpackr extensions no other msgpack reader knows; keeping
// plain maps keeps the format readable elsewhere. Disabling structured clone on the reader also
// refuses its pointer extension, with which a small body could reference one large blob many times.
const packr = new Packr({ useRecords: false, structuredClone: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false });

export function encodeMessages(msgs: Message[]): Uint8Array {
  return packr.pack(msgs);
}

export function decodeMessages(body: Uint8Array, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): Message[] {
  if (!(body instanceof Uint8Array)) throw bad('body must be a Uint8Array');
  if (body.byteLength > limits.maxBytes) throw bad(`body of ${body.byteLength} bytes exceeds the limit of ${limits.maxBytes}`);
  let raw: unknown;
  try {
    raw = unpackr.unpack(body);
  } catch (err) {
    // msgpackr throws Error, RangeError (deep nesting) or TypeError (odd extensions); all mean "bad body".
    throw bad(`body is not valid msgpack: ${err instanceof Error ? err.message.slice(0, 200) : 'decode failed'}`, err);
  }
  if (!Array.isArray(raw)) throw bad('body must be an array of messages');
  if (raw.length > limits.maxMessages) throw bad(`${raw.length} messages exceed the limit of ${limits.maxMessages}`);
  const out: Message[] = [];
  for (let i = 0; i < raw.length; i++) out.push(readMessage(new Reader(`message ${i}`), raw[i]));
  return out;
}

function bad(message: string, cause?: unknown): RaftError {
  return new RaftError('ERR_BAD_MESSAGE', message, cause === undefined ? {} : { cause });
}

type Obj = Record<string, unknown>;

/** Reads typed fields off untrusted values; `where` names the position for the error message. */
class Reader {
  constructor(readonly where: string) {}

  fail(what: string): never {
    throw bad(`${this.where}: ${what}`);
  }

  object(v: unknown, name: string): Obj {
    // Only plain maps: msgpackr extensions can also yield Map, Set, Date, Error or typed arrays.
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(`${name} must be a map`);
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) this.fail(`${name} must be a map`);
    return v as Obj;
  }

  /** Own properties only, so a missing field never resolves to something on Object.prototype. */
  private get(o: Obj, field: string): unknown {
    return Object.hasOwn(o, field) ? o[field] : undefined;
  }

  uint(o: Obj, field: string): number {
    const v = this.get(o, field);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(`field '${field}' must be a non-negative safe integer`);
    return v;
  }

  bool(o: Obj, field: string): boolean {
    const v = this.get(o, field);
    if (typeof v !== 'boolean') this.fail(`field '${field}' must be a boolean`);
    return v;
  }

  string(o: Obj, field: string): string {
    const v = this.get(o, field);
    if (typeof v !== 'string') this.fail(`field '${field}' must be a string`);
    return v;
  }

  stringOrNull(o: Obj, field: string): string | null {
    const v = this.get(o, field);
    if (v !== null && typeof v !== 'string') this.fail(`field '${field}' must be a string or null`);
    return v;
  }

  nodeId(v: unknown, name: string): NodeId {
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_NODE_ID_LENGTH) {
      this.fail(`${name} must be a non-empty string of at most ${MAX_NODE_ID_LENGTH} characters`);
    }
    return v;
  }

  field(o: Obj, field: string): unknown {
    return this.get(o, field);
  }

  bytes(o: Obj, field: string): Uint8Array {
    const v = this.get(o, field);
    if (!(v instanceof Uint8Array)) this.fail(`field '${field}' must be binary`);
    // A copy, so a stored entry does not keep the whole request body alive (msgpackr returns views).
    return new Uint8Array(v);
  }

  array(v: unknown, name: string): unknown[] {
    if (!Array.isArray(v)) this.fail(`${name} must be an array`);
    return v;
  }
}

const KNOWN_TYPES: ReadonlySet<string> = new Set(MESSAGE_TYPES);

function readMessage(r: Reader, v: unknown): Message {
  const o = r.object(v, 'message');
  const typeField = r.field(o, 'type');
  if (typeof typeField !== 'string' || !KNOWN_TYPES.has(typeField)) r.fail(`field 'type' must be one of ${MESSAGE_TYPES.join(', ')}`);
  const type = typeField as MessageType;
  const from = r.nodeId(r.field(o, 'from'), "field 'from'");
  const to = r.nodeId(r.field(o, 'to'), "field 'to'");
  const term = r.uint(o, 'term');
  switch (type) {
    case 'app': {
      const logTerm = r.uint(o, 'logTerm');
      const index = r.uint(o, 'index');
      const entries = readEntries(r, r.field(o, 'entries'));
      // MsgApp's entries follow (index, logTerm) (types.ts); a gap would corrupt the follower's log.
      if (entries.length > 0 && entries[0].index !== index + 1) r.fail(`first entry index ${entries[0].index} must be index + 1 (${index + 1})`);
      const commit = r.uint(o, 'commit');
      return { type, from, to, term, logTerm, index, entries, commit };
    }
    case 'appResp':
      return { type, from, to, term, index: r.uint(o, 'index'), reject: r.bool(o, 'reject'), hintIndex: r.uint(o, 'hintIndex'), hintTerm: r.uint(o, 'hintTerm') };
    case 'vote':
    case 'preVote':
      return { type, from, to, term, logTerm: r.uint(o, 'logTerm'), index: r.uint(o, 'index'), transfer: r.bool(o, 'transfer') };
    case 'voteResp':
    case 'preVoteResp':
      return { type, from, to, term, reject: r.bool(o, 'reject') };
    case 'heartbeat':
      return { type, from, to, term, commit: r.uint(o, 'commit'), context: r.stringOrNull(o, 'context') };
    case 'heartbeatResp':
      return { type, from, to, term, context: r.stringOrNull(o, 'context') };
    case 'snap':
      return { type, from, to, term, snapshot: readSnapshot(r, r.field(o, 'snapshot')) };
    case 'readIndex':
      return { type, from, to, term, context: r.string(o, 'context') };
    case 'readIndexResp':
      return { type, from, to, term, index: r.uint(o, 'index'), context: r.string(o, 'context') };
    case 'timeoutNow':
      return { type, from, to, term };
    case 'transferLeader':
      return { type, from, to, term, target: r.nodeId(r.field(o, 'target'), "field 'target'") };
  }
}

function readEntries(r: Reader, v: unknown): Entry[] {
  const raw = r.array(v, "field 'entries'");
  const entries: Entry[] = [];
  for (let i = 0; i < raw.length; i++) {
    const er: Reader = new Reader(`${r.where}: entry ${i}`);
    const o = er.object(raw[i], 'entry');
    const term = er.uint(o, 'term');
    const index = er.uint(o, 'index');
    const type = er.field(o, 'type');
    if (type !== 'normal' && type !== 'conf') er.fail("field 'type' must be 'normal' or 'conf'");
    if (i > 0 && index !== entries[i - 1].index + 1) er.fail(`index ${index} does not follow ${entries[i - 1].index}`);
    entries.push({ term, index, type, data: er.bytes(o, 'data') });
  }
  return entries;
}

function readSnapshot(r: Reader, v: unknown): Snapshot {
  const o = r.object(v, "field 'snapshot'");
  const mr: Reader = new Reader(`${r.where}: snapshot meta`);
  const meta = mr.object(r.field(o, 'meta'), "field 'meta'");
  const cr: Reader = new Reader(`${r.where}: snapshot conf`);
  const conf = cr.object(mr.field(meta, 'conf'), "field 'conf'");
  return {
    meta: { index: mr.uint(meta, 'index'), term: mr.uint(meta, 'term'), conf: readConf(cr, conf) },
    data: r.bytes(o, 'data'),
  };
}

function readConf(r: Reader, o: Obj): ConfState {
  const ids = (field: string): NodeId[] =>
    r.array(r.field(o, field), `field '${field}'`).map((id, i) => r.nodeId(id, `${field}[${i}]`));
  return { voters: ids('voters'), learners: ids('learners') };
}
