// Fuzzing every REST endpoint through fastify's inject(): malformed and truncated JSON, wrong types,
// deep nesting, huge strings, bodies over the limit, odd content types, query strings and path
// parameters with ../, NUL and __proto__, with PostgreSQL up or down and the store with or without
// a quorum. Every answer must be a 2xx, a 4xx that says what is wrong, or a 503 (the store or
// PostgreSQL cannot answer); never a 500, a crash or an unhandled rejection. A refused request
// changes nothing: every key of the store, the scheduled restart and PostgreSQL are as before (so
// PATCH /config is refused whole, never half-applied).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildHarness, RUNNING_PRIMARY, RUNNING_REPLICA } from './api-harness.ts';
import type { Harness } from './api-harness.ts';
import { NOT_RUNNING } from '../../src/ha/postgres/status.ts';
import { hostileNumber, params } from './support.ts';

const RUNS = 500;

let h: Harness;
let guarded: Harness;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

before(async () => {
  process.on('unhandledRejection', onUnhandled);
  h = await buildHarness();
  guarded = await buildHarness({ authentication: { username: 'admin', password: 's3cret' } });
});

after(async () => {
  await h?.close();
  await guarded?.close();
  process.off('unhandledRejection', onUnhandled);
});

// ---- Generators ---------------------------------------------------------------------------------

const HEALTH = ['/', '/primary', '/master', '/read-write', '/leader', '/standby-leader', '/standby_leader', '/replica', '/read-only', '/sync', '/synchronous',
  '/async', '/asynchronous', '/read-only-sync', '/read-only-synchronous', '/quorum', '/read-only-quorum', '/health', '/liveness', '/readiness'];
const PATHS = [...HEALTH, '/patroni', '/cluster', '/history', '/config', '/raft', '/metrics', '/reload', '/switchover', '/failover', '/restart',
  '/reinitialize', '/cluster/members/n2', '/cluster/members/n1', '/cluster/members/'];

const weirdSegment = fc.constantFrom('..', '../..', '%2e%2e', '%2e%2e%2f', '%00', 'n2%00', '\u0000', '%ff', '%', '%zz', '__proto__', 'constructor', '.', '',
  'a'.repeat(300), 'n2/../n1', '%2F', 'x?y', '💥', 'n\u00e9');

const path: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...PATHS) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('/cluster/members/', '/', '/config/', '/patroni/'), weirdSegment).map(([p, s]) => p + s) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...PATHS), fc.constantFrom('/', '//', '/..', '/.', '%00', '.json')).map(([p, s]) => p + s) },
);

const queryValue = fc.oneof(fc.constantFrom('0', '1', '16kB', '64MB', '1GB', '1.5tb', '-1', 'abc', '', '1e999', 'NaN', 'apply', 'write', 'streaming', 'a'), fc.string({ maxLength: 12 }));
const queryKey = fc.oneof(fc.constantFrom('lag', 'mode', 'replication_state', 'tag_zone', 'tag_nosync', 'tag___proto__', 'tag_constructor', 'tag_', '__proto__', 'constructor', 'x[]', 'a[b]'), fc.string({ maxLength: 8 }));
const query: fc.Arbitrary<string> = fc.oneof(
  fc.constant(''),
  fc.array(fc.tuple(queryKey, queryValue), { maxLength: 5 }).map((kv) => `?${kv.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`),
  fc.constantFrom('?', '?&&', '?lag', '?=x', '?lag=%zz', '?%00=%00', `?lag=${'9'.repeat(400)}`, '?tag_zone=a&tag_zone=b'),
);

/** Values of every type for a field: what a client might send by mistake, and what an attacker might. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, '', ' ', 'n1', 'n2', 'n3', 'primary', 'replica', 'master', 'standby_leader', '15.4', '9.6', '9.6.24', '10',
    'abc', '30', '30s', '1 min', '0', '-5', '2999-01-01T00:00:00Z', '2999-01-01T00:00:00', '2000-01-01T00:00:00Z', 'not a date', '2999-01-01T00:00:00+05:30'),
  hostileNumber,
  fc.string({ maxLength: 30 }),
  fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
);

const FIELDS: Record<string, readonly string[]> = {
  switchover: ['leader', 'candidate', 'member', 'scheduled_at'],
  restart: ['role', 'postgres_version', 'timeout', 'restart_pending', 'schedule', 'bogus'],
  reinitialize: ['force', 'from_leader', 'from-leader'],
  config: ['ttl', 'loop_wait', 'retry_timeout', 'maximum_lag_on_failover', 'synchronous_mode', 'synchronous_node_count', 'pause', 'postgresql',
    'check_timeline', 'failsafe_mode', 'member_slots_ttl', '__proto__', 'constructor', 'prototype'],
  postgresql: ['use_slots', 'use_pg_rewind', 'parameters', 'pg_hba', 'recovery_conf'],
};

type Kind = keyof typeof FIELDS;

/** A JSON object with the fields an endpoint reads, each with a value of any type (or left out). */
const fieldsOf = (kind: Kind): fc.Arbitrary<Record<string, unknown>> =>
  fc.array(fc.tuple(fc.constantFrom(...FIELDS[kind]!), fc.oneof(anyValue, fc.array(fc.tuple(fc.constantFrom(...FIELDS.postgresql!), anyValue), { maxLength: 3 }).map((e) => Object.fromEntries(e)))), { maxLength: 5 })
    .map((entries) => Object.fromEntries(entries));

const deep = (depth: number, kind: 'array' | 'object'): string => (kind === 'array' ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);

type Body = { text: string } | { json: unknown } | null;
/** Bodies for an endpoint that reads `kind`'s fields: mostly its own fields, then everything hostile. */
const bodyFor = (kind: Kind): fc.Arbitrary<Body> => fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 6, arbitrary: fieldsOf(kind).map((json) => ({ json })) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((json) => ({ json })) },
  // Malformed: a valid body cut short or with a character changed, or plain junk.
  { weight: 2, arbitrary: fc.tuple(fieldsOf(kind), fc.nat(), fc.constantFrom('', '}', '{', '"', ',', '\u0000', 'NaN', '\\')).map(([json, at, insert]) => {
    const t = JSON.stringify(json);
    const i = at % (t.length + 1);
    return { text: t.slice(0, i) + insert + t.slice(i + 1) };
  }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((text) => ({ text })) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'null', '[]', '"x"', '1', 'true', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '{"a":1,"a":2}', '\ufeff{}').map((text) => ({ text })) },
  // Deep: nesting far beyond any real request, up to what the 1 MiB body limit lets through.
  { weight: 4, arbitrary: fc.tuple(fc.integer({ min: 50, max: 200_000 }), fc.constantFrom('array' as const, 'object' as const), fc.constantFrom(...FIELDS[kind]!)).chain(([d, shape, field]) =>
    fc.constantFrom({ text: deep(d, shape) }, { text: `{"${field}":${deep(d, shape)},"ttl":30}` }, { text: `{"postgresql":{"parameters":${deep(d, shape)}}}` })) },
  // Huge: long strings within the limit, and bodies over it; many keys.
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...FIELDS[kind]!), fc.integer({ min: 1000, max: 1_200_000 })).map(([k, n]) => ({ text: JSON.stringify({ [k]: 'x'.repeat(n) }) })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5000 }).map((n) => ({ text: JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))) })) },
);

const method = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'HEAD', 'OPTIONS') as fc.Arbitrary<string> },
  { weight: 1, arbitrary: fc.constantFrom('TRACE', 'PROPFIND', 'CONNECT', 'SEARCH') },
);

/** Every route the agent serves, with the fields its body is read for. */
const HEALTH_ROUTES: [string, string, Kind][] = HEALTH.flatMap((p) => ['GET', 'HEAD', 'OPTIONS'].map((m): [string, string, Kind] => [m, p, 'config']));
const READ_ROUTES: [string, string, Kind][] = ['/patroni', '/cluster', '/history', '/config', '/raft', '/metrics'].map((p): [string, string, Kind] => ['GET', p, 'config']);
const WRITE_ROUTES: [string, string, Kind][] = [
  ['PATCH', '/config', 'config'], ['PATCH', '/config', 'config'], ['PUT', '/config', 'config'], ['POST', '/reload', 'config'], ['POST', '/switchover', 'switchover'],
  ['POST', '/failover', 'switchover'], ['DELETE', '/switchover', 'switchover'], ['POST', '/restart', 'restart'], ['POST', '/restart', 'restart'], ['DELETE', '/restart', 'restart'],
  ['POST', '/reinitialize', 'reinitialize'], ['DELETE', '/cluster/members/n2', 'config'], ['DELETE', '/cluster/members/n1', 'config'],
];

const route: fc.Arbitrary<{ method: string; url: string; body: Body }> = fc.oneof(
  ...([[2, HEALTH_ROUTES], [1, READ_ROUTES], [6, WRITE_ROUTES]] as const).map(([weight, routes]) => ({
    weight,
    arbitrary: fc.constantFrom(...routes).chain(([m, p, kind]) => fc.record({ method: fc.constant(m), url: fc.tuple(fc.constant(p), query).map(([a, q]) => a + q), body: bodyFor(kind) }, { noNullPrototype: true })),
  })),
  { weight: 2, arbitrary: fc.record({ method, url: fc.tuple(path, query).map(([p, q]) => p + q), body: fc.constantFrom(...(Object.keys(FIELDS) as Kind[])).chain(bodyFor) }, { noNullPrototype: true }) },
);

const contentType = fc.constantFrom(undefined, 'application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json; charset=latin1',
  'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', 'application/x-msgpack', '', 'json', '*/*', 'application/json, text/plain');

const ifMatch = fc.option(fc.oneof(fc.constantFrom('"1"', '1', 'W/"2"', '"abc"', '*', '', '"99999999999999999999"', '-1', '1.5'), fc.nat({ max: 50 }).map(String)), { nil: undefined });

interface Case {
  method: string;
  url: string;
  contentType: string | undefined;
  ifMatch: string | undefined;
  authorization: string | undefined;
  body: Body;
  pg: 'down' | 'replica' | 'primary';
  unavailable: boolean;
}

const request: fc.Arbitrary<Case> = fc.record({
  route, contentType: fc.oneof({ weight: 3, arbitrary: fc.constant('application/json') }, { weight: 2, arbitrary: contentType }), ifMatch,
  authorization: fc.option(fc.constantFrom(`Basic ${Buffer.from('admin:s3cret').toString('base64')}`, `Basic ${Buffer.from('admin:nope').toString('base64')}`, 'Basic', 'Basic !!!', 'Bearer x', ''), { nil: undefined }),
  pg: fc.constantFrom('down' as const, 'replica' as const, 'primary' as const), unavailable: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
}, { noNullPrototype: true }).map(({ route: r, ...rest }) => ({ ...rest, ...r }));

// ---- The property -------------------------------------------------------------------------------

const PG = { down: NOT_RUNNING, replica: RUNNING_REPLICA, primary: RUNNING_PRIMARY };

async function send(target: Harness, c: Case): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = {};
  if (c.contentType !== undefined) headers['content-type'] = c.contentType;
  if (c.ifMatch !== undefined) headers['if-match'] = c.ifMatch;
  if (c.authorization !== undefined) headers.authorization = c.authorization;
  const payload = c.body === null ? undefined : 'text' in c.body ? c.body.text : JSON.stringify(c.body.json);
  if (payload !== undefined && c.contentType === undefined) headers['content-type'] = 'application/json';
  const res = await target.app.inject({ method: c.method as 'GET', url: c.url, headers, payload });
  return { status: res.statusCode, text: res.body };
}

async function check(target: Harness, c: Case): Promise<{ status: number; text: string }> {
  await target.reset({ pg: PG[c.pg], unavailable: c.unavailable });
  const before = target.snapshot();
  const res = await send(target, c);
  const what = `${c.method} ${c.url.slice(0, 120)} → ${res.status} ${res.text.slice(0, 200)}`;
  assert.ok(res.status >= 200 && res.status < 600, what);
  assert.ok(res.status < 500 || res.status === 503, `only 503 may be a server-side answer: ${what}`);
  if (res.status >= 400 && res.status < 500 && c.method !== 'HEAD') assert.ok(res.text.trim().length > 0, `a refusal says why: ${what}`);
  // fastify's own fallback for an error nobody handled; every refusal must be the API's own.
  assert.doesNotMatch(res.text, /Internal Server Error|Maximum call stack|Cannot read prop|is not a function|undefined/i, what);
  // A switchover that was written but not seen through within waitMs answers 503 "status unknown"
  // (Patroni's answer): accepted, not refused.
  const accepted = res.status < 300 || (res.status === 503 && /^(Switchover|Failover) status unknown/.test(res.text));
  if (!accepted) assert.equal(target.snapshot(), before, `a refused request changed state: ${what}`);
  // Let anything the request left running settle, then look for rejections nobody handled.
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(unhandled.splice(0), [], `unhandled rejection after ${what}`);
  return res;
}

test('REST API: any request gets a 2xx, a 4xx that says why, or a 503; refusals change nothing', async () => {
  await fc.assert(fc.asyncProperty(request, (c) => check(h, c).then(() => undefined)), params(RUNS));
});

test('REST API with Basic auth: mutating requests without the right credentials are refused and change nothing', async () => {
  const good = `Basic ${Buffer.from('admin:s3cret').toString('base64')}`;
  await fc.assert(
    fc.asyncProperty(request, async (c) => {
      const res = await check(guarded, c);
      // 401 from the guard, or refused before routing (a URL that does not decode, an unknown path,
      // a path parameter over fastify's maxParamLength: 414).
      if (!['GET', 'HEAD', 'OPTIONS'].includes(c.method) && c.authorization !== good) assert.ok([400, 401, 404, 414].includes(res.status), `${c.method} ${c.url} with ${String(c.authorization)}: ${res.status}`);
    }),
    params(RUNS, 0.4),
  );
});

test('PATCH /config: a patch is applied whole or not at all', async () => {
  const patch = fc.array(fc.tuple(fc.constantFrom(...FIELDS.config!), fc.oneof(anyValue, fc.constant(null))), { minLength: 1, maxLength: 6 }).map((e) => Object.fromEntries(e));
  await fc.assert(
    fc.asyncProperty(patch, async (generated) => {
      const p = JSON.parse(JSON.stringify(generated)) as Record<string, unknown>; // as sent: NaN and Infinity become null
      await h.reset({ pg: RUNNING_PRIMARY, unavailable: false });
      const before = (await h.store.getCluster()).config!.value;
      const res = await send(h, { method: 'PATCH', url: '/config', contentType: 'application/json', ifMatch: undefined, authorization: undefined, body: { json: p }, pg: 'primary', unavailable: false });
      const afterView = (await h.store.getCluster()).config!.value;
      if (res.status === 200) {
        assert.deepEqual(JSON.parse(res.text), afterView, 'the answer is the stored config');
        // Every key of the patch took effect: nulls removed it, objects merged, others replaced.
        for (const [k, v] of Object.entries(p)) {
          if (v === null) assert.ok(!Object.hasOwn(afterView, k), `${k} removed`);
          else if (typeof v !== 'object' || Array.isArray(v)) assert.deepEqual(afterView[k], v, k);
        }
      } else {
        assert.ok(res.status === 400, `${res.status} ${res.text}`);
        assert.deepEqual(afterView, before, 'refused whole: nothing of it was stored');
      }
    }),
    params(RUNS),
  );
});

test('REST API: deep and huge bodies on every write route are refused cleanly or applied whole', async () => {
  const hostileBody = fc.tuple(fc.integer({ min: 60, max: 200_000 }), fc.constantFrom('array' as const, 'object' as const), fc.constantFrom('pause', 'leader', 'role', 'force', 'x')).chain(([d, shape, field]) =>
    fc.constantFrom<Body>({ text: deep(d, shape) }, { text: `{"${field}":${deep(d, shape)}}` }, { text: `{"postgresql":{"parameters":${deep(d, shape)}}}` }, { text: JSON.stringify({ [field]: 'y'.repeat(d * 6) }) }));
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...WRITE_ROUTES), hostileBody, fc.constantFrom('application/json', 'text/plain'), async ([m, url], b, ct) => {
      await check(h, { method: m, url, contentType: ct, ifMatch: undefined, authorization: undefined, body: b, pg: 'replica', unavailable: false });
    }),
    params(RUNS, 0.3),
  );
});

test('health checks: a tag filter passes only on a tag the member has, with that value', async () => {
  const name = fc.oneof(fc.constantFrom('zone', 'nosync', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'all', ''), fc.string({ maxLength: 6 }));
  // Object.prototype's members with what String(x).toLowerCase() makes of them: a filter that read
  // inherited properties would match exactly these pairs.
  const proto = Object.prototype as unknown as Record<string, unknown>;
  const inherited = [['__proto__', '[object object]'], ...Object.getOwnPropertyNames(Object.prototype).filter((n) => n !== '__proto__').map((n) => [n, String(proto[n]).toLowerCase()])] as [string, string][];
  const value = fc.oneof(fc.constantFrom('a', 'b', 'false', 'true', ''), fc.string({ maxLength: 6 }));
  await fc.assert(
    fc.asyncProperty(fc.constantFrom('/replica', '/read-only', '/async', '/health'), fc.oneof(fc.tuple(name, value), fc.constantFrom(...inherited)), async (p, [n, v]) => {
      await h.reset({ pg: RUNNING_REPLICA, unavailable: false });
      const res = await h.app.inject({ method: 'GET', url: `${p}?tag_${encodeURIComponent(n)}=${encodeURIComponent(v)}` });
      const tags = h.config.tags.all as Record<string, unknown>;
      const has = Object.hasOwn(tags, n) && tags[n] !== null && (typeof tags[n] === 'string' ? tags[n] : String(tags[n]).toLowerCase()) === v;
      assert.equal(res.statusCode, has ? 200 : 503, `${p}?tag_${n}=${v}`);
    }),
    params(RUNS, 0.3),
  );
});

// ---- Regression tests: requests the fuzzer found ------------------------------------------------------

const plain = (method: string, url: string, text?: string, contentType = 'application/json'): Case => ({
  method, url, contentType, ifMatch: undefined, authorization: undefined, body: text === undefined ? null : { text }, pg: 'replica', unavailable: false,
});

test('regression: PATCH and PUT /config nested 100,000 deep are a 400 naming the key, not a stack overflow answered 503', async () => {
  for (const m of ['PATCH', 'PUT']) {
    for (const text of [`{"pause":${deep(100_000, 'object')}}`, deep(20_000, 'object')]) {
      const res = await check(h, plain(m, '/config', text));
      assert.equal(res.status, 400, `${m}: ${res.text.slice(0, 100)}`);
      assert.match(res.text, /^config\.(pause\.)?a\.a\..*: nested more than 64 levels deep$/);
    }
  }
});

test('regression: tag_constructor and tag___proto__ filters do not match Object.prototype (they answered 200)', async () => {
  for (const url of ['/replica?tag_constructor=function%20object()%20%7B%20%5Bnative%20code%5D%20%7D', '/replica?tag___proto__=%5Bobject%20object%5D', '/read-only?tag_toString=function%20tostring()%20%7B%20%5Bnative%20code%5D%20%7D']) {
    const res = await check(h, plain('GET', url));
    assert.equal(res.status, 503, url);
  }
  assert.equal((await check(h, plain('GET', '/replica?tag_zone=a'))).status, 200, 'a tag the member has still matches');
});

test('regression: POST /restart and /reinitialize with a deeply nested field are a 400, not a stack overflow in the message', async () => {
  const text = `{"postgres_version":${deep(20_000, 'object')}}`;
  for (const url of ['/restart', '/reinitialize']) {
    const res = await check(h, plain('POST', url, text));
    assert.equal(res.status, 400, res.text.slice(0, 100));
    assert.match(res.text, /^body\.postgres_version\.a\.a\..*: nested more than 64 levels deep$/);
  }
});
