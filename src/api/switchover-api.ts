// POST /switchover, POST /failover and DELETE /switchover, as Patroni answers them (reference
// §1.3): the request is checked against the cluster view, written as the `failover` key (a
// compare-and-set create, so two operators cannot overwrite each other's request), and, unless
// scheduled, followed until the leader changes. The HA loops carry it out.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ClusterStore } from '../ha/cluster-store.ts';
import type { ClusterView } from '../ha/cluster-view.ts';
import { promotableReplica } from '../ha/decide-race.ts';

export interface SwitchoverDeps {
  store: ClusterStore;
  /** How long an immediate switchover is followed before answering 503 "status unknown". */
  waitMs: number;
}

type Kind = 'switchover' | 'failover';

interface Request {
  leader: string | null;
  candidate: string | null;
  scheduledAt: string | null;
}

class RefusedError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function parseBody(body: unknown, kind: Kind): Request {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new RefusedError(400, 'the body must be a JSON object');
  const b = body as Record<string, unknown>;
  const text = (key: string): string | null => {
    const v = b[key];
    if (v === undefined || v === null || v === '') return null;
    if (typeof v !== 'string') throw new RefusedError(400, `${key} must be a string`);
    return v;
  };
  const req = { leader: text('leader'), candidate: text('candidate') ?? text('member'), scheduledAt: text('scheduled_at') };
  if (kind === 'switchover' && req.leader === null) throw new RefusedError(400, 'Switchover could be performed only from a specific leader');
  if (kind === 'failover' && req.candidate === null) throw new RefusedError(400, 'Failover could be performed only to a specific candidate');
  return req;
}

/** Patroni's preconditions; a refusal names the reason (412 for a cluster that cannot do it). */
function check(view: ClusterView, req: Request, kind: Kind): void {
  if (kind === 'switchover') {
    if (view.leader === null) throw new RefusedError(412, 'no leader: use a failover to promote a specific candidate');
    if (view.leader.name !== req.leader) throw new RefusedError(412, 'leader name does not match');
  } else if (req.leader !== null && view.leader?.name !== req.leader) {
    throw new RefusedError(412, 'leader name does not match');
  }
  const others = view.members.filter((m) => m.name !== view.leader?.name);
  if (req.candidate !== null) {
    const c = view.members.find((m) => m.name === req.candidate);
    if (!c) throw new RefusedError(412, `Member ${req.candidate} does not exist`);
    if (req.candidate === view.leader?.name) throw new RefusedError(412, `${req.candidate} is already the leader`);
    if (!promotableReplica(c)) throw new RefusedError(412, `${req.candidate} is not a running replica that may be promoted (nofailover, failover_priority <= 0, or not running)`);
  } else if (!others.some(promotableReplica)) {
    throw new RefusedError(412, 'no good candidates have been found');
  }
  if (req.scheduledAt !== null) {
    if (!/(Z|[+-]\d\d:?\d\d)$/i.test(req.scheduledAt)) throw new RefusedError(422, 'Timezone information is mandatory for the scheduled switchover');
    const at = Date.parse(req.scheduledAt);
    if (!Number.isFinite(at)) throw new RefusedError(422, `Unable to parse scheduled timestamp ${JSON.stringify(req.scheduledAt)}`);
    if (at <= Date.now()) throw new RefusedError(422, 'Cannot schedule switchover in the past');
  }
}

export function registerSwitchoverApi(app: FastifyInstance, deps: SwitchoverDeps): void {
  // Patroni reads the body as JSON whatever the content type says (`curl -d` sends form type).
  app.addContentTypeParser(['application/x-www-form-urlencoded', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(Object.assign(new Error('the body is not JSON'), { statusCode: 400 }), undefined);
    }
  });
  const handle = (kind: Kind) => async (req: { body: unknown }, reply: FastifyReply) => {
    try {
      const request = parseBody(req.body, kind);
      const view = await deps.store.getCluster();
      check(view, request, kind);
      const value: Record<string, string> = {};
      if (request.leader !== null) value.leader = request.leader;
      if (request.candidate !== null) value.member = request.candidate;
      if (request.scheduledAt !== null) value.scheduled_at = new Date(Date.parse(request.scheduledAt)).toISOString();
      if (view.failover !== null) throw new RefusedError(409, 'a switchover or failover is already pending (DELETE /switchover cancels a scheduled one)');
      if (!(await deps.store.setFailover(value, 0))) throw new RefusedError(409, 'another switchover or failover request was written first');
      if (request.scheduledAt !== null) return reply.code(202).type('text/plain').send(`${kind === 'switchover' ? 'Switchover' : 'Failover'} scheduled`);
      const outcome = await followSwitchover(deps, view.leader?.name ?? null, request.candidate);
      const Kind = kind === 'switchover' ? 'Switchover' : 'Failover';
      if (outcome.type === 'done') {
        const verb = kind === 'switchover' ? 'switched over' : 'failed over';
        if (request.candidate !== null && outcome.leader !== request.candidate) {
          return reply.code(200).type('text/plain').send(`${kind === 'switchover' ? 'Switched' : 'Failed'} over to "${outcome.leader}" instead of "${request.candidate}"`);
        }
        return reply.code(200).type('text/plain').send(`Successfully ${verb} to "${outcome.leader}"`);
      }
      if (outcome.type === 'failed') return reply.code(503).type('text/plain').send(`${Kind} failed: ${outcome.why}`);
      // Patroni answers "status unknown" here; an operator needs to know how far it got.
      return reply.code(503).type('text/plain').send(`${Kind} status unknown: still in progress after ${Math.round(deps.waitMs / 1000)} s; ${outcome.stage}`);
    } catch (err) {
      if (err instanceof RefusedError) return reply.code(err.status).type('text/plain').send(err.message);
      return reply.code(503).type('text/plain').send(`the cluster store is unavailable: ${(err as Error).message}`);
    }
  };
  app.post('/switchover', handle('switchover'));
  app.post('/failover', handle('failover'));
  app.delete('/switchover', async (_req, reply) => {
    try {
      const view = await deps.store.getCluster();
      if (!view.failover?.value.scheduled_at) return reply.code(404).type('text/plain').send('no switchover is scheduled');
      if (!(await deps.store.setFailover(null, view.failover.revision))) return reply.code(409).type('text/plain').send('the request changed meanwhile; try again');
      return reply.code(200).type('text/plain').send('scheduled switchover deleted');
    } catch (err) {
      return reply.code(503).type('text/plain').send(`the cluster store is unavailable: ${(err as Error).message}`);
    }
  });
}

type Outcome = { type: 'done'; leader: string } | { type: 'failed'; why: string } | { type: 'pending'; stage: string };

/**
 * Follows the hand-over in the store until another member holds the leader key and the request
 * is gone (done), the request is gone with the old leader still in place (failed), or time runs
 * out (pending, with the stage reached).
 */
async function followSwitchover(deps: SwitchoverDeps, previous: string | null, candidate: string | null): Promise<Outcome> {
  const deadline = performance.now() + deps.waitMs;
  let stage = 'the request is written; waiting for the leader to act on it';
  while (performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      const view = await deps.store.getCluster();
      const leader = view.leader?.name ?? null;
      if (leader !== null && leader !== previous && view.failover === null) return { type: 'done', leader };
      if (leader !== null && leader === previous && view.failover === null) {
        return { type: 'failed', why: `${previous} is still the leader (no candidate could take over)` };
      }
      stage = switchoverStage(previous, leader, candidate);
    } catch {
      // the store may be between Raft leaders during the hand-over; keep following
    }
  }
  return { type: 'pending', stage };
}

/** Where a hand-over stands, from the leader key alone, in an operator's words. */
export function switchoverStage(previous: string | null, leader: string | null, candidate: string | null): string {
  const target = candidate === null ? 'the best candidate' : candidate;
  if (leader === null) return `${previous ?? 'the old leader'} has demoted and released the leader lock; waiting for ${target} to take it`;
  if (leader === previous) return `${previous} has not yet released the leader lock (it is checkpointing and stopping PostgreSQL)`;
  return `${leader} holds the leader lock and is being promoted`;
}
