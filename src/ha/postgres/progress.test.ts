// Long copies report progress: pg_basebackup's and pg_rewind's --progress lines become a log line
// every few seconds, not one per chunk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { progressReporter } from './controller.ts';

test('progress lines are logged at most every five seconds, with the last figures', () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done(); } });
  let t = 0;
  const report = progressReporter(pino({}, sink), 'pg_basebackup', () => t);
  report('   1024/102400 kB (1%), 0/1 tablespace\r');
  t = 6000;
  report('   2048/102400 kB (2%), 0/1 tablespace\r  51200/102400 kB (50%), 0/1 tablespace\r');
  t = 7000;
  report('  61440/102400 kB (60%), 0/1 tablespace\r');
  t = 12_000;
  report('no figures here\n');
  assert.equal(lines.length, 1);
  assert.deepEqual([lines[0]!.msg, lines[0]!.copiedMB, lines[0]!.totalMB, lines[0]!.percent], ['pg_basebackup progress', 50, 100, 50]);
});
