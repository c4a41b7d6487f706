// What we write for PostgreSQL to read: slot names, quoting, the generated postgresql.conf, and
// the files on disk for a primary and a replica. (That PostgreSQL accepts them is shown by
// controller.test.ts, which starts real servers on them.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { makeTempDir, removeDir } from '../../../test/support/processes.ts';
import { conninfo, keepInitdbConfAsBase, primaryConninfo, quoteConfValue, quoteConninfoValue, renderPostgresqlConf, slotNameFor, writeConfFiles } from './conf-files.ts';
import { PgRunner } from './run-as.ts';

const dirs: string[] = [];
/** What every connection to a peer carries so that a vanished peer is noticed (see PEER_CONNECTION_SETTINGS). */
const PEER_SETTINGS = ' connect_timeout=5 keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=3 tcp_user_timeout=10000';
after(async () => {
  for (const dir of dirs) await removeDir(dir);
});

test('slotNameFor: lower case, - and . to _, other characters as u + hex code point, 63 at most', () => {
  assert.equal(slotNameFor('node1'), 'node1');
  assert.equal(slotNameFor('Node-A.dc1'), 'node_a_dc1');
  assert.equal(slotNameFor('pg_2'), 'pg_2');
  assert.equal(slotNameFor('a b'), 'au0020b');
  assert.equal(slotNameFor('a@b'), 'au0040b');
  assert.equal(slotNameFor('é'), 'u00e9');
  assert.equal(slotNameFor('Ä'), 'u00e4', 'lowered first');
  assert.equal(slotNameFor('a😀'), 'au1f600', 'astral code points keep all their digits');
  assert.equal(slotNameFor('x'.repeat(80)), 'x'.repeat(63));
  assert.match(slotNameFor('Weird Name-With/Stuff.'.repeat(5)), /^[a-z0-9_]{63}$/);
});

test('quoteConfValue: always quoted, quotes doubled, backslashes escaped, booleans as on/off', () => {
  assert.equal(quoteConfValue('128MB'), "'128MB'");
  assert.equal(quoteConfValue(100), "'100'");
  assert.equal(quoteConfValue(0.5), "'0.5'");
  assert.equal(quoteConfValue(true), "'on'");
  assert.equal(quoteConfValue(false), "'off'");
  assert.equal(quoteConfValue("it's"), "'it''s'");
  assert.equal(quoteConfValue('a\\b'), "'a\\\\b'");
  assert.equal(quoteConfValue(''), "''");
});

test('conninfo: bare safe values, quoted others, empty values left out', () => {
  assert.equal(quoteConninfoValue('abc'), 'abc');
  assert.equal(quoteConninfoValue(''), "''");
  assert.equal(quoteConninfoValue('a b'), "'a b'");
  assert.equal(quoteConninfoValue("it's"), "'it\\'s'");
  assert.equal(quoteConninfoValue('a\\b'), "'a\\\\b'");
  assert.equal(conninfo({ host: 'h', port: 5432, user: 'u', password: '', dbname: undefined }), 'host=h port=5432 user=u');
});

test('primary_conninfo names the replication user, its passfile (never a password), upstream, our member and sslmode=prefer', () => {
  const text = primaryConninfo({ host: '10.0.0.1', port: 5433 }, { user: 'replicator', passfile: "/srv/p w'd.pgpass", applicationName: 'node-b' });
  assert.equal(text, "user=replicator passfile='/srv/p w\\'d.pgpass' host=10.0.0.1 port=5433 application_name=node-b sslmode=prefer" + PEER_SETTINGS);
  const noPassword = primaryConninfo({ host: 'h', port: 1 }, { user: 'r', passfile: null, applicationName: 'n' });
  assert.doesNotMatch(noPassword, /pass/);
});

test('postgresql.conf: base include first, sorted parameters, managed ones left out, replica settings last', () => {
  const text = renderPostgresqlConf(
    {
      parameters: { work_mem: '8MB', port: 1, primary_conninfo: 'host=evil', log_line_prefix: "%m '%p' ", hba_file: '/x' },
      recovery: { upstream: { host: 'h', port: 5432 }, slotName: 'node_b', user: 'rep', passfile: '/p', applicationName: 'node-b' },
    },
    true,
    new Set(['port']),
  );
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.deepEqual(lines, [
    "include 'postgresql.base.conf'",
    "log_line_prefix = '%m ''%p'' '",
    "work_mem = '8MB'",
    `primary_conninfo = 'user=rep passfile=/p host=h port=5432 application_name=node-b sslmode=prefer${PEER_SETTINGS}'`,
    "primary_slot_name = 'node_b'",
    "recovery_target_timeline = 'latest'",
  ]);
  const primary = renderPostgresqlConf({ parameters: {}, recovery: null }, false);
  assert.doesNotMatch(primary, /include|primary_|recovery_/);
  const noUpstream = renderPostgresqlConf({ parameters: {}, recovery: { upstream: null, slotName: 'x', user: 'r', passfile: null, applicationName: 'n' } }, false);
  assert.doesNotMatch(noUpstream, /primary_conninfo|primary_slot_name/);
  assert.match(noUpstream, /recovery_target_timeline = 'latest'/);
  assert.throws(() => renderPostgresqlConf({ parameters: { 'bad name': 1 }, recovery: null }, false), /not a parameter name/);
});

test('files on disk: initdb conf kept as base, 0600 conf, hba lines, standby.signal only for a replica', async () => {
  const dir = await makeTempDir('conclave-conf');
  dirs.push(dir);
  const runner = new PgRunner({ binDir: '/nonexistent', runAs: null, logger: pino({ level: 'silent' }) });
  writeFileSync(join(dir, 'postgresql.conf'), "shared_buffers = '16MB'\n");
  await keepInitdbConfAsBase(dir);
  assert.equal(readFileSync(join(dir, 'postgresql.base.conf'), 'utf8'), "shared_buffers = '16MB'\n");
  assert.equal(existsSync(join(dir, 'postgresql.conf')), false);

  const recovery = { upstream: { host: 'h', port: 1 }, slotName: 's', user: 'r', passfile: '/p', applicationName: 'n' };
  await writeConfFiles(runner, dir, { parameters: { work_mem: '4MB' }, pgHba: ['local all all trust', 'host all all 127.0.0.1/32 md5'], recovery });
  const conf = readFileSync(join(dir, 'postgresql.conf'), 'utf8');
  assert.match(conf, /^include 'postgresql.base.conf'$/m);
  assert.match(conf, /passfile=\/p /);
  assert.equal(statSync(join(dir, 'postgresql.conf')).mode & 0o777, 0o600, 'owner only, as PostgreSQL keeps its files');
  assert.match(readFileSync(join(dir, 'pg_hba.conf'), 'utf8'), /^local all all trust\nhost all all 127.0.0.1\/32 md5$/m);
  assert.equal(existsSync(join(dir, 'standby.signal')), true);

  // A second keepInitdbConfAsBase must not replace the base with our generated file.
  await keepInitdbConfAsBase(dir);
  assert.equal(readFileSync(join(dir, 'postgresql.base.conf'), 'utf8'), "shared_buffers = '16MB'\n");

  writeFileSync(join(dir, 'recovery.signal'), '');
  await writeConfFiles(runner, dir, { parameters: {}, pgHba: [], recovery: null });
  assert.equal(existsSync(join(dir, 'standby.signal')), false);
  assert.equal(existsSync(join(dir, 'recovery.signal')), false);
  assert.doesNotMatch(readFileSync(join(dir, 'postgresql.conf'), 'utf8'), /primary_conninfo/);
  assert.match(readFileSync(join(dir, 'pg_hba.conf'), 'utf8'), /local all all trust/, 'no pg_hba lines: the file is left alone');
});
