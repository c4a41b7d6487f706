// Raft's safety properties (Raft paper Figure 3), checked as the simulation runs: each finding
// names the property, the nodes and the indexes involved.
import type { Entry, NodeId } from '../../../src/raft/core/types.ts';
import type { SimNode } from './sim-node.ts';

export interface Violation {
  property: string;
  time: number;
  detail: string;
}

export class RaftInvariants {
  violations: Violation[] = [];
  private leaders = new Map<number, NodeId>();
  /** Every entry any node applied: the committed log as the cluster saw it. */
  private committed = new Map<number, { term: number; data: string; by: NodeId }>();
  private maxCommitted = 0;
  /** Per node, the highest commit index its durable hard state ever held. */
  private durableCommit = new Map<NodeId, number>();
  private readonly now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  private fail(property: string, detail: string): void {
    if (this.violations.length < 50) this.violations.push({ property, time: this.now(), detail });
  }

  /** Election safety: at most one leader per term. Leader completeness: it holds every committed entry. */
  onRole(node: SimNode): void {
    const r = node.raw.raft;
    if (r.role !== 'leader') return;
    const prev = this.leaders.get(r.term);
    if (prev !== undefined && prev !== node.id) this.fail('election safety', `term ${r.term} has two leaders: ${prev} and ${node.id}`);
    this.leaders.set(r.term, node.id);
    const first = r.log.firstIndex();
    for (let i = Math.max(first, 1); i <= this.maxCommitted; i++) {
      const c = this.committed.get(i);
      if (!c) continue;
      const t = r.log.termOrZero(i);
      if (t !== c.term) {
        this.fail('leader completeness', `${node.id} became leader of term ${r.term} without committed entry ${i} (term ${c.term}, applied by ${c.by}); its log has term ${t} there`);
        return;
      }
    }
  }

  /** State machine safety: no two nodes apply different entries at the same index. */
  onApply(node: SimNode, e: Entry): void {
    const data = Buffer.from(e.data).toString('base64');
    const c = this.committed.get(e.index);
    if (!c) {
      this.committed.set(e.index, { term: e.term, data, by: node.id });
      this.maxCommitted = Math.max(this.maxCommitted, e.index);
    } else if (c.term !== e.term || c.data !== data) {
      this.fail('state machine safety', `${node.id} applied (index ${e.index}, term ${e.term}) but ${c.by} applied term ${c.term} there${c.data !== data ? ' with other data' : ''}`);
    }
  }

  /** The durable state is self-consistent and its commit index never regresses (across restarts too). */
  onDurable(node: SimNode): void {
    const hs = node.disk.hardState;
    const last = node.disk.lastIndex();
    if (hs.commit > last) this.fail('durable commit', `${node.id} durably committed ${hs.commit} but its durable log ends at ${last}`);
    const prev = this.durableCommit.get(node.id) ?? 0;
    if (hs.commit < prev) this.fail('commit regression', `${node.id} durable commit went back from ${prev} to ${hs.commit}`);
    this.durableCommit.set(node.id, Math.max(prev, hs.commit));
  }

  onCrashError(node: SimNode, error: unknown): void {
    const msg = error instanceof Error ? error.message : String(error);
    this.fail('node error', `${node.id} stopped: ${msg}`);
  }

  /** Log matching: two logs with an entry of the same index and term agree on every entry up to it. */
  checkLogMatching(nodes: SimNode[]): void {
    const live = nodes.filter((n) => n.alive);
    for (let x = 0; x < live.length; x++) {
      for (let y = x + 1; y < live.length; y++) {
        const a = live[x].raw.raft.log;
        const b = live[y].raw.raft.log;
        const lo = Math.max(a.firstIndex(), b.firstIndex());
        const hi = Math.min(a.lastIndex(), b.lastIndex());
        let top = 0;
        for (let i = hi; i >= lo; i--) {
          if (a.termOrZero(i) === b.termOrZero(i)) {
            top = i;
            break;
          }
        }
        if (top < lo) continue;
        const ea = a.slice(lo, top + 1, Number.MAX_SAFE_INTEGER);
        const eb = b.slice(lo, top + 1, Number.MAX_SAFE_INTEGER);
        for (let k = 0; k < ea.length; k++) {
          if (ea[k].term !== eb[k].term || Buffer.compare(Buffer.from(ea[k].data), Buffer.from(eb[k].data)) !== 0) {
            this.fail('log matching', `${live[x].id} and ${live[y].id} agree on (index ${top}, term ${a.termOrZero(top)}) but differ at index ${ea[k].index}`);
            return;
          }
        }
      }
    }
  }

  leaderCount(): number {
    return this.leaders.size;
  }
}
