// measure.ts on made-up records. Not part of `npm test` (it runs src/ and test/ only):
// node --import tsx --test bench/failover/measure.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HAPROXY_WRITER, lostWrites, measureRun, stats } from './measure.ts';
import type { WriteRecord } from './measure.ts';

let seq = 0;
function w(via: string, invokeAt: number, doneAt: number, outcome: WriteRecord['outcome'], node: string | null = outcome === 'ok' ? via : null, connStartedAt = 0): WriteRecord {
  return { seq: ++seq, via, node, invokeAt, doneAt, outcome, connStartedAt };
}

test('kill of the primary: gap to the first acknowledgement by another member, directly and through HAProxy', () => {
  const m = measureRun([
    w('n1', 900, 901, 'ok'),
    w('n2', 900, 901, 'failed'),
    w(HAPROXY_WRITER, 990, 991, 'ok', 'n1'),
    w('n1', 1000, 1001, 'unknown'),
    w('n2', 3480, 3481, 'failed'),
    w('n3', 3490, 3491, 'failed'),
    w('n2', 3500, 3502, 'ok', 'n2', 0),
    w('n3', 3510, 3511, 'failed'),
    w(HAPROXY_WRITER, 4200, 4210, 'ok', 'n2', 4100),
  ], 1000, 'n1');
  assert.equal(m.newPrimary, 'n2');
  assert.equal(m.gapMs, 2502);
  assert.equal(m.gapViaHaproxyMs, 3210);
  assert.equal(m.oldLastAckMs, null);
  assert.equal(m.writeGapMs, 3502 - 901);
  assert.equal(m.overlap, false);
  assert.deepEqual([m.acked, m.failed, m.unknown], [4, 4, 1]);
});

test('a frozen primary that acknowledges until the fence stops it, before the new primary: no overlap', () => {
  const m = measureRun([
    w('n1', 1300, 1310, 'ok'),
    w('n1', 2350, 2360, 'ok'),
    w('n1', 2380, 2400, 'unknown'),
    w('n3', 3400, 3401, 'ok'),
  ], 1000, 'n1');
  assert.equal(m.newPrimary, 'n3');
  assert.equal(m.oldLastAckMs, 1360);
  assert.equal(m.writeGapMs, 3401 - 2360);
  assert.equal(m.overlap, false);
});

test('the old primary acknowledging after the new one was first written to is an overlap', () => {
  const m = measureRun([
    w('n3', 3400, 3410, 'ok'),
    w('n1', 3390, 3415, 'ok'),
  ], 1000, 'n1');
  assert.equal(m.overlap, true);
  assert.match(m.overlapDetail ?? '', /n1 acknowledged 2415 ms after the fault/);
});

test('an acknowledgement by another member before the fault is an overlap', () => {
  const m = measureRun([w('n2', 500, 510, 'ok'), w('n1', 600, 610, 'ok'), w('n3', 2000, 2001, 'ok')], 1000, 'n1');
  assert.equal(m.overlap, true);
});

test('kill -9 of PostgreSQL alone: the old primary again, but only on a connection opened after the fault', () => {
  const m = measureRun([
    w('n1', 1000.5, 1000.7, 'ok', 'n1', 0), // on the old connection, in the instant before the kill landed
    w('n1', 2000, 2001, 'unknown', null, 0),
    w('n1', 4000, 4005, 'ok', 'n1', 3990),
    w(HAPROXY_WRITER, 5000, 5003, 'ok', 'n1', 4900),
  ], 1000, 'n1');
  assert.equal(m.newPrimary, 'n1');
  assert.equal(m.gapMs, 3005);
  assert.equal(m.gapViaHaproxyMs, 4003);
  assert.equal(m.overlap, false);
});

test('no acknowledgement after the fault: no new primary, no gap', () => {
  const m = measureRun([w('n1', 900, 901, 'ok'), w('n2', 1100, 1101, 'failed')], 1000, 'n1');
  assert.equal(m.newPrimary, null);
  assert.equal(m.gapMs, null);
  assert.equal(m.overlap, false);
});

test('lost: acknowledged rows missing; unknown ones that committed are counted apart', () => {
  const recs = [w('n1', 1, 2, 'ok'), w('n1', 3, 4, 'ok'), w('n1', 5, 6, 'unknown'), w('n1', 7, 8, 'unknown')];
  const r = lostWrites(recs, new Set([recs[0].seq, recs[2].seq]));
  assert.deepEqual(r, { lost: [recs[1].seq], unknownCommitted: 1 });
});

test('stats: min, median, max; nulls left out', () => {
  assert.deepEqual(stats([3, null, 1, 2]), { n: 3, min: 1, median: 2, max: 3 });
  assert.deepEqual(stats([4, 1, 2, 3]), { n: 4, min: 1, median: 2.5, max: 4 });
  assert.equal(stats([null]), null);
});
