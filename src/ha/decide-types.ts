// What one HA decision is made from, and what it may decide. Pure data: the driver (ha-loop.ts)
// gathers the facts with I/O, decide() turns them into actions and one sentence, the executor
// (ha-actions.ts) carries the actions out.
import type { ClusterView } from './cluster-view.ts';
import type { ControlData, PgStatus } from './postgres/types.ts';
import type { ReplicationInfo, SyncSettings } from './decide-sync.ts';

/** An upstream PostgreSQL to stream from or clone from: a member and its address. */
export interface Upstream {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

/** What GET /patroni on a peer told us during a race (null fields: not reported). */
export interface PeerReport {
  readonly name: string;
  /** false: no answer within the timeout; such a peer is left out of the race (Patroni). */
  readonly reachable: boolean;
  readonly role: 'primary' | 'replica' | null;
  readonly walPosition: number | null;
  readonly timeline: number | null;
  readonly nofailover: boolean;
  readonly failoverPriority: number;
}

/** The dynamic settings decide() uses, in milliseconds and bytes. */
export interface DecideSettings {
  readonly ttlMs: number;
  readonly maximumLagOnFailover: number;
  readonly checkTimeline: boolean;
  readonly usePgRewind: boolean;
  readonly removeDataDirectoryOnRewindFailure: boolean;
  /** Re-clone a member whose timeline diverged when pg_rewind is off (Patroni's option of that name). */
  readonly removeDataDirectoryOnDivergedTimelines: boolean;
  readonly useSlots: boolean;
  readonly memberSlotsTtlMs: number;
  /** How long a lock holder may try to start its PostgreSQL before giving the lock up (0: at once). */
  readonly primaryStartTimeoutMs: number;
  /** Pause mode (`pause: true` in the dynamic config): no automatic action, only reporting. */
  readonly paused: boolean;
  readonly sync: SyncSettings;
}

export interface LocalFacts {
  readonly name: string;
  readonly nofailover: boolean;
  readonly failoverPriority: number;
  readonly clonefrom: boolean;
  readonly dataDirEmpty: boolean;
  /** null when the data directory is empty or pg_controldata could not read it. */
  readonly control: ControlData | null;
  readonly pg: PgStatus;
  /** The long task the executor is running (bootstrap, clone, start, promote, rewind...), if any. */
  readonly task: string | null;
  /** The last rejoin of this data directory by pg_rewind failed (cleared by a successful start). */
  readonly rewindFailed: boolean;
  /**
   * Why this member may not lead: watchdog mode is `required` and the device cannot be used (or
   * failed while leading). null when it can, or the mode is not `required`.
   */
  readonly watchdogBlocksLeadership: string | null;
  /** Since when this lock holder's PostgreSQL has not been running as primary (now() ms); null while it is. */
  readonly primaryDownSince: number | null;
}

export interface DecideInput {
  /** Monotonic milliseconds on this agent's clock. */
  readonly now: number;
  /**
   * Wall-clock milliseconds, used for one thing only: whether an operator's scheduled_at has come.
   * Never compared with another node's clock, never used for a lease.
   */
  readonly wallNow: number;
  readonly me: LocalFacts;
  /** null: the store did not answer this cycle (storeError says why). */
  readonly cluster: ClusterView | null;
  readonly storeError: string | null;
  /** When this agent's leader lease can first expire anywhere (counted from the renewal's send time). */
  readonly leaseExpiresAt: number | null;
  /** Filled by the driver only when the cluster is unlocked and this member may race. */
  readonly peers: readonly PeerReport[];
  readonly settings: DecideSettings;
  /** The lock holder's pg_stat_replication (null when not asked: not the primary, or sync mode off). */
  readonly replication: readonly ReplicationInfo[] | null;
  /** synchronous_standby_names as this agent last set it (null: left to the user's setting). */
  readonly managedSyncNames: string | null;
  /** Members last seen (name → monotonic ms), so a vanished member's slot is kept member_slots_ttl. */
  readonly membersLastSeen: ReadonlyMap<string, number>;
}

/**
 * immediate-nolock: stop at once, keep the key (it is someone else's or will lapse);
 * immediate: stop at once and release the key; offline: stop at once, keep the key (store down);
 * graceful: checkpoint, clean stop (replicas receive the shutdown checkpoint), then release the key.
 */
export type DemoteMode = 'immediate-nolock' | 'immediate' | 'offline' | 'graceful';

export type Action =
  /** Race for `initialize`; the winner runs initdb, starts, creates roles, takes the lock, seeds config. */
  | { readonly type: 'bootstrap' }
  /** Write `initialize` = our system identifier (adopting an existing data directory). */
  | { readonly type: 'adopt'; readonly sysid: string }
  /** pg_basebackup from `from` (its data directory is wiped first), then start as its replica. */
  | { readonly type: 'clone'; readonly from: Upstream }
  /** Start PostgreSQL after a crash as the primary we still are (we hold the lock). */
  | { readonly type: 'startPrimary' }
  /** Start as a replica of `upstream` (null: read-only, no upstream yet); pg_rewind first if `rewind`. */
  | { readonly type: 'startReplica'; readonly upstream: Upstream | null; readonly rewind: boolean }
  /** Create the leader key; `promote`: then promote our replica. Abandons the rest when lost. */
  | { readonly type: 'acquireLock'; readonly promote: boolean }
  | { readonly type: 'renewLock' }
  | { readonly type: 'releaseLock' }
  | { readonly type: 'promote' }
  | { readonly type: 'demote'; readonly mode: DemoteMode }
  /** Point a running replica at `upstream` (primary_conninfo + reload) if it streams from elsewhere. */
  | { readonly type: 'follow'; readonly upstream: Upstream }
  /** Keep exactly one physical slot per member named here (the executor derives the slot names). */
  | { readonly type: 'syncSlots'; readonly members: readonly string[] }
  /** Compare-and-set the `sync` key (null deletes it). */
  | { readonly type: 'writeSync'; readonly value: { leader: string; sync_standby: string | null } | null; readonly revision: number }
  /** synchronous_standby_names, managed (null: the user's own setting again). */
  | { readonly type: 'setSyncNames'; readonly value: string | null }
  /** Delete the `failover` key (a request that cannot be carried out, or is done). */
  | { readonly type: 'clearFailover'; readonly revision: number }
  /** Write `initialize` or `config` when the lock holder finds them missing. */
  | { readonly type: 'repairKeys' }
  /** Stop the agent: running on would do harm (a data directory of another cluster). */
  | { readonly type: 'fatal'; readonly message: string };

export interface Decision {
  readonly actions: readonly Action[];
  /** One sentence for the log, the REST status and the tests. */
  readonly reason: string;
}
