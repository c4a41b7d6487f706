// POST /restart (now, or scheduled), DELETE /restart and POST /reinitialize on one member, as
// Patroni answers them (reference §1.3). Both operations run as the agent's background task; the
// HA loop keeps its lock meanwhile.
import type { FastifyInstance } from 'fastify';
import type { HaLoop } from '../ha/ha-loop.ts';
import { ApiError, objectBody, sendText } from './api-errors.ts';
import { parseRestartRequest, restartFacts, restartMismatch, restartSchedulerFor } from './restart-request.ts';

export function registerMemberApi(app: FastifyInstance, loop: HaLoop): void {
  const scheduler = restartSchedulerFor(loop, app.log);
  app.addHook('onClose', async () => scheduler.close());

  app.post('/restart', async (req, reply) => {
    try {
      const request = parseRestartRequest(objectBody(req.body, true), { paused: loop.settings().extra.pause === true, nowMs: Date.now() });
      // Judged on PostgreSQL as it is now (a restart or promotion may have happened since the last cycle).
      await loop.refreshPg();
      if (request.scheduleAt !== null) {
        if (!scheduler.schedule(request, loop.lastPg.postmasterStartTime)) return sendText(reply, 409, 'Another restart is already scheduled');
        return sendText(reply, 202, 'Restart scheduled');
      }
      if (restartMismatch(request, restartFacts(loop)) !== null) return sendText(reply, 503, 'restart conditions are not satisfied');
      const failure = await loop.runOperatorTask('restart', request.timeoutSeconds === null ? undefined : request.timeoutSeconds * 1000);
      if (failure) return sendText(reply, 503, failure);
      return sendText(reply, 200, 'restarted successfully');
    } catch (err) {
      if (err instanceof ApiError) return sendText(reply, err.status, err.message);
      return sendText(reply, 503, `restart failed: ${(err as Error).message}`);
    }
  });

  app.delete('/restart', async (_req, reply) => {
    if (scheduler.cancel()) return sendText(reply, 200, 'scheduled restart deleted');
    return sendText(reply, 404, 'no restarts are scheduled');
  });

  app.post('/reinitialize', async (req, reply) => {
    try {
      const body = objectBody(req.body, true);
      // Patroni's code reads from_leader, its docs spell from-leader: both are read.
      for (const key of ['force', 'from_leader', 'from-leader']) {
        if (body[key] !== undefined && typeof body[key] !== 'boolean') throw new ApiError(400, `${key} must be a boolean`);
      }
      // from_leader: Conclave always clones from the leader. force: a running task is not
      // cancelled (docs/divergence.md); the refusal names it.
      const failure = await loop.runOperatorTask('reinitialize');
      if (failure) return sendText(reply, 503, failure);
      return sendText(reply, 200, 'reinitialize started');
    } catch (err) {
      if (err instanceof ApiError) return sendText(reply, err.status, err.message);
      return sendText(reply, 503, `reinitialize failed: ${(err as Error).message}`);
    }
  });
}
