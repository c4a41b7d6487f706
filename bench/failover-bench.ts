// `npm run bench:failover`: how fast a failover is and what it costs, on real agents and
// PostgreSQL 15 (issue "Step 6 — Failover speed"; the figures of docs/failover.md).
//
// For each mode (asynchronous, synchronous strict) a three-member cluster (with HAProxy in front,
// config/haproxy.cfg, when installed), and for each scenario --runs runs of: writers on every
// member and through HAProxy, each committing one row every 20 ms and recording every answer;
// the fault; the wait for the new primary's first acknowledged write; recovery until the cluster
// is healthy again. Per run: time from the fault to the new primary's first acknowledged write
// (directly and through HAProxy), acknowledged writes lost, whether two members ever accepted
// writes at once. The partition scenario runs a cluster of its own, each member in a network
// namespace (test/support/netlab.ts: needs root and `ip`); without them it is skipped. Then, per
// mode, --idle-seconds of a quiet cluster: agent RSS and CPU, Raft writes per second, size of the
// Raft data directories every 10 s. The pieces are in bench/failover/.
//
// Prints a line per run, a table (min / median / max) and one JSON line starting {"bench":"failover".
// Exit status: 0; 1 if a run failed to measure, a cluster broke, two members accepted writes at
// once, or an acknowledged write was lost in synchronous strict mode; 2 for bad arguments.
// Usage: npm run bench:failover -- [--runs 5] [--scenarios a,b] [--modes async,sync-strict] [--no-haproxy] [--idle-seconds 60]
import { spawnSync } from 'node:child_process';
import { cleanupAll, installSignalHandlers, wasInterrupted } from './failover/cleanup.ts';
import { haproxyMissing } from './failover/haproxy.ts';
import { measureIdle } from './failover/idle.ts';
import { USAGE, UsageError, parseOptions } from './failover/options.ts';
import type { Mode, Options } from './failover/options.ts';
import { SessionBroken, runOnce } from './failover/runner.ts';
import type { RunResult } from './failover/runner.ts';
import { jsonLine, summarize, table, violations } from './failover/report.ts';
import type { ModeReport } from './failover/report.ts';
import { SCENARIOS } from './failover/scenarios.ts';
import type { ScenarioName } from './failover/scenarios.ts';
import { NAMES, openSession } from './failover/session.ts';

const log = (line: string): void => void process.stdout.write(`${line}\n`);

let opts: Options | null;
try {
  opts = parseOptions(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`bench:failover: ${err.message} (--help for usage)\n`);
  process.exit(2);
}
if (opts === null) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const o: Options = opts;
installSignalHandlers();

/** Why network namespaces cannot be used here, or null. */
function labMissing(): string | null {
  if (process.getuid?.() !== 0) return 'needs root for network namespaces';
  const r = spawnSync('ip', ['netns', 'list'], { stdio: 'ignore', timeout: 10_000 });
  return r.error || r.status !== 0 ? '`ip netns` is not available' : null;
}

let useHaproxy = o.haproxy;
const noHaproxy = useHaproxy ? haproxyMissing() : null;
if (noHaproxy) {
  log(`HAProxy: not measured (${noHaproxy})`);
  useHaproxy = false;
}
const noLab = o.scenarios.some((s) => SCENARIOS[s].needsLab) ? labMissing() : null;
if (noLab) log(`partition: skipped (${noLab})`);

let failed = false;

/** One cluster: its scenarios' runs, then (for the plain cluster) the idle measurement. */
async function session(mode: Mode, inLab: boolean, scenarios: ScenarioName[], idleSeconds: number, report: ModeReport): Promise<void> {
  let s;
  try {
    s = await openSession({ mode, inLab, haproxy: useHaproxy }, log);
  } catch (err) {
    if (wasInterrupted()) throw err;
    failed = true;
    for (const sc of scenarios) report.skipped[sc] = `the cluster did not start: ${(err as Error).message.split('\n')[0]}`;
    if (idleSeconds > 0) report.idleError = `the cluster did not start: ${(err as Error).message.split('\n')[0]}`;
    log(`[${mode}] cluster${inLab ? ' in a network lab' : ''} did not start: ${(err as Error).message}`);
    return;
  }
  try {
    report.bootstrapMs[inLab ? 'lab' : 'plain'] = s.bootstrapMs;
    let broken: string | null = null;
    for (const sc of scenarios) {
      if (broken) {
        report.skipped[sc] = broken;
        continue;
      }
      const runs: RunResult[] = [];
      for (let run = 1; run <= o.runs && !broken; run++) {
        try {
          const r = await runOnce(s, sc, run, log);
          runs.push(r);
          if (r.error) failed = true;
        } catch (err) {
          if (!(err instanceof SessionBroken) || wasInterrupted()) throw err;
          failed = true;
          broken = `the cluster broke in ${sc} run ${run}: ${err.message.split('\n')[0]}`;
          log(`[${mode}] ${broken}\n${err.message}`);
        }
      }
      if (runs.length > 0) report.scenarios[sc] = { summary: summarize(runs), runs };
      if (broken && runs.length < o.runs) report.skipped[sc] = `${o.runs - runs.length} run(s) not done: ${broken}`;
    }
    if (idleSeconds > 0) {
      if (broken) {
        report.idleError = broken;
      } else {
        log(`[${mode}] idle for ${idleSeconds} s`);
        await new Promise((r) => setTimeout(r, 2000)); // the last run's recovery settles
        report.idle = await measureIdle(s.c, NAMES, idleSeconds, 10, log).catch((err: Error) => {
          failed = true;
          report.idleError = err.message;
          return null;
        });
      }
    }
  } finally {
    await s.close();
  }
}

const t0 = performance.now();
const reports: ModeReport[] = [];
try {
  log(`bench:failover: modes ${o.modes.join(', ')}; scenarios ${o.scenarios.join(', ')}; ${o.runs} run(s) each; HAProxy ${useHaproxy ? 'yes' : 'no'}; idle ${o.idleSeconds} s`);
  for (const mode of o.modes) {
    const report: ModeReport = { mode, bootstrapMs: {}, scenarios: {}, skipped: {}, idle: null };
    reports.push(report);
    const plain = o.scenarios.filter((s) => !SCENARIOS[s].needsLab);
    const inLab = o.scenarios.filter((s) => SCENARIOS[s].needsLab);
    if (plain.length > 0 || o.idleSeconds > 0) await session(mode, false, plain, o.idleSeconds, report);
    if (inLab.length > 0) {
      if (noLab) for (const sc of inLab) report.skipped[sc] = noLab;
      else await session(mode, true, inLab, 0, report);
    }
  }
  const totalMs = performance.now() - t0;
  log('');
  log(table(reports, useHaproxy));
  const bad = violations(reports);
  for (const v of bad) log(`VIOLATION: ${v}`);
  log(`total ${(totalMs / 60_000).toFixed(1)} min`);
  log(jsonLine(o, reports, totalMs, { haproxy: useHaproxy, haproxyConfig: useHaproxy ? 'config/haproxy.cfg with addresses and ports substituted (bench/failover/haproxy.ts)' : null, violations: bad }));
  if (bad.length > 0) failed = true;
} catch (err) {
  if (!wasInterrupted()) {
    process.stderr.write(`bench:failover: ${(err as Error).stack ?? err}\n`);
    failed = true;
  }
} finally {
  await cleanupAll();
}
if (wasInterrupted()) await new Promise(() => undefined); // the signal handler exits once it cleaned up
process.exit(failed ? 1 : 0);
