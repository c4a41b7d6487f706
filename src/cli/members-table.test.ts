// The list/topology table built from a GET /cluster answer, as patronictl 3.x shows it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterFooter, clusterTitle, memberRows, topologyOrder } from './members-table.ts';
import { hasRole, roleTitle, selectMembers, apiBase, dsnOf } from './cluster.ts';
import type { ClusterInfo } from './cluster.ts';
import { prettyTable } from './format.ts';

const cluster: ClusterInfo = {
  scope: 'demo',
  members: [
    { name: 'node1', role: 'leader', state: 'running', api_url: 'http://127.0.0.1:8008/patroni', host: '127.0.0.1', port: 5432, timeline: 3 },
    { name: 'node2', role: 'sync_standby', state: 'streaming', api_url: 'http://127.0.0.1:8009/patroni', host: '127.0.0.1', port: 5433, timeline: 3, lag: 3 * 1024 * 1024 + 1 },
    { name: 'node3', role: 'replica', state: 'streaming', host: '10.0.0.3', port: 5432, timeline: 3, lag: 'unknown', tags: { replicatefrom: 'node2' } },
  ],
};

test('the columns, role names, host:port and lag in MB', () => {
  const { columns, rows } = memberRows(cluster, { extended: false, topology: false, withCluster: false });
  // node3 has tags, so the Tags column appears as in patronictl.
  assert.deepEqual(columns, ['Member', 'Host', 'Role', 'State', 'TL', 'Lag in MB', 'Tags']);
  assert.deepEqual(rows.map((r) => r.slice(0, 6)), [
    ['node1', '127.0.0.1:5432', 'Leader', 'running', 3, ''],
    ['node2', '127.0.0.1:5433', 'Sync Standby', 'streaming', 3, 3],
    ['node3', '10.0.0.3', 'Replica', 'streaming', 3, 'unknown'],
  ]);
});

test('-e adds Pending restart and Scheduled restart; json rows carry the Cluster', () => {
  const c: ClusterInfo = { ...cluster, members: [{ ...cluster.members[0], pending_restart: true, scheduled_restart: { schedule: '2030-01-01T00:00:00Z' } }] };
  const { columns, rows } = memberRows(c, { extended: true, topology: false, withCluster: true });
  assert.deepEqual(columns, ['Cluster', 'Member', 'Host', 'Role', 'State', 'TL', 'Lag in MB', 'Pending restart', 'Scheduled restart', 'Tags']);
  assert.deepEqual(rows[0].slice(0, 2), ['demo', 'node1']);
  assert.deepEqual(rows[0].slice(7, 9), ['*', '2030-01-01T00:00:00Z']);
});

test('topology: the leader first, replicas indented under their upstream', () => {
  assert.deepEqual(topologyOrder(cluster).map((x) => [x.member.name, x.depth]), [['node1', 0], ['node2', 1], ['node3', 2]]);
  const { rows } = memberRows(cluster, { extended: false, topology: true, withCluster: false });
  assert.deepEqual(rows.map((r) => r[0]), ['node1', '+ node2', '  + node3']);
  const loop: ClusterInfo = { scope: 'x', members: [{ name: 'a', role: 'replica', tags: { replicatefrom: 'b' } }, { name: 'b', role: 'replica', tags: { replicatefrom: 'a' } }] };
  assert.deepEqual(topologyOrder(loop).map((x) => x.member.name).sort(), ['a', 'b']);
});

test('title and footer', () => {
  assert.equal(clusterTitle('demo', '7345'), '+ Cluster: demo (7345) ');
  assert.equal(clusterTitle('demo', null), '+ Cluster: demo ');
  assert.deepEqual(clusterFooter({ ...cluster, pause: true, scheduled_switchover: { at: '2030-01-01T00:00:00Z', from: 'node1', to: 'node2' } }), [
    ' Maintenance mode: on',
    ' Switchover scheduled at: 2030-01-01T00:00:00Z',
    '                    from: node1',
    '                      to: node2',
  ]);
  const { columns, rows } = memberRows({ scope: 'demo', members: cluster.members.slice(0, 2) }, { extended: false, topology: false, withCluster: false });
  const text = prettyTable(columns, rows, { title: clusterTitle('demo', '7345') });
  assert.match(text.split('\n')[0], /^\+ Cluster: demo \(7345\) -+\+/);
});

test('roles, member selection, REST base and DSN', () => {
  assert.equal(roleTitle('standby_leader'), 'Standby Leader');
  assert.equal(roleTitle('master'), 'Leader');
  assert.ok(hasRole(cluster.members[1], 'replica') && !hasRole(cluster.members[0], 'replica') && hasRole(cluster.members[0], 'primary'));
  assert.deepEqual(selectMembers(cluster, [], 'replica').members.map((m) => m.name), ['node2', 'node3']);
  assert.deepEqual(selectMembers(cluster, ['node1', 'nodeX'], null), { members: [cluster.members[0]], unknown: ['nodeX'] });
  assert.equal(apiBase('http://127.0.0.1:8008/patroni', 'http'), 'http://127.0.0.1:8008');
  assert.equal(apiBase('http://127.0.0.1:8008/patroni', 'https'), 'https://127.0.0.1:8008');
  assert.equal(apiBase('nonsense', 'http'), null);
  assert.equal(dsnOf(cluster.members[1]), 'host=127.0.0.1 port=5433');
});
