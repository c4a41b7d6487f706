// A cluster of real Raft node processes (src/raft/node/main.ts) on loopback, for end-to-end tests
// and the bench. Speaks the node's JSON API: /v1/status and /v1/kv. Processes are started and
// signalled through processes.ts, so the caller's stopAll() or the exit safety net catches them too.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { freePorts, makeTempDir, releasePorts, removeDir, sleep, startProcess } from './processes.ts';
import type { ExitInfo, ProcessHandle } from './processes.ts';
import type { MemberStatus } from '../../src/raft/node/kv-http.ts';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const NODE_MAIN = join(REPO_ROOT, 'src', 'raft', 'node', 'main.ts');

/** A member's answer to GET /v1/status. */
export type NodeStatus = MemberStatus;
export type Role = MemberStatus['role'];

export interface KeyValue {
  key: string;
  value: string;
  modRevision: number;
}

export interface RaftClusterOptions {
  nodes?: number;
  /** Parent of the data dirs (one per node); a fresh temp dir by default, removed by stop(). */
  dataRoot?: string;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Per node start (tsx compiles on first start, so give it time); default 30 s. */
  startTimeoutMs?: number;
  env?: Record<string, string | undefined>;
}

export interface RaftNode {
  id: string;
  port: number;
  url: string;
  dataDir: string;
  /** The running process, or null while killed. */
  process: ProcessHandle | null;
  /** How many times the node has been started. */
  starts: number;
}

/** An HTTP answer from a node, body parsed as JSON when possible. */
export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

export class RaftCluster {
  readonly nodes: ReadonlyMap<string, RaftNode>;
  readonly dataRoot: string;
  private readonly ownsDataRoot: boolean;
  private readonly opts: RaftClusterOptions;
  private readonly peers: string;
  private readonly agent = new Agent({ connect: { timeout: 2000 }, keepAliveTimeout: 2000, connections: 64 });
  /** Whom put/get/range ask first: the last node that answered as leader. */
  private leaderHint: string | null = null;

  constructor(nodes: RaftNode[], dataRoot: string, ownsDataRoot: boolean, opts: RaftClusterOptions) {
    this.nodes = new Map(nodes.map((n) => [n.id, n]));
    this.dataRoot = dataRoot;
    this.ownsDataRoot = ownsDataRoot;
    this.opts = opts;
    this.peers = nodes.map((n) => `${n.id}=${n.url}`).join(',');
  }

  get ids(): string[] {
    return [...this.nodes.keys()];
  }

  liveIds(): string[] {
    return this.ids.filter((id) => this.node(id).process?.running === true);
  }

  node(id: string): RaftNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node '${id}' in the cluster (${this.ids.join(', ')})`);
    return n;
  }

  /** The arguments a node is started with, the same each time. */
  args(id: string): string[] {
    const n = this.node(id);
    const args = ['--import', 'tsx', NODE_MAIN, '--id', id, '--listen', `127.0.0.1:${n.port}`, '--peers', this.peers, '--data-dir', n.dataDir];
    if (this.opts.tickMs !== undefined) args.push('--tick-ms', String(this.opts.tickMs));
    if (this.opts.electionTicks !== undefined) args.push('--election-ticks', String(this.opts.electionTicks));
    if (this.opts.heartbeatTicks !== undefined) args.push('--heartbeat-ticks', String(this.opts.heartbeatTicks));
    return args;
  }

  /** Starts a node that is not running, on its port and data dir; resolves when it listens. */
  async start(id: string): Promise<void> {
    const n = this.node(id);
    if (n.process?.running) throw new Error(`${id} is already running (pid ${n.process.pid})`);
    // The port was free when picked, but after a kill something else may briefly hold it.
    for (let attempt = 1; ; attempt++) {
      try {
        n.process = await startProcess({
          cmd: process.execPath,
          args: this.args(id),
          cwd: REPO_ROOT,
          env: this.opts.env,
          name: `node ${id} (start ${n.starts + 1})`,
          timeoutMs: this.opts.startTimeoutMs ?? 30_000,
          readyLine: (line) => isListeningLine(line, id),
        });
        n.starts++;
        return;
      } catch (err) {
        if (attempt >= 5 || !/EADDRINUSE/.test((err as Error).message)) throw err;
        await sleep(200 * attempt);
      }
    }
  }

  /** Signals a node by PID and waits until it has exited. */
  async kill(id: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<ExitInfo> {
    const n = this.node(id);
    if (!n.process) throw new Error(`${id} is not running`);
    n.process.kill(signal);
    const exit = await n.process.waitForExit(10_000);
    n.process = null;
    if (this.leaderHint === id) this.leaderHint = null;
    return exit;
  }

  /** Starts a killed node again with the same arguments and data dir. */
  async restart(id: string): Promise<void> {
    const n = this.node(id);
    if (n.process?.running) await this.kill(id, 'SIGTERM');
    n.process = null;
    await this.start(id);
  }

  /** Stops every node (SIGTERM, SIGKILL after `graceMs`) and removes the data if we made it. */
  async stop(opts: { graceMs?: number; removeData?: boolean } = {}): Promise<void> {
    await Promise.all(
      [...this.nodes.values()].map(async (n) => {
        await n.process?.stop(opts.graceMs ?? 5000);
        n.process = null;
      }),
    );
    await this.agent.close().catch(() => undefined);
    releasePorts([...this.nodes.values()].map((n) => n.port));
    const keep = process.env.CONCLAVE_KEEP_DATA === '1';
    if ((opts.removeData ?? this.ownsDataRoot) && !keep) await removeDir(this.dataRoot);
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  /** One request to one node; throws on connection errors and timeouts. */
  async call(id: string, method: Dispatcher.HttpMethod, path: string, body?: unknown, timeoutMs = 5000): Promise<Reply> {
    const res = await request(`${this.node(id).url}${path}`, {
      method,
      dispatcher: this.agent,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(Math.max(1, Math.ceil(timeoutMs))),
    });
    const text = await res.body.text();
    let parsed: Record<string, unknown>;
    try {
      parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    } catch {
      parsed = { error: 'ERR_NOT_JSON', message: text.slice(0, 500) };
    }
    return { status: res.statusCode, body: parsed };
  }

  async status(id: string, timeoutMs = 2000): Promise<NodeStatus> {
    const reply = await this.call(id, 'GET', '/v1/status', undefined, timeoutMs);
    if (reply.status !== 200) throw new Error(`${id}: GET /v1/status answered ${reply.status} ${JSON.stringify(reply.body)}`);
    return reply.body as unknown as NodeStatus;
  }

  /** The status of every live node, or the error asking it. */
  async statuses(): Promise<Map<string, NodeStatus | Error>> {
    const ids = this.liveIds();
    const results = await Promise.all(ids.map((id) => this.status(id).catch((err: Error) => err)));
    return new Map(ids.map((id, i) => [id, results[i]]));
  }

  /**
   * Polls until exactly one live node says it leads and every other live node names it as leader;
   * returns its id. On timeout the error shows the last statuses and every node's stderr tail.
   */
  async waitForLeader(timeoutMs = 15_000): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    let last = new Map<string, NodeStatus | Error>();
    while (performance.now() < deadline) {
      last = await this.statuses();
      const ok = [...last.values()].filter((s): s is NodeStatus => !(s instanceof Error));
      const leaders = ok.filter((s) => s.role === 'leader');
      if (last.size > 0 && ok.length === last.size && leaders.length === 1 && ok.every((s) => s.leader === leaders[0].id)) {
        this.leaderHint = leaders[0].id;
        return leaders[0].id;
      }
      await sleep(50);
    }
    throw new Error(`no agreed leader among ${this.liveIds().join(', ')} within ${timeoutMs} ms; last statuses:\n${formatStatuses(last)}\n${this.describe()}`);
  }

  /** Polls `id` until its applied index reaches `index`. */
  async waitForApplied(id: string, index: number, timeoutMs = 15_000): Promise<NodeStatus> {
    const deadline = performance.now() + timeoutMs;
    let last: NodeStatus | Error = new Error('not asked yet');
    while (performance.now() < deadline) {
      last = await this.status(id).catch((err: Error) => err);
      if (!(last instanceof Error) && last.applied >= index) return last;
      await sleep(50);
    }
    throw new Error(`${id} did not apply index ${index} within ${timeoutMs} ms; last status: ${formatStatus(last)}\n${this.describe(id)}`);
  }

  /**
   * Writes through the leader: follows ERR_NOT_LEADER hints and retries connection errors, "no
   * leader" and ERR_TIMEOUT until `timeoutMs`. A retry after ERR_TIMEOUT or a reset may apply the
   * write twice; fine for unique keys, not for anything that counts.
   */
  async put(key: string, value: string, timeoutMs = 10_000): Promise<{ revision: number; via: string; attempts: number }> {
    const reply = await this.leaderCall('PUT', kvPath(key), { value }, timeoutMs, [200]);
    return { revision: reply.body.revision as number, via: reply.via, attempts: reply.attempts };
  }

  /** Linearizable read; through `viaNode` only when given, else through the leader. Null if absent. */
  async get(key: string, viaNode?: string, timeoutMs = 10_000): Promise<KeyValue | null> {
    const reply = await this.leaderCall('GET', kvPath(key), undefined, timeoutMs, [200, 404], viaNode);
    return reply.status === 404 ? null : (reply.body as unknown as KeyValue);
  }

  /** Linearizable prefix read; through `viaNode` only when given, else through the leader. */
  async range(prefix: string, viaNode?: string, timeoutMs = 10_000): Promise<KeyValue[]> {
    const reply = await this.leaderCall('GET', `/v1/kv?prefix=${encodeURIComponent(prefix)}`, undefined, timeoutMs, [200], viaNode);
    return reply.body.kvs as KeyValue[];
  }

  private async leaderCall(
    method: Dispatcher.HttpMethod,
    path: string,
    body: unknown,
    timeoutMs: number,
    okStatuses: number[],
    viaNode?: string,
  ): Promise<Reply & { via: string; attempts: number }> {
    const deadline = performance.now() + timeoutMs;
    let target = viaNode ?? this.leaderHint ?? this.liveIds()[0] ?? this.ids[0];
    let lastProblem = 'no attempt';
    for (let attempts = 1; ; attempts++) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) break;
      let next: string | null = null;
      let reply: Reply | null = null;
      try {
        reply = await this.call(target, method, path, body, Math.min(remaining, 5000));
      } catch (err) {
        lastProblem = `${target}: ${describeError(err)}`; // refused, reset or timed out: try another node
      }
      if (reply) {
        if (okStatuses.includes(reply.status)) {
          if (!viaNode) this.leaderHint = target;
          return { ...reply, via: target, attempts };
        }
        lastProblem = `${target} answered ${reply.status} ${JSON.stringify(reply.body)}`;
        // 4xx and 500 are answers, not unavailability: retrying would not change them.
        if (reply.status !== 503) throw new Error(`${method} ${path}: ${lastProblem}`);
        if (reply.body.error === 'ERR_NOT_LEADER') {
          const hint = typeof reply.body.leader === 'string' ? reply.body.leader : null;
          next = hint !== null && hint !== target && this.nodes.get(hint)?.process?.running ? hint : null;
        } else {
          next = target; // ERR_TIMEOUT, no leader yet, proposal dropped: the same node may do next time
        }
      }
      if (next === null || next === target) await sleep(25);
      if (viaNode) continue;
      if (next === null) {
        this.leaderHint = null;
        const live = this.liveIds();
        next = live.length === 0 ? target : live[(live.indexOf(target) + 1) % live.length];
      }
      target = next;
    }
    throw new Error(`${method} ${path} did not succeed within ${timeoutMs} ms; last: ${lastProblem}\n${this.describe()}`);
  }

  /** Every node's state and stderr tail (or one node's), for error messages. */
  describe(id?: string): string {
    const nodes = id ? [this.node(id)] : [...this.nodes.values()];
    return nodes.map((n) => (n.process ? n.process.describe() : `node ${n.id}: not running (killed)`)).join('\n');
  }
}

/** Starts the nodes (distinct ports and data dirs) and resolves when every one listens. */
export async function startRaftCluster(opts: RaftClusterOptions = {}): Promise<RaftCluster> {
  const count = opts.nodes ?? 3;
  const ownsDataRoot = opts.dataRoot === undefined;
  const dataRoot = opts.dataRoot ?? (await makeTempDir('conclave-raft'));
  const ports = await freePorts(count);
  const nodes: RaftNode[] = ports.map((port, i) => ({
    id: `n${i + 1}`,
    port,
    url: `http://127.0.0.1:${port}`,
    dataDir: join(dataRoot, `n${i + 1}`),
    process: null,
    starts: 0,
  }));
  const cluster = new RaftCluster(nodes, dataRoot, ownsDataRoot, opts);
  const started = await Promise.allSettled(nodes.map((n) => cluster.start(n.id)));
  const failed = started.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) {
    await cluster.stop({ graceMs: 1000 });
    throw new Error(`raft cluster did not start:\n${failed.map((r) => (r.reason as Error).message).join('\n')}`);
  }
  return cluster;
}

function isListeningLine(line: string, id: string): boolean {
  if (!line.startsWith('{')) return false;
  try {
    const msg = JSON.parse(line) as { event?: unknown; id?: unknown };
    return msg.event === 'listening' && msg.id === id;
  } catch {
    return false;
  }
}

export function kvPath(key: string): string {
  return `/v1/kv/${encodeURIComponent(key)}`;
}

function describeError(err: unknown): string {
  const e = err as Error & { code?: string; cause?: { code?: string } };
  return [e.name, e.code ?? e.cause?.code, e.message].filter(Boolean).join(' ');
}

function formatStatus(s: NodeStatus | Error): string {
  if (s instanceof Error) return `error: ${s.message}`;
  return `${s.role} term ${s.term} leader ${s.leader} commit ${s.commit} applied ${s.applied} last ${s.lastIndex}`;
}

function formatStatuses(statuses: Map<string, NodeStatus | Error>): string {
  if (statuses.size === 0) return '  (no live node)';
  return [...statuses].map(([id, s]) => `  ${id}: ${formatStatus(s)}`).join('\n');
}
