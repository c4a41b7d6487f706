// conclavectl against a live three-member cluster of real agents, run as a separate process the
// way an operator runs it (`node bin/conclavectl.js -c <a member's config> ...`, stdin not a
// terminal). One cluster for the whole file; the tests run in order and later ones rely on the
// switchover of an earlier one only through what `list` shows.
//
// A check whose REST endpoint still answers 404 is skipped with a message naming the endpoint.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { AgentCluster } from '../support/agents.ts';
import { sleep } from '../support/processes.ts';

const REPO = resolve(import.meta.dirname, '../..');
const CTL = join(REPO, 'bin', 'conclavectl.js');
const NAMES = ['n1', 'n2', 'n3'];
/** The REST API asks for these on every write; conclavectl finds them in the member config it is given. */
const REST_AUTH = { username: 'operator', password: 'ctl-test-rest-pw' };
let cluster: AgentCluster | null = null;
let config = '';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs conclavectl asynchronously: a synchronous spawn would stop this process from reading the
 * agents' output, and an agent blocked on a full pipe stalls the cluster.
 */
function ctl(args: string[], opts: { input?: string; timeoutMs?: number; config?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CTL, '-c', opts.config ?? config, ...args], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

const c = (): AgentCluster => {
  assert.ok(cluster, 'the cluster started');
  return cluster;
};

/** true when the endpoint answers 404 on the first member (not written yet): the caller skips. */
async function missing(path: string): Promise<boolean> {
  return (await c().api('n1', path))?.status === 404;
}

interface ListRow {
  Cluster: string;
  Member: string;
  Host: string;
  Role: string;
  State: string;
  TL?: number;
  'Lag in MB'?: number | string;
}

async function listJson(): Promise<ListRow[]> {
  const r = await ctl(['list', '-f', 'json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as ListRow[];
}

/** Polls `list -f json` until `ok` holds (member keys follow the cluster within a loop or two). */
async function listUntil(what: string, ok: (rows: ListRow[]) => boolean, timeoutMs = 30_000): Promise<ListRow[]> {
  const deadline = Date.now() + timeoutMs;
  let rows: ListRow[] = [];
  while (Date.now() < deadline) {
    rows = await listJson();
    if (ok(rows)) return rows;
    await sleep(500);
  }
  assert.fail(`list never showed ${what}; last: ${JSON.stringify(rows)}`);
}

const healthyList = (rows: ListRow[]): boolean =>
  rows.length === 3 &&
  rows.filter((r) => r.Role === 'Leader').length === 1 &&
  rows.filter((r) => r.Role !== 'Leader').every((r) => ['Replica', 'Sync Standby'].includes(r.Role) && ['streaming', 'running'].includes(r.State));

before(async () => {
  cluster = await AgentCluster.create(NAMES.map((name) => ({ name })), { logLevel: 'info', restapi: { authentication: REST_AUTH } });
  await cluster.startAll();
  await cluster.waitForPrimary(NAMES, 90_000);
  await cluster.waitFor('both replicas streaming', async () => {
    const r = await Promise.all(NAMES.map((n) => c().api(n)));
    return r.filter((x) => x?.body.role === 'replica' && x.body.replication_state === 'streaming').length === 2;
  }, 90_000);
  config = cluster.node('n1').configPath;
});

after(async () => {
  await cluster?.stopAll();
});

test('version, and a bad option or command is a usage error (exit 2)', async () => {
  const v = await ctl(['version']);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /^conclavectl version \d+\.\d+\.\d+\n$/);
  const bad = await ctl(['list', '--bogus']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^conclavectl: unknown option --bogus for list\nusage: conclavectl/);
  const unknown = await ctl(['frobnicate']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /^conclavectl: unknown command "frobnicate"/);
});

test('raft status: three members that agree on one leader', async () => {
  const r = await ctl(['raft', 'status']);
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^\| 127\.0\.0\.1:\d+/.test(l)).map((l) => l.split('|').map((x) => x.trim()));
  assert.equal(rows.length, 3, r.stdout);
  const leaders = rows.filter((x) => x[3] === 'leader');
  assert.equal(leaders.length, 1, r.stdout);
  for (const x of rows) assert.equal(x[5], leaders[0][1], `${x[1]} names the leader`);
});

test('list -f json: three members, one Leader, the others streaming replicas', async (t) => {
  if (await missing('/cluster')) return t.skip('GET /cluster answers 404');
  const rows = await listUntil('a healthy cluster', healthyList);
  assert.deepEqual(rows.map((r) => r.Member).sort(), NAMES);
  assert.ok(rows.every((r) => r.Cluster === 'test' && /^127\.0\.0\.1:\d+$/.test(r.Host) && typeof r.TL === 'number'), JSON.stringify(rows));
  assert.equal(rows.find((r) => r.Role === 'Leader')?.Member, await c().waitForPrimary());
});

test('list and topology: the pretty table with the cluster title', async (t) => {
  if (await missing('/cluster')) return t.skip('GET /cluster answers 404');
  const r = await ctl(['list']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^\+ Cluster: test (\(\d+\) )?-*\+/);
  assert.match(lines[1], /^\| Member +\| Host +\| Role +\| State +\| TL \| Lag in MB \|/);
  assert.equal(lines.filter((l) => /^\| n\d /.test(l)).length, 3, r.stdout);

  const leader = await c().waitForPrimary();
  const topo = await ctl(['topology']);
  assert.equal(topo.status, 0, topo.stderr);
  const names = topo.stdout.split('\n').filter((l) => /^\| (\+ )?n\d /.test(l)).map((l) => l.split('|')[1].trim());
  assert.deepEqual(names[0], leader, topo.stdout);
  assert.deepEqual(names.slice(1).sort(), NAMES.filter((n) => n !== leader).map((n) => `+ ${n}`));
});

test('switchover without --force and without a terminal is refused, and nothing changes', async (t) => {
  if (await missing('/cluster')) return t.skip('GET /cluster answers 404');
  const leader = await c().waitForPrimary();
  const r = await ctl(['switchover', '--candidate', NAMES.find((n) => n !== leader)!]);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^conclavectl: refusing to switchover cluster test, demoting current leader n\d without confirmation: stdin is not a terminal \(add --force\)\n$/);
  assert.equal(await c().waitForPrimary(), leader);
});

test('switchover --candidate X --force: X becomes the Leader', { timeout: 180_000 }, async (t) => {
  if (await missing('/cluster')) return t.skip('GET /cluster answers 404');
  await listUntil('a healthy cluster', healthyList);
  const leader = await c().waitForPrimary();
  const candidate = NAMES.find((n) => n !== leader)!;
  const r = await ctl(['switchover', '--candidate', candidate, '--force'], { timeoutMs: 150_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /switchover requested: n\d -> n\d/);
  assert.match(r.stdout, new RegExp(`Successfully switched over to "${candidate}"`));
  await listUntil(`${candidate} as the Leader`, (rows) => rows.find((x) => x.Role === 'Leader')?.Member === candidate && healthyList(rows), 60_000);
});

test('history -f json: the timeline switches as a list of objects', async (t) => {
  if (await missing('/history')) return t.skip('GET /history answers 404');
  const r = await ctl(['history', '-f', 'json']);
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
  assert.ok(Array.isArray(rows));
  assert.ok(rows.length >= 1, 'the switchover made a timeline switch');
  assert.ok(rows.every((x) => typeof x.TL === 'number' && 'LSN' in x && 'Reason' in x), r.stdout);
  const pretty = await ctl(['history']);
  assert.match(pretty.stdout.split('\n')[1], /^\| +TL \| +LSN \| Reason +\| Timestamp +\| New Leader +\|$/);
});

test('show-config, then edit-config -s loop_wait=1 --force shows in show-config', async (t) => {
  if (await missing('/config')) return t.skip('GET /config answers 404');
  const shown = await ctl(['show-config']);
  assert.equal(shown.status, 0, shown.stderr);
  assert.match(shown.stdout, /^ttl: 2$/m);
  assert.match(shown.stdout, /^loop_wait: 0\.5$/m);

  const refused = await ctl(['edit-config', '-s', 'loop_wait=1']);
  assert.equal(refused.status, 1);
  assert.match(refused.stdout, /^-loop_wait: 0\.5\n\+loop_wait: 1$/m);
  assert.match(refused.stderr, /refusing to apply these changes without confirmation/);

  const edit = await ctl(['edit-config', '-s', 'loop_wait=1', '--force']);
  assert.equal(edit.status, 0, edit.stdout + edit.stderr);
  assert.match(edit.stdout, /^\+loop_wait: 1$/m);
  const after = await ctl(['show-config']);
  assert.match(after.stdout, /^loop_wait: 1$/m);
  const again = await ctl(['edit-config', '-s', 'loop_wait=1', '--force']);
  assert.equal(again.stdout, 'Not changed\n');
});

test('pause --wait and resume --wait', { timeout: 120_000 }, async (t) => {
  if (await missing('/config')) return t.skip('PATCH /config: GET /config answers 404');
  if (await missing('/cluster')) return t.skip('GET /cluster answers 404');
  const paused = await ctl(['pause', '--wait'], { timeoutMs: 100_000 });
  assert.equal(paused.status, 0, paused.stdout + paused.stderr);
  assert.match(paused.stdout, /'pause' request sent, waiting until it is recognized by all nodes\n/);
  assert.match(paused.stdout, /Success: cluster management is paused\n$/);
  const list = await ctl(['list']);
  assert.match(list.stdout, /^ Maintenance mode: on$/m);
  const twice = await ctl(['pause']);
  assert.equal(twice.status, 1);
  assert.equal(twice.stderr, 'conclavectl: Cluster is already paused\n');

  const resumed = await ctl(['resume', '--wait'], { timeoutMs: 100_000 });
  assert.equal(resumed.status, 0, resumed.stdout + resumed.stderr);
  assert.match(resumed.stdout, /Success: cluster management is resumed\n$/);
  assert.doesNotMatch((await ctl(['list'])).stdout, /Maintenance mode/);
});

test('REST credentials come from the environment or the configuration, never from the command line', { timeout: 120_000 }, async (t) => {
  if (await missing('/config')) return t.skip('PATCH /config: GET /config answers 404');
  // An operator's config without credentials: the member's, minus restapi.authentication.
  const bare = parse(readFileSync(config, 'utf8')) as { restapi: Record<string, unknown> };
  delete bare.restapi.authentication;
  const bareConfig = join(c().node('n1').dir, 'ctl-without-credentials.yml');
  writeFileSync(bareConfig, stringify(bare), { mode: 0o600 });

  const denied = await ctl(['pause'], { config: bareConfig });
  assert.equal(denied.status, 1);
  assert.match(denied.stderr, /answered 401 .*CONCLAVE_CTL_USERNAME \/ CONCLAVE_CTL_PASSWORD/);

  const viaCtlEnv = await ctl(['pause', '--wait'], { config: bareConfig, timeoutMs: 100_000, env: { CONCLAVE_CTL_USERNAME: REST_AUTH.username, CONCLAVE_CTL_PASSWORD: REST_AUTH.password } });
  assert.equal(viaCtlEnv.status, 0, viaCtlEnv.stdout + viaCtlEnv.stderr);
  // patronictl's variable names work as they do for an existing Patroni deployment.
  const viaPatroniEnv = await ctl(['resume', '--wait'], { config: bareConfig, timeoutMs: 100_000, env: { PATRONI_RESTAPI_USERNAME: REST_AUTH.username, PATRONI_RESTAPI_PASSWORD: REST_AUTH.password } });
  assert.equal(viaPatroniEnv.status, 0, viaPatroniEnv.stdout + viaPatroniEnv.stderr);
  assert.doesNotMatch((await ctl(['list'])).stdout, /Maintenance mode/);

  const onCommandLine = await ctl(['pause', '--password', 'typed-on-the-command-line'], { config: bareConfig });
  assert.equal(onCommandLine.status, 2);
  assert.match(onCommandLine.stderr, /^conclavectl: --password: conclavectl takes no password on the command line .*CONCLAVE_CTL_PASSWORD/);
  assert.ok(!onCommandLine.stderr.includes('typed-on-the-command-line'), 'the refusal does not repeat it');
  const inUrl = await ctl(['--url', `http://${REST_AUTH.username}:typed-on-the-command-line@127.0.0.1:${c().node('n1').apiPort}`, 'pause'], { config: bareConfig });
  assert.equal(inUrl.status, 2);
  assert.match(inUrl.stderr, /--url must not carry credentials/);
});

test('dsn: the leader by default, a member by name', async (t) => {
  if (await missing('/cluster')) return t.skip('GET /cluster answers 404');
  const leader = await c().waitForPrimary();
  await listUntil(`${leader} as the Leader`, (rows) => rows.find((x) => x.Role === 'Leader')?.Member === leader);
  const r = await ctl(['dsn']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `host=127.0.0.1 port=${c().node(leader).pgPort}\n`);
  const n3 = await ctl(['dsn', 'n3']);
  assert.equal(n3.stdout, `host=127.0.0.1 port=${c().node('n3').pgPort}\n`);
});

test("query -c 'select 1' on the leader, and a replica by role", async (t) => {
  if (await missing('/cluster')) return t.skip('GET /cluster answers 404');
  const r = await ctl(['query', '-c', 'select 1 as one']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'one\n1\n');
  const replica = await ctl(['query', '-r', 'replica', '-c', 'select pg_is_in_recovery()', '--format', 'pretty']);
  assert.equal(replica.status, 0, replica.stderr);
  assert.match(replica.stdout, /\| true +\|/);
  const bad = await ctl(['query', '-c', 'select nonsense']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^conclavectl: query on n\d .*column "nonsense" does not exist\n$/);
});
