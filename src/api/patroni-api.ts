// The REST API's first routes: GET /patroni (peers read it during a race) and the health checks a
// load balancer needs from the start, with Patroni's status codes (reference §1.1). The full API
// (switchover, config, cluster, history, tag filters) comes with step 4.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HaLoop } from '../ha/ha-loop.ts';
import type { AgentConfig, DatabaseAgentConfig } from '../ha/config/types.ts';
import { CONCLAVE_VERSION, patroniStatus } from '../ha/member-data.ts';

export interface ApiDeps {
  config: DatabaseAgentConfig;
  loop: HaLoop;
  now: () => number;
}

type Check = (deps: ApiDeps) => boolean;

// The lock alone is not enough: between taking the lock and the end of the promotion the node
// is still a replica, and a load balancer must not send it writes yet.
const isPrimary: Check = ({ loop }) => loop.isLeader() && loop.lastPg.running && loop.lastPg.role === 'primary';
const isReplica: Check = ({ loop, config }) => {
  const pg = loop.lastPg;
  return pg.running && pg.role === 'replica' && !config.tags.noloadbalance && !loop.isLeader();
};

/** Health paths and what makes them 200 (Patroni matches by substring; we list the paths it documents). */
const CHECKS: Record<string, Check> = {
  '/': isPrimary,
  '/primary': isPrimary,
  '/master': isPrimary,
  '/read-write': isPrimary,
  '/leader': isPrimary,
  '/replica': isReplica,
  '/read-only': (d) => isPrimary(d) || isReplica(d),
  '/health': ({ loop }) => loop.lastPg.running,
  '/liveness': ({ loop, config, now }) => {
    const started = loop.lastCycleStartedAt;
    const limit = (loop.isLeader() ? 1 : 2) * loop.settings().ttl * 1000;
    return started !== null && now() - started < Math.max(limit, config.bootstrap.dcs.ttl * 1000);
  },
};

function body(deps: ApiDeps): Record<string, unknown> {
  const { loop, config } = deps;
  return patroniStatus(config, loop.localState(), {
    clusterUnlocked: loop.lastCluster !== null && loop.lastCluster.leader === null,
    systemIdentifier: loop.lastControl?.systemIdentifier ?? null,
    lastReason: loop.lastReason,
  });
}

export function registerPatroniApi(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/patroni', async () => {
    // A fresh look at PostgreSQL (one query): a peer deciding a race must not see a role or a
    // position from before the last promotion.
    await deps.loop.refreshPg();
    return body(deps);
  });
  for (const [path, check] of Object.entries(CHECKS)) {
    const handler = async (req: FastifyRequest, reply: FastifyReply) => {
      // Judged on PostgreSQL as it is now, not as the last cycle saw it (Patroni queries too).
      await deps.loop.refreshPg();
      const code = check(deps) ? 200 : 503;
      // HAProxy's `option httpchk` sends OPTIONS; HEAD and OPTIONS get the status alone.
      if (req.method !== 'GET') return reply.code(code).send();
      return reply.code(code).send(body(deps));
    };
    app.get(path, handler);
    app.route({ method: ['OPTIONS'], url: path, handler });
  }
}

/**
 * A witness's API: it runs no PostgreSQL, so every health check that asks about PostgreSQL says
 * 503; GET /patroni and /liveness say what it is.
 */
export function registerWitnessApi(app: FastifyInstance, config: AgentConfig): void {
  const body = () => ({ state: 'running', role: 'witness', patroni: { version: CONCLAVE_VERSION, scope: config.scope, name: config.name, product: 'Conclave' }, tags: config.tags.all });
  app.get('/patroni', async () => body());
  app.get('/liveness', async () => body());
  for (const path of Object.keys(CHECKS).filter((p) => p !== '/liveness')) {
    const handler = async (req: FastifyRequest, reply: FastifyReply) => (req.method === 'GET' ? reply.code(503).send(body()) : reply.code(503).send());
    app.get(path, handler);
    app.route({ method: ['OPTIONS'], url: path, handler });
  }
}
