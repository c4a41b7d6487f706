// The shapes of the REST answers conclavectl reads (Patroni's GET /cluster and /history, reference
// §1.2) and the small pure decisions made on them: role names, which members a --role selects,
// the REST base address of a member.

export interface ClusterMember {
  readonly name: string;
  /** leader | standby_leader | sync_standby | quorum_standby | replica (older agents: master, primary). */
  readonly role: string;
  readonly state?: string;
  readonly api_url?: string;
  readonly host?: string;
  readonly port?: number;
  readonly timeline?: number;
  /** Bytes behind the leader, or "unknown"; absent on the leader. */
  readonly lag?: number | string;
  readonly tags?: Readonly<Record<string, unknown>>;
  readonly pending_restart?: boolean;
  readonly scheduled_restart?: { readonly schedule?: string } | string;
}

export interface ClusterInfo {
  readonly scope: string;
  readonly members: readonly ClusterMember[];
  readonly pause?: boolean;
  readonly scheduled_switchover?: { readonly at?: string; readonly from?: string; readonly to?: string };
}

/** One GET /history entry: [timeline, lsn, reason, timestamp, new_leader] (the last two may be missing). */
export type HistoryEntry = readonly [number, number | string, string, string?, string?];

const ROLE_TITLES: Readonly<Record<string, string>> = {
  leader: 'Leader',
  master: 'Leader',
  primary: 'Leader',
  standby_leader: 'Standby Leader',
  sync_standby: 'Sync Standby',
  quorum_standby: 'Quorum Standby',
  replica: 'Replica',
};

/** patronictl's role column. */
export function roleTitle(role: string): string {
  return ROLE_TITLES[role] ?? role.split('_').map((w) => (w ? w[0].toUpperCase() + w.slice(1) : w)).join(' ');
}

export const isLeaderRole = (role: string): boolean => role === 'leader' || role === 'standby_leader' || role === 'master' || role === 'primary';

export function leaderOf(cluster: ClusterInfo): ClusterMember | null {
  return cluster.members.find((m) => isLeaderRole(m.role)) ?? null;
}

/** Whether a member has the role a `-r/--role` option names (patronictl's spellings). */
export function hasRole(m: ClusterMember, role: string): boolean {
  switch (role) {
    case 'any': return true;
    case 'leader': return isLeaderRole(m.role);
    case 'primary':
    case 'master': return m.role === 'leader' || m.role === 'master' || m.role === 'primary';
    case 'standby-leader': return m.role === 'standby_leader';
    case 'replica':
    case 'standby': return !isLeaderRole(m.role);
    default: return false;
  }
}

/**
 * The members a command acts on: the named ones (each must exist), else all; then those of
 * `role`. A name that is not a member is an error, as in patronictl.
 */
export function selectMembers(cluster: ClusterInfo, names: readonly string[], role: string | null): { members: ClusterMember[]; unknown: string[] } {
  const unknown = names.filter((n) => !cluster.members.some((m) => m.name === n));
  const named = names.length > 0 ? cluster.members.filter((m) => names.includes(m.name)) : [...cluster.members];
  return { members: named.filter((m) => hasRole(m, role ?? 'any')), unknown };
}

/**
 * The REST base address of a member from its api_url ("http://h:p/patroni" → "http://h:p").
 * `scheme` upgrades to https when this configuration says the API speaks TLS.
 */
export function apiBase(apiUrl: string, scheme: 'http' | 'https'): string | null {
  try {
    const u = new URL(apiUrl);
    return `${scheme === 'https' ? 'https:' : u.protocol}//${u.host}`;
  } catch {
    return null;
  }
}

/** "host=h port=p" (what `patronictl dsn` prints). */
export function dsnOf(m: ClusterMember): string | null {
  if (!m.host || !m.port) return null;
  return `host=${m.host} port=${m.port}`;
}
