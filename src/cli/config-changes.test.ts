// edit-config's changes: -s/-p assignments, --apply's deep merge, and the merge patch sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assign, deepMerge, mergePatch, parseConfigDocument, parsePg, parseSet } from './config-changes.ts';
import { CliError } from './errors.ts';

test('-s reads a dotted key and a YAML value; -p sets a PostgreSQL parameter', () => {
  assert.deepEqual(parseSet('loop_wait=1'), { path: ['loop_wait'], value: 1 });
  assert.deepEqual(parseSet('postgresql.use_slots=false'), { path: ['postgresql', 'use_slots'], value: false });
  assert.deepEqual(parseSet('ttl=null'), { path: ['ttl'], value: null });
  assert.deepEqual(parseSet('x='), { path: ['x'], value: null });
  assert.deepEqual(parseSet('tags.a=b=c'), { path: ['tags', 'a'], value: 'b=c' });
  assert.deepEqual(parsePg('work_mem=8MB'), { path: ['postgresql', 'parameters', 'work_mem'], value: '8MB' });
  for (const bad of ['loop_wait', '=1', 'a..b=1', 'a=[1']) assert.throws(() => parseSet(bad), CliError, bad);
  assert.throws(() => parsePg('=1'), CliError);
});

test('assignments create maps on the way, null deletes, the input is not changed', () => {
  const config = { ttl: 30, postgresql: { parameters: { a: 1 } } };
  assert.deepEqual(assign(config, parsePg('b=2')), { ttl: 30, postgresql: { parameters: { a: 1, b: 2 } } });
  assert.deepEqual(assign(config, parseSet('standby_cluster.host=h')), { ...config, standby_cluster: { host: 'h' } });
  assert.deepEqual(assign(config, parseSet('ttl=null')), { postgresql: { parameters: { a: 1 } } });
  assert.deepEqual(assign(config, parseSet('nothing.here=null')), config);
  assert.deepEqual(config, { ttl: 30, postgresql: { parameters: { a: 1 } } });
});

test('--apply merges maps recursively and null deletes (Patroni patch_config)', () => {
  const merged = deepMerge({ ttl: 30, postgresql: { parameters: { a: 1, b: 2 }, use_slots: true } }, { postgresql: { parameters: { b: null, c: 3 } }, loop_wait: 5 });
  assert.deepEqual(merged, { ttl: 30, loop_wait: 5, postgresql: { parameters: { a: 1, c: 3 }, use_slots: true } });
});

test('the merge patch turns the old configuration into the new one, and is empty when equal', () => {
  const before = { ttl: 30, pause: true, postgresql: { parameters: { a: 1, b: 2 }, pg_hba: ['x'] } };
  const after = { ttl: 30, loop_wait: 1, postgresql: { parameters: { a: 1, b: 3 }, pg_hba: ['x', 'y'] } };
  const patch = mergePatch(before, after);
  assert.deepEqual(patch, { pause: null, loop_wait: 1, postgresql: { parameters: { b: 3 }, pg_hba: ['x', 'y'] } });
  assert.deepEqual(deepMerge(before, patch), after);
  assert.deepEqual(mergePatch(after, after), {});
});

test('a configuration document must be a mapping', () => {
  assert.deepEqual(parseConfigDocument('', 'f'), {});
  assert.deepEqual(parseConfigDocument('ttl: 30\n', 'f'), { ttl: 30 });
  assert.throws(() => parseConfigDocument('- a\n', 'f'), /expected a mapping/);
  assert.throws(() => parseConfigDocument('a: [', 'f'), /not valid YAML/);
});
