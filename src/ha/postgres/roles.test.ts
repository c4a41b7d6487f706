// The bootstrap role statements.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QUIET_SESSION_SQL, roleStatements } from './roles.ts';

const q = { ident: (n: string) => `"${n}"`, literal: (v: string) => `'${v}'` };
const spec = {
  superuser: { username: 'postgres', password: 'su' },
  replication: { username: 'replicator', password: 'rep' },
  rewind: { username: 'rewinder', password: 'rew' },
};

test('one transaction, local commit; creates or alters each role', () => {
  const sql = roleStatements(spec, new Set(['rewinder']), q);
  const stmts = sql.split(';\n').map((s) => s.replace(/;$/, ''));
  assert.equal(stmts[0], 'BEGIN');
  assert.equal(stmts.at(-1), 'COMMIT');
  assert.ok(stmts.includes("SET LOCAL synchronous_commit = 'local'"));
  assert.ok(stmts.includes(`ALTER ROLE "postgres" WITH PASSWORD 'su'`));
  assert.ok(stmts.includes(`CREATE ROLE "replicator" WITH LOGIN REPLICATION PASSWORD 'rep'`));
  assert.ok(stmts.includes(`ALTER ROLE "rewinder" WITH LOGIN PASSWORD 'rew'`));
  assert.equal(stmts.filter((s) => s.startsWith('GRANT EXECUTE') && s.endsWith('TO "rewinder"')).length, 4);
});

test('roles equal to the superuser are left alone; no password, no PASSWORD clause', () => {
  const sql = roleStatements({ superuser: { username: 'postgres', password: '' }, replication: { username: 'repl', password: '' }, rewind: { username: 'postgres', password: '' } }, new Set(), q);
  assert.doesNotMatch(sql, /PASSWORD|GRANT|"postgres"/);
  assert.match(sql, /CREATE ROLE "repl" WITH LOGIN REPLICATION;/);
});

test('a rewind role that is the replication role gets the grants once, created once', () => {
  const sql = roleStatements({ ...spec, rewind: spec.replication }, new Set(), q);
  assert.equal(sql.match(/CREATE ROLE/g)?.length, 1);
  assert.equal(sql.match(/GRANT EXECUTE/g)?.length, 4);
});

test('the quiet session settings come as a query of their own and only name settings the server has', () => {
  assert.doesNotMatch(QUIET_SESSION_SQL, /;/, 'one statement, sent before the passwords');
  for (const name of ['log_statement', 'log_min_duration_statement', 'log_min_error_statement', 'pg_stat_statements.track_utility']) assert.match(QUIET_SESSION_SQL, new RegExp(`'${name}'`));
  assert.match(QUIET_SESSION_SQL, /WHERE v\.name IN \(SELECT name FROM pg_catalog\.pg_settings\)/);
  assert.doesNotMatch(roleStatements(spec, new Set(), q), /log_/, 'the password statements themselves change no logging');
});
