// Network partitions of every shape the simulator draws (sim/nemesis.ts: isolate-one,
// isolate-leader, halves, bridge, ring, one-way), made on real links: NetLab.partition() drops
// the chosen directions with tc in each sender's namespace, healPartitions() lifts them all. The
// partition nemeses are not meant to overlap one another: a heal lifts every cut in force.
import type { FaultContext, Nemesis } from '../types.ts';
import { applyFault, indexOf } from './common.ts';

type Pair = [from: number, to: number];

/** Both directions between every node of `a` and every node of `b`. */
function cutBetween(ctx: FaultContext, a: readonly string[], b: readonly string[]): Pair[] {
  const pairs: Pair[] = [];
  for (const x of a) for (const y of b) pairs.push([indexOf(ctx, x), indexOf(ctx, y)], [indexOf(ctx, y), indexOf(ctx, x)]);
  return pairs;
}

const others = (ctx: FaultContext, name: string): string[] => ctx.nodes.filter((n) => n !== name);

/** Cuts `pairs`, records the start, and heals by lifting every cut. */
function cut(ctx: FaultContext, kind: string, targets: readonly string[], detail: string, pairs: readonly Pair[]) {
  return applyFault(ctx, { kind, targets, detail }, () => ctx.lab.partition(pairs), () => ctx.lab.healPartitions());
}

/** Node `target` cut off from all others, both ways. */
function isolate(ctx: FaultContext, kind: string, target: string, note: string) {
  const rest = others(ctx, target);
  return cut(ctx, kind, [target], `${target}${note} | ${rest.join(' ')}`, cutBetween(ctx, [target], rest));
}

/** The node `find` names, else a random one (and a note saying so, for the detail line). */
async function chosen(ctx: FaultContext, find: () => Promise<string | null>, what: string): Promise<{ name: string; note: string }> {
  const fallback = ctx.rng.pick(ctx.nodes); // drawn every time: the PRNG advances alike
  const found = await find();
  return found !== null ? { name: found, note: ` (${what})` } : { name: fallback, note: ` (no ${what} found: a random node)` };
}

export const partitionOne: Nemesis = {
  name: 'partition-one',
  description: 'a random node is cut off from all others, both ways (targets: that node)',
  inject: (ctx) => isolate(ctx, 'partition-one', ctx.rng.pick(ctx.nodes), ''),
};

export const partitionPrimary: Nemesis = {
  name: 'partition-primary',
  description: 'the node answering /primary is cut off from all others, both ways (a random node when none answers)',
  async inject(ctx) {
    const t = await chosen(ctx, () => ctx.currentPrimary(), 'primary');
    return isolate(ctx, 'partition-primary', t.name, t.note);
  },
};

export const partitionRaftLeader: Nemesis = {
  name: 'partition-raft-leader',
  description: 'the Raft leader is cut off from all others, both ways (a random node when no leader is known)',
  async inject(ctx) {
    const t = await chosen(ctx, () => ctx.raftLeader(), 'raft leader');
    return isolate(ctx, 'partition-raft-leader', t.name, t.note);
  },
};

export const partitionHalves: Nemesis = {
  name: 'partition-halves',
  description: 'a random minority | majority, both ways: 1 | 2 with 3 nodes, 2 | 3 with 5 (targets: the minority)',
  inject(ctx) {
    const ids = ctx.rng.shuffle(ctx.nodes);
    const minority = ids.slice(0, Math.floor(ids.length / 2)).sort();
    const majority = ids.slice(minority.length).sort();
    return cut(ctx, 'partition-halves', minority, `${minority.join(' ')} | ${majority.join(' ')}`, cutBetween(ctx, minority, majority));
  },
};

export const partitionRing: Nemesis = {
  name: 'partition-ring',
  description:
    'nodes in a random ring, each seeing only its two neighbours: each has a majority, no two the same one (meant for 5 nodes, works from 4; with 3 every node neighbours both others, so it cuts nothing and records that: nemesesFor(3) leaves it out)',
  inject(ctx) {
    const ring = ctx.rng.shuffle(ctx.nodes);
    const pairs: Pair[] = [];
    for (let i = 0; i < ring.length; i++) {
      for (let j = i + 1; j < ring.length; j++) {
        const d = Math.min(j - i, ring.length - (j - i));
        if (d > 1) pairs.push(...cutBetween(ctx, [ring[i]!], [ring[j]!]));
      }
    }
    if (pairs.length === 0) return cut(ctx, 'partition-ring', [], `no cut: with ${ring.length} nodes every node neighbours all others`, []);
    return cut(ctx, 'partition-ring', [...ring], `ring ${ring.join('-')}-${ring[0]}`, pairs);
  },
};

export const partitionBridge: Nemesis = {
  name: 'partition-bridge',
  description: 'two halves cut from each other, both ways, and one node in neither that sees both (3 nodes: 1 | bridge | 1; 5: 2 | bridge | 2; targets: the bridge)',
  inject(ctx) {
    const [bridge, ...rest] = ctx.rng.shuffle(ctx.nodes);
    const half = Math.ceil(rest.length / 2);
    const left = rest.slice(0, half).sort();
    const right = rest.slice(half).sort();
    return cut(ctx, 'partition-bridge', [bridge!], `${left.join(' ')} | ${bridge} | ${right.join(' ')} (${bridge} sees both sides)`, cutBetween(ctx, left, right));
  },
};

/** The primary (else a random node) sends but hears nothing (`deaf`), or hears but nothing it sends arrives. */
function oneWay(kind: string, deaf: boolean): Nemesis {
  return {
    name: kind,
    description: deaf
      ? 'the primary can send to every other node but hears nothing from them (a random node when none answers /primary)'
      : 'the primary hears every other node but nothing it sends arrives (a random node when none answers /primary)',
    async inject(ctx) {
      const t = await chosen(ctx, () => ctx.currentPrimary(), 'primary');
      const p = indexOf(ctx, t.name);
      const rest = others(ctx, t.name);
      const pairs: Pair[] = rest.map((o) => (deaf ? [indexOf(ctx, o), p] : [p, indexOf(ctx, o)]));
      const detail = deaf ? `${rest.join(' ')} -x-> ${t.name}${t.note}; ${t.name} -> all` : `${t.name}${t.note} -x-> ${rest.join(' ')}; all -> ${t.name}`;
      return cut(ctx, kind, [t.name], detail, pairs);
    },
  };
}

export const partitionOneWay = oneWay('partition-one-way', true);
export const partitionOneWayIn = oneWay('partition-one-way-in', false);

export const PARTITION_NEMESES: readonly Nemesis[] = [partitionOne, partitionPrimary, partitionRaftLeader, partitionHalves, partitionRing, partitionBridge, partitionOneWay, partitionOneWayIn];
