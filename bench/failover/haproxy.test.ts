// The shipped config/haproxy.cfg, rewritten for the bench's ports. Not part of `npm test`:
// node --import tsx --test bench/failover/haproxy.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SHIPPED_CONFIG, haproxyConfig } from './haproxy.ts';

const shipped = readFileSync(SHIPPED_CONFIG, 'utf8');
const members = [
  { host: '10.1.2.2', pgPort: 41001, apiPort: 42001 },
  { host: '10.1.2.6', pgPort: 41002, apiPort: 42002 },
  { host: '10.1.2.10', pgPort: 41003, apiPort: 42003 },
];

test('addresses and ports are substituted, nothing else changes', () => {
  const out = haproxyConfig(shipped, members, { primary: 45000, replicas: 45001, stats: 47000 });
  assert.match(out, /^\s*bind 127\.0\.0\.1:45000$/m);
  assert.match(out, /^\s*bind 127\.0\.0\.1:45001$/m);
  assert.match(out, /^\s*bind 127\.0\.0\.1:47000$/m);
  assert.equal(out.match(/server node2 10\.1\.2\.6:41002 maxconn 100 check port 42002/g)?.length, 2);
  const settings = out.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
  assert.doesNotMatch(settings, /:543[234]\b|port 80(08|09|10)\b|:500[01]\b|:7000\b/);
  // Line by line, only bind and server lines differ.
  const a = shipped.split('\n');
  const b = out.split('\n');
  assert.equal(a.length, b.length);
  for (const [i, line] of a.entries()) if (line !== b[i]) assert.match(line, /^\s*(bind|server) /);
});

test('a config the substitution does not understand is refused', () => {
  assert.throws(() => haproxyConfig(shipped.replace('bind 127.0.0.1:5000', 'bind *:5000'), members, { primary: 1, replicas: 2, stats: 3 }), /expected one "bind 127.0.0.1:5000"/);
  assert.throws(() => haproxyConfig(shipped, members.slice(0, 2), { primary: 1, replicas: 2, stats: 3 }), /server node3 has no member/);
});
