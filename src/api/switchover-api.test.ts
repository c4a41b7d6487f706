// The stage a switchover that has not finished in time reports, instead of Patroni's bare
// "status unknown".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { switchoverStage } from './switchover-api.ts';

test('a pending switchover says how far it got', () => {
  assert.match(switchoverStage('n1', 'n1', 'n2'), /n1 has not yet released the leader lock/);
  assert.match(switchoverStage('n1', null, 'n2'), /n1 has demoted and released the leader lock; waiting for n2 to take it/);
  assert.match(switchoverStage('n1', null, null), /waiting for the best candidate/);
  assert.match(switchoverStage('n1', 'n2', 'n2'), /n2 holds the leader lock and is being promoted/);
});
