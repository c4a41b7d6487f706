// The end of a run: what it recorded gathered into the RunRecord the checkers read, with the
// bounds they judge by (from the run's dynamic settings, and each node's tags from its config
// file), then the verdicts: each checker's, the run's as a whole, and the counts the summary prints.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { AgentCluster } from '../../../support/agents.ts';
import { checkAll, inserts, lostWrites } from '../checkers.ts';
import type { AgentDecision, CheckResult, CommitInfo, Convergence, Mode, PositionSample, RaftSample, RunRecord, StoreOp, Verdict } from '../checkers.ts';
import type { RunEvent } from '../types.ts';
import { LEADER_KEY } from './snapshot.ts';

/** maximum_lag_on_failover when the run's settings leave it out (the agents' default, ha/config/defaults.ts). */
const DEFAULT_MAX_LAG = 1_048_576;

export interface RunCounts {
  readonly ok: number;
  readonly failed: number;
  readonly unknown: number;
  /** Acknowledged writes missing from the final primary, or null when it could not be read. */
  readonly lost: number | null;
}

/** What the observers saw (run/observers.ts: Observers). */
export interface Observed {
  readonly storeOps: readonly StoreOp[];
  readonly raftSamples: readonly RaftSample[];
  readonly positions: readonly PositionSample[];
  readonly decisions: readonly AgentDecision[];
}

export interface Recorded {
  readonly mode: Mode;
  /** The dynamic settings the cluster was started with. */
  readonly dcs: Record<string, unknown>;
  readonly history: RunEvent[];
  readonly commits: ReadonlyMap<number, CommitInfo>;
  readonly convergence: Convergence;
  readonly observed: Observed;
  readonly cluster: AgentCluster;
  readonly nodes: readonly string[];
}

export function buildRecord(r: Recorded): RunRecord {
  const { dcs } = r;
  const maxLag = typeof dcs.maximum_lag_on_failover === 'number' ? dcs.maximum_lag_on_failover : DEFAULT_MAX_LAG;
  const loopWait = typeof dcs.loop_wait === 'number' ? dcs.loop_wait : 0.5;
  return {
    mode: r.mode,
    history: r.history,
    commits: r.commits,
    maximumLagOnFailover: maxLag,
    lagSlackBytes: 65_536,
    // A decision line arrives after its cycle acted (the promotion done): a wide margin keeps the
    // lag bound a lower bound.
    publishMarginMs: loopWait * 1000 + 3000,
    convergence: r.convergence,
    storeOps: r.observed.storeOps,
    leaderKey: LEADER_KEY,
    raftSamples: r.observed.raftSamples,
    positions: r.observed.positions,
    decisions: r.observed.decisions,
    mayFailOver: readMayFailOver(r.cluster, r.nodes),
  };
}

/** Every checker's verdict, the counts, and the run's verdict: false on any violation, 'unknown' if none but one could not judge. */
export function judge(record: RunRecord): { checks: CheckResult[]; counts: RunCounts; valid: Verdict } {
  const checks = checkAll(record);
  const ops = inserts(record.history);
  const lost = lostWrites(record);
  const counts: RunCounts = {
    ok: ops.filter((o) => o.outcome === 'ok').length,
    failed: ops.filter((o) => o.outcome === 'fail').length,
    unknown: ops.filter((o) => o.outcome === 'unknown').length,
    lost: lost === null ? null : lost.length,
  };
  const valid: Verdict = checks.some((c) => c.valid === false) ? false : checks.some((c) => c.valid === 'unknown') ? 'unknown' : true;
  return { checks, counts, valid };
}

function readMayFailOver(cluster: AgentCluster, nodes: readonly string[]): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const n of nodes) {
    try {
      const tags = ((parseYaml(readFileSync(cluster.node(n).configPath, 'utf8')) as { tags?: Record<string, unknown> }).tags ?? {});
      const priority = typeof tags.failover_priority === 'number' ? tags.failover_priority : 1;
      out[n] = !(tags.nofailover === true || tags.nofailover === 'true') && priority > 0;
    } catch {
      out[n] = true;
    }
  }
  return out;
}
