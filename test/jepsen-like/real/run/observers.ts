// The run's observers besides the clients, started once the cluster is ready and stopped with the
// clients: the agents' log lines (decisions, stamped on arrival), each node's /patroni and Raft
// /v1/status every 500 ms (WAL positions, terms, leaders; a change of the primaries seen is
// recorded in the history), and a probe of the cluster store (put/get on keys of its own, reads
// of the leader key with their revision). The promotions and store checkers judge what they saw.
import type { AgentCluster } from '../../../support/agents.ts';
import { sleep } from '../../../support/processes.ts';
import { Prng } from '../../sim/prng.ts';
import type { AgentDecision, PositionSample, RaftSample, StoreOp } from '../checkers.ts';
import type { RunEvent } from '../types.ts';
import { AgentStdout } from './agent-stdout.ts';
import { LEADER_KEY, raftStatus } from './snapshot.ts';

const PROBE_PREFIX = '/jepsen/probe/';

export class Observers {
  readonly decisions: AgentDecision[] = [];
  readonly positions: PositionSample[] = [];
  readonly raftSamples: RaftSample[] = [];
  readonly storeOps: StoreOp[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];
  private readonly stdout: AgentStdout;
  private primaries = '';
  private believedLeader: string | null = null;
  private storeIds = 0;

  constructor(
    private readonly cluster: AgentCluster,
    private readonly nodes: readonly string[],
    private readonly now: () => number,
    private readonly record: (e: RunEvent) => void,
  ) {
    this.stdout = new AgentStdout(cluster, nodes, (node, line) => this.onLine(node, line));
  }

  start(): void {
    this.loops.push(this.every(200, () => this.stdout.follow()));
    this.loops.push(this.every(500, () => this.pollStatus()));
    for (const n of this.nodes) this.loops.push(this.probeLoop(n));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    this.loops = [];
    this.stdout.follow();
    this.stdout.stop();
  }

  private async every(ms: number, fn: () => unknown): Promise<void> {
    while (!this.stopped) {
      await fn();
      await sleep(ms);
    }
  }

  private onLine(node: string, line: string): void {
    if (!line.startsWith('{')) return;
    try {
      const j = JSON.parse(line) as { level?: number; msg?: unknown };
      if (typeof j.msg === 'string' && (j.level ?? 0) >= 30) this.decisions.push({ at: this.now(), node, msg: j.msg });
    } catch {
      // not a JSON line
    }
  }

  private async pollStatus(): Promise<void> {
    const answers = await Promise.all(this.nodes.map(async (n) => ({ n, api: await this.cluster.api(n), raft: await raftStatus(this.cluster, n) })));
    const at = this.now();
    const primaries: string[] = [];
    for (const { n, api, raft } of answers) {
      const body = api?.body as { role?: string; xlog?: { location?: number; received_location?: number; replayed_location?: number } } | undefined;
      if (body?.role === 'primary' && typeof body.xlog?.location === 'number') {
        this.positions.push({ at, node: n, role: 'primary', position: body.xlog.location });
        primaries.push(n);
      } else if (body?.role === 'replica') {
        const pos = Math.max(body.xlog?.received_location ?? 0, body.xlog?.replayed_location ?? 0);
        if (pos > 0) this.positions.push({ at, node: n, role: 'replica', position: pos });
      }
      if (raft) {
        this.raftSamples.push({ at, node: n, term: raft.term, role: raft.role, leader: raft.leader });
        if (raft.role === 'leader') this.believedLeader = n;
      }
    }
    const key = primaries.join(',');
    if (key !== this.primaries) {
      this.primaries = key;
      this.record({ type: 'observation', what: 'primaries', node: primaries.length === 1 ? primaries[0] : null, at, data: { primaries } });
    }
  }

  /** One prober per member: puts of unique values to the believed Raft leader, gets through this member, reads of the leader key. */
  private async probeLoop(member: string): Promise<void> {
    const rng = new Prng(this.nodes.indexOf(member) + 17);
    for (let seq = 0; !this.stopped; seq++) {
      const draw = rng.next();
      const key = `${PROBE_PREFIX}${Math.floor(this.now() / 10_000)}`;
      if (draw < 0.35) await this.storeOp(this.believedLeader ?? member, member, 'put', key, `${member}-${seq}`);
      else if (draw < 0.7) await this.storeOp(member, member, 'get', key);
      else await this.storeOp(member, member, 'get', LEADER_KEY);
      await sleep(rng.between(100, 200));
    }
  }

  private async storeOp(target: string, client: string, kind: 'get' | 'put', key: string, value?: string): Promise<void> {
    const op: StoreOp = { id: this.storeIds++, client: `probe-${client}`, member: target, kind, key, invokeTime: this.now(), completeTime: null, outcome: 'unknown' };
    if (value !== undefined) op.value = value;
    this.storeOps.push(op);
    let connected = false;
    try {
      const res = await this.cluster.raftRequest(target, `/v1/kv/${encodeURIComponent(key)}`, {
        method: kind === 'put' ? 'PUT' : 'GET',
        ...(kind === 'put' ? { contentType: 'application/json', body: JSON.stringify({ value }) } : {}),
        timeoutMs: 2500,
      });
      connected = true;
      let body: { value?: string; modRevision?: number; error?: string } = {};
      try {
        body = JSON.parse(res.body.toString('utf8')) as typeof body;
      } catch {
        // no JSON: judged by the status alone
      }
      op.completeTime = this.now();
      if (res.status === 200) {
        op.outcome = 'ok';
        if (kind === 'get') {
          op.result = { value: body.value ?? null };
          op.modRevision = body.modRevision;
        }
      } else if (kind === 'get' && res.status === 404) {
        op.outcome = 'ok';
        op.result = { value: null };
      } else if (kind === 'get' || body.error === 'ERR_NOT_LEADER' || body.error === 'ERR_PROPOSAL_DROPPED') {
        // A read has no effect; a write refused by a follower, or whose entry was overwritten, did not happen.
        op.outcome = 'fail';
        if (body.error === 'ERR_NOT_LEADER') this.believedLeader = null;
      } else {
        op.completeTime = null; // sent, answer inconclusive: unknown
      }
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const notSent = !connected && /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|UND_ERR_CONNECT_TIMEOUT/.test(`${code} ${(err as Error).message}`);
      if (kind === 'get' || notSent) {
        op.outcome = 'fail';
        op.completeTime = this.now();
      }
    }
  }
}
