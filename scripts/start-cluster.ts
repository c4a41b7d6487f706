// `npm start`: runs the three-node demo cluster of config/node1..3.yml on this machine (three
// agents, three PostgreSQL 15 servers, data under data/) and, when the `haproxy` binary is
// installed, HAProxy with config/haproxy.cfg in front of it. Prints each agent's decisions as they
// change, waits for a healthy cluster (one primary, every replica streaming), says where to
// connect and shows the members; Ctrl-C stops everything (each agent stops its PostgreSQL).
import { spawn, spawnSync } from 'node:child_process';
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
const PSQL = (port: number): string => `psql "postgres://postgres:conclave-super@127.0.0.1:${port}/postgres"`;

// PostgreSQL runs as the unprivileged `postgres` user when we are root: it must be able to reach data/.
mkdirSync(join(root, 'data'), { recursive: true });
if (process.getuid?.() === 0) chmodSync(join(root, 'data'), 0o755);

/** Every child still running: the agents, and HAProxy if started. */
const children = new Map<string, ChildProcess>();
let stopping = false;
let exitCode = 0;

function track(name: string, child: ChildProcess, show: (chunk: Buffer) => void): void {
  child.stdout!.on('data', show);
  child.stderr!.on('data', show);
  child.on('error', (err) => process.stderr.write(`start-cluster: ${name}: ${err.message}\n`));
  child.on('exit', (code, signal) => {
    children.delete(name);
    if (!stopping) {
      process.stderr.write(`start-cluster: ${name} exited (${signal ?? code}); stopping the others\n`);
      void stop(1);
    } else if (children.size === 0) process.exit(exitCode);
  });
  children.set(name, child);
}

for (const n of NODES) {
  // JSON logs, whatever the file says: this script picks the decisions out of them.
  const child = spawn(process.execPath, [join(root, 'bin/conclave.js'), n.config], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONCLAVE_LOG_TYPE: 'json' } });
  track(n.name, child, (chunk) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      try {
        const rec = JSON.parse(line) as { level: number; msg: string; layer?: string };
        if (rec.level >= 40 || (rec.level >= 30 && rec.layer === 'ha')) process.stdout.write(`[${n.name}] ${rec.msg}\n`);
      } catch {
        process.stdout.write(`[${n.name}] ${line}\n`);
      }
    }
  });
}

// HAProxy in the foreground (-db): its own child, stopped by PID with the agents. It prints the
// servers it takes in and out, which shows a failover from the client's side.
const withHaproxy = spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status === 0;
if (withHaproxy) {
  const child = spawn('haproxy', ['-db', '-f', join(root, 'config/haproxy.cfg')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  track('haproxy', child, (chunk) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) process.stdout.write(`[haproxy] ${line}\n`);
  });
}

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  exitCode = code;
  process.stdout.write(`stopping the agents (each stops its PostgreSQL)${withHaproxy ? ' and HAProxy' : ''}...\n`);
  for (const child of children.values()) child.kill('SIGTERM');
  setTimeout(() => {
    for (const child of children.values()) child.kill('SIGKILL');
    process.exit(code);
  }, 30_000).unref();
  if (children.size === 0) process.exit(code);
}

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

async function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: Record<string, unknown> } | null> {
  try {
    const res = await request(`http://127.0.0.1:${port}${path}`, { method, headersTimeout: 1000, bodyTimeout: 1000 });
    const text = await res.body.text();
    return { status: res.statusCode, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  } catch {
    return null;
  }
}

/** Each node's GET /patroni once there is exactly one primary and every other node streams from it. */
async function healthy(): Promise<Record<string, unknown>[] | null> {
  const primaries = await Promise.all(NODES.map(async (n) => (await get(n.api, '/primary', 'OPTIONS'))?.status === 200));
  if (primaries.filter(Boolean).length !== 1) return null;
  const bodies = await Promise.all(NODES.map(async (n) => (await get(n.api, '/patroni'))?.body ?? null));
  const ok = bodies.every((b, i) => b !== null && (primaries[i] || (b.role === 'replica' && b.replication_state === 'streaming')));
  return ok ? (bodies as Record<string, unknown>[]) : null;
}

/** Patroni's `list` table (3.x columns), from each node's GET /patroni; `conclavectl list` is the full one. */
function memberTable(bodies: Record<string, unknown>[]): string {
  const xlog = (b: Record<string, unknown>) => (b.xlog ?? {}) as Record<string, number | null>;
  const leader = bodies.find((b) => b.role === 'primary');
  const leaderAt = leader ? xlog(leader).location : null;
  const rows = bodies.map((b, i) => {
    const isLeader = b === leader;
    const mine = Math.max(xlog(b).received_location ?? 0, xlog(b).replayed_location ?? 0);
    const lag = isLeader || typeof leaderAt !== 'number' ? '' : String(Math.round(Math.max(0, leaderAt - mine) / 2 ** 20));
    const role = isLeader ? 'Leader' : b.sync_standby === true ? 'Sync Standby' : 'Replica';
    return [NODES[i].name, `127.0.0.1:${NODES[i].pg}`, role, String((isLeader ? b.state : b.replication_state) ?? b.state), String(b.timeline ?? ''), lag];
  });
  const all = [['Member', 'Host', 'Role', 'State', 'TL', 'Lag in MB'], ...rows];
  const widths = all[0].map((_, col) => Math.max(...all.map((r) => r[col].length)));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const fmt = (r: string[]) => `| ${r.map((c, col) => c.padEnd(widths[col])).join(' | ')} |`;
  return [line, fmt(all[0]), line, ...rows.map(fmt), line].join('\n');
}

const deadline = Date.now() + 120_000;
for (;;) {
  const bodies = await healthy();
  if (bodies) {
    const p = NODES[bodies.findIndex((b) => b.role === 'primary')];
    const via = withHaproxy
      ? `  writes (HAProxy → primary):  ${PSQL(5000)}\n  reads (HAProxy → a replica): ${PSQL(5001)}\n  HAProxy stats: http://127.0.0.1:7000/\n`
      : `  writes (primary ${p.name}): ${PSQL(p.pg)}\n  (install haproxy for fixed ports that follow a failover: config/haproxy.cfg)\n`;
    process.stdout.write(
      `\ncluster healthy: primary ${p.name}, every replica streaming.\n${via}` +
        `  REST: ${NODES.map((n) => `http://127.0.0.1:${n.api}/patroni (${n.name})`).join(', ')}\n` +
        '  node bin/conclavectl.js raft status\n' +
        `${memberTable(bodies)}\n` +
        'Ctrl-C stops the cluster; its data stays in data/ (delete it to start afresh).\n\n',
    );
    break;
  }
  if (stopping) break;
  if (Date.now() > deadline) {
    process.stderr.write('start-cluster: the cluster is not healthy after 120 s (one primary, every replica streaming)\n');
    await stop(1);
    break;
  }
  await new Promise((r) => setTimeout(r, 500));
}
