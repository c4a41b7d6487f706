// The pure parts of the cluster-wide API, without agents: GET /cluster's body from a store view
// (roles, lag, Patroni's optional fields), PATCH /config's merge and If-Match, POST /restart's body
// and conditions, and the Prometheus text writer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClusterView } from '../../src/ha/cluster-view.ts';
import { clusterJson, hostPortOf } from '../../src/api/cluster-json.ts';
import { ifMatchRevision, mergeConfigPatch } from '../../src/api/config-api.ts';
import { parseRestartRequest, postgresVersionToInt, restartMismatch } from '../../src/api/restart-request.ts';
import { Exposition } from '../../src/api/prometheus.ts';
import { epochSeconds, paddedVersion } from '../../src/api/metrics-api.ts';
import { ApiError } from '../../src/api/api-errors.ts';

const PREFIX = '/service/test/';
let rev = 0;
const kv = (key: string, value: unknown) => ({ key: PREFIX + key, value: typeof value === 'string' ? value : JSON.stringify(value), createRevision: ++rev, modRevision: rev, version: 1, lease: null });

const member = (name: string, port: number, extra: Record<string, unknown>) =>
  kv(`members/${name}`, { conn_url: `postgres://10.0.0.${port % 10}:${port}/postgres`, api_url: `http://10.0.0.${port % 10}:8008/patroni`, state: 'running', ...extra });

function view(extra: ReturnType<typeof kv>[] = []) {
  return parseClusterView(PREFIX, [
    kv('leader', 'b'),
    member('b', 5432, { role: 'primary', xlog_location: 5000, timeline: 2 }),
    member('a', 5433, { role: 'replica', xlog_location: 4000, receive_lsn: 4000, replay_lsn: 3000, replication_state: 'streaming', timeline: 2, tags: { dc: 'x' } }),
    member('c', 5434, { role: 'replica', state: 'starting', pending_restart: true }),
    kv('status', { optime: 4500 }),
    ...extra,
  ]);
}

test('GET /cluster: roles, states, host and port, Patroni 4.1 lag fields, sorted by name', () => {
  const body = clusterJson(view(), { scope: 'test', synchronousMode: false, paused: false });
  assert.equal(body.scope, 'test');
  assert.equal(body.pause, undefined, 'pause only when paused');
  assert.equal(body.scheduled_switchover, undefined);
  const [a, b, c] = body.members as Record<string, unknown>[];
  assert.deepEqual(b, { name: 'b', role: 'leader', state: 'running', api_url: 'http://10.0.0.2:8008/patroni', host: '10.0.0.2', port: 5432, timeline: 2 });
  // Measured against the further of the leader's xlog_location (5000) and the status optime (4500).
  assert.deepEqual(a, {
    name: 'a', role: 'replica', state: 'streaming', api_url: 'http://10.0.0.3:8008/patroni', host: '10.0.0.3', port: 5433, timeline: 2, tags: { dc: 'x' },
    receive_lag: 1000, receive_lsn: '0/FA0', replay_lag: 2000, replay_lsn: '0/BB8', lag: 1000, lsn: '0/FA0',
  });
  assert.equal(c!.state, 'starting', 'a replica not streaming shows its state');
  assert.equal(c!.pending_restart, true);
  assert.equal(c!.lag, 'unknown');
  assert.equal(c!.lsn, 'unknown');
});

test('GET /cluster: sync standbys from a comma list only in synchronous mode; pause; scheduled switchover; a local scheduled restart', () => {
  const v = view([kv('sync', { leader: 'b', sync_standby: 'a, c' }), kv('failover', { leader: 'b', member: 'a', scheduled_at: '2030-01-01T00:00:00.000Z' })]);
  const on = clusterJson(v, { scope: 'test', synchronousMode: true, paused: true, local: { name: 'c', scheduledRestart: { schedule: '2030-01-01T00:00:00.000Z' } } });
  assert.deepEqual((on.members as Record<string, unknown>[]).map((m) => m.role), ['sync_standby', 'leader', 'sync_standby']);
  assert.equal(on.pause, true);
  assert.deepEqual(on.scheduled_switchover, { at: '2030-01-01T00:00:00.000Z', from: 'b', to: 'a' });
  assert.deepEqual((on.members as Record<string, unknown>[])[2]!.scheduled_restart, { schedule: '2030-01-01T00:00:00.000Z' });
  const off = clusterJson(v, { scope: 'test', synchronousMode: false, paused: false });
  assert.deepEqual((off.members as Record<string, unknown>[]).map((m) => m.role), ['replica', 'leader', 'replica']);
  // A sync key left by another leader names nobody.
  const stale = clusterJson(view([kv('sync', { leader: 'a', sync_standby: 'c' })]), { scope: 'test', synchronousMode: true, paused: false });
  assert.deepEqual((stale.members as Record<string, unknown>[]).map((m) => m.role), ['replica', 'leader', 'replica']);
  // An immediate failover request is not a scheduled switchover.
  assert.equal(clusterJson(view([kv('failover', { member: 'a' })]), { scope: 'test', synchronousMode: false, paused: false }).scheduled_switchover, undefined);
  assert.deepEqual(hostPortOf('postgres://[::1]:5432/postgres'), { host: '::1', port: 5432 });
  assert.equal(hostPortOf(42), null);
});

test('PATCH /config merge: deep, null deletes, scalars replace; If-Match forms', () => {
  const base = { ttl: 30, postgresql: { parameters: { work_mem: '4MB', a: 1 }, use_slots: true } };
  assert.deepEqual(mergeConfigPatch(base, { ttl: 20, postgresql: { parameters: { work_mem: '8MB', a: null }, pg_hba: ['x'] }, extra: { k: 1, gone: null } }), {
    ttl: 20,
    postgresql: { parameters: { work_mem: '8MB' }, use_slots: true, pg_hba: ['x'] },
    extra: { k: 1 },
  });
  assert.deepEqual(base.postgresql.parameters, { work_mem: '4MB', a: 1 }, 'the base is not changed');
  assert.deepEqual(mergeConfigPatch({ postgresql: 'x' }, { postgresql: { a: 1 } }), { postgresql: { a: 1 } });
  assert.throws(() => mergeConfigPatch({}, JSON.parse('{"__proto__": {"x": 1}}') as Record<string, unknown>), ApiError);
  assert.equal(ifMatchRevision(undefined), null);
  assert.equal(ifMatchRevision('12'), 12);
  assert.equal(ifMatchRevision('"12"'), 12);
  assert.equal(ifMatchRevision('W/"12"'), 12);
  assert.throws(() => ifMatchRevision('abc'), (e: ApiError) => e.status === 400 && /If-Match/.test(e.message));
});

test('POST /restart body: Patroni texts and codes for each problem; conditions', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const fails = (body: Record<string, unknown>, status: number, text: string, paused = false) =>
    assert.throws(() => parseRestartRequest(body, { paused, nowMs: now }), (e: ApiError) => e.status === status && e.message === text);
  fails({ role: 'boss' }, 400, 'PostgreSQL role should be either primary, standby_leader, or replica');
  fails({ postgres_version: '10' }, 400, 'Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: 10');
  fails({ postgres_version: 'a.b' }, 400, 'Invalid PostgreSQL version: a.b');
  fails({ timeout: -1 }, 400, 'Timeout should be a positive number of seconds');
  fails({ when: 1 }, 400, 'Unknown filter for the scheduled restart: when');
  fails({ restart_pending: 'yes' }, 400, 'restart_pending must be a boolean');
  fails({ schedule: '2026-01-02T00:00:00' }, 400, 'Timezone information is mandatory for the scheduled restart');
  fails({ schedule: 'tomorrow' }, 422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601');
  fails({ schedule: '2025-12-31T23:00:00Z' }, 422, 'Cannot schedule restart in the past');
  fails({ schedule: '2026-01-02T00:00:00Z' }, 500, "Can't schedule restart in the paused state", true);
  const r = parseRestartRequest({ role: 'master', postgres_version: '15.4', timeout: '30s', restart_pending: true, schedule: '2026-01-02T00:00:00+01:00' }, { paused: false, nowMs: now });
  assert.deepEqual(r, { role: 'primary', postgresVersion: { text: '15.4', num: 150004 }, restartPending: true, timeoutSeconds: 30, scheduleAt: Date.parse('2026-01-01T23:00:00Z') });
  assert.equal(postgresVersionToInt('9.6.24'), 90624);
  assert.throws(() => postgresVersionToInt('9.6'), /X.Y or X.Y.Z/);
  const facts = { role: 'primary' as const, serverVersion: 150004, pendingRestart: false };
  const req = (over: Record<string, unknown>) => parseRestartRequest(over, { paused: false, nowMs: now });
  assert.equal(restartMismatch(req({}), facts), null);
  assert.equal(restartMismatch(req({ role: 'replica' }), facts), 'host role mismatch');
  assert.equal(restartMismatch(req({ role: 'primary' }), facts), null);
  assert.equal(restartMismatch(req({ postgres_version: '15.4' }), facts), 'postgres version mismatch', 'not lower than the running one');
  assert.equal(restartMismatch(req({ postgres_version: '15.5' }), facts), null);
  assert.equal(restartMismatch(req({ restart_pending: true }), facts), 'pending restart flag is not set');
  assert.equal(restartMismatch(req({ restart_pending: true }), { ...facts, pendingRestart: true }), null);
});

test('Prometheus text: HELP and TYPE once per metric, base labels, escaping; Patroni number formats', () => {
  const text = new Exposition({ scope: 'a"b', name: 'n\\1' })
    .metric('m_one', 'gauge', 'Help\nnext', 1)
    .metric('m_two', 'counter', 'Two.', [{ labels: { peer: 'p1' }, value: 2.5 }, { labels: { peer: 'p2' }, value: 3 }])
    .metric('m_none', 'gauge', 'Not written.', [])
    .text();
  assert.equal(text, [
    '# HELP m_one Help\\nnext',
    '# TYPE m_one gauge',
    'm_one{scope="a\\"b",name="n\\\\1"} 1',
    '# HELP m_two Two.',
    '# TYPE m_two counter',
    'm_two{scope="a\\"b",name="n\\\\1",peer="p1"} 2.5',
    'm_two{scope="a\\"b",name="n\\\\1",peer="p2"} 3',
    '',
  ].join('\n'));
  assert.equal(paddedVersion('4.1.4'), '040104');
  assert.equal(paddedVersion('0.2.0'), '000200');
  assert.equal(epochSeconds('2024-05-01 12:34:56.789012+00'), Date.parse('2024-05-01T12:34:56.789Z') / 1000);
  assert.equal(epochSeconds('2024-05-01 14:34:56+02'), Date.parse('2024-05-01T12:34:56Z') / 1000);
  assert.equal(epochSeconds(null), 0);
});
