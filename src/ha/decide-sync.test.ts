// Synchronous mode on the primary: the order of the two writes (the `sync` key shrinks before
// PostgreSQL's list does; it grows only after PostgreSQL confirms), strict mode, nosync.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { syncActions, STRICT_PLACEHOLDER, standbyNamesSetting } from './decide-sync.ts';
import type { ReplicationInfo } from './decide-sync.ts';
import type { ClusterView, MemberView } from './cluster-view.ts';

const member = (name: string, tags: Record<string, unknown> = {}): MemberView => ({ name, revision: 1, data: { state: 'running', tags } });
const view = (sync: Record<string, unknown> | null, members = [member('n1'), member('n2'), member('n3')]): ClusterView => ({
  initialize: '1', config: null, leader: { name: 'n1', revision: 2, lease: 'l' }, members, failover: null,
  sync: sync ? { value: sync, revision: 7 } : null, history: null, status: null, failsafe: null, removed: [], problems: [],
});
const rep = (name: string, syncState = 'async', flushLsn = 100, state = 'streaming'): ReplicationInfo => ({ name, state, syncState, flushLsn });
const on = { mode: true, strict: false, nodeCount: 1 };

test('a standby is named to PostgreSQL first and enters the sync key only once PostgreSQL reports it synchronous', () => {
  const first = syncActions('n1', view(null), [rep('n2', 'async', 200), rep('n3', 'async', 100)], on, null);
  assert.deepEqual(first, [
    { type: 'writeSync', value: { leader: 'n1', sync_standby: null }, revision: 0 },
    { type: 'setSyncNames', value: '"n2"' },
  ], 'the furthest ahead is chosen; the key names no standby yet');
  const confirmed = syncActions('n1', view({ leader: 'n1', sync_standby: null }), [rep('n2', 'sync', 200), rep('n3', 'async', 300)], on, '"n2"');
  assert.deepEqual(confirmed, [{ type: 'writeSync', value: { leader: 'n1', sync_standby: 'n2' }, revision: 7 }], 'the current one is kept though n3 is ahead now');
  assert.deepEqual(syncActions('n1', view({ leader: 'n1', sync_standby: 'n2' }), [rep('n2', 'sync'), rep('n3')], on, '"n2"'), [], 'steady state: no writes');
});

test('a standby that goes away leaves the sync key before it leaves PostgreSQL’s list', () => {
  const gone = syncActions('n1', view({ leader: 'n1', sync_standby: 'n2' }), [rep('n3', 'async', 100)], on, '"n2"');
  assert.deepEqual(gone, [
    { type: 'writeSync', value: { leader: 'n1', sync_standby: null }, revision: 7 },
    { type: 'setSyncNames', value: '"n3"' },
  ]);
  const none = syncActions('n1', view({ leader: 'n1', sync_standby: 'n2' }), [], on, '"n2"');
  assert.deepEqual(none, [{ type: 'writeSync', value: { leader: 'n1', sync_standby: null }, revision: 7 }, { type: 'setSyncNames', value: '' }], 'non-strict falls back to asynchronous');
});

test('strict mode keeps the last standbys in the key and makes commits wait when none is left', () => {
  const strict = { ...on, strict: true };
  const actions = syncActions('n1', view({ leader: 'n1', sync_standby: 'n2' }), [], strict, '"n2"');
  assert.deepEqual(actions, [{ type: 'setSyncNames', value: `"${STRICT_PLACEHOLDER}"` }]);
  assert.equal(standbyNamesSetting(['a', 'b'], 2), 'FIRST 2 ("a", "b")');
  const two = syncActions('n1', view(null), [rep('n2')], { mode: true, strict: true, nodeCount: 2 }, null);
  assert.deepEqual(two[1], { type: 'setSyncNames', value: `FIRST 2 ("n2", "${STRICT_PLACEHOLDER}")` }, 'strict pads to the required count');
});

test('nosync members are never chosen; sync mode off removes the key and the managed list', () => {
  const members = [member('n1'), member('n2', { nosync: true }), member('n3')];
  const actions = syncActions('n1', view(null, members), [rep('n2', 'async', 900), rep('n3', 'async', 100)], on, null);
  assert.deepEqual(actions[1], { type: 'setSyncNames', value: '"n3"' });
  assert.deepEqual(syncActions('n1', view({ leader: 'n1', sync_standby: 'n3' }), null, { ...on, mode: false }, '"n3"'), [
    { type: 'writeSync', value: null, revision: 7 },
    { type: 'setSyncNames', value: null },
  ]);
});
