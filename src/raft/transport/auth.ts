// Proof of membership on the Raft port: whoever talks to it decides who is primary, so every
// request carries an HMAC made with a key derived from the cluster's shared secret and its scope.
// A node of another cluster (other secret, other scope) cannot make one.
//
// Replay protection without clocks. A signature that carried the sender's wall-clock time, checked
// against the receiver's, would make the Raft port refuse a node whose clock jumped, and Conclave
// never lets one node's clock judge another's. Instead freshness comes from the receiver: it
// issues an *epoch* token, rotated on its own monotonic clock, and a request is valid only when
// signed for one of its two live epochs with a nonce not seen before in that epoch. Every answer
// carries the current epoch, so senders keep up without extra round trips; a sender that has none
// yet (or an expired one) is refused with 401 ERR_AUTH_EPOCH and the epoch to use, and signs again.
// A captured request cannot be replayed: its nonce is spent, and once its epoch has rotated out it
// is refused whole. The sender's wall-clock time is in the header for the logs, never checked.
//
// Bodies are covered by their SHA-256. The one streamed request (the Raft message stream) covers
// "stream" instead, and each of its frames carries a MAC of its own, keyed by the request's nonce
// and chained by sequence number, so frames cannot be altered, dropped or reordered unnoticed.
//
// Identity: the sender's Raft id and its incarnation, a random token made once with its Raft data
// directory. A member removed from the cluster is refused by that pair: the same machine with the
// same data cannot come back, a wiped one (new incarnation) may join again.
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Hash } from 'node:crypto';
import type { Agent } from 'undici';
import { raftTlsAgent } from './tls.ts';
import type { RaftTls } from './tls.ts';

export const AUTH_HEADER = 'x-conclave-auth';
export const EPOCH_HEADER = 'x-conclave-auth-epoch';
/** The body digest a streamed request signs; its frames are authenticated one by one. */
export const STREAM_BODY = 'stream';
/** Bytes of MAC after each authenticated frame. */
export const FRAME_MAC_BYTES = 16;

const VERSION = 'v1';
/** An epoch lives this long on the receiver's monotonic clock, then one more as the previous one. */
const DEFAULT_EPOCH_MS = 5 * 60_000;
/** Nonces kept per epoch; past this the epoch rotates early (a flood cannot grow memory). */
const MAX_NONCES_PER_EPOCH = 200_000;

export interface RaftIdentity {
  readonly id: string;
  /** Made once with the member's Raft data directory. */
  readonly incarnation: string;
}

export type AuthRefusal =
  | 'missing'
  | 'malformed'
  | 'scope'
  | 'epoch'
  | 'replayed'
  | 'signature'
  | 'body'
  | 'removed'
  | 'frame';

export interface AuthStats {
  accepted: number;
  refused: number;
  refusedBy: Partial<Record<AuthRefusal, number>>;
  lastRefusal: string | null;
}

/** What a verified request proves. */
export interface VerifiedPeer {
  readonly id: string;
  readonly incarnation: string;
  readonly nonce: string;
  /** The body digest it signed: a SHA-256 (base64url), '' for none, or STREAM_BODY. */
  readonly body: string;
}

export class AuthError extends Error {
  readonly reason: AuthRefusal;
  readonly status: number;
  constructor(reason: AuthRefusal, message: string) {
    super(message);
    this.name = 'AuthError';
    this.reason = reason;
    this.status = reason === 'removed' ? 403 : 401;
  }

  get code(): string {
    return this.reason === 'epoch' ? 'ERR_AUTH_EPOCH' : this.reason === 'removed' ? 'ERR_REMOVED' : 'ERR_AUTH';
  }
}

interface Epoch {
  readonly token: string;
  readonly startedAt: number;
  readonly nonces: Set<string>;
}

export interface RaftAuthOptions {
  /** The shared cluster secret; null turns authentication off (the agent warns at start). */
  readonly secret: string | null;
  /** The cluster's scope: part of the key, so another cluster's secret-sharing twin is refused. */
  readonly scope: string;
  readonly self: RaftIdentity;
  readonly epochMs?: number;
  /** Monotonic milliseconds; a parameter for the tests. */
  readonly now?: () => number;
  /** Mutual TLS material, when the members use it (tls.ts): carried here for every client of the Raft port. */
  readonly tls?: RaftTls | null;
}

export class RaftAuth {
  readonly enabled: boolean;
  readonly self: RaftIdentity;
  readonly tls: RaftTls | null;
  readonly stats: AuthStats = { accepted: 0, refused: 0, refusedBy: {}, lastRefusal: null };
  private readonly key: Buffer | null;
  private readonly scope: string;
  private readonly epochMs: number;
  private readonly now: () => number;
  private current: Epoch;
  private previous: Epoch | null = null;
  /** Client side: the latest epoch each receiver (by origin) announced. */
  private readonly epochsByOrigin = new Map<string, string>();

  constructor(opts: RaftAuthOptions) {
    this.enabled = opts.secret !== null;
    this.key = opts.secret === null ? null : deriveKey(opts.secret, opts.scope);
    this.scope = opts.scope;
    this.self = opts.self;
    this.tls = opts.tls ?? null;
    this.epochMs = opts.epochMs ?? DEFAULT_EPOCH_MS;
    this.now = opts.now ?? (() => performance.now());
    this.current = this.newEpoch();
  }

  // ---- sender side ------------------------------------------------------------------------------

  private tlsAgent: Agent | null = null;

  /** The dispatcher one-off requests to members use under mutual TLS; null: the default one. */
  dispatcher(): Agent | null {
    if (!this.tls) return null;
    this.tlsAgent ??= raftTlsAgent(this.tls);
    return this.tlsAgent;
  }

  /** The URL scheme of members' Raft ports. */
  get scheme(): 'http' | 'https' {
    return this.tls ? 'https' : 'http';
  }

  /**
   * The auth header for one request to `origin` ('http://host:port'); null when authentication is
   * off. `body` is the exact bytes to send, null for none, or STREAM_BODY. Also returns the nonce,
   * which keys a stream's frame MACs.
   */
  sign(origin: string, method: string, path: string, body: Buffer | null | typeof STREAM_BODY): { header: string; nonce: string } | null {
    if (!this.key) return null;
    const nonce = randomBytes(16).toString('base64url');
    const fields = {
      scope: encodeURIComponent(this.scope),
      id: this.self.id,
      inc: this.self.incarnation,
      epoch: this.epochsByOrigin.get(origin) ?? '-',
      nonce,
      ts: String(Date.now()),
      body: body === STREAM_BODY ? STREAM_BODY : digest(body),
    };
    const mac = this.mac(method, path, fields);
    const header = [VERSION, ...Object.entries(fields).map(([k, v]) => `${k}=${v}`), `mac=${mac}`].join(';');
    return { header, nonce };
  }

  /** Remembers the epoch a receiver announced in an answer's headers. */
  learn(origin: string, headers: Record<string, string | string[] | undefined>): void {
    const epoch = headers[EPOCH_HEADER];
    if (typeof epoch === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(epoch)) this.epochsByOrigin.set(origin, epoch);
  }

  /** Signs a stream's frames in order: MAC(frame key, sequence number ‖ body), truncated. */
  frameSigner(nonce: string): (body: Buffer) => Buffer {
    const key = this.frameKey(nonce);
    let seq = 0n;
    return (body) => frameMac(key, seq++, body);
  }

  // ---- receiver side ----------------------------------------------------------------------------

  /** The epoch every answer announces. */
  epoch(): string {
    this.rotate();
    return this.current.token;
  }

  /**
   * Checks a request's auth header (throws AuthError, counted). The body digest is checked by the
   * caller against the bytes received (checkBody), the removal of the sender by isRemoved.
   */
  verify(method: string, path: string, header: string | undefined, isRemoved: (id: string, incarnation: string) => boolean): VerifiedPeer {
    try {
      const peer = this.verifyHeader(method, path, header);
      if (isRemoved(peer.id, peer.incarnation)) throw new AuthError('removed', `${peer.id} was removed from the cluster; requests from that member (incarnation ${peer.incarnation}) are refused`);
      this.stats.accepted++;
      return peer;
    } catch (err) {
      if (err instanceof AuthError) this.refused(err);
      throw err;
    }
  }

  /** Throws (counted) when the body received, by its digest (bodyDigest), is not the one the request signed. */
  checkBody(peer: VerifiedPeer, receivedDigest: string): void {
    if (peer.body === STREAM_BODY || !equalText(receivedDigest, peer.body)) {
      const err = new AuthError('body', 'the request body is not the one that was signed');
      this.refused(err);
      throw err;
    }
  }

  /** Checks a stream's frames in order against the MACs frameSigner made; throws (counted) on the first bad one. */
  frameVerifier(nonce: string): (body: Buffer, mac: Buffer) => void {
    const key = this.frameKey(nonce);
    let seq = 0n;
    return (body, mac) => {
      const expected = frameMac(key, seq++, body);
      if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) {
        const err = new AuthError('frame', `frame ${seq - 1n} of the stream does not carry a valid MAC`);
        this.refused(err);
        throw err;
      }
    };
  }

  private verifyHeader(method: string, path: string, header: string | undefined): VerifiedPeer {
    if (!this.key) throw new Error('verify called with authentication off');
    if (header === undefined || header === '') throw new AuthError('missing', `no ${AUTH_HEADER} header: the Raft port answers only members of this cluster`);
    if (header.length > 1024) throw new AuthError('malformed', `${AUTH_HEADER} header too long`);
    const [version, ...parts] = header.split(';');
    if (version !== VERSION) throw new AuthError('malformed', `${AUTH_HEADER}: unknown version ${JSON.stringify(version?.slice(0, 16))}`);
    const fields: Record<string, string> = {};
    for (const part of parts) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new AuthError('malformed', `${AUTH_HEADER}: bad field ${JSON.stringify(part.slice(0, 32))}`);
      fields[part.slice(0, eq)] = part.slice(eq + 1);
    }
    const { scope, id, inc, epoch, nonce, ts, body, mac } = fields;
    if ([scope, id, inc, epoch, nonce, ts, body, mac].some((v) => v === undefined)) throw new AuthError('malformed', `${AUTH_HEADER}: a field is missing`);
    let theirScope: string;
    try {
      theirScope = decodeURIComponent(scope!);
    } catch {
      throw new AuthError('malformed', `${AUTH_HEADER}: bad scope encoding`);
    }
    if (theirScope !== this.scope) throw new AuthError('scope', `the sender ${JSON.stringify(id!.slice(0, 64))} belongs to cluster ${JSON.stringify(theirScope.slice(0, 64))}, not ${JSON.stringify(this.scope)}`);
    const expected = this.mac(method, path, { scope: scope!, id: id!, inc: inc!, epoch: epoch!, nonce: nonce!, ts: ts!, body: body! });
    if (!equalText(mac!, expected)) throw new AuthError('signature', `the request from ${JSON.stringify(id!.slice(0, 64))} is not signed with this cluster's secret`);
    this.rotate();
    const live = epoch === this.current.token ? this.current : epoch === this.previous?.token ? this.previous : null;
    if (!live) throw new AuthError('epoch', `signed for epoch ${JSON.stringify(epoch!.slice(0, 64))}, which is not current here; sign again for the epoch in ${EPOCH_HEADER}`);
    if (live.nonces.has(nonce!)) throw new AuthError('replayed', `nonce ${nonce!.slice(0, 32)} from ${id!.slice(0, 64)} was used before: a replayed request`);
    live.nonces.add(nonce!);
    if (live.nonces.size >= MAX_NONCES_PER_EPOCH && live === this.current) this.startEpoch();
    return { id: id!, incarnation: inc!, nonce: nonce!, body: body! };
  }

  private refused(err: AuthError): void {
    this.stats.refused++;
    this.stats.refusedBy[err.reason] = (this.stats.refusedBy[err.reason] ?? 0) + 1;
    this.stats.lastRefusal = err.message;
  }

  private mac(method: string, path: string, f: Record<'scope' | 'id' | 'inc' | 'epoch' | 'nonce' | 'ts' | 'body', string>): string {
    const text = [VERSION, method.toUpperCase(), path, f.scope, f.id, f.inc, f.epoch, f.nonce, f.ts, f.body].join('\n');
    return createHmac('sha256', this.key!).update(text).digest('base64url');
  }

  private frameKey(nonce: string): Buffer {
    return createHmac('sha256', this.key!).update(`frames\n${nonce}`).digest();
  }

  private rotate(): void {
    if (this.now() - this.current.startedAt >= this.epochMs) this.startEpoch();
  }

  private startEpoch(): void {
    this.previous = this.current;
    this.current = this.newEpoch();
  }

  private newEpoch(): Epoch {
    return { token: randomBytes(12).toString('base64url'), startedAt: this.now(), nonces: new Set() };
  }
}

/** A fresh incarnation token for a new Raft data directory. */
export function newIncarnation(): string {
  return randomBytes(9).toString('base64url');
}

function deriveKey(secret: string, scope: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.from('conclave-raft-v1'), Buffer.from(scope, 'utf8'), 32));
}

function digest(body: Buffer | null): string {
  return body === null || body.length === 0 ? '' : bodyDigest(createHash('sha256').update(body), body.length);
}

/** The digest a request signs for a body of `length` bytes hashed into `hash`: '' for none. */
export function bodyDigest(hash: Hash, length: number): string {
  return length === 0 ? '' : hash.digest('base64url');
}

function frameMac(key: Buffer, seq: bigint, body: Buffer): Buffer {
  const head = Buffer.allocUnsafe(8);
  head.writeBigUInt64BE(seq);
  return createHmac('sha256', key).update(head).update(body).digest().subarray(0, FRAME_MAC_BYTES);
}

function equalText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
