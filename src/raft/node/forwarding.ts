// Proposal forwarding: every HA agent writes to the store (its member key, the leader race), but
// only the Raft leader may propose. A member that is not the leader sends the command to the
// leader over HTTP (msgpack, as the rest of the transport) and then waits until it has applied
// the entry itself, so that its own reads afterwards see the write (read-your-writes), as a
// client of etcd would get by reading from the member it wrote through.
//
// The command carries the forwarder's session (clientId, seq): a retry of the same command after
// an ambiguous failure applies at most once (the KV's session table, kv/state-machine.ts).
import type { FastifyError, FastifyInstance } from 'fastify';
import { Agent } from 'undici';
import { randomBytes } from 'node:crypto';
import type { RaftNode } from './raft-node.ts';
import { RaftError } from '../core/errors.ts';
import type { RaftErrorCode } from '../core/errors.ts';
import { decodeCommand, encodeCommand } from '../kv/commands.ts';
import type { KvOp, KvResult } from '../kv/commands.ts';
import { pack, unpack } from '../kv/codec.ts';
import type { KeyChange } from '../kv/state-machine.ts';
import { MSGPACK_CONTENT_TYPE } from '../transport/server.ts';
import { raftRequest } from '../transport/auth-request.ts';
import { raftConnectTls } from '../transport/tls.ts';

export const RAFT_PROPOSE_PATH = '/raft/v1/propose';
const MAX_BODY_BYTES = 2 * 1024 * 1024;

/** The leader side: applies forwarded commands and answers their result and index. */
export function registerForwardingServer(app: FastifyInstance, node: RaftNode): void {
  app.register(async (scope) => {
    scope.addContentTypeParser(MSGPACK_CONTENT_TYPE, { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES }, (_req, body, done) => done(null, body));
    scope.setErrorHandler((err: FastifyError | RaftError, _req, reply) => {
      if (err instanceof RaftError) {
        const status = err.code === 'ERR_BAD_MESSAGE' ? 400 : err.code === 'ERR_REMOVED' ? 403 : err.code === 'ERR_TIMEOUT' ? 504 : 503;
        return reply.code(status).send({ error: err.code, message: err.message, leader: err.leaderHint ?? null });
      }
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      return reply.code(status).send({ error: status < 500 ? 'ERR_BAD_MESSAGE' : 'ERR_INTERNAL', message: err.message });
    });
    scope.post(RAFT_PROPOSE_PATH, async (req, reply) => {
      if (!Buffer.isBuffer(req.body)) throw Object.assign(new Error(`content-type must be ${MSGPACK_CONTENT_TYPE}`), { statusCode: 415 });
      const cmd = decodeCommand(req.body);
      // A removed member that still runs must not go on writing its keys; this refusal is how
      // it learns it was removed (ForwardingKv reports it and the agent stops).
      const sender = senderOf(cmd.clientId);
      if (req.raftPeer && sender !== req.raftPeer.id) throw new RaftError('ERR_BAD_MESSAGE', `a command of ${JSON.stringify(sender)} forwarded by ${req.raftPeer.id}: members forward only their own`);
      if (sender !== null && node.isRemoved(sender)) {
        throw new RaftError('ERR_REMOVED', `${sender} was removed from the cluster; its writes are refused`);
      }
      const applied = await node.proposeIndexed(cmd.op, { clientId: cmd.clientId, seq: cmd.seq });
      return reply.code(200).header('content-type', MSGPACK_CONTENT_TYPE).send(Buffer.from(pack({ result: applied.result, index: applied.index })));
    });
  });
}

/** The member a forwarded command comes from: ForwardingKv's client ids are `<member>/fwd/<random>`. */
function senderOf(clientId: string): string | null {
  const at = clientId.indexOf('/fwd/');
  return at > 0 ? clientId.slice(0, at) : null;
}

export interface ForwardingKvOptions {
  /** How long one forwarded command may take, end to end. */
  timeoutMs?: number;
}

/**
 * The ReplicatedKv the HA agent uses: proposes locally when this member leads, forwards to the
 * leader otherwise. Errors are RaftErrors with the same codes a local proposal would give
 * (ERR_NOT_LEADER when no leader is known, ERR_TIMEOUT, ERR_PROPOSAL_DROPPED, ERR_STOPPED).
 */
// (It fits src/ha's ReplicatedKv structurally; raft does not import from the layer above it.)
export class ForwardingKv {
  private readonly node: RaftNode;
  private readonly timeoutMs: number;
  /* A fresh client id per process: sequence numbers restart at 1 with it, and an old session's
   * table entry must not swallow the new process's first commands. */
  private readonly clientId: string;
  private seq = 0;
  /* Its own connect timeout: an abort signal does not cut short a TCP connect to a host that
   * drops packets (a partitioned leader), which otherwise waits undici's default 10 s. */
  private readonly dispatcher: Agent;

  constructor(node: RaftNode, opts: ForwardingKvOptions = {}) {
    this.node = node;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.dispatcher = new Agent({ connect: { timeout: this.timeoutMs, ...raftConnectTls(node.auth?.tls ?? null) }, keepAliveTimeout: 30_000 });
    this.clientId = `${node.id}/fwd/${randomBytes(6).toString('hex')}`;
  }

  get state(): RaftNode['state'] {
    return this.node.state;
  }

  readBarrier(): Promise<void> {
    return this.node.readBarrier();
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  on(event: 'changes', listener: (changes: KeyChange[], index: number) => void): unknown {
    return this.node.on(event, listener);
  }

  off(event: 'changes', listener: (changes: KeyChange[], index: number) => void): unknown {
    return this.node.off(event, listener);
  }

  async propose(op: KvOp): Promise<KvResult> {
    const session = { clientId: this.clientId, seq: ++this.seq };
    if (this.node.isLeader()) return (await this.node.proposeIndexed(op, session)).result;
    const url = this.node.leaderUrl();
    if (!url) throw new RaftError('ERR_NOT_LEADER', `${this.node.id} knows no leader to forward to`, { leaderHint: null });
    const body = encodeCommand({ ...session, op });
    let status: number;
    let payload: Buffer;
    try {
      const res = await raftRequest(this.node.auth, url + RAFT_PROPOSE_PATH, { method: 'POST', contentType: MSGPACK_CONTENT_TYPE, body: Buffer.from(body), timeoutMs: this.timeoutMs, dispatcher: this.dispatcher });
      status = res.status;
      payload = res.body;
    } catch (cause) {
      throw new RaftError('ERR_TIMEOUT', `forwarding to the leader at ${url} failed; the write may or may not have been applied`, { cause });
    }
    if (status !== 200) {
      const err = errorFromReply(status, payload, url);
      if (err.code === 'ERR_REMOVED') this.node.noticeRemoved('the leader refused its write');
      throw err;
    }
    const { result, index } = parseReply(payload, url);
    await this.node.waitApplied(index);
    return result;
  }
}

function errorFromReply(status: number, payload: Buffer, url: string): RaftError {
  let body: { error?: unknown; message?: unknown; leader?: unknown } = {};
  try {
    body = JSON.parse(payload.toString('utf8')) as typeof body;
  } catch {
    // Not our JSON (a proxy, a wrong port): reported below with the status alone.
  }
  const known: RaftErrorCode[] = ['ERR_NOT_LEADER', 'ERR_TIMEOUT', 'ERR_PROPOSAL_DROPPED', 'ERR_STOPPED', 'ERR_BAD_MESSAGE', 'ERR_REMOVED'];
  const code = known.find((c) => c === body.error) ?? 'ERR_TIMEOUT';
  const message = `the leader at ${url} answered ${status}: ${typeof body.message === 'string' ? body.message : 'no explanation'}`;
  return new RaftError(code, message, { leaderHint: typeof body.leader === 'string' ? body.leader : null });
}

/** The leader's answer is a peer message like any other: checked before it is believed. */
function parseReply(payload: Buffer, url: string): { result: KvResult; index: number } {
  const v = unpack(payload, 'ERR_BAD_MESSAGE', `reply from ${url}`) as { result?: unknown; index?: unknown };
  const result = v?.result as { type?: unknown } | undefined;
  if (typeof v !== 'object' || v === null || !Number.isSafeInteger(v.index) || (v.index as number) < 1 || typeof result !== 'object' || result === null || typeof result.type !== 'string') {
    throw new RaftError('ERR_BAD_MESSAGE', `reply from ${url}: expected {result, index}`);
  }
  return { result: result as KvResult, index: v.index as number };
}
