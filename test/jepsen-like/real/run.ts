// One run of the real-process harness (jepsen.md §1's test shape): start a cluster under test,
// start the clients and the observers, apply the seeded schedule's faults in order, heal
// everything, wait for convergence (and record how long it took), take final reads on every node,
// stop, and check. Returns everything the report needs; never leaves a process running.
//
// This module is the story of one run; each phase lives under run/: the waits on the cluster
// (readiness.ts, over snapshot.ts), the fault phase (faults.ts), the observers besides the clients
// (observers.ts: agents' decision lines, /patroni and /v1/status samples, store probes), the
// agents' logs kept with the report (agent-logs.ts), and the record and verdicts (verdicts.ts).
import { Prng } from '../sim/prng.ts';
import { failoverTimes } from './checkers.ts';
import type { CheckResult, FailoverTime, Mode, RunRecord, Verdict } from './checkers.ts';
import { startClusterUnderTest } from './cluster-under-test.ts';
import { NEMESES } from './nemesis/index.ts';
import { UNSAFE_NEMESES } from './nemesis/unsafe.ts';
import { AgentLogs } from './run/agent-logs.ts';
import { applySchedule, healEverything, resumeStopped } from './run/faults.ts';
import { Observers } from './run/observers.ts';
import { waitForConvergence, waitForReplay, waitUntilReady } from './run/readiness.ts';
import { buildRecord, judge } from './run/verdicts.ts';
import type { RunCounts } from './run/verdicts.ts';
import { buildSchedule, describeSchedule } from './schedule.ts';
import type { Schedule } from './schedule.ts';
import { observation } from './types.ts';
import type { FaultContext, Nemesis, NemesisEvent, ObservationEvent, RunEvent } from './types.ts';
import { Workload, finalRead } from './workload.ts';

export { LEADER_KEY } from './run/snapshot.ts';
export type { RunCounts } from './run/verdicts.ts';

export interface RunOptions {
  readonly nodes: 3 | 5;
  readonly seed: number;
  readonly mode: Mode;
  /** Length of the fault phase (faults and quiet periods), seconds. */
  readonly timeSec: number;
  readonly nemeses: readonly string[];
  /** Where nemesis names are looked up; default NEMESES plus UNSAFE_NEMESES. */
  readonly registry?: Readonly<Record<string, Nemesis>>;
  /** Extra dynamic settings, merged over the mode's. */
  readonly dcs?: Record<string, unknown>;
  readonly holdMs?: readonly [number, number];
  readonly quietMs?: readonly [number, number];
  /** How long after the heal the cluster has to converge; default 60 s. */
  readonly convergeBoundMs?: number;
  readonly clientsPerNode?: number;
  /** Progress lines (the CLI prints them; tests prefix them with '#'). */
  readonly log?: (line: string) => void;
  /** Where each agent's stdout is written, as <node>.log (the CLI: <report dir>/logs); without it, nowhere. */
  readonly agentLogDir?: string;
}

export interface RunResult {
  readonly options: Omit<RunOptions, 'registry' | 'log' | 'agentLogDir'>;
  readonly startedAtWall: string;
  readonly schedule: Schedule;
  readonly record: RunRecord;
  readonly checks: CheckResult[];
  readonly counts: RunCounts;
  readonly failovers: FailoverTime[];
  /** false if any checker found a violation; 'unknown' if none did but one could not judge. */
  readonly valid: Verdict;
  readonly durationMs: number;
}

/** The mode's dynamic settings: strict synchronous replication, or asynchronous. */
export function modeDcs(mode: Mode): Record<string, unknown> {
  return mode === 'sync-strict' ? { synchronous_mode: true, synchronous_mode_strict: true } : { synchronous_mode: false };
}

export async function runJepsen(opts: RunOptions): Promise<RunResult> {
  const log = opts.log ?? (() => undefined);
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const startedAtWall = new Date().toISOString();
  const registry = opts.registry ?? { ...NEMESES, ...UNSAFE_NEMESES };
  for (const n of opts.nemeses) if (!registry[n]) throw new Error(`unknown nemesis ${JSON.stringify(n)}`);
  const schedule = buildSchedule({ seed: opts.seed, nemeses: opts.nemeses, durationMs: opts.timeSec * 1000, holdMs: opts.holdMs, quietMs: opts.quietMs });
  log(describeSchedule(schedule));
  const agentLogs = opts.agentLogDir === undefined ? null : new AgentLogs(opts.agentLogDir, log);

  const dcs = { ...modeDcs(opts.mode), ...opts.dcs };
  const history: RunEvent[] = [];
  const record = (e: RunEvent): void => void history.push(e);
  let ids = 0;
  const nextId = (): number => ids++;

  log(`starting ${opts.nodes} nodes (${opts.mode})`);
  const under = await startClusterUnderTest({ nodes: opts.nodes, seed: opts.seed, dcs, fakeClock: opts.nemeses.includes('clock-jump') });
  const { cluster, lab, nodes } = under;
  agentLogs?.follow(cluster, nodes);
  const observers = new Observers(cluster, nodes, now, record);
  let workload: Workload | null = null;
  try {
    await waitUntilReady(cluster, nodes, opts.mode, lab, log);
    observers.start();
    const rng = new Prng(opts.seed ^ 0x6a09e667);
    workload = new Workload({ cluster, nodes, clientsPerNode: opts.clientsPerNode, rng: rng.fork(), now, record }, nextId);
    workload.start();
    log('workload started');

    const ctx: FaultContext = under.faultContext({ record: (e: NemesisEvent | ObservationEvent) => record(e), rng: rng.fork(), now });
    const faults = await applySchedule(ctx, schedule, registry, log);

    await healEverything(faults, cluster, nodes, now, record);
    const healedAt = now();
    record(observation(now, 'healed', null));
    log('healed everything; waiting for convergence');
    const convergence = await waitForConvergence(cluster, lab, nodes, healedAt, opts.convergeBoundMs ?? 60_000, now);
    record(observation(now, convergence.convergedAt === null ? 'not converged' : 'converged', null, { afterMs: (convergence.convergedAt ?? now()) - healedAt }));
    log(convergence.convergedAt === null ? `NOT converged within ${(convergence.boundMs / 1000).toFixed(0)} s` : `converged ${((convergence.convergedAt - healedAt) / 1000).toFixed(1)} s after the heal`);

    await workload.stop();
    await observers.stop();
    await waitForReplay(cluster, nodes, 20_000);
    await Promise.all(nodes.map((n) => finalRead(cluster, n, { now, record, nextId, timeoutMs: 20_000 })));

    const runRecord = buildRecord({ mode: opts.mode, dcs, history, commits: workload.commits, convergence, observed: observers, cluster, nodes });
    const { checks, counts, valid } = judge(runRecord);
    const { registry: _r, log: _l, agentLogDir: _d, ...options } = opts;
    return { options, startedAtWall, schedule, record: runRecord, checks, counts, failovers: failoverTimes(history), valid, durationMs: now() };
  } finally {
    await workload?.stop().catch(() => undefined);
    await observers.stop().catch(() => undefined);
    resumeStopped(cluster, nodes);
    // The agents' logs are closed once the agents have stopped, so that their last lines are in them.
    await under.stop().finally(() => agentLogs?.close());
  }
}
