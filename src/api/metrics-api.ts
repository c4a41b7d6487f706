// GET /metrics: Prometheus text with Patroni's patroni_* names and meanings (Patroni api.py
// do_GET_metrics; reference §1.2), so existing dashboards and alerts work, and conclave_raft_* for
// the health of the embedded consensus group (what etcd's own metrics would tell a Patroni user).
// Reads PostgreSQL once per scrape, as Patroni does, and nothing from the store: a scrape must
// answer while the store has no quorum, when it matters most.
import type { FastifyInstance } from 'fastify';
import type { MemberState } from '../ha/member-data.ts';
import { CONCLAVE_VERSION } from '../ha/member-data.ts';
import { syncStandbys } from '../ha/decide-sync.ts';
import type { RaftNode } from '../raft/node/raft-node.ts';
import type { ClusterApiDeps } from './cluster-api.ts';
import { raftJson } from './cluster-api.ts';
import type { AgentConfig } from '../ha/config/types.ts';
import { CONTENT_TYPE, Exposition } from './prometheus.ts';

/** Patroni 4.1's numeric PostgreSQL states, for the states Conclave reports. */
const POSTGRES_STATE: Record<MemberState, number> = {
  'initializing new cluster': 0,
  'running custom bootstrap script': 2,
  'creating replica': 4,
  running: 5,
  starting: 6,
  'start failed': 8,
  stopping: 11,
  stopped: 12,
};

/** "0.2.0" → "000200": Patroni's semver without periods, each part two digits. */
export function paddedVersion(version: string): string {
  return version.split(/[.+-]/).slice(0, 3).map((p) => p.replace(/\D/g, '').padStart(2, '0')).join('');
}

/** pg_postmaster_start_time()::text ("2024-05-01 12:34:56.789012+00") → epoch seconds, 0 if unknown. */
export function epochSeconds(pgTimestamp: string | null): number {
  if (pgTimestamp === null) return 0;
  const m = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d)(?::?(\d\d))?$/.exec(pgTimestamp.trim());
  const ms = m ? Date.parse(`${m[1]}T${m[2]}${(m[3] ?? '').slice(0, 4)}${m[4]}:${m[5] ?? '00'}`) : Date.parse(pgTimestamp);
  return Number.isFinite(ms) ? ms / 1000 : 0;
}

/**
 * Counts this member's election campaigns seen since the API started: each term in which it became
 * candidate or leader once. (A leader that got there within one step, without a visible candidate
 * event, is counted by its leader event.)
 */
class ElectionCounter {
  count = 0;
  private countedTerm = -1;

  observe(role: string, term: number): void {
    if ((role === 'candidate' || role === 'leader') && term > this.countedTerm) {
      this.count++;
      this.countedTerm = term;
    }
  }
}

function raftMetrics(out: Exposition, raft: RaftNode, elections: ElectionCounter): void {
  const st = raft.status();
  const isLeader = st.role === 'leader';
  out
    .metric('conclave_raft_term', 'gauge', 'Current Raft term as this member sees it.', st.term)
    .metric('conclave_raft_leader', 'gauge', 'Value is 1 if this member leads the Raft group, 0 otherwise.', isLeader ? 1 : 0)
    .metric('conclave_raft_commit_index', 'gauge', 'Highest Raft log index known committed.', st.commit)
    .metric('conclave_raft_applied_index', 'gauge', 'Highest Raft log index applied to the key-value store.', raft.state.appliedIndex)
    .metric('conclave_raft_last_index', 'gauge', 'Last index in the Raft log.', st.lastIndex)
    .metric('conclave_raft_first_index', 'gauge', 'First index still in the Raft log (last - first = entries kept).', st.firstIndex)
    .metric('conclave_raft_snapshot_index', 'gauge', 'Raft log index covered by the latest snapshot.', Math.max(0, st.firstIndex - 1))
    .metric('conclave_raft_elections_total', 'counter', 'Election campaigns this member started (became candidate or leader in a new term) since the agent started.', elections.count)
    .metric('conclave_raft_refused_messages_total', 'counter', 'Raft messages from members dropped as impossible (bad terms, indexes, senders) since the agent started.', st.refusedMessages);
  if (raft.auth?.enabled) {
    const { refusedBy } = raft.auth.stats;
    out.metric('conclave_raft_auth_refused_total', 'counter', 'Requests on the Raft port refused for want of valid proof of membership, by reason.', Object.entries(refusedBy).map(([reason, value]) => ({ labels: { reason }, value: value ?? 0 })));
  }
  if (!isLeader) return;
  // Progress is the leader's knowledge; a follower's copy is meaningless (etcd raft: Progress).
  const transport = (st.transport ?? {}) as Record<string, { lastContact?: number | null } | undefined>;
  const peers = [...st.conf.voters, ...st.conf.learners].filter((id) => id !== st.id);
  const nowMs = performance.now();
  out.metric('conclave_raft_peer_match_index', 'gauge', 'Highest log index known replicated on the peer (leader only).', peers.map((peer) => ({ labels: { peer }, value: st.progress[peer]?.match ?? 0 })));
  out.metric('conclave_raft_peer_last_contact_seconds', 'gauge', 'Seconds since the peer last acknowledged a message from this leader.', peers.flatMap((peer) => {
    const at = transport[peer]?.lastContact;
    return typeof at === 'number' ? [{ labels: { peer }, value: Math.max(0, (nowMs - at) / 1000) }] : [];
  }));
}

/** Counts this member's elections from now on (until the server closes). */
function trackElections(app: FastifyInstance, raft: RaftNode): ElectionCounter {
  const elections = new ElectionCounter();
  const st = raft.status();
  elections.observe(st.role, st.term);
  const onRole = (e: { role: string; term: number }): void => elections.observe(e.role, e.term);
  raft.on('role', onRole);
  app.addHook('onClose', async () => {
    raft.off('role', onRole);
  });
  return elections;
}

/** A witness runs no PostgreSQL: its /metrics is the version and the consensus group's health, and it has /raft. */
export function registerWitnessMetricsApi(app: FastifyInstance, deps: { config: AgentConfig; raft: RaftNode }): void {
  const elections = trackElections(app, deps.raft);
  app.get('/metrics', async (_req, reply) => {
    const out = new Exposition({ scope: deps.config.scope, name: deps.config.name });
    out
      .metric('patroni_version', 'gauge', 'Patroni semver without periods.', paddedVersion(CONCLAVE_VERSION))
      .metric('patroni_postgres_running', 'gauge', 'Value is 1 if Postgres is running, 0 otherwise (a witness runs none).', 0);
    raftMetrics(out, deps.raft, elections);
    return reply.type(CONTENT_TYPE).send(out.text());
  });
  app.get('/raft', async () => raftJson(deps.raft, performance.now()));
}

export function registerMetricsApi(app: FastifyInstance, deps: ClusterApiDeps): void {
  const { config, loop, raft } = deps;
  const elections = trackElections(app, raft);

  app.get('/metrics', async (_req, reply) => {
    await loop.refreshPg();
    const local = loop.localState();
    const pg = local.pg;
    const settings = loop.settings();
    const cluster = loop.lastCluster;
    const primary = pg.running && pg.role === 'primary';
    const replica = pg.running && pg.role === 'replica';
    const leaderName = cluster?.leader?.name ?? null;
    const syncStandby = replica && settings.synchronous_mode === true && leaderName !== null && cluster !== null && syncStandbys(cluster, leaderName).includes(config.name);
    const tags = config.tags;
    const out = new Exposition({ scope: config.scope, name: config.name });
    out
      .metric('patroni_version', 'gauge', 'Patroni semver without periods.', paddedVersion(CONCLAVE_VERSION))
      .metric('patroni_postgres_running', 'gauge', 'Value is 1 if Postgres is running, 0 otherwise.', pg.running ? 1 : 0)
      .metric('patroni_postmaster_start_time', 'gauge', 'Epoch seconds since Postgres started.', pg.running ? epochSeconds(pg.postmasterStartTime) : 0)
      .metric('patroni_primary', 'gauge', 'Value is 1 if this node is the leader, 0 otherwise.', primary ? 1 : 0)
      .metric('patroni_master', 'gauge', 'Value is 1 if this node is the leader, 0 otherwise (Patroni 3.x name).', primary ? 1 : 0)
      .metric('patroni_xlog_location', 'counter', 'Current location of the Postgres transaction log, 0 if this node is not the leader.', primary ? pg.walPosition ?? 0 : 0)
      .metric('patroni_standby_leader', 'gauge', 'Value is 1 if this node is the standby_leader, 0 otherwise.', 0)
      .metric('patroni_replica', 'gauge', 'Value is 1 if this node is a replica, 0 otherwise.', replica ? 1 : 0)
      .metric('patroni_sync_standby', 'gauge', 'Value is 1 if this node is a sync standby, 0 otherwise.', syncStandby ? 1 : 0)
      .metric('patroni_xlog_received_location', 'counter', 'Current location of the received Postgres transaction log, 0 if this node is not a replica.', replica ? pg.receivedLsn ?? 0 : 0)
      .metric('patroni_xlog_replayed_location', 'counter', 'Current location of the replayed Postgres transaction log, 0 if this node is not a replica.', replica ? pg.replayedLsn ?? 0 : 0)
      .metric('patroni_xlog_paused', 'gauge', 'Value is 1 if the Postgres xlog is paused, 0 otherwise.', 0)
      .metric('patroni_postgres_streaming', 'gauge', 'Value is 1 if Postgres is streaming, 0 otherwise.', replica && pg.replicationState === 'streaming' ? 1 : 0)
      .metric('patroni_postgres_in_archive_recovery', 'gauge', 'Value is 1 if Postgres is replicating from archive, 0 otherwise.', replica && pg.replicationState === 'in archive recovery' ? 1 : 0)
      .metric('patroni_postgres_server_version', 'gauge', 'Version of Postgres (if running), 0 otherwise.', pg.running ? pg.serverVersion ?? 0 : 0)
      .metric('patroni_cluster_unlocked', 'gauge', 'Value is 1 if the cluster is unlocked, 0 if locked.', cluster !== null && cluster.leader === null ? 1 : 0)
      .metric('patroni_postgres_timeline', 'gauge', 'Postgres timeline of this node (if running), 0 otherwise.', pg.running ? pg.timeline ?? 0 : 0)
      .metric('patroni_dcs_last_seen', 'gauge', 'Epoch timestamp when DCS was last contacted successfully by Patroni.', loop.lastStoreReadAt === null ? 0 : Math.floor(loop.lastStoreReadAt / 1000))
      .metric('patroni_pending_restart', 'gauge', 'Value is 1 if the node needs a restart, 0 otherwise.', pg.pendingRestart || local.pendingRestartReasons.length > 0 ? 1 : 0)
      .metric('patroni_is_paused', 'gauge', 'Value is 1 if auto failover is disabled, 0 otherwise.', settings.extra.pause === true ? 1 : 0)
      .metric('patroni_postgres_state', 'gauge', 'Numeric representation of Postgres state.', POSTGRES_STATE[local.state] ?? -1)
      .metric('patroni_failover_priority', 'gauge', 'Value of failover_priority tag, 0 if nofailover is set.', tags.nofailover ? 0 : tags.failover_priority);
    raftMetrics(out, raft, elections);
    return reply.type(CONTENT_TYPE).send(out.text());
  });
}
