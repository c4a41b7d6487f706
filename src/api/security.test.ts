// The REST API's access check over real HTTP and HTTPS sockets: reads stay open; a mutating
// request passes the allowlist, then a client certificate (verify_client), then Basic auth, each
// refusal with Patroni's code and text.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { Agent, request } from 'undici';
import { httpsOptions, registerWriteGuard } from './security.ts';
import type { AgentConfig } from '../ha/config/types.ts';
import { makeTempDir, removeDir } from '../../test/support/processes.ts';

const apps: FastifyInstance[] = [];
const dirs: string[] = [];
after(async () => {
  for (const a of apps) await a.close();
  for (const d of dirs) await removeDir(d);
});

type Restapi = AgentConfig['restapi'];
const base: Restapi = {
  listen: { host: '127.0.0.1', port: 0 }, connect_address: { host: '127.0.0.1', port: 0 }, authentication: null,
  certfile: null, keyfile: null, keyfile_password: null, cafile: null, verify_client: 'none', allowlist: [], allowlist_include_members: false,
};

async function serve(restapi: Restapi, memberHosts?: () => string[]): Promise<string> {
  const https = httpsOptions(restapi);
  const app = (https ? Fastify({ https }) : Fastify()) as unknown as FastifyInstance;
  registerWriteGuard(app, { restapi, memberHosts });
  app.get('/patroni', async () => ({ ok: true }));
  app.post('/switchover', async () => 'done');
  apps.push(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  return `${https ? 'https' : 'http'}://127.0.0.1:${port}`;
}

async function call(url: string, method: 'GET' | 'POST', headers: Record<string, string> = {}, dispatcher?: Agent): Promise<{ status: number; text: string; challenge?: string }> {
  const res = await request(url, { method, headers, dispatcher });
  return { status: res.statusCode, text: await res.body.text(), challenge: res.headers['www-authenticate'] as string | undefined };
}

const basic = (user: string, pass: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });

test('Basic auth guards mutating requests only', async () => {
  const url = await serve({ ...base, authentication: { username: 'admin', password: 's3cret' } });
  assert.equal((await call(`${url}/patroni`, 'GET')).status, 200, 'GETs stay open');
  const none = await call(`${url}/switchover`, 'POST');
  assert.deepEqual([none.status, none.text, none.challenge], [401, 'no auth header received', 'Basic realm="Patroni"']);
  const wrong = await call(`${url}/switchover`, 'POST', basic('admin', 'nope'));
  assert.deepEqual([wrong.status, wrong.text], [401, 'not authenticated']);
  assert.deepEqual(await call(`${url}/switchover`, 'POST', basic('admin', 's3cret')), { status: 200, text: 'done', challenge: undefined });
});

test('the allowlist refuses other hosts before authentication, and can include the members', async () => {
  const elsewhere = await serve({ ...base, allowlist: ['10.1.0.0/16'], authentication: { username: 'a', password: 'b' } });
  assert.deepEqual([(await call(`${elsewhere}/switchover`, 'POST', basic('a', 'b'))).status, (await call(`${elsewhere}/switchover`, 'POST')).text], [403, 'Access is denied']);
  assert.equal((await call(`${elsewhere}/patroni`, 'GET')).status, 200);
  const byCidr = await serve({ ...base, allowlist: ['127.0.0.0/8'] });
  assert.equal((await call(`${byCidr}/switchover`, 'POST')).status, 200);
  const byName = await serve({ ...base, allowlist: ['localhost'] });
  assert.equal((await call(`${byName}/switchover`, 'POST')).status, 200);
  let members = ['10.9.9.9'];
  const byMembers = await serve({ ...base, allowlist_include_members: true }, () => members);
  assert.equal((await call(`${byMembers}/switchover`, 'POST')).status, 403);
  members = ['127.0.0.1'];
  assert.equal((await call(`${byMembers}/switchover`, 'POST')).status, 200);
});

test('HTTPS with client certificates: optional asks one for mutating requests, required for every request', async () => {
  const dir = await makeTempDir('conclave-tls-');
  dirs.push(dir);
  const f = (name: string) => join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=conclave-test-ca');
  for (const who of ['server', 'client']) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who === 'server' ? '127.0.0.1' : 'operator'}`);
    const ext = f(`${who}.ext`);
    execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${ext}`]);
    ssl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.crt`), '-days', '1', '-extfile', ext);
  }
  const tls = { ...base, certfile: f('server.crt'), keyfile: f('server.key'), cafile: f('ca.crt') };
  const anonymous = new Agent({ connect: { ca: readFileSync(f('ca.crt')) } });
  const withCert = new Agent({ connect: { ca: readFileSync(f('ca.crt')), cert: readFileSync(f('client.crt')), key: readFileSync(f('client.key')) } });

  const optional = await serve({ ...tls, verify_client: 'optional' });
  assert.match(optional, /^https:/);
  // (A read first: the refusal below then travels a kept-alive connection, where Node 20 reports
  // `authorized` true without a certificate.)
  assert.equal((await call(`${optional}/patroni`, 'GET', {}, anonymous)).status, 200, 'reads need no certificate');
  const refused = await call(`${optional}/switchover`, 'POST', {}, anonymous);
  assert.equal(refused.status, 403);
  assert.match(refused.text, /client certificate/);
  assert.equal((await call(`${optional}/switchover`, 'POST', {}, withCert)).status, 200);

  const required = await serve({ ...tls, verify_client: 'required' });
  await assert.rejects(call(`${required}/patroni`, 'GET', {}, anonymous), 'the handshake fails without a certificate');
  assert.equal((await call(`${required}/patroni`, 'GET', {}, withCert)).status, 200);
  await anonymous.close();
  await withCert.close();
});

test('an unreadable certificate is named', () => {
  assert.throws(() => httpsOptions({ ...base, certfile: '/nonexistent/server.crt' }), /restapi\.certfile: cannot read \/nonexistent\/server\.crt/);
});
