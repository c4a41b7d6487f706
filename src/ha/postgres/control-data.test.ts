// Parsing pg_controldata output (PostgreSQL 15, C locale).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseControlData } from './control-data.ts';

const SAMPLE = `pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7642011472967116994
Database cluster state:               shut down in recovery
pg_control last modified:             Wed May 20 16:27:30 2026
Latest checkpoint location:           1/1500718
Latest checkpoint's REDO location:    0/1500718
Latest checkpoint's TimeLineID:       3
Latest checkpoint's PrevTimeLineID:   2
Latest checkpoint's oldestCommitTsXid:0
wal_level setting:                    replica
wal_log_hints setting:                on
Data page checksum version:           0
`;

test('reads identity, state, timeline, checkpoint and the rewind prerequisites', () => {
  assert.deepEqual(parseControlData(SAMPLE), {
    systemIdentifier: '7642011472967116994',
    state: 'shut down in recovery',
    timeline: 3,
    checkpointLsn: 2 ** 32 + 0x1500718,
    walLogHints: true,
    dataChecksums: false,
  });
  const other = parseControlData(SAMPLE.replace('wal_log_hints setting:                on', 'wal_log_hints setting: off').replace('version:           0', 'version: 1'));
  assert.equal(other.walLogHints, false);
  assert.equal(other.dataChecksums, true);
});

test('a missing line is an error naming it', () => {
  assert.throws(() => parseControlData(SAMPLE.replace(/^Latest checkpoint location.*$/m, '')), /Latest checkpoint location/);
});
