// What the HA loop needs from PostgreSQL, and nothing more (STYLE.md: the HA logic talks to
// PostgreSQL only through one controller). The real implementation is PostgresController; the
// decision logic sees only the PgStatus snapshots it produces.

/** Where a server can be reached for replication and queries. */
export interface PgEndpoint {
  readonly host: string;
  readonly port: number;
}

/** From pg_controldata, readable whether or not PostgreSQL runs. */
export interface ControlData {
  readonly systemIdentifier: string;
  /** "in production", "shut down", "shut down in recovery", "in crash recovery", "in archive recovery", ... */
  readonly state: string;
  /** "Latest checkpoint's TimeLineID". */
  readonly timeline: number;
  /** "Latest checkpoint location" as a byte position. */
  readonly checkpointLsn: number;
  readonly walLogHints: boolean;
  readonly dataChecksums: boolean;
}

/** One snapshot of the local PostgreSQL, taken once per HA cycle. */
export interface PgStatus {
  /** Accepting connections. */
  readonly running: boolean;
  /** True while a postmaster process exists but does not accept connections yet (starting/stopping). */
  readonly starting: boolean;
  readonly role: 'primary' | 'replica' | null;
  readonly timeline: number | null;
  /** Primary: pg_current_wal_lsn(). Replica: max(received, replayed). Byte positions. */
  readonly walPosition: number | null;
  readonly receivedLsn: number | null;
  readonly replayedLsn: number | null;
  /** pg_stat_wal_receiver.status === 'streaming' → 'streaming'; a replica not streaming → 'in archive recovery'. */
  readonly replicationState: 'streaming' | 'in archive recovery' | null;
  /** The upstream the WAL receiver is connected to, if any. */
  readonly upstreamHost: string | null;
  readonly upstreamPort: number | null;
  /** server_version_num, e.g. 150004. */
  readonly serverVersion: number | null;
  readonly postmasterStartTime: string | null;
  readonly pendingRestart: boolean;
}

/** How a stop signals the postmaster: smart = SIGTERM, fast = SIGINT, immediate = SIGQUIT. */
export type StopMode = 'smart' | 'fast' | 'immediate';

export interface StartOptions {
  readonly role: 'primary' | 'replica';
  /** Replicas: whom to stream from (null: no upstream yet, just a read-only standby). */
  readonly upstream: PgEndpoint | null;
  /** Replicas: the physical slot on the upstream (Patroni names it after the member). */
  readonly slotName: string | null;
}
