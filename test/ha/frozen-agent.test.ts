// Fencing: the primary's agent is frozen (SIGSTOP), or killed alone (kill -9, its PostgreSQL left
// running). Either way its PostgreSQL must stop accepting writes before another member is
// promoted; the agent's fence process does it at the lease deadline. Observed from outside: the
// last write the old primary acknowledged arrived before the first write to the new primary was
// sent. After SIGCONT / a restart the old primary rejoins as a replica.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentCluster } from '../support/agents.ts';
import { observeHandOver, assertNoOverlap } from '../support/split-brain.ts';

const NAMES = ['n1', 'n2', 'n3'];
let cluster: AgentCluster | null = null;
after(async () => {
  // A frozen agent cannot stop: let it run again first.
  for (const n of cluster?.nodes.values() ?? []) n.handle?.kill('SIGCONT');
  await cluster?.stopAll();
});

test('a frozen or killed agent cannot leave its PostgreSQL writable once another member may be promoted', async () => {
  const c = (cluster = await AgentCluster.create(NAMES.map((name) => ({ name }))));
  await c.startAll();
  let primary = await c.waitForPrimary();
  await c.waitFor('two streaming replicas', async () => {
    const r = await Promise.all(NAMES.filter((n) => n !== primary).map((n) => c.api(n)));
    return r.every((x) => x?.body.role === 'replica' && x.body.replication_state === 'streaming');
  });
  assert.ok(await c.trySql(primary, 'create table w (id serial primary key, at text)'));
  await c.waitFor('the table everywhere', async () => (await Promise.all(NAMES.map((n) => c.trySql(n, 'select 1 from w limit 1')))).every((r) => r !== null));

  // --- SIGSTOP of the primary's agent.
  const frozen = primary;
  const outcome = await observeHandOver(c, frozen, NAMES.filter((n) => n !== frozen), () => {
    c.node(frozen).handle!.kill('SIGSTOP');
  });
  assertNoOverlap('agent frozen', outcome);
  assert.equal(await c.trySql(frozen, "insert into w (at) values ('late')"), null, 'the frozen agent’s PostgreSQL refuses writes');
  c.node(frozen).handle!.kill('SIGCONT');
  await c.waitFor(`${frozen} to rejoin as a replica`, async () => {
    const r = await c.api(frozen);
    return r?.body.role === 'replica' && r.body.state === 'running';
  }, 60_000);
  primary = outcome.newPrimary;
  await c.waitFor('two streaming replicas again', async () => {
    const r = await Promise.all(NAMES.filter((n) => n !== primary).map((n) => c.api(n)));
    return r.every((x) => x?.body.role === 'replica' && x.body.replication_state === 'streaming');
  });

  // --- kill -9 of the primary's agent alone: its PostgreSQL is left running, the fence stops it.
  const killed = primary;
  const second = await observeHandOver(c, killed, NAMES.filter((n) => n !== killed), () => c.killAgent(killed));
  assertNoOverlap('agent killed', second);
  assert.equal(await c.postmasterPid(killed), null, 'the fence stopped the orphaned PostgreSQL');
});
