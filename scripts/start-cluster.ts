// `npm start`: runs the three-node demo cluster of config/node1..3.yml on this machine (three
// agents, three PostgreSQL 15 servers, data under data/), prints each agent's decisions as they
// change, says where to connect once there is a primary, and stops everything on Ctrl-C (each
// agent stops its PostgreSQL).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NODES = [
  { name: 'node1', config: 'config/node1.yml', api: 8008, pg: 5432 },
  { name: 'node2', config: 'config/node2.yml', api: 8009, pg: 5433 },
  { name: 'node3', config: 'config/node3.yml', api: 8010, pg: 5434 },
];

// PostgreSQL runs as the unprivileged `postgres` user when we are root: it must be able to reach data/.
mkdirSync(join(root, 'data'), { recursive: true });
if (process.getuid?.() === 0) chmodSync(join(root, 'data'), 0o755);

const children = new Map<string, ChildProcess>();
let stopping = false;

for (const n of NODES) {
  // JSON logs, whatever the file says: this script picks the decisions out of them.
  const child = spawn(process.execPath, [join(root, 'bin/conclave.js'), n.config], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONCLAVE_LOG_TYPE: 'json' } });
  const show = (chunk: Buffer): void => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      try {
        const rec = JSON.parse(line) as { level: number; msg: string; layer?: string };
        if (rec.level >= 40 || (rec.level >= 30 && rec.layer === 'ha')) process.stdout.write(`[${n.name}] ${rec.msg}\n`);
      } catch {
        process.stdout.write(`[${n.name}] ${line}\n`);
      }
    }
  };
  child.stdout!.on('data', show);
  child.stderr!.on('data', show);
  child.on('exit', (code, signal) => {
    children.delete(n.name);
    if (!stopping) {
      process.stderr.write(`start-cluster: ${n.name} exited (${signal ?? code}); stopping the others\n`);
      void stop(1);
    } else if (children.size === 0) process.exit(0);
  });
  children.set(n.name, child);
}

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stdout.write('stopping the agents (each stops its PostgreSQL)...\n');
  for (const child of children.values()) child.kill('SIGTERM');
  setTimeout(() => {
    for (const child of children.values()) child.kill('SIGKILL');
    process.exit(code);
  }, 30_000).unref();
  if (children.size === 0) process.exit(code);
}

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

async function primary(): Promise<(typeof NODES)[number] | null> {
  for (const n of NODES) {
    try {
      const res = await request(`http://127.0.0.1:${n.api}/primary`, { headersTimeout: 1000, bodyTimeout: 1000 });
      await res.body.dump();
      if (res.statusCode === 200) return n;
    } catch {
      // not up yet
    }
  }
  return null;
}

const deadline = Date.now() + 120_000;
for (;;) {
  const p = await primary();
  if (p) {
    process.stdout.write(
      `\nprimary: ${p.name}. Try:\n` +
        `  psql "postgres://postgres:conclave-super@127.0.0.1:${p.pg}/postgres"\n` +
        `  curl -s http://127.0.0.1:${p.api}/patroni\n` +
        `  node bin/conclavectl.js raft status\n` +
        'Ctrl-C stops the cluster; its data stays in data/ (delete it to start afresh).\n\n',
    );
    break;
  }
  if (stopping) break;
  if (Date.now() > deadline) {
    process.stderr.write('start-cluster: no primary after 120 s\n');
    await stop(1);
    break;
  }
  await new Promise((r) => setTimeout(r, 500));
}
