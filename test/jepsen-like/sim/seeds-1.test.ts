// The simulator tier of test/jepsen-like: seeds 1..250 of the default fault profile. Together
// with seeds-2.test.ts, `npm test` runs 500 seeds; `npm run sim -- --seeds N` runs more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailures, runSeeds } from './seeds.ts';

test('seeds 1..250 (default profile): every Raft and client-history checker passes', () => {
  const { failures } = runSeeds(1, 250);
  assert.equal(failures.length, 0, describeFailures(failures));
});
