// The Raft port's gate: every route on it (the message stream, forwarded proposals, membership,
// the KV/status API) answers only requests that RaftAuth verifies. Installed on the Raft port's
// fastify instance before any route, so nothing registered later escapes it.
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AUTH_HEADER, AuthError, EPOCH_HEADER, STREAM_BODY, bodyDigest } from './auth.ts';
import type { RaftAuth, VerifiedPeer } from './auth.ts';
import { RAFT_STREAM_PATH } from './server.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who signed this request (null when authentication is off). */
    raftPeer: VerifiedPeer | null;
  }
}

/** A refusal is logged at most this often per reason: a flood of bad requests must not flood the log. */
const LOG_EVERY_MS = 60_000;

export interface RaftAuthHookOptions {
  /** Whether this request (by path, no query) from this member incarnation is refused because it was removed. */
  isRemoved: (id: string, incarnation: string, path: string) => boolean;
  logger: Logger;
}

export function installRaftAuth(app: FastifyInstance, auth: RaftAuth, opts: RaftAuthHookOptions): void {
  app.decorateRequest('raftPeer', null);
  if (!auth.enabled) return;
  const lastLogged = new Map<string, number>();

  app.addHook('onRequest', async (req, reply) => {
    try {
      const path = req.url.split('?', 1)[0]!;
      req.raftPeer = auth.verify(req.method, req.url, headerText(req), (id, incarnation) => opts.isRemoved(id, incarnation, path));
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      const now = performance.now();
      if (err.reason !== 'epoch' && now - (lastLogged.get(err.reason) ?? -Infinity) >= LOG_EVERY_MS) {
        lastLogged.set(err.reason, now);
        opts.logger.warn({ from: req.ip, path: req.url.slice(0, 100), refused: auth.stats.refused }, `raft port: request refused: ${err.message}`);
      }
      return reply.code(err.status).header(EPOCH_HEADER, auth.epoch()).send({ error: err.code, message: err.message });
    }
  });

  // The body must be the one signed: hashed as it streams in, judged at its end, before any route
  // sees it. The message stream signs "stream" and authenticates each frame instead (server.ts).
  app.addHook('preParsing', async (req, _reply, payload) => {
    const peer = req.raftPeer!;
    if (peer.body === STREAM_BODY) {
      if (!isStreamRequest(req)) throw Object.assign(new AuthError('body', 'only the message stream may sign its body as a stream'), { statusCode: 401 });
      return payload;
    }
    const hash = createHash('sha256');
    let length = 0;
    return payload.pipe(
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          length += chunk.length;
          done(null, chunk);
        },
        flush(done) {
          try {
            auth.checkBody(peer, bodyDigest(hash, length));
            done();
          } catch (err) {
            done(Object.assign(err as Error, { statusCode: 401 }));
          }
        },
      }),
    );
  });

  // A request without a body never reaches preParsing: it must have signed none.
  app.addHook('preHandler', async (req, reply) => {
    const peer = req.raftPeer!;
    if (peer.body !== '' && req.body === undefined && !isStreamRequest(req)) {
      try {
        auth.checkBody(peer, '');
      } catch (err) {
        return reply.code(401).send({ error: 'ERR_AUTH', message: (err as Error).message });
      }
    }
  });

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header(EPOCH_HEADER, auth.epoch());
    return payload;
  });
}

function headerText(req: FastifyRequest): string | undefined {
  const h = req.headers[AUTH_HEADER];
  return Array.isArray(h) ? h[0] : h;
}

function isStreamRequest(req: FastifyRequest): boolean {
  return req.method === 'POST' && req.url.split('?', 1)[0]!.endsWith(RAFT_STREAM_PATH);
}
