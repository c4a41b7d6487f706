// The routes a database member serves beside those every member has (the write guard, member
// removal): Patroni's health checks and /patroni, switchover and failover, restart and
// reinitialize, /cluster, /config, /history and /metrics. One list, for the agent and for the
// tests that drive the real API without starting one.
import type { FastifyInstance } from 'fastify';
import type { ClusterApiDeps } from './cluster-api.ts';
import { registerClusterApi } from './cluster-api.ts';
import { registerMemberApi } from './member-api.ts';
import { registerMetricsApi } from './metrics-api.ts';
import { registerPatroniApi } from './patroni-api.ts';
import { registerSwitchoverApi } from './switchover-api.ts';

export interface DatabaseApiDeps extends ClusterApiDeps {
  /** How long POST /switchover waits for the new leader before answering (0: not at all). */
  readonly switchoverWaitMs: number;
}

export function registerDatabaseApi(app: FastifyInstance, deps: DatabaseApiDeps): void {
  const { switchoverWaitMs, ...clusterDeps } = deps;
  registerPatroniApi(app, { config: deps.config, loop: deps.loop, now: deps.now });
  registerSwitchoverApi(app, { store: deps.store, waitMs: switchoverWaitMs });
  registerMemberApi(app, deps.loop);
  registerClusterApi(app, clusterDeps);
  registerMetricsApi(app, clusterDeps);
}
