// Mapping the status query's row onto PgStatus.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statusFromRow } from './status.ts';
import type { StatusRow } from './status.ts';

const base: StatusRow = {
  in_recovery: false,
  current_lsn: '0/3000060',
  current_walfile: '000000020000000000000003',
  receive_lsn: '0/2000000',
  replay_lsn: '0/2000000',
  checkpoint_tli: 1,
  receiver_status: null,
  received_tli: null,
  sender_host: null,
  sender_port: null,
  server_version: 150004,
  start_time: '2026-01-01 00:00:00+00',
  pending_restart: false,
};

test('primary: timeline from the WAL file being written (pg_control lags after promote)', () => {
  const s = statusFromRow(base);
  assert.equal(s.role, 'primary');
  assert.equal(s.timeline, 2);
  assert.equal(s.walPosition, 0x3000060);
  assert.equal(s.receivedLsn, null, 'static leftovers from before a promotion are not reported');
  assert.equal(s.replayedLsn, null);
  assert.equal(s.replicationState, null);
  assert.equal(s.running, true);
  assert.equal(s.serverVersion, 150004);
});

test('streaming replica: received timeline, max of received and replayed, upstream', () => {
  const s = statusFromRow({ ...base, in_recovery: true, current_lsn: null, current_walfile: null, receive_lsn: '0/5000000', replay_lsn: '0/4FFFFF0', receiver_status: 'streaming', received_tli: 3, sender_host: '10.0.0.1', sender_port: 5432, pending_restart: true });
  assert.equal(s.role, 'replica');
  assert.equal(s.timeline, 3);
  assert.equal(s.walPosition, 0x5000000);
  assert.equal(s.receivedLsn, 0x5000000);
  assert.equal(s.replayedLsn, 0x4fffff0);
  assert.equal(s.replicationState, 'streaming');
  assert.equal(s.upstreamHost, '10.0.0.1');
  assert.equal(s.upstreamPort, 5432);
  assert.equal(s.pendingRestart, true);
});

test('replica without a WAL receiver: in archive recovery, checkpoint timeline, replayed position', () => {
  const s = statusFromRow({ ...base, in_recovery: true, current_lsn: null, current_walfile: null, receive_lsn: null, replay_lsn: '0/4000000', checkpoint_tli: 4 });
  assert.equal(s.replicationState, 'in archive recovery');
  assert.equal(s.timeline, 4);
  assert.equal(s.walPosition, 0x4000000);
  assert.equal(s.upstreamHost, null);
});

test('replica not streaming: the replay timeline, when known, wins over the receiver and pg_control', () => {
  const row = { ...base, in_recovery: true, current_lsn: null, current_walfile: null, receive_lsn: '0/5000000', replay_lsn: '0/5000000', checkpoint_tli: 4, receiver_status: 'waiting', received_tli: 4 };
  assert.equal(statusFromRow(row, 5).timeline, 5);
  assert.equal(statusFromRow(row, null).timeline, 4);
});
