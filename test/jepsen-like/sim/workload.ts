// Clients of the replicated key-value store: each issues one operation at a time (get, put,
// compare-and-set) against some node and records invoke / ok / fail / unknown in virtual time.
// A write whose fate the client cannot know (timeout, crash of its node) is "unknown", never
// "fail"; reads are side-effect free, so a read that times out is a "fail".
import type { NodeId } from '../../../src/raft/core/types.ts';
import { encodeCommand } from '../../../src/raft/kv/commands.ts';
import type { Operation } from '../checker/history.ts';
import type { EventQueue } from './event-queue.ts';
import type { Prng } from './prng.ts';
import type { SimNode } from './sim-node.ts';

export interface WorkloadOptions {
  clients: number;
  keys: number;
  thinkMin: number;
  thinkMax: number;
  timeout: number;
}

export class Workload {
  readonly history: Operation[] = [];
  private stopped = false;
  private nextId = 0;
  private readonly opts: WorkloadOptions;
  private readonly queue: EventQueue;
  private readonly rng: Prng;
  private readonly nodes: () => SimNode[];
  private readonly trace: (line: string) => void;
  inFlight = 0;

  constructor(opts: WorkloadOptions, queue: EventQueue, rng: Prng, nodes: () => SimNode[], trace: (line: string) => void) {
    this.opts = opts;
    this.queue = queue;
    this.rng = rng;
    this.nodes = nodes;
    this.trace = trace;
  }

  start(): void {
    for (let c = 0; c < this.opts.clients; c++) this.runClient(`c${c}`);
  }

  stop(): void {
    this.stopped = true;
  }

  private runClient(client: string): void {
    let seq = 0;
    let leaderHint: NodeId | null = null;
    /** The last value and revision this client read per key, for its next compare-and-set. */
    const lastRead = new Map<string, { value: string | null; revision: number }>();

    const next = (): void => {
      if (this.stopped) return;
      this.queue.after(this.rng.between(this.opts.thinkMin, this.opts.thinkMax), issue);
    };

    const issue = (): void => {
      if (this.stopped) return;
      const live = this.nodes().filter((n) => n.alive);
      if (live.length === 0) return next();
      const hinted = live.find((n) => n.id === leaderHint);
      const node = hinted && this.rng.chance(0.8) ? hinted : this.rng.pick(live);
      const key = `k${this.rng.int(this.opts.keys)}`;
      const roll = this.rng.next();
      const op: Operation = { id: this.nextId++, client, kind: 'get', key, invokeTime: this.queue.now, completeTime: null, outcome: 'unknown' };
      this.history.push(op);
      this.inFlight++;
      let done = false;
      const finish = (outcome: Operation['outcome'], result?: { value: string | null }): void => {
        if (done) return;
        done = true;
        this.inFlight--;
        op.outcome = outcome;
        op.completeTime = outcome === 'unknown' ? null : this.queue.now;
        if (result) op.result = result;
        this.trace(`client ${client} ${op.kind} ${key}${op.value !== undefined ? `=${op.value}` : ''} via ${node.id}: ${outcome}${result ? ` ${result.value}` : ''}`);
        next();
      };
      this.queue.after(this.opts.timeout, () => finish(op.kind === 'get' ? 'fail' : 'unknown'));

      if (roll < 0.45) {
        node.read((r) => {
          if (!r.ok) {
            if (r.reason === 'ERR_NOT_LEADER') leaderHint = null;
            return finish('fail');
          }
          const kv = r.sm.get(key);
          lastRead.set(key, { value: kv?.value ?? null, revision: kv?.modRevision ?? 0 });
          finish('ok', { value: kv?.value ?? null });
        });
        return;
      }
      const value = `${client}-${seq + 1}`;
      const cas = roll >= 0.8 ? lastRead.get(key) : undefined;
      op.value = value;
      if (cas) {
        op.kind = 'cas';
        op.expected = cas.value;
      } else {
        op.kind = 'put';
      }
      const data = encodeCommand({
        clientId: client,
        seq: ++seq,
        op: cas ? { type: 'cas', key, expectRevision: cas.revision, value } : { type: 'put', key, value },
      });
      node.propose(data, (r) => {
        if (r.ok) {
          leaderHint = node.id;
          const res = r.result.result;
          if (res && res.type === 'cas' && !res.succeeded) return finish('fail');
          if (!res || ('error' in res && res.error)) return finish('unknown');
          return finish('ok');
        }
        // Refused before it entered the log: it never happened.
        if (r.reason === 'ERR_NOT_LEADER' || r.reason === 'ERR_PROPOSAL_DROPPED' || r.reason === 'down') {
          leaderHint = node.raw?.raft.lead ?? null;
          return finish('fail');
        }
        // Overwritten by another leader's entry: it can never commit.
        if (r.reason.startsWith('index ')) return finish('fail');
        // Crashed or down after proposing: it may still commit.
        finish('unknown');
      });
    };
    next();
  }
}
