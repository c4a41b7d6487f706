// The table of `list` and `topology` built from GET /cluster, with patronictl 3.x's columns
// (Member, Host, Role, State, TL, Lag in MB; Pending restart, Scheduled restart and Tags when
// asked with -e or when a member has one), its title and its footer. Pure.
import { leaderOf, roleTitle, isLeaderRole } from './cluster.ts';
import type { ClusterInfo, ClusterMember } from './cluster.ts';
import type { Cell } from './format.ts';

export const RIGHT_ALIGNED = ['TL', 'Lag in MB'];
const MB = 1024 * 1024;

export interface TableRows {
  readonly columns: string[];
  readonly rows: Cell[][];
}

/** "+ Cluster: demo (7345...) ": drawn into the top border of the pretty table. */
export function clusterTitle(scope: string, systemIdentifier: string | null): string {
  return `+ Cluster: ${scope}${systemIdentifier ? ` (${systemIdentifier})` : ''} `;
}

function lagCell(m: ClusterMember): Cell {
  if (isLeaderRole(m.role)) return '';
  if (typeof m.lag === 'number') return Math.round(m.lag / MB);
  return m.lag ?? '';
}

/** host, or host:port when the port is not 5432 or two members share the host (patronictl). */
function hostCell(m: ClusterMember, sharedHosts: ReadonlySet<string>): string {
  if (!m.host) return '';
  const host = m.host.includes(':') ? `[${m.host}]` : m.host;
  return m.port !== undefined && (m.port !== 5432 || sharedHosts.has(m.host)) ? `${host}:${m.port}` : m.host;
}

function scheduledRestart(m: ClusterMember): string {
  const s = m.scheduled_restart;
  if (!s) return '';
  return typeof s === 'string' ? s : s.schedule ?? '';
}

/**
 * Members in cascade order under the leader: replicas of the leader at depth 1, a replica
 * streaming from another (tag replicatefrom) under that one (patronictl: topology_sort).
 */
export function topologyOrder(cluster: ClusterInfo): Array<{ member: ClusterMember; depth: number }> {
  const leader = leaderOf(cluster);
  const replicas = cluster.members.filter((m) => m !== leader);
  const names = new Set(replicas.map((m) => m.name));
  const children = new Map<string | null, ClusterMember[]>();
  for (const m of replicas) {
    const from = m.tags?.replicatefrom;
    const parent = typeof from === 'string' && from !== m.name && names.has(from) ? from : leader?.name ?? null;
    children.set(parent, [...(children.get(parent) ?? []), m]);
  }
  const out: Array<{ member: ClusterMember; depth: number }> = [];
  const seen = new Set<string>();
  const walk = (parent: string | null, depth: number): void => {
    for (const m of children.get(parent) ?? []) {
      if (seen.has(m.name)) continue;
      seen.add(m.name);
      out.push({ member: m, depth });
      walk(m.name, depth + 1);
    }
  };
  if (leader) {
    out.push({ member: leader, depth: 0 });
    seen.add(leader.name);
  }
  walk(leader?.name ?? null, 1);
  // Replicas in a replicatefrom loop hang from nothing reachable: show them under the leader.
  for (const m of replicas) if (!seen.has(m.name)) out.push({ member: m, depth: 1 });
  return out;
}

export function memberRows(cluster: ClusterInfo, opts: { extended: boolean; topology: boolean; withCluster: boolean }): TableRows {
  const hostCount = new Map<string, number>();
  for (const m of cluster.members) if (m.host) hostCount.set(m.host, (hostCount.get(m.host) ?? 0) + 1);
  const shared = new Set([...hostCount].filter(([, n]) => n > 1).map(([h]) => h));
  const ordered = opts.topology ? topologyOrder(cluster) : cluster.members.map((member) => ({ member, depth: 0 }));

  const pending = opts.extended || cluster.members.some((m) => m.pending_restart);
  const scheduled = opts.extended || cluster.members.some((m) => scheduledRestart(m) !== '');
  const tags = opts.extended || cluster.members.some((m) => m.tags && Object.keys(m.tags).length > 0);
  const columns = [
    ...(opts.withCluster ? ['Cluster'] : []),
    'Member', 'Host', 'Role', 'State', 'TL', 'Lag in MB',
    ...(pending ? ['Pending restart'] : []),
    ...(scheduled ? ['Scheduled restart'] : []),
    ...(tags ? ['Tags'] : []),
  ];
  const rows = ordered.map(({ member: m, depth }) => [
    ...(opts.withCluster ? [cluster.scope] : []),
    depth > 0 ? `${'  '.repeat(depth - 1)}+ ${m.name}` : m.name,
    hostCell(m, shared),
    roleTitle(m.role),
    m.state ?? '',
    m.timeline ?? '',
    lagCell(m),
    ...(pending ? [m.pending_restart ? '*' : ''] : []),
    ...(scheduled ? [scheduledRestart(m)] : []),
    ...(tags ? [m.tags ?? {}] : []),
  ]);
  return { columns, rows };
}

/** The lines under the table: maintenance mode and a scheduled switchover. */
export function clusterFooter(cluster: ClusterInfo): string[] {
  const lines: string[] = [];
  if (cluster.pause) lines.push(' Maintenance mode: on');
  const s = cluster.scheduled_switchover;
  if (s?.at) {
    lines.push(` Switchover scheduled at: ${s.at}`);
    if (s.from) lines.push(`                    from: ${s.from}`);
    if (s.to) lines.push(`                      to: ${s.to}`);
  }
  return lines;
}
