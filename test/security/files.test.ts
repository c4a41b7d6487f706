// The agent's own files and its refusal to run PostgreSQL as root, through `bin/conclave.js` as
// an operator starts it. A run_as of root stops the agent before it binds a port or starts
// anything, so these runs leave no process behind; by then it has already made its directories
// and log file owner-only, which is what the checks below look at.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { makeTempDir, removeDir } from '../support/processes.ts';

const REPO = resolve(import.meta.dirname, '../..');
const isRoot = process.getuid?.() === 0;
let root = '';
after(async () => {
  if (root) await removeDir(root);
});

function agent(configPath: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(REPO, 'bin', 'conclave.js'), configPath], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      done({ status, stderr });
    });
  });
}

function writeConfig(path: string, dir: string, runAs: string): void {
  const config = {
    scope: 'files',
    name: 'f1',
    restapi: { listen: '127.0.0.1:1', connect_address: '127.0.0.1:1' },
    raft: { self_addr: '127.0.0.1:2', data_dir: join(dir, 'raft') },
    postgresql: {
      listen: '127.0.0.1:3',
      data_dir: join(dir, 'pg'),
      run_as: runAs,
      authentication: { superuser: { username: 'postgres', password: 'files-super' }, replication: { username: 'replicator', password: 'files-repl' } },
    },
    log: { dir: join(dir, 'log'), type: 'json', level: 'info' },
  };
  writeFileSync(path, stringify(config), { mode: 0o600 });
}

const mode = (path: string): number => statSync(path).mode & 0o777;

test('an agent running as root refuses a run_as that is root, having made its raft directory and log owner-only', { skip: !isRoot && 'needs root' }, async () => {
  root = await makeTempDir('conclave-files-');
  const dir = join(root, 'node');
  mkdirSync(join(dir, 'raft'), { recursive: true });
  chmodSync(join(dir, 'raft'), 0o755); // left open by an older version, or by hand
  const config = join(root, 'f1.yml');
  writeConfig(config, dir, 'root');

  const first = await agent(config);
  assert.equal(first.status, 1, first.stderr);
  assert.match(first.stderr, /^conclave: cannot start: postgresql\.run_as is "root", which is root: PostgreSQL must not run as root; name its own OS user \(e\.g\. postgres\)\n$/);
  assert.equal(mode(join(dir, 'raft')), 0o700, 'the raft directory was narrowed');
  assert.equal(mode(join(dir, 'log')), 0o700, 'a log directory the agent creates is owner-only');
  const logFile = join(dir, 'log', 'f1.log');
  assert.equal(mode(logFile), 0o600);
  assert.match(readFileSync(logFile, 'utf8'), /raft\.data_dir was open to others; narrowed it to 0700/);
  assert.equal(statSync(join(dir, 'pg'), { throwIfNoEntry: false }), undefined, 'no data directory was made');

  // An existing log file others may read is narrowed, and said so; an existing directory keeps its mode.
  chmodSync(logFile, 0o644);
  chmodSync(join(dir, 'log'), 0o755);
  const second = await agent(config);
  assert.equal(second.status, 1, second.stderr);
  assert.equal(mode(logFile), 0o600);
  assert.equal(mode(join(dir, 'log')), 0o755, 'a directory the agent did not create is not changed');
  assert.match(readFileSync(logFile, 'utf8'), /the log file was readable by others; narrowed it to 0600/);

  // A run-as user that does not exist is refused at start too, not at the first initdb.
  writeConfig(config, dir, 'no-such-user-conclave');
  const third = await agent(config);
  assert.equal(third.status, 1, third.stderr);
  assert.match(third.stderr, /cannot start: postgresql\.run_as: id -[ug] no-such-user-conclave.*no such user/s);
});
