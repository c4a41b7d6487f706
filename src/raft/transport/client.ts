// Sending side of the Raft transport. Like etcd's rafthttp, sending never blocks the node and never
// fails loudly: Raft tolerates lost messages, so a batch that cannot be delivered is dropped,
// counted, and reported through onUnreachable (the node passes it on to Raft, which then probes).
// It must not reorder, though: one queue and at most one request in flight per peer, because
// parallel requests on a pool would overtake each other and turn a stream of appends into rejects.
import { performance } from 'node:perf_hooks';
import { Client } from 'undici';
import type { Message, NodeId } from '../core/types.ts';
import { encodeMessages } from './codec.ts';
import { MSGPACK_CONTENT_TYPE, RAFT_MESSAGES_PATH } from './server.ts';

export interface PeerTransportOptions {
  /** Connect, headers and body timeout of each request, ms. */
  timeoutMs?: number;
  /** Queue bound per peer; beyond it the oldest messages are dropped. */
  maxQueueMessages?: number;
  maxQueueBytes?: number;
  /** Batch bounds; keep them within the receiver's DecodeLimits. A bigger single message goes alone. */
  maxBatchMessages?: number;
  maxBatchBytes?: number;
  /** A batch to `peer` was lost (error, timeout or refusal). Called synchronously; must not block. */
  onUnreachable?: (peer: NodeId) => void;
}

export interface PeerStats {
  /** Messages the peer acknowledged. */
  sent: number;
  /** Requests that failed; their messages are lost. */
  failed: number;
  /** Messages dropped unsent: queue full, peer removed or transport closed. */
  dropped: number;
  /** performance.now() of the last acknowledged request, or null if none yet. */
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
};

const MIN_BYTES_PER_MS = 10_000;
/** Requests in flight per peer, in order on one connection. */
const PIPELINE_DEPTH = 8;

type PeerMap = ReadonlyMap<NodeId, string> | Readonly<Record<NodeId, string>>;

export class PeerTransport {
  private readonly opts: typeof DEFAULTS;
  private readonly onUnreachable: (peer: NodeId) => void;
  private readonly peers = new Map<NodeId, Peer>();
  private closed = false;
  /** Messages addressed to a node not in the peer map. */
  unknownPeerDrops = 0;

  constructor(options: PeerTransportOptions = {}) {
    const { onUnreachable, ...rest } = options;
    this.opts = { ...DEFAULTS, ...withoutUndefined(rest) };
    this.onUnreachable = onUnreachable ?? (() => {});
  }

  /** Replaces the peer set: node id → base URL such as 'http://127.0.0.1:7001'. Throws TypeError on a bad URL. */
  setPeers(peers: PeerMap): void {
    if (this.closed) return;
    const next = new Map<NodeId, URL>();
    for (const [id, base] of peers instanceof Map ? peers : Object.entries(peers)) next.set(id, new URL(base));
    for (const [id, peer] of this.peers) {
      if (!next.has(id)) {
        peer.close();
        this.peers.delete(id);
      }
    }
    for (const [id, url] of next) {
      const peer = this.peers.get(id);
      if (peer === undefined) this.peers.set(id, new Peer(id, url, this.opts.timeoutMs));
      else if (peer.url.href !== url.href) peer.connect(url, this.opts.timeoutMs); // keeps its queue
    }
  }

  /** Queues messages by `to` and returns at once; delivery starts in a microtask so one tick's messages share a request. */
  send(msgs: readonly Message[]): void {
    if (this.closed) return;
    for (const m of msgs) {
      const peer = this.peers.get(m.to);
      if (peer === undefined) {
        this.unknownPeerDrops++;
        continue;
      }
      peer.push(m, estimateSize(m), this.opts.maxQueueMessages, this.opts.maxQueueBytes);
      this.schedule(peer);
    }
  }

  stats(): Map<NodeId, PeerStats> {
    const out = new Map<NodeId, PeerStats>();
    for (const [id, p] of this.peers) out.set(id, { ...p.stats, queued: p.length, inFlight: p.requests > 0 });
    return out;
  }

  /** Drops everything queued or in flight and closes the connections. */
  async close(): Promise<void> {
    this.closed = true;
    const peers = [...this.peers.values()];
    this.peers.clear();
    await Promise.all(peers.map((p) => p.close()));
  }

  private schedule(peer: Peer): void {
    if (peer.scheduled || peer.requests >= PIPELINE_DEPTH) return;
    peer.scheduled = true;
    queueMicrotask(() => {
      peer.scheduled = false;
      this.drain(peer);
    });
  }

  /**
   * Starts requests until the queue is empty or the pipeline is full. Requests go out in order
   * on the peer's single connection (HTTP/1.1 pipelining), so order is kept without waiting for
   * each answer: a message does not sit behind the round trip of the one before it.
   */
  private drain(peer: Peer): void {
    while (!peer.closed && peer.length > 0 && peer.requests < PIPELINE_DEPTH) {
      const batch = peer.take(this.opts.maxBatchMessages, this.opts.maxBatchBytes);
      peer.requests++;
      void this.post(peer, batch).finally(() => {
        peer.requests--;
        if (peer.length > 0) this.schedule(peer);
      });
    }
  }

  private async post(peer: Peer, batch: Message[]): Promise<void> {
    const client = peer.client;
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let error: string;
    try {
      const body = encodeMessages(batch);
      // undici checks headersTimeout/bodyTimeout on a coarse clock (they fire up to ~1 s late), so a
      // precise deadline bounds how long a silent peer holds its queue. Large bodies (snapshots)
      // get extra time at an assumed floor of 10 MB/s.
      const ms = deadline(body.byteLength, this.opts.timeoutMs);
      timer = setTimeout(() => abort.abort(new Error(`no answer within ${ms} ms (timeout)`)), ms);
      const res = await client.request({
        method: 'POST',
        path: peer.path,
        headers: { 'content-type': MSGPACK_CONTENT_TYPE },
        body,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
        signal: abort.signal,
      });
      if (res.statusCode >= 200 && res.statusCode < 300) {
        await res.body.dump(); // drained, so the keep-alive connection can carry the next batch
        peer.stats.sent += batch.length;
        peer.stats.lastContact = performance.now();
        return;
      }
      error = `peer answered ${res.statusCode}: ${await errorText(res.body)}`;
    } catch (err) {
      error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    } finally {
      clearTimeout(timer);
    }
    if (peer.closed || peer.client !== client) {
      // Removed, closed or re-addressed while the request was out: not the peer's fault.
      peer.stats.dropped += batch.length;
      return;
    }
    peer.stats.failed++;
    peer.stats.lastError = error;
    try {
      this.onUnreachable(peer.id);
    } catch {
      // The callback is the node's; a throw here would become an unhandled rejection and kill the process.
    }
  }
}

/** One peer's connection and ordered queue (an array with a moving head, so dropping the oldest is O(1)). */
class Peer {
  client!: Client;
  url!: URL;
  path = RAFT_MESSAGES_PATH;
  private msgs: Message[] = [];
  private sizes: number[] = [];
  private head = 0;
  private bytes = 0;
  /** Requests sent and not yet answered (at most PIPELINE_DEPTH). */
  requests = 0;
  scheduled = false;
  closed = false;
  readonly stats: Omit<PeerStats, 'queued' | 'inFlight'> = { sent: 0, failed: 0, dropped: 0, lastContact: null, lastError: null };

  constructor(readonly id: NodeId, url: URL, timeoutMs: number) {
    this.connect(url, timeoutMs);
  }

  connect(url: URL, timeoutMs: number): void {
    const old = this.client as Client | undefined;
    this.url = url;
    this.path = url.pathname.replace(/\/+$/, '') + RAFT_MESSAGES_PATH;
    // One connection, so requests stay in order. The connect timeout matters most:
    // undici's default of 10 s would stall the queue for a peer whose host is down.
    this.client = new Client(url.origin, { connectTimeout: timeoutMs, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, pipelining: PIPELINE_DEPTH });
    if (old) void old.destroy().catch(() => {});
  }

  get length(): number {
    return this.msgs.length - this.head;
  }

  push(m: Message, size: number, maxMessages: number, maxBytes: number): void {
    this.msgs.push(m);
    this.sizes.push(size);
    this.bytes += size;
    while (this.length > maxMessages || (this.length > 0 && this.bytes > maxBytes)) {
      this.bytes -= this.sizes[this.head];
      this.head++;
      this.stats.dropped++;
    }
    this.compact();
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

  close(): Promise<void> {
    this.closed = true;
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

function deadline(bodyBytes: number, timeoutMs: number): number {
  return timeoutMs + Math.ceil(bodyBytes / MIN_BYTES_PER_MS);
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
      if (text.length >= 300) break; // leaving the loop destroys the body; this connection is dropped
    }
  } catch {
    // A broken error body still leaves the status code to report.
  }
  return text.slice(0, 300) || '(no body)';
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
