// Fuzzing what the Raft port reads: the msgpack message codec, the stream's frame reader, and the
// storage codec that reads values back from disk. For any input the only outcomes allowed are a
// result that satisfies the types, or the layer's own error (RaftError ERR_BAD_MESSAGE, also for
// a body over the limits; BadValueError); never another exception, never a hang. Valid input round-trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { DEFAULT_DECODE_LIMITS, MAX_NODE_ID_LENGTH, decodeMessages, encodeMessages } from '../../src/raft/transport/codec.ts';
import type { DecodeLimits } from '../../src/raft/transport/codec.ts';
import { FrameReader, encodeFrame } from '../../src/raft/transport/frames.ts';
import { RaftError } from '../../src/raft/core/errors.ts';
import { MESSAGE_TYPES } from '../../src/raft/core/types.ts';
import type { Entry, Message, MessageType, Snapshot } from '../../src/raft/core/types.ts';
import {
  BadValueError, decodeBytes, decodeEntry, decodeHardState, decodeMeta, decodeSnapshotMeta,
  encodeBytes, encodeEntry, encodeHardState, encodeMeta, encodeSnapshotMeta,
} from '../../src/storage/codec.ts';
import { crc32 } from '../../src/storage/crc32.ts';
import { KvStateMachine } from '../../src/raft/kv/state-machine.ts';
import { encodeCommand } from '../../src/raft/kv/commands.ts';
import type { KvOp } from '../../src/raft/kv/commands.ts';
import { anyBytes, params } from './support.ts';

const RUNS = 500;

/** Records with Object.prototype, as decoded messages have (fast-check may otherwise make null-prototype ones). */
function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true }) as unknown as fc.Arbitrary<T>;
}

// ---- Generators of valid messages -------------------------------------------------------------

const nodeId = fc.string({ minLength: 1, maxLength: MAX_NODE_ID_LENGTH, unit: 'binary' });
const nat = fc.maxSafeNat();
const context = fc.string({ maxLength: 40, unit: 'binary' });

const entriesAfter = (index: number): fc.Arbitrary<Entry[]> =>
  fc.array(rec({ term: nat, type: fc.constantFrom('normal' as const, 'conf' as const), data: fc.uint8Array({ maxLength: 64 }) }), { maxLength: 5 })
    .map((es) => es.map((e, i) => ({ term: e.term, index: index + 1 + i, type: e.type, data: e.data })));

const snapshot: fc.Arbitrary<Snapshot> = rec({
  meta: rec({ index: nat, term: nat, conf: rec({ voters: fc.array(nodeId, { maxLength: 5 }), learners: fc.array(nodeId, { maxLength: 3 }) }) }),
  data: fc.uint8Array({ maxLength: 128 }),
});

const base = rec({ from: nodeId, to: nodeId, term: nat });

const validMessage: fc.Arbitrary<Message> = fc.oneof(
  fc.tuple(base, fc.nat({ max: 2 ** 40 }), nat, nat).chain(([b, index, logTerm, commit]) =>
    entriesAfter(index).map((entries): Message => ({ ...b, type: 'app', logTerm, index, entries, commit }))),
  fc.tuple(base, nat, fc.boolean(), nat, nat).map(([b, index, reject, hintIndex, hintTerm]): Message => ({ ...b, type: 'appResp', index, reject, hintIndex, hintTerm })),
  fc.tuple(base, fc.constantFrom('vote' as const, 'preVote' as const), nat, nat, fc.boolean()).map(([b, type, logTerm, index, transfer]): Message => ({ ...b, type, logTerm, index, transfer })),
  fc.tuple(base, fc.constantFrom('voteResp' as const, 'preVoteResp' as const), fc.boolean()).map(([b, type, reject]): Message => ({ ...b, type, reject })),
  fc.tuple(base, nat, fc.option(context)).map(([b, commit, ctx]): Message => ({ ...b, type: 'heartbeat', commit, context: ctx })),
  fc.tuple(base, fc.option(context)).map(([b, ctx]): Message => ({ ...b, type: 'heartbeatResp', context: ctx })),
  fc.tuple(base, snapshot).map(([b, snap]): Message => ({ ...b, type: 'snap', snapshot: snap })),
  fc.tuple(base, context).map(([b, ctx]): Message => ({ ...b, type: 'readIndex', context: ctx })),
  fc.tuple(base, nat, context).map(([b, index, ctx]): Message => ({ ...b, type: 'readIndexResp', index, context: ctx })),
  base.map((b): Message => ({ ...b, type: 'timeoutNow' })),
  fc.tuple(base, nodeId).map(([b, target]): Message => ({ ...b, type: 'transferLeader', target })),
);

const validBatch = fc.array(validMessage, { maxLength: 6 });

// ---- What counts as a clean outcome -------------------------------------------------------------

/** decodeMessages either returns well-typed messages or throws the codec's own refusal. */
function decodeCleanly(body: Uint8Array, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): Message[] | RaftError {
  let out: Message[];
  try {
    out = decodeMessages(body, limits);
  } catch (err) {
    assert.ok(err instanceof RaftError, `expected a RaftError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_BAD_MESSAGE');
    assert.ok(err.message.length > 0 && err.message.length < 1000, 'a short, non-empty reason');
    return err;
  }
  assert.ok(Array.isArray(out) && out.length <= limits.maxMessages);
  for (const m of out) assertWellTyped(m);
  return out;
}

const isNat = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function assertWellTyped(m: Message): void {
  assert.ok((MESSAGE_TYPES as readonly string[]).includes(m.type));
  assert.equal(Object.getPrototypeOf(m), Object.prototype);
  for (const id of [m.from, m.to]) assert.ok(typeof id === 'string' && id.length > 0 && id.length <= MAX_NODE_ID_LENGTH);
  assert.ok(isNat(m.term));
  // Every numeric field the type names is a non-negative safe integer; nothing else came along.
  for (const [key, value] of Object.entries(m)) {
    if (['index', 'logTerm', 'commit', 'hintIndex', 'hintTerm'].includes(key)) assert.ok(isNat(value), `${key} = ${String(value)}`);
  }
  if (m.type === 'app') {
    m.entries.forEach((e, i) => {
      assert.ok(isNat(e.term) && e.index === m.index + 1 + i && e.data instanceof Uint8Array);
    });
  }
  if (m.type === 'snap') {
    assert.ok(isNat(m.snapshot.meta.index) && isNat(m.snapshot.meta.term) && m.snapshot.data instanceof Uint8Array);
    for (const id of [...m.snapshot.meta.conf.voters, ...m.snapshot.meta.conf.learners]) assert.equal(typeof id, 'string');
  }
}

// ---- msgpack built by hand: nesting, lengths and extensions a well-behaved encoder never writes ----

/** `depth` levels of one-element arrays or maps (msgpack fixarray / fixmap with an empty-string key). */
function nested(depth: number, kinds: readonly ('array' | 'map' | 'array32')[], leaf: Uint8Array): Uint8Array {
  const parts: number[] = [];
  for (let i = 0; i < depth; i++) {
    const kind = kinds[i % kinds.length];
    if (kind === 'array') parts.push(0x91);
    else if (kind === 'array32') parts.push(0xdd, 0, 0, 0, 1);
    else parts.push(0x81, 0xa0);
  }
  const out = new Uint8Array(parts.length + leaf.length);
  out.set(parts);
  out.set(leaf, parts.length);
  return out;
}

/** A header that declares `length` elements or bytes, followed by far fewer. */
const hugeDeclaration = fc.tuple(
  fc.constantFrom(0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xc7, 0xc8, 0xc9),
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.uint8Array({ maxLength: 32 }),
).map(([tag, length, rest]) => {
  const width = [0xc4, 0xd9, 0xc7].includes(tag) ? 1 : [0xc5, 0xda, 0xdc, 0xde, 0xc8].includes(tag) ? 2 : 4;
  const head = Buffer.alloc(1 + width + (tag >= 0xc7 && tag <= 0xc9 ? 1 : 0));
  head[0] = tag;
  head.writeUIntBE(length % 2 ** (8 * width), 1, width);
  return new Uint8Array(Buffer.concat([head, rest]));
});

/** One byte changed, inserted or removed, somewhere in `bytes`. */
const mutationOf = (bytes: Uint8Array): fc.Arbitrary<Uint8Array> =>
  fc.array(fc.tuple(fc.constantFrom('flip', 'set', 'insert', 'delete'), fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((edits) => {
    const b = Array.from(bytes);
    for (const [kind, at, value] of edits) {
      const i = b.length === 0 ? 0 : at % b.length;
      if (kind === 'flip' && b.length > 0) b[i] ^= 1 << (value % 8);
      else if (kind === 'set' && b.length > 0) b[i] = value;
      else if (kind === 'insert') b.splice(i, 0, value);
      else if (kind === 'delete') b.splice(i, 1);
    }
    return new Uint8Array(b);
  });

// A packer that writes what ours never does: records and structured clone on, so the decoder meets
// msgpackr's own extensions (record definitions, pointers, typed arrays, Map, Set, Date, Error).
const hostilePackr = new Packr({ structuredClone: true, useRecords: true, moreTypes: true });

// ---- Properties ---------------------------------------------------------------------------------

test('decodeMessages: arbitrary bytes give messages or ERR_BAD_MESSAGE, nothing else', () => {
  fc.assert(fc.property(anyBytes(2048), (body) => void decodeCleanly(body)), params(RUNS));
});

test('decodeMessages: valid batches round-trip exactly', () => {
  fc.assert(
    fc.property(validBatch, (msgs) => {
      const out = decodeCleanly(encodeMessages(msgs));
      assert.ok(Array.isArray(out), `refused a valid batch: ${String(out)}`);
      assert.deepEqual(out, msgs);
    }),
    params(RUNS),
  );
});

test('decodeMessages: every truncation of a valid body is refused or decodes cleanly', () => {
  fc.assert(
    fc.property(validBatch, fc.nat(), (msgs, cut) => {
      const body = encodeMessages(msgs);
      void decodeCleanly(body.subarray(0, cut % (body.length + 1)));
    }),
    params(RUNS),
  );
});

test('decodeMessages: mutated valid bodies are refused or decode cleanly', () => {
  fc.assert(fc.property(validBatch.map((m) => encodeMessages(m)).chain(mutationOf), (body) => void decodeCleanly(body)), params(RUNS));
});

test('decodeMessages: msgpackr extensions (records, Map, Set, Date, typed arrays) are refused or stripped', () => {
  const value = fc.letrec((tie) => ({
    v: fc.oneof(
      { depthSize: 'small' },
      fc.oneof(fc.string(), fc.maxSafeNat(), fc.double(), fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 8 }), fc.date({ noInvalidDate: true })),
      fc.array(tie('v'), { maxLength: 4 }),
      fc.dictionary(fc.constantFrom('type', 'from', 'to', 'term', 'index', 'entries', 'snapshot', 'meta', 'conf', 'data', '__proto__', 'x'), tie('v'), { maxKeys: 6 }),
      fc.array(tie('v'), { maxLength: 3 }).map((a) => new Set(a)),
      fc.array(fc.tuple(fc.string(), tie('v')), { maxLength: 3 }).map((a) => new Map(a)),
    ),
  })).v;
  fc.assert(fc.property(fc.oneof(value, fc.array(value, { maxLength: 4 })), (v) => void decodeCleanly(hostilePackr.pack(v))), params(RUNS));
});

test('decodeMessages: nesting thousands deep is refused without a crash', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200_000 }),
      fc.subarray(['array', 'map', 'array32'] as const, { minLength: 1 }),
      fc.constantFrom(new Uint8Array([0xc0]), new Uint8Array([0x90]), new Uint8Array([0x80])),
      fc.boolean(),
      (depth, kinds, leaf, inField) => {
        const deep = nested(depth, kinds, leaf);
        // Either the whole body, or the value of an ignored field in an otherwise valid message.
        const body = inField
          ? new Uint8Array(Buffer.concat([encodeMessages([{ type: 'timeoutNow', from: 'a', to: 'b', term: 1 }]).subarray(0, 2).map((b, i) => (i === 1 ? b + 1 : b)), Buffer.from([0xa1, 0x78]), deep, encodeMessages([{ type: 'timeoutNow', from: 'a', to: 'b', term: 1 }]).subarray(2)]))
          : deep;
        void decodeCleanly(body);
      },
    ),
    params(RUNS, 0.2),
  );
});

test('decodeMessages: huge declared lengths are refused without allocating them', () => {
  fc.assert(fc.property(hugeDeclaration, fc.boolean(), (decl, wrapped) => void decodeCleanly(wrapped ? new Uint8Array([0x91, ...decl]) : decl)), params(RUNS));
});

test('decodeMessages: bodies and batches over the limits are refused as too large', () => {
  fc.assert(
    fc.property(validBatch, fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 4 }), (msgs, maxBytes, maxMessages) => {
      const body = encodeMessages(msgs);
      const out = decodeCleanly(body, { maxBytes, maxMessages });
      if (body.length > maxBytes || msgs.length > maxMessages) assert.ok(out instanceof RaftError, 'over a limit must be refused');
    }),
    params(RUNS),
  );
});

test('FrameReader: frames split at arbitrary points are reassembled exactly', () => {
  fc.assert(
    fc.property(fc.array(validBatch, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 8 }), (batches, cuts) => {
      const stream = Buffer.concat(batches.map((b) => encodeFrame(b)));
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      const reader = new FrameReader(DEFAULT_DECODE_LIMITS.maxBytes);
      const frames: Buffer[] = [];
      let at = 0;
      for (const p of [...points, stream.length]) {
        frames.push(...reader.push(stream.subarray(at, p)));
        at = p;
      }
      assert.deepEqual(frames.map((f) => decodeMessages(f)), batches);
    }),
    params(RUNS),
  );
});

test('FrameReader: arbitrary bytes give frames within the limit or ERR_BAD_MESSAGE', () => {
  fc.assert(
    fc.property(fc.array(anyBytes(64), { maxLength: 8 }), fc.integer({ min: 0, max: 256 }), (chunks, maxBytes) => {
      const reader = new FrameReader(maxBytes);
      try {
        for (const chunk of chunks) {
          for (const frame of reader.push(Buffer.from(chunk))) {
            assert.ok(frame.length <= maxBytes);
            void decodeCleanly(frame);
          }
        }
      } catch (err) {
        assert.ok(err instanceof RaftError && err.code === 'ERR_BAD_MESSAGE', `expected ERR_BAD_MESSAGE, got ${String(err)}`);
      }
    }),
    params(RUNS),
  );
});

test('FrameReader: a declared frame over the limit is refused from its 4-byte header alone', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 20 }), fc.integer({ min: 1, max: 0xffffffff }), (maxBytes, extra) => {
      const len = Math.min(0xffffffff, maxBytes + extra);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(len, 0);
      const reader = new FrameReader(maxBytes);
      assert.throws(() => reader.push(head), (e: unknown) => e instanceof RaftError && e.code === 'ERR_BAD_MESSAGE');
    }),
    params(RUNS),
  );
});

// ---- The storage codec: values read back from LevelDB --------------------------------------------

type Decoder = (value: Uint8Array) => unknown;
const DECODERS: Record<string, Decoder> = { decodeEntry, decodeHardState, decodeSnapshotMeta, decodeBytes, decodeMeta };

function storageDecodeCleanly(decode: Decoder, value: Uint8Array): void {
  try {
    decode(value);
  } catch (err) {
    assert.ok(err instanceof BadValueError, `expected a BadValueError, got ${String(err)}`);
    assert.ok(err.message.length > 0);
  }
}

/** A payload sealed with a correct checksum, so decoding gets past it to the msgpack and the shape checks. */
function sealed(payload: Uint8Array): Uint8Array {
  const out = Buffer.alloc(4 + payload.length);
  out.writeUInt32BE(crc32(payload), 0);
  out.set(payload, 4);
  return out;
}

const storedValue: fc.Arbitrary<Uint8Array> = fc.oneof(
  rec({ term: nat, index: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), type: fc.constantFrom('normal' as const, 'conf' as const), data: fc.uint8Array({ maxLength: 64 }) }).map((e) => encodeEntry(e)),
  rec({ term: nat, vote: fc.option(nodeId), commit: nat }).map((hs) => encodeHardState(hs)),
  snapshot.map((s) => encodeSnapshotMeta(s.meta)),
  fc.uint8Array({ maxLength: 64 }).map((d) => encodeBytes(d)),
  fc.dictionary(fc.string(), fc.jsonValue()).map((m) => encodeMeta(m)),
);

test('storage codec: arbitrary, truncated and mutated values decode or throw BadValueError', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...Object.keys(DECODERS)),
      fc.oneof(
        anyBytes(256),
        storedValue.chain((v) => fc.nat().map((cut) => v.subarray(0, cut % (v.length + 1)))),
        storedValue.chain(mutationOf),
        anyBytes(256).map(sealed),
        storedValue.chain((v) => mutationOf(v.subarray(4))).map(sealed),
        fc.integer({ min: 1, max: 100_000 }).map((depth) => sealed(nested(depth, ['array', 'map'], new Uint8Array([0xc0])))),
      ),
      (name, value) => storageDecodeCleanly(DECODERS[name]!, value),
    ),
    params(RUNS),
  );
});

test('storage codec: valid values round-trip', () => {
  fc.assert(
    fc.property(rec({ term: nat, index: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), type: fc.constantFrom('normal' as const, 'conf' as const), data: fc.uint8Array({ maxLength: 64 }) }), (e) => {
      const out = decodeEntry(encodeEntry(e));
      // msgpackr hands binary back as a Buffer, a Uint8Array subclass: compare the bytes.
      assert.deepEqual({ ...out, data: new Uint8Array(out.data) }, e);
    }),
    params(RUNS),
  );
});

// ---- The key-value state machine: commands in entries, snapshots from a leader ----------------------

const kvOp: fc.Arbitrary<KvOp> = fc.oneof(
  rec({ type: fc.constant('put' as const), key: fc.string({ minLength: 1, maxLength: 8 }), value: fc.string({ maxLength: 8 }) }),
  rec({ type: fc.constant('delete' as const), key: fc.string({ minLength: 1, maxLength: 8 }) }),
  rec({ type: fc.constant('cas' as const), key: fc.string({ minLength: 1, maxLength: 8 }), expectRevision: fc.nat(5), value: fc.option(fc.string({ maxLength: 8 })) }),
  rec({ type: fc.constant('deletePrefix' as const), prefix: fc.string({ maxLength: 4 }) }),
  rec({ type: fc.constant('leaseGrant' as const), lease: fc.constantFrom('l1', 'l2'), ttlMs: fc.integer({ min: 1, max: 10_000 }) }),
  rec({ type: fc.constant('leaseKeepAlive' as const), lease: fc.constantFrom('l1', 'l2') }),
  rec({ type: fc.constant('leaseRevoke' as const), lease: fc.constantFrom('l1', 'l2'), renewals: fc.option(fc.nat(3)) }),
);
const kvCommand = rec({ clientId: fc.constantFrom('c1', 'c2'), seq: fc.integer({ min: 1, max: 50 }), op: kvOp }).map((c) => encodeCommand(c));

test('kv state machine: any entry data applies as a result (ERR_BAD_MESSAGE for junk), never a throw', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(kvCommand, kvCommand.chain(mutationOf), anyBytes(128), fc.constant(hostilePackr.pack({ clientId: 'c', seq: 1, op: new Map([['type', 'put']]) }))), { maxLength: 12 }), (datas) => {
      const sm = new KvStateMachine();
      datas.forEach((d, i) => {
        const r = sm.apply(i + 1, d);
        assert.equal(r.index, i + 1);
        assert.equal(sm.appliedIndex, i + 1);
      });
      // Whatever applied, the state still snapshots and restores to the same bytes.
      assert.deepEqual(KvStateMachine.restore(sm.snapshot()).snapshot(), sm.snapshot());
    }),
    params(RUNS),
  );
});

test('kv state machine: a snapshot of arbitrary or damaged bytes is ERR_CORRUPT_STORE, never another error', () => {
  const populated = fc.array(kvCommand, { maxLength: 8 }).map((cmds) => {
    const sm = new KvStateMachine();
    cmds.forEach((c, i) => sm.apply(i + 1, c));
    return sm.snapshot();
  });
  fc.assert(
    fc.property(fc.oneof(anyBytes(256), populated.chain(mutationOf), populated.chain((b) => fc.nat().map((cut) => b.subarray(0, cut % (b.length + 1))))), (data) => {
      try {
        KvStateMachine.restore(data);
      } catch (err) {
        assert.ok(err instanceof RaftError && err.code === 'ERR_CORRUPT_STORE', `expected ERR_CORRUPT_STORE, got ${String(err)}`);
      }
    }),
    params(RUNS),
  );
});

// ---- Regression tests: inputs the fuzzer found ---------------------------------------------------

const knownTypes: readonly MessageType[] = MESSAGE_TYPES;
test('every message type with fields of the wrong types is refused (timeoutNow needs none of them)', () => {
  for (const type of knownTypes) {
    const body = hostilePackr.pack([{ type, from: 'a', to: 'b', term: 1, index: '1', entries: {}, snapshot: [], context: 5, commit: -1, target: 7 }]);
    const out = decodeCleanly(body);
    assert.equal(out instanceof RaftError, type !== 'timeoutNow', type);
  }
});
