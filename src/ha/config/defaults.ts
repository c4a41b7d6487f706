// Default values for every optional setting, each with what it costs to change it (STYLE.md: "each
// option's danger is documented next to it"). The values follow Patroni's documented defaults
// (reference §3.1, §3.2) except the HA timing, which is tuned for fast failover: our Raft store
// notices a dead leader in well under a second, so Patroni's 30 s TTL would only add waiting.
import type { DynamicConfig, Tags } from './types.ts';

/**
 * The cluster-wide defaults that bootstrap.dcs and the stored `config` key start from.
 *
 * Timing (seconds, fractions allowed). Patroni defaults to ttl 30, loop_wait 10, retry_timeout 10
 * and raises values below 20/1/3; we do neither (docs/divergence.md). Always
 * loop_wait + 2 * retry_timeout <= ttl, so that a leader whose store calls time out twice still
 * gives up its role before its lease can pass to another member.
 */
export const DYNAMIC_DEFAULTS: DynamicConfig = Object.freeze({
  /** Leader lease. Lower: faster failover, but a stalled leader (GC, I/O) loses its role sooner. */
  ttl: 2,
  /** Sleep between HA cycles. Lower: quicker reaction, more store writes. */
  loop_wait: 0.5,
  /** How long a store or PostgreSQL call may take before the cycle gives up on it. */
  retry_timeout: 0.5,
  /** Bytes a replica may lag and still be promoted. Higher: faster failover, more lost commits. */
  maximum_lag_on_failover: 1048576,
  /** -1: off. Otherwise a sync standby lagging more bytes than this is replaced. */
  maximum_lag_on_syncnode: -1,
  /** Seconds a crashed primary gets to restart before failing over. 0: fail over at once (may lose data without sync mode). */
  primary_start_timeout: 300,
  /** Sync mode only: seconds before a slow stop of the primary is escalated to SIGKILL. 0: never. */
  primary_stop_timeout: 0,
  /** Off: a failover may lose commits that no replica received. */
  synchronous_mode: false,
  /** On: with no sync standby left, the primary stops accepting writes rather than run unprotected. */
  synchronous_mode_strict: false,
  synchronous_node_count: 1,
  /** On: a primary that loses the store keeps running while every member it knows says it may. */
  failsafe_mode: false,
  /** On: a replica on an older timeline than the leader's is not promoted. */
  check_timeline: false,
  /** Seconds a departed member's replication slot is kept on the others (Patroni 4.0). 0: drop at once. */
  member_slots_ttl: 1800,
  /** 0: keep the whole timeline history in the `history` key. */
  max_timelines_history: 0,
  postgresql: Object.freeze({
    /** Off: a replica that falls behind may need a new base backup, the primary may have removed its WAL. */
    use_slots: true,
    /** Off: a former primary that diverged must be re-cloned instead of rewound. */
    use_pg_rewind: false,
    parameters: Object.freeze({}),
    pg_hba: Object.freeze([]) as readonly string[],
  }),
  extra: Object.freeze({}),
});

export const DEFAULT_NAMESPACE = '/service';

/** Where PostgreSQL's programs live (Debian/Ubuntu layout for PostgreSQL 15). Patroni's default is '' (search PATH). */
export const DEFAULT_BIN_DIR = '/usr/lib/postgresql/15/bin';

export const POSTGRESQL_DEFAULTS = Object.freeze({
  /** When the agent runs as root, PostgreSQL and its tools run as this user (initdb refuses root). */
  run_as: 'postgres',
  /** Seconds pg_ctl may take to start or stop before the agent treats it as failed. */
  pg_ctl_timeout: 60,
  create_replica_methods: Object.freeze(['basebackup']) as readonly string[],
  /** On: a failed rewind wipes the data directory so it can be re-cloned. Data on it is lost. */
  remove_data_directory_on_rewind_failure: false,
  /** On: a replica on a diverged timeline (and no rewind) wipes its data directory to re-clone. */
  remove_data_directory_on_diverged_timelines: false,
});

/** Tags published with the member; an absent tag means the member takes part normally. */
export const TAG_DEFAULTS: Omit<Tags, 'all'> = Object.freeze({
  /** On: this member never becomes primary. With every replica tagged so, nothing can fail over. */
  nofailover: false,
  /** Among equally advanced replicas the higher wins; 0 acts as nofailover. */
  failover_priority: 1,
  /** On: /replica answers 503, so load balancers send no reads here. */
  noloadbalance: false,
  /** On: preferred source of base backups for new replicas. */
  clonefrom: false,
  /** On: never chosen as synchronous standby. */
  nosync: false,
  /** Member name to stream from instead of the primary (cascading replication). */
  replicatefrom: null,
});

export const WATCHDOG_DEFAULTS = Object.freeze({
  /**
   * automatic: use the watchdog if the device can be opened; required: refuse to lead without it;
   * off: a hung agent can leave a primary running after its lease expired (split brain window).
   */
  mode: 'automatic' as const,
  device: '/dev/watchdog',
  /**
   * Seconds the watchdog fires before the lease expires: timeout = ttl - safety_margin (-1: ttl / 2).
   * Patroni's 5 is kept as asked, but with our ttl of 2 it leaves no positive timeout: whoever
   * arms the watchdog must handle that (e.g. fall back to ttl / 2), the loader does not.
   */
  safety_margin: 5,
});

export const LOG_DEFAULTS = Object.freeze({
  level: 'info' as const,
  /** Patroni's default is plain; here JSON lines unless a person is watching (a terminal). */
  type: 'auto' as const,
  /** null: log to stderr. */
  dir: null,
});
