// The watchdog with real agents (Patroni's `watchdog` section). A member whose watchdog is
// required but cannot be used never becomes primary, even when it is the only database member
// left; a member in automatic mode feeds its device while it leads and closes it with the magic
// character on a clean stop, but not when its agent is killed. A regular file stands in for the
// device, so the keepalives are bytes in it (the machine reset itself is not tested).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { AgentCluster } from '../support/agents.ts';
import { sleep } from '../support/processes.ts';

let cluster: AgentCluster | null = null;
after(() => cluster?.stopAll());

async function setWatchdog(c: AgentCluster, name: string, watchdog: Record<string, unknown>): Promise<void> {
  const path = c.node(name).configPath;
  const config = parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  await writeFile(path, stringify({ ...config, watchdog }));
}

test('a member whose required watchdog cannot be used never leads; a leader feeds its device', async () => {
  const c = (cluster = await AgentCluster.create([{ name: 'db1' }, { name: 'db2' }, { name: 'w', witness: true }]));
  const device = join(c.node('db2').dir, 'watchdog');
  await writeFile(device, '');
  await setWatchdog(c, 'db1', { mode: 'required', device: join(c.node('db1').dir, 'no-such-watchdog') });
  await setWatchdog(c, 'db2', { mode: 'automatic', device });
  await c.startAll();
  assert.equal(await c.waitForPrimary(['db1', 'db2']), 'db2', 'db1 may not bootstrap');
  await c.waitFor('db1 streaming', async () => (await c.api('db1'))?.body.replication_state === 'streaming');
  // Fed at every renewal while it leads: only keepalive bytes, more and more of them.
  const fed = (await readFile(device, 'utf8')).length;
  await sleep(1500);
  const later = await readFile(device, 'utf8');
  assert.match(later, /^1+$/);
  assert.ok(later.length > fed, `keepalives written (${fed} then ${later.length})`);

  // The leader's agent and PostgreSQL die: db1 is the only database member left, and must not lead.
  c.killAgent('db2');
  await c.killPostgres('db2');
  const until = Date.now() + 6000;
  while (Date.now() < until) {
    assert.deepEqual(await c.primaries(['db1']), [], 'db1 became primary without its required watchdog');
    await sleep(250);
  }
  const why = (await c.api('db1'))?.body.conclave as { last_decision?: string } | undefined;
  assert.match(why?.last_decision ?? '', /not racing: the watchdog is required but not usable \(cannot use the watchdog device .*no-such-watchdog: ENOENT/);
  assert.match(await readFile(device, 'utf8'), /^1+$/, 'a killed agent leaves its device unfed and not closed (the kernel would reset)');

  // db2 returns and leads again; a clean stop closes its device with the magic character.
  await writeFile(device, '');
  await c.start('db2');
  assert.equal(await c.waitForPrimary(['db1', 'db2'], 30_000), 'db2');
  await c.waitFor('db2 feeding its device again', async () => /^11+$/.test(await readFile(device, 'utf8')));
  await c.stopAgent('db2');
  assert.match(await readFile(device, 'utf8'), /V$/);
});
