// The cluster-wide part of the REST API (Patroni's, reference §1.2-1.3): GET /cluster, /history,
// /config (config-api.ts), POST /reload, and Conclave's GET /raft. Reads of the store are fresh,
// linearizable reads (Patroni reads its DCS afresh for /cluster too); when the store cannot answer
// (no Raft quorum) the answer is 503 with the reason, never a stale picture.
import type { FastifyInstance } from 'fastify';
import type { DatabaseAgentConfig, DynamicConfig } from '../ha/config/types.ts';
import type { ClusterStore } from '../ha/cluster-store.ts';
import type { ClusterView, JsonObject } from '../ha/cluster-view.ts';
import type { HaLoop } from '../ha/ha-loop.ts';
import type { PostgresController } from '../ha/postgres/controller.ts';
import type { RaftNode } from '../raft/node/raft-node.ts';
import { validateDynamicConfig } from '../ha/config/load.ts';
import { sendFailure, sendText } from './api-errors.ts';
import { clusterJson } from './cluster-json.ts';
import { registerConfigApi } from './config-api.ts';
import { restartSchedulerFor } from './restart-request.ts';

export interface ClusterApiDeps {
  config: DatabaseAgentConfig;
  store: ClusterStore;
  raft: RaftNode;
  loop: HaLoop;
  pg: PostgresController;
  now: () => number;
}

/** The dynamic settings the view's config key holds; the ones in force here if it is absent or invalid. */
export function dynamicSettings(view: ClusterView | null, loop: HaLoop): DynamicConfig {
  if (view?.config) {
    try {
      return validateDynamicConfig(view.config.value, 'config');
    } catch {
      // the agents keep their settings in force too (ha-loop adoptDynamicConfig)
    }
  }
  return loop.settings();
}

/** GET /raft: the consensus group as this member sees it. Progress is known only on the Raft leader. */
export function raftJson(raft: RaftNode, nowMs: number): JsonObject {
  const st = raft.status();
  const transport = (st.transport ?? {}) as Record<string, { lastContact?: number | null } | undefined>;
  const isLeader = st.role === 'leader';
  const peers: Record<string, JsonObject> = {};
  for (const id of [...st.conf.voters, ...st.conf.learners]) {
    if (id === st.id) continue;
    const pr = isLeader ? st.progress[id] : undefined;
    const contact = transport[id]?.lastContact ?? null;
    const peer: JsonObject = { match: pr ? pr.match : null, last_contact_ms_ago: contact === null ? null : Math.max(0, Math.round(nowMs - contact)) };
    if (isLeader) {
      peer.lag = pr ? Math.max(0, st.lastIndex - pr.match) : null;
      peer.state = pr ? pr.state : null;
    }
    peers[id] = peer;
  }
  return {
    id: st.id,
    role: st.role,
    term: st.term,
    leader: st.lead,
    commit: st.commit,
    applied: raft.state.appliedIndex,
    last_index: st.lastIndex,
    first_index: st.firstIndex,
    voters: st.conf.voters,
    learners: st.conf.learners,
    peers,
  };
}

export function registerClusterApi(app: FastifyInstance, deps: ClusterApiDeps): void {
  const { config, store, raft, loop, pg } = deps;
  const restarts = restartSchedulerFor(loop, app.log);

  app.get('/cluster', async (_req, reply) => {
    try {
      const view = await store.getCluster();
      const settings = dynamicSettings(view, loop);
      return reply.send(clusterJson(view, {
        scope: config.scope,
        synchronousMode: settings.synchronous_mode === true,
        paused: settings.extra.pause === true,
        local: { name: config.name, scheduledRestart: restarts.describe() },
      }));
    } catch (err) {
      return sendFailure(reply, err);
    }
  });

  app.get('/history', async (_req, reply) => {
    try {
      const view = await store.getCluster();
      return reply.send(view.history?.value ?? []);
    } catch (err) {
      return sendFailure(reply, err);
    }
  });

  app.get('/raft', async () => raftJson(raft, performance.now()));

  // Patroni re-reads its YAML on a reload; the agent's local file is read once at start, so what
  // can be reloaded is PostgreSQL's configuration: the parameters in force (dynamic under local)
  // are written out again and the postmaster is sent SIGHUP.
  app.post('/reload', async (_req, reply) => {
    try {
      if ((await pg.postmasterPid()) === null) return sendText(reply, 503, 'reload failed: postgres is not running');
      await pg.applyParameters({ ...loop.settings().postgresql.parameters, ...config.postgresql.parameters });
      await pg.reload();
      loop.wake();
      return sendText(reply, 202, 'reload scheduled');
    } catch (err) {
      return sendText(reply, 503, `reload failed: ${(err as Error).message}`);
    }
  });

  registerConfigApi(app, { store, loop });
}
