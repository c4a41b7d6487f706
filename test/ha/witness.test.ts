// Two database nodes and a witness (a member whose config has no postgresql section: it votes in
// Raft and runs no PostgreSQL) survive the loss of one database node: the witness and the other
// database node are the Raft majority that lets the latter take over.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentCluster } from '../support/agents.ts';

let cluster: AgentCluster | null = null;
after(() => cluster?.stopAll());

test('two database nodes and a witness survive the loss of one database node', async () => {
  const c = (cluster = await AgentCluster.create([{ name: 'db1' }, { name: 'db2' }, { name: 'w', witness: true }]));
  await c.startAll();
  const primary = await c.waitForPrimary(['db1', 'db2']);
  const other = primary === 'db1' ? 'db2' : 'db1';
  await c.waitFor(`${other} streaming`, async () => (await c.api(other))?.body.replication_state === 'streaming');
  const witness = await c.api('w');
  assert.equal(witness?.body.role, 'witness');
  assert.equal((await c.api('w', '/primary'))?.status, 503);
  assert.equal((await c.api('w', '/replica'))?.status, 503);
  const slots = await c.trySql(primary, "select slot_name from pg_replication_slots where slot_type = 'physical'");
  assert.deepEqual(slots?.rows.map((r: { slot_name: string }) => r.slot_name), [other], 'no slot is kept for the witness');

  assert.ok(await c.trySql(primary, 'create table t (id int)'));
  assert.ok(await c.trySql(primary, 'insert into t select generate_series(1, 100)'));
  await c.waitFor(`${other} to have the rows`, async () => (await c.trySql(other, 'select count(*)::int as n from t'))?.rows[0]?.n === 100);
  c.killAgent(primary);
  await c.killPostgres(primary);
  assert.equal(await c.waitForPrimary([other], 30_000), other);
  assert.equal((await c.trySql(other, 'select count(*)::int as n from t'))?.rows[0]?.n, 100);
  assert.ok(await c.trySql(other, 'insert into t values (101)'), 'the survivor takes writes');
});
