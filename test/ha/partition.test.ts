// The primary is cut off from the other two members (its network namespace's cluster link goes
// down; the test still reaches it over a private control link). It must stop accepting writes
// before another member is promoted: the lease rule, observed from outside. After the partition
// heals it rejoins as a replica of the new primary.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentCluster } from '../support/agents.ts';
import { NetLab } from '../support/netlab.ts';
import { observeHandOver, assertNoOverlap } from '../support/split-brain.ts';

let lab: NetLab | null = null;
let cluster: AgentCluster | null = null;
after(async () => {
  await cluster?.stopAll();
  await lab?.destroy();
});

test('a primary cut off from the majority is demoted before another member is promoted', async () => {
  lab = await NetLab.create(3);
  const c = (cluster = await AgentCluster.create([{ name: 'n1' }, { name: 'n2' }, { name: 'n3' }], { lab }));
  await c.startAll();
  const old = await c.waitForPrimary();
  const others = ['n1', 'n2', 'n3'].filter((n) => n !== old);
  await c.waitFor('two streaming replicas', async () => {
    const r = await Promise.all(others.map((n) => c.api(n)));
    return r.every((x) => x?.body.role === 'replica' && x.body.replication_state === 'streaming');
  });
  assert.ok(await c.trySql(old, 'create table w (id serial primary key, at text)'));
  await c.waitFor('the table on the replicas', async () => (await Promise.all(others.map((n) => c.trySql(n, 'select 1 from w limit 1')))).every((r) => r !== null));

  const cut = await observeHandOver(c, old, others, () => lab!.isolate(c.node(old).labIndex!));
  const { faultAt: cutAt, newPrimary } = cut;

  if (process.env.PARTITION_DEBUG) {
    for (const n of ['n1', 'n2', 'n3']) {
      for (const l of c.node(n).handle!.stdoutLines) {
        try {
          const j = JSON.parse(l) as { time: number; msg: string; layer?: string; level: number };
          if (j.level >= 30) process.stdout.write(`# ${n} ${j.time % 100000} ${j.layer ?? ''} ${j.msg}\n`);
        } catch {
          // not JSON
        }
      }
    }
    process.stdout.write(`# cut at wall ${(Date.now() - (performance.now() - cutAt)) % 100000}\n`);
  }
  assertNoOverlap('partition', cut);
  assert.equal(await c.trySql(old, "insert into w (at) values ('old-late')"), null, 'the cut-off primary refuses writes');

  // Heal: the old primary rejoins as a replica; one primary.
  await lab.heal(c.node(old).labIndex!);
  await c.waitFor(`${old} to rejoin as a replica`, async () => {
    const r = await c.api(old);
    return r?.body.role === 'replica' && r.body.state === 'running';
  }, 60_000);
  assert.deepEqual(await c.primaries(), [newPrimary]);
});
