// The agent refuses a wrong configuration at start, naming the key and the problem, and exits
// non-zero before it listens anywhere or touches PostgreSQL; the example configs validate as shipped.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { makeTempDir, removeDir } from '../support/processes.ts';

const REPO = resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await removeDir(d);
});

function conclave(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/conclave.js'), ...args], { cwd: REPO, encoding: 'utf8', timeout: 30_000, env: { ...process.env, PATRONI_SCOPE: undefined, CONCLAVE_SCOPE: undefined } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the example configs validate as shipped', () => {
  for (const n of ['node1', 'node2', 'node3']) {
    const r = conclave('--validate-config', `config/${n}.yml`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`conclave-demo/${n}`));
  }
});

test('a wrong config is refused at start with the key and the problem named', async () => {
  const dir = await makeTempDir('conclave-badconfig-');
  dirs.push(dir);
  const good = await readFile(join(REPO, 'config/node1.yml'), 'utf8');
  const cases: [string, string, RegExp][] = [
    ['no scope', good.replace(/^scope: .*$/m, ''), /scope: required/],
    ['ttl rule', good.replace('ttl: 2', 'ttl: 1'), /bootstrap\.dcs\.ttl: .*loop_wait \+ 2 × retry_timeout|bootstrap\.dcs\.ttl/],
    ['bad listen', good.replace('listen: 127.0.0.1:5432', 'listen: localhost'), /postgresql\.listen: /],
    ['etcd instead of raft', good.replace(/^raft:[\s\S]*?(?=^bootstrap:)/m, 'etcd3:\n  hosts: 127.0.0.1:2379\n\n'), /raft/],
    ['not YAML', 'scope: [unclosed', /line|YAML/i],
  ];
  for (const [what, text, expected] of cases) {
    const path = join(dir, `${what.replace(/ /g, '-')}.yml`);
    await writeFile(path, text);
    const r = conclave(path);
    assert.equal(r.status, 1, `${what}: exit status (stderr: ${r.stderr})`);
    assert.match(r.stderr, /^conclave: invalid configuration: /, what);
    assert.match(r.stderr, expected, what);
  }
  const missing = conclave(join(dir, 'nope.yml'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope\.yml/);
  const unknownFlag = conclave('--frobnicate');
  assert.equal(unknownFlag.status, 2);
  assert.match(unknownFlag.stderr, /unknown option --frobnicate/);
});
