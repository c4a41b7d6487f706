// conclavectl against a live three-member cluster, run as a separate process the way an operator
// runs it; and its refusals of bad arguments.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startRaftCluster, REPO_ROOT } from '../../test/support/raft-cluster.ts';
import type { RaftCluster } from '../../test/support/raft-cluster.ts';
import { stopAll } from '../../test/support/processes.ts';

const CTL = join(REPO_ROOT, 'bin', 'conclavectl.js');
let cluster: RaftCluster | null = null;

after(async () => {
  await cluster?.stop();
  await stopAll();
});

function ctl(...args: string[]) {
  const r = spawnSync(process.execPath, [CTL, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('raft status shows every member and exactly one leader that all agree on', async () => {
  cluster = await startRaftCluster({ nodes: 3 });
  const leader = await cluster.waitForLeader(20_000);
  const urls = [...cluster.nodes.values()].flatMap((n) => ['--url', n.url]);
  const out = ctl('raft', 'status', ...urls);
  assert.equal(out.status, 0, out.stderr);
  const rows = out.stdout.split('\n').filter((l) => /^\| n\d/.test(l));
  assert.equal(rows.length, 3, out.stdout);
  const cells = rows.map((r) => r.split('|').map((c) => c.trim()));
  assert.deepEqual(cells.filter((c) => c[3] === 'leader').map((c) => c[1]), [leader]);
  for (const c of cells) assert.equal(c[5], leader, `member ${c[1]} names the leader`);
});

test('bad arguments are refused with a one-line reason and a usage exit code', () => {
  const unknown = ctl('frobnicate');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const badUrl = ctl('raft', 'status', '--url', 'not-a-url');
  assert.equal(badUrl.status, 2);
  assert.match(badUrl.stderr, /--url needs an address/);
});

test('an unreachable member is reported, and none reachable is a failure', () => {
  const out = ctl('raft', 'status', '--url', 'http://127.0.0.1:9');
  assert.equal(out.status, 1);
  assert.match(out.stdout, /unreachable/);
});
