// The bootstrap role statements.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { roleStatements } from './roles.ts';

const q = { ident: (n: string) => `"${n}"`, literal: (v: string) => `'${v}'` };
const spec = {
  superuser: { username: 'postgres', password: 'su' },
  replication: { username: 'replicator', password: 'rep' },
  rewind: { username: 'rewinder', password: 'rew' },
};

test('one transaction, local commit, no statement logging; creates or alters each role', () => {
  const sql = roleStatements(spec, new Set(['rewinder']), q);
  const stmts = sql.split(';\n').map((s) => s.replace(/;$/, ''));
  assert.equal(stmts[0], 'BEGIN');
  assert.equal(stmts.at(-1), 'COMMIT');
  assert.ok(stmts.includes("SET LOCAL synchronous_commit = 'local'"));
  assert.ok(stmts.includes("SET LOCAL log_statement = 'none'"));
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
