// The shared vocabulary of the real-process harness (test/jepsen-like/real): the records a run
// writes to its history (observation() makes one of the harness's own), and the contract between
// the run (schedule, workload, checkers, report) and the nemeses that inject faults. Times are
// milliseconds on the harness's one monotonic clock (performance.now() of the harness process),
// never a node's wall clock.
import type { AgentCluster } from '../../support/agents.ts';
import type { NetLab } from '../../support/netlab.ts';
import type { Prng } from '../sim/prng.ts';

/** One client operation: an insert of a unique value on one node's PostgreSQL, or a final read. */
export interface ClientOp {
  readonly type: 'client';
  readonly id: number;
  /** Which client (one per node and connection) issued it. */
  readonly client: string;
  /** The node whose PostgreSQL it was sent to. */
  readonly node: string;
  readonly f: 'insert' | 'read';
  /** The unique value inserted; for a read, null. */
  readonly value: number | null;
  readonly invokedAt: number;
  /** null until it completes (then never null in a finished history). */
  completedAt: number | null;
  /** ok: acknowledged (COMMIT returned); fail: certainly not applied; unknown: may or may not be. */
  outcome: 'ok' | 'fail' | 'unknown' | null;
  /** A read's result: the values it saw. */
  readValues?: number[];
  /** Why it failed or is unknown (the error's message). */
  error?: string;
}

/** A fault, recorded when it starts and when it ends. */
export interface NemesisEvent {
  readonly type: 'nemesis';
  readonly phase: 'start' | 'end';
  /** The nemesis's name, e.g. 'partition-primary', 'kill-agent', 'pause-agent', 'clock-jump'. */
  readonly kind: string;
  /** The nodes it acts on, by name. */
  readonly targets: readonly string[];
  /** One line for the report, e.g. "n1 | n2 n3" or "SIGSTOP agent n2". */
  readonly detail: string;
  readonly at: number;
}

/** Something the harness observed about the cluster (a primary seen, convergence reached, ...). */
export interface ObservationEvent {
  readonly type: 'observation';
  readonly what: string;
  readonly node: string | null;
  readonly at: number;
  readonly data?: Record<string, unknown>;
}

export type RunEvent = ClientOp | NemesisEvent | ObservationEvent;

/** An observation stamped now; `data` is left out of the record when there is none. */
export function observation(now: () => number, what: string, node: string | null, data?: Record<string, unknown>): ObservationEvent {
  return data === undefined ? { type: 'observation', what, node, at: now() } : { type: 'observation', what, node, at: now(), data };
}

/** What a nemesis is given: the cluster, its network lab, the run's seeded PRNG and the history. */
export interface FaultContext {
  readonly cluster: AgentCluster;
  readonly lab: NetLab;
  readonly rng: Prng;
  /** Node names in the order of the lab's namespaces (node i runs in namespace i). */
  readonly nodes: readonly string[];
  /** The harness clock. */
  now(): number;
  /** Appends to the history (the nemesis records its own start; the run records its end). */
  record(event: NemesisEvent | ObservationEvent): void;
  /** The node that answers /primary now, or null (asks every node; cheap). */
  currentPrimary(): Promise<string | null>;
  /** The node that leads Raft now, or null. */
  raftLeader(): Promise<string | null>;
}

/** A fault in force; heal() undoes it (idempotent, and safe after a partial inject). */
export interface ActiveFault {
  readonly kind: string;
  readonly targets: readonly string[];
  readonly detail: string;
  heal(): Promise<void>;
}

/** A kind of fault the schedule can draw. */
export interface Nemesis {
  readonly name: string;
  /** One line for --help and the report. */
  readonly description: string;
  inject(ctx: FaultContext): Promise<ActiveFault>;
}
