// The fault schedule: partitions of every shape, crashes with loss of unsynced writes,
// lossy links, leadership transfers and membership changes, drawn from the seed.
import type { NodeId } from '../../../src/raft/core/types.ts';
import type { Prng } from './prng.ts';
import type { SimCluster } from './simulation.ts';

export type FaultKind = 'partition' | 'crash' | 'lossy' | 'transfer' | 'membership';
export const ALL_FAULTS: readonly FaultKind[] = ['partition', 'crash', 'lossy', 'transfer', 'membership'];

export class Nemesis {
  private readonly rng: Prng;
  private readonly cluster: SimCluster;
  private readonly faults: readonly FaultKind[];
  private nextNodeNumber: number;
  /** A joined learner waiting to be promoted once it has caught up. */
  private joining: NodeId | null = null;

  private readonly downtime: [number, number];

  constructor(rng: Prng, cluster: SimCluster, faults: readonly FaultKind[], downtime: [number, number]) {
    this.rng = rng;
    this.downtime = downtime;
    this.cluster = cluster;
    this.faults = faults;
    this.nextNodeNumber = cluster.nodeIds().length + 1;
  }

  /** One fault (or a repair), chosen at random. */
  step(): void {
    const c = this.cluster;
    if (this.rng.chance(0.3)) {
      this.repair();
      return;
    }
    const kind = this.rng.pick(this.faults);
    switch (kind) {
      case 'partition':
        this.partition();
        break;
      case 'crash': {
        const victims = c.liveMembers();
        if (victims.length === 0) break;
        const target = this.rng.chance(0.4) ? c.leaderId() ?? this.rng.pick(victims) : this.rng.pick(victims);
        c.crash(target, this.rng.between(this.downtime[0], this.downtime[1]));
        break;
      }
      case 'lossy':
        c.network.profile = { ...c.network.profile, dropRate: this.rng.pick([0, 0.05, 0.2, 0.5]), duplicateRate: this.rng.pick([0, 0.05, 0.2]) };
        c.log(`nemesis: links drop ${c.network.profile.dropRate}, duplicate ${c.network.profile.duplicateRate}`);
        break;
      case 'transfer': {
        const leader = c.leaderId();
        if (!leader) break;
        const voters = c.voterIds().filter((id) => id !== leader);
        if (voters.length === 0) break;
        const target = this.rng.pick(voters);
        c.log(`nemesis: transfer leadership ${leader} -> ${target}`);
        c.node(leader).transferLeadership(target);
        break;
      }
      case 'membership':
        this.membership();
        break;
    }
  }

  private partition(): void {
    const c = this.cluster;
    const ids = this.rng.shuffle(c.memberIds());
    const shape = this.rng.pick(['isolate-leader', 'isolate-one', 'halves', 'bridge', 'ring', 'one-way'] as const);
    c.network.heal();
    switch (shape) {
      case 'isolate-leader':
      case 'isolate-one': {
        const target = shape === 'isolate-leader' ? c.leaderId() ?? ids[0] : ids[0];
        for (const other of ids) if (other !== target) c.network.cut(target, other);
        break;
      }
      case 'halves': {
        const split = this.rng.between(1, Math.max(1, ids.length - 1));
        for (const a of ids.slice(0, split)) for (const b of ids.slice(split)) c.network.cut(a, b);
        break;
      }
      case 'bridge': {
        // Two sides that see only the bridge node in the middle (Howard & Abraham's case).
        const bridge = ids[0];
        const rest = ids.slice(1);
        const half = Math.ceil(rest.length / 2);
        for (const a of rest.slice(0, half)) for (const b of rest.slice(half)) c.network.cut(a, b);
        void bridge;
        break;
      }
      case 'ring': {
        // Each node sees only its two neighbours: every node has a majority, no two the same one.
        for (let i = 0; i < ids.length; i++) {
          for (let j = i + 1; j < ids.length; j++) {
            const d = Math.min(j - i, ids.length - (j - i));
            if (d > 1) c.network.cut(ids[i], ids[j]);
          }
        }
        break;
      }
      case 'one-way': {
        const [a, b] = ids;
        if (b !== undefined) c.network.cutOneWay(a, b);
        break;
      }
    }
    c.log(`nemesis: partition ${shape}: ${c.network.describeCuts() || '(none)'}`);
  }

  private repair(): void {
    const c = this.cluster;
    c.network.heal();
    c.network.profile = { ...c.network.profile, dropRate: 0.01, duplicateRate: 0.01 };
    c.log('nemesis: heal network');
  }

  private membership(): void {
    const c = this.cluster;
    const leader = c.leaderId();
    if (!leader) return;
    const leaderNode = c.node(leader);
    if (this.joining) {
      const pr = leaderNode.raw.status().progress[this.joining];
      if (pr && pr.isLearner && pr.match >= leaderNode.raw.status().commit) {
        const err = leaderNode.proposeConfChange({ type: 'promote', node: this.joining });
        c.log(`nemesis: promote ${this.joining}${err ? ` refused (${err})` : ''}`);
        if (!err) this.joining = null;
      } else if (!pr) {
        this.joining = null; // the learner entry never committed; forget it
      }
      return;
    }
    const voters = c.voterIds();
    if (voters.length > 3 && this.rng.chance(0.5)) {
      const victim = this.rng.pick(voters);
      const err = leaderNode.proposeConfChange({ type: 'remove', node: victim });
      c.log(`nemesis: remove ${victim}${err ? ` refused (${err})` : ''}`);
      return;
    }
    if (voters.length >= 5) return;
    const id = `n${this.nextNodeNumber}`;
    const err = leaderNode.proposeConfChange({ type: 'addLearner', node: id });
    c.log(`nemesis: add learner ${id}${err ? ` refused (${err})` : ''}`);
    if (!err) {
      this.nextNodeNumber++;
      this.joining = id;
      c.addNode(id);
    }
  }
}
