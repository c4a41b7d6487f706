// config/node1..3.yml start a working three-node cluster as they are: the files are used
// unchanged, from a scratch working directory (their relative data paths land there, not in the
// repository's data/), on the fixed ports they name, reserved for the duration of the test. Then
// config/haproxy.cfg, unchanged too, routes writes to the primary and reads to a replica, also
// across a kill -9 failover.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { request } from 'undici';
import { makeTempDir, releasePorts, removeDir, reservePorts, sleep, startProcess, isAlive } from '../support/processes.ts';
import type { ProcessHandle } from '../support/processes.ts';

const REPO = resolve(import.meta.dirname, '../..');
const NODES = [
  { name: 'node1', api: 8008, raft: 2222, pg: 5432 },
  { name: 'node2', api: 8009, raft: 2223, pg: 5433 },
  { name: 'node3', api: 8010, raft: 2224, pg: 5434 },
];
// HAProxy's: writes, reads, the stats page (config/haproxy.cfg).
const HAPROXY_PORTS = [5000, 5001, 7000];
const PORTS = [...NODES.flatMap((n) => [n.api, n.raft, n.pg]), ...HAPROXY_PORTS];
const HAPROXY_INSTALLED = spawnSync('haproxy', ['-v']).status === 0;
const agents: ProcessHandle[] = [];
let haproxy: ProcessHandle | null = null;
let primary: (typeof NODES)[number] | undefined;
let work = '';

after(async () => {
  await haproxy?.stop(5000).catch(() => undefined);
  for (const a of agents) await a.stop(15_000).catch(() => undefined);
  // Each agent stops its PostgreSQL; any postmaster left (an agent killed) goes by PID.
  for (const n of NODES) {
    const pid = Number((await readFile(join(work, 'data', n.name, 'pg', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    if (pid > 0 && isAlive(pid)) process.kill(-pid, 'SIGKILL');
  }
  if (work) await removeDir(work);
  releasePorts(PORTS);
});

async function status(port: number, path: string): Promise<number | null> {
  try {
    const res = await request(`http://127.0.0.1:${port}${path}`, { headersTimeout: 1000, bodyTimeout: 1000 });
    await res.body.dump();
    return res.statusCode;
  } catch {
    return null;
  }
}

async function query(port: number, text: string, values: unknown[] = []): Promise<pg.QueryResult | null> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: 'conclave-super', database: 'postgres', connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.query(text, values);
  } catch {
    return null;
  } finally {
    await client.end().catch(() => undefined);
  }
}

test('the example configs start a three-node cluster as they are', async () => {
  await reservePorts(PORTS);
  work = await makeTempDir('conclave-examples-');
  await chmod(work, 0o755); // PostgreSQL runs as `postgres` below it
  for (const n of NODES) {
    agents.push(await startProcess({
      cmd: process.execPath,
      args: [join(REPO, 'bin/conclave.js'), join(REPO, 'config', `${n.name}.yml`)],
      cwd: work,
      env: { CONCLAVE_LOG_TYPE: 'json' },
      name: n.name,
      readyLine: (line) => line.includes('"agent started"'),
    }));
  }
  const deadline = Date.now() + 60_000;
  while (!primary && Date.now() < deadline) {
    const codes = await Promise.all(NODES.map((n) => status(n.api, '/primary')));
    if (codes.filter((c) => c === 200).length === 1) primary = NODES[codes.indexOf(200)];
    else await sleep(200);
  }
  assert.ok(primary, 'one primary within 60 s');
  assert.ok(await query(primary.pg, 'create table demo (v text)'));
  assert.ok(await query(primary.pg, "insert into demo values ('hello')"));
  for (const n of NODES.filter((x) => x !== primary)) {
    let seen = false;
    for (let i = 0; i < 300 && !seen; i++) {
      seen = (await query(n.pg, 'select v from demo'))?.rows[0]?.v === 'hello';
      if (!seen) await sleep(100);
    }
    assert.ok(seen, `${n.name} replicated the row`);
    // /replica wants the member's state "running" (Patroni's rule): PostgreSQL may answer a
    // moment before the agent's start task has finished.
    let code: number | null = null;
    for (let i = 0; i < 100 && code !== 200; i++) {
      code = await status(n.api, '/replica');
      if (code !== 200) await sleep(100);
    }
    assert.equal(code, 200, `${n.name} is a healthy replica`);
  }
  const data = await readFile(join(work, 'data', 'node1', 'pg', 'PG_VERSION'), 'utf8');
  assert.equal(data.trim(), '15', 'relative data paths resolve against the working directory');
});

/** Runs `text` through `port` every 200 ms until `accept` likes the result; the last result, or null after `timeoutMs`. */
async function until(port: number, text: string, accept: (r: pg.QueryResult) => boolean, timeoutMs: number): Promise<pg.QueryResult | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await query(port, text);
    if (r && accept(r)) return r;
    if (Date.now() > deadline) return null;
    await sleep(200);
  }
}

/** Ten connections in a row through HAProxy's read port all land on a replica. */
async function readsLandOnReplicas(): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    if ((await query(5001, 'select pg_is_in_recovery() as r'))?.rows[0]?.r !== true) return false;
  }
  return true;
}

test('config/haproxy.cfg sends writes to the primary and reads to a replica, across a kill -9 failover', { skip: !HAPROXY_INSTALLED && 'haproxy is not installed' }, async () => {
  assert.ok(primary, 'the cluster of the previous test runs');
  const old = primary;
  haproxy = await startProcess({ cmd: 'haproxy', args: ['-db', '-f', join(REPO, 'config/haproxy.cfg')], cwd: REPO, name: 'haproxy' });
  // HAProxy takes a server in at the first good check (rise 1); checks run every second.
  const first = await until(5000, "insert into demo values ('via haproxy') returning inet_server_port() as port", () => true, 30_000);
  assert.ok(first, `a write through 127.0.0.1:5000 within 30 s\n${haproxy.describe()}`);
  assert.equal(first.rows[0].port, old.pg, 'the write reached the primary');
  let reads = false;
  for (let i = 0; i < 150 && !reads; i++) {
    reads = await readsLandOnReplicas();
    if (!reads) await sleep(200);
  }
  assert.ok(reads, 'reads through 127.0.0.1:5001 land on replicas');

  // kill -9 of the primary's agent and its postmaster (with every backend: its process group).
  const i = NODES.indexOf(old);
  agents[i]!.kill('SIGKILL');
  const pid = Number((await readFile(join(work, 'data', old.name, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);
  process.kill(-pid, 'SIGKILL');
  const moved = await until(5000, "insert into demo values ('after failover') returning inet_server_port() as port, pg_is_in_recovery() as r", (r) => r.rows[0]?.r === false, 30_000);
  assert.ok(moved, `a write through 127.0.0.1:5000 succeeds within 30 s of the kill\n${haproxy.describe()}`);
  assert.notEqual(moved.rows[0].port, old.pg, 'the write reached the new primary');
  const survivors = NODES.filter((n) => n !== old);
  assert.ok(survivors.some((n) => n.pg === moved.rows[0].port));
  // The new primary leaves the read pool (its /replica says 503; HAProxy needs two failed checks).
  reads = false;
  for (let t = 0; t < 150 && !reads; t++) {
    reads = await readsLandOnReplicas();
    if (!reads) await sleep(200);
  }
  assert.ok(reads, 'reads through 127.0.0.1:5001 land on the remaining replica');
  const replica = survivors.find((n) => n.pg !== moved.rows[0].port)!;
  assert.equal((await query(5001, 'select inet_server_port() as port'))?.rows[0]?.port, replica.pg);
});
