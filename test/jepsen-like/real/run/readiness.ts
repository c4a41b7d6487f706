// The run's waits on the cluster: until it is ready to start from (one primary, every replica
// streaming from it, a synchronous standby in sync mode, the clients' table everywhere), until it
// has converged after the heal (bounded and timed: the convergence checker reads the result), and
// until every replica has replayed the primary's WAL, so that the final reads can be compared.
import type { AgentCluster } from '../../../support/agents.ts';
import { sleep } from '../../../support/processes.ts';
import { convergenceProblems, parseLsn } from '../checkers.ts';
import type { Convergence, ConvergenceSnapshot, Mode } from '../checkers.ts';
import { TABLE_DDL } from '../workload.ts';
import { takeSnapshot } from './snapshot.ts';
import type { LabLike } from './snapshot.ts';

/** One primary with every replica streaming from it (and, in sync mode, a synchronous standby); then the table, everywhere. */
export async function waitUntilReady(cluster: AgentCluster, nodes: readonly string[], mode: Mode, lab: LabLike, log: (line: string) => void): Promise<void> {
  let problems: string[] = [];
  const snapshot = await cluster.waitFor('a converged cluster to start from', async () => {
    const s = await takeSnapshot(cluster, lab, nodes, () => 0);
    problems = convergenceProblems(s);
    return problems.length === 0 ? s : null;
  }, 120_000, 500).catch((err: Error) => {
    throw new Error(`${problems.join('; ')}\n${err.message}`);
  });
  const primary = snapshot.nodes.find((n) => n.role === 'primary')!.name;
  if (mode === 'sync-strict') {
    await cluster.waitFor('a synchronous standby', async () => (await cluster.trySql(primary, "select 1 from pg_stat_replication where sync_state = 'sync'"))?.rowCount === 1, 60_000, 250);
  }
  await cluster.waitFor('the jepsen table', async () => (await cluster.trySql(primary, TABLE_DDL)) !== null, 30_000, 250);
  await cluster.waitFor('the jepsen table on every node', async () => (await Promise.all(nodes.map((n) => cluster.trySql(n, 'select 1 from jepsen limit 0')))).every((r) => r !== null), 30_000, 250);
  log(`cluster ready: primary ${primary}`);
}

/** Polls until a snapshot passes convergenceProblems or the bound passes. */
export async function waitForConvergence(cluster: AgentCluster, lab: LabLike, nodes: readonly string[], healedAt: number, boundMs: number, now: () => number): Promise<Convergence> {
  let last: ConvergenceSnapshot | null = null;
  while (now() - healedAt <= boundMs) {
    last = await takeSnapshot(cluster, lab, nodes, now);
    if (convergenceProblems(last).length === 0) return { healedAt, boundMs, convergedAt: last.at, last };
    await sleep(500);
  }
  return { healedAt, boundMs, convergedAt: null, last };
}

/** Waits (at most `timeoutMs`) until every replica has replayed what the primary has written. */
export async function waitForReplay(cluster: AgentCluster, nodes: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const rows = await Promise.all(nodes.map((n) => cluster.trySql(n, 'select pg_is_in_recovery() as recovery, (case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end)::text as lsn')));
    const answers = rows.map((r) => r?.rows[0] as { recovery: boolean; lsn: string | null } | undefined);
    const primary = answers.find((a) => a && !a.recovery);
    if (primary?.lsn && answers.every((a) => a?.lsn && parseLsn(a.lsn) >= parseLsn(primary.lsn!))) return;
    await sleep(250);
  }
}
