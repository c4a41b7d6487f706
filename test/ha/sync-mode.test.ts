// Synchronous strict mode with real PostgreSQL: a client writes as fast as it can and the
// primary's agent and PostgreSQL are killed with kill -9 mid-stream; the new primary (it must be
// the standby the `sync` key names) holds every write that was acknowledged. With no eligible
// standby left (the third member is tagged nosync), writes block instead of being acknowledged
// asynchronously, and go through again once a standby returns.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentCluster } from '../support/agents.ts';
import { sleep } from '../support/processes.ts';

let cluster: AgentCluster | null = null;
after(() => cluster?.stopAll());

async function syncKey(c: AgentCluster): Promise<{ leader?: string; sync_standby?: string | null } | null> {
  const v = await c.getKey('/service/test/sync');
  return v ? (JSON.parse(v) as { leader?: string; sync_standby?: string | null }) : null;
}

test('strict synchronous mode: no acknowledged write lost across a kill -9 failover; writes block with no standby', async () => {
  // n3 may neither become primary nor be a synchronous standby: n1 and n2 are the pair.
  const c = (cluster = await AgentCluster.create([{ name: 'n1' }, { name: 'n2' }, { name: 'n3', tags: { nofailover: true, nosync: true } }], {
    dcs: { synchronous_mode: true, synchronous_mode_strict: true },
  }));
  await c.startAll();
  const primary = await c.waitForPrimary();
  const standby = primary === 'n1' ? 'n2' : 'n1';
  const key = await c.waitFor('the sync key to name the standby', async () => {
    const k = await syncKey(c);
    return k?.leader === primary && k.sync_standby === standby ? k : null;
  });
  assert.deepEqual(key, { leader: primary, sync_standby: standby });
  const setting = await c.trySql(primary, 'show synchronous_standby_names');
  assert.equal(setting?.rows[0]?.synchronous_standby_names, `"${standby}"`);
  // n3 may still be cloning: wait until both stream, then the states must be these.
  const rep = await c.waitFor('both standbys streaming', async () => {
    const r = await c.trySql(primary, 'select application_name, sync_state from pg_stat_replication order by 1');
    return r?.rowCount === 2 ? r : null;
  });
  assert.deepEqual(rep.rows, [{ application_name: standby, sync_state: 'sync' }, { application_name: 'n3', sync_state: 'async' }]);

  // Writes acknowledged one by one while the primary dies.
  assert.ok(await c.trySql(primary, 'create table acked (id int primary key)'));
  const acked: number[] = [];
  let stop = false;
  const writer = (async () => {
    const client = await c.sql(primary);
    try {
      for (let i = 1; !stop; i++) {
        const ok = await Promise.race([client.query('insert into acked values ($1)', [i]).then(() => true, () => false), sleep(2000).then(() => false)]);
        if (!ok) break;
        acked.push(i);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  await sleep(1500);
  c.killAgent(primary);
  await c.killPostgres(primary);
  stop = true;
  await writer;
  assert.ok(acked.length > 50, `the writer got going (${acked.length} writes)`);

  const next = await c.waitForPrimary(['n2', 'n3', 'n1'].filter((n) => n !== primary), 30_000);
  assert.equal(next, standby, 'the synchronous standby took over');
  const present = await c.trySql(next, 'select id from acked where id = any($1::int[])', [acked]);
  assert.equal(present?.rowCount, acked.length, `every acknowledged write is on the new primary (${acked.length} of them)`);

  await c.waitFor('the new primary out of recovery', async () => (await c.trySql(next, 'select pg_is_in_recovery() as r'))?.rows[0]?.r === false);
  // No eligible standby now (the old primary is down, n3 is nosync): a commit must wait.
  const client = await c.sql(next);
  try {
    const blocked = await Promise.race([client.query('insert into acked values (-1)').then(() => 'acknowledged', (e: Error) => e.message), sleep(3000).then(() => 'waiting')]);
    assert.equal(blocked, 'waiting', 'strict mode does not acknowledge a write without a synchronous standby');
    // The old primary comes back, rejoins, becomes the synchronous standby: the commit completes.
    await c.start(primary);
    await c.waitFor('the waiting commit to complete', async () => (await c.trySql(next, 'select 1 from acked where id = -1'))?.rowCount === 1, 60_000);
    // The key follows PostgreSQL's confirmation within a cycle.
    await c.waitFor('the returned standby in the sync key', async () => {
      const k = await syncKey(c);
      return k?.leader === next && k.sync_standby === primary;
    });
  } finally {
    await client.end().catch(() => undefined);
  }
});
