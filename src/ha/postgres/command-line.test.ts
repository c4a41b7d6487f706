// The postmaster's protected parameters and initdb's switches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMAND_LINE_PARAMETERS, initdbArgs, protectedArgs, protectedParameters } from './command-line.ts';

const listen = { host: '127.0.0.1', port: 5433 };

test('fixed parameters cannot be changed by the user; sized ones take the user value', () => {
  const params = Object.fromEntries(
    protectedParameters({ listen, scope: 'demo', parameters: { hot_standby: false, wal_log_hints: 'off', wal_level: 'minimal', max_connections: 200, port: 1, listen_addresses: '*' } }),
  );
  assert.deepEqual(params, {
    listen_addresses: '127.0.0.1',
    port: '5433',
    cluster_name: 'demo',
    hot_standby: 'on',
    wal_level: 'replica',
    wal_log_hints: 'on',
    max_connections: '200',
    max_wal_senders: '10',
    max_replication_slots: '10',
    wal_keep_size: '128MB',
    unix_socket_directories: '/tmp',
  });
  const logical = Object.fromEntries(protectedParameters({ listen, scope: 's', parameters: { wal_level: 'logical', unix_socket_directories: '/run/pg' } }));
  assert.equal(logical.wal_level, 'logical');
  assert.equal(logical.unix_socket_directories, '/run/pg');
  for (const name of Object.keys(params)) assert.ok(COMMAND_LINE_PARAMETERS.has(name), name);
});

test('as --name=value arguments', () => {
  const args = protectedArgs({ listen, scope: 'a b', parameters: {} });
  assert.ok(args.includes('--cluster_name=a b'));
  assert.ok(args.includes('--port=5433'));
  assert.ok(args.every((a) => /^--[a-z_]+=/.test(a)));
});

test('initdb options: switches and single-key maps; the ones we set are refused', () => {
  assert.deepEqual(initdbArgs(['data-checksums', { encoding: 'UTF8' }, { locale: 'C' }, '--no-sync']), ['--data-checksums', '--encoding=UTF8', '--locale=C', '--no-sync']);
  const bad: (string | Record<string, string>)[] = ['pgdata', { username: 'x' }, { pwfile: '/x' }, 'D', { '': 'x' }];
  for (const option of bad) {
    assert.throws(() => initdbArgs([option]), (err: Error & { code?: string }) => err.code === 'ERR_PG_BAD_OPTION', JSON.stringify(option));
  }
  assert.throws(() => initdbArgs([{ a: '1', b: '2' }]), /exactly one key/);
});
