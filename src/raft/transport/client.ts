// Sending side of the Raft transport: one long-lived streaming POST per peer (server.ts,
// RAFT_STREAM_PATH). send() never blocks and never throws, like etcd's transport: Raft tolerates
// loss, so a message that cannot be delivered is dropped and counted, and the node is told the
// peer is unreachable. Order per peer is kept because one stream carries everything.
//
// Flow control: at most `maxInflightFrames` frames are unacknowledged; the rest wait in a bounded
// queue that drops its oldest messages first. A stream whose oldest frame has gone unacknowledged
// for `timeoutMs` is torn down and reopened: on a partitioned link TCP would otherwise sit in
// retransmission backoff long after the partition heals.
import { PassThrough } from 'node:stream';
import { Client } from 'undici';
import type { Message, NodeId } from '../core/types.ts';
import { RAFT_STREAM_PATH, STREAM_CONTENT_TYPE } from './server.ts';
import { encodeFrame } from './frames.ts';
import { AUTH_HEADER, STREAM_BODY } from './auth.ts';
import type { RaftAuth } from './auth.ts';
import { raftConnectTls } from './tls.ts';
import type { RaftTls } from './tls.ts';

export interface PeerTransportOptions {
  /** A frame unacknowledged for this long (or a connect attempt this long) fails the stream. */
  timeoutMs?: number;
  maxQueueMessages?: number;
  maxQueueBytes?: number;
  maxBatchMessages?: number;
  maxBatchBytes?: number;
  /** Frames sent and not yet acknowledged, per peer. */
  maxInflightFrames?: number;
  onUnreachable?: (peer: NodeId) => void;
  /** Signs each stream and its frames (auth.ts); absent or disabled: plain streams. */
  auth?: RaftAuth;
}

export interface PeerStats {
  /** Messages the peer acknowledged. */
  sent: number;
  /** Streams that failed (connect error, error status, no ack in time). */
  failed: number;
  /** Messages dropped: queue overflow, or lost with a failed stream. */
  dropped: number;
  /** performance.now() of the last ack. */
  lastContact: number | null;
  lastError: string | null;
  queued: number;
  inFlight: boolean;
}

const DEFAULTS = {
  timeoutMs: 1000,
  maxQueueMessages: 4096,
  maxQueueBytes: 64 * 1024 * 1024,
  maxBatchMessages: 1024,
  maxBatchBytes: 4 * 1024 * 1024,
  maxInflightFrames: 256,
};

type PeerMap = ReadonlyMap<NodeId, string> | Readonly<Record<NodeId, string>>;

export class PeerTransport {
  private readonly opts: typeof DEFAULTS;
  private readonly onUnreachable: (peer: NodeId) => void;
  private readonly auth: RaftAuth | null;
  private readonly peers = new Map<NodeId, Peer>();
  private readonly stallTimer: NodeJS.Timeout;
  private closed = false;
  /** Messages addressed to a node not in the peer map. */
  unknownPeerDrops = 0;

  constructor(options: PeerTransportOptions = {}) {
    const { onUnreachable, auth, ...rest } = options;
    this.opts = { ...DEFAULTS, ...withoutUndefined(rest) };
    this.auth = auth ?? null;
    this.onUnreachable = onUnreachable ?? (() => {});
    this.stallTimer = setInterval(() => this.checkStalls(), Math.max(5, Math.min(50, this.opts.timeoutMs / 4)));
    this.stallTimer.unref();
  }

  /** Replaces the peer set: node id → base URL such as 'http://127.0.0.1:7001'. Throws TypeError on a bad URL. */
  setPeers(peers: PeerMap): void {
    if (this.closed) return;
    const next = new Map<NodeId, URL>();
    for (const [id, base] of peers instanceof Map ? peers : Object.entries(peers)) next.set(id, new URL(base));
    for (const [id, peer] of this.peers) {
      if (!next.has(id)) {
        void peer.close();
        this.peers.delete(id);
      }
    }
    for (const [id, url] of next) {
      const peer = this.peers.get(id);
      if (peer === undefined) this.peers.set(id, new Peer(id, url, this.opts, this.auth?.tls ?? null));
      else if (peer.url.href !== url.href) peer.readdress(url); // keeps its queue
    }
  }

  /** Queues messages by `to` and returns at once; one tick's messages go out as one frame. */
  send(msgs: readonly Message[]): void {
    if (this.closed) return;
    for (const m of msgs) {
      const peer = this.peers.get(m.to);
      if (peer === undefined) {
        this.unknownPeerDrops++;
        continue;
      }
      peer.enqueue(m, estimateSize(m));
      this.schedule(peer);
    }
  }

  /**
   * Writes what is queued now instead of at the end of this turn of the event loop: the node calls
   * it for a leader's appends, which must not wait behind its own disk write's setup.
   */
  flush(): void {
    for (const peer of this.peers.values()) if (peer.length > 0) this.pump(peer);
  }

  stats(): Map<NodeId, PeerStats> {
    const out = new Map<NodeId, PeerStats>();
    for (const [id, p] of this.peers) out.set(id, { ...p.stats, queued: p.length, inFlight: p.inflight.length > 0 });
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.stallTimer);
    const peers = [...this.peers.values()];
    this.peers.clear();
    await Promise.all(peers.map((p) => p.close()));
  }

  private schedule(peer: Peer): void {
    if (peer.scheduled) return;
    peer.scheduled = true;
    queueMicrotask(() => {
      peer.scheduled = false;
      this.pump(peer);
    });
  }

  /** Writes queued messages as frames while the window allows. */
  private pump(peer: Peer): void {
    while (!peer.closed && peer.length > 0 && peer.inflight.length < this.opts.maxInflightFrames) {
      const stream = peer.stream ?? this.open(peer);
      const batch = peer.take(this.opts.maxBatchMessages, this.opts.maxBatchBytes);
      peer.inflight.push({ at: performance.now(), msgs: batch });
      stream.body.write(encodeFrame(batch, stream.sign));
    }
  }

  /**
   * A stream refused for want of the receiver's current epoch delivered nothing: the receiver
   * checks the request before it reads a frame. Its frames go back to the head of the queue and
   * out again on a stream signed for the epoch just learned, with no unreachable report. Dropping
   * them instead cost an election round: a survivor that had never sent to the other survivor
   * lost its first PreVote after the Raft leader died, and campaigned again an election timeout
   * later (about 0.5 s more failover).
   */
  private resendForEpoch(peer: Peer, stream: Stream): void {
    if (peer.stream !== stream) return;
    const unsent = peer.endStream().flatMap((f) => f.msgs);
    if (peer.closed) return;
    peer.requeueFront(unsent, estimateSize);
    this.open(peer, true);
    this.pump(peer);
  }

  private open(peer: Peer, retriedForEpoch = false): Stream {
    const body = new PassThrough();
    body.on('error', () => {}); // undici may destroy it with an error when the request fails; fail() reports that
    const abort = new AbortController();
    const signed = this.auth?.sign(peer.url.origin, 'POST', peer.path, STREAM_BODY) ?? null;
    const stream: Stream = { body, abort, sign: signed ? this.auth!.frameSigner(signed.nonce) : undefined };
    peer.stream = stream;
    peer.client
      .request({
        method: 'POST',
        path: peer.path,
        headers: { 'content-type': STREAM_CONTENT_TYPE, ...(signed ? { [AUTH_HEADER]: signed.header } : {}) },
        body,
        signal: abort.signal,
        // The answer is the ack stream itself: it neither ends nor needs to start on a schedule.
        headersTimeout: 0,
        bodyTimeout: 0,
      })
      .then(async (res) => {
        // A refusal for want of a current epoch teaches the one to sign for, and its frames go again.
        this.auth?.learn(peer.url.origin, res.headers);
        if (res.statusCode !== 200) {
          const reason = await errorText(res.body);
          if (res.statusCode === 401 && reason.includes('ERR_AUTH_EPOCH') && !retriedForEpoch) {
            this.resendForEpoch(peer, stream);
            return;
          }
          this.fail(peer, stream, `peer answered ${res.statusCode}: ${reason}`);
          return;
        }
        const acks = res.body as unknown as NodeJS.ReadableStream;
        acks.on('data', (chunk: Buffer) => {
          if (peer.stream === stream) this.acked(peer, chunk.length);
        });
        await new Promise<void>((resolve) => {
          acks.once('end', resolve);
          acks.once('error', resolve);
          acks.once('close', resolve);
        });
        this.fail(peer, stream, 'peer closed the stream');
      })
      .catch((err: unknown) => this.fail(peer, stream, err instanceof Error ? `${err.name}: ${err.message}` : String(err)));
    return stream;
  }

  private acked(peer: Peer, frames: number): void {
    for (let i = 0; i < frames && peer.inflight.length > 0; i++) peer.stats.sent += peer.inflight.shift()!.msgs.length;
    peer.stats.lastContact = performance.now();
    if (peer.length > 0) this.schedule(peer);
  }

  /** Tears a stream down: its unacknowledged messages are lost (Raft retransmits), the node is told. */
  private fail(peer: Peer, stream: Stream, reason: string): void {
    if (peer.stream !== stream) return; // already replaced
    peer.dropStream();
    if (peer.closed) return;
    peer.stats.failed++;
    peer.stats.lastError = reason;
    try {
      this.onUnreachable(peer.id);
    } catch {
      // The callback is the node's; a throw here must not become an unhandled rejection.
    }
    if (peer.length > 0) this.schedule(peer);
  }

  private checkStalls(): void {
    const now = performance.now();
    for (const peer of this.peers.values()) {
      const oldest = peer.inflight[0];
      if (peer.stream && oldest && now - oldest.at > this.opts.timeoutMs) {
        this.fail(peer, peer.stream, `no answer within ${this.opts.timeoutMs} ms (timeout)`);
      }
    }
  }
}

interface Stream {
  body: PassThrough;
  abort: AbortController;
  /** MACs this stream's frames, in order (authenticated streams). */
  sign: ((body: Buffer) => Buffer) | undefined;
}

/** One peer's connection, stream and ordered queue (an array with a moving head, so dropping the oldest is O(1)). */
class Peer {
  client: Client;
  url: URL;
  path: string;
  stream: Stream | null = null;
  /** Frames written and not yet acknowledged, with their messages (resent if the stream is refused for its epoch). */
  inflight: { at: number; msgs: Message[] }[] = [];
  scheduled = false;
  closed = false;
  private msgs: Message[] = [];
  private sizes: number[] = [];
  private head = 0;
  private bytes = 0;
  readonly stats: Omit<PeerStats, 'queued' | 'inFlight'> = { sent: 0, failed: 0, dropped: 0, lastContact: null, lastError: null };

  constructor(
    readonly id: NodeId,
    url: URL,
    private readonly opts: typeof DEFAULTS,
    private readonly tls: RaftTls | null,
  ) {
    this.url = url;
    this.path = pathFor(url);
    this.client = newClient(url, opts.timeoutMs, tls);
  }

  readdress(url: URL): void {
    const old = this.client;
    this.url = url;
    this.path = pathFor(url);
    this.client = newClient(url, this.opts.timeoutMs, this.tls);
    this.dropStream();
    void old.destroy().catch(() => {});
  }

  get length(): number {
    return this.msgs.length - this.head;
  }

  enqueue(m: Message, size: number): void {
    this.msgs.push(m);
    this.sizes.push(size);
    this.bytes += size;
    while (this.length > this.opts.maxQueueMessages || (this.length > 0 && this.bytes > this.opts.maxQueueBytes)) {
      this.bytes -= this.sizes[this.head];
      this.head++;
      this.stats.dropped++;
    }
    this.compact();
  }

  /** Puts messages back ahead of everything queued, in their order; the queue bounds apply as in enqueue(). */
  requeueFront(msgs: readonly Message[], sizeOf: (m: Message) => number): void {
    if (msgs.length === 0) return;
    const rest = this.msgs.slice(this.head);
    const restSizes = this.sizes.slice(this.head);
    this.msgs = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
    for (const m of msgs) this.enqueue(m, sizeOf(m));
    rest.forEach((m, i) => this.enqueue(m, restSizes[i]));
  }

  take(maxMessages: number, maxBytes: number): Message[] {
    let end = this.head;
    let bytes = 0;
    while (end < this.msgs.length && end - this.head < maxMessages && (end === this.head || bytes + this.sizes[end] <= maxBytes)) {
      bytes += this.sizes[end];
      end++;
    }
    const batch = this.msgs.slice(this.head, end);
    this.bytes -= bytes;
    this.head = end;
    this.compact();
    return batch;
  }

  /** Tears the stream down and hands back its unacknowledged frames (none without a stream). */
  endStream(): { at: number; msgs: Message[] }[] {
    const stream = this.stream;
    if (!stream) return [];
    this.stream = null;
    stream.abort.abort();
    stream.body.destroy();
    const unacked = this.inflight;
    this.inflight = [];
    return unacked;
  }

  /** Tears the stream down; its unacknowledged messages count as dropped (Raft retransmits). */
  dropStream(): void {
    for (const f of this.endStream()) this.stats.dropped += f.msgs.length;
  }

  close(): Promise<void> {
    this.closed = true;
    this.dropStream();
    this.stats.dropped += this.length;
    this.msgs = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
    return this.client.destroy().catch(() => {});
  }

  private compact(): void {
    if (this.head === this.msgs.length) {
      this.msgs = [];
      this.sizes = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.msgs.length) {
      this.msgs = this.msgs.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }
}

function pathFor(url: URL): string {
  return url.pathname.replace(/\/+$/, '') + RAFT_STREAM_PATH;
}

/** The connect timeout matters most: undici's default of 10 s would stall a peer whose host is down. */
function newClient(url: URL, timeoutMs: number, tls: RaftTls | null): Client {
  return new Client(url.origin, { connectTimeout: timeoutMs, keepAliveTimeout: 60_000, ...(tls ? { connect: raftConnectTls(tls) } : {}) });
}

/** Rough encoded size, for the queue and batch byte bounds; the data payloads dominate. */
function estimateSize(m: Message): number {
  let n = 96;
  if (m.type === 'app') for (const e of m.entries) n += 24 + e.data.byteLength;
  else if (m.type === 'snap') n += m.snapshot.data.byteLength + 32 * (m.snapshot.meta.conf.voters.length + m.snapshot.meta.conf.learners.length);
  return n;
}

/** A short reason from an error response; stops reading early so a large body cannot cost much. */
async function errorText(body: AsyncIterable<Buffer>): Promise<string> {
  let text = '';
  try {
    for await (const chunk of body) {
      text += chunk.toString('utf8');
      if (text.length >= 300) break;
    }
  } catch {
    // A broken error body still leaves the status code to report.
  }
  return text.slice(0, 300) || '(no body)';
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
