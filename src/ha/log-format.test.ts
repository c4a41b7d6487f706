import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plainLine } from './log-format.ts';

test('plain log lines read like Patroni’s: time, level, layer, sentence, extra fields', () => {
  const line = plainLine(JSON.stringify({ level: 30, time: Date.UTC(2026, 10, 22, 6, 10, 10, 123), pid: 1, name: 'node1', layer: 'ha', cycle: 7, msg: 'no action: I am node1, the leader with the lock' }));
  assert.match(line, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,123 INFO: \[ha\] no action: I am node1, the leader with the lock \{"cycle":7\}\n$/);
  assert.match(plainLine(JSON.stringify({ level: 40, time: 0, msg: 'careful' })), / WARNING: careful\n$/);
  assert.equal(plainLine('not json'), 'not json\n');
});
