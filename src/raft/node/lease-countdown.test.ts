// The leader-side countdown: expiry on the leader's clock only, restart on leadership, renewal
// resets, one revoke at a time per lease.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseCountdown } from './lease-countdown.ts';

function clock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('a lease expires only after its full TTL since the last renewal applied here', () => {
  const c = clock();
  const lc = new LeaseCountdown(c.now);
  lc.renewed({ lease: 'L', ttlMs: 300, renewals: 1 });
  c.advance(299);
  assert.deepEqual(lc.expired(), []);
  lc.renewed({ lease: 'L', ttlMs: 300, renewals: 2 });
  c.advance(299);
  assert.deepEqual(lc.expired(), [], 'the renewal restarted the countdown');
  c.advance(1);
  assert.deepEqual(lc.expired(), [{ lease: 'L', renewals: 2 }]);
  assert.deepEqual(lc.expired(), [], 'one revoke at a time');
  lc.revokeFailed('L');
  assert.deepEqual(lc.expired(), [{ lease: 'L', renewals: 2 }], 'retried after a failed revoke');
  lc.gone('L');
  assert.deepEqual(lc.expired(), []);
});

test('a new leader restarts every countdown from its own clock', () => {
  const c = clock();
  const lc = new LeaseCountdown(c.now);
  lc.renewed({ lease: 'A', ttlMs: 500, renewals: 3 });
  c.advance(450);
  lc.clear(); // leadership lost
  assert.deepEqual(lc.expired(), []);
  c.advance(100);
  lc.restartAll([{ lease: 'A', ttlMs: 500, renewals: 3 }]);
  c.advance(499);
  assert.deepEqual(lc.expired(), [], 'the full TTL again, however long ago the last renewal was');
  assert.equal(lc.remaining('A'), 1);
  c.advance(1);
  assert.deepEqual(lc.expired(), [{ lease: 'A', renewals: 3 }]);
});
