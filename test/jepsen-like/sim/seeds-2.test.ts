// Seeds 251..500 of the default profile, and 100 seeds of the bug-hunting profile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailures, runSeeds } from './seeds.ts';

test('seeds 251..500 (default profile): every Raft and client-history checker passes', () => {
  const { failures } = runSeeds(251, 250);
  assert.equal(failures.length, 0, describeFailures(failures));
});

test('seeds 1..100 (hunt profile: one entry per append, crash points, partitions): all pass', () => {
  const { failures } = runSeeds(1, 100, 'hunt');
  assert.equal(failures.length, 0, describeFailures(failures));
});
