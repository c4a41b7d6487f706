// Switchover through the REST API, as Patroni's: to a named candidate and to the best one (the
// old primary follows the new one without a pg_rewind and no acknowledged row is lost), scheduled
// and carried out at its time, scheduled and cancelled, and refused with a reason when it cannot
// be done.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { AgentCluster } from '../support/agents.ts';
import { sleep } from '../support/processes.ts';

const NAMES = ['n1', 'n2', 'n3'];
let cluster: AgentCluster | null = null;
after(() => cluster?.stopAll());

async function call(c: AgentCluster, node: string, method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; text: string }> {
  const n = c.node(node);
  const res = await request(`http://${n.testHost}:${n.apiPort}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    headersTimeout: 40_000,
    bodyTimeout: 40_000,
  });
  return { status: res.statusCode, text: await res.body.text() };
}

/** A request that must be accepted: retried while member keys still show the last hand-over (412). */
async function accepted(c: AgentCluster, node: string, body: unknown): Promise<{ status: number; text: string }> {
  return c.waitFor('the request accepted', async () => {
    const r = await call(c, node, 'POST', '/switchover', body);
    return r.status === 412 ? null : r;
  }, 10_000);
}

async function healthy(c: AgentCluster): Promise<string | null> {
  const p = await c.primaries();
  if (p.length !== 1) return null;
  const r = await Promise.all(NAMES.filter((n) => n !== p[0]).map((n) => c.api(n)));
  return r.every((x) => x?.body.role === 'replica' && x.body.replication_state === 'streaming') ? p[0] : null;
}

async function rows(c: AgentCluster, node: string): Promise<number | null> {
  return (await c.trySql(node, 'select count(*)::int as n from t'))?.rows[0]?.n ?? null;
}

test('switchover to a candidate, to the best member, scheduled, cancelled, and refused', async () => {
  const c = (cluster = await AgentCluster.create([{ name: 'n1' }, { name: 'n2' }, { name: 'n3', tags: { nofailover: true } }]));
  await c.startAll();
  let primary = await c.waitFor('a healthy cluster', () => healthy(c));
  assert.ok(await c.trySql(primary, 'create table t (id serial primary key)'));
  let written = 0;
  const write = async (n = 20) => {
    for (let i = 0; i < n; i++) assert.ok(await c.trySql(primary, 'insert into t default values'));
    written += n;
  };
  await write();

  // Refusals, each with its reason.
  const other = NAMES.find((n) => n !== primary && n !== 'n3')!;
  assert.deepEqual(await call(c, other, 'POST', '/switchover', { candidate: other }), { status: 400, text: 'Switchover could be performed only from a specific leader' });
  assert.deepEqual(await call(c, other, 'POST', '/switchover', { leader: other, candidate: primary }), { status: 412, text: 'leader name does not match' });
  const noFailover = await call(c, other, 'POST', '/switchover', { leader: primary, candidate: 'n3' });
  assert.equal(noFailover.status, 412);
  assert.match(noFailover.text, /n3 is not a running replica that may be promoted/);
  assert.equal((await call(c, other, 'POST', '/switchover', { leader: primary, candidate: 'n9' })).text, 'Member n9 does not exist');
  assert.equal((await call(c, other, 'POST', '/switchover', { leader: primary, scheduled_at: '2030-01-01T00:00:00' })).status, 422, 'a schedule without a time zone');
  assert.equal((await call(c, other, 'POST', '/switchover', 'not json')).status, 400);
  assert.equal((await c.primaries())[0], primary, 'nothing changed');

  // To a named candidate: answered once it happened.
  const candidate = other;
  const r1 = await accepted(c, primary, { leader: primary, candidate });
  assert.deepEqual(r1, { status: 200, text: `Successfully switched over to "${candidate}"` });
  const old = primary;
  primary = await c.waitFor('the old primary streaming from the candidate', async () => ((await healthy(c)) === candidate ? candidate : null));
  assert.equal(primary, candidate);
  assert.equal(await rows(c, primary), written, 'no acknowledged row lost');
  assert.ok(!c.node(old).handle!.stdoutLines.some((l) => l.includes('after pg_rewind')), 'the old primary follows without a rewind');
  await write();

  // To the best member (n3 is nofailover, so it must be the old primary again).
  const r2 = await accepted(c, 'n3', { leader: primary });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(r2.text, `Successfully switched over to "${old}"`);
  primary = await c.waitFor('a healthy cluster', () => healthy(c));
  assert.equal(primary, old);
  assert.equal(await rows(c, primary), written);
  await write();

  // Scheduled: nothing happens before its time, then it does.
  // The candidate's member key may still describe it as it was a moment ago (keys are written at
  // the end of each cycle): until it reads as a running replica the request is refused (412).
  const scheduled = await c.waitFor('the scheduled switchover accepted', async () => {
    const r = await call(c, primary, 'POST', '/switchover', { leader: primary, candidate, scheduled_at: new Date(Date.now() + 4000).toISOString() });
    return r.status === 412 ? null : r;
  }, 10_000);
  assert.deepEqual(scheduled, { status: 202, text: 'Switchover scheduled' });
  assert.equal((await call(c, primary, 'POST', '/switchover', { leader: primary, candidate })).status, 409, 'one request at a time');
  await sleep(1500);
  assert.deepEqual(await c.primaries(), [primary], 'not before its time');
  assert.match(String(((await c.api(primary))?.body.conclave as { last_decision: string }).last_decision), /a switchover is scheduled at/);
  primary = await c.waitFor(`${candidate} primary after the scheduled time`, async () => ((await healthy(c)) === candidate ? candidate : null));
  assert.equal(await rows(c, primary), written);

  // Scheduled, then cancelled.
  const far = new Date(Date.now() + 3_600_000).toISOString();
  const farRequest = await c.waitFor('the far switchover accepted', async () => {
    const r = await call(c, primary, 'POST', '/switchover', { leader: primary, scheduled_at: far });
    return r.status === 412 ? null : r; // member keys catching up after the last switchover
  }, 10_000);
  assert.equal(farRequest.status, 202);
  assert.deepEqual(await call(c, old, 'DELETE', '/switchover'), { status: 200, text: 'scheduled switchover deleted' });
  assert.deepEqual(await call(c, old, 'DELETE', '/switchover'), { status: 404, text: 'no switchover is scheduled' });
  await sleep(1000);
  assert.deepEqual(await c.primaries(), [primary]);
});

test('pause mode: killing the primary promotes nobody until the pause ends', async () => {
  const c = cluster!;
  const primary = await c.waitFor('a healthy cluster', () => healthy(c));
  const configKey = '/service/test/config';
  const dynamic = JSON.parse((await c.getKey(configKey))!) as Record<string, unknown>;
  await c.putKey(configKey, JSON.stringify({ ...dynamic, pause: true }));
  await c.waitFor('every agent paused', async () => (await Promise.all(NAMES.map((n) => c.api(n)))).every((r) => String((r?.body.conclave as { last_decision?: string } | undefined)?.last_decision).startsWith('PAUSE:')));
  c.killAgent(primary);
  await c.killPostgres(primary);
  const others = NAMES.filter((n) => n !== primary);
  // Three TTLs: the leader key has long expired, and still nobody takes it.
  const until = Date.now() + 6000;
  while (Date.now() < until) {
    assert.deepEqual(await c.primaries(others), [], 'a paused cluster promoted a member');
    await sleep(250);
  }
  assert.match(String(((await c.api(others[0]))?.body.conclave as { last_decision: string }).last_decision), /^PAUSE: no action: I am .*, a secondary, and there is no leader$/);
  // The pause ends: the best eligible replica (n3 is nofailover) takes over.
  await c.putKey(configKey, JSON.stringify({ ...dynamic, pause: false }));
  const next = await c.waitForPrimary(others, 30_000);
  assert.notEqual(next, 'n3');
});
