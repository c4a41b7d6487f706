// edit-config's unified diff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unifiedDiff } from './diff.ts';

test('equal texts give no diff', () => {
  assert.equal(unifiedDiff('a\nb\n', 'a\nb\n'), '');
});

test('a changed line with its context, in unified format', () => {
  const before = 'a\nb\nc\nd\ne\nf\ng\nh\n';
  const after = 'a\nb\nc\nd\nE\nf\ng\nh\n';
  assert.equal(unifiedDiff(before, after), ['--- before', '+++ after', '@@ -2,7 +2,7 @@', ' b', ' c', ' d', '-e', '+E', ' f', ' g', ' h', ''].join('\n'));
});

test('additions at the end and into an empty text, deletions, and separate hunks', () => {
  assert.equal(unifiedDiff('a\n', 'a\nb\n'), '--- before\n+++ after\n@@ -1 +1,2 @@\n a\n+b\n');
  assert.equal(unifiedDiff('', 'x\n'), '--- before\n+++ after\n@@ -0,0 +1 @@\n+x\n');
  assert.equal(unifiedDiff('x\n', ''), '--- before\n+++ after\n@@ -1 +0,0 @@\n-x\n');
  const before = Array.from({ length: 20 }, (_, i) => `l${i}`).join('\n');
  const after = before.replace('l1\n', 'L1\n').replace('l18', 'L18');
  const hunks = unifiedDiff(before, after).split('\n').filter((l) => l.startsWith('@@'));
  assert.deepEqual(hunks, ['@@ -1,5 +1,5 @@', '@@ -16,5 +16,5 @@']);
});
