// One simulated run from one seed: a cluster of SimNodes on a SimNetwork in virtual time, a
// client workload, a nemesis, and the checkers. Same seed, same run, same verdict.
import type { Message, NodeId } from '../../../src/raft/core/types.ts';
import { checkLinearizable } from '../checker/linearizability.ts';
import type { LinearizabilityResult } from '../checker/linearizability.ts';
import { EventQueue } from './event-queue.ts';
import { Prng } from './prng.ts';
import { SimNetwork } from './sim-network.ts';
import { SimNode, newDisk } from './sim-node.ts';
import type { SimNodeOptions } from './sim-node.ts';
import { RaftInvariants } from './raft-invariants.ts';
import type { Violation } from './raft-invariants.ts';
import { Workload } from './workload.ts';
import { LeaseHolder } from './lease-holder.ts';
import { Nemesis, ALL_FAULTS } from './nemesis.ts';
import type { FaultKind } from './nemesis.ts';

export interface SimOptions {
  seed: number;
  /** Virtual milliseconds of faults before the final heal. */
  duration?: number;
  /** Cluster size; drawn from {3, 5} by the seed when absent. */
  nodes?: number;
  faults?: readonly FaultKind[];
  /** Mean virtual ms between nemesis actions. */
  faultInterval?: number;
  trace?: (line: string) => void;
  /** Planted bug for the checker tests: the durable hard state loses its vote. */
  forgetVote?: boolean;
  /** Bound for recovery after the final heal, in virtual ms. */
  livenessBound?: number;
  /** Largest append in bytes; 1 sends one entry per message. Drawn by the seed when absent. */
  maxSizePerMsg?: number;
  /** How long a crashed node stays down, in virtual ms. */
  crashDowntime?: [number, number];
  /** Disk writes a node may have outstanding; drawn by the seed from 1..4 when absent. */
  pipelineDepth?: number;
  /** Probability of crashing at each crash point (vote persisted, leadership won, commit advanced). */
  crashPointRate?: number;
}

/**
 * Named fault profiles. `default` draws cluster size, message size and crash-point rate from the
 * seed. `hunt` is the profile that finds planted bugs fastest: three nodes, one entry per append
 * (so a follower can hold an old entry without the new leader's no-op), partitions, crashes,
 * and crash points at the moments Figure 8 needs.
 */
export const PROFILES: Record<string, Partial<SimOptions>> = {
  default: {},
  hunt: { nodes: 3, maxSizePerMsg: 1, crashPointRate: 0.3, faults: ['partition', 'crash'] },
};

export interface SimResult {
  seed: number;
  ok: boolean;
  violations: Violation[];
  linearizability: LinearizabilityResult;
  ops: { ok: number; fail: number; unknown: number };
  leaders: number;
  messages: number;
  recoveredAfter: number | null;
  virtualMs: number;
}

export class SimCluster {
  readonly queue = new EventQueue();
  readonly network: SimNetwork;
  readonly invariants: RaftInvariants;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly rng: Prng;
  private readonly nodeOpts: SimNodeOptions;
  private readonly traceFn: ((line: string) => void) | undefined;
  /** Set by the run: where lease revokes are reported. */
  onLeaseRevoked: ((lease: string) => void) | null = null;
  /** Nodes crashed by the nemesis and due to restart. */
  private readonly down = new Set<NodeId>();

  /** Crash-point probability and the downtime range of such crashes; 0 disables them. */
  crashPointRate = 0;
  crashPointDowntime: [number, number] = [1, 300];

  constructor(rng: Prng, nodeOpts: SimNodeOptions, trace?: (line: string) => void) {
    this.rng = rng;
    this.nodeOpts = nodeOpts;
    this.traceFn = trace;
    this.invariants = new RaftInvariants(() => this.queue.now);
    this.network = new SimNetwork(
      this.queue,
      rng.fork(),
      { dropRate: 0.01, duplicateRate: 0.01, minDelay: 1, maxDelay: 12 },
      (m) => this.nodes.get(m.to)?.receive(m),
      (from, to, ok) => this.nodes.get(from)?.reportSnapshot(to, ok),
    );
    this.network.reportUnreachable = (from, to) => this.nodes.get(from)?.reportUnreachable(to);
  }

  log(line: string): void {
    this.traceFn?.(`${String(this.queue.now).padStart(7)} ${line}`);
  }

  private observer() {
    return {
      onRole: (n: SimNode) => this.invariants.onRole(n),
      onApply: (n: SimNode, e: Parameters<RaftInvariants['onApply']>[1]) => this.invariants.onApply(n, e),
      onDurable: (n: SimNode) => this.invariants.onDurable(n),
      onLeaseRevoked: (_n: SimNode, lease: string) => this.onLeaseRevoked?.(lease),
      onCrashError: (n: SimNode, err: unknown) => {
        this.log(`!! ${n.id}: ${err instanceof Error ? err.message : String(err)}`);
        this.invariants.onCrashError(n, err);
      },
      crashPoint: (n: SimNode, point: string): boolean => {
        if (this.crashPointRate === 0 || !this.rng.chance(this.crashPointRate)) return false;
        const duration = this.rng.between(this.crashPointDowntime[0], this.crashPointDowntime[1]);
        if (this.rng.chance(0.5)) {
          this.log(`nemesis: crash point "${point}" crashes ${n.id}`);
          this.crash(n.id, duration);
          return true;
        }
        // Or cut it off, which drops what it has just sent: it keeps running, alone.
        this.log(`nemesis: crash point "${point}" isolates ${n.id} for ${duration}ms`);
        this.network.isolate(n.id, this.nodeIds(), duration);
        return false;
      },
      trace: (line: string) => this.log(line),
    };
  }

  private send = (m: Message): void => {
    if (this.traceFn && m.type !== 'heartbeat' && m.type !== 'heartbeatResp') this.log(`   ${describe(m)}`);
    this.network.send(m);
  };

  bootstrap(ids: NodeId[]): void {
    for (const id of ids) this.createNode(id, ids);
  }

  addNode(id: NodeId): void {
    this.createNode(id, null);
  }

  private createNode(id: NodeId, voters: NodeId[] | null): void {
    const node = new SimNode(id, newDisk(voters), this.nodeOpts, this.queue, this.rng.fork(), this.send, this.observer());
    this.nodes.set(id, node);
    node.start();
  }

  node(id: NodeId): SimNode {
    return this.nodes.get(id)!;
  }

  allNodes(): SimNode[] {
    return [...this.nodes.values()];
  }

  nodeIds(): NodeId[] {
    return [...this.nodes.keys()];
  }

  memberIds(): NodeId[] {
    return this.nodeIds();
  }

  liveMembers(): NodeId[] {
    return this.allNodes().filter((n) => n.alive).map((n) => n.id);
  }

  /** The live leader of the highest term, if any. */
  leaderId(): NodeId | null {
    let best: SimNode | null = null;
    for (const n of this.nodes.values()) {
      if (n.isLeader() && (!best || n.raw.raft.term > best.raw.raft.term)) best = n;
    }
    return best?.id ?? null;
  }

  voterIds(): NodeId[] {
    const leader = this.leaderId();
    const view = leader ? this.node(leader) : this.allNodes().find((n) => n.alive);
    return view ? view.raw.raft.voters() : [];
  }

  crash(id: NodeId, downtime: number): void {
    const node = this.node(id);
    if (!node.alive) return;
    this.log(`nemesis: crash ${id} for ${downtime}ms`);
    node.crash();
    this.down.add(id);
    this.queue.after(downtime, () => this.restart(id));
  }

  restart(id: NodeId): void {
    if (!this.down.delete(id)) return;
    this.node(id).start();
  }

  restartAll(): void {
    for (const id of [...this.down]) this.restart(id);
  }
}

function describe(m: Message): string {
  const base = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'app':
      return `${base} prev=(${m.index},t${m.logTerm}) n=${m.entries.length} commit=${m.commit}`;
    case 'appResp':
      return `${base} index=${m.index}${m.reject ? ` reject hint=(${m.hintIndex},t${m.hintTerm})` : ''}`;
    case 'vote':
    case 'preVote':
      return `${base} last=(${m.index},t${m.logTerm})${m.transfer ? ' transfer' : ''}`;
    case 'voteResp':
    case 'preVoteResp':
      return `${base} ${m.reject ? 'reject' : 'grant'}`;
    case 'snap':
      return `${base} snapshot=(${m.snapshot.meta.index},t${m.snapshot.meta.term})`;
    default:
      return base;
  }
}

export function runSimulation(opts: SimOptions): SimResult {
  const rng = new Prng(opts.seed);
  const size = opts.nodes ?? rng.pick([3, 3, 5]);
  const duration = opts.duration ?? 4000;
  const faultInterval = opts.faultInterval ?? 250;
  const livenessBound = opts.livenessBound ?? 5000;
  const maxSizePerMsg = opts.maxSizePerMsg ?? rng.pick([1, 4096]);
  const cluster = new SimCluster(
    rng.fork(),
    {
      electionTick: 10,
      heartbeatTick: 2,
      tickMs: 10,
      fsyncMin: 1,
      fsyncMax: 6,
      snapshotEvery: 40,
      trailingEntries: 5,
      forgetVote: opts.forgetVote ?? false,
      maxSizePerMsg,
      pipelineDepth: opts.pipelineDepth ?? rng.pick([1, 1, 2, 4]),
    },
    opts.trace,
  );
  cluster.crashPointRate = opts.crashPointRate ?? rng.pick([0, 0, 0.02, 0.1]);
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  cluster.bootstrap(ids);
  const workload = new Workload({ clients: 4, keys: 3, thinkMin: 5, thinkMax: 40, timeout: 400 }, cluster.queue, rng.fork(), () => cluster.allNodes(), (l) => cluster.log(l));
  workload.start();
  // The lease TTL is a few election timeouts, as the HA leader lock's will be.
  const holder = new LeaseHolder(cluster.queue, rng.fork(), () => cluster.allNodes(), 400, (l) => cluster.log(l));
  cluster.onLeaseRevoked = (lease) => holder.onRevoked(lease);
  holder.start();
  const nemesis = new Nemesis(rng.fork(), cluster, opts.faults ?? ALL_FAULTS, opts.crashDowntime ?? [20, 600]);
  const nemesisRng = rng.fork();

  const scheduleFault = (): void => {
    cluster.queue.after(nemesisRng.between(faultInterval / 2, faultInterval * 2), () => {
      if (cluster.queue.now >= duration) return;
      nemesis.step();
      scheduleFault();
    });
  };
  scheduleFault();
  for (let t = 500; t < duration; t += 500) cluster.queue.at(t, () => cluster.invariants.checkLogMatching(cluster.allNodes()));

  // A run that stops making progress in virtual time (a livelock in the code under test) is a
  // finding too; the budget keeps it from hanging the suite.
  const budget = { events: 0, max: 3_000_000 };
  const runUntil = (t: number): boolean => {
    budget.events += cluster.queue.runUntil(t, budget.max - budget.events);
    return budget.events < budget.max;
  };
  runUntil(duration);

  // Heal everything, then demand progress within the liveness bound.
  cluster.network.heal();
  cluster.network.profile = { ...cluster.network.profile, dropRate: 0, duplicateRate: 0 };
  cluster.crashPointRate = 0; // every fault stops at the heal, crash points included
  cluster.restartAll();
  cluster.log('heal: network healed, every node restarted');
  const healedAt = cluster.queue.now;
  let recoveredAfter: number | null = null;
  const probe = (): void => {
    const leader = cluster.leaderId();
    if (leader) {
      cluster.node(leader).read((r) => {
        if (r.ok && recoveredAfter === null) recoveredAfter = cluster.queue.now - healedAt;
      });
    }
    if (recoveredAfter === null && cluster.queue.now - healedAt < livenessBound) cluster.queue.after(20, probe);
  };
  probe();
  runUntil(healedAt + livenessBound);
  workload.stop();
  holder.stop();
  runUntil(cluster.queue.now + 1000); // let in-flight operations finish or time out

  cluster.invariants.checkLogMatching(cluster.allNodes());
  const violations = [...cluster.invariants.violations, ...holder.violations];
  if (budget.events >= budget.max) {
    violations.push({ property: 'progress', time: cluster.queue.now, detail: `event budget of ${budget.max} exhausted: the run livelocked` });
  }
  if (recoveredAfter === null) {
    violations.push({ property: 'liveness', time: cluster.queue.now, detail: `no leader served a linearizable read within ${livenessBound}ms after the heal` });
  } else if (!workload.history.some((op) => op.kind !== 'get' && op.outcome === 'ok' && op.invokeTime >= healedAt)) {
    violations.push({ property: 'liveness', time: cluster.queue.now, detail: 'no client write succeeded after the heal' });
  }
  const linearizability = checkLinearizable(workload.history);
  if (linearizability.valid === false) {
    violations.push({ property: 'linearizability', time: cluster.queue.now, detail: `key ${linearizability.key}: ${linearizability.evidence}` });
  }
  const ops = { ok: 0, fail: 0, unknown: 0 };
  for (const op of workload.history) ops[op.outcome]++;
  return {
    seed: opts.seed,
    ok: violations.length === 0,
    violations,
    linearizability,
    ops,
    leaders: cluster.invariants.leaderCount(),
    messages: cluster.network.stats.sent,
    recoveredAfter,
    virtualMs: cluster.queue.now,
  };
}
