// `npm run bench:haproxy`: the load balancer's side, on config/node1..3.yml and config/haproxy.cfg
// as they are (fixed ports, reserved for the run; data in a scratch directory):
//   - failover seen by a client: kill -9 of the primary's agent and PostgreSQL together, until a
//     write through HAProxy (127.0.0.1:5000) succeeds (probed every 20 ms), over --runs runs
//     (median, min, max); beside it, when a survivor's /primary first said 200, to tell the HA
//     part from HAProxy's (checks every 1 s, rise 1). The killed member rejoins before the next run;
//   - health-check cost: latency of `OPTIONS /primary` as HAProxy sends it (a new connection,
//     HTTP/1.0) at --rate requests per second for --seconds, on the primary and on a replica.
// Usage: node --import tsx bench/haproxy-bench.ts [--runs 5] [--rate 100] [--seconds 10]
import { chmod, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { request } from 'undici';
import { isAlive, makeTempDir, releasePorts, removeDir, reservePorts, sleep, startProcess } from '../test/support/processes.ts';
import type { ProcessHandle } from '../test/support/processes.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`--${name} needs a non-negative number\n`);
    process.exit(2);
  }
  return v;
}

const RUNS = arg('runs', 5);
const RATE = arg('rate', 100);
const SECONDS = arg('seconds', 10);
const REPO = resolve(import.meta.dirname, '..');
const NODES = [
  { name: 'node1', api: 8008, raft: 2222, pg: 5432 },
  { name: 'node2', api: 8009, raft: 2223, pg: 5433 },
  { name: 'node3', api: 8010, raft: 2224, pg: 5434 },
];
type Node = (typeof NODES)[number];
const PORTS = [...NODES.flatMap((n) => [n.api, n.raft, n.pg]), 5000, 5001, 7000];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** Nearest-rank percentile. */
const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

async function query(port: number, text: string): Promise<pg.QueryResult | null> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: 'conclave-super', database: 'postgres', connectionTimeoutMillis: 1000, query_timeout: 2000 });
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

async function apiStatus(port: number, path: string, method = 'GET'): Promise<{ status: number; body: Record<string, unknown> } | null> {
  try {
    const res = await request(`http://127.0.0.1:${port}${path}`, { method, headersTimeout: 1000, bodyTimeout: 1000 });
    const text = await res.body.text();
    return { status: res.statusCode, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  } catch {
    return null;
  }
}

/** One health check as HAProxy's `option httpchk OPTIONS /primary` makes it: a new connection, HTTP/1.0. */
function httpchk(port: number, path: string): Promise<{ ms: number; status: number }> {
  return new Promise((resolveCheck, rejectCheck) => {
    const t0 = performance.now();
    const sock = connect(port, '127.0.0.1');
    let head = '';
    sock.setTimeout(5000, () => sock.destroy(new Error('no answer within 5 s')));
    sock.on('connect', () => sock.write(`OPTIONS ${path} HTTP/1.0\r\n\r\n`));
    sock.on('data', (chunk) => {
      head += chunk.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (!m) return;
      resolveCheck({ ms: performance.now() - t0, status: Number(m[1]) });
      sock.destroy();
    });
    sock.on('error', rejectCheck);
    sock.on('close', () => rejectCheck(new Error('closed before a status line')));
  });
}

/** --rate checks per second for --seconds, sent on schedule whether or not earlier ones answered. */
async function checkLatency(port: number): Promise<{ n: number; errors: number; p50: number; p99: number; max: number; codes: Record<number, number> }> {
  const total = Math.round(RATE * SECONDS);
  const start = performance.now();
  const pending: Promise<{ ms: number; status: number } | null>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / RATE - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(httpchk(port, '/primary').catch(() => null));
  }
  const results = await Promise.all(pending);
  const ok = results.filter((r): r is { ms: number; status: number } => r !== null);
  const ms = ok.map((r) => r.ms);
  const codes: Record<number, number> = {};
  for (const r of ok) codes[r.status] = (codes[r.status] ?? 0) + 1;
  return { n: total, errors: total - ok.length, p50: percentile(ms, 50), p99: percentile(ms, 99), max: Math.max(...ms), codes };
}

const agents = new Map<string, ProcessHandle>();
let haproxy: ProcessHandle | null = null;
let work = '';

async function startAgent(n: Node): Promise<void> {
  agents.set(n.name, await startProcess({
    cmd: process.execPath,
    args: [join(REPO, 'bin/conclave.js'), join(REPO, 'config', `${n.name}.yml`)],
    cwd: work,
    env: { CONCLAVE_LOG_TYPE: 'json', CONCLAVE_LOG_LEVEL: 'info' },
    name: n.name,
    readyLine: (line) => line.includes('"agent started"'),
  }));
}

async function postmasterPid(n: Node): Promise<number | null> {
  const pid = Number((await readFile(join(work, 'data', n.name, 'pg', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
  return pid > 0 && isAlive(pid) ? pid : null;
}

/** The primary, once it is the only one, every other node streams, and HAProxy sends writes to it. */
async function healthy(): Promise<Node | null> {
  const codes = await Promise.all(NODES.map(async (n) => (await apiStatus(n.api, '/primary', 'OPTIONS'))?.status));
  if (codes.filter((c) => c === 200).length !== 1) return null;
  const primary = NODES[codes.indexOf(200)];
  const replicas = await Promise.all(NODES.filter((n) => n !== primary).map((n) => apiStatus(n.api, '/patroni')));
  if (!replicas.every((r) => r?.body.role === 'replica' && r.body.replication_state === 'streaming')) return null;
  const via = await query(5000, 'select inet_server_port() as port');
  return via?.rows[0]?.port === primary.pg ? primary : null;
}

async function waitFor<T>(what: string, fn: () => Promise<T | null>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

const results: { failoverMs: number[]; newPrimaryMs: number[]; checks: Record<string, Awaited<ReturnType<typeof checkLatency>>> } = { failoverMs: [], newPrimaryMs: [], checks: {} };
try {
  await reservePorts(PORTS);
  work = await makeTempDir('conclave-haproxy-bench-');
  await chmod(work, 0o755); // PostgreSQL runs as `postgres` below it
  for (const n of NODES) await startAgent(n);
  haproxy = await startProcess({ cmd: 'haproxy', args: ['-db', '-f', join(REPO, 'config/haproxy.cfg')], cwd: REPO, name: 'haproxy' });
  let primary = await waitFor('a healthy cluster behind HAProxy', healthy, 120_000);
  process.stdout.write(`cluster healthy, primary ${primary.name}, HAProxy routing writes to it\n`);
  await query(5000, 'create table bench (id serial primary key, at timestamptz default now())');

  for (let run = 1; run <= RUNS; run++) {
    for (let i = 0; i < 50; i++) await query(5000, 'insert into bench default values');
    await sleep(1000);
    const survivors = NODES.filter((n) => n !== primary);
    const pid = await postmasterPid(primary);
    const killedAt = performance.now();
    agents.get(primary.name)!.kill('SIGKILL');
    if (pid !== null) process.kill(-pid, 'SIGKILL');
    // Beside the client's view: when a survivor's REST API first says it is the primary.
    let newPrimaryAt: number | null = null;
    let done = false;
    const watcher = (async () => {
      while (!done && newPrimaryAt === null) {
        const codes = await Promise.all(survivors.map(async (n) => (await apiStatus(n.api, '/primary', 'OPTIONS'))?.status));
        if (codes.includes(200)) newPrimaryAt = performance.now();
        else await sleep(20);
      }
    })();
    let landed: number | null = null;
    while (landed === null) {
      const r = await query(5000, 'insert into bench default values returning inet_server_port() as port');
      if (r) landed = r.rows[0].port as number;
      else if (performance.now() - killedAt > 60_000) throw new Error('no write through HAProxy within 60 s');
      else await sleep(20);
    }
    const ms = performance.now() - killedAt;
    done = true;
    await watcher;
    results.failoverMs.push(ms);
    if (newPrimaryAt !== null) results.newPrimaryMs.push((newPrimaryAt as number) - killedAt);
    const winner = NODES.find((n) => n.pg === landed)?.name ?? `port ${landed}`;
    const api = newPrimaryAt === null ? '?' : `${(((newPrimaryAt as number) - killedAt) / 1000).toFixed(2)} s`;
    process.stdout.write(`run ${run}: ${primary.name} killed; ${winner}'s /primary said 200 after ${api}; a write through HAProxy succeeded after ${(ms / 1000).toFixed(2)} s\n`);
    await startAgent(primary);
    primary = await waitFor('the killed member to rejoin', healthy, 120_000);
  }

  const replica = NODES.find((n) => n !== primary)!;
  for (const [label, n] of [[`primary ${primary.name}`, primary], [`replica ${replica.name}`, replica]] as const) {
    const r = await checkLatency(n.api);
    results.checks[label] = r;
    process.stdout.write(`OPTIONS /primary on the ${label} at ${RATE}/s for ${SECONDS} s: p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, max ${r.max.toFixed(2)} ms; ${r.n} sent, ${r.errors} errors, codes ${JSON.stringify(r.codes)}\n`);
  }
  if (results.failoverMs.length > 0) {
    const f = results.failoverMs;
    process.stdout.write(`failover through HAProxy (kill -9 agent + PostgreSQL → write via 127.0.0.1:5000): median ${(median(f) / 1000).toFixed(2)} s, min ${(Math.min(...f) / 1000).toFixed(2)} s, max ${(Math.max(...f) / 1000).toFixed(2)} s over ${f.length} runs\n`);
    if (results.newPrimaryMs.length > 0) process.stdout.write(`  of which until the new primary's /primary said 200: median ${(median(results.newPrimaryMs) / 1000).toFixed(2)} s\n`);
  }
  process.stdout.write(`${JSON.stringify({ bench: 'haproxy', ...results, failoverMedianMs: results.failoverMs.length ? median(results.failoverMs) : null })}\n`);
} finally {
  await haproxy?.stop(5000).catch(() => undefined);
  for (const a of agents.values()) await a.stop(15_000).catch(() => undefined);
  // Each agent stops its PostgreSQL; a postmaster left behind (its agent killed) goes by PID.
  for (const n of NODES) {
    const pid = work ? await postmasterPid(n) : null;
    if (pid !== null) process.kill(-pid, 'SIGKILL');
  }
  if (work) await removeDir(work);
  releasePorts(PORTS);
}
