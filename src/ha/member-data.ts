// What a member publishes about itself: the JSON of its `members/<name>` key and the body of
// GET /patroni, in Patroni's shapes (reference §1.2, §4) so that tools written for Patroni read
// them. Pure: built from the agent's config and the last PostgreSQL status.
import { raftMemberId } from './raft-membership.ts';
import type { AgentConfig, DatabaseAgentConfig } from './config/types.ts';
import type { PgStatus } from './postgres/types.ts';
import type { JsonObject } from './cluster-view.ts';
import type { PeerReport } from './decide-types.ts';

export const CONCLAVE_VERSION = '0.2.0';

/** Patroni's member states, as far as Conclave produces them. */
export type MemberState = 'running' | 'starting' | 'stopped' | 'stopping' | 'creating replica' | 'initializing new cluster' | 'running custom bootstrap script' | 'start failed';

export interface LocalState {
  readonly pg: PgStatus;
  readonly state: MemberState;
  /** false between a promotion and the checkpoint after it (rewinders wait for it). */
  readonly checkpointAfterPromote: boolean | null;
  readonly isLeader: boolean;
  /** Command-line parameters changed since the postmaster started (PostgreSQL cannot report these). */
  readonly pendingRestartReasons: readonly string[];
}

const hostPort = (h: { host: string; port: number }): string => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);

export function connUrl(config: DatabaseAgentConfig): string {
  return `postgres://${hostPort(config.postgresql.connect_address)}/postgres`;
}

export function apiUrl(config: AgentConfig): string {
  return `${config.restapi.certfile ? 'https' : 'http'}://${hostPort(config.restapi.connect_address)}/patroni`;
}

/** Patroni's switches that mean nothing when off: published only when on, as Patroni does. */
const SWITCH_TAGS = new Set(['nofailover', 'noloadbalance', 'clonefrom', 'nosync', 'nostream']);

/** The tags a member publishes: as configured, without switches that are off. */
export function publishedTags(all: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(all).filter(([k, v]) => !SWITCH_TAGS.has(k) || v === true));
}

/** The member key's JSON. */
export function memberData(config: DatabaseAgentConfig, local: LocalState): JsonObject {
  const { pg } = local;
  const data: JsonObject = {
    conn_url: connUrl(config),
    api_url: apiUrl(config),
    state: local.state,
    role: pg.role ?? 'uninitialized',
    version: CONCLAVE_VERSION,
    // Conclave's own: the member's Raft id, by which an operator's removal takes it out of Raft.
    raft_id: raftMemberId(config),
  };
  if (pg.role === 'primary' && pg.walPosition !== null) data.xlog_location = pg.walPosition;
  if (pg.role === 'replica') {
    if (pg.receivedLsn !== null) data.receive_lsn = pg.receivedLsn;
    if (pg.replayedLsn !== null) data.replay_lsn = pg.replayedLsn;
    if (pg.walPosition !== null) data.xlog_location = pg.walPosition;
    if (pg.replicationState) data.replication_state = pg.replicationState;
  }
  if (pg.timeline !== null) data.timeline = pg.timeline;
  const tags = publishedTags(config.tags.all);
  if (Object.keys(tags).length > 0) data.tags = tags;
  if (pg.pendingRestart || local.pendingRestartReasons.length > 0) data.pending_restart = true;
  if (local.pendingRestartReasons.length > 0) data.pending_restart_reason = local.pendingRestartReasons.join('; ');
  if (local.checkpointAfterPromote === false) data.checkpoint_after_promote = false;
  return data;
}

/** What GET /patroni shows beyond the agent's config and PostgreSQL's status. */
export interface StatusExtra {
  clusterUnlocked: boolean;
  systemIdentifier: string | null;
  lastReason: string | null;
  /** The dynamic config's pause flag (Patroni shows `pause: true` only when paused). */
  paused?: boolean;
  /** Wall-clock ms of the last successful store read, shown in unix seconds. */
  storeReadAt?: number | null;
  /** pg_stat_replication rows on a primary, in Patroni's field names. */
  replication?: readonly Record<string, unknown>[] | null;
  /** Named in the `sync` key (synchronous_mode). */
  syncStandby?: boolean;
}

/** The body of GET /patroni (and of every health check). */
export function patroniStatus(config: AgentConfig, local: LocalState, extra: StatusExtra): JsonObject {
  const { pg } = local;
  const body: JsonObject = {
    state: local.state,
    postmaster_start_time: pg.postmasterStartTime,
    role: pg.role ?? 'uninitialized',
    server_version: pg.serverVersion,
    timeline: pg.timeline,
    cluster_unlocked: extra.clusterUnlocked,
    database_system_identifier: extra.systemIdentifier,
    patroni: { version: CONCLAVE_VERSION, scope: config.scope, name: config.name, product: 'Conclave' },
    tags: publishedTags(config.tags.all),
    conclave: { last_decision: extra.lastReason },
  };
  if (pg.role === 'primary') body.xlog = { location: pg.walPosition };
  else if (pg.role === 'replica') {
    body.xlog = { received_location: pg.receivedLsn, replayed_location: pg.replayedLsn, paused: false };
    body.replication_state = pg.replicationState;
  }
  if (pg.role === 'primary' && extra.replication && extra.replication.length > 0) body.replication = extra.replication;
  if (pg.role === 'replica' && extra.syncStandby) body.sync_standby = true;
  if (extra.paused) body.pause = true;
  if (extra.storeReadAt != null) body.dcs_last_seen = Math.floor(extra.storeReadAt / 1000);
  if (pg.pendingRestart || local.pendingRestartReasons.length > 0) body.pending_restart = true;
  if (local.pendingRestartReasons.length > 0) body.pending_restart_reason = local.pendingRestartReasons.join('; ');
  return body;
}

/** Reads a peer's GET /patroni body into what the race compares; tolerant of missing fields. */
export function peerReportFrom(name: string, body: unknown): PeerReport {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const xlog = (typeof b.xlog === 'object' && b.xlog !== null ? b.xlog : {}) as Record<string, unknown>;
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const role = b.role === 'primary' || b.role === 'master' ? 'primary' : b.role === 'replica' ? 'replica' : null;
  const received = num(xlog.received_location);
  const replayed = num(xlog.replayed_location);
  const walPosition = role === 'primary' ? num(xlog.location) : received === null && replayed === null ? null : Math.max(received ?? 0, replayed ?? 0);
  const tags = (typeof b.tags === 'object' && b.tags !== null ? b.tags : {}) as Record<string, unknown>;
  const priority = num(tags.failover_priority);
  return {
    name,
    reachable: true,
    role,
    walPosition,
    timeline: num(b.timeline),
    nofailover: tags.nofailover === true || tags.nofailover === 'true',
    failoverPriority: priority ?? 1,
  };
}
