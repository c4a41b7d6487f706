// A small JSON API over the replicated key-value store, for operators' debugging, the
// real-process tests and the benchmark. The HA agent uses RaftNode in-process instead.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { RaftNode } from './raft-node.ts';
import { RaftError } from '../core/errors.ts';
import type { KeyValue } from '../kv/commands.ts';
import { trace, tracing } from './latency-trace.ts';

/** One table from error code to HTTP status (STYLE.md: errors carry codes; the API maps them). */
const STATUS_BY_CODE: Record<string, number> = {
  ERR_NOT_LEADER: 503,
  ERR_PROPOSAL_DROPPED: 503,
  ERR_TIMEOUT: 504,
  ERR_REMOVED: 403,
  ERR_STOPPED: 503,
  ERR_BAD_MESSAGE: 400,
  ERR_TOO_LARGE: 413,
  ERR_CONF_CHANGE_PENDING: 409,
  ERR_LEASE_NOT_FOUND: 404,
};

function sendError(node: RaftNode, reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof RaftError) {
    const body: Record<string, unknown> = { error: err.code, message: err.message };
    if (err.code === 'ERR_NOT_LEADER') {
      body.leader = err.leaderHint;
      body.leaderUrl = node.leaderUrl();
    }
    return reply.code(STATUS_BY_CODE[err.code] ?? 500).send(body);
  }
  return reply.code(500).send({ error: 'ERR_INTERNAL', message: (err as Error).message });
}

/** What GET /v1/status answers (the fields clients rely on). */
export interface MemberStatus {
  id: string;
  role: 'leader' | 'follower' | 'candidate' | 'preCandidate';
  term: number;
  leader: string | null;
  commit: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  voters: string[];
  learners: string[];
}

const view = (kv: KeyValue) => ({ key: kv.key, value: kv.value, modRevision: kv.modRevision, createRevision: kv.createRevision, version: kv.version });

function valueOf(body: unknown): string | null {
  if (typeof body !== 'object' || body === null) return null;
  const v = (body as { value?: unknown }).value;
  return typeof v === 'string' ? v : null;
}

export function registerKvApi(app: FastifyInstance, node: RaftNode): void {
  app.get('/v1/status', async () => {
    const st = node.status();
    const status: MemberStatus & Record<string, unknown> = {
      id: st.id,
      role: st.role,
      term: st.term,
      leader: st.lead,
      commit: st.commit,
      applied: node.state.appliedIndex,
      lastIndex: st.lastIndex,
      firstIndex: st.firstIndex,
      voters: st.conf.voters,
      learners: st.conf.learners,
      progress: st.role === 'leader' ? st.progress : undefined,
      transport: st.transport,
      rejectedRequests: st.rejected,
      refusedMessages: st.refusedMessages,
      lastRefusedMessage: st.lastRefusedMessage,
      // Requests refused for want of proof of membership, by reason (transport/auth.ts); null: authentication off.
      authentication: node.auth?.enabled ? { accepted: node.auth.stats.accepted, refused: node.auth.stats.refused, refusedBy: node.auth.stats.refusedBy, lastRefusal: node.auth.stats.lastRefusal } : null,
    };
    return status;
  });

  app.get<{ Params: { key: string } }>('/v1/kv/:key', async (req, reply) => {
    try {
      await node.readBarrier();
    } catch (err) {
      return sendError(node, reply, err);
    }
    const kv = node.state.get(req.params.key);
    if (!kv) return reply.code(404).send({ error: 'ERR_NOT_FOUND', message: `no key ${JSON.stringify(req.params.key)}` });
    return view(kv);
  });

  app.get<{ Querystring: { prefix?: string } }>('/v1/kv', async (req, reply) => {
    try {
      await node.readBarrier();
    } catch (err) {
      return sendError(node, reply, err);
    }
    return { kvs: node.state.range(req.query.prefix ?? '').map(view) };
  });

  app.put<{ Params: { key: string } }>('/v1/kv/:key', async (req, reply) => {
    if (tracing) trace(`${node.id} http put in`);
    const value = valueOf(req.body);
    if (value === null) return reply.code(400).send({ error: 'ERR_BAD_REQUEST', message: 'body must be {"value": "<string>"}' });
    try {
      const r = await node.propose({ type: 'put', key: req.params.key, value });
      if (r.type === 'error') return reply.code(STATUS_BY_CODE[r.error] ?? 400).send({ error: r.error, message: r.message });
      if (tracing) trace(`${node.id} http put out`);
      return { revision: r.revision };
    } catch (err) {
      return sendError(node, reply, err);
    }
  });

  app.post<{ Params: { key: string } }>('/v1/kv/:key/cas', async (req, reply) => {
    const body = req.body as { expectRevision?: unknown; value?: unknown } | null;
    const expectRevision = body?.expectRevision;
    const value = body?.value;
    if (!Number.isSafeInteger(expectRevision) || (expectRevision as number) < 0 || (value !== null && typeof value !== 'string')) {
      return reply.code(400).send({ error: 'ERR_BAD_REQUEST', message: 'body must be {"expectRevision": <integer >= 0>, "value": <string or null>}' });
    }
    try {
      const r = await node.propose({ type: 'cas', key: req.params.key, expectRevision: expectRevision as number, value: value as string | null });
      if (r.type === 'error') return reply.code(STATUS_BY_CODE[r.error] ?? 400).send({ error: r.error, message: r.message });
      if (r.type !== 'cas') return reply.code(500).send({ error: 'ERR_INTERNAL', message: 'unexpected result' });
      return reply.code(r.succeeded ? 200 : 409).send({ succeeded: r.succeeded, revision: r.revision, current: r.current ? view(r.current) : null });
    } catch (err) {
      return sendError(node, reply, err);
    }
  });

  app.delete<{ Params: { key: string } }>('/v1/kv/:key', async (req, reply) => {
    try {
      const r = await node.propose({ type: 'delete', key: req.params.key });
      if (r.type === 'error') return reply.code(STATUS_BY_CODE[r.error] ?? 400).send({ error: r.error, message: r.message });
      return r;
    } catch (err) {
      return sendError(node, reply, err);
    }
  });

  app.post<{ Body: { target?: unknown } }>('/v1/raft/transfer-leader', async (req, reply) => {
    const target = req.body?.target;
    if (typeof target !== 'string') return reply.code(400).send({ error: 'ERR_BAD_REQUEST', message: 'body must be {"target": "<member id>"}' });
    node.transferLeadership(target);
    return reply.code(202).send({ transferring: target });
  });
}
