// The pgpass files that carry passwords to PostgreSQL's tools: libpq's escaping, and the
// temporary file's life (0600, the run-as user's, in a private directory, gone afterwards even
// when the tool failed). That libpq reads them is shown by controller.test.ts (clone, rewind and
// streaming with passwords holding ':', '\', quotes and spaces).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import pino from 'pino';
import { pgpassField, pgpassText, withPgpass } from './pgpass.ts';
import { PgRunner } from './run-as.ts';

const isRoot = process.getuid?.() === 0;
const RUN_AS = 'postgres';

test("pgpass fields: ':' and '\\' escaped with '\\', everything else as it is", () => {
  assert.equal(pgpassField('plain'), 'plain');
  assert.equal(pgpassField('a:b'), 'a\\:b');
  assert.equal(pgpassField('a\\b'), 'a\\\\b');
  assert.equal(pgpassField("q' *x"), "q' *x");
  assert.equal(pgpassField('::1'), '\\:\\:1', 'an IPv6 host');
});

test('pgpass text: host:port:database:user:password per line, database * by default; a line break is refused', () => {
  assert.equal(pgpassText([{ host: '10.0.0.1', port: 5432, user: 'replicator', password: 'p:w\\d' }]), '10.0.0.1:5432:*:replicator:p\\:w\\\\d\n');
  assert.equal(pgpassText([{ host: 'h', port: 1, database: 'postgres', user: 'u', password: 'x' }]), 'h:1:postgres:u:x\n');
  assert.throws(() => pgpassText([{ host: 'h', port: 1, user: 'u', password: 'two\nlines' }]), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_PG_BAD_OPTION');
    assert.doesNotMatch(err.message, /two|lines/, 'the message does not show the password');
    return true;
  });
});

test('withPgpass: a 0600 file of the run-as user in a private 0700 directory, removed afterwards, also on failure', async () => {
  const runner = new PgRunner({ binDir: '/nonexistent', runAs: RUN_AS, logger: pino({ level: 'silent' }) });
  const owner = isRoot ? Number(execFileSync('id', ['-u', RUN_AS], { encoding: 'utf8' }).trim()) : process.getuid!();
  const entry = { host: '127.0.0.1', port: 5432, user: 'rep', password: 'se:cret' };
  let seen = '';
  const result = await withPgpass(runner, entry, async (env) => {
    assert.deepEqual(Object.keys(env), ['PGPASSFILE'], 'only the file is passed, never PGPASSWORD');
    seen = env.PGPASSFILE!;
    const file = statSync(seen);
    assert.equal(file.mode & 0o777, 0o600);
    assert.equal(file.uid, owner, 'the user the tool runs as can read it');
    const dir = statSync(dirname(seen));
    assert.equal(dir.mode & 0o777, 0o700);
    assert.equal(dir.uid, owner);
    assert.equal(readFileSync(seen, 'utf8'), '127.0.0.1:5432:*:rep:se\\:cret\n');
    return 42;
  });
  assert.equal(result, 42);
  assert.equal(existsSync(dirname(seen)), false, 'removed after success');

  await assert.rejects(
    withPgpass(runner, entry, async (env) => {
      seen = env.PGPASSFILE!;
      throw new Error('the tool failed');
    }),
    /the tool failed/,
  );
  assert.equal(existsSync(dirname(seen)), false, 'removed after a failure');

  assert.deepEqual(await withPgpass(runner, { ...entry, password: '' }, async (env) => env), {}, 'no password, no file');
});
