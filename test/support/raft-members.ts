// In-process Raft members for tests: each a RaftNode behind its own fastify server on loopback,
// with real HTTP and real LevelDB. A MemberSet remembers what it started, so one stopAll() in
// after() stops members, removes data directories and frees ports, also when a test fails.
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { RaftNode } from '../../src/raft/node/raft-node.ts';
import type { RaftNodeOptions } from '../../src/raft/node/raft-node.ts';
import { registerKvApi } from '../../src/raft/node/kv-http.ts';
import { freePorts, makeTempDir, releasePorts, removeDir, sleep } from './processes.ts';

export interface Member {
  node: RaftNode;
  app: FastifyInstance;
}

type MemberOptions = Partial<Omit<RaftNodeOptions, 'id' | 'dataDir' | 'peers' | 'logger'>>;

/** Fast timing for tests: 10 ms ticks, elections after 200–400 ms. */
const TEST_TIMING = { tickMs: 10, electionTicks: 20, heartbeatTicks: 2 };

export class MemberSet {
  readonly running: Member[] = [];
  private readonly dirs: string[] = [];
  private readonly ports: number[] = [];
  private readonly logger = pino({ level: 'silent' });

  async tempDir(prefix: string): Promise<string> {
    const dir = await makeTempDir(prefix);
    this.dirs.push(dir);
    return dir;
  }

  async allocatePorts(n: number): Promise<number[]> {
    const p = await freePorts(n);
    this.ports.push(...p);
    return p;
  }

  async start(id: string, port: number, dataDir: string, peers: Record<string, string>, opts: MemberOptions = {}): Promise<Member> {
    const app = Fastify();
    const node = await RaftNode.start({ ...TEST_TIMING, ...opts, id, dataDir, peers, logger: this.logger }, app);
    // The debugging API too: membership probes (a joiner's, a removed member's) read through it.
    registerKvApi(app, node);
    await app.listen({ host: '127.0.0.1', port });
    const member = { node, app };
    this.running.push(member);
    return member;
  }

  /** Starts a fresh cluster of `ids` in a new temp dir; returns the members by id and their peer map. */
  async cluster(ids: string[], prefix: string, opts: MemberOptions = {}): Promise<{ members: Map<string, Member>; peers: Record<string, string>; root: string; ports: number[] }> {
    const root = await this.tempDir(prefix);
    const ports = await this.allocatePorts(ids.length);
    const peers = Object.fromEntries(ids.map((id, i) => [id, `http://127.0.0.1:${ports[i]}`]));
    const members = new Map<string, Member>();
    for (const [i, id] of ids.entries()) members.set(id, await this.start(id, ports[i], `${root}/${id}`, peers, opts));
    return { members, peers, root, ports };
  }

  async stop(member: Member): Promise<void> {
    await member.app.close();
    await member.node.stop();
    this.running.splice(this.running.indexOf(member), 1);
  }

  leader(): RaftNode | undefined {
    return this.running.find((m) => m.node.isLeader())?.node;
  }

  async stopAll(): Promise<void> {
    for (const m of [...this.running]) await this.stop(m);
    for (const d of this.dirs) await removeDir(d);
    releasePorts(this.ports);
  }
}

/** Polls `fn` every 20 ms until it returns something truthy. */
export async function until<T>(what: string, fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
