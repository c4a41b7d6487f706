// Linearizable reads through ReadIndex (thesis §6.4; etcd read_only.go, ReadOnlySafe). The leader
// records its commit index for a read, confirms it is still leader by a heartbeat round acked by a
// quorum, and only then lets the read be served once that index is applied.
import type { NodeId } from './types.ts';

export interface ReadIndexRequest {
  index: number;
  context: string;
  /** Who asked: the leader itself or a follower that forwarded the read. */
  from: NodeId;
  acks: Set<NodeId>;
}

export class ReadOnly {
  private pending = new Map<string, ReadIndexRequest>();
  private queue: string[] = [];

  addRequest(index: number, context: string, from: NodeId, self: NodeId): void {
    if (this.pending.has(context)) return;
    this.pending.set(context, { index, context, from, acks: new Set([self]) });
    this.queue.push(context);
  }

  /** Records a heartbeat answer carrying `context`; returns who has acked it so far. */
  recvAck(from: NodeId, context: string): Set<NodeId> | null {
    const req = this.pending.get(context);
    if (!req) return null;
    req.acks.add(from);
    return req.acks;
  }

  /**
   * A quorum acked `context`: that request and every one queued before it are confirmed, because
   * the heartbeat that carried the later context was sent after the earlier requests were made.
   */
  advance(context: string): ReadIndexRequest[] {
    const at = this.queue.indexOf(context);
    if (at < 0) return [];
    const released = this.queue.splice(0, at + 1).map((c) => this.pending.get(c)!);
    for (const r of released) this.pending.delete(r.context);
    return released;
  }

  lastPendingContext(): string | null {
    return this.queue.length > 0 ? this.queue[this.queue.length - 1] : null;
  }

  pendingCount(): number {
    return this.queue.length;
  }

  reset(): void {
    this.pending.clear();
    this.queue = [];
  }
}
