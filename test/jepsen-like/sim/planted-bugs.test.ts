// The checkers can fail: with a known bug planted in the core, the simulator must report it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plant } from './planted-bugs.ts';
import type { PlantedBug } from './planted-bugs.ts';
import { PROFILES, runSimulation } from './simulation.ts';

/**
 * Runs hunt-profile seeds until one reports a violation of an expected safety property. Seeds
 * that fail otherwise (a bug can also stall the cluster: liveness) are collected as evidence too.
 */
function hunt(bug: PlantedBug, expect: string[], maxSeeds: number): { seed: number; properties: string[]; otherFailures: number } | null {
  const planted = plant(bug);
  let otherFailures = 0;
  try {
    for (let seed = 1; seed <= maxSeeds; seed++) {
      const r = runSimulation({ ...PROFILES.hunt, seed, forgetVote: planted.forgetVote });
      if (r.ok) continue;
      const properties = [...new Set(r.violations.map((v) => v.property))];
      if (properties.some((p) => expect.includes(p))) return { seed, properties, otherFailures };
      otherFailures++;
    }
    return null;
  } finally {
    planted.undo();
  }
}

const cases: { bug: PlantedBug; expect: string[] }[] = [
  // Figure 8: an old-term entry "committed" by counting is later overwritten.
  { bug: 'commit-old-term', expect: ['leader completeness', 'state machine safety', 'linearizability'] },
  // A node that forgets its vote votes twice in one term.
  { bug: 'forget-vote', expect: ['election safety'] },
  // A stale append cuts off entries after it, committed ones included.
  { bug: 'truncate-on-stale-append', expect: ['leader completeness', 'state machine safety', 'durable commit', 'node error', 'linearizability'] },
  // The lease rule broken: a new Raft leader revokes leases its predecessor saw renewed.
  { bug: 'lease-no-restart', expect: ['lease safety'] },
];

for (const { bug, expect } of cases) {
  test(`planted bug "${bug}" is reported by the simulator`, () => {
    const found = hunt(bug, expect, 800);
    assert.ok(found, `no seed in 1..800 of the hunt profile reported ${bug} as a violation of ${expect.join(' or ')}`);
  });
}

test('without the planted bugs the same seeds pass', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const r = runSimulation({ ...PROFILES.hunt, seed });
    assert.ok(r.ok, `seed ${seed}: ${r.violations.map((v) => v.detail).join('; ')}`);
  }
});

test('a seed replays exactly: same seed, same trace', () => {
  const trace = (seed: number): string[] => {
    const lines: string[] = [];
    runSimulation({ seed, duration: 1500, trace: (l) => lines.push(l) });
    return lines;
  };
  const a = trace(42);
  assert.ok(a.length > 100);
  assert.deepEqual(trace(42), a);
  assert.notDeepEqual(trace(43), a);
});
