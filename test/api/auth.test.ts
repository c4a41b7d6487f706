// restapi.authentication on real agents: health checks and status stay open to load balancers
// and peers, a switchover without the password is refused with 401 and nothing happens, and with
// it the switchover runs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { AgentCluster } from '../support/agents.ts';

let cluster: AgentCluster | null = null;
after(() => cluster?.stopAll());

test('mutating endpoints need the REST password; reads do not', async () => {
  const c = (cluster = await AgentCluster.create([{ name: 'n1' }, { name: 'n2' }, { name: 'n3' }], { restapi: { authentication: { username: 'admin', password: 'api-secret' } } }));
  await c.startAll();
  const primary = await c.waitForPrimary();
  const candidate = ['n1', 'n2', 'n3'].find((n) => n !== primary)!;
  await c.waitFor(`${candidate} streaming`, async () => (await c.api(candidate))?.body.replication_state === 'streaming');
  assert.equal((await c.api(candidate, '/health'))?.status, 200, 'health checks stay open');

  const switchover = async (headers: Record<string, string>) => {
    const n = c.node(primary);
    const res = await request(`http://${n.testHost}:${n.apiPort}/switchover`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ leader: primary, candidate }), headersTimeout: 60_000, bodyTimeout: 60_000 });
    return { status: res.statusCode, text: await res.body.text() };
  };
  const refused = await switchover({});
  assert.deepEqual(refused, { status: 401, text: 'no auth header received' });
  const wrong = await switchover({ authorization: `Basic ${Buffer.from('admin:guess').toString('base64')}` });
  assert.equal(wrong.status, 401);
  assert.deepEqual(await c.primaries(), [primary], 'nothing happened');

  const done = await c.waitFor('an authenticated switchover', async () => {
    const r = await switchover({ authorization: `Basic ${Buffer.from('admin:api-secret').toString('base64')}` });
    return r.status === 200 ? r : null;
  });
  assert.match(done.text, new RegExp(`Successfully switched over to "?${candidate}`));
  assert.equal(await c.waitForPrimary(), candidate);
});
