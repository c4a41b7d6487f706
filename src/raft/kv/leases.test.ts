// Leases in the key-value state machine: the replicated half of the HA leader lock. Expiry itself is
// the leader's (it proposes leaseRevoke); these tests cover what every replica records and applies.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pack } from 'msgpackr';
import { MAX_LEASE_ID_BYTES, MAX_LEASE_TTL_MS, decodeCommand, encodeCommand } from './commands.ts';
import type { KvOp } from './commands.ts';
import { KvStateMachine } from './state-machine.ts';
import { Log, hasCode } from './test-log.ts';


const grant = (lease: string, ttlMs: number): KvOp => ({ type: 'leaseGrant', lease, ttlMs });
const keepAlive = (lease: string): KvOp => ({ type: 'leaseKeepAlive', lease });
const revoke = (lease: string, renewals: number | null): KvOp => ({ type: 'leaseRevoke', lease, renewals });
const put = (key: string, value: string, lease?: string): KvOp => (lease === undefined ? { type: 'put', key, value } : { type: 'put', key, value, lease });


/** A store with lease L (2 keys), lease M (1 key) and an unattached key. Revision 4. */
function withLeases(): Log {
  const log = new Log();
  log.run(grant('L', 10_000));
  log.run(grant('M', 5_000));
  log.run(put('/leader', 'n1', 'L'));
  log.run(put('/members/n1', 'up', 'L'));
  log.run(put('/members/n2', 'up', 'M'));
  log.run(put('/config', 'x'));
  return log;
}

describe('kv leases: grant, keep-alive, revoke', () => {
  it('grants a lease, renews it on keep-alive and re-grant, and reports the counter', () => {
    const log = new Log();
    assert.deepEqual(log.run(grant('L', 10_000)), { type: 'leaseGrant', revision: 0, lease: 'L', ttlMs: 10_000, renewals: 0 });
    assert.deepEqual(log.run(keepAlive('L')), { type: 'leaseKeepAlive', revision: 0, lease: 'L', found: true, ttlMs: 10_000, renewals: 1 });
    assert.deepEqual(log.run(keepAlive('L')), { type: 'leaseKeepAlive', revision: 0, lease: 'L', found: true, ttlMs: 10_000, renewals: 2 });
    // Re-granting sets the TTL and counts as a renewal.
    assert.deepEqual(log.run(grant('L', 3_000)), { type: 'leaseGrant', revision: 0, lease: 'L', ttlMs: 3_000, renewals: 3 });
    assert.deepEqual(log.sm.lease('L'), { lease: 'L', ttlMs: 3_000, renewals: 3, keys: [] });
    assert.ok(Object.isFrozen(log.sm.lease('L')) && Object.isFrozen(log.sm.lease('L')?.keys));
    assert.equal(log.sm.revision, 0, 'lease bookkeeping changes no key and no revision');
  });

  it('answers a keep-alive of an unknown lease with found false, changing nothing', () => {
    const log = new Log();
    const r = log.apply(keepAlive('nope'));
    assert.deepEqual(r.result, { type: 'leaseKeepAlive', revision: 0, lease: 'nope', found: false, ttlMs: 0, renewals: 0 });
    assert.deepEqual(r.changes, []);
    assert.equal(log.sm.lease('nope'), null, 'a keep-alive does not create a lease');
    assert.deepEqual(log.sm.leases(), []);
  });

  it('lists leases sorted by id with their keys sorted', () => {
    const log = withLeases();
    log.run(grant('A', 1));
    assert.deepEqual(log.sm.leases(), [
      { lease: 'A', ttlMs: 1, renewals: 0, keys: [] },
      { lease: 'L', ttlMs: 10_000, renewals: 0, keys: ['/leader', '/members/n1'] },
      { lease: 'M', ttlMs: 5_000, renewals: 0, keys: ['/members/n2'] },
    ]);
    assert.equal(log.sm.get('/leader')?.lease, 'L');
    assert.equal(log.sm.get('/config')?.lease, null);
  });

  it('revokes conditionally: refused after a renewal that came in between, accepted when unchanged', () => {
    const log = withLeases();
    // The leader saw 0 renewals and decided L expired; a keep-alive committed before its revoke.
    log.run(keepAlive('L'), 'holder');
    const refused = log.apply(revoke('L', 0), 'leader');
    assert.deepEqual(refused.result, { type: 'leaseRevoke', revision: 4, lease: 'L', revoked: false, deleted: 0 });
    assert.deepEqual(refused.changes, []);
    assert.equal(log.sm.lease('L')?.renewals, 1);
    assert.equal(log.sm.get('/leader')?.value, 'n1');
    // A count from the future is no better than a stale one.
    assert.deepEqual(log.run(revoke('L', 2), 'leader'), { type: 'leaseRevoke', revision: 4, lease: 'L', revoked: false, deleted: 0 });
    const accepted = log.run(revoke('L', 1), 'leader');
    assert.deepEqual(accepted, { type: 'leaseRevoke', revision: 5, lease: 'L', revoked: true, deleted: 2 });
    assert.equal(log.sm.lease('L'), null);
    assert.deepEqual(log.run(revoke('L', null)), { type: 'leaseRevoke', revision: 5, lease: 'L', revoked: false, deleted: 0 }, 'already gone');
  });

  it('revokes unconditionally with renewals null, whatever the counter', () => {
    const log = withLeases();
    for (let i = 0; i < 3; i++) log.run(keepAlive('M'));
    assert.deepEqual(log.run(revoke('M', null)), { type: 'leaseRevoke', revision: 5, lease: 'M', revoked: true, deleted: 1 });
    assert.equal(log.sm.lease('M'), null);
    assert.equal(log.sm.get('/members/n2'), null);
  });

  it('deletes exactly the attached keys, in one revision, and reports them as changes', () => {
    const log = withLeases();
    const before = log.sm.range('');
    const r = log.apply(revoke('L', null));
    assert.deepEqual(r.result, { type: 'leaseRevoke', revision: 5, lease: 'L', revoked: true, deleted: 2 });
    assert.deepEqual(r.changes, [{ key: '/leader', kv: null }, { key: '/members/n1', kv: null }]);
    assert.equal(log.sm.revision, 5, 'one revision for all the keys');
    assert.deepEqual(log.sm.range(''), before.filter((kv) => kv.lease !== 'L'));
    assert.deepEqual(log.sm.lease('M')?.keys, ['/members/n2'], 'other leases keep their keys');
    // A lease with no keys goes without a new revision.
    log.run(grant('E', 100));
    assert.deepEqual(log.run(revoke('E', 0)), { type: 'leaseRevoke', revision: 5, lease: 'E', revoked: true, deleted: 0 });
  });

  it('applies a retried keep-alive once (exactly-once sessions)', () => {
    const log = withLeases();
    const first = log.send('holder', 1, keepAlive('L'));
    const again = log.send('holder', 1, keepAlive('L'));
    assert.deepEqual(again.result, first.result);
    assert.equal(log.sm.lease('L')?.renewals, 1);
    // And a retried grant is not a second renewal either.
    log.send('holder', 2, grant('L', 20_000));
    log.send('holder', 2, grant('L', 20_000));
    assert.deepEqual(log.sm.lease('L'), { lease: 'L', ttlMs: 20_000, renewals: 2, keys: ['/leader', '/members/n1'] });
  });
});

describe('kv leases: attaching keys', () => {
  it('detaches a key re-put without a lease, so a revoke leaves it', () => {
    const log = withLeases();
    const r = log.apply(put('/leader', 'n1'));
    assert.equal(r.changes[0].kv?.lease, null);
    assert.deepEqual(log.sm.lease('L')?.keys, ['/members/n1']);
    assert.deepEqual(log.run(revoke('L', null)), { type: 'leaseRevoke', revision: 6, lease: 'L', revoked: true, deleted: 1 });
    assert.deepEqual(log.sm.get('/leader'), { key: '/leader', value: 'n1', createRevision: 1, modRevision: 5, version: 2, lease: null });
  });

  it('moves a key re-put with another lease', () => {
    const log = withLeases();
    log.run(put('/leader', 'n2', 'M'));
    assert.deepEqual(log.sm.lease('L')?.keys, ['/members/n1']);
    assert.deepEqual(log.sm.lease('M')?.keys, ['/leader', '/members/n2']);
    log.run(revoke('L', null));
    assert.equal(log.sm.get('/leader')?.value, 'n2');
  });

  it('refuses a put with an unknown lease as ERR_LEASE_NOT_FOUND, changing nothing', () => {
    const log = withLeases();
    const before = log.sm.snapshot();
    const r = log.send('c9', 1, put('/leader', 'n2', 'gone'));
    assert.deepEqual(r.result, { type: 'error', error: 'ERR_LEASE_NOT_FOUND', message: 'lease "gone" does not exist' });
    assert.deepEqual(r.changes, []);
    assert.equal(log.sm.get('/leader')?.value, 'n1');
    assert.equal(log.sm.get('/leader')?.lease, 'L');
    assert.equal(log.sm.revision, 4);
    assert.equal(log.sm.lease('gone'), null);
    // Only the session moved; the keys and leases are as they were (the same bytes but for the session).
    assert.deepEqual(log.sm.range(''), KvStateMachine.restore(before).range(''));
    assert.deepEqual(log.sm.leases(), KvStateMachine.restore(before).leases());
    assert.deepEqual(log.send('c9', 1, put('/leader', 'n2', 'gone')).result, r.result, 'the refusal is the cached outcome');
  });

  it('attaches with cas, and refuses cas with an unknown lease even when the compare would hold', () => {
    const log = withLeases();
    const won = log.run({ type: 'cas', key: '/leader2', expectRevision: 0, value: 'n1', lease: 'M' });
    assert.deepEqual(won, { type: 'cas', succeeded: true, revision: 5,
      current: { key: '/leader2', value: 'n1', createRevision: 5, modRevision: 5, version: 1, lease: 'M' } });
    assert.deepEqual(log.sm.lease('M')?.keys, ['/leader2', '/members/n2']);
    const failed = log.run({ type: 'cas', key: '/leader2', expectRevision: 1, value: 'n2', lease: 'L' });
    assert.equal(failed.type === 'cas' && failed.succeeded, false);
    assert.deepEqual(log.sm.lease('M')?.keys, ['/leader2', '/members/n2'], 'a failed cas attaches nothing');
    const unknown = log.run({ type: 'cas', key: '/x', expectRevision: 0, value: 'v', lease: 'gone' });
    assert.equal(unknown.type === 'error' && unknown.error, 'ERR_LEASE_NOT_FOUND');
    assert.equal(log.sm.get('/x'), null);
    // A cas without lease detaches, like put.
    log.run({ type: 'cas', key: '/leader2', expectRevision: 5, value: 'n1' });
    assert.deepEqual(log.sm.lease('M')?.keys, ['/members/n2']);
  });

  it('detaches keys that delete, cas-delete and deletePrefix remove, so a re-created key is not revoked', () => {
    const log = withLeases();
    log.run({ type: 'delete', key: '/leader' });
    log.run({ type: 'cas', key: '/members/n2', expectRevision: 3, value: null });
    assert.deepEqual(log.sm.lease('L')?.keys, ['/members/n1']);
    assert.deepEqual(log.sm.lease('M')?.keys, []);
    log.run({ type: 'deletePrefix', prefix: '/members/' });
    assert.deepEqual(log.sm.lease('L')?.keys, []);
    log.run(put('/leader', 'n3')); // re-created without a lease
    assert.deepEqual(log.run(revoke('L', null)), { type: 'leaseRevoke', revision: 8, lease: 'L', revoked: true, deleted: 0 });
    assert.equal(log.sm.get('/leader')?.value, 'n3');
  });
});

describe('kv leases: snapshots', () => {
  it('restores leases exactly: same bytes, same lease table, same results afterwards', () => {
    const log = withLeases();
    log.run(keepAlive('L'));
    log.run(grant('Z', 1));
    const bytes = log.sm.snapshot();
    const restored = KvStateMachine.restore(bytes);
    assert.deepEqual(restored.snapshot(), bytes);
    assert.deepEqual(restored.leases(), log.sm.leases());
    assert.deepEqual(restored.range(''), log.sm.range(''));
    const a = new Log(log.sm);
    const b = new Log(restored);
    const next: [string, number, KvOp][] = [['c1', 9, keepAlive('L')], ['c1', 9, keepAlive('L')], ['x', 1, revoke('L', 1)],
      ['x', 2, revoke('L', 2)], ['x', 3, put('/a', 'v', 'Z')], ['x', 4, put('/a', 'v', 'L')], ['x', 5, revoke('M', 0)]];
    for (const [clientId, seq, op] of next) assert.deepEqual(b.send(clientId, seq, op), a.send(clientId, seq, op));
    assert.deepEqual(b.sm.snapshot(), a.sm.snapshot());
  });

  it('rejects lease data that disagrees with the keys, with ERR_CORRUPT_STORE naming the field', () => {
    const good = (): Record<string, unknown> => ({
      format: 'conclave-kv', version: 2, appliedIndex: 6, revision: 3,
      kvs: [['/a', 'v', 1, 1, 1, 'L'], ['/b', 'w', 2, 2, 1, 'L'], ['/c', 'x', 3, 3, 1, null]],
      sessions: [['c1', 1, 6, ['leaseRevoke', 3, 'gone', true, 1]]],
      leases: [['K', 1, 0, []], ['L', 1000, 4, ['/a', '/b']]],
    });
    const sm = KvStateMachine.restore(Uint8Array.from(pack(good())));
    assert.deepEqual(sm.leases(), [{ lease: 'K', ttlMs: 1, renewals: 0, keys: [] }, { lease: 'L', ttlMs: 1000, renewals: 4, keys: ['/a', '/b'] }],
      'the baseline is valid');
    const variants: [string, (s: Record<string, unknown>) => unknown][] = [
      ['snapshot.leases', ({ leases: _, ...s }) => s],
      ['snapshot.leases', (s) => ({ ...s, leases: {} })],
      ['snapshot.leases[1].lease', (s) => ({ ...s, leases: [['L', 1000, 4, ['/a', '/b']], ['K', 1, 0, []]] })],
      ['snapshot.leases[1].lease', (s) => ({ ...s, leases: [['L', 1, 0, []], ['L', 1000, 4, ['/a', '/b']]] })],
      ['snapshot.leases[0].lease', (s) => ({ ...s, leases: [['', 1, 0, []], ['L', 1000, 4, ['/a', '/b']]] })],
      ['snapshot.leases[0].ttlMs', (s) => ({ ...s, leases: [['K', 0, 0, []], ['L', 1000, 4, ['/a', '/b']]] })],
      ['snapshot.leases[0].ttlMs', (s) => ({ ...s, leases: [['K', MAX_LEASE_TTL_MS + 1, 0, []], ['L', 1000, 4, ['/a', '/b']]] })],
      ['snapshot.leases[0].renewals', (s) => ({ ...s, leases: [['K', 1, -1, []], ['L', 1000, 4, ['/a', '/b']]] })],
      ['snapshot.leases[0]', (s) => ({ ...s, leases: [['K', 1, 0], ['L', 1000, 4, ['/a', '/b']]] })],
      // Listed keys that are missing, attached to another lease or to none:
      ['snapshot.leases[1].keys[2]', (s) => ({ ...s, leases: [['K', 1, 0, []], ['L', 1000, 4, ['/a', '/b', '/zz']]] })],
      ['snapshot.leases[0].keys[0]', (s) => ({ ...s, leases: [['K', 1, 0, ['/a']], ['L', 1000, 4, ['/a', '/b']]] })],
      ['snapshot.leases[1].keys[2]', (s) => ({ ...s, leases: [['K', 1, 0, []], ['L', 1000, 4, ['/a', '/b', '/c']]] })],
      ['snapshot.leases[1].keys[1]', (s) => ({ ...s, leases: [['K', 1, 0, []], ['L', 1000, 4, ['/b', '/a']]] })],
      ['snapshot.leases[1].keys[1]', (s) => ({ ...s, leases: [['K', 1, 0, []], ['L', 1000, 4, ['/a', '/a', '/b']]] })],
      // Keys naming a lease that leaves them out, or that does not exist:
      ['snapshot.kvs[1].lease', (s) => ({ ...s, leases: [['K', 1, 0, []], ['L', 1000, 4, ['/a']]] })],
      ['snapshot.kvs[2].lease', (s) => ({ ...s, kvs: [['/a', 'v', 1, 1, 1, 'L'], ['/b', 'w', 2, 2, 1, 'L'], ['/c', 'x', 3, 3, 1, 'nope']] })],
      ['snapshot.kvs[2].lease', (s) => ({ ...s, kvs: [['/a', 'v', 1, 1, 1, 'L'], ['/b', 'w', 2, 2, 1, 'L'], ['/c', 'x', 3, 3, 1, 7]] })],
      ['snapshot.sessions[0].result.lease', (s) => ({ ...s, sessions: [['c1', 1, 6, ['leaseRevoke', 3, '', true, 1]]] })],
      ['snapshot.sessions[0].result.revision', (s) => ({ ...s, sessions: [['c1', 1, 6, ['leaseGrant', 9, 'L', 1, 0]]] })],
      ['snapshot.sessions[0].result', (s) => ({ ...s, sessions: [['c1', 1, 6, ['leaseKeepAlive', 3, 'L', true, 1]]] })],
    ];
    for (const [field, mutate] of variants) {
      assert.throws(() => KvStateMachine.restore(Uint8Array.from(pack(mutate(good())))), hasCode('ERR_CORRUPT_STORE', field), field);
    }
  });
});

describe('kv leases: encoding and validation', () => {
  it('round-trips the lease operations and leased writes, leaving an absent lease out of the bytes', () => {
    const ops: KvOp[] = [grant('L', 1), grant('é', MAX_LEASE_TTL_MS), keepAlive('L'), revoke('L', 0), revoke('L', null),
      put('/a', 'v', 'L'), { type: 'cas', key: '/a', expectRevision: 0, value: 'v', lease: 'L' }];
    for (const op of ops) {
      const cmd = { clientId: 'n1', seq: 1, op };
      assert.deepEqual(decodeCommand(encodeCommand(cmd)), cmd);
    }
    // Without a lease a put encodes as before leases existed.
    assert.deepEqual(encodeCommand({ clientId: 'c', seq: 1, op: put('/a', 'v') }),
      Uint8Array.from(pack({ clientId: 'c', seq: 1, op: { type: 'put', key: '/a', value: 'v' } })));
    // Fixed field order whatever the caller's.
    assert.deepEqual(encodeCommand({ clientId: 'c', seq: 1, op: { lease: 'L', value: 'v', key: '/a', type: 'put' } }),
      encodeCommand({ clientId: 'c', seq: 1, op: put('/a', 'v', 'L') }));
    assert.deepEqual(encodeCommand({ clientId: 'c', seq: 1, op: { renewals: 3, lease: 'L', type: 'leaseRevoke' } }),
      Uint8Array.from(pack({ clientId: 'c', seq: 1, op: { type: 'leaseRevoke', lease: 'L', renewals: 3 } })));
  });

  it('rejects malformed lease commands with ERR_BAD_MESSAGE naming the field', () => {
    const op = (o: Record<string, unknown>) => ({ clientId: 'c', seq: 1, op: o });
    const cases: [unknown, string][] = [
      [op({ type: 'leaseGrant', lease: 'L' }), 'command.op.ttlMs'],
      [op({ type: 'leaseGrant', lease: 'L', ttlMs: 0 }), 'command.op.ttlMs'],
      [op({ type: 'leaseGrant', lease: 'L', ttlMs: MAX_LEASE_TTL_MS + 1 }), 'command.op.ttlMs'],
      [op({ type: 'leaseGrant', lease: 'L', ttlMs: 1.5 }), 'command.op.ttlMs'],
      [op({ type: 'leaseGrant', lease: '', ttlMs: 1 }), 'command.op.lease'],
      [op({ type: 'leaseGrant', lease: 'l'.repeat(MAX_LEASE_ID_BYTES + 1), ttlMs: 1 }), 'command.op.lease'],
      [op({ type: 'leaseGrant', lease: 'L', ttlMs: 1, renewals: 0 }), 'command.op.renewals'],
      [op({ type: 'leaseKeepAlive' }), 'command.op.lease'],
      [op({ type: 'leaseKeepAlive', lease: 5 }), 'command.op.lease'],
      [op({ type: 'leaseKeepAlive', lease: 'L', ttlMs: 1 }), 'command.op.ttlMs'],
      [op({ type: 'leaseRevoke', lease: 'L' }), 'command.op.renewals'],
      [op({ type: 'leaseRevoke', lease: 'L', renewals: -1 }), 'command.op.renewals'],
      [op({ type: 'leaseRevoke', lease: 'L', renewals: '1' }), 'command.op.renewals'],
      [op({ type: 'leaseRevoke', lease: null, renewals: null }), 'command.op.lease'],
      [op({ type: 'put', key: '/a', value: 'v', lease: null }), 'command.op.lease'],
      [op({ type: 'put', key: '/a', value: 'v', lease: '' }), 'command.op.lease'],
      [op({ type: 'put', key: '/a', value: 'v', lease: 'l'.repeat(MAX_LEASE_ID_BYTES + 1) }), 'command.op.lease'],
      [op({ type: 'cas', key: '/a', expectRevision: 0, value: 'v', lease: 3 }), 'command.op.lease'],
      [op({ type: 'cas', key: '/a', expectRevision: 0, value: null, lease: 'L' }), 'command.op.lease'],
      [op({ type: 'delete', key: '/a', lease: 'L' }), 'command.op.lease'],
    ];
    for (const [value, field] of cases) {
      assert.throws(() => decodeCommand(Uint8Array.from(pack(value))), hasCode('ERR_BAD_MESSAGE', field), `${field}: ${JSON.stringify(value)}`);
    }
    assert.throws(() => encodeCommand({ clientId: 'c', seq: 1, op: grant('L', 0) }), hasCode('ERR_BAD_MESSAGE', 'command.op.ttlMs'));
    assert.throws(() => encodeCommand({ clientId: 'c', seq: 1, op: { type: 'put', key: '/a', value: 'v', lease: undefined } }),
      hasCode('ERR_BAD_MESSAGE', 'command.op.lease'), 'omit the lease rather than set it to undefined');
  });
});
