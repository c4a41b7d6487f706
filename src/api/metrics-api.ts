// GET /metrics: Prometheus text with Patroni's patroni_* names and conclave_raft_* for consensus
// health. (Being written: step 4.)
import type { FastifyInstance } from 'fastify';
import type { ClusterApiDeps } from './cluster-api.ts';

export function registerMetricsApi(_app: FastifyInstance, _deps: ClusterApiDeps): void {}
