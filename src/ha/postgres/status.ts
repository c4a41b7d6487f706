// One snapshot of a running server in one round trip, and its mapping onto PgStatus.
//
// The timeline of a primary is read from the name of the WAL segment it writes to: right after a
// promotion pg_control still shows the old timeline until the next checkpoint completes (which is
// why Patroni checkpoints after promoting), but the insert position is on the new one at once. A
// replica reports the timeline its WAL replay is on when the controller could ask (IDENTIFY_SYSTEM,
// while not streaming), else the one its WAL receiver last received, else its last restartpoint's.
import { parseLsnOrNull } from './lsn.ts';
import type { PgStatus } from './types.ts';

export const STATUS_SQL = `
SELECT r.in_recovery,
       CASE WHEN r.in_recovery THEN NULL ELSE pg_catalog.pg_current_wal_lsn()::text END AS current_lsn,
       CASE WHEN r.in_recovery THEN NULL ELSE pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()) END AS current_walfile,
       pg_catalog.pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_catalog.pg_last_wal_replay_lsn()::text AS replay_lsn,
       (SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()) AS checkpoint_tli,
       w.status AS receiver_status,
       w.received_tli,
       w.sender_host,
       w.sender_port,
       pg_catalog.current_setting('server_version_num')::int AS server_version,
       pg_catalog.pg_postmaster_start_time()::text AS start_time,
       EXISTS (SELECT 1 FROM pg_catalog.pg_settings WHERE pending_restart) AS pending_restart
  FROM (SELECT pg_catalog.pg_is_in_recovery() AS in_recovery) r
  LEFT JOIN pg_catalog.pg_stat_wal_receiver w ON true`;

export interface StatusRow {
  in_recovery: boolean;
  current_lsn: string | null;
  current_walfile: string | null;
  receive_lsn: string | null;
  replay_lsn: string | null;
  checkpoint_tli: number | null;
  receiver_status: string | null;
  received_tli: number | null;
  sender_host: string | null;
  sender_port: number | null;
  server_version: number;
  start_time: string | null;
  pending_restart: boolean;
}

export const NOT_RUNNING: PgStatus = {
  running: false,
  starting: false,
  role: null,
  timeline: null,
  walPosition: null,
  receivedLsn: null,
  replayedLsn: null,
  replicationState: null,
  upstreamHost: null,
  upstreamPort: null,
  serverVersion: null,
  postmasterStartTime: null,
  pendingRestart: false,
};

export function statusFromRow(row: StatusRow, replayTimeline: number | null = null): PgStatus {
  const common = {
    running: true,
    starting: false,
    serverVersion: row.server_version,
    postmasterStartTime: row.start_time,
    pendingRestart: row.pending_restart,
  };
  if (!row.in_recovery) {
    return {
      ...NOT_RUNNING,
      ...common,
      role: 'primary',
      // The first 8 hex digits of a WAL file name are its timeline.
      timeline: row.current_walfile ? parseInt(row.current_walfile.slice(0, 8), 16) : row.checkpoint_tli,
      walPosition: parseLsnOrNull(row.current_lsn),
    };
  }
  const received = parseLsnOrNull(row.receive_lsn);
  const replayed = parseLsnOrNull(row.replay_lsn);
  const positions = [received, replayed].filter((p): p is number => p !== null);
  const streaming = row.receiver_status === 'streaming';
  return {
    ...NOT_RUNNING,
    ...common,
    role: 'replica',
    timeline: replayTimeline ?? (row.received_tli !== null && row.received_tli > 0 ? row.received_tli : row.checkpoint_tli),
    walPosition: positions.length > 0 ? Math.max(...positions) : null,
    receivedLsn: received,
    replayedLsn: replayed,
    replicationState: streaming ? 'streaming' : 'in archive recovery',
    upstreamHost: row.sender_host,
    upstreamPort: row.sender_port,
  };
}
