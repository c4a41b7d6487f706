// Three real agents with real PostgreSQL 15 on loopback, one cluster through a whole life:
// bootstrap with replication to every member; kill -9 of the primary's agent and PostgreSQL
// together → exactly one new primary holding every acknowledged row; the old primary rejoins with
// pg_rewind after a restart; PostgreSQL alone killed on the primary → restarted by its agent on
// the same timeline, no failover. Along the way: callbacks fire with Patroni's arguments, and a
// parameter changed in the cluster's dynamic config is reloaded everywhere (or, for a
// command-line parameter, reported as pending restart).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentCluster } from '../support/agents.ts';
import { sleep, makeTempDir, removeDir } from '../support/processes.ts';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const NAMES = ['n1', 'n2', 'n3'];
let cluster: AgentCluster;
let callbackDir = '';
after(async () => {
  await cluster?.stopAll();
  if (callbackDir) await removeDir(callbackDir);
});

/** The node and what /patroni says of it. */
async function roles(c: AgentCluster): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of NAMES) {
    const r = await c.api(n);
    out[n] = r ? `${String(r.body.role)}/${String(r.body.state)}` : 'down';
  }
  return out;
}

async function rowCount(c: AgentCluster, node: string): Promise<number | null> {
  const r = await c.trySql(node, 'select count(*)::int as n from t');
  return r ? (r.rows[0] as { n: number }).n : null;
}

test('bootstrap, failover after kill -9 of agent and PostgreSQL, rejoin with pg_rewind, PostgreSQL crash restart', async () => {
  // A callback script that records its arguments (it runs as the postgres user).
  callbackDir = await makeTempDir('conclave-callbacks-');
  await chmod(callbackDir, 0o777);
  const script = join(callbackDir, 'cb.sh');
  const callbackLog = join(callbackDir, 'calls.log');
  await writeFile(script, `#!/bin/sh\necho "$@" >> ${callbackLog}\n`, { mode: 0o755 });
  await writeFile(callbackLog, '', { mode: 0o666 });
  await chmod(callbackLog, 0o666);
  const calls = async (): Promise<string[]> => (await readFile(callbackLog, 'utf8')).split('\n').filter(Boolean);
  const callbacks = { on_start: script, on_role_change: script, on_reload: script };
  cluster = await AgentCluster.create(NAMES.map((name) => ({ name })), { postgresql: { callbacks } });
  await cluster.startAll();

  // --- Bootstrap: one primary, two streaming replicas with the data.
  const first = await cluster.waitForPrimary();
  await cluster.waitFor('two running replicas', async () => {
    const r = await roles(cluster);
    return Object.values(r).filter((s) => s === 'replica/running').length === 2;
  });
  assert.ok(await cluster.trySql(first, 'create table t (id int primary key, note text)'), 'the primary takes DDL');
  for (let i = 0; i < 200; i++) assert.ok(await cluster.trySql(first, 'insert into t values ($1, $2)', [i, `row ${i}`]), `insert ${i} acknowledged`);
  for (const n of NAMES) await cluster.waitFor(`${n} to have all 200 rows`, async () => (await rowCount(cluster, n)) === 200);
  const onReplica = await cluster.trySql(NAMES.find((n) => n !== first)!, 'insert into t values (9999, $1)', ['x']);
  assert.equal(onReplica, null, 'a replica refuses writes');
  const slots = await cluster.trySql(first, "select slot_name from pg_replication_slots where slot_type = 'physical' order by 1");
  assert.deepEqual(slots?.rows.map((r: { slot_name: string }) => r.slot_name), NAMES.filter((n) => n !== first), 'one physical slot per replica');
  await cluster.waitFor('on_start callbacks', async () => (await calls()).filter((l) => l.startsWith('on_start')).length === 3);
  assert.deepEqual((await calls()).filter((l) => l.startsWith('on_start')).sort(), ['on_start primary test', 'on_start replica test', 'on_start replica test']);

  // --- A parameter changed in the dynamic config is reloaded on every member; a command-line
  // one is reported as pending restart instead.
  const configKey = '/service/test/config';
  const dynamic = JSON.parse((await cluster.getKey(configKey))!) as { postgresql: { parameters: Record<string, unknown> } };
  dynamic.postgresql.parameters.work_mem = '7MB';
  await cluster.putKey(configKey, JSON.stringify(dynamic));
  for (const n of NAMES) await cluster.waitFor(`work_mem reloaded on ${n}`, async () => (await cluster.trySql(n, 'show work_mem'))?.rows[0]?.work_mem === '7MB');
  dynamic.postgresql.parameters.max_connections = 120;
  await cluster.putKey(configKey, JSON.stringify(dynamic));
  for (const n of NAMES) {
    await cluster.waitFor(`${n} to report a pending restart`, async () => (await cluster.api(n))?.body.pending_restart === true);
  }
  assert.match(String((await cluster.api(first))?.body.pending_restart_reason), /max_connections changed; needs a restart/);
  assert.ok((await calls()).includes('on_reload primary test'), 'on_reload fired on the primary');
  // Back as it was: a primary restarted with more connections than its replicas would pause
  // their recovery (PostgreSQL requires replicas to have at least as many).
  delete dynamic.postgresql.parameters.max_connections;
  await cluster.putKey(configKey, JSON.stringify(dynamic));
  for (const n of NAMES) await cluster.waitFor(`${n} to drop the pending restart`, async () => (await cluster.api(n))?.body.pending_restart === undefined);

  // --- kill -9 of the primary's agent and PostgreSQL together, while writes continue.
  let acked = 200;
  cluster.killAgent(first);
  await cluster.killPostgres(first);
  const survivors = NAMES.filter((n) => n !== first);
  const second = await cluster.waitForPrimary(survivors, 30_000);
  // Exactly one writable: every survivor but the new primary refuses writes.
  for (const n of survivors) {
    const w = await cluster.trySql(n, 'insert into t values ($1, $2)', [acked, 'after failover']);
    if (n === second) {
      assert.ok(w, 'the new primary accepts writes');
      acked++;
    } else assert.equal(w, null, `${n} is not a second writable primary`);
  }
  assert.equal(await rowCount(cluster, second), acked, 'every acknowledged row is on the new primary');
  await cluster.waitFor('the on_role_change callback', async () => (await calls()).includes('on_role_change primary test'));
  const tl = await cluster.trySql(second, 'select timeline_id from pg_control_checkpoint()');
  assert.equal((tl?.rows[0] as { timeline_id: number }).timeline_id, 2, 'the new primary is on timeline 2 after its checkpoint');

  // --- The old primary comes back: rewound, a replica of the new one, with the new rows.
  await cluster.start(first);
  await cluster.waitFor(`${first} to rejoin as a replica`, async () => (await roles(cluster))[first] === 'replica/running');
  await cluster.waitFor(`${first} to have every row`, async () => (await rowCount(cluster, first)) === acked);
  const patroni = await cluster.api(first);
  assert.equal(patroni?.body.timeline, 2, 'the rejoined member follows timeline 2');
  assert.ok(cluster.node(first).handle!.stdoutLines.some((l) => l.includes('rejoining as a replica of') && l.includes('after pg_rewind')), 'it rejoined through pg_rewind');
  assert.deepEqual(await cluster.primaries(), [second], 'still exactly one primary');

  // --- PostgreSQL alone dies on the primary: its agent restarts it, same timeline, no failover.
  const pidBefore = await cluster.postmasterPid(second);
  await cluster.killPostgres(second);
  await cluster.waitFor('postgres restarted by its agent', async () => {
    const pid = await cluster.postmasterPid(second);
    return pid !== null && pid !== pidBefore && (await cluster.trySql(second, 'insert into t values ($1, $2)', [acked, 'after crash']));
  }, 30_000);
  acked++;
  const after = await cluster.api(second);
  assert.equal(after?.body.role, 'primary');
  assert.equal(after?.body.timeline, 2, 'restarted on the same timeline');
  assert.deepEqual(await cluster.primaries(), [second], 'no failover happened');
  await sleep(500);
  for (const n of NAMES) await cluster.waitFor(`${n} to have all ${acked} rows`, async () => (await rowCount(cluster, n)) === acked);
});
