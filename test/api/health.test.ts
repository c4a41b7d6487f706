// The health checks a load balancer polls, on real agents: every path on the leader, the
// synchronous standby and the asynchronous one (synchronous_mode: true), with GET, HEAD and
// OPTIONS; the query filters (lag, mode, tag_*, replication_state); GET /patroni's Patroni fields;
// a paused cluster; a witness. Patroni's semantics: reference §1.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { AgentCluster } from '../support/agents.ts';
import { parseSize } from '../../src/api/patroni-api.ts';

let c: AgentCluster;
/** The leader, the standby the `sync` key names, the other standby. */
let L = '';
let S = '';
let A = '';
const DB = ['n1', 'n2', 'n3'];

type Method = 'GET' | 'HEAD' | 'OPTIONS';

async function call(name: string, path: string, method: Method = 'GET'): Promise<{ status: number; text: string }> {
  const n = c.node(name);
  const res = await request(`http://${n.testHost}:${n.apiPort}${path}`, { method, headersTimeout: 5000, bodyTimeout: 5000 });
  return { status: res.statusCode, text: await res.body.text() };
}

async function codes(path: string, names = DB): Promise<Record<string, number>> {
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, (await call(n, path, 'OPTIONS')).status] as const)));
}

async function syncKey(): Promise<{ leader?: string; sync_standby?: string | null } | null> {
  const v = await c.getKey('/service/test/sync');
  return v ? (JSON.parse(v) as { leader?: string; sync_standby?: string | null }) : null;
}

before(async () => {
  c = await AgentCluster.create([{ name: 'n1' }, { name: 'n2' }, { name: 'n3', tags: { noloadbalance: false, dc: 'east' } }, { name: 'w', witness: true }], { dcs: { synchronous_mode: true } });
  await c.startAll();
  L = await c.waitForPrimary(DB, 120_000);
  const others = DB.filter((n) => n !== L);
  await c.waitFor('both standbys streaming, one of them synchronous', async () => {
    const bodies = await Promise.all(others.map((n) => c.api(n)));
    if (!bodies.every((b) => b?.body.replication_state === 'streaming')) return false;
    const key = await syncKey();
    if (key?.leader !== L || !key.sync_standby || !others.includes(key.sync_standby)) return false;
    S = key.sync_standby;
    A = others.find((n) => n !== S)!;
    // The standby knows it too (its view is one cycle behind the key at most).
    return (await c.api(S))?.body.sync_standby === true;
  }, 120_000);
  // PostgreSQL streams a moment before the agent's start task ends (state "running").
  await c.waitFor('both standbys healthy replicas', async () => (await Promise.all(others.map((n) => call(n, '/replica', 'OPTIONS')))).every((r) => r.status === 200), 60_000);
});

after(() => c?.stopAll());

test('parseSize reads bytes and PostgreSQL-style sizes', () => {
  assert.equal(parseSize('0'), 0);
  assert.equal(parseSize('1048576'), 1048576);
  assert.equal(parseSize('16kB'), 16 * 1024);
  assert.equal(parseSize('10MB'), 10 * 1024 * 1024);
  assert.equal(parseSize('1GB'), 1024 ** 3);
  assert.equal(parseSize('1gb'), 1024 ** 3);
  assert.equal(parseSize('1.5MB'), 1.5 * 1024 * 1024);
  assert.equal(parseSize('ten'), null);
  assert.equal(parseSize('10XB'), null);
});

test('every health path on the leader, the sync standby and the async standby, by GET, HEAD and OPTIONS', async () => {
  const expected: Record<string, string[]> = {
    '/': [L],
    '/primary': [L],
    '/master': [L],
    '/read-write': [L],
    '/leader': [L],
    '/standby-leader': [],
    '/standby_leader': [],
    '/replica': [S, A],
    '/read-only': [L, S, A],
    '/sync': [S],
    '/synchronous': [S],
    '/async': [A],
    '/asynchronous': [A],
    '/read-only-sync': [L, S],
    '/read-only-synchronous': [L, S],
    '/quorum': [],
    '/read-only-quorum': [L],
    '/health': [L, S, A],
    '/liveness': [L, S, A],
    '/readiness': [L, S, A],
  };
  for (const [path, ok] of Object.entries(expected)) {
    for (const n of DB) {
      const want = ok.includes(n) ? 200 : 503;
      const role = n === L ? 'leader' : n === S ? 'sync standby' : 'async standby';
      const get = await call(n, path, 'GET');
      const head = await call(n, path, 'HEAD');
      const options = await call(n, path, 'OPTIONS');
      assert.deepEqual([get.status, head.status, options.status], [want, want, want], `${path} on the ${role} ${n}`);
      assert.equal(head.text, '', `HEAD ${path}: status alone`);
      assert.equal(options.text, '', `OPTIONS ${path}: status alone`);
      if (path === '/liveness' || path === '/readiness') assert.equal(get.text, '', `GET ${path}: a probe, status alone (as in Patroni)`);
      else {
        const body = JSON.parse(get.text) as { role?: string; patroni?: { name?: string } };
        assert.equal(body.patroni?.name, n, `GET ${path} answers with the status JSON`);
        assert.equal(body.role, n === L ? 'primary' : 'replica');
      }
    }
  }
  // Many checks at once (several proxies): all answered, all agreeing.
  const burst = await Promise.all(Array.from({ length: 50 }, () => call(L, '/primary', 'OPTIONS')));
  assert.ok(burst.every((r) => r.status === 200));
});

test('query filters: lag, tag_*, replication_state', async () => {
  for (const q of ['lag=1GB', 'lag=1073741824', 'lag=10MB&mode=apply', 'replication_state=streaming', 'lag=1GB&replication_state=streaming']) {
    assert.deepEqual(await codes(`/replica?${q}`), { [L]: 503, [S]: 200, [A]: 200 }, `/replica?${q}`);
  }
  assert.deepEqual(await codes('/replica?replication_state=in%20archive%20recovery'), { n1: 503, n2: 503, n3: 503 });
  // An unparsable lag is ignored, as Patroni does.
  assert.deepEqual(await codes('/replica?lag=plenty'), { [L]: 503, [S]: 200, [A]: 200 });
  assert.deepEqual(await codes('/sync?lag=1GB'), { [L]: 503, [S]: 200, [A]: 503 });
  // Tags: n3 has dc=east (and noloadbalance: false, compared as "false").
  assert.deepEqual(await codes('/health?tag_dc=east'), { n1: 503, n2: 503, n3: 200 });
  assert.deepEqual(await codes('/read-only?tag_dc=east'), { n1: 503, n2: 503, n3: 200 });
  assert.deepEqual(await codes('/health?tag_dc=west'), { n1: 503, n2: 503, n3: 503 });
  assert.deepEqual(await codes('/health?tag_dc=east&tag_noloadbalance=false'), { n1: 503, n2: 503, n3: 200 });
  if (L !== 'n3') assert.deepEqual(await codes('/replica?tag_dc=east'), { n1: 503, n2: 503, n3: 200 });
  // The leader paths ignore tags (Patroni): a write endpoint is where the lock is.
  assert.equal((await call(L, '/primary?tag_dc=nowhere', 'OPTIONS')).status, 200);
});

test('lag filters measure received WAL, or replayed WAL with mode=apply', async () => {
  // With replay paused on the async standby, it receives the leader's new WAL but does not apply it.
  assert.ok(await c.trySql(A, 'select pg_wal_replay_pause()'));
  try {
    assert.ok(await c.trySql(L, 'create table lag_probe as select g from generate_series(1, 10000) g'));
    await c.waitFor(`${A} to lag in replay`, async () => (await call(A, '/replica?lag=0&mode=apply', 'OPTIONS')).status === 503, 30_000);
    assert.equal((await call(A, '/readiness?lag=0&mode=apply', 'OPTIONS')).status, 503);
    assert.equal((await call(A, '/replica?lag=1GB&mode=apply', 'OPTIONS')).status, 200);
    // What it received is all there is: within lag=0 by the received measure (once the leader's
    // member key shows no position beyond it).
    await c.waitFor(`${A} to be within lag=0 by received WAL`, async () => (await call(A, '/replica?lag=0', 'OPTIONS')).status === 200, 30_000);
    await c.waitFor(`${A} ready by received WAL`, async () => (await call(A, '/readiness?lag=0&mode=write', 'OPTIONS')).status === 200, 30_000);
  } finally {
    await c.trySql(A, 'select pg_wal_replay_resume()');
  }
  await c.waitFor(`${A} to catch up in replay`, async () => (await call(A, '/replica?lag=0&mode=apply', 'OPTIONS')).status === 200, 30_000);
});

test("GET /patroni shows Patroni's fields: replication on the primary, sync_standby, dcs_last_seen", async () => {
  const leader = (await c.api(L))!.body;
  const rows = leader.replication as Record<string, unknown>[];
  assert.ok(Array.isArray(rows), 'the primary lists its standbys');
  assert.deepEqual(rows.map((r) => r.application_name).sort(), [S, A].sort());
  for (const r of rows) {
    assert.deepEqual(Object.keys(r).sort(), ['application_name', 'client_addr', 'state', 'sync_priority', 'sync_state', 'usename']);
    assert.equal(r.usename, 'replicator');
    assert.equal(r.client_addr, '127.0.0.1');
    assert.equal(r.state, 'streaming');
  }
  assert.equal(rows.find((r) => r.application_name === S)?.sync_state, 'sync');
  assert.equal(leader.sync_standby, undefined);
  assert.equal(leader.pause, undefined, 'pause only when paused');
  const sync = (await c.api(S))!.body;
  const async_ = (await c.api(A))!.body;
  assert.equal(sync.sync_standby, true);
  assert.equal(async_.sync_standby, undefined);
  assert.equal(sync.replication, undefined, 'replication only on the primary');
  for (const b of [leader, sync, async_]) {
    assert.equal(typeof b.dcs_last_seen, 'number');
    assert.ok(Math.abs((b.dcs_last_seen as number) - Date.now() / 1000) < 60, 'dcs_last_seen is recent, in unix seconds');
  }
});

test('a witness answers 503 on every health path but /liveness', async () => {
  const paths = ['/', '/primary', '/master', '/read-write', '/leader', '/standby-leader', '/replica', '/read-only', '/sync', '/synchronous', '/async', '/asynchronous', '/read-only-sync', '/health', '/readiness'];
  for (const path of paths) {
    for (const method of ['GET', 'HEAD', 'OPTIONS'] as const) assert.equal((await call('w', path, method)).status, 503, `${method} ${path} on the witness`);
  }
  for (const method of ['GET', 'HEAD', 'OPTIONS'] as const) assert.equal((await call('w', '/liveness', method)).status, 200);
  assert.equal((await c.api('w'))?.body.role, 'witness');
  // It still shows the consensus group's health.
  const metrics = await call('w', '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(metrics.text, /^conclave_raft_term\{scope="test",name="w"\} [1-9]/m);
  assert.match(metrics.text, /^patroni_postgres_running\{scope="test",name="w"\} 0$/m);
  const raft = JSON.parse((await call('w', '/raft')).text) as { voters: string[] };
  assert.equal(raft.voters.length, 4);
});

test('a paused cluster: the checks still answer and GET /patroni says pause: true', async () => {
  const current = JSON.parse((await c.getKey('/service/test/config')) ?? '{}') as Record<string, unknown>;
  await c.putKey('/service/test/config', JSON.stringify({ ...current, pause: true }));
  try {
    await c.waitFor('every member to see the pause', async () => (await Promise.all(DB.map((n) => c.api(n)))).every((r) => r?.body.pause === true), 30_000);
    assert.deepEqual(await codes('/primary'), { [L]: 200, [S]: 503, [A]: 503 });
    assert.deepEqual(await codes('/replica'), { [L]: 503, [S]: 200, [A]: 200 });
    assert.deepEqual(await codes('/liveness'), { n1: 200, n2: 200, n3: 200 });
    assert.deepEqual(await codes('/health'), { n1: 200, n2: 200, n3: 200 });
    assert.equal((await call(L, '/primary', 'GET')).status, 200);
  } finally {
    const { pause: _pause, ...rest } = current;
    await c.putKey('/service/test/config', JSON.stringify(rest));
  }
  await c.waitFor('every member to see the end of the pause', async () => (await Promise.all(DB.map((n) => c.api(n)))).every((r) => r && r.body.pause === undefined), 30_000);
});
