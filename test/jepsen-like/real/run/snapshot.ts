// One look at the cluster through the control links: each node's PostgreSQL role, timeline and
// WAL receiver (by SQL), its Raft view (/v1/status, member ids turned into node names) and the
// leader key. The waits before and after the faults (readiness.ts) judge these snapshots; the
// observers (observers.ts) sample /v1/status through raftStatus() and probe the leader key too.
import type { AgentCluster } from '../../../support/agents.ts';
import type { ConvergenceSnapshot, NodeSnapshot } from '../checkers.ts';

export const LEADER_KEY = '/service/test/leader';

/** What a snapshot needs of the network lab: the address a node has on the cluster network. */
export interface LabLike {
  clusterIp(i: number): string;
}

const SNAPSHOT_SQL = `select pg_is_in_recovery() as recovery,
  case when pg_is_in_recovery() then null else pg_walfile_name(pg_current_wal_lsn()) end as walfile,
  r.status, r.sender_host, r.sender_port, r.received_tli
  from (select 1) one left join pg_stat_wal_receiver r on true`;

export async function takeSnapshot(cluster: AgentCluster, lab: LabLike, nodes: readonly string[], now: () => number): Promise<ConvergenceSnapshot> {
  const ids = raftIds(cluster, lab, nodes);
  const snap = await Promise.all(nodes.map(async (name, i): Promise<NodeSnapshot> => {
    const node = cluster.node(name);
    const address = `${lab.clusterIp(node.labIndex ?? i)}:${node.pgPort}`;
    const [res, raft] = await Promise.all([cluster.trySql(name, SNAPSHOT_SQL), raftStatus(cluster, name)]);
    const raftView = raft === null ? null : { role: raft.role, term: raft.term, leader: raft.leader === null ? null : (ids.get(raft.leader) ?? raft.leader), voters: raft.voters.map((v) => ids.get(v) ?? v) };
    const row = res?.rows[0] as { recovery: boolean; walfile: string | null; status: string | null; sender_host: string | null; sender_port: number | null; received_tli: number | null } | undefined;
    if (!row) return { name, role: null, timeline: null, address, receiver: null, raft: raftView };
    if (!row.recovery) return { name, role: 'primary', timeline: parseInt(row.walfile!.slice(0, 8), 16), address, receiver: null, raft: raftView };
    const receiver = row.status === null ? null : { status: row.status, upstream: `${row.sender_host}:${row.sender_port}` };
    return { name, role: 'replica', timeline: row.received_tli, address, receiver, raft: raftView };
  }));
  let leaderKey: string | null = null;
  try {
    leaderKey = await cluster.getKey(LEADER_KEY);
  } catch {
    leaderKey = null;
  }
  return { at: now(), nodes: snap, leaderKey };
}

/** Raft member id ("clusterIp:raftPort") → node name. */
function raftIds(cluster: AgentCluster, lab: LabLike, nodes: readonly string[]): Map<string, string> {
  return new Map(nodes.map((n, i) => [`${lab.clusterIp(cluster.node(n).labIndex ?? i)}:${cluster.node(n).raftPort}`, n]));
}

interface RaftStatusBody {
  id: string;
  role: string;
  term: number;
  leader: string | null;
  voters: string[];
}

export async function raftStatus(cluster: AgentCluster, name: string): Promise<RaftStatusBody | null> {
  return (await cluster.raftStatus(name)) as RaftStatusBody | null;
}
