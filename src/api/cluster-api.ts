// The cluster-wide part of the REST API (Patroni's): GET /cluster, /history, /config, /raft;
// PATCH and PUT /config; POST /reload; DELETE /restart. (Being written: step 4.)
import type { FastifyInstance } from 'fastify';
import type { DatabaseAgentConfig } from '../ha/config/types.ts';
import type { ClusterStore } from '../ha/cluster-store.ts';
import type { HaLoop } from '../ha/ha-loop.ts';
import type { PostgresController } from '../ha/postgres/controller.ts';
import type { RaftNode } from '../raft/node/raft-node.ts';

export interface ClusterApiDeps {
  config: DatabaseAgentConfig;
  store: ClusterStore;
  raft: RaftNode;
  loop: HaLoop;
  pg: PostgresController;
  now: () => number;
}

export function registerClusterApi(_app: FastifyInstance, _deps: ClusterApiDeps): void {}
