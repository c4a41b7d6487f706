// Write throughput and latency of a three-node Conclave Raft cluster: real node processes on
// loopback, LevelDB on disk, closed-loop clients putting small values straight to the leader.
//
//   npm run bench:raft [-- --seconds 10 --levels 1,16,128 --warmup 1 --start-warmup 10]
//                      [-- --tick-ms N --election-ticks N --heartbeat-ticks N]   (node defaults if absent)
//
// Prints a table, then exactly one JSON line on stdout: {"bench":"raft","results":[...]}.
// Progress goes to stderr. The comparison figures are etcd 3.4 measured on the same machine the
// same way (etcd's own `benchmark put`), as a yardstick, not a target.
//
// The figures are steady state. The nodes run JavaScript that V8 compiles as it gets hot: right
// after a start a write at c=1 took about 3.5 ms, falling to about 1.5 ms over the first ten
// seconds (measured here, 3 s levels back to back). So before the first level the cluster takes
// `--start-warmup` seconds of writes at c=16, unrecorded, and each level then warms up for
// `--warmup` seconds at its own concurrency. etcd, compiled ahead of time, has no such phase.
import { Pool } from 'undici';
import { startRaftCluster } from '../test/support/raft-cluster.ts';
import type { RaftCluster } from '../test/support/raft-cluster.ts';
import { stopAll } from '../test/support/processes.ts';

const ETCD_34: Record<number, { opsPerSec: number; p50Ms: number }> = {
  1: { opsPerSec: 436, p50Ms: 1.96 },
  128: { opsPerSec: 3445, p50Ms: 34 },
};

/** Concurrency of the warm-up after the start: enough to exercise batching as well as single writes. */
const START_WARMUP_CONCURRENCY = 16;

interface Args {
  seconds: number;
  warmupSeconds: number;
  startWarmupSeconds: number;
  levels: number[];
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
}

interface LevelResult {
  concurrency: number;
  ops: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seconds: 10, warmupSeconds: 1, startWarmupSeconds: 10, levels: [1, 16, 128] };
  const fail = (msg: string): never => {
    console.error(`raft-bench: ${msg}\nusage: raft-bench [--seconds N] [--warmup N] [--start-warmup N] [--levels 1,16,128] [--tick-ms N --election-ticks N --heartbeat-ticks N]`);
    process.exit(2);
  };
  const positive = (flag: string, value: string | undefined): number => {
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n) || n < 0) return fail(`${flag} needs a non-negative number, got ${value ?? 'nothing'}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--seconds') args.seconds = positive(flag, argv[++i]);
    else if (flag === '--warmup') args.warmupSeconds = positive(flag, argv[++i]);
    else if (flag === '--start-warmup') args.startWarmupSeconds = positive(flag, argv[++i]);
    else if (flag === '--levels') {
      args.levels = (argv[++i] ?? '').split(',').map((s) => positive(flag, s));
      if (args.levels.some((l) => !Number.isSafeInteger(l) || l < 1)) fail('--levels needs positive integers');
    } else if (flag === '--tick-ms') args.tickMs = positive(flag, argv[++i]);
    else if (flag === '--election-ticks') args.electionTicks = positive(flag, argv[++i]);
    else if (flag === '--heartbeat-ticks') args.heartbeatTicks = positive(flag, argv[++i]);
    else if (flag === '--help' || flag === '-h') fail('help');
    else fail(`unknown argument ${flag}`);
  }
  if (args.seconds <= 0) fail('--seconds must be positive');
  return args;
}

/** The leader's connection pool; moves when a reply names another leader. */
class LeaderTarget {
  pool: Pool;
  url: string;

  constructor(
    url: string,
    private readonly connections: number,
  ) {
    this.url = url;
    this.pool = this.open(url);
  }

  private open(url: string): Pool {
    return new Pool(url, { connections: this.connections, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 10_000, bodyTimeout: 10_000 });
  }

  moveTo(url: string): void {
    if (url === this.url) return;
    const old = this.pool;
    this.url = url;
    this.pool = this.open(url);
    void old.close().catch(() => undefined);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** Per-client key counters, so keys stay unique across warm-up and levels: bench/<c>/<i>. */
const nextIndex: number[] = [];
const VALUE = JSON.stringify({ value: '0123456789abcdef' }); // 16-byte value

async function runLevel(target: LeaderTarget, concurrency: number, seconds: number, record: boolean): Promise<LevelResult> {
  const latencies: number[] = [];
  let errors = 0;
  const lastErrors = new Map<string, number>();
  const end = performance.now() + seconds * 1000;
  const client = async (c: number): Promise<void> => {
    while (performance.now() < end) {
      const i = (nextIndex[c] = (nextIndex[c] ?? 0) + 1);
      const path = `/v1/kv/${encodeURIComponent(`bench/${c}/${i}`)}`;
      const start = performance.now();
      let problem: string | null = null;
      try {
        const res = await target.pool.request({ method: 'PUT', path, body: VALUE, headers: { 'content-type': 'application/json' } });
        const text = await res.body.text();
        if (res.statusCode === 200) {
          latencies.push(performance.now() - start);
          continue;
        }
        const body = safeJson(text);
        problem = `${res.statusCode} ${String(body.error ?? text.slice(0, 80))}`;
        if (body.error === 'ERR_NOT_LEADER' && typeof body.leaderUrl === 'string') target.moveTo(body.leaderUrl);
      } catch (err) {
        problem = (err as Error & { code?: string }).code ?? (err as Error).message;
      }
      errors++;
      lastErrors.set(problem, (lastErrors.get(problem) ?? 0) + 1);
      await new Promise((resolve) => setTimeout(resolve, 10)); // no hot loop while the cluster recovers
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
  const elapsed = (performance.now() - t0) / 1000;
  if (record && errors > 0) console.error(`  c=${concurrency}: errors ${JSON.stringify(Object.fromEntries(lastErrors))}`);
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    ops: latencies.length,
    opsPerSec: round(latencies.length / elapsed, 1),
    p50Ms: round(percentile(latencies, 0.5), 3),
    p99Ms: round(percentile(latencies, 0.99), 3),
    errors,
  };
}

/** Nearest-rank percentile of sorted values; NaN when there are none. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

const round = (n: number, digits: number): number => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);

function safeJson(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return {};
  }
}

function printTable(results: LevelResult[], args: Args): void {
  const rows = [['concurrency', 'ops', 'ops/s', 'p50 ms', 'p99 ms', 'errors']];
  for (const r of results) rows.push([r.concurrency, r.ops, r.opsPerSec.toFixed(1), r.p50Ms.toFixed(2), r.p99Ms.toFixed(2), r.errors].map(String));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row: string[]): string => row.map((cell, i) => cell.padStart(widths[i])).join('  ');
  console.log(`Conclave raft put, 3 nodes on loopback, 16-byte values, ${args.seconds} s per level after ${args.startWarmupSeconds} s of warm-up at c=${START_WARMUP_CONCURRENCY} and ${args.warmupSeconds} s at each level`);
  console.log(line(rows[0]));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows.slice(1)) console.log(line(row));
  console.log('etcd 3.4 on this machine: c=1 436 ops/s, p50 1.96 ms; c=128 3,445 ops/s, p50 34 ms');
  for (const r of results) {
    const etcd = ETCD_34[r.concurrency];
    if (!etcd) continue;
    const speed = r.opsPerSec / etcd.opsPerSec;
    console.log(`  c=${r.concurrency}: ${speed.toFixed(2)}x etcd's throughput, p50 ${r.p50Ms.toFixed(2)} ms vs ${etcd.p50Ms} ms`);
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let cluster: RaftCluster | undefined;
  let target: LeaderTarget | undefined;
  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (stopping ??= (async () => {
      await target?.close().catch(() => undefined);
      await cluster?.stop({ graceMs: 3000 }).catch((err: Error) => console.error(`raft-bench: stopping the cluster: ${err.message}`));
      await stopAll(1000);
    })());
  // `on`, not `once`: while a handler of ours is registered, the harness's own signal handler leaves
  // the shutdown to us (processes.ts, safety net). A second Ctrl-C exits at once; the harness's
  // exit hook still SIGKILLs the nodes then, only the temp dir stays behind.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(130);
      console.error(`raft-bench: ${signal}, stopping the cluster (again to exit at once)`);
      void shutdown().finally(() => process.exit(130));
    });
  }

  try {
    console.error('raft-bench: starting 3 nodes');
    cluster = await startRaftCluster({ nodes: 3, tickMs: args.tickMs, electionTicks: args.electionTicks, heartbeatTicks: args.heartbeatTicks });
    const leader = await cluster.waitForLeader(30_000);
    console.error(`raft-bench: ${leader} leads (${cluster.node(leader).url}); data in ${cluster.dataRoot}`);
    target = new LeaderTarget(cluster.node(leader).url, Math.max(...args.levels));
    if (args.startWarmupSeconds > 0) {
      console.error(`raft-bench: warming up, ${args.startWarmupSeconds} s at c=${START_WARMUP_CONCURRENCY}`);
      await runLevel(target, START_WARMUP_CONCURRENCY, args.startWarmupSeconds, false);
    }
    const results: LevelResult[] = [];
    for (const concurrency of args.levels) {
      if (args.warmupSeconds > 0) await runLevel(target, concurrency, args.warmupSeconds, false);
      const r = await runLevel(target, concurrency, args.seconds, true);
      console.error(`raft-bench: c=${concurrency}: ${r.ops} ops, ${r.opsPerSec} ops/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.errors} errors`);
      results.push(r);
    }
    printTable(results, args);
    console.log(JSON.stringify({ bench: 'raft', results: results.map(({ ops: _ops, ...r }) => r) }));
  } finally {
    await shutdown();
  }
}

main().catch((err: Error) => {
  console.error(`raft-bench: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
