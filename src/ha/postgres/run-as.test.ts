// PgRunner's guarantees about users and files: PostgreSQL and its tools never run as root, and a
// file written for the run-as user never lands anywhere but where it was asked to go. The checks
// about root need root; as another user they are skipped.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { makeTempDir, removeDir } from '../../../test/support/processes.ts';
import type { PostgresError } from './errors.ts';
import { PgRunner, lookupUser } from './run-as.ts';

const BIN_DIR = process.env.PG_BIN_DIR ?? '/usr/lib/postgresql/15/bin';
const isRoot = process.getuid?.() === 0;
const logger = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await removeDir(dir);
});

const refusedAsRoot = (err: unknown): boolean => {
  assert.equal((err as PostgresError).code, 'ERR_PG_RUN_AS_ROOT', (err as Error).message);
  assert.match((err as Error).message, /root/);
  assert.match((err as Error).message, /postgresql\.run_as/, 'the message names the setting to fix');
  return true;
};

test('as root without a run-as user, no PostgreSQL program runs', { skip: !isRoot && 'needs root' }, async () => {
  const runner = new PgRunner({ binDir: BIN_DIR, runAs: null, logger });
  await assert.rejects(runner.run('pg_controldata', ['--version']), refusedAsRoot);
  await assert.rejects(runner.spawnDetached('postgres', ['--version'], 1), refusedAsRoot);
});

test('a run-as user that is root is refused', { skip: !isRoot && 'needs root' }, async () => {
  await assert.rejects(lookupUser('root'), refusedAsRoot);
  const runner = new PgRunner({ binDir: BIN_DIR, runAs: 'root', logger });
  await assert.rejects(runner.run('pg_controldata', ['--version']), refusedAsRoot);
  // The ordinary case still works: the tool runs as the run-as user.
  const ok = new PgRunner({ binDir: BIN_DIR, runAs: 'postgres', logger });
  assert.match((await ok.run('pg_controldata', ['--version'])).stdout, /PostgreSQL/);
});

test('writeOwnedFile: 0600 by default, and a symlink planted at its temp name is replaced, not followed', async () => {
  const dir = await makeTempDir('conclave-runas');
  dirs.push(dir);
  const runner = new PgRunner({ binDir: BIN_DIR, runAs: null, logger });
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'untouched\n');
  const target = join(dir, 'pgpass');
  symlinkSync(victim, `${target}.conclave-tmp`);
  await runner.writeOwnedFile(target, 'h:1:*:u:secret\n');
  assert.equal(readFileSync(victim, 'utf8'), 'untouched\n');
  assert.equal(readFileSync(target, 'utf8'), 'h:1:*:u:secret\n');
  assert.equal(statSync(target).mode & 0o777, 0o600);
  assert.equal(existsSync(`${target}.conclave-tmp`), false);
});

test("tools inherit none of the agent's PG*, CONCLAVE_* or PATRONI_* variables: those carry its secrets", () => {
  const saved = { ...process.env };
  try {
    Object.assign(process.env, { CONCLAVE_SUPERUSER_PASSWORD: 'x', PATRONI_RESTAPI_PASSWORD: 'y', CONCLAVE_CONFIGURATION: 'z', PGPASSWORD: 'w', HOME_LIKE_VAR: 'kept' });
    const env = new PgRunner({ binDir: BIN_DIR, runAs: null, logger }).env({ PGPASSFILE: '/p' });
    assert.equal(env.HOME_LIKE_VAR, 'kept');
    assert.equal(env.PGPASSFILE, '/p', 'what the caller adds is kept');
    assert.deepEqual(Object.keys(env).filter((k) => /^(PG|CONCLAVE_|PATRONI_)/.test(k)), ['PGPASSFILE']);
    assert.equal(env.LC_ALL, 'C');
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
});
