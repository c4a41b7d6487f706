// Membership while the cluster serves: a fourth agent, whose config names the three founders as
// partners, joins as a Raft learner, becomes a voter once caught up and a streaming replica with
// its own slot; then an operator removes a replica through any member's API: out of Raft, its
// agent stops (the leader refuses its writes), its member key and its slot are gone, and started
// again with its old data it is refused as that incarnation; emptied, it joins again. The primary
// takes every write throughout.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { request } from 'undici';
import { AgentCluster } from '../support/agents.ts';
import { sleep } from '../support/processes.ts';

let cluster: AgentCluster | null = null;
let writing = false;
after(async () => {
  writing = false;
  await cluster?.stopAll();
});

async function remove(c: AgentCluster, via: string, name: string): Promise<{ status: number; text: string }> {
  const n = c.node(via);
  const res = await request(`http://${n.testHost}:${n.apiPort}/cluster/members/${encodeURIComponent(name)}`, { method: 'DELETE', headersTimeout: 30_000, bodyTimeout: 30_000 });
  return { status: res.statusCode, text: await res.body.text() };
}

test('a fourth node joins and a replica is removed while the primary takes writes', async () => {
  const c = (cluster = await AgentCluster.create([{ name: 'n1' }, { name: 'n2' }, { name: 'n3' }, { name: 'n4', joins: true }]));
  await c.startAll();
  const founders = ['n1', 'n2', 'n3'];
  const primary = await c.waitForPrimary(founders);
  const raftId = (name: string): string => `127.0.0.1:${c.node(name).raftPort}`;
  assert.ok(await c.trySql(primary, 'create table t (id serial primary key, at timestamptz default now())'));

  // Writes go on in the background; every one must be acknowledged.
  writing = true;
  let written = 0;
  const failures: string[] = [];
  const writer = (async () => {
    while (writing) {
      const r = await c.trySql(primary, 'insert into t default values');
      if (r) written++;
      else failures.push(new Date().toISOString());
      await sleep(50);
    }
  })();

  await c.start('n4');
  await c.waitFor('n4 a raft voter', async () => (await c.raftStatus(primary))?.voters.includes(raftId('n4')), 60_000);
  assert.equal((await c.raftStatus('n4'))?.voters.length, 4);
  await c.waitFor('n4 streaming', async () => (await c.api('n4'))?.body.replication_state === 'streaming', 90_000);
  await c.waitFor('a slot for n4 on the primary', async () => (await c.trySql(primary, "select 1 from pg_replication_slots where slot_name = 'n4'"))?.rowCount === 1);
  const n4Rows = await c.waitFor('rows on n4', async () => (await c.trySql('n4', 'select count(*)::int as n from t'))?.rows[0]?.n as number);
  assert.ok(n4Rows > 0);

  // Refusals name the problem.
  const missing = await remove(c, 'n4', 'nobody');
  assert.equal(missing.status, 404);
  assert.match(missing.text, /no member named "nobody"/);
  const thePrimary = await remove(c, 'n4', primary);
  assert.equal(thePrimary.status, 409);
  assert.match(thePrimary.text, /primary: switch over/);

  const victim = founders.find((n) => n !== primary)!;
  const removed = await remove(c, 'n4', victim);
  assert.equal(removed.status, 200, removed.text);
  await c.waitFor(`${victim} out of raft`, async () => {
    const st = await c.raftStatus(primary);
    return st !== null && !st.voters.includes(raftId(victim)) && !st.learners.includes(raftId(victim));
  });
  await c.waitFor(`${victim}'s agent to stop`, async () => c.node(victim).handle?.exit !== null, 30_000);
  assert.ok(c.node(victim).handle?.stdoutLines.some((l) => l.includes('this member was removed from the cluster')), `${victim} says why it stopped`);
  await c.waitFor(`${victim}'s member key gone`, async () => (await c.getKey(`/service/test/members/${victim}`)) === null);
  await c.waitFor(`${victim}'s slot dropped`, async () => (await c.trySql(primary, 'select 1 from pg_replication_slots where slot_name = $1', [victim]))?.rowCount === 0);

  // Started again with its old data, the removed member is refused by every member as that
  // incarnation (403) and stops again; the refusals are counted.
  await c.start(victim);
  await c.waitFor(`${victim}'s agent to stop again`, async () => c.node(victim).handle?.exit !== null, 60_000);
  assert.ok(c.node(victim).handle?.stdoutLines.some((l) => l.includes('this member was removed from the cluster')), `${victim} says why it stopped`);
  const survivors = ['n1', 'n2', 'n3', 'n4'].filter((n) => n !== victim);
  const refusedRemoved = await Promise.all(survivors.map(async (n) => ((await c.raftRequest(n, '/v1/status')).body.toString().match(/"removed":(\d+)/)?.[1] ?? '0')));
  assert.ok(refusedRemoved.some((count) => Number(count) > 0), `some member refused the removed incarnation (${refusedRemoved.join(', ')})`);

  // Emptied, its Raft data directory makes a new incarnation: the same host joins again.
  await rm(c.node(victim).raftDataDir, { recursive: true, force: true });
  await c.start(victim);
  await c.waitFor(`${victim} a raft voter again`, async () => (await c.raftStatus(primary))?.voters.includes(raftId(victim)), 60_000);
  await c.waitFor(`${victim} streaming again`, async () => (await c.api(victim))?.body.replication_state === 'streaming', 90_000);

  // The three that remain still form the cluster and replicate.
  await sleep(1000);
  writing = false;
  await writer;
  assert.deepEqual(failures, [], `writes refused at ${failures.join(', ')}`);
  assert.ok(written > 20, `only ${written} writes`);
  assert.deepEqual(await c.primaries(['n1', 'n2', 'n3', 'n4']), [primary]);
  for (const n of ['n4', victim]) await c.waitFor(`${n} has every row`, async () => (await c.trySql(n, 'select count(*)::int as n from t'))?.rows[0]?.n === written);
});
