// The fault phase of a run: the seeded schedule's faults applied at their times (each injected,
// held, healed, and its end recorded), then everything healed once more and every agent made to
// run again, so that convergence is judged on a whole cluster. A failed inject or heal is
// recorded and the run goes on: the checkers judge what happened, not what was planned.
import type { AgentCluster } from '../../../support/agents.ts';
import { sleep } from '../../../support/processes.ts';
import { fencePid, signalPid } from '../nemesis/unsafe.ts';
import type { Schedule } from '../schedule.ts';
import { observation } from '../types.ts';
import type { ActiveFault, FaultContext, Nemesis, RunEvent } from '../types.ts';

/** Applies the faults at their times; returns every fault injected (all healed already). */
export async function applySchedule(ctx: FaultContext, schedule: Schedule, registry: Readonly<Record<string, Nemesis>>, log: (line: string) => void): Promise<ActiveFault[]> {
  const phaseStart = ctx.now();
  const injected: ActiveFault[] = [];
  const until = (t: number): Promise<void> => sleep(Math.max(0, t - ctx.now()));
  for (const f of schedule.faults) {
    await until(phaseStart + f.startAt);
    const nemesis = registry[f.nemesis];
    const calledAt = ctx.now();
    let fault: ActiveFault;
    try {
      fault = await nemesis.inject(ctx);
    } catch (err) {
      ctx.record(observation(ctx.now, 'nemesis failed', null, { nemesis: f.nemesis, error: (err as Error).message }));
      log(`  ${f.nemesis}: inject failed: ${(err as Error).message}`);
      continue;
    }
    injected.push(fault);
    log(`+${((ctx.now() - phaseStart) / 1000).toFixed(1)} s  ${fault.kind}: ${fault.detail}`);
    await until(calledAt + f.holdMs);
    try {
      await fault.heal();
    } catch (err) {
      ctx.record(observation(ctx.now, 'heal failed', null, { kind: fault.kind, error: (err as Error).message }));
      log(`  ${fault.kind}: heal failed (retried at the end): ${(err as Error).message}`);
    }
    ctx.record({ type: 'nemesis', phase: 'end', kind: fault.kind, targets: fault.targets, detail: fault.detail, at: ctx.now() });
  }
  await until(phaseStart + schedule.durationMs);
  return injected;
}

/** Heals every fault again (each heal is idempotent) and lets stopped or dead agents run again. */
export async function healEverything(faults: readonly ActiveFault[], cluster: AgentCluster, nodes: readonly string[], now: () => number, record: (e: RunEvent) => void): Promise<void> {
  for (const f of faults) await f.heal().catch((err: Error) => record(observation(now, 'heal failed', null, { kind: f.kind, error: err.message })));
  await reviveAgents(cluster, nodes, now, record);
}

/** SIGCONT every agent (a paused one cannot be healed otherwise) and start agents that exited. */
async function reviveAgents(cluster: AgentCluster, nodes: readonly string[], now: () => number, record: (e: RunEvent) => void): Promise<void> {
  resumeStopped(cluster, nodes);
  for (const n of nodes) {
    const h = cluster.node(n).handle;
    if (h && !h.exit) continue;
    record(observation(now, 'agent started at heal', n, { exit: h?.exit ?? null }));
    await cluster.start(n).catch((err: Error) => record(observation(now, 'agent failed to start', n, { error: err.message })));
  }
}

/** SIGCONT to every agent and fence process of the cluster (both may be SIGSTOPped by a nemesis). */
export function resumeStopped(cluster: AgentCluster, nodes: readonly string[]): void {
  for (const n of nodes) {
    cluster.node(n).handle?.kill('SIGCONT');
    const fence = fencePid(cluster, n);
    if (fence !== null) signalPid(fence, 'SIGCONT');
  }
}
