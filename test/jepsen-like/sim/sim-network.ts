// The simulated network: every message may be dropped, delayed (and so reordered) or
// duplicated; links can be cut in one direction or both to build any partition.
import type { Message, NodeId } from '../../../src/raft/core/types.ts';
import type { EventQueue } from './event-queue.ts';
import type { Prng } from './prng.ts';

export interface NetworkProfile {
  dropRate: number;
  duplicateRate: number;
  minDelay: number;
  maxDelay: number;
}

export class SimNetwork {
  profile: NetworkProfile;
  private blocked = new Set<string>();
  private readonly queue: EventQueue;
  private readonly rng: Prng;
  private readonly deliver: (m: Message) => void;
  /** Tells a leader whether its snapshot arrived, as a real transport would (etcd ReportSnapshot). */
  private readonly reportSnapshot: (from: NodeId, to: NodeId, ok: boolean) => void;
  /** Tells a sender its link failed, as the real transport does when a stream breaks (sometimes). */
  reportUnreachable: (from: NodeId, to: NodeId) => void = () => {};
  stats = { sent: 0, dropped: 0, duplicated: 0 };

  constructor(queue: EventQueue, rng: Prng, profile: NetworkProfile, deliver: (m: Message) => void, reportSnapshot: (from: NodeId, to: NodeId, ok: boolean) => void) {
    this.queue = queue;
    this.rng = rng;
    this.profile = profile;
    this.deliver = deliver;
    this.reportSnapshot = reportSnapshot;
  }

  /** Blocks traffic from `from` to `to` only. */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  cut(a: NodeId, b: NodeId): void {
    this.cutOneWay(a, b);
    this.cutOneWay(b, a);
  }

  heal(): void {
    this.blocked.clear();
  }

  /** Cuts `id` off from everyone for `duration`, then restores exactly those links. */
  isolate(id: NodeId, all: NodeId[], duration: number): void {
    const added: string[] = [];
    for (const other of all) {
      if (other === id) continue;
      for (const link of [`${id}>${other}`, `${other}>${id}`]) {
        if (!this.blocked.has(link)) {
          this.blocked.add(link);
          added.push(link);
        }
      }
    }
    this.queue.after(duration, () => {
      for (const link of added) this.blocked.delete(link);
    });
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(`${from}>${to}`);
  }

  describeCuts(): string {
    return [...this.blocked].sort().join(' ');
  }

  send(m: Message): void {
    this.stats.sent++;
    const lost = this.isBlocked(m.from, m.to) || this.rng.chance(this.profile.dropRate);
    if (lost) {
      this.stats.dropped++;
      if (this.isBlocked(m.from, m.to) && this.rng.chance(0.2)) this.queue.after(this.delay() * 10, () => this.reportUnreachable(m.from, m.to));
      if (m.type === 'snap') this.queue.after(this.delay(), () => this.reportSnapshot(m.from, m.to, false));
      return;
    }
    const copies = this.rng.chance(this.profile.duplicateRate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      this.queue.after(this.delay(), () => {
        // A partition that starts while a message is in flight also stops it.
        if (this.isBlocked(m.from, m.to)) return;
        this.deliver(m);
      });
    }
    if (m.type === 'snap') this.queue.after(this.delay() * 2, () => this.reportSnapshot(m.from, m.to, true));
  }

  private delay(): number {
    return this.rng.between(this.profile.minDelay, this.profile.maxDelay);
  }
}
