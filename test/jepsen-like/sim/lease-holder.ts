// A client that holds a lease the way the HA leader will hold the leader key: grant, attach a key,
// keep alive every third of the TTL, and count its own deadline from the moment it *sent* each
// renewal that was acknowledged. The lease-safety check: no revoke of its lease takes effect
// anywhere before that deadline. Each acquisition uses a fresh lease id, so a late revoke of an
// old lease is never mistaken for one of the current lease.
import type { NodeId } from '../../../src/raft/core/types.ts';
import { encodeCommand } from '../../../src/raft/kv/commands.ts';
import type { KvOp, KvResult } from '../../../src/raft/kv/commands.ts';
import type { EventQueue } from './event-queue.ts';
import type { Prng } from './prng.ts';
import type { SimNode } from './sim-node.ts';
import type { Violation } from './raft-invariants.ts';

export class LeaseHolder {
  /** Per lease id: the holder's own deadline (latest acknowledged renewal's send time + TTL). */
  private readonly deadlines = new Map<string, number>();
  private readonly revoked = new Set<string>();
  readonly violations: Violation[] = [];
  renewalsAcked = 0;
  revocations = 0;
  private generation = 0;
  private holding: string | null = null;
  private seq = 0;
  private leaderHint: NodeId | null = null;
  private stopped = false;

  constructor(
    private readonly queue: EventQueue,
    private readonly rng: Prng,
    private readonly nodes: () => SimNode[],
    private readonly ttlMs: number,
    private readonly trace: (line: string) => void,
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
  }

  /** Called by every node that applies a revoke; the first application is when the key vanished. */
  onRevoked(lease: string): void {
    if (this.revoked.has(lease)) return;
    this.revoked.add(lease);
    this.revocations++;
    const deadline = this.deadlines.get(lease);
    if (deadline !== undefined && this.queue.now < deadline) {
      this.violations.push({ property: 'lease safety', time: this.queue.now, detail: `lease ${lease} was revoked at ${this.queue.now}ms, before its holder's deadline ${deadline}ms` });
    }
    if (this.holding === lease) this.holding = null;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.queue.after(Math.max(1, Math.floor(this.ttlMs / 3) - this.rng.int(10)), () => this.step());
  }

  private step(): void {
    if (this.stopped) return;
    if (this.holding) {
      const lease = this.holding;
      this.send({ type: 'leaseKeepAlive', lease }, (result) => {
        if (result?.type !== 'leaseKeepAlive') return;
        if (!result.found) {
          if (this.holding === lease) this.holding = null;
        }
      }, lease);
    } else {
      const lease = `L${++this.generation}`;
      this.send({ type: 'leaseGrant', lease, ttlMs: this.ttlMs }, (result) => {
        if (result?.type !== 'leaseGrant') return;
        this.send({ type: 'put', key: 'held', value: lease, lease }, (r) => {
          if (r?.type === 'put' && !this.revoked.has(lease)) this.holding = lease;
        }, null);
      }, lease);
    }
    this.schedule();
  }

  /** Proposes through some live node; on an acknowledged renewal of `renewing`, extends its deadline. */
  private send(op: KvOp, done: (result: KvResult | null) => void, renewing: string | null): void {
    const live = this.nodes().filter((n) => n.alive);
    if (live.length === 0) return done(null);
    const node = live.find((n) => n.id === this.leaderHint) ?? this.rng.pick(live);
    const sentAt = this.queue.now;
    node.propose(encodeCommand({ clientId: 'lease-holder', seq: ++this.seq, op }), (r) => {
      if (!r.ok) {
        if (r.reason === 'ERR_NOT_LEADER') this.leaderHint = node.raw?.raft.lead ?? null;
        return done(null);
      }
      this.leaderHint = node.id;
      const result = r.result.result;
      const renewed = result && ((result.type === 'leaseGrant') || (result.type === 'leaseKeepAlive' && result.found));
      if (renewing && renewed) {
        this.renewalsAcked++;
        this.deadlines.set(renewing, Math.max(this.deadlines.get(renewing) ?? 0, sentAt + this.ttlMs));
        this.trace(`lease holder: ${renewing} renewed (sent ${sentAt}ms), holds until ${sentAt + this.ttlMs}ms`);
      }
      done(result);
    });
  }
}
