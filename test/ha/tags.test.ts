// Failover choices follow the members' tags: among equally up-to-date replicas the higher
// failover_priority wins; nofailover members never take the lock, even when that leaves the
// cluster without a primary until an eligible member returns.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentCluster } from '../support/agents.ts';
import { sleep } from '../support/processes.ts';

const clusters: AgentCluster[] = [];
after(async () => {
  for (const c of clusters) await c.stopAll();
});

/** Starts all three and waits for a primary and two streaming replicas at its position; returns the primary. */
async function startCluster(c: AgentCluster): Promise<string> {
  await c.startAll();
  const primary = await c.waitForPrimary();
  const replicas = ['n1', 'n2', 'n3'].filter((n) => n !== primary);
  await c.waitFor('two streaming replicas', async () => {
    const r = await Promise.all(replicas.map((n) => c.api(n)));
    return r.every((x) => x?.body.role === 'replica' && x.body.state === 'running' && x.body.replication_state === 'streaming');
  });
  assert.ok(await c.trySql(primary, 'create table t (id int)'));
  assert.ok(await c.trySql(primary, 'insert into t select generate_series(1, 100)'));
  // Let both replicas reach the primary's position, so that priority alone decides.
  await c.waitFor('replicas at the primary position', async () => {
    const [a, b, p] = await Promise.all([...replicas, primary].map((n) => c.api(n)));
    const pos = (x: typeof a) => (x?.body.xlog as { replayed_location?: number } | undefined)?.replayed_location;
    const loc = (p?.body.xlog as { location?: number } | undefined)?.location;
    return pos(a) !== undefined && pos(a) === pos(b) && pos(a) === loc;
  });
  return primary;
}

test('the replica with the higher failover_priority wins a race between equals', async () => {
  const priority: Record<string, number> = { n1: 2, n2: 3, n3: 4 };
  const c = await AgentCluster.create(Object.entries(priority).map(([name, p]) => ({ name, tags: { failover_priority: p } })));
  clusters.push(c);
  const primary = await startCluster(c);
  const survivors = Object.keys(priority).filter((n) => n !== primary);
  const expected = survivors.reduce((a, b) => (priority[a] > priority[b] ? a : b));
  c.killAgent(primary);
  await c.killPostgres(primary);
  assert.equal(await c.waitForPrimary(survivors, 30_000), expected, `${expected} has the higher priority`);
  const other = await c.api(survivors.find((n) => n !== expected)!);
  assert.equal(other?.body.role, 'replica');
});

test('nofailover members never take the lock; the cluster waits for an eligible member', async () => {
  const c = await AgentCluster.create([{ name: 'n1' }, { name: 'n2', tags: { nofailover: true } }, { name: 'n3', tags: { failover_priority: 0 } }]);
  clusters.push(c);
  // Only n1 may bootstrap, so it is the primary.
  assert.equal(await startCluster(c), 'n1');
  c.killAgent('n1');
  await c.killPostgres('n1');
  // Three TTLs (2 s each) with no eligible member: nobody may become primary.
  const until = Date.now() + 6000;
  while (Date.now() < until) {
    assert.deepEqual(await c.primaries(['n2', 'n3']), [], 'a nofailover member became primary');
    await sleep(250);
  }
  const why = (await c.api('n2'))?.body.conclave as { last_decision?: string } | undefined;
  assert.match(why?.last_decision ?? '', /not racing: tagged nofailover/);
  // The eligible member returns and takes over again.
  await c.start('n1');
  assert.equal(await c.waitForPrimary(undefined, 30_000), 'n1');
});
