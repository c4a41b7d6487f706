// A planned stop of the primary's agent hands off at once: with a 30 s lease, a new primary takes
// writes long before the lease could have run out, because the stopping agent stopped PostgreSQL
// cleanly, released the leader key and handed Raft leadership over. Started again, the old
// primary follows the new one without a pg_rewind (its shutdown checkpoint reached the new primary
// before it switched timeline).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentCluster } from '../support/agents.ts';
import { sleep } from '../support/processes.ts';
import { request } from 'undici';

const NAMES = ['n1', 'n2', 'n3'];
let cluster: AgentCluster | null = null;
after(() => cluster?.stopAll());

test('a graceful stop of the primary hands over without waiting out the lease; the old primary follows without a rewind', async () => {
  const c = (cluster = await AgentCluster.create(NAMES.map((name) => ({ name })), { dcs: { ttl: 30, loop_wait: 1, retry_timeout: 1 } }));
  await c.startAll();
  const old = await c.waitForPrimary();
  const others = NAMES.filter((n) => n !== old);
  await c.waitFor('two streaming replicas', async () => {
    const r = await Promise.all(others.map((n) => c.api(n)));
    return r.every((x) => x?.body.role === 'replica' && x.body.replication_state === 'streaming');
  });
  assert.ok(await c.trySql(old, 'create table w (id serial primary key, at text)'));
  for (let i = 0; i < 50; i++) assert.ok(await c.trySql(old, "insert into w (at) values ('before')"));
  await sleep(300);

  const stoppedAt = performance.now();
  const stopping = c.stopAgent(old);
  let newPrimary: string | null = null;
  while (newPrimary === null && performance.now() - stoppedAt < 15_000) {
    for (const n of others) if (await c.trySql(n, "insert into w (at) values ('after')")) newPrimary = n;
    if (newPrimary === null) await sleep(20);
  }
  const gapMs = performance.now() - stoppedAt;
  await stopping;
  assert.ok(newPrimary, 'a new primary within 15 s of a planned stop, with a 30 s lease: the lock was handed over, not left to expire');
  process.stdout.write(`# graceful stop: new primary writable ${gapMs.toFixed(0)} ms after the stop began\n`);
  assert.equal((await c.trySql(newPrimary, "select count(*)::int as n from w where at = 'before'"))?.rows[0]?.n, 50, 'every write made before the stop is on the new primary');

  await c.start(old);
  await c.waitFor(`${old} to follow as a replica`, async () => {
    const r = await c.api(old);
    return r?.body.role === 'replica' && r.body.state === 'running' && r.body.replication_state === 'streaming';
  });
  const lines = c.node(old).handle!.stdoutLines;
  assert.ok(lines.some((l) => l.includes(`starting postgres as a replica of ${newPrimary}`)), 'it started as a replica of the new primary');
  assert.ok(!lines.some((l) => l.includes('after pg_rewind')), 'without a pg_rewind');
  assert.deepEqual(await c.primaries(), [newPrimary]);
});

test('restart of a member in place, and reinitialize of a replica from the leader', async () => {
  const c = cluster!;
  const primary = await c.waitForPrimary();
  const replica = NAMES.find((n) => n !== primary)!;
  const post = async (node: string, path: string, body: unknown = {}) => {
    const n = c.node(node);
    const res = await request(`http://${n.testHost}:${n.apiPort}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), headersTimeout: 60_000, bodyTimeout: 60_000 });
    return { status: res.statusCode, text: await res.body.text() };
  };
  const pidBefore = await c.postmasterPid(primary);
  assert.deepEqual(await post(primary, '/restart'), { status: 200, text: 'restarted successfully' });
  const pidAfter = await c.postmasterPid(primary);
  assert.ok(pidAfter !== null && pidAfter !== pidBefore, 'a new postmaster');
  assert.deepEqual(await c.primaries(), [primary], 'the primary restarted in place, no failover');
  assert.ok(await c.waitFor('writes on the restarted primary', async () => c.trySql(primary, "insert into w (at) values ('restarted')")));
  assert.equal((await post(primary, '/restart', { restart_pending: 'yes' })).status, 400);

  assert.deepEqual(await post(primary, '/reinitialize'), { status: 503, text: 'I am the leader, can not reinitialize' });
  const rowsNow = (await c.trySql(primary, 'select count(*)::int as n from w'))?.rows[0]?.n as number;
  assert.deepEqual(await post(replica, '/reinitialize'), { status: 200, text: 'reinitialize started' });
  await c.waitFor(`${replica} reinitialized and streaming`, async () => {
    const r = await c.api(replica);
    return r?.body.state === 'running' && r.body.replication_state === 'streaming' && (await c.trySql(replica, 'select count(*)::int as n from w'))?.rows[0]?.n === rowsNow;
  });
  assert.ok(c.node(replica).handle!.stdoutLines.some((l) => l.includes(`reinitialized from ${primary}`)));
});
