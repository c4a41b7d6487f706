// Who may take a free leader lock (Patroni ha.py: is_healthiest_node / _is_healthiest_node, in
// our words). Pure. A member races only if nothing it can see is a better choice; two equally good
// members both race and the store's create-only write picks one.
import type { ClusterView, MemberView } from './cluster-view.ts';
import type { DecideInput, PeerReport } from './decide-types.ts';
import { syncStandbys } from './decide-sync.ts';

export type RaceVerdict = { readonly healthiest: true } | { readonly healthiest: false; readonly why: string };

/** Our WAL position as the race compares it: the primary's write position, a replica's furthest of received and replayed. */
export function ownPosition(input: DecideInput): number | null {
  return input.me.pg.walPosition;
}

/** The timeline the cluster is on, from `history` (the last switch's timeline + 1), or null. */
export function clusterTimeline(cluster: ClusterView): number | null {
  const history = cluster.history?.value;
  if (!history || history.length === 0) return null;
  const last = history[history.length - 1];
  if (!Array.isArray(last) || typeof last[0] !== 'number') return null;
  return last[0] + 1;
}

/** The last primary position the leader published in `status` (optime), or null. */
export function lastKnownPrimaryPosition(cluster: ClusterView): number | null {
  const optime = cluster.status?.value.optime;
  return typeof optime === 'number' && Number.isFinite(optime) ? optime : null;
}

export function mayFailOver(nofailover: boolean, priority: number): boolean {
  // Patroni 3.2+: a priority of 0 or less means the same as nofailover.
  return !nofailover && priority > 0;
}

/** A member's own tags (from its member key) allow it to be promoted. */
export function memberMayFailOver(m: MemberView): boolean {
  const tags = (m.data.tags ?? {}) as { nofailover?: unknown; failover_priority?: unknown };
  const priority = typeof tags.failover_priority === 'number' ? tags.failover_priority : 1;
  return mayFailOver(tags.nofailover === true, priority);
}

/** A running replica whose tags allow its promotion: a valid switchover target. */
export function promotableReplica(m: MemberView): boolean {
  return memberMayFailOver(m) && m.data.state === 'running' && m.data.role === 'replica';
}

export function isHealthiest(input: DecideInput): RaceVerdict {
  const { me, cluster, settings } = input;
  if (!cluster) return { healthiest: false, why: 'the store is unavailable' };
  if (!mayFailOver(me.nofailover, me.failoverPriority)) return { healthiest: false, why: 'tagged nofailover' };
  const pos = ownPosition(input);
  if (pos === null) return { healthiest: false, why: 'my WAL position is unknown' };

  // A running primary with its own data is the best choice by definition, unless it is on an old
  // timeline (a primary that was failed over away from and came back before being rewound).
  const tl = clusterTimeline(cluster);
  if (me.pg.role === 'primary') {
    if (tl !== null && me.pg.timeline !== null && me.pg.timeline < tl) return { healthiest: false, why: `I am a primary on timeline ${me.pg.timeline}, behind the cluster's ${tl}` };
    return { healthiest: true };
  }

  // A requested switchover or failover (the `failover` key): the leader being switched away from
  // never races, and a named candidate races whatever its lag (the operator chose it).
  const request = failoverRequest(cluster);
  if (request?.leader === me.name) return { healthiest: false, why: `I am the former leader of a requested ${request.kind}` };
  const candidate = request?.candidate ?? null;
  if (candidate === me.name) {
    const primary = input.peers.find((p) => p.reachable && p.role === 'primary');
    return primary ? { healthiest: false, why: `${primary.name} is still running as primary` } : { healthiest: true };
  }

  // Synchronous mode: only the standbys named in `sync` hold every acknowledged commit, so only
  // they (and the former leader) may race, and only against each other (Patroni: sync members).
  const syncMembers = settings.sync.mode ? syncStandbys(cluster) : [];
  const syncLeader = typeof cluster.sync?.value.leader === 'string' ? cluster.sync.value.leader : null;
  const restricted = syncMembers.length > 0 ? new Set([...syncMembers, ...(syncLeader ? [syncLeader] : [])]) : null;
  if (restricted && !restricted.has(me.name)) return { healthiest: false, why: `I am not a synchronous standby (sync: ${syncMembers.join(',')})` };

  const optime = lastKnownPrimaryPosition(cluster);
  if (optime !== null && optime - pos > settings.maximumLagOnFailover) {
    return { healthiest: false, why: `I am ${optime - pos} bytes behind the last known primary position, more than maximum_lag_on_failover (${settings.maximumLagOnFailover})` };
  }
  if (settings.checkTimeline && tl !== null && me.pg.timeline !== null && me.pg.timeline < tl) {
    return { healthiest: false, why: `my timeline ${me.pg.timeline} is behind the cluster's ${tl}` };
  }

  // A candidate named by an operator wins over the position rule while it is reachable and eligible.
  if (candidate !== null) {
    const peer = input.peers.find((p) => p.name === candidate);
    if (peer?.reachable && mayFailOver(peer.nofailover, peer.failoverPriority)) return { healthiest: false, why: `${candidate} is the requested failover candidate` };
  }

  for (const peer of input.peers) {
    if (restricted && !restricted.has(peer.name) && peer.role !== 'primary') continue;
    const better = betterPeer(peer, pos, me.failoverPriority, candidate === me.name);
    if (better) return { healthiest: false, why: better };
  }
  return { healthiest: true };
}

/** Why `peer` is a better choice than us, or null. Unreachable peers are left out (Patroni). */
function betterPeer(peer: PeerReport, pos: number, priority: number, iAmCandidate: boolean): string | null {
  if (!peer.reachable) return null;
  if (peer.role === 'primary') return `${peer.name} is still running as primary`;
  if (iAmCandidate || !mayFailOver(peer.nofailover, peer.failoverPriority) || peer.walPosition === null) return null;
  if (peer.walPosition > pos) return `${peer.name} is further ahead (${peer.walPosition} > ${pos})`;
  if (peer.walPosition === pos && peer.failoverPriority > priority) return `${peer.name} is as far ahead and has a higher failover_priority (${peer.failoverPriority} > ${priority})`;
  return null;
}

export interface FailoverRequest {
  readonly kind: 'switchover' | 'failover';
  /** The leader to switch away from (switchover), or null. */
  readonly leader: string | null;
  /** The member to promote, or null for the best one. */
  readonly candidate: string | null;
  /** Milliseconds since the epoch, or null for "now". */
  readonly scheduledAt: number | null;
  /** scheduled_at as written. */
  readonly scheduledAtText: string | null;
}

/** The `failover` key as Patroni writes it: {leader?, member? (the candidate), scheduled_at?}. */
export function failoverRequest(cluster: ClusterView): FailoverRequest | null {
  const v = cluster.failover?.value;
  if (!v) return null;
  const str = (x: unknown): string | null => (typeof x === 'string' && x !== '' ? x : null);
  const leader = str(v.leader);
  const candidate = str(v.member) ?? str(v.candidate);
  if (leader === null && candidate === null) return null;
  const at = str(v.scheduled_at);
  const scheduledAt = at === null ? null : Date.parse(at);
  // Date.parse reads no clock: a pure function of the text.
  return { kind: leader !== null ? 'switchover' : 'failover', leader, candidate, scheduledAt: Number.isFinite(scheduledAt) ? scheduledAt : null, scheduledAtText: at };
}
