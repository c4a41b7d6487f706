// The checkers can fail: with a known bug planted in the core, the simulator must report it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plant } from './planted-bugs.ts';
import type { PlantedBug } from './planted-bugs.ts';
import { PROFILES, runSimulation } from './simulation.ts';

/** Runs hunt-profile seeds until one fails; returns the properties it reported. */
function hunt(bug: PlantedBug, maxSeeds: number): { seed: number; properties: string[] } | null {
  const planted = plant(bug);
  try {
    for (let seed = 1; seed <= maxSeeds; seed++) {
      const r = runSimulation({ ...PROFILES.hunt, seed, forgetVote: planted.forgetVote });
      if (!r.ok) return { seed, properties: [...new Set(r.violations.map((v) => v.property))] };
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
];

for (const { bug, expect } of cases) {
  test(`planted bug "${bug}" is reported by the simulator`, () => {
    const found = hunt(bug, 300);
    assert.ok(found, `no seed in 1..300 of the hunt profile reported ${bug}`);
    assert.ok(found.properties.some((p) => expect.includes(p)), `seed ${found.seed} reported ${found.properties.join(', ')}, expected one of ${expect.join(', ')}`);
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
