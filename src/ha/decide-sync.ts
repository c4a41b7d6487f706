// Synchronous replication (Patroni's synchronous_mode, non-quorum), the primary's side. Pure.
//
// The invariant that makes failover lossless: every standby named in the `sync` key is already
// a synchronous standby in PostgreSQL, so whoever the race may promote (the leader and the
// `sync` members only, see decide-race.ts) holds every acknowledged commit. Hence the order:
// a standby leaves the `sync` key before it leaves synchronous_standby_names, and enters the key
// only after PostgreSQL reports it synchronous (pg_stat_replication.sync_state).
import type { Action } from './decide-types.ts';
import type { ClusterView } from './cluster-view.ts';

export interface ReplicationInfo {
  readonly name: string;
  readonly state: string;
  readonly syncState: string;
  readonly flushLsn: number | null;
}

export interface SyncSettings {
  readonly mode: boolean;
  readonly strict: boolean;
  readonly nodeCount: number;
}

/** What synchronous_standby_names is set to in strict mode when no standby qualifies: nobody, so commits wait. */
export const STRICT_PLACEHOLDER = '__conclave_strict_sync_placeholder__';

/** The `sync` key's standbys when it names `leader` as its leader, else []. */
export function syncStandbys(cluster: ClusterView, leader?: string): string[] {
  const v = cluster.sync?.value;
  if (!v || (leader !== undefined && v.leader !== leader)) return [];
  return typeof v.sync_standby === 'string' && v.sync_standby !== '' ? v.sync_standby.split(',').map((s) => s.trim()).filter(Boolean) : [];
}

/** synchronous_standby_names for `names` requiring `count` of them (PostgreSQL's FIRST n (...) syntax). */
export function standbyNamesSetting(names: readonly string[], count: number): string {
  const quoted = names.map((n) => `"${n.replace(/"/g, '""')}"`);
  return names.length === 1 && count === 1 ? quoted[0] : `FIRST ${count} (${quoted.join(', ')})`;
}

/**
 * The primary's actions for this cycle: at most one compare-and-set of the `sync` key (shrinking
 * to the standbys still chosen and confirmed, or growing by newly confirmed ones), then the
 * PostgreSQL setting for the standbys chosen now.
 */
export function syncActions(me: string, cluster: ClusterView, replication: readonly ReplicationInfo[] | null, settings: SyncSettings, managedNames: string | null): Action[] {
  if (!settings.mode) {
    const actions: Action[] = [];
    if (cluster.sync) actions.push({ type: 'writeSync', value: null, revision: cluster.sync.revision });
    if (managedNames !== null) actions.push({ type: 'setSyncNames', value: null });
    return actions;
  }
  if (replication === null) return [];
  const current = syncStandbys(cluster, me);
  const nosync = new Set(cluster.members.filter((m) => (m.data.tags as { nosync?: unknown } | undefined)?.nosync === true).map((m) => m.name));
  const known = new Set(cluster.members.map((m) => m.name));
  const isCurrent = (r: ReplicationInfo): boolean => current.includes(r.name) || r.syncState === 'sync';
  const candidates = replication
    .filter((r) => r.state === 'streaming' && known.has(r.name) && !nosync.has(r.name) && r.name !== me)
    // The ones already synchronous (in the key or in PostgreSQL) first: changing the synchronous
    // standby for a few bytes of lead would churn both lists for nothing.
    .sort((a, b) => Number(isCurrent(b)) - Number(isCurrent(a)) || (b.flushLsn ?? 0) - (a.flushLsn ?? 0));
  const picked = candidates.slice(0, settings.nodeCount).map((r) => r.name);
  const confirmed = new Set(replication.filter((r) => r.syncState === 'sync').map((r) => r.name));

  const actions: Action[] = [];
  // Strict mode never empties the key: with no standby at all, the last ones named keep their
  // right to be promoted (they hold every commit acknowledged so far; no commit succeeds now).
  const next = settings.strict && picked.length === 0 ? current : picked.filter((n) => confirmed.has(n));
  const leaderIsMe = cluster.sync?.value.leader === me;
  if (!leaderIsMe || next.join(',') !== current.join(',')) {
    actions.push({ type: 'writeSync', value: { leader: me, sync_standby: next.length > 0 ? next.join(',') : null }, revision: cluster.sync?.revision ?? 0 });
  }
  // Strict: always nodeCount required, the missing ones stood in for by a name no standby has.
  const padded = settings.strict ? [...picked, ...Array.from({ length: Math.max(0, settings.nodeCount - picked.length) }, (_, i) => (i === 0 ? STRICT_PLACEHOLDER : `${STRICT_PLACEHOLDER}_${i}`))] : picked;
  const setting = padded.length > 0 ? standbyNamesSetting(padded, settings.strict ? settings.nodeCount : Math.min(settings.nodeCount, padded.length)) : '';
  if (setting !== managedNames) actions.push({ type: 'setSyncNames', value: setting });
  return actions;
}
