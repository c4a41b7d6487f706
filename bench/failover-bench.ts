// `npm run bench:failover`: the numbers step 2 asks for, on real agents and PostgreSQL 15.
//   - bootstrap: from starting three agents to a primary and two streaming replicas;
//   - unplanned failover: kill -9 of the primary's agent and PostgreSQL together, until another
//     member accepts a write (probed every 20 ms), over --runs runs (median, min, max); the killed
//     member is restarted and rejoins before the next run;
//   - idle cost: each agent's RSS and CPU seconds per minute over --idle-seconds of a quiet cluster.
// Usage: node --import tsx bench/failover-bench.ts [--runs 5] [--idle-seconds 60]
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { AgentCluster } from '../test/support/agents.ts';
import { sleep } from '../test/support/processes.ts';

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
const IDLE_SECONDS = arg('idle-seconds', 60);
const NAMES = ['n1', 'n2', 'n3'];
const CLK_TCK = 100; // Linux USER_HZ

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function healthy(c: AgentCluster): Promise<string | null> {
  const primaries = await c.primaries();
  if (primaries.length !== 1) return null;
  const replicas = await Promise.all(NAMES.filter((n) => n !== primaries[0]).map((n) => c.api(n)));
  return replicas.every((r) => r?.body.role === 'replica' && r.body.replication_state === 'streaming') ? primaries[0] : null;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const c = await AgentCluster.create(NAMES.map((name) => ({ name })), { logLevel: 'info' });
const results: { bootstrapMs: number; failoverMs: number[]; idle: { name: string; rssMiB: number; cpuSecondsPerMinute: number }[] } = { bootstrapMs: 0, failoverMs: [], idle: [] };
try {
  const t0 = performance.now();
  await c.startAll();
  let primary = await c.waitFor('a healthy cluster', () => healthy(c), 120_000, 50);
  results.bootstrapMs = performance.now() - t0;
  process.stdout.write(`bootstrap of three nodes: ${(results.bootstrapMs / 1000).toFixed(1)} s (primary ${primary})\n`);
  await c.trySql(primary, 'create table bench (id serial primary key, at timestamptz default now())');

  for (let run = 1; run <= RUNS; run++) {
    for (let i = 0; i < 50; i++) await c.trySql(primary, 'insert into bench default values');
    await sleep(1000);
    const survivors = NAMES.filter((n) => n !== primary);
    const killedAt = performance.now();
    c.killAgent(primary);
    await c.killPostgres(primary);
    let winner: string | null = null;
    while (winner === null) {
      for (const n of survivors) {
        if (await c.trySql(n, 'insert into bench default values')) {
          winner = n;
          break;
        }
      }
      if (performance.now() - killedAt > 60_000) throw new Error('no new primary within 60 s');
      if (winner === null) await sleep(20);
    }
    const ms = performance.now() - killedAt;
    results.failoverMs.push(ms);
    process.stdout.write(`run ${run}: ${primary} killed, ${winner} accepted a write after ${ms.toFixed(0)} ms\n`);
    await c.start(primary);
    primary = await c.waitFor('the killed member to rejoin', () => healthy(c), 120_000, 100);
  }

  if (IDLE_SECONDS > 0) {
    await sleep(2000);
    const pids = NAMES.map((n) => c.node(n).handle!.pid);
    const before = pids.map(cpuSeconds);
    await sleep(IDLE_SECONDS * 1000);
    results.idle = NAMES.map((name, i) => ({ name, rssMiB: rssMiB(pids[i]), cpuSecondsPerMinute: ((cpuSeconds(pids[i]) - before[i]) / IDLE_SECONDS) * 60 }));
    for (const r of results.idle) process.stdout.write(`idle agent ${r.name}: RSS ${r.rssMiB.toFixed(0)} MiB, CPU ${r.cpuSecondsPerMinute.toFixed(2)} s per minute\n`);
    // The Raft log stays bounded although leases are renewed every loop: snapshots compact it.
    for (const n of NAMES) {
      const res = await request(`http://127.0.0.1:${c.node(n).raftPort}/v1/status`);
      const st = (await res.body.json()) as { firstIndex: number; lastIndex: number };
      process.stdout.write(`raft log on ${n}: entries ${st.firstIndex}..${st.lastIndex} (${st.lastIndex - st.firstIndex + 1} kept)\n`);
    }
  }
  if (results.failoverMs.length > 0) {
    const f = results.failoverMs;
    process.stdout.write(`failover (kill -9 agent + PostgreSQL → write accepted): median ${(median(f) / 1000).toFixed(2)} s, min ${(Math.min(...f) / 1000).toFixed(2)} s, max ${(Math.max(...f) / 1000).toFixed(2)} s over ${f.length} runs\n`);
  }
  process.stdout.write(`${JSON.stringify({ bench: 'failover', ...results, failoverMedianMs: results.failoverMs.length ? median(results.failoverMs) : null })}\n`);
} finally {
  await c.stopAll();
}
