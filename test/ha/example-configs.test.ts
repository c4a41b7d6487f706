// config/node1..3.yml start a working three-node cluster as they are: the files are used
// unchanged, from a scratch working directory (their relative data paths land there, not in the
// repository's data/), on the fixed ports they name, reserved for the duration of the test.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
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
const PORTS = NODES.flatMap((n) => [n.api, n.raft, n.pg]);
const agents: ProcessHandle[] = [];
let work = '';

after(async () => {
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

async function query(port: number, text: string): Promise<pg.QueryResult | null> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: 'conclave-super', database: 'postgres', connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.query(text);
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
  let primary: (typeof NODES)[number] | undefined;
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
    assert.equal(await status(n.api, '/replica'), 200, `${n.name} is a healthy replica`);
  }
  const data = await readFile(join(work, 'data', 'node1', 'pg', 'PG_VERSION'), 'utf8');
  assert.equal(data.trim(), '15', 'relative data paths resolve against the working directory');
});
