// Receiving side of the Raft transport: POST /raft/v1/messages with a msgpack body (codec.ts).
// Everything a peer sends is untrusted; a bad request costs the sender a 4xx, never the node its life.
// The route lives in its own fastify plugin scope so its content-type parser and error handler do
// not leak into the API routes that may share the same fastify instance.
import type { FastifyError, FastifyInstance } from 'fastify';
import { RaftError } from '../core/errors.ts';
import type { Message, NodeId } from '../core/types.ts';
import { DEFAULT_DECODE_LIMITS, decodeMessages } from './codec.ts';
import type { DecodeLimits } from './codec.ts';

export const RAFT_MESSAGES_PATH = '/raft/v1/messages';
export const MSGPACK_CONTENT_TYPE = 'application/msgpack';

export interface RaftServerOptions {
  /** This node's id: every message in a body must be addressed to it. */
  localId: NodeId;
  /**
   * Gets each accepted body's messages, in order. It may throw RaftError ERR_BAD_MESSAGE to refuse
   * them (400); other RaftErrors answer 503, anything else 500. It must not block.
   */
  handler: (msgs: Message[]) => void;
  /** Refuses (400) a body containing a message from a sender this returns false for, e.g. a removed member. */
  isKnownSender?: (from: NodeId) => boolean;
  limits?: Partial<DecodeLimits>;
}

export interface RaftServerStats {
  /** Requests that reached the route. */
  requests: number;
  /** Messages handed to the handler. */
  received: number;
  /** Requests answered with an error status. */
  rejected: number;
  /** Why the last request was rejected, for the status page. */
  lastRejection: string | null;
}

export interface RaftServer {
  readonly stats: RaftServerStats;
}

/** Registers the route on `app` (loaded with the app's other plugins, before listen/ready). */
export function registerRaftServer(app: FastifyInstance, opts: RaftServerOptions): RaftServer {
  const limits: DecodeLimits = { ...DEFAULT_DECODE_LIMITS, ...opts.limits };
  const stats: RaftServerStats = { requests: 0, received: 0, rejected: 0, lastRejection: null };

  app.register(async (scope) => {
    scope.addContentTypeParser(MSGPACK_CONTENT_TYPE, { parseAs: 'buffer', bodyLimit: limits.maxBytes }, (_req, body, done) => {
      done(null, body);
    });

    // Errors raised before our handler runs (body too large, wrong content type, aborted upload) and
    // anything the handler throws end here, so every refusal is counted and has the same JSON shape.
    scope.setErrorHandler((err: FastifyError | RaftError, req, reply) => {
      const { status, code } = classify(err);
      stats.rejected++;
      stats.lastRejection = err.message;
      req.log.debug({ err, status }, 'raft transport: request rejected');
      return reply.code(status).send({ error: code, message: err.message });
    });

    scope.post(RAFT_MESSAGES_PATH, { bodyLimit: limits.maxBytes }, async (req, reply) => {
      stats.requests++;
      if (!Buffer.isBuffer(req.body)) {
        // Another content type's parser (JSON, text) ran: not ours to accept.
        throw Object.assign(new Error(`content-type must be ${MSGPACK_CONTENT_TYPE}`), { statusCode: 415 });
      }
      const msgs = decodeMessages(req.body, limits);
      for (let i = 0; i < msgs.length; i++) {
        const m = msgs[i];
        if (m.to !== opts.localId) throw new RaftError('ERR_BAD_MESSAGE', `message ${i}: addressed to '${m.to}', this node is '${opts.localId}'`);
        if (opts.isKnownSender && !opts.isKnownSender(m.from)) throw new RaftError('ERR_BAD_MESSAGE', `message ${i}: unknown sender '${m.from}'`);
      }
      // All messages are checked before any is delivered, so a body is taken whole or not at all.
      opts.handler(msgs);
      stats.received += msgs.length;
      return reply.code(204).send();
    });
  });

  return { stats };
}

function classify(err: FastifyError | RaftError): { status: number; code: string } {
  if (err instanceof RaftError) return { status: err.code === 'ERR_BAD_MESSAGE' ? 400 : 503, code: err.code };
  const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
  return { status, code: status < 500 ? 'ERR_BAD_MESSAGE' : 'ERR_INTERNAL' };
}
