// LSN text ↔ byte position, against values PostgreSQL itself prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLsn, parseLsn, parseLsnOrNull } from './lsn.ts';

test('parses the two hex halves into one byte position', () => {
  assert.equal(parseLsn('0/0'), 0);
  assert.equal(parseLsn('0/3000148'), 0x3000148);
  assert.equal(parseLsn('16/B374D848'), 0x16 * 2 ** 32 + 0xb374d848);
  assert.equal(parseLsn('1/0'), 2 ** 32);
  assert.equal(parseLsn('ff/ffffffff'), 2 ** 40 - 1, 'lower case is accepted');
});

test('formats as PostgreSQL does: upper case, no leading zeros', () => {
  assert.equal(formatLsn(0), '0/0');
  assert.equal(formatLsn(0x16 * 2 ** 32 + 0xb374d848), '16/B374D848');
  assert.equal(formatLsn(2 ** 32 - 1), '0/FFFFFFFF');
  assert.equal(formatLsn(2 ** 32), '1/0');
});

test('round trips', () => {
  for (const text of ['0/1', '0/15D68C8', '3/A0000028', '7FFF/FFFFFFFF', '1FFFFF/FFFFFFFF']) {
    assert.equal(formatLsn(parseLsn(text)), text);
  }
});

test('differences are byte lags', () => {
  assert.equal(parseLsn('1/10') - parseLsn('0/FFFFFFF0'), 0x20);
});

test('rejects what is not an LSN', () => {
  for (const bad of ['', '0', '/0', '0/', 'x/1', '1/2/3', '123456789/0', '0/123456789', '-1/0']) {
    assert.throws(() => parseLsn(bad), /not an LSN/, bad);
  }
  assert.throws(() => parseLsn('FFFFFFFF/FFFFFFFF'), /2\^53/);
  assert.throws(() => formatLsn(-1));
  assert.throws(() => formatLsn(1.5));
});

test('null stays null', () => {
  assert.equal(parseLsnOrNull(null), null);
  assert.equal(parseLsnOrNull(undefined), null);
  assert.equal(parseLsnOrNull('0/10'), 16);
});
