// Fencing: the primary's agent is frozen (SIGSTOP), or killed alone (kill -9, its PostgreSQL left
// running). Either way its PostgreSQL must stop accepting writes before another member is
// promoted; the agent's fence process does it at the lease deadline. Observed from outside: the
// last write the old primary acknowledged arrived before the first write to the new primary was
// sent. After SIGCONT / a restart the old primary rejoins as a replica.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentCluster } from '../support/agents.ts';
import { sleep } from '../support/processes.ts';

const NAMES = ['n1', 'n2', 'n3'];
let cluster: AgentCluster | null = null;
after(async () => {
  // A frozen agent cannot stop: let it run again first.
  for (const n of cluster?.nodes.values() ?? []) n.handle?.kill('SIGCONT');
  await cluster?.stopAll();
});

interface Outcome {
  lastOldAckAt: number;
  firstNewSentAt: number;
  newPrimary: string;
  oldWrites: number;
}

/** Writes continuously to `old` and probes the others until one accepts a write. */
async function writeThrough(c: AgentCluster, old: string, fault: () => void | Promise<void>): Promise<Outcome & { faultAt: number }> {
  const others = NAMES.filter((n) => n !== old);
  let lastOldAckAt = 0;
  let oldWrites = 0;
  let firstNewSentAt = 0;
  let newPrimary: string | null = null;
  let stop = false;
  const oldWriter = (async () => {
    const client = await c.sql(old);
    try {
      while (!stop) {
        const ok = await Promise.race([client.query("insert into w (at) values ('old')").then(() => true, () => false), sleep(1000).then(() => false)]);
        if (!ok) break;
        lastOldAckAt = performance.now();
        oldWrites++;
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  const prober = (async () => {
    while (!stop && newPrimary === null) {
      for (const n of others) {
        const sentAt = performance.now();
        if (await c.trySql(n, "insert into w (at) values ('new')")) {
          newPrimary = n;
          firstNewSentAt = sentAt;
          break;
        }
      }
      await sleep(20);
    }
  })();
  await sleep(300);
  const faultAt = performance.now();
  await fault();
  try {
    await c.waitFor('a new primary', async () => newPrimary, 30_000, 50);
  } finally {
    // Also when no primary came: the loops must end, or the test process never exits.
    stop = true;
    await Promise.all([oldWriter, prober]);
  }
  return { lastOldAckAt, firstNewSentAt, newPrimary: newPrimary!, oldWrites, faultAt };
}

function check(what: string, o: Outcome & { faultAt: number }): void {
  assert.ok(o.oldWrites > 0, 'the old primary took writes before the fault');
  assert.ok(o.lastOldAckAt < o.firstNewSentAt, `${what}: the old primary acknowledged a write ${(o.lastOldAckAt - o.firstNewSentAt).toFixed(0)} ms after the new one was first written to`);
  process.stdout.write(`# ${what}: old primary's last write ${(o.lastOldAckAt - o.faultAt).toFixed(0)} ms after the fault; new primary writable ${(o.firstNewSentAt - o.faultAt).toFixed(0)} ms after it\n`);
}

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
  const outcome = await writeThrough(c, frozen, () => {
    c.node(frozen).handle!.kill('SIGSTOP');
  });
  check('agent frozen', outcome);
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
  const second = await writeThrough(c, killed, () => c.killAgent(killed));
  check('agent killed', second);
  assert.equal(await c.postmasterPid(killed), null, 'the fence stopped the orphaned PostgreSQL');
});
