// Nobody joins, votes or writes on the Raft port without the cluster's secret. Three witnesses
// (Raft voters without PostgreSQL, so the test is quick) form a cluster; then agents that name
// them as partners try to get in: one with another secret, one of another cluster (scope) with
// the right secret, one with no secret at all. Each bootstraps alone, campaigns and asks to join,
// for seconds; the cluster's leader, term and membership do not move, nothing is delivered, and
// every refusal is counted by reason. The agent without a secret says so loudly at start. Then the
// same with mutual TLS: a member whose certificate another CA signed cannot even connect.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent as UndiciAgent, request } from 'undici';
import { AgentCluster } from '../support/agents.ts';
import { makeTempDir, removeDir, sleep } from '../support/processes.ts';

let cluster: AgentCluster | null = null;
const dirs: string[] = [];
after(async () => {
  await cluster?.stopAll();
  for (const d of dirs) await removeDir(d);
});

interface AuthCounts {
  accepted: number;
  refused: number;
  refusedBy: Record<string, number>;
}

test('agents with another secret, another scope or no secret cannot join, vote or write', async (t) => {
  const founders = ['w1', 'w2', 'w3'];
  const c = (cluster = await AgentCluster.create([
    ...founders.map((name) => ({ name, witness: true })),
    { name: 'other-secret', witness: true, joins: true, raftPassword: 'a-secret-from-somewhere-else' },
    { name: 'other-scope', witness: true, joins: true, scope: 'another-cluster' },
    { name: 'no-secret', witness: true, joins: true, raftPassword: null },
  ]));
  await c.startAll();
  const leaderOf = async (): Promise<{ leader: string; term: number; voters: string[] }> =>
    c.waitFor('a raft leader', async () => {
      const st = (await c.raftRequest('w1', '/v1/status').catch(() => null))?.body.toString();
      if (!st) return null;
      const parsed = JSON.parse(st) as { leader: string | null; term: number; voters: string[] };
      return parsed.leader ? { leader: parsed.leader, term: parsed.term, voters: [...parsed.voters].sort() } : null;
    });
  const before = await leaderOf();
  assert.equal(before.voters.length, 3);

  for (const intruder of ['other-secret', 'other-scope', 'no-secret']) await c.start(intruder);
  assert.ok(
    c.node('no-secret').handle!.stdoutLines.some((l) => l.includes('NO RAFT AUTHENTICATION')),
    'an agent started without raft.password warns at start',
  );
  // Long enough for each intruder to time out its elections several times over.
  await sleep(6000);

  const after_ = await leaderOf();
  assert.deepEqual(after_, before, 'same leader, same term, same voters');
  const counts = await Promise.all(
    founders.map(async (n) => (JSON.parse((await c.raftRequest(n, '/v1/status')).body.toString()) as { authentication: AuthCounts }).authentication),
  );
  const refusedBy = (reason: string): number => counts.reduce((sum, a) => sum + (a.refusedBy[reason] ?? 0), 0);
  t.diagnostic(`refused by the three members in ~6 s: ${counts.reduce((s, a) => s + a.refused, 0)} (signature ${refusedBy('signature')}, scope ${refusedBy('scope')}, missing ${refusedBy('missing')}, epoch ${refusedBy('epoch')}); accepted ${counts.reduce((s, a) => s + a.accepted, 0)}`);
  assert.ok(refusedBy('signature') > 0, `another secret: refused for its signature (${JSON.stringify(counts)})`);
  assert.ok(refusedBy('scope') > 0, 'another cluster: refused for its scope');
  assert.ok(refusedBy('missing') > 0, 'no secret: refused for want of any proof');
  // The intruders run on, refusing the harness in turn where they have a secret of their own;
  // the one without a secret answers anyone: it knows no leader, for nobody voted for it.
  for (const intruder of ['other-secret', 'other-scope', 'no-secret']) assert.equal(c.node(intruder).handle?.exit, null, `${intruder} still runs`);
  assert.equal(await c.raftStatus('other-secret'), null);
  assert.equal((await c.raftStatus('no-secret'))?.leader, null);
});

test('mutual TLS between members: the cluster forms; plain HTTP, no certificate or another CA’s certificate get nowhere', async () => {
  await cluster?.stopAll();
  const dir = await makeTempDir('conclave-raft-tls-');
  dirs.push(dir);
  const f = (name: string): string => join(dir, name);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const ca of ['ca', 'rogue-ca']) {
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${ca}.key`), '-out', f(`${ca}.crt`), '-days', '1', '-subj', `/CN=${ca}`);
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${ca}-member.key`), '-out', f(`${ca}-member.csr`), '-subj', '/CN=127.0.0.1');
    ssl('x509', '-req', '-in', f(`${ca}-member.csr`), '-CA', f(`${ca}.crt`), '-CAkey', f(`${ca}.key`), '-CAcreateserial', '-out', f(`${ca}-member.crt`), '-days', '1', '-extfile', f('san.ext'));
  }
  const tls = { certfile: f('ca-member.crt'), keyfile: f('ca-member.key'), cafile: f('ca.crt') };
  const c = (cluster = await AgentCluster.create(
    [
      ...['t1', 't2', 't3'].map((name) => ({ name, witness: true })),
      // The right secret, a certificate the cluster's CA never signed.
      { name: 'rogue', witness: true, joins: true, raftTls: { certfile: f('rogue-ca-member.crt'), keyfile: f('rogue-ca-member.key'), cafile: f('ca.crt') } },
    ],
    { raftTls: tls },
  ));
  await c.startAll();
  const leader = await c.waitFor('a raft leader over TLS', async () => (await c.raftStatus('t1'))?.leader);
  await c.start('rogue');
  await sleep(4000);

  const port = c.node('t1').raftPort;
  await assert.rejects(request(`http://127.0.0.1:${port}/v1/status`, { headersTimeout: 2000, bodyTimeout: 2000 }).then((r) => r.body.text()), 'plain HTTP is not spoken');
  const noCert = new UndiciAgent({ connect: { ca: readFileSync(f('ca.crt')) } });
  await assert.rejects(request(`https://127.0.0.1:${port}/v1/status`, { dispatcher: noCert, headersTimeout: 2000, bodyTimeout: 2000 }).then((r) => r.body.text()), 'the handshake wants a certificate');
  await noCert.close();

  const st = await c.raftStatus('t1');
  assert.equal(st?.leader, leader, 'the leader did not change');
  assert.equal(st?.voters.length, 3, 'the rogue member did not get in');
  assert.equal(c.node('rogue').handle?.exit, null, 'the rogue agent runs on, outside');
});
