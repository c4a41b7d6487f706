// Secrets stay secret on a real three-member cluster. Every password (PostgreSQL superuser,
// replication, rewind; the REST API's basic auth; the Raft shared secret) is distinctive, and the
// cluster is driven through what exposes text: bootstrap, clones, the REST API (reads, refused and
// malformed requests, a switchover), conclavectl, the Raft debug API and store. Then none of the
// secrets may appear in any response, any agent's stdout or stderr, any PostgreSQL server log
// (statement logging is on: every statement the agents send is logged), any file in a data
// directory, or on the command line or in the environment of any process on the host while all
// that ran. The files that must hold a secret are owner-only.
//
// Cleanup: cluster.stopAll() in after() stops every agent and postmaster by PID, also on failure.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { parse, stringify } from 'yaml';
import { AgentCluster } from '../support/agents.ts';
import { ProcScanner } from './proc-scan.ts';

const REPO = resolve(import.meta.dirname, '../..');
const NAMES = ['s1', 's2', 's3'];
const REST = { username: 'admin', password: 'Rest-Secret-9w4h6r' };
const AUTH = {
  superuser: { username: 'postgres', password: 'Super-Secret-7f3k9q' },
  // A ':' in it: the pgpass files must escape it.
  replication: { username: 'replicator', password: 'Repl:Secret-2m8x5d' },
  rewind: { username: 'rewinder', password: 'Rewind-Secret-5t1z0b' },
};
const RAFT_PASSWORD = 'Raft-Secret-3c8v1n7k';
const BASIC = `Basic ${Buffer.from(`${REST.username}:${REST.password}`).toString('base64')}`;
/** Each secret, and the forms it could leak in (the basic-auth header's base64). */
const SECRETS: ReadonlyArray<[string, string]> = [
  ['superuser password', AUTH.superuser.password],
  ['replication password', AUTH.replication.password],
  ['rewind password', AUTH.rewind.password],
  ['REST password', REST.password],
  ['REST basic-auth header', BASIC.slice('Basic '.length)],
  ['Raft password', RAFT_PASSWORD],
];

let cluster: AgentCluster | null = null;
let scanner: ProcScanner | null = null;
after(async () => {
  await scanner?.stop();
  await cluster?.stopAll();
});

/** conclavectl processes this test gave a secret in their environment, the documented way. */
const givenSecretEnv = new Set<number>();

/** Everything the test saw, by where it came from; checked at the end. */
const texts: Array<{ source: string; text: string }> = [];
const keep = (source: string, text: string): void => void texts.push({ source, text });

async function http(name: string, method: string, path: string, opts: { auth?: string; body?: string; contentType?: string } = {}): Promise<{ status: number; text: string }> {
  const n = cluster!.node(name);
  const headers: Record<string, string> = {};
  if (opts.auth) headers.authorization = opts.auth;
  if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  const res = await request(`http://${n.testHost}:${n.apiPort}${path}`, { method: method as 'GET', headers, body: opts.body, headersTimeout: 60_000, bodyTimeout: 60_000 });
  const text = await res.body.text();
  keep(`${method} ${path} on ${name} (${res.statusCode}): body and headers`, `${text}\n${JSON.stringify(res.headers)}`);
  return { status: res.statusCode, text };
}

function conclavectl(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; out: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(REPO, 'bin', 'conclavectl.js'), ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    // Synchronously after spawn: the scanner (on a timer) cannot look before this is recorded.
    if (child.pid !== undefined && Object.keys(env).length > 0) givenSecretEnv.add(child.pid);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      keep(`conclavectl ${args.join(' ')} (exit ${status})`, out);
      done({ status, out });
    });
  });
}

test('no secret in API responses, logs, process command lines or environments, or data directory files', { timeout: 300_000 }, async () => {
  scanner = new ProcScanner(SECRETS.map(([, s]) => s));
  scanner.start(20);
  const c = (cluster = await AgentCluster.create(NAMES.map((name) => ({ name })), {
    authentication: AUTH,
    // The REST password reaches the agents through the environment, as a container would give it:
    // PostgreSQL, which the agents start, must not inherit it.
    restapi: { authentication: { username: REST.username } },
    env: { CONCLAVE_RESTAPI_PASSWORD: REST.password },
    raftPassword: RAFT_PASSWORD,
    postgresql: {
      // Every statement the agents send is logged: a password in one would be in the log.
      parameters: { unix_socket_directories: '/tmp', shared_buffers: '16MB', wal_retrieve_retry_interval: '500ms', log_statement: 'all', log_connections: 'on', log_min_error_statement: 'debug5' },
    },
  }));
  await c.startAll();
  const agentLines = new Map<string, string[]>();
  for (const name of NAMES) {
    const handle = c.node(name).handle!;
    const lines = [...handle.stdoutLines];
    handle.onStdoutLine((line) => lines.push(line));
    agentLines.set(name, lines);
  }
  const primary = await c.waitForPrimary(NAMES, 90_000);
  await c.waitFor('both replicas streaming', async () => {
    const r = await Promise.all(NAMES.map((n) => c.api(n)));
    return r.filter((x) => x?.body.role === 'replica' && x.body.replication_state === 'streaming').length === 2;
  }, 90_000);

  // Reads, open to anyone.
  for (const name of NAMES) {
    for (const path of ['/patroni', '/config', '/cluster', '/history', '/metrics', '/raft', '/health', '/primary', '/replica', '/read-only', '/liveness', '/readiness']) {
      await http(name, 'GET', path);
    }
  }
  // Refused and malformed requests: their error messages.
  const candidate = NAMES.find((n) => n !== primary)!;
  const switchoverBody = JSON.stringify({ leader: primary, candidate });
  assert.equal((await http(primary, 'POST', '/switchover', { body: switchoverBody })).status, 401);
  assert.equal((await http(primary, 'POST', '/switchover', { body: switchoverBody, auth: `Basic ${Buffer.from(`${REST.username}:${AUTH.superuser.password}`).toString('base64')}` })).status, 401, 'another secret as the password');
  assert.equal((await http(primary, 'POST', '/switchover', { body: switchoverBody, auth: 'Bearer something' })).status, 401);
  for (const [method, path, body] of [
    ['POST', '/switchover', '{not json'],
    ['POST', '/switchover', JSON.stringify({ leader: 'nobody', candidate: 'nobody-else' })],
    ['POST', '/failover', JSON.stringify({})],
    ['PATCH', '/config', '{"ttl": "not a number"}'],
    ['PATCH', '/config', '[1, 2]'],
    ['PUT', '/config', 'garbage'],
    ['POST', '/restart', '{"schedule": "never"}'],
    ['POST', '/reinitialize', JSON.stringify({ force: true })],
    ['DELETE', '/switchover', undefined],
    ['DELETE', '/cluster/members/nobody', undefined],
    ['GET', '/no/such/endpoint', undefined],
  ] as const) {
    const r = await http(primary, method, path, { auth: BASIC, body });
    assert.ok(r.status >= 400, `${method} ${path} ${body ?? ''} is refused (got ${r.status}: ${r.text})`);
  }

  // The Raft side: status and everything in the replicated store, read as a member would.
  for (const name of NAMES) {
    const status = await c.raftRequest(name, '/v1/status');
    keep(`raft GET /v1/status on ${name}`, status.body.toString('utf8'));
  }
  const store = await c.raftRequest(primary, `/v1/kv?prefix=${encodeURIComponent('/')}`);
  assert.equal(store.status, 200);
  keep('the replicated store (/v1/kv?prefix=/)', store.body.toString('utf8'));

  // conclavectl: the REST credentials come from the environment, not from its config file.
  const ctlConfig = join(c.node(primary).dir, 'ctl.yml');
  const agentConfig = parse(readFileSync(c.node(primary).configPath, 'utf8')) as { restapi: Record<string, unknown> };
  delete agentConfig.restapi.authentication;
  writeFileSync(ctlConfig, stringify(agentConfig), { mode: 0o600 });
  for (const args of [['list'], ['show-config'], ['history'], ['dsn'], ['topology']]) {
    const r = await conclavectl(['-c', ctlConfig, ...args]);
    assert.equal(r.status, 0, r.out);
  }
  const denied = await conclavectl(['-c', ctlConfig, 'pause'], { CONCLAVE_CTL_USERNAME: REST.username, CONCLAVE_CTL_PASSWORD: 'wrong-password' });
  assert.equal(denied.status, 1, denied.out);
  assert.match(denied.out, /401/);
  const refused = await conclavectl(['-c', ctlConfig, '--url', `http://${REST.username}:not-the-password@127.0.0.1:${c.node(primary).apiPort}`, 'list']);
  assert.equal(refused.status, 2, 'credentials in --url are refused');
  assert.match(refused.out, /--url must not carry credentials/);

  // A switchover, authenticated through the environment as patronictl's users would.
  const switched = await conclavectl(['-c', ctlConfig, 'switchover', '--candidate', candidate, '--force'], { PATRONI_RESTAPI_USERNAME: REST.username, PATRONI_RESTAPI_PASSWORD: REST.password });
  assert.equal(switched.status, 0, switched.out);
  assert.equal(await c.waitForPrimary(NAMES, 60_000), candidate);
  await c.waitFor(`${primary} streaming from ${candidate}`, async () => (await c.api(primary))?.body.replication_state === 'streaming', 90_000);
  for (const name of NAMES) await http(name, 'GET', '/patroni');

  await scanner.stop();
  for (const name of NAMES) {
    const n = c.node(name);
    keep(`agent ${name} stdout`, agentLines.get(name)!.join('\n'));
    keep(`agent ${name} stderr`, n.handle!.stderrTail());
    const pgLog = readFileSync(join(n.dir, `${name}-postgres.log`), 'utf8');
    keep(`postgres log of ${name}`, pgLog);
    assert.match(pgLog, /LOG: {2}statement: /, `statement logging is on in ${name}'s server log (else this check proves nothing)`);
    for (const file of ['postgresql.conf', 'postgresql.base.conf', 'postgresql.auto.conf', 'pg_hba.conf']) {
      if (existsSync(join(n.pgDataDir, file))) keep(`${name} data directory: ${file}`, readFileSync(join(n.pgDataDir, file), 'utf8'));
    }
  }

  const leaks: string[] = [];
  for (const { source, text } of texts) {
    for (const [what, secret] of SECRETS) if (text.includes(secret)) leaks.push(`${what} in ${source}`);
  }
  // Given the REST password in their environment: the agents (also a child of one before it
  // execs its program, which still shows the agent's command line), their fence helpers and tsx's
  // esbuild service (the agent's own code, same user), and the conclavectl runs above. Nothing
  // else may have it there: not PostgreSQL, its tools, or any other program the agents start.
  const agentImage = (argv: readonly string[]): boolean => argv.some((a) => a.endsWith('bin/conclave.js') || a.endsWith('fence-process.ts')) || argv[0]?.endsWith('/esbuild') === true;
  const expected = (l: { where: string; pid: number; argv: readonly string[] }): boolean => l.where === 'environ' && (givenSecretEnv.has(l.pid) || agentImage(l.argv));
  assert.ok(scanner.leaks.some((l) => l.where === 'environ' && l.argv.some((a) => a.endsWith('bin/conclave.js'))), "the scan reads the agents' environments (else it proves nothing)");
  for (const leak of scanner.leaks.filter((l) => !expected(l))) leaks.push(`${SECRETS[leak.secretIndex]![0]} in the ${leak.where} of ${leak.program} (pid ${leak.pid})`);
  assert.deepEqual(leaks, [], 'no secret anywhere');
  assert.ok((scanner.seen.get('pg_basebackup') ?? []).length > 0, `the process scan saw the replicas' clones (${scanner.scans} scans)`);
  assert.ok(texts.length > 80, `enough was looked at (${texts.length})`);

  // Where a secret must be, it is owner-only.
  const postgresUid = statSync(c.node(primary).pgDataDir).uid;
  for (const name of NAMES) {
    const n = c.node(name);
    assert.equal(statSync(n.pgDataDir).mode & 0o777, 0o700, `${name}: data directory`);
    assert.equal(statSync(n.raftDataDir).mode & 0o777, 0o700, `${name}: raft directory`);
    assert.equal(statSync(join(n.dir, `${name}-postgres.log`)).mode & 0o777, 0o600, `${name}: server log`);
    for (const file of readdirSync(n.pgDataDir).filter((f) => f.endsWith('.conf'))) {
      assert.equal(statSync(join(n.pgDataDir, file)).mode & 0o077, 0, `${name}: ${file}`);
    }
  }
  // The former primary now streams: its WAL receiver's password is in its pgpass file, and only there.
  const pgpass = join(c.node(primary).dir, `${primary}.pgpass`);
  assert.equal(statSync(pgpass).mode & 0o777, 0o600);
  assert.equal(statSync(pgpass).uid, postgresUid, 'owned by the user PostgreSQL runs as');
  assert.match(readFileSync(pgpass, 'utf8'), /^127\.0\.0\.1:\d+:\*:replicator:Repl\\:Secret-2m8x5d\n$/);
});
