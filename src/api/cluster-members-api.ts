// DELETE /cluster/members/<name>: an operator removes a member while the cluster serves (Raft
// membership, member key, replication slot; ha/raft-membership.ts). Conclave's own endpoint:
// Patroni leaves membership to its DCS. Answered by every member, witnesses included.
import type { FastifyInstance } from 'fastify';
import type { ClusterStore } from '../ha/cluster-store.ts';
import type { RaftNode } from '../raft/node/raft-node.ts';
import { removeClusterMember } from '../ha/raft-membership.ts';

export function registerClusterMembersApi(app: FastifyInstance, deps: { store: ClusterStore; raft: RaftNode; selfUrl: string }): void {
  app.delete<{ Params: { name: string } }>('/cluster/members/:name', async (req, reply) => {
    const name = req.params.name;
    if (name.length === 0 || name.length > 255) return reply.code(400).type('text/plain').send('a member name is required');
    try {
      const r = await removeClusterMember({ ...deps, name });
      return reply.code(r.status).type('text/plain').send(r.message);
    } catch (err) {
      return reply.code(503).type('text/plain').send(`removing ${name} failed: ${(err as Error).message}`);
    }
  });
}
