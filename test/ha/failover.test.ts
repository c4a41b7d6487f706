// Three real agents with real PostgreSQL 15 on loopback, one cluster through a whole life:
// bootstrap with replication to every member; kill -9 of the primary's agent and PostgreSQL
// together → exactly one new primary holding every acknowledged row; the old primary rejoins with
// pg_rewind after a restart; PostgreSQL alone killed on the primary → restarted by its agent on
// the same timeline, no failover.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentCluster } from '../support/agents.ts';
import { sleep } from '../support/processes.ts';

const NAMES = ['n1', 'n2', 'n3'];
let cluster: AgentCluster;
after(() => cluster?.stopAll());

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
  cluster = await AgentCluster.create(NAMES.map((name) => ({ name })));
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
