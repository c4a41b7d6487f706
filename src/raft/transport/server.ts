// Receiving side of the Raft transport. Two routes:
// - POST /raft/v1/stream: the one peers use. A long-lived request whose body is a stream of frames
//   (frames.ts) and whose response is a stream of one-byte acks, one per frame handled. One such
//   request per peer carries everything in order with no per-message HTTP round trip, as etcd's
//   stream transport does; it cut a hop from ~0.5 ms to ~0.15 ms here.
// - POST /raft/v1/messages: one msgpack body of messages (codec.ts), for one-off senders.
// Everything a peer sends is untrusted; a bad request costs the sender a 4xx or its stream, never
// the node its life.
// The route lives in its own fastify plugin scope so its content-type parser and error handler do
// not leak into the API routes that may share the same fastify instance.
import type { Readable } from 'node:stream';
import type { FastifyError, FastifyInstance } from 'fastify';
import { RaftError } from '../core/errors.ts';
import type { Message, NodeId } from '../core/types.ts';
import { DEFAULT_DECODE_LIMITS, decodeMessages } from './codec.ts';
import type { DecodeLimits } from './codec.ts';
import { ACK, FrameReader } from './frames.ts';
import { EPOCH_HEADER, FRAME_MAC_BYTES } from './auth.ts';
import type { RaftAuth, VerifiedPeer } from './auth.ts';

export const RAFT_MESSAGES_PATH = '/raft/v1/messages';
export const RAFT_STREAM_PATH = '/raft/v1/stream';
export const MSGPACK_CONTENT_TYPE = 'application/msgpack';
export const STREAM_CONTENT_TYPE = 'application/x-conclave-raft-stream';

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
  /**
   * With authentication on (auth-hooks.ts verified the request), each message must come from the
   * member that signed it, and each stream frame must carry its MAC.
   */
  auth?: RaftAuth;
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
      deliver(msgs, req.raftPeer);
      return reply.code(204).send();
    });

    // The stream route reads its body itself: the parser hands over the raw request untouched.
    const streams = new Set<Readable>();
    scope.addContentTypeParser(STREAM_CONTENT_TYPE, (_req, payload, done) => done(null, payload));
    scope.addHook('preClose', async () => {
      for (const s of streams) s.destroy();
    });
    scope.post(RAFT_STREAM_PATH, async (req, reply) => {
      stats.requests++;
      const body = req.body as Readable;
      if (typeof body?.on !== 'function') throw Object.assign(new Error(`content-type must be ${STREAM_CONTENT_TYPE}`), { statusCode: 415 });
      reply.hijack();
      const res = reply.raw;
      const peer = req.raftPeer;
      const verifyFrame = opts.auth?.enabled && peer ? opts.auth.frameVerifier(peer.nonce) : null;
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...(opts.auth?.enabled ? { [EPOCH_HEADER]: opts.auth.epoch() } : {}) });
      res.flushHeaders();
      streams.add(body);
      const reader = new FrameReader(limits.maxBytes + (verifyFrame ? FRAME_MAC_BYTES : 0));
      const acks = new AckBatcher(res);
      // 'data' callbacks rather than an async iterator: no promise and microtask hops per chunk,
      // which measurably shortened each hop between members.
      await new Promise<void>((resolve) => {
        let finished = false;
        const finish = (refused: Error | null): void => {
          if (finished) return;
          finished = true;
          body.off('data', onData);
          streams.delete(body);
          acks.close();
          if (refused) {
            // A bad frame ends the stream (the sender reconnects); it is counted, never thrown.
            stats.rejected++;
            stats.lastRejection = refused.message;
            req.log.debug({ err: refused }, 'raft transport: stream refused');
            res.destroy();
            body.destroy();
          } else {
            res.end();
          }
          resolve();
        };
        const onData = (chunk: Buffer): void => {
          try {
            for (const frame of reader.push(chunk)) {
              let body = frame;
              if (verifyFrame) {
                if (frame.length < FRAME_MAC_BYTES) throw new RaftError('ERR_BAD_MESSAGE', 'frame shorter than its MAC');
                body = frame.subarray(0, frame.length - FRAME_MAC_BYTES);
                verifyFrame(body, frame.subarray(frame.length - FRAME_MAC_BYTES));
              }
              deliver(decodeMessages(body, limits), peer);
              acks.add();
            }
          } catch (err) {
            finish(err as Error);
          }
        };
        body.on('data', onData);
        body.once('end', () => finish(null));
        body.once('error', () => finish(null)); // the sender went away mid-stream: nothing to answer
        body.once('close', () => finish(null));
      });
    });

    /** Checks every message before any is delivered, so a body or frame is taken whole or not at all. */
    function deliver(msgs: Message[], peer: VerifiedPeer | null): void {
      for (let i = 0; i < msgs.length; i++) {
        const m = msgs[i];
        if (m.to !== opts.localId) throw new RaftError('ERR_BAD_MESSAGE', `message ${i}: addressed to '${m.to}', this node is '${opts.localId}'`);
        if (peer && m.from !== peer.id) throw new RaftError('ERR_BAD_MESSAGE', `message ${i}: from '${m.from}', but the request was signed by '${peer.id}'`);
        if (opts.isKnownSender && !opts.isKnownSender(m.from)) throw new RaftError('ERR_BAD_MESSAGE', `message ${i}: unknown sender '${m.from}'`);
      }
      opts.handler(msgs);
      stats.received += msgs.length;
    }
  });

  return { stats };
}

/**
 * Acks are coalesced: a write costs a syscall, and on this kind of machine syscalls on loopback
 * sockets are a large part of a message's cost. Acks go out at once when many are owed, otherwise
 * within ACK_DELAY_MS. They drive only the sender's flow-control window and stall detection, both
 * sized far above that delay (the node's stall timeout is at least 200 ms); Raft's own answers
 * travel as messages, not acks. At 5 ms, a write a millisecond cost each side of every stream an
 * extra wakeup for every few writes, on a machine where a wakeup is a good part of a hop's time.
 */
const ACK_DELAY_MS = 50;
const ACK_BATCH = 16;

class AckBatcher {
  private owed = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly res: NodeJS.WritableStream & { destroyed?: boolean }) {}

  add(): void {
    this.owed++;
    if (this.owed >= ACK_BATCH) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), ACK_DELAY_MS);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.owed === 0 || this.res.destroyed) return;
    this.res.write(Buffer.alloc(this.owed, ACK[0]));
    this.owed = 0;
  }

  close(): void {
    this.flush();
  }
}

function classify(err: FastifyError | RaftError): { status: number; code: string } {
  if (err instanceof RaftError) return { status: err.code === 'ERR_BAD_MESSAGE' ? 400 : 503, code: err.code };
  const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
  return { status, code: status < 500 ? 'ERR_BAD_MESSAGE' : 'ERR_INTERNAL' };
}
