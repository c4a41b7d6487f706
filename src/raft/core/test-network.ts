// A synchronous in-memory cluster for the core's unit tests (after etcd raft_test.go's network):
// every node's Ready is persisted to a MemoryStorage and its messages delivered until quiet.
// `cut`, `isolate` and `drop` shape what gets through.
import type { Entry, Message, NodeId } from './types.ts';
import { MemoryStorage } from './storage.ts';
import { RawNode } from './raw-node.ts';
import type { RaftConfig } from './raft.ts';
import { decodeConfChange } from './conf-change.ts';

export interface TestNode {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
}

export class TestNetwork {
  nodes = new Map<NodeId, TestNode>();
  private cuts = new Set<string>();
  private dropTypes = new Set<Message['type']>();
  delivered: Message[] = [];

  constructor(ids: NodeId[], overrides: Partial<RaftConfig> = {}) {
    for (const id of ids) {
      const storage = MemoryStorage.bootstrap(ids);
      this.add(id, storage, overrides);
    }
  }

  add(id: NodeId, storage: MemoryStorage, overrides: Partial<RaftConfig> = {}): TestNode {
    let counter = 0;
    const node = new RawNode({
      id,
      storage,
      electionTick: 10,
      heartbeatTick: 1,
      // Deterministic "randomness": distinct per node so elections do not collide forever.
      randomInt: (n) => (counter++ * 7 + id.length * 3 + id.charCodeAt(id.length - 1)) % n,
      ...overrides,
    });
    const t: TestNode = { id, node, storage, applied: [] };
    this.nodes.set(id, t);
    return t;
  }

  get(id: NodeId): RawNode {
    return this.nodes.get(id)!.node;
  }

  cut(a: NodeId, b: NodeId): void {
    this.cuts.add(`${a}>${b}`);
    this.cuts.add(`${b}>${a}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut(id, other);
  }

  drop(type: Message['type']): void {
    this.dropTypes.add(type);
  }

  recover(): void {
    this.cuts.clear();
    this.dropTypes.clear();
  }

  /** Processes every node's Ready and delivers messages until nothing moves. */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      const outbox: Message[] = [];
      let any = false;
      for (const t of this.nodes.values()) {
        if (!t.node.hasReady()) continue;
        any = true;
        const rd = t.node.ready();
        outbox.push(...rd.messagesNow);
        if (rd.snapshot) t.storage.applySnapshot(rd.snapshot);
        t.storage.append(rd.entries);
        if (rd.hardState) t.storage.setHardState(rd.hardState);
        outbox.push(...rd.messages);
        for (const e of rd.committedEntries) {
          t.applied.push(e);
          if (e.type === 'conf') t.node.applyConfChange(decodeConfChange(e.data));
        }
        t.node.advance(rd);
      }
      for (const m of outbox) this.deliver(m);
      if (!any && outbox.length === 0) return;
    }
    throw new Error('network did not stabilize');
  }

  private deliver(m: Message): void {
    if (this.cuts.has(`${m.from}>${m.to}`) || this.dropTypes.has(m.type)) return;
    const t = this.nodes.get(m.to);
    if (!t) return;
    this.delivered.push(m);
    t.node.step(m);
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.get(id).tick();
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const t of this.nodes.values()) t.node.tick();
      this.stabilize();
    }
  }

  leader(): NodeId | null {
    for (const t of this.nodes.values()) if (t.node.raft.role === 'leader') return t.id;
    return null;
  }

  propose(id: NodeId, text: string): void {
    this.get(id).propose([new TextEncoder().encode(text)]);
    this.settle();
  }

  /** Stabilizes, then lets one leader tick carry a commit that no append has carried yet. */
  settle(): void {
    this.stabilize();
    const leader = this.leader();
    if (leader) {
      this.tick(leader);
      this.stabilize();
    }
  }

  appliedTexts(id: NodeId): string[] {
    return this.nodes.get(id)!.applied.filter((e) => e.type === 'normal' && e.data.length > 0).map((e) => new TextDecoder().decode(e.data));
  }
}
