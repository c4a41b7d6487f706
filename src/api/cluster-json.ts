// The body of GET /cluster in Patroni's shape (Patroni utils.py: cluster_as_json; reference §1.2),
// built from one store view. Pure. `conclavectl list` reads exactly this shape: change it only
// together with the CLI.
import type { ClusterView, JsonObject, MemberView } from '../ha/cluster-view.ts';
import { syncStandbys } from '../ha/decide-sync.ts';
import { lastKnownPrimaryPosition } from '../ha/decide-race.ts';
import { formatLsn } from '../ha/postgres/lsn.ts';

export interface ClusterJsonOptions {
  scope: string;
  /** synchronous_mode is on: only then does the `sync` key make a member a sync_standby (Patroni). */
  synchronousMode: boolean;
  paused: boolean;
  /**
   * A restart scheduled on the member answering, kept in its memory: shown on its entry when its
   * member key does not carry one.
   */
  local?: { name: string; scheduledRestart: JsonObject | null };
}

const MEMBER_FIELDS = ['timeline', 'pending_restart', 'pending_restart_reason', 'scheduled_restart', 'tags'] as const;

const position = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : null);

/** Where a member's PostgreSQL listens, from its conn_url ("postgres://host:port/postgres"). */
export function hostPortOf(connUrl: unknown): { host: string; port: number | null } | null {
  if (typeof connUrl !== 'string') return null;
  try {
    const url = new URL(connUrl);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (host === '') return null;
    return { host, port: url.port === '' ? null : Number(url.port) };
  } catch {
    return null;
  }
}

/**
 * The position replicas are measured against: the leader's own latest report, from its member key
 * or the `status` key, whichever is further (both lag behind the primary by up to a cycle).
 */
export function clusterPosition(view: ClusterView): number | null {
  const leader = view.leader ? view.members.find((m) => m.name === view.leader!.name) : undefined;
  const candidates = [position(leader?.data.xlog_location), lastKnownPrimaryPosition(view)].filter((p): p is number => p !== null);
  return candidates.length > 0 ? Math.max(...candidates) : null;
}

function memberJson(m: MemberView, role: string, isLeader: boolean, clusterLsn: number | null, opts: ClusterJsonOptions): JsonObject {
  const d = m.data;
  // Non-leaders show how they replicate ("streaming"), the leader how it runs (Patroni).
  const replicationState = typeof d.replication_state === 'string' && d.replication_state !== '' ? d.replication_state : null;
  const state = (!isLeader ? replicationState : null) ?? (typeof d.state === 'string' ? d.state : '');
  const out: JsonObject = { name: m.name, role, state, api_url: typeof d.api_url === 'string' ? d.api_url : null };
  const hp = hostPortOf(d.conn_url);
  if (hp) {
    out.host = hp.host;
    if (hp.port !== null) out.port = hp.port;
  }
  for (const f of MEMBER_FIELDS) if (d[f] !== undefined) out[f] = d[f];
  if (out.scheduled_restart === undefined && opts.local?.name === m.name && opts.local.scheduledRestart) out.scheduled_restart = opts.local.scheduledRestart;
  if (!isLeader) {
    // Patroni 4.1: each of the three positions with its lag; "unknown" when not reported.
    for (const [prefix, key] of [['receive_', 'receive_lsn'], ['replay_', 'replay_lsn'], ['', 'xlog_location']] as const) {
      const lsn = position(d[key]);
      if (lsn === null || clusterLsn === null) {
        out[`${prefix}lag`] = 'unknown';
        out[`${prefix}lsn`] = lsn === null ? 'unknown' : formatLsn(lsn);
      } else {
        out[`${prefix}lag`] = Math.max(0, clusterLsn - lsn);
        out[`${prefix}lsn`] = formatLsn(lsn);
      }
    }
  }
  return out;
}

export function clusterJson(view: ClusterView, opts: ClusterJsonOptions): JsonObject {
  const leaderName = view.leader?.name ?? null;
  const sync = new Set(opts.synchronousMode && leaderName !== null ? syncStandbys(view, leaderName) : []);
  const clusterLsn = clusterPosition(view);
  // Witnesses write no member key, so they are not listed; members come sorted by name.
  const members = view.members.map((m) => {
    const isLeader = m.name === leaderName;
    const role = isLeader ? 'leader' : sync.has(m.name) ? 'sync_standby' : 'replica';
    return memberJson(m, role, isLeader, clusterLsn, opts);
  });
  const out: JsonObject = { members, scope: opts.scope };
  if (opts.paused) out.pause = true;
  const failover = view.failover?.value;
  if (failover && typeof failover.scheduled_at === 'string' && failover.scheduled_at !== '') {
    const switchover: JsonObject = { at: failover.scheduled_at };
    if (typeof failover.leader === 'string' && failover.leader !== '') switchover.from = failover.leader;
    if (typeof failover.member === 'string' && failover.member !== '') switchover.to = failover.member;
    out.scheduled_switchover = switchover;
  }
  return out;
}
