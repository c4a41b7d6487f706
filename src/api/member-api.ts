// POST /restart and POST /reinitialize on one member, as Patroni answers them (reference §1.3).
// Both run as the agent's background task; the HA loop keeps its lock meanwhile.
import type { FastifyInstance } from 'fastify';
import type { HaLoop } from '../ha/ha-loop.ts';

export function registerMemberApi(app: FastifyInstance, loop: HaLoop): void {
  app.post('/restart', async (req, reply) => {
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as { restart_pending?: unknown };
    if (body.restart_pending !== undefined && typeof body.restart_pending !== 'boolean') return reply.code(400).type('text/plain').send('restart_pending must be a boolean');
    if (body.restart_pending === true && loop.localState().pendingRestartReasons.length === 0 && !loop.lastPg.pendingRestart) {
      return reply.code(200).type('text/plain').send('restart is not pending');
    }
    const failure = await loop.runOperatorTask('restart');
    if (failure) return reply.code(503).type('text/plain').send(failure);
    return reply.code(200).type('text/plain').send('restarted successfully');
  });
  app.post('/reinitialize', async (_req, reply) => {
    const failure = await loop.runOperatorTask('reinitialize');
    if (failure) return reply.code(503).type('text/plain').send(failure);
    return reply.code(200).type('text/plain').send('reinitialize started');
  });
}
