// PostgresController against real PostgreSQL 15 servers, run as the `postgres` OS user. One story
// in order, each step building on the last: node-a is bootstrapped as primary, node-b cloned from
// it, node-b promoted, node-a rewound to follow node-b, then crash, stop modes and failing starts.
//
// Cleanup: every server found on our data directories is stopped immediately in after(), then
// SIGKILLed with its process group by PID; a process 'exit' hook does the same if the runner dies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { freePorts, makeTempDir, releasePorts, removeDir, withTimeout } from '../../../test/support/processes.ts';
import { ProcScanner } from '../../../test/security/proc-scan.ts';
import { slotNameFor } from './conf-files.ts';
import { PostgresController } from './controller.ts';
import type { PostgresControllerOptions } from './controller.ts';
import type { PostgresError } from './errors.ts';
import type { PgEndpoint } from './types.ts';

const BIN_DIR = process.env.PG_BIN_DIR ?? '/usr/lib/postgresql/15/bin';
const RUN_AS = 'postgres';
const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

const superuser = { username: 'postgres', password: 'su-secret' };
// Quote, space, colon and backslash: the pgpass files must escape them as libpq reads them.
const replication = { username: 'replicator', password: "re'pl: pass\\" };
const rewind = { username: 'rewinder', password: 'rw:sec\\ret' };
const PASSWORDS = [superuser.password, replication.password, rewind.password];
const LINE_PREFIX = "%m [%p] it's \\ ";

let root = '';
let ports: number[] = [];
const controllers: PostgresController[] = [];
let a: PostgresController;
let b: PostgresController;
let epA: PgEndpoint;
let epB: PgEndpoint;

function makeController(name: string, port: number, overrides: Partial<PostgresControllerOptions> = {}): PostgresController {
  const c = new PostgresController({
    name,
    scope: 'conclave-test',
    dataDir: join(root, name),
    binDir: BIN_DIR,
    listen: { host: '127.0.0.1', port },
    superuser,
    replication,
    rewind,
    // A replica whose upstream went away retries after 500 ms instead of 5 s.
    // log_statement=all: a statement carrying a password would be in the server log.
    parameters: { shared_buffers: '16MB', log_line_prefix: LINE_PREFIX, max_connections: 20, wal_retrieve_retry_interval: '500ms', log_statement: 'all' },
    pgHba: ['local all all trust', 'host all all 127.0.0.1/32 scram-sha-256', 'host replication all 127.0.0.1/32 scram-sha-256'],
    initdbOptions: [{ encoding: 'UTF8' }, { locale: 'C' }],
    runAs: RUN_AS,
    timeoutMs: 30_000,
    logger,
    ...overrides,
  });
  controllers.push(c);
  return c;
}

before(async () => {
  root = await makeTempDir('conclave-pgctl');
  chmodSync(root, 0o755); // the postgres user must reach the data directories inside
  ports = await freePorts(3); // the third: a source that accepts connections and never answers
  epA = { host: '127.0.0.1', port: ports[0]! };
  epB = { host: '127.0.0.1', port: ports[1]! };
  a = makeController('node-a', epA.port);
  b = makeController('node-b', epB.port);
  process.on('exit', killEverythingNow);
});

after(async () => {
  for (const c of controllers) {
    await c.stop('immediate').catch(() => undefined);
    await c.close();
  }
  killEverythingNow();
  releasePorts(ports);
  // KEEP_PG_TEST_DIR=1 keeps the data directories and the postgres logs for a post-mortem.
  if (root && !process.env.KEEP_PG_TEST_DIR) await removeDir(root);
  else if (root) console.log(`kept ${root}`);
});

/** Last resort, synchronous (also used on exit): SIGKILL every process working in our data dirs. */
function killEverythingNow(): void {
  if (!root) return;
  for (const c of controllers) {
    for (const pid of processesOf(c.dataDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
}

/** PIDs of live processes whose working directory or command line is `dataDir` (postgres chdirs there). */
function processesOf(dataDir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') continue;
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cwd === dataDir || cmdline.includes(dataDir) || cmdline.includes(`--pgdata=${dataDir}`)) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, ms = 20_000): Promise<T> {
  const deadline = performance.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolveRefused) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolveRefused(false);
    });
    socket.once('error', () => resolveRefused(true));
  });
}

async function assertNothingRunning(c: PostgresController, port: number): Promise<void> {
  assert.equal(await c.postmasterPid(), null, `${c.name}: no postmaster`);
  await until(`${c.name}: every process gone`, async () => processesOf(c.dataDir).length === 0, 5000);
  assert.equal(await portRefuses(port), true, `${c.name}: nothing listens on ${port}`);
}

async function ids(c: PostgresController): Promise<number[]> {
  const rows = await c.query<{ id: number }>('SELECT id FROM t ORDER BY id');
  return rows.map((r) => r.id);
}

function hasCode(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.equal((err as PostgresError).code, code, (err as Error).message);
    return true;
  };
}

const postgresUid = Number(execFileSync('id', ['-u', RUN_AS], { encoding: 'utf8' }).trim());

test('initdb, start as primary, create roles, write rows', async () => {
  assert.equal(await a.dataDirEmpty(), true);
  assert.equal(await a.controlData(), null);
  assert.equal((await a.status()).running, false);
  await a.initdb();
  assert.equal(await a.dataDirEmpty(), false);
  const st = statSync(a.dataDir);
  assert.equal(st.mode & 0o777, 0o700);
  assert.equal(st.uid, postgresUid, 'the data directory belongs to the run-as user');
  assert.ok(existsSync(join(a.dataDir, 'postgresql.base.conf')), "initdb's conf kept as the base");
  const control = await a.controlData();
  assert.equal(control?.state, 'shut down');
  assert.equal(control?.timeline, 1);

  await a.start({ role: 'primary', upstream: null, slotName: null });
  const pid = await a.postmasterPid();
  assert.ok(pid !== null);
  assert.match(readFileSync(`/proc/${pid}/status`, 'utf8'), new RegExp(`^Uid:\\s+${postgresUid}\\s`, 'm'), 'postgres runs as the run-as user');
  await assert.rejects(a.start({ role: 'primary', upstream: null, slotName: null }), hasCode('ERR_PG_RUNNING'));

  const status = await a.status();
  assert.equal(status.running, true);
  assert.equal(status.role, 'primary');
  assert.equal(status.timeline, 1);
  assert.ok(status.walPosition !== null && status.walPosition > 0);
  assert.ok(status.serverVersion !== null && status.serverVersion >= 150000);
  assert.equal(status.replicationState, null);

  // Our parameters (quoted) and the protected ones (command line) are in effect.
  const [settings] = await a.query<Record<string, string>>(
    "SELECT current_setting('log_line_prefix') AS prefix, current_setting('cluster_name') AS cluster, current_setting('wal_log_hints') AS hints, current_setting('max_connections') AS conns, current_setting('shared_buffers') AS sb",
  );
  assert.deepEqual(settings, { prefix: LINE_PREFIX, cluster: 'conclave-test', hints: 'on', conns: '20', sb: '16MB' });

  await a.createRoles();
  const serverLog = readFileSync(a.logFile, 'utf8');
  assert.match(serverLog, /statement: /, 'statements are logged');
  for (const password of PASSWORDS) assert.ok(!serverLog.includes(password), 'no password in the server log');
  const roles = await a.query<{ rolname: string; rolreplication: boolean; rolcanlogin: boolean }>(
    "SELECT rolname, rolreplication, rolcanlogin FROM pg_roles WHERE rolname IN ('replicator', 'rewinder') ORDER BY rolname",
  );
  assert.deepEqual(roles, [
    { rolname: 'replicator', rolreplication: true, rolcanlogin: true },
    { rolname: 'rewinder', rolreplication: false, rolcanlogin: true },
  ]);
  const [grants] = await a.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM unnest(ARRAY['pg_ls_dir(text,boolean,boolean)', 'pg_stat_file(text,boolean)', 'pg_read_binary_file(text)',
       'pg_read_binary_file(text,bigint,bigint,boolean)']) f WHERE has_function_privilege('rewinder', 'pg_catalog.' || f, 'EXECUTE')`,
  );
  assert.equal(grants?.n, 4);
  // The passwords were set: password authentication (scram over TCP) lets the roles in.
  for (const role of [replication, rewind]) {
    const client = new pg.Client({ host: '127.0.0.1', port: epA.port, user: role.username, password: role.password, database: 'postgres' });
    await client.connect();
    await client.end();
  }

  await a.query('CREATE TABLE t (id int PRIMARY KEY, note text)');
  await a.query("INSERT INTO t SELECT g, 'from a' FROM generate_series(1, 3) g");
  assert.deepEqual(await ids(a), [1, 2, 3]);
});

/**
 * Runs `action` while watching every process on the host; asserts that `program` was seen, that
 * it got its password from a pgpass file, and that no password was on any command line or in any
 * environment meanwhile.
 */
async function withoutPasswordsInProcesses<T>(program: string, action: () => Promise<T>): Promise<T> {
  const scanner = new ProcScanner(PASSWORDS);
  scanner.start(1);
  let result: T;
  try {
    result = await action();
  } finally {
    await scanner.stop();
  }
  assert.deepEqual(scanner.leaks, [], 'no password on a command line or in an environment');
  const runs = scanner.seen.get(program) ?? [];
  assert.ok(runs.length > 0, `the scan saw ${program} run (${scanner.scans} scans)`);
  for (const run of runs) {
    assert.ok(run.env?.some((v) => v.startsWith('PGPASSFILE=')), `${program} gets a pgpass file`);
    assert.ok(!run.env?.some((v) => v.startsWith('PGPASSWORD=')), `${program} gets no PGPASSWORD`);
  }
  return result!;
}

test('a replica cloned with pg_basebackup streams from the primary over its slot', async () => {
  const slot = slotNameFor('node-b');
  assert.equal(slot, 'node_b');
  await a.syncPhysicalSlots([slot]);
  await withoutPasswordsInProcesses('pg_basebackup', () => b.basebackup(epA));
  assert.equal(statSync(b.dataDir).mode & 0o777, 0o700);
  assert.equal(statSync(b.dataDir).uid, postgresUid);
  await b.start({ role: 'replica', upstream: epA, slotName: slot });
  assert.ok(existsSync(join(b.dataDir, 'standby.signal')));

  // The WAL receiver's password is in the pgpass file primary_conninfo names, nowhere in the data
  // directory (a base backup of it would carry it along) nor in SHOW primary_conninfo.
  const pgpass = statSync(b.pgpassFile);
  assert.equal(pgpass.mode & 0o777, 0o600);
  assert.equal(pgpass.uid, postgresUid);
  assert.equal(readFileSync(b.pgpassFile, 'utf8'), `127.0.0.1:${epA.port}:*:replicator:re'pl\\: pass\\\\\n`);
  const [shown] = await b.query<{ primary_conninfo: string }>('SHOW primary_conninfo');
  assert.match(shown!.primary_conninfo, new RegExp(`passfile='?${b.pgpassFile}`));
  for (const file of ['postgresql.conf', 'postgresql.auto.conf']) {
    const text = readFileSync(join(b.dataDir, file), 'utf8');
    for (const password of PASSWORDS) assert.ok(!text.includes(password), `no password in ${file}`);
  }
  assert.equal(statSync(b.logFile).mode & 0o777, 0o600, 'the server log is owner-only');

  const streaming = await until('node-b streaming', async () => {
    const s = await b.status();
    return s.replicationState === 'streaming' && s;
  });
  assert.equal(streaming.role, 'replica');
  assert.equal(streaming.timeline, 1);
  assert.equal(streaming.upstreamPort, epA.port);
  assert.ok(streaming.receivedLsn !== null);

  await a.query("INSERT INTO t SELECT g, 'from a' FROM generate_series(4, 6) g");
  const primaryPosition = (await a.status()).walPosition!;
  assert.ok(primaryPosition > streaming.receivedLsn!, 'the primary wrote past what node-b had');
  await until('node-b to receive the new WAL', async () => ((await b.status()).receivedLsn ?? 0) >= primaryPosition);
  await until('node-b to replay the rows', async () => (await ids(b)).length === 6);

  const [replica] = await a.query<{ state: string }>("SELECT state FROM pg_stat_replication WHERE application_name = 'node-b'");
  assert.equal(replica?.state, 'streaming');
  const [slotRow] = await a.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  assert.equal(slotRow?.active, true, 'node-b streams over its slot');

  // Slot sync: creates what is wanted, drops what is not, but never a slot in use.
  const physical = async (): Promise<string[]> => (await a.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots ORDER BY 1')).map((r) => r.slot_name);
  await a.syncPhysicalSlots([slot, 'spare']);
  assert.deepEqual(await physical(), ['node_b', 'spare']);
  await a.syncPhysicalSlots([]);
  assert.deepEqual(await physical(), ['node_b'], 'the active slot stays');
  await a.syncPhysicalSlots([slot]);
  await assert.rejects(a.syncPhysicalSlots(['Bad-Name']), hasCode('ERR_PG_BAD_OPTION'));
});

test('promote: the replica becomes a primary on the next timeline', async () => {
  await b.promote();
  const status = await b.status();
  assert.equal(status.role, 'primary');
  assert.equal(status.timeline, 2);
  assert.equal(existsSync(join(b.dataDir, 'standby.signal')), false);
  await b.promote(); // a primary: nothing to do
  await b.query("INSERT INTO t VALUES (100, 'from b')");
  await b.checkpoint();
  assert.equal((await b.controlData())?.timeline, 2, 'after the checkpoint pg_control shows the new timeline');
});

test('the former primary diverges, is rewound against the new primary, and follows it', async () => {
  await a.query("INSERT INTO t VALUES (999, 'diverged on a')");
  await assert.rejects(a.rewind(epB), hasCode('ERR_PG_RUNNING'));
  await a.stop('immediate');
  assert.equal((await a.controlData())?.state, 'in production', 'not shut down cleanly: rewind must recover it first');

  await b.syncPhysicalSlots([slotNameFor('node-a')]);
  // The HA loop writes the replica configuration before rewinding; the crash recovery that
  // rewind() runs first must cope with the standby.signal (single-user mode refuses it).
  await a.writeConfig({ role: 'replica', upstream: epB, slotName: slotNameFor('node-a') });
  assert.ok(existsSync(join(a.dataDir, 'standby.signal')));

  // A source that cannot be reached leaves the target as it was, and says so: the HA loop then
  // retries instead of declaring the rewind failed. One that accepts and never answers (its
  // packets dropped by a partition) is given up within connect_timeout, not waited on for ever.
  const closedPort = { host: '127.0.0.1', port: ports[2]! };
  await assert.rejects(a.rewind(closedPort), hasCode('ERR_PG_REWIND_UNTOUCHED'));
  const sockets: Socket[] = [];
  const silent = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(closedPort.port, closedPort.host, resolve));
  try {
    const hung = (): Error => new Error('pg_rewind still waits on a silent source after 20 s');
    await assert.rejects(withTimeout(a.rewind(closedPort), 20_000, hung), hasCode('ERR_PG_REWIND_UNTOUCHED'));
  } finally {
    for (const socket of sockets) socket.destroy(); // also ends a hung pg_rewind: its peer closes
    await new Promise((resolve) => silent.close(resolve));
  }
  assert.equal((await a.controlData())?.timeline, 1, 'the failed attempts left the target on its own timeline');

  assert.equal(await withoutPasswordsInProcesses('pg_rewind', () => a.rewind(epB)), 'rewound');
  await a.start({ role: 'replica', upstream: epB, slotName: slotNameFor('node-a') });
  const status = await until('node-a streaming from node-b', async () => {
    const s = await a.status();
    return s.replicationState === 'streaming' && s;
  });
  assert.equal(status.role, 'replica');
  assert.equal(status.timeline, 2);
  assert.equal(status.upstreamPort, epB.port);
  assert.deepEqual(await ids(a), [1, 2, 3, 4, 5, 6, 100], "node-b's rows, without the diverged one");
  await b.query("INSERT INTO t VALUES (101, 'from b')");
  await until('node-a to replay row 101', async () => (await ids(a)).includes(101));
  const [app] = await b.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_replication WHERE application_name = 'node-a'");
  assert.equal(app?.n, 1);
});

test('no rewind is needed for a replica stopped on the primary timeline', async () => {
  await a.stop('fast');
  assert.equal((await a.controlData())?.state, 'shut down in recovery');
  assert.equal(await a.rewind(epB), 'not-needed');
  await a.start({ role: 'replica', upstream: epB, slotName: slotNameFor('node-a') });
});

test('a primary killed with SIGKILL starts again, recovers its rows and stays on its timeline', async () => {
  await b.query("INSERT INTO t VALUES (102, 'before the crash')");
  const pid = (await b.postmasterPid())!;
  process.kill(pid, 'SIGKILL'); // the postmaster only, as a crash would: its children notice
  await until('the old backends to exit', async () => processesOf(b.dataDir).length === 0);
  assert.equal(await b.postmasterPid(), null);
  const down = await b.status();
  assert.equal(down.running, false);
  assert.equal(down.starting, false);
  assert.equal((await b.controlData())?.state, 'in production');

  await b.start({ role: 'primary', upstream: null, slotName: null });
  const status = await b.status();
  assert.equal(status.role, 'primary');
  assert.equal(status.timeline, 2);
  assert.ok((await ids(b)).includes(102));
  await until('node-a to stream again', async () => (await a.status()).replicationState === 'streaming');
});

test('a standby that followed a promotion reports the timeline it replays, also once its upstream is gone', async () => {
  // node-b stops cleanly (node-a receives its shutdown checkpoint), node-a is promoted to timeline
  // 3, node-b follows it without a rewind: node-b's pg_control stays on timeline 2 until a
  // restartpoint, minutes away. Then node-a stops and node-b has no WAL receiver: the divergence
  // check must see timeline 3 (replay past the fork on 3 is normal), not 2 (which would read as
  // replay past the fork on 2: diverged, rewind).
  await b.stop('fast');
  await a.promote();
  assert.equal((await a.status()).timeline, 3);
  await a.syncPhysicalSlots([slotNameFor('node-b')]);
  assert.equal(await b.rewind(epA), 'not-needed');
  await b.start({ role: 'replica', upstream: epA, slotName: slotNameFor('node-b') });
  await a.query("INSERT INTO t VALUES (103, 'on timeline 3')");
  await until('node-b to replay row 103', async () => (await ids(b)).includes(103));
  assert.equal((await b.controlData())?.timeline, 2, "pg_control still shows the last restartpoint's timeline");

  await a.stop('fast');
  const orphan = await until('node-b without a WAL receiver', async () => {
    const s = await b.status();
    return s.running && s.replicationState !== 'streaming' && s;
  });
  assert.equal(orphan.timeline, 3);

  // Back to node-b as the primary, node-a its replica, for the tests below.
  await b.promote();
  await b.syncPhysicalSlots([slotNameFor('node-a')]);
  await a.start({ role: 'replica', upstream: epB, slotName: slotNameFor('node-a') });
  await until('node-a streaming from node-b', async () => (await a.status()).replicationState === 'streaming');
});

test('smart, fast and immediate stops leave no process and free the port', async () => {
  for (const mode of ['smart', 'fast', 'immediate'] as const) {
    if ((await a.postmasterPid()) === null) await a.start({ role: 'replica', upstream: epB, slotName: slotNameFor('node-a') });
    assert.equal((await a.status()).running, true);
    await a.stop(mode);
    await assertNothingRunning(a, epA.port);
    assert.equal((await a.status()).running, false);
  }
  await a.stop('fast'); // not running: nothing to do
});

test('a smart stop held up by a client escalates after timeoutMs', async () => {
  const impatient = makeController('node-a', epA.port, { timeoutMs: 1000 });
  await impatient.start({ role: 'replica', upstream: epB, slotName: slotNameFor('node-a') });
  const client = new pg.Client({ host: '127.0.0.1', port: epA.port, user: superuser.username, password: superuser.password, database: 'postgres' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const started = performance.now();
    await impatient.stop('smart');
    const took = performance.now() - started;
    assert.ok(took >= 1000, `smart shutdown waits for the client first (${took} ms)`);
    assert.ok(took < 8000, `then it is forced (${took} ms)`);
    await assertNothingRunning(impatient, epA.port);
  } finally {
    await client.end().catch(() => undefined);
  }
});

test("a bad parameter makes start reject with postgres' own error, leaving nothing running", async () => {
  const broken = makeController('node-a', epA.port, { parameters: { shared_buffers: 'lots' } });
  await assert.rejects(broken.start({ role: 'replica', upstream: epB, slotName: null }), (err: Error) => {
    assert.equal((err as PostgresError).code, 'ERR_PG_START_FAILED', err.message);
    assert.match(err.message, /invalid value for parameter "shared_buffers": "lots"/);
    return true;
  });
  await assertNothingRunning(broken, epA.port);
});

test('a start that does not finish in time is stopped again', async () => {
  const hasty = makeController('node-a', epA.port, { timeoutMs: 1 });
  await assert.rejects(hasty.start({ role: 'replica', upstream: epB, slotName: null }), hasCode('ERR_PG_START_TIMEOUT'));
  await assertNothingRunning(hasty, epA.port);
  // The data directory is fine for the next start.
  await a.start({ role: 'replica', upstream: epB, slotName: slotNameFor('node-a') });
  await until('node-a streaming', async () => (await a.status()).replicationState === 'streaming');
  await assert.rejects(a.removeDataDir(), hasCode('ERR_PG_RUNNING'));
});

test('stopping both leaves nothing running', async () => {
  await a.stop('fast');
  await b.stop('fast');
  await assertNothingRunning(a, epA.port);
  await assertNothingRunning(b, epB.port);
  assert.equal((await b.controlData())?.state, 'shut down');

  await b.removeDataDir();
  assert.equal(await b.dataDirEmpty(), true);
  assert.deepEqual(readdirSync(b.dataDir), [], 'emptied, the directory itself kept');
  assert.equal(await b.controlData(), null);
});
