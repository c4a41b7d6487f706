import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pack } from 'msgpackr';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES, decodeCommand, encodeCommand } from './commands.ts';
import type { KvOp, KvResult } from './commands.ts';
import { KvStateMachine, MAX_SESSIONS } from './state-machine.ts';
import { Log, hasCode } from './test-log.ts';


const put = (key: string, value: string): KvOp => ({ type: 'put', key, value });
const del = (key: string): KvOp => ({ type: 'delete', key });
const cas = (key: string, expectRevision: number, value: string | null): KvOp => ({ type: 'cas', key, expectRevision, value });
const delPrefix = (prefix: string): KvOp => ({ type: 'deletePrefix', prefix });


/** The visible state apart from appliedIndex. */
const stateOf = (sm: KvStateMachine) => ({ revision: sm.revision, kvs: sm.range(''), sessions: sm.sessionCount });

describe('kv state machine: put, get, delete, range', () => {
  it('stores, reads and deletes keys', () => {
    const log = new Log();
    assert.deepEqual(log.run(put('/a', '1')), { type: 'put', revision: 1, prev: null });
    assert.equal(log.sm.get('/a')?.value, '1');
    assert.equal(log.sm.get('/missing'), null);
    assert.deepEqual(log.run(del('/a')), { type: 'delete', revision: 2, deleted: true });
    assert.equal(log.sm.get('/a'), null);
    assert.deepEqual(log.run(del('/a')), { type: 'delete', revision: 2, deleted: false }, 'deleting nothing is no write');
    assert.equal(log.sm.revision, 2);
  });

  it('ranges over a prefix in key order', () => {
    const log = new Log();
    for (const k of ['/svc/b', '/svc/a', '/other', '/svc/c/x', '/svc', '/svd']) log.run(put(k, k));
    assert.deepEqual(log.sm.range('/svc/').map((kv) => kv.key), ['/svc/a', '/svc/b', '/svc/c/x']);
    assert.deepEqual(log.sm.range('/svc').map((kv) => kv.key), ['/svc', '/svc/a', '/svc/b', '/svc/c/x']);
    assert.deepEqual(log.sm.range('').map((kv) => kv.key), ['/other', '/svc', '/svc/a', '/svc/b', '/svc/c/x', '/svd']);
    assert.deepEqual(log.sm.range('/nothing'), []);
  });

  it('deletes a prefix at one revision and reports the count', () => {
    const log = new Log();
    for (const k of ['/s/a', '/s/b', '/t']) log.run(put(k, 'v'));
    const r = log.send('c2', 1, delPrefix('/s/'));
    assert.deepEqual(r.result, { type: 'deletePrefix', revision: 4, deleted: 2 });
    assert.deepEqual(r.changes, [{ key: '/s/a', kv: null }, { key: '/s/b', kv: null }]);
    assert.deepEqual(log.sm.range('').map((kv) => kv.key), ['/t']);
    assert.deepEqual(log.run(delPrefix('/s/')), { type: 'deletePrefix', revision: 4, deleted: 0 });
  });

  it('hands out frozen key-values, so callers cannot corrupt the state', () => {
    const log = new Log();
    log.run(put('/a', '1'));
    const kv = log.sm.get('/a');
    assert.ok(kv !== null && Object.isFrozen(kv));
  });
});

describe('kv state machine: revisions (etcd mvcc semantics)', () => {
  it('tracks createRevision, modRevision and version across updates, deletes and re-creation', () => {
    const log = new Log();
    log.run(put('/a', '1')); // rev 1
    log.run(put('/b', '1')); // rev 2
    log.run(put('/a', '2')); // rev 3
    assert.deepEqual(log.sm.get('/a'), { key: '/a', value: '2', createRevision: 1, modRevision: 3, version: 2, lease: null });
    assert.deepEqual(log.sm.get('/b'), { key: '/b', value: '1', createRevision: 2, modRevision: 2, version: 1, lease: null });
    const r = log.run(put('/a', '2')); // same value is still a write
    assert.deepEqual(r, { type: 'put', revision: 4, prev: { key: '/a', value: '2', createRevision: 1, modRevision: 3, version: 2, lease: null } });
    log.run(del('/a')); // rev 5
    log.run(put('/a', 'new')); // rev 6
    assert.deepEqual(log.sm.get('/a'), { key: '/a', value: 'new', createRevision: 6, modRevision: 6, version: 1, lease: null });
    assert.equal(log.sm.revision, 6);
  });

  it('reports changed keys for watchers', () => {
    const log = new Log();
    const r = log.send('c', 1, put('/a', '1'));
    assert.deepEqual(r.changes, [{ key: '/a', kv: { key: '/a', value: '1', createRevision: 1, modRevision: 1, version: 1, lease: null } }]);
    assert.deepEqual(log.send('c', 2, del('/zz')).changes, []);
  });
});

describe('kv state machine: compare-and-set', () => {
  it('succeeds on the expected modRevision and fails on any other, changing nothing', () => {
    const log = new Log();
    log.run(put('/leader', 'n1')); // rev 1
    const ok = log.run(cas('/leader', 1, 'n1'));
    assert.deepEqual(ok, { type: 'cas', succeeded: true, revision: 2, current: { key: '/leader', value: 'n1', createRevision: 1, modRevision: 2, version: 2, lease: null } });
    const before = stateOf(log.sm);
    const r = log.send('n2', 1, cas('/leader', 1, 'n2'));
    assert.deepEqual(r.result, { type: 'cas', succeeded: false, revision: 2, current: { key: '/leader', value: 'n1', createRevision: 1, modRevision: 2, version: 2, lease: null } });
    assert.deepEqual(r.changes, []);
    assert.deepEqual(stateOf(log.sm), { ...before, sessions: 2 });
    assert.deepEqual(log.run(cas('/leader', 0, 'x')), r.result, 'expectRevision 0 fails on an existing key');
  });

  it('create-if-absent: of two racing creators the first wins and the second sees its key', () => {
    const log = new Log();
    const first = log.send('n1', 1, cas('/leader', 0, 'n1'));
    const second = log.send('n2', 1, cas('/leader', 0, 'n2'));
    const won = { key: '/leader', value: 'n1', createRevision: 1, modRevision: 1, version: 1, lease: null };
    assert.deepEqual(first.result, { type: 'cas', succeeded: true, revision: 1, current: won });
    assert.deepEqual(second.result, { type: 'cas', succeeded: false, revision: 1, current: won });
    assert.equal(log.sm.get('/leader')?.value, 'n1');
  });

  it('deletes when value is null, and fails on an absent key expected to exist', () => {
    const log = new Log();
    log.run(put('/leader', 'n1')); // rev 1
    assert.deepEqual(log.run(cas('/leader', 1, null)), { type: 'cas', succeeded: true, revision: 2, current: null });
    assert.equal(log.sm.get('/leader'), null);
    assert.deepEqual(log.run(cas('/leader', 1, null)), { type: 'cas', succeeded: false, revision: 2, current: null });
    // "Must not exist, then delete": holds, nothing to do, no new revision.
    assert.deepEqual(log.run(cas('/leader', 0, null)), { type: 'cas', succeeded: true, revision: 2, current: null });
  });
});

describe('kv state machine: exactly-once sessions (thesis §6.3)', () => {
  it('applies a duplicate (clientId, seq) once and returns the cached result', () => {
    const log = new Log();
    const first = log.send('c', 1, put('/a', '1'));
    const again = log.send('c', 1, put('/a', '1'));
    assert.deepEqual(again.result, first.result);
    assert.deepEqual(again.changes, []);
    assert.deepEqual(again.request, { clientId: 'c', seq: 1 });
    assert.equal(log.sm.revision, 1);
    assert.equal(log.sm.get('/a')?.version, 1);
    // Even with other content: the seq identifies the command.
    assert.deepEqual(log.send('c', 1, put('/a', 'other')).result, first.result);
    assert.equal(log.sm.get('/a')?.value, '1');
  });

  it('refuses a seq older than the last applied one, without applying it', () => {
    const log = new Log();
    log.send('c', 1, put('/a', '1'));
    log.send('c', 5, put('/a', '5')); // gaps are allowed
    const r = log.send('c', 3, put('/a', '3'));
    assert.equal(r.result?.type, 'error');
    assert.equal(r.result?.type === 'error' && r.result.error, 'ERR_STALE_SEQ');
    assert.equal(log.sm.get('/a')?.value, '5');
    assert.equal(log.sm.sessionSeq('c'), 5);
  });

  it('keeps sessions per client', () => {
    const log = new Log();
    log.send('a', 1, put('/k', 'a'));
    log.send('b', 1, put('/k', 'b'));
    assert.equal(log.sm.get('/k')?.value, 'b');
    assert.equal(log.sm.revision, 2);
  });

  it(`bounds the session table at ${MAX_SESSIONS}, evicting the least recently used client`, () => {
    const log = new Log();
    log.send('first', 1, put('/k', 'first'));
    log.send('kept', 1, put('/k', 'kept'));
    for (let i = 0; i < MAX_SESSIONS - 2; i++) log.send(`c${i}`, 1, put('/k', 'x'));
    assert.equal(log.sm.sessionCount, MAX_SESSIONS);
    log.send('kept', 1, put('/k', 'kept')); // a retry refreshes the session
    log.send('new', 1, put('/k', 'new'));
    assert.equal(log.sm.sessionCount, MAX_SESSIONS);
    assert.equal(log.sm.sessionSeq('first'), null, 'least recently used evicted');
    assert.equal(log.sm.sessionSeq('kept'), 1);
    log.send('another', 1, put('/k', 'another'));
    assert.equal(log.sm.sessionSeq('c0'), null, 'next least recently used evicted');
    assert.equal(log.sm.sessionSeq('kept'), 1);
    // The bound holds across snapshots, in the same order.
    const restored = KvStateMachine.restore(log.sm.snapshot());
    const a = new Log(log.sm);
    const b = new Log(restored);
    a.send('more', 1, put('/k', 'm'));
    b.send('more', 1, put('/k', 'm'));
    assert.equal(b.sm.sessionSeq('c1'), null);
    assert.deepEqual(b.sm.snapshot(), a.sm.snapshot());
  });
});

describe('kv state machine: entries that are not commands', () => {
  it('treats empty data (the leader no-op) as a no-op that advances appliedIndex', () => {
    const log = new Log();
    log.run(put('/a', '1'));
    const r = log.raw(new Uint8Array(0));
    assert.deepEqual(r, { index: 2, request: null, result: null, changes: [] });
    assert.equal(log.sm.appliedIndex, 2);
    assert.equal(log.sm.revision, 1);
  });

  it('applies undecodable data as ERR_BAD_MESSAGE and changes nothing but appliedIndex', () => {
    const log = new Log();
    log.run(put('/a', '1'));
    const before = stateOf(log.sm);
    const bad = [
      new Uint8Array([0xc1]), // the never-used msgpack byte (msgpackr reads it as a marker object)
      new Uint8Array([0x92, 0x01]), // truncated array
      new Uint8Array(200_001).fill(0x91, 0, 200_000), // nested 200,000 deep: the decoder overflows the stack
      Uint8Array.from(pack({ clientId: 'c1', seq: 2, op: { type: 'put', key: '/a' } })),
      Uint8Array.from(pack({ clientId: 'c1', seq: 2, op: { type: 'put', key: '/a', value: 2 } })),
      Uint8Array.from(pack({ clientId: 'c1', seq: 2, op: { type: 'rename', key: '/a' } })),
      Uint8Array.from(pack('put /a 2')),
      new Uint8Array([...encodeCommand({ clientId: 'c1', seq: 2, op: put('/a', '2') }), 0x00]), // trailing byte
    ];
    for (const data of bad) {
      const r = log.raw(data);
      assert.equal(r.result?.type === 'error' && r.result.error, 'ERR_BAD_MESSAGE', `for ${Buffer.from(data).toString('hex')}`);
      assert.equal(r.request, null);
      assert.deepEqual(r.changes, []);
      assert.equal(log.sm.appliedIndex, r.index);
    }
    assert.deepEqual(stateOf(log.sm), before);
    assert.equal(log.sm.sessionSeq('c1'), 1, 'the session is not touched');
  });

  it('refuses apply out of log order', () => {
    const sm = new KvStateMachine();
    sm.apply(1, new Uint8Array(0));
    assert.throws(() => sm.apply(1, new Uint8Array(0)), hasCode('ERR_INVARIANT'));
    sm.markApplied(3); // a conf change the node applied itself
    assert.equal(sm.appliedIndex, 3);
    assert.throws(() => sm.apply(2, new Uint8Array(0)), hasCode('ERR_INVARIANT'));
  });
});

describe('kv state machine: size limits', () => {
  it('refuses over-long keys and values as ERR_TOO_LARGE, deterministically and once per seq', () => {
    const log = new Log();
    const okKey = '/' + 'k'.repeat(MAX_KEY_BYTES - 1);
    assert.equal(log.run(put(okKey, 'v')).type, 'put');
    const longKey = 'é'.repeat(MAX_KEY_BYTES / 2 + 1); // 513 characters, 1026 UTF-8 bytes
    const r = log.send('c', 1, put(longKey, 'v'));
    assert.deepEqual(r.result, { type: 'error', error: 'ERR_TOO_LARGE', message: `key is 1026 bytes, limit ${MAX_KEY_BYTES}` });
    assert.deepEqual(log.send('c', 1, put(longKey, 'v')).result, r.result, 'the refusal is the cached outcome');
    const big = 'x'.repeat(MAX_VALUE_BYTES + 1);
    assert.equal(log.send('c', 2, put('/b', big)).result?.type, 'error');
    assert.equal(log.send('c', 3, cas('/b', 0, big)).result?.type, 'error');
    assert.equal(log.send('c', 4, delPrefix(longKey)).result?.type, 'error');
    assert.equal(log.send('c', 5, put('/b', 'x'.repeat(MAX_VALUE_BYTES))).result?.type, 'put');
    assert.equal(log.sm.revision, 2);
  });
});

describe('kv commands: encoding and validation', () => {
  it('round-trips every operation', () => {
    for (const op of [put('/a', 'v'), put('/ü🙂', ''), del('/a'), cas('/a', 7, 'v'), cas('/a', 0, null), delPrefix('')]) {
      const cmd = { clientId: 'node-1', seq: 42, op };
      assert.deepEqual(decodeCommand(encodeCommand(cmd)), cmd);
    }
  });

  it('encodes the same command to the same bytes whatever the field order', () => {
    const a = encodeCommand({ clientId: 'c', seq: 1, op: { type: 'cas', key: '/k', expectRevision: 3, value: 'v' } });
    const b = encodeCommand({ op: { value: 'v', expectRevision: 3, key: '/k', type: 'cas' }, seq: 1, clientId: 'c' });
    assert.deepEqual(a, b);
  });

  it('rejects malformed commands with ERR_BAD_MESSAGE naming the field', () => {
    const cases: [unknown, string][] = [
      [{ clientId: 'c', seq: 1 }, 'command.op'],
      [{ clientId: '', seq: 1, op: put('/a', 'v') }, 'command.clientId'],
      [{ clientId: 'c'.repeat(257), seq: 1, op: put('/a', 'v') }, 'command.clientId'],
      [{ clientId: 'c', seq: 0, op: put('/a', 'v') }, 'command.seq'],
      [{ clientId: 'c', seq: 1.5, op: put('/a', 'v') }, 'command.seq'],
      [{ clientId: 'c', seq: '1', op: put('/a', 'v') }, 'command.seq'],
      [{ clientId: 'c', seq: 2n ** 60n, op: put('/a', 'v') }, 'command.seq'],
      [{ clientId: 'c', seq: 1, op: put('', 'v') }, 'command.op.key'],
      [{ clientId: 'c', seq: 1, op: { type: 'put', key: '/a', value: new Date(0) } }, 'command.op.value'],
      [{ clientId: 'c', seq: 1, op: { type: 'put', key: '/a', value: 'v', lease: 1 } }, 'command.op.lease'],
      [{ clientId: 'c', seq: 1, op: put('/a', 'v'), extra: true }, 'command.extra'],
      [{ clientId: 'c', seq: 1, op: { type: 'cas', key: '/a', expectRevision: -1, value: null } }, 'command.op.expectRevision'],
      [{ clientId: 'c', seq: 1, op: { type: 'cas', key: '/a', value: null } }, 'command.op.expectRevision'],
      [{ clientId: 'c', seq: 1, op: { type: 'deletePrefix', prefix: null } }, 'command.op.prefix'],
      [{ clientId: 'c', seq: 1, op: { type: 'txn' } }, 'command.op.type'],
      [[1, 2, 3], 'command'],
    ];
    for (const [value, field] of cases) {
      assert.throws(() => decodeCommand(Uint8Array.from(pack(value))), hasCode('ERR_BAD_MESSAGE', field), `${field}: ${String(value)}`);
    }
    assert.throws(() => encodeCommand({ clientId: 'c', seq: 0, op: put('/a', 'v') }), hasCode('ERR_BAD_MESSAGE', 'command.seq'));
    // A lone surrogate has no UTF-8 form (msgpackr would write WTF-8 and every replica read back
    // U+FFFD), so the proposer refuses it rather than propose a different key than it was given.
    assert.throws(() => encodeCommand({ clientId: 'c', seq: 1, op: put('/a\ud800', 'v') }), hasCode('ERR_BAD_MESSAGE', 'command.op.key'));
    assert.throws(() => decodeCommand(new Uint8Array([0x92, 0x01])), hasCode('ERR_BAD_MESSAGE', 'not valid msgpack'));
  });
});

describe('kv state machine: snapshots', () => {
  const populated = (): Log => {
    const log = new Log();
    log.run(put('/b', '1'));
    log.run(put('/a', 'ü🙂'), 'c2');
    log.run(cas('/b', 1, '2'));
    log.run(del('/a'), 'c3');
    log.run(put('/a', 'x'));
    log.send('c4', 1, put('k'.repeat(2000), 'v')); // error result in a session
    log.raw(new Uint8Array(0));
    return log;
  };

  it('restores identical state, and identical results for the same commands afterwards', () => {
    const log = populated();
    const bytes = log.sm.snapshot();
    const restored = KvStateMachine.restore(bytes);
    assert.deepEqual(restored.snapshot(), bytes);
    assert.equal(restored.appliedIndex, log.sm.appliedIndex);
    assert.equal(restored.revision, log.sm.revision);
    assert.deepEqual(restored.range(''), log.sm.range(''));
    const a = new Log(log.sm);
    const b = new Log(restored);
    const next: [string, number, KvOp][] = [['c1', 3, put('/c', '1')], ['c1', 3, put('/c', '1')], ['c2', 1, put('/z', '')],
      ['c4', 1, put('/q', 'q')], ['c5', 1, cas('/b', 3, null)], ['c5', 2, delPrefix('/')]];
    for (const [clientId, seq, op] of next) assert.deepEqual(b.send(clientId, seq, op), a.send(clientId, seq, op));
    assert.deepEqual(b.sm.snapshot(), a.sm.snapshot());
  });

  it('restores the empty state', () => {
    const sm = KvStateMachine.restore(new KvStateMachine().snapshot());
    assert.equal(sm.appliedIndex, 0);
    assert.equal(sm.size, 0);
  });

  it('rejects garbage and inconsistent snapshots with ERR_CORRUPT_STORE', () => {
    const good = (): Record<string, unknown> => ({
      format: 'conclave-kv', version: 2, appliedIndex: 5, revision: 3,
      kvs: [['/a', 'v', 1, 2, 2, null], ['/b', 'w', 3, 3, 1, null]],
      sessions: [['c1', 1, 4, ['put', 2, null]], ['c2', 2, 5, ['error', 'ERR_TOO_LARGE', 'key is too long']]],
      leases: [],
    });
    assert.equal(KvStateMachine.restore(Uint8Array.from(pack(good()))).size, 2, 'the baseline is valid');
    const variants: [string, (s: Record<string, unknown>) => unknown][] = [
      ['snapshot.format', (s) => ({ ...s, format: 'other' })],
      ['snapshot.version', (s) => ({ ...s, version: 1 })], // the format before leases
      ['snapshot.revision', (s) => ({ ...s, revision: -1 })],
      ['snapshot.extra', (s) => ({ ...s, extra: 1 })],
      ['snapshot.kvs[1].key', (s) => ({ ...s, kvs: [['/b', 'w', 3, 3, 1, null], ['/a', 'v', 1, 2, 2, null]] })],
      ['snapshot.kvs[1].key', (s) => ({ ...s, kvs: [['/a', 'v', 1, 2, 2, null], ['/a', 'v', 1, 2, 2, null]] })],
      ['snapshot.kvs[0].modRevision', (s) => ({ ...s, kvs: [['/a', 'v', 1, 9, 2, null]] })],
      ['snapshot.kvs[0].createRevision', (s) => ({ ...s, kvs: [['/a', 'v', 3, 2, 2, null]] })],
      ['snapshot.kvs[0].version', (s) => ({ ...s, kvs: [['/a', 'v', 1, 2, 0, null]] })],
      ['snapshot.kvs[0]', (s) => ({ ...s, kvs: [['/a', 'v', 1, 2, 2]] })], // no lease field
      ['snapshot.sessions[1].clientId', (s) => ({ ...s, sessions: [['c1', 1, 4, ['put', 2, null]], ['c1', 2, 5, ['put', 3, null]]] })],
      ['snapshot.sessions[1].lastIndex', (s) => ({ ...s, sessions: [['c1', 1, 4, ['put', 2, null]], ['c2', 2, 4, ['put', 3, null]]] })],
      ['snapshot.sessions[0].lastIndex', (s) => ({ ...s, sessions: [['c1', 1, 6, ['put', 2, null]]] })],
      ['snapshot.sessions[0].result.type', (s) => ({ ...s, sessions: [['c1', 1, 4, ['get', 2]]] })],
      ['snapshot.sessions[0].result.error', (s) => ({ ...s, sessions: [['c1', 1, 4, ['error', 'ERR_NOPE', 'x']]] })],
      ['snapshot.sessions[0].result', (s) => ({ ...s, sessions: [['c1', 1, 4, ['cas', true, 2]]] })],
      ['snapshot', () => [1, 2, 3]],
    ];
    for (const [field, mutate] of variants) {
      assert.throws(() => KvStateMachine.restore(Uint8Array.from(pack(mutate(good())))), hasCode('ERR_CORRUPT_STORE', field), field);
    }
    const bytes = populated().sm.snapshot();
    for (const garbage of [new Uint8Array(0), new Uint8Array([0xc1]), bytes.subarray(0, bytes.length - 1), new Uint8Array([...bytes, 0])]) {
      assert.throws(() => KvStateMachine.restore(garbage), hasCode('ERR_CORRUPT_STORE'));
    }
    const rng = mulberry32(7);
    for (let i = 0; i < 200; i++) {
      const noise = Uint8Array.from({ length: 1 + Math.floor(rng() * 64) }, () => Math.floor(rng() * 256));
      assert.throws(() => KvStateMachine.restore(noise), hasCode('ERR_CORRUPT_STORE'));
    }
  });
});

describe('kv state machine: determinism', () => {
  it('replicas fed the same random entry stream end with identical snapshot bytes and results', () => {
    for (const seed of [1, 2, 3, 0xc0ffee]) {
      const stream = randomStream(seed, 3000);
      const a = new KvStateMachine();
      const b = new KvStateMachine();
      let c: KvStateMachine | null = null; // joins midway from a snapshot, as a lagging follower would
      const seen = new Set<string>();
      stream.forEach((data, i) => {
        const ra = a.apply(i + 1, data);
        const r = ra.result;
        seen.add(outcome(r));
        assert.deepEqual(b.apply(i + 1, data), ra);
        if (c !== null) assert.deepEqual(c.apply(i + 1, data), ra);
        if (i === 1500) c = KvStateMachine.restore(a.snapshot());
      });
      assert.deepEqual(b.snapshot(), a.snapshot(), `seed ${seed}`);
      assert.deepEqual((c as KvStateMachine | null)?.snapshot(), a.snapshot(), `seed ${seed}`);
      assert.deepEqual((c as KvStateMachine | null)?.leases(), a.leases(), `seed ${seed}`);
      assert.ok(a.revision > 100 && a.size > 0, 'the stream exercised the store');
      assert.deepEqual([...seen].sort(), ['ERR_BAD_MESSAGE', 'ERR_LEASE_NOT_FOUND', 'ERR_STALE_SEQ', 'ERR_TOO_LARGE', 'cas:false', 'cas:true',
        'delete', 'deletePrefix', 'leaseGrant', 'leaseKeepAlive:false', 'leaseKeepAlive:true', 'leaseRevoke:false', 'leaseRevoke:keys',
        'leaseRevoke:none', 'noop', 'put'], 'every kind of outcome occurred');
    }
  });
});

/** A label per kind of outcome, so the determinism test can check the stream reached them all. */
function outcome(r: KvResult | null): string {
  if (r === null) return 'noop';
  switch (r.type) {
    case 'error': return r.error;
    case 'cas': return `cas:${r.succeeded}`;
    case 'leaseKeepAlive': return `leaseKeepAlive:${r.found}`;
    case 'leaseRevoke': return !r.revoked ? 'leaseRevoke:false' : r.deleted > 0 ? 'leaseRevoke:keys' : 'leaseRevoke:none';
    default: return r.type;
  }
}

/** mulberry32: a small seeded PRNG, good enough to drive tests reproducibly. */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Entries as a Raft log might carry them: commands from a few clients over a few keys and leases,
 * with retries, stale retries, no-ops, garbage and over-long keys. The cas revisions and the
 * revokes' renewal counts are read from a reference replica, so that some succeed (and some lose
 * to a renewal); the stream itself is plain bytes.
 */
function randomStream(seed: number, length: number): Uint8Array[] {
  const rng = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
  const keys = ['/a', '/b', '/s/1', '/s/2', '/s/3', '/t/x', '/t/y'];
  const clients = ['n1', 'n2', 'n3', 'n4'];
  const leaseIds = ['L1', 'L2', 'L3'];
  const seqs = new Map<string, number>();
  const sent: Uint8Array[] = [];
  const ref = new KvStateMachine();
  const out: Uint8Array[] = [];
  for (let i = 1; i <= length; i++) {
    const roll = rng();
    let data: Uint8Array;
    if (roll < 0.03) data = new Uint8Array(0);
    else if (roll < 0.05) data = Uint8Array.from({ length: 1 + Math.floor(rng() * 16) }, () => Math.floor(rng() * 256));
    else if (roll < 0.15 && sent.length > 0) data = pick(sent.slice(-20)); // retry, maybe stale
    else {
      const clientId = pick(clients);
      const seq = (seqs.get(clientId) ?? 0) + 1 + (rng() < 0.1 ? 3 : 0);
      seqs.set(clientId, seq);
      const key = rng() < 0.01 ? 'k'.repeat(MAX_KEY_BYTES + 1) : pick(keys);
      const op = rng();
      const cur = ref.get(key)?.modRevision ?? 0;
      const value = rng() < 0.2 ? null : `v${Math.floor(rng() * 1000)}`;
      // Some writes attach to a lease, which may not exist (yet, or any more).
      const lease = rng() < 0.3 ? { lease: pick(leaseIds) } : {};
      const id = pick(leaseIds);
      const renewals = ref.lease(id)?.renewals ?? 0;
      let kvOp: KvOp;
      if (op < 0.35) kvOp = { ...put(key, value ?? ''), ...lease };
      else if (op < 0.47) kvOp = del(key);
      else if (op < 0.77) kvOp = { ...cas(key, rng() < 0.7 ? cur : Math.floor(rng() * 5), value), ...(value === null ? {} : lease) };
      else if (op < 0.83) kvOp = delPrefix(pick(['/s/', '/t', '/', '/none']));
      else if (op < 0.89) kvOp = { type: 'leaseGrant', lease: id, ttlMs: 1 + Math.floor(rng() * 10_000) };
      else if (op < 0.95) kvOp = { type: 'leaseKeepAlive', lease: id };
      else kvOp = { type: 'leaseRevoke', lease: id, renewals: pick([renewals, renewals, Math.max(0, renewals - 1), null]) };
      data = encodeCommand({ clientId, seq, op: kvOp });
      sent.push(data);
    }
    ref.apply(i, data);
    out.push(data);
  }
  return out;
}
