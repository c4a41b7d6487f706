// The cluster-wide REST API on real agents (one three-member cluster, synchronous_mode on):
// GET /cluster's members and roles, GET /raft, GET/PATCH/PUT /config (validation, If-Match,
// concurrent writers, a parameter taking effect), POST /reload, POST /restart's conditions and
// schedule, DELETE /restart, POST /reinitialize's body, GET /history after a switchover, and 503
// once the store has lost its quorum. Patroni's paths, fields and codes: reference §1.2-1.3.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { AgentCluster } from '../support/agents.ts';

const NAMES = ['n1', 'n2', 'n3'];
let c: AgentCluster;
/** The leader, the standby the `sync` key names, the other (asynchronous) standby. */
let L = '';
let S = '';
let A = '';

type Json = Record<string, unknown>;
interface Reply {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
  json: () => Json;
}

async function call(node: string, method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const n = c.node(node);
  const res = await request(`http://${n.testHost}:${n.apiPort}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const text = await res.body.text();
  return { status: res.statusCode, text, headers: res.headers, json: () => JSON.parse(text) as Json };
}

async function show(node: string, setting: string): Promise<string | null> {
  return ((await c.trySql(node, `show ${setting}`))?.rows[0]?.[setting] as string | undefined) ?? null;
}

const members = (body: Json) => Object.fromEntries((body.members as Json[]).map((m) => [m.name as string, m]));

before(async () => {
  c = await AgentCluster.create(NAMES.map((name) => ({ name })), { dcs: { synchronous_mode: true } });
  await c.startAll();
  L = await c.waitForPrimary(NAMES, 120_000);
  const syncKey = await c.waitFor('the sync key to name a standby', async () => {
    const v = await c.getKey('/service/test/sync');
    const k = v ? (JSON.parse(v) as { leader?: string; sync_standby?: string | null }) : null;
    return k?.leader === L && typeof k.sync_standby === 'string' && k.sync_standby !== '' ? k : null;
  });
  S = syncKey.sync_standby!;
  A = NAMES.find((n) => n !== L && n !== S)!;
});

after(() => c?.stopAll());

test('GET /cluster: every member with Patroni fields; leader, sync_standby and replica; streaming; lag', async () => {
  // Member keys are written at the end of each cycle: wait until both standbys report streaming.
  const body = await c.waitFor('GET /cluster to show the roles and both standbys streaming', async () => {
    const r = await call(A, 'GET', '/cluster');
    if (r.status !== 200) return null;
    const m = members(r.json());
    return m[L]?.role === 'leader' && m[S]?.role === 'sync_standby' && m[A]?.role === 'replica' && m[S]?.state === 'streaming' && m[A]?.state === 'streaming' ? r.json() : null;
  });
  assert.equal(body.scope, 'test');
  assert.equal(body.pause, undefined, 'pause only when paused');
  assert.equal(body.scheduled_switchover, undefined);
  assert.deepEqual((body.members as Json[]).map((m) => m.name), NAMES, 'sorted by name');
  const m = members(body);
  for (const name of NAMES) {
    const n = c.node(name);
    assert.equal(m[name]!.api_url, `http://127.0.0.1:${n.apiPort}/patroni`);
    assert.equal(m[name]!.host, '127.0.0.1');
    assert.equal(m[name]!.port, n.pgPort);
    assert.equal(m[name]!.timeline, 1);
  }
  assert.equal(m[L]!.state, 'running');
  assert.equal(m[L]!.lag, undefined, 'the leader has no lag');
  for (const name of [S, A]) {
    assert.equal(typeof m[name]!.lag, 'number', `${name} lag in bytes`);
    assert.ok((m[name]!.lag as number) >= 0);
    assert.match(String(m[name]!.lsn), /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.match(String(m[name]!.replay_lsn), /^[0-9A-F]+\/[0-9A-F]+$/);
  }
  // Every member answers the same picture (a fresh read of the store, not its own cache).
  const fromLeader = members((await call(L, 'GET', '/cluster')).json());
  assert.deepEqual(Object.fromEntries(Object.entries(fromLeader).map(([k, v]) => [k, v.role])), { [L]: 'leader', [S]: 'sync_standby', [A]: 'replica' });
  assert.deepEqual((await call(S, 'GET', '/history')).json(), [], 'no timeline switch yet');
});

test('GET /raft: one leader, three voters, progress and lag on the leader only', async () => {
  const ids = Object.fromEntries(NAMES.map((n) => [n, `127.0.0.1:${c.node(n).raftPort}`]));
  const views = await c.waitFor('every member agreeing on the Raft leader and term', async () => {
    const all = await Promise.all(NAMES.map(async (n) => (await call(n, 'GET', '/raft')).json()));
    return all.every((v) => v.leader === all[0]!.leader && v.term === all[0]!.term && v.leader !== null) ? all : null;
  });
  const leaders = views.filter((v) => v.role === 'leader');
  assert.equal(leaders.length, 1);
  for (const [i, v] of views.entries()) {
    assert.equal(v.id, ids[NAMES[i]!]);
    assert.deepEqual([...(v.voters as string[])].sort(), Object.values(ids).sort());
    assert.deepEqual(v.learners, []);
    for (const k of ['term', 'commit', 'applied', 'last_index', 'first_index']) assert.equal(typeof v[k], 'number', k);
    assert.ok((v.commit as number) <= (v.last_index as number));
    const peers = v.peers as Record<string, Json>;
    assert.deepEqual(Object.keys(peers).sort(), Object.values(ids).filter((id) => id !== v.id).sort());
    for (const p of Object.values(peers)) {
      if (v.role === 'leader') {
        assert.equal(typeof p.match, 'number');
        assert.equal(p.lag, (v.last_index as number) - (p.match as number));
        assert.ok((p.lag as number) >= 0);
        assert.equal(typeof p.last_contact_ms_ago, 'number');
        assert.ok((p.last_contact_ms_ago as number) < 10_000, 'a follower heard within the last seconds');
      } else {
        assert.equal(p.match, null, "a follower does not know its peers' progress");
        assert.equal(p.lag, undefined);
      }
    }
  }
});

test('GET/PATCH/PUT /config: validation, If-Match, concurrent writers, a parameter taking effect', async () => {
  const got = await call(A, 'GET', '/config');
  assert.equal(got.status, 200);
  const original = got.json();
  assert.equal(original.ttl, 2);
  assert.equal(original.synchronous_mode, true);
  const etag0 = String(got.headers.etag);
  assert.match(etag0, /^"\d+"$/);

  // Refusals name the problem; nothing is written.
  assert.deepEqual([(await call(A, 'PATCH', '/config', '[1]')).status, (await call(A, 'PATCH', '/config', '[1]')).text], [400, 'the body must be a JSON object']);
  const badTtl = await call(A, 'PATCH', '/config', { ttl: 'soon' });
  assert.equal(badTtl.status, 400);
  assert.match(badTtl.text, /config\.ttl/);
  const badRule = await call(S, 'PATCH', '/config', { loop_wait: 5 });
  assert.equal(badRule.status, 400);
  assert.match(badRule.text, /loop_wait \+ 2 \* retry_timeout/);
  assert.equal((await call(A, 'PATCH', '/config', { postgresql: { parameters: { work_mem: { x: 1 } } } })).status, 400);
  assert.equal((await call(A, 'PATCH', '/config', { ttl: 3 }, { 'if-match': 'yesterday' })).status, 400);
  assert.equal((await call(A, 'PUT', '/config', { ttl: -1 })).status, 400);
  assert.equal((await call(A, 'PUT', '/config', '"text"')).status, 400);
  assert.deepEqual((await call(L, 'GET', '/config')).json(), original, 'nothing written by a refused request');

  // A deep merge: the parameter is added, the others kept; every agent applies it to PostgreSQL.
  const patched = await call(A, 'PATCH', '/config', { postgresql: { parameters: { work_mem: '8MB' } } });
  assert.equal(patched.status, 200, patched.text);
  const pgParams = (patched.json().postgresql as Json).parameters as Json;
  assert.equal(pgParams.work_mem, '8MB');
  assert.equal(pgParams.wal_log_hints, 'on', 'the other parameters are kept');
  assert.equal(patched.json().ttl, 2);
  assert.deepEqual((await call(L, 'GET', '/config')).json(), patched.json());
  for (const n of NAMES) await c.waitFor(`work_mem 8MB on ${n}`, async () => (await show(n, 'work_mem')) === '8MB');

  // If-Match pins the revision: the one read before the write above is stale now.
  const stale = await call(A, 'PATCH', '/config', { maximum_lag_on_failover: 2097152 }, { 'if-match': etag0 });
  assert.equal(stale.status, 409);
  assert.match(stale.text, /changed meanwhile/);
  const current = await call(A, 'GET', '/config');
  const pinned = await call(S, 'PATCH', '/config', { maximum_lag_on_failover: 2097152 }, { 'if-match': String(current.headers.etag) });
  assert.equal(pinned.status, 200, pinned.text);
  assert.equal(pinned.json().maximum_lag_on_failover, 2097152);

  // Writers on different members at once: each read-merge-write that loses the race is re-done.
  const writers = await Promise.all(NAMES.flatMap((n, i) => [0, 1].map((j) => call(n, 'PATCH', '/config', { [`conclave_test_${i}_${j}`]: i * 10 + j }))));
  assert.deepEqual(writers.map((w) => w.status), writers.map(() => 200), writers.map((w) => w.text).join(' | '));
  const merged = (await call(L, 'GET', '/config')).json();
  for (const [i] of NAMES.entries()) for (const j of [0, 1]) assert.equal(merged[`conclave_test_${i}_${j}`], i * 10 + j, 'no write lost');

  // null deletes the key, and PostgreSQL goes back to its default.
  const removed = await call(L, 'PATCH', '/config', Object.fromEntries([['postgresql', { parameters: { work_mem: null } }], ...NAMES.flatMap((_, i) => [0, 1].map((j) => [`conclave_test_${i}_${j}`, null]))]));
  assert.equal(removed.status, 200, removed.text);
  assert.equal(((removed.json().postgresql as Json).parameters as Json).work_mem, undefined);
  assert.equal(Object.keys(removed.json()).some((k) => k.startsWith('conclave_test_')), false);
  await c.waitFor('work_mem back to its default on the leader', async () => (await show(L, 'work_mem')) === '4MB');

  // PUT replaces the whole configuration; with a stale If-Match it is refused.
  const replacement = { ...original, conclave_note: 'replaced' };
  const put = await call(S, 'PUT', '/config', replacement);
  assert.equal(put.status, 200, put.text);
  assert.deepEqual(put.json(), replacement);
  assert.deepEqual((await call(A, 'GET', '/config')).json(), replacement);
  assert.equal((await call(S, 'PUT', '/config', original, { 'if-match': etag0 })).status, 409);
  const restored = await call(S, 'PUT', '/config', original, { 'if-match': String((await call(S, 'GET', '/config')).headers.etag) });
  assert.equal(restored.status, 200, restored.text);
  assert.deepEqual((await call(L, 'GET', '/config')).json(), original);
});

test('POST /reload: PostgreSQL rereads its configuration', async () => {
  // ALTER SYSTEM writes postgresql.auto.conf and takes effect only on a reload.
  assert.ok(await c.trySql(L, "alter system set work_mem = '16MB'"));
  assert.equal(await show(L, 'work_mem'), '4MB', 'not before the reload');
  const r = await call(L, 'POST', '/reload');
  assert.deepEqual([r.status, r.text], [202, 'reload scheduled']);
  await c.waitFor('work_mem 16MB after the reload', async () => (await show(L, 'work_mem')) === '16MB');
  assert.ok(await c.trySql(L, 'alter system reset work_mem'));
  assert.equal((await call(L, 'POST', '/reload')).status, 202);
  await c.waitFor('work_mem back after the second reload', async () => (await show(L, 'work_mem')) === '4MB');
});

test('POST /restart: conditions, bad filters, a schedule kept and cancelled, a schedule carried out; POST /reinitialize body', async () => {
  const leaderPid = await c.postmasterPid(L);
  assert.ok(leaderPid !== null);
  for (const body of [{ role: 'replica' }, { postgres_version: '9.6.1' }, { restart_pending: true }]) {
    const r = await call(L, 'POST', '/restart', body);
    assert.deepEqual([r.status, r.text], [503, 'restart conditions are not satisfied'], JSON.stringify(body));
  }
  assert.equal(await c.postmasterPid(L), leaderPid, 'no restart when the conditions do not hold');
  assert.deepEqual([(await call(L, 'POST', '/restart', { role: 'boss' })).status, (await call(L, 'POST', '/restart', { role: 'boss' })).text], [400, 'PostgreSQL role should be either primary, standby_leader, or replica']);
  assert.equal((await call(L, 'POST', '/restart', { soon: true })).text, 'Unknown filter for the scheduled restart: soon');
  assert.equal((await call(L, 'POST', '/restart', { schedule: '2099-01-01T00:00:00' })).status, 400, 'no time zone');
  assert.equal((await call(L, 'POST', '/restart', { schedule: '2000-01-01T00:00:00Z' })).status, 422, 'in the past');

  // Scheduled far ahead: kept, shown on the member in GET /cluster, one at a time, deleted.
  const far = new Date(Date.now() + 3_600_000).toISOString();
  const scheduled = await call(A, 'POST', '/restart', { schedule: far, role: 'replica' });
  assert.deepEqual([scheduled.status, scheduled.text], [202, 'Restart scheduled']);
  assert.deepEqual([(await call(A, 'POST', '/restart', { schedule: far })).status, (await call(A, 'POST', '/restart', { schedule: far })).text], [409, 'Another restart is already scheduled']);
  const shown = members((await call(A, 'GET', '/cluster')).json())[A]!.scheduled_restart as Json;
  assert.equal(shown.schedule, far);
  assert.equal(shown.role, 'replica');
  assert.deepEqual([(await call(A, 'DELETE', '/restart')).status, (await call(A, 'DELETE', '/restart')).status], [200, 404]);
  assert.equal((await call(A, 'DELETE', '/restart')).text, 'no restarts are scheduled');
  assert.equal(members((await call(A, 'GET', '/cluster')).json())[A]!.scheduled_restart, undefined);

  // Scheduled a few seconds ahead: carried out at its time, not before.
  const pidBefore = await c.postmasterPid(A);
  assert.ok(pidBefore !== null);
  const at = Date.now() + 3000;
  assert.equal((await call(A, 'POST', '/restart', { schedule: new Date(at).toISOString() })).status, 202);
  const restartedAt = await c.waitFor(`${A} restarted by its schedule`, async () => {
    const pid = await c.postmasterPid(A);
    return pid !== null && pid !== pidBefore ? Date.now() : null;
  });
  assert.ok(restartedAt >= at, `not before its time (${at - restartedAt} ms early)`);
  assert.equal((await call(A, 'DELETE', '/restart')).status, 404, 'done, so no longer scheduled');
  await c.waitFor(`${A} streaming again`, async () => (await c.api(A))?.body.replication_state === 'streaming');

  assert.deepEqual([(await call(A, 'POST', '/reinitialize', { force: 'yes' })).status, (await call(A, 'POST', '/reinitialize', { force: 'yes' })).text], [400, 'force must be a boolean']);
  assert.equal((await call(A, 'POST', '/reinitialize', { from_leader: 1 })).status, 400);
  assert.deepEqual([(await call(L, 'POST', '/reinitialize', { force: true, from_leader: true })).status, (await call(L, 'POST', '/reinitialize', { force: true })).text], [503, 'I am the leader, can not reinitialize']);
});

test('GET /history after a switchover; GET /cluster follows', async () => {
  const r = await c.waitFor('the switchover accepted', async () => {
    const x = await call(A, 'POST', '/switchover', { leader: L, candidate: S });
    return x.status === 412 ? null : x; // member keys catching up after the restart
  }, 30_000);
  assert.deepEqual([r.status, r.text], [200, `Successfully switched over to "${S}"`]);
  const history = await c.waitFor('the history key written by the new primary', async () => {
    const h = (await call(L, 'GET', '/history')).json() as unknown as unknown[][];
    return h.length > 0 ? h : null;
  });
  assert.equal(history.length, 1);
  const [timeline, lsn, reason, at, newLeader] = history[0]!;
  assert.equal(timeline, 1);
  assert.equal(typeof lsn, 'number');
  assert.equal(typeof reason, 'string');
  assert.ok(Number.isFinite(Date.parse(String(at))));
  assert.equal(newLeader, S);
  await c.waitFor('GET /cluster showing the new leader on timeline 2', async () => {
    const m = members((await call(A, 'GET', '/cluster')).json());
    return m[S]?.role === 'leader' && m[S]?.timeline === 2;
  });
});

test('without a quorum the store-backed endpoints answer 503 with the reason; /raft still answers', async () => {
  const [survivor, ...others] = NAMES;
  for (const n of others) c.killAgent(n!);
  await c.waitFor('the survivor to lose the Raft leader', async () => (await call(survivor!, 'GET', '/raft')).json().role !== 'leader' || null);
  for (const path of ['/cluster', '/history', '/config']) {
    const r = await call(survivor!, 'GET', path);
    assert.equal(r.status, 503, `${path}: ${r.text}`);
    assert.match(r.text, /^the cluster store is unavailable: /);
  }
  const p = await call(survivor!, 'PATCH', '/config', { ttl: 3 });
  assert.equal(p.status, 503);
  assert.equal((await call(survivor!, 'GET', '/raft')).status, 200);
});
