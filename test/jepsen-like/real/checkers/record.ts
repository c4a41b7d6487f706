// What the checkers read: the RunRecord a run builds (run/verdicts.ts) and report.ts writes out as
// JSON, with its parts (commits, convergence snapshots, store operations, status samples, decision
// lines) and the shape of a verdict. Types only, so that every checker and the run share one
// vocabulary without depending on each other.
import type { Operation } from '../../checker/history.ts';
import type { RunEvent } from '../types.ts';

export type Verdict = boolean | 'unknown';

export interface CheckResult {
  readonly name: string;
  readonly valid: Verdict;
  readonly summary: string;
  readonly evidence: string[];
}

export type Mode = 'sync-strict' | 'async';

/** What an acknowledged insert returned: the WAL insert position and the timeline it was written on. */
export interface CommitInfo {
  readonly lsn: number;
  readonly timeline: number;
}

/** One node's state as the convergence wait saw it (through the control link, by SQL and HTTP). */
export interface NodeSnapshot {
  readonly name: string;
  /** PostgreSQL's role, or null when it did not answer. */
  readonly role: 'primary' | 'replica' | null;
  readonly timeline: number | null;
  /** The node's own PostgreSQL address as the others reach it ("host:port"). */
  readonly address: string;
  /** A replica's WAL receiver: status and the address it streams from ("host:port"). */
  readonly receiver: { readonly status: string; readonly upstream: string } | null;
  /** Raft as this member reports it, or null when it did not answer. */
  readonly raft: { readonly role: string; readonly term: number; readonly leader: string | null; readonly voters: readonly string[] } | null;
}

export interface ConvergenceSnapshot {
  readonly at: number;
  readonly nodes: readonly NodeSnapshot[];
  /** The leader key's value (the primary's name), or null when absent or unreadable. */
  readonly leaderKey: string | null;
}

export interface Convergence {
  /** When the last fault was healed. */
  readonly healedAt: number;
  readonly boundMs: number;
  /** When a snapshot first passed, or null if none did within the bound. */
  readonly convergedAt: number | null;
  /** The last snapshot taken (the passing one, or the last failing one). */
  readonly last: ConvergenceSnapshot | null;
}

/** An operation on the cluster store through a member's debug API (/v1/kv); reads carry modRevision. */
export interface StoreOp extends Operation {
  readonly member: string;
  modRevision?: number;
}

/** A member's answer to GET /v1/status during the run. */
export interface RaftSample {
  readonly at: number;
  readonly node: string;
  readonly term: number;
  readonly role: string;
  readonly leader: string | null;
}

/** A node's WAL position as its REST API reported it (a primary's write position, a replica's received/replayed). */
export interface PositionSample {
  readonly at: number;
  readonly node: string;
  readonly role: 'primary' | 'replica';
  readonly position: number;
}

/** A decision line an agent logged, stamped with the harness time it arrived at. */
export interface AgentDecision {
  readonly at: number;
  readonly node: string;
  readonly msg: string;
}

/** Everything the checkers read; run/verdicts.ts builds it and report.ts writes it out as JSON. */
export interface RunRecord {
  readonly mode: Mode;
  readonly history: RunEvent[];
  /** Keyed by the insert's ClientOp id. */
  readonly commits: ReadonlyMap<number, CommitInfo>;
  readonly maximumLagOnFailover: number;
  /** Slack on the async loss bound and the promotion lag check (WAL written in one publish interval). */
  readonly lagSlackBytes: number;
  /** How long before a promotion a primary's position must have been seen to count (≥ loop_wait). */
  readonly publishMarginMs: number;
  readonly convergence: Convergence;
  readonly storeOps: readonly StoreOp[];
  readonly leaderKey: string;
  readonly raftSamples: readonly RaftSample[];
  readonly positions: readonly PositionSample[];
  readonly decisions: readonly AgentDecision[];
  /** Per node: may it be promoted by its tags (false for nofailover or failover_priority ≤ 0). */
  readonly mayFailOver: Readonly<Record<string, boolean>>;
}
