// The cluster a real-process run works on: n agents with PostgreSQL 15, node i in network
// namespace i of a NetLab (names n1..n5), so that partitions are real packet drops while the
// harness still reaches every node over its control link. startClusterUnderTest() returns once
// one primary serves and every replica streams; stop() leaves nothing behind (agents, postmasters,
// namespaces), also after a failure half-way.
import { execFile } from 'node:child_process';
import { AgentCluster } from '../../support/agents.ts';
import { NetLab } from '../../support/netlab.ts';
import { isAlive, sleep } from '../../support/processes.ts';
import { Prng } from '../sim/prng.ts';
import type { FaultContext, NemesisEvent, ObservationEvent } from './types.ts';

export interface ClusterUnderTestOptions {
  nodes: 3 | 5;
  /** Seeds the PRNG handed to the nemeses (ClusterUnderTest.rng). */
  seed: number;
  /** Extra bootstrap.dcs settings (ttl, loop_wait, ...), over the test timing of agents.ts. */
  dcs?: Record<string, unknown>;
  /** Agents under libfaketime, for clock-jump. */
  fakeClock?: boolean;
  /** Default 'info': a run is long, and debug lines cost CPU on two cores. */
  logLevel?: 'debug' | 'info';
  /** How long to wait for the first primary and its streaming replicas; default 120 s. */
  convergeTimeoutMs?: number;
}

export interface Convergence {
  readonly primary: string;
  readonly replicas: readonly string[];
}

export interface ClusterUnderTest {
  readonly cluster: AgentCluster;
  readonly lab: NetLab;
  /** n1..nN, node i in namespace i. */
  readonly nodes: readonly string[];
  readonly rng: Prng;
  /** A FaultContext on this cluster; events go to `record`. */
  faultContext(opts: { record: (event: NemesisEvent | ObservationEvent) => void; rng?: Prng; now?: () => number }): FaultContext;
  /** Waits for one primary with every other node a streaming replica. */
  waitForConvergence(timeoutMs?: number): Promise<Convergence>;
  /** Stops every agent and postmaster by PID and destroys the lab. Idempotent; never leaves a process. */
  stop(): Promise<void>;
}

export async function startClusterUnderTest(opts: ClusterUnderTestOptions): Promise<ClusterUnderTest> {
  const nodes = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
  const lab = await NetLab.create(opts.nodes);
  let cluster: AgentCluster | null = null;
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => (stopping ??= stopEverything(cluster, lab));
  try {
    cluster = await AgentCluster.create(
      nodes.map((name) => ({ name })),
      { lab, dcs: opts.dcs, fakeClock: opts.fakeClock, logLevel: opts.logLevel ?? 'info' },
    );
    await cluster.startAll();
    const c = cluster;
    await waitForConvergence(c, nodes, opts.convergeTimeoutMs ?? 120_000);
    const rng = new Prng(opts.seed);
    return {
      cluster: c,
      lab,
      nodes,
      rng,
      faultContext: (f) => ({
        cluster: c,
        lab,
        rng: f.rng ?? rng,
        nodes,
        now: f.now ?? (() => performance.now()),
        record: f.record,
        currentPrimary: () => currentPrimary(c, nodes),
        raftLeader: () => raftLeader(c, nodes),
      }),
      waitForConvergence: (timeoutMs = 120_000) => waitForConvergence(c, nodes, timeoutMs),
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/**
 * The node answering /primary (asked of every node over the control links), or null when none
 * does. When several do, a split brain the checkers will judge, the first by name.
 */
export async function currentPrimary(cluster: AgentCluster, names = [...cluster.nodes.keys()]): Promise<string | null> {
  return (await cluster.primaries(names)).sort()[0] ?? null;
}

/**
 * The Raft leader: among the members whose /v1/status says they lead, the one of the highest term
 * (an old leader cut off may not have noticed yet); null when none says so.
 */
export async function raftLeader(cluster: AgentCluster, names = [...cluster.nodes.keys()]): Promise<string | null> {
  const statuses = await Promise.all(names.map(async (n) => ({ name: n, status: (await cluster.raftStatus(n)) as { role: string; term?: number } | null })));
  let best: { name: string; term: number } | null = null;
  for (const { name, status } of statuses) {
    if (status?.role !== 'leader') continue;
    const term = status.term ?? 0;
    if (best === null || term > best.term) best = { name, term };
  }
  return best?.name ?? null;
}

/** One primary and every other node of `names` a running replica whose replication_state is streaming. */
export async function converged(cluster: AgentCluster, names: readonly string[]): Promise<Convergence | null> {
  const primaries = await cluster.primaries([...names]);
  if (primaries.length !== 1) return null;
  const primary = primaries[0]!;
  const replicas = names.filter((n) => n !== primary);
  const states = await Promise.all(replicas.map((n) => cluster.api(n)));
  const streaming = states.every((s) => s?.body.role === 'replica' && s.body.state === 'running' && s.body.replication_state === 'streaming');
  return streaming ? { primary, replicas } : null;
}

export function waitForConvergence(cluster: AgentCluster, names: readonly string[], timeoutMs = 120_000): Promise<Convergence> {
  return cluster.waitFor('one primary with every replica streaming', () => converged(cluster, names), timeoutMs, 250);
}

async function stopEverything(cluster: AgentCluster | null, lab: NetLab): Promise<void> {
  const errors: unknown[] = [];
  if (cluster) {
    // A paused agent cannot act on SIGTERM: let every agent run again first.
    for (const n of cluster.nodes.values()) n.handle?.kill('SIGCONT');
    await cluster.stopAll().catch((err: unknown) => errors.push(err));
  }
  // Whatever an agent started and left behind in its namespace (a fence process outliving an agent
  // killed with -9, say) would keep the namespace alive: stop it by PID.
  await killLeftovers(lab).catch((err: unknown) => errors.push(err));
  await lab.destroy().catch((err: unknown) => errors.push(err));
  if (errors.length > 0) throw new AggregateError(errors, `stopping the cluster under test: ${errors.map((e) => (e as Error).message).join('; ')}`);
}

/** SIGKILL of every process still in one of the lab's namespaces (all started by our agents). */
async function killLeftovers(lab: NetLab): Promise<void> {
  const pids: number[] = [];
  for (let i = 0; i < lab.size; i++) {
    const out = await new Promise<string>((resolveRun) => execFile('ip', ['netns', 'pids', lab.nsName(i)], { timeout: 10_000 }, (_err, stdout) => resolveRun(stdout ?? '')));
    for (const line of out.split('\n')) if (/^\d+$/.test(line.trim())) pids.push(Number(line.trim()));
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (let k = 0; k < 100 && pids.some(isAlive); k++) await sleep(20);
}
