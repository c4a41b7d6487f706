// Fuzzing the configuration loader: YAML text of every kind (broken syntax, aliases, merge keys,
// tags, deep nesting), valid files with any known field set to a value of the wrong type or out of
// range, environment overrides, and the dynamic configuration PATCH /config validates. Either the
// result is a configuration whose values are in range, or a ConfigError whose key names the
// offending field; never another exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BlockList, isIP } from 'node:net';
import { stringify } from 'yaml';
import { parseConfig, validateDynamicConfig, MAX_CONFIG_DEPTH } from '../../src/ha/config/load.ts';
import { minimalConfig } from '../support/configs.ts';
import { ConfigError } from '../../src/ha/config/types.ts';
import type { AgentConfig, DynamicConfig } from '../../src/ha/config/types.ts';
import { hostileNumber, params } from './support.ts';

const RUNS = 500;

type Tree = Record<string, unknown>;

/** Every setting the loader reads (patroni.yml's names), so each gets its share of bad values. */
const DYNAMIC_FIELDS = [
  'ttl', 'loop_wait', 'retry_timeout', 'maximum_lag_on_failover', 'maximum_lag_on_syncnode', 'primary_start_timeout', 'primary_stop_timeout',
  'master_start_timeout', 'master_stop_timeout', 'synchronous_mode', 'synchronous_mode_strict', 'synchronous_node_count', 'failsafe_mode',
  'check_timeline', 'member_slots_ttl', 'max_timelines_history', 'postgresql', 'postgresql.use_slots', 'postgresql.use_pg_rewind',
  'postgresql.parameters', 'postgresql.parameters.max_connections', 'postgresql.pg_hba', 'pause',
];
const FIELDS = [
  'scope', 'name', 'namespace',
  'restapi', 'restapi.listen', 'restapi.connect_address', 'restapi.authentication', 'restapi.authentication.username', 'restapi.authentication.password',
  'restapi.certfile', 'restapi.keyfile', 'restapi.keyfile_password', 'restapi.cafile', 'restapi.verify_client', 'restapi.allowlist', 'restapi.allowlist_include_members',
  'raft', 'raft.self_addr', 'raft.bind_addr', 'raft.partner_addrs', 'raft.data_dir', 'raft.password', 'raft.certfile', 'raft.keyfile', 'raft.cafile',
  'bootstrap', 'bootstrap.dcs', ...DYNAMIC_FIELDS.map((f) => `bootstrap.dcs.${f}`), 'bootstrap.initdb', 'bootstrap.pg_hba',
  'postgresql', 'postgresql.listen', 'postgresql.connect_address', 'postgresql.data_dir', 'postgresql.bin_dir', 'postgresql.authentication',
  'postgresql.authentication.superuser', 'postgresql.authentication.superuser.username', 'postgresql.authentication.superuser.password',
  'postgresql.authentication.replication', 'postgresql.authentication.replication.username', 'postgresql.authentication.rewind',
  'postgresql.parameters', 'postgresql.parameters.port', 'postgresql.pg_hba', 'postgresql.use_pg_rewind', 'postgresql.remove_data_directory_on_rewind_failure',
  'postgresql.remove_data_directory_on_diverged_timelines', 'postgresql.create_replica_methods', 'postgresql.callbacks', 'postgresql.callbacks.on_start',
  'postgresql.callbacks.on_bogus', 'postgresql.pg_ctl_timeout', 'postgresql.run_as', 'postgresql.pgpass',
  'tags', 'tags.nofailover', 'tags.failover_priority', 'tags.noloadbalance', 'tags.clonefrom', 'tags.nosync', 'tags.replicatefrom', 'tags.custom',
  'watchdog', 'watchdog.mode', 'watchdog.device', 'watchdog.safety_margin', 'log', 'log.level', 'log.type', 'log.dir',
];

/**
 * Settings judged together: a bad value in one may be reported at the other (the ttl rule, the
 * addresses that must differ or be reachable, the files TLS needs together, a witness with no
 * postgresql section, the section a misplaced key was read from).
 */
const RELATED: [RegExp, RegExp][] = [
  [/^bootstrap\.dcs(\.(ttl|loop_wait|retry_timeout))?$/, /^bootstrap\.dcs\.ttl$/],
  [/^(restapi|raft|postgresql)(\.(listen|bind_addr|self_addr|connect_address))?$/, /^(restapi\.(listen|connect_address)|raft\.(bind_addr|self_addr)|postgresql\.(listen|connect_address))$/],
  [/^raft(\.self_addr)?$/, /^raft\.partner_addrs\[\d+\]$/],
  [/^restapi(\.(certfile|keyfile|cafile|verify_client))?$/, /^restapi\.(certfile|cafile)$/],
  [/^raft(\.(certfile|keyfile|cafile))?$/, /^raft\.(certfile|keyfile|cafile)$/],
  [/^bootstrap\.dcs\.master_(start|stop)_timeout$/, /^bootstrap\.dcs\.primary_(start|stop)_timeout$/],
];

const parentOf = (key: string): string => key.slice(0, Math.max(0, key.lastIndexOf('.')));

/** Does a refusal name the field `changed` (itself, something inside it, its section, or a related key)? */
function names(error: ConfigError, changed: string): boolean {
  const key = error.key;
  if (key === changed || key.startsWith(`${changed}.`) || key.startsWith(`${changed}[`)) return true;
  if (changed.startsWith(`${key}.`)) return true; // the enclosing section was refused as a whole
  // Setting one field of a section the file did not have creates the section without the rest.
  if (parentOf(key) === parentOf(changed) && error.message.endsWith(': required')) return true;
  return RELATED.some(([from, to]) => from.test(changed) && to.test(key));
}

/** Values of every kind: wrong types, out of range, hostile strings, deep or odd structures. */
const badValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1, 0.5, 65536, 70000, '', ' ', 'on', 'off', 'yes', 'quorum', '-1', '1e999', '0x10', '127.0.0.1:0',
    ':8008', '[::1]:8008', '0.0.0.0:1', '*:5432', 'a,b:1', 'h:1:2', 'a/b', '../../etc/passwd', 'x\u0000y', '\ud800', '10.0.0.0/33'),
  fc.array(fc.constantFrom('10.0.0.0/8', '10.0.0.0/33', '::1/129', '::1/64', '127.0.0.1/999', 'db1', 'db1/8', '1.2.3.4/', '/8'), { minLength: 1, maxLength: 3 }),
  hostileNumber,
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.constant(null)), { maxLength: 3 }),
  fc.dictionary(fc.constantFrom('a', 'username', 'password', 'listen', 'ttl', '<<', '__proto__', 'constructor'), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.integer({ min: MAX_CONFIG_DEPTH - 2, max: MAX_CONFIG_DEPTH * 3 }).map((d) => {
    let v: unknown = 'leaf';
    for (let i = 0; i < d; i++) v = i % 2 ? [v] : { k: v };
    return v;
  }),
  fc.constant(undefined), // removes the key
);

function set(tree: Tree, path: string, value: unknown): void {
  const parts = path.split('.');
  let node: Tree = tree;
  for (const part of parts.slice(0, -1)) {
    if (typeof node[part] !== 'object' || node[part] === null || Array.isArray(node[part])) {
      if (value === undefined) return; // nothing to remove
      node[part] = {};
    }
    node = node[part] as Tree;
  }
  const last = parts[parts.length - 1]!;
  if (value === undefined) delete node[last];
  else node[last] = value;
}

/** A ConfigError whose message starts with its key; anything else fails the property. */
function refusal(run: () => unknown): { config: unknown; error: ConfigError | null } {
  try {
    return { config: run(), error: null };
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    assert.equal(err.code, 'ERR_BAD_CONFIG');
    assert.ok(err.key.length > 0, `no key in "${err.message}"`);
    assert.ok(err.message.startsWith(`${err.key}: `), err.message);
    return { config: null, error: err };
  }
}

const seconds = (n: number): boolean => typeof n === 'number' && Number.isFinite(n) && n >= 0;
const port = (p: { port: number }): boolean => Number.isInteger(p.port) && p.port >= 1 && p.port <= 65535;

/** What an accepted dynamic configuration guarantees to the HA loop. */
function assertDynamicInRange(d: DynamicConfig): void {
  for (const n of [d.ttl, d.loop_wait, d.retry_timeout]) assert.ok(seconds(n) && n > 0, `timing ${n}`);
  assert.ok(d.loop_wait + 2 * d.retry_timeout <= d.ttl + 1e-9, 'the ttl rule');
  for (const n of [d.primary_start_timeout, d.primary_stop_timeout, d.member_slots_ttl]) assert.ok(seconds(n), `seconds ${n}`);
  assert.ok(Number.isInteger(d.maximum_lag_on_failover) && d.maximum_lag_on_failover >= 0);
  assert.ok(Number.isInteger(d.maximum_lag_on_syncnode) && d.maximum_lag_on_syncnode >= -1);
  assert.ok(Number.isInteger(d.synchronous_node_count) && d.synchronous_node_count >= 1);
  assert.ok(Number.isInteger(d.max_timelines_history) && d.max_timelines_history >= 0);
  for (const b of [d.synchronous_mode_strict, d.failsafe_mode, d.check_timeline, d.postgresql.use_slots, d.postgresql.use_pg_rewind]) assert.equal(typeof b, 'boolean');
  for (const v of Object.values(d.postgresql.parameters)) assert.ok(['string', 'number', 'boolean'].includes(typeof v));
  assert.ok(d.postgresql.pg_hba.every((l) => typeof l === 'string'));
  // What the store will hold must be serialisable (no cycles, no bigints).
  JSON.stringify(d);
}

function assertAgentInRange(c: AgentConfig): void {
  assert.ok(c.scope.trim() !== '' && c.name.trim() !== '' && !c.name.includes('/'));
  for (const a of [c.restapi.listen, c.restapi.connect_address, c.raft.self_addr, c.raft.bind_addr, ...c.raft.partner_addrs]) assert.ok(port(a), JSON.stringify(a));
  if (c.postgresql) {
    assert.ok(port(c.postgresql.listen) && port(c.postgresql.connect_address));
    assert.ok(c.postgresql.pg_ctl_timeout > 0 && Number.isFinite(c.postgresql.pg_ctl_timeout));
  }
  assert.ok(Number.isInteger(c.tags.failover_priority) && c.tags.failover_priority >= 0);
  // The write guard builds a BlockList from these on every request: each must be one it accepts.
  for (const entry of c.restapi.allowlist) {
    const [addr, bits] = entry.split('/');
    const family = isIP(addr!) === 6 ? 'ipv6' : 'ipv4';
    if (isIP(addr!) !== 0 && bits !== undefined) new BlockList().addSubnet(addr!, Number(bits), family);
  }
  assert.ok(c.watchdog.safety_margin >= 0 || c.watchdog.safety_margin === -1);
  assertDynamicInRange(c.bootstrap.dcs);
}

// ---- Properties -----------------------------------------------------------------------------------

const YAML_TOKENS = [
  'scope', 'name', 'raft', 'restapi', 'postgresql', 'bootstrap', 'dcs', 'ttl', 'listen', 'x', ': ', ':', ' ', '  ', '\n', '\n  ', '\n    ', '- ', '-',
  '[', ']', '{', '}', ', ', '&a ', '&b ', '*a', '*b', '<<: ', '!!binary ', '!!set ', '!!map ', '!!seq ', '!!str ', '!!int ', '!!float ', '!!timestamp ',
  '!custom ', '"', "'", '\\', '#', '---\n', '...\n', '? ', '| ', '> ', '%YAML 1.1\n', '%TAG ! tag:x:\n', '\t', 'true', 'on', '1e999', '0x1F', '0o17',
  '.nan', '.inf', '~', 'null', '@', '`', '\u0000', '\ufeff', '\ud800', '127.0.0.1:8008', '2001-01-01',
];

test('parseConfig: any YAML text gives a configuration or a ConfigError naming the key', () => {
  const text = fc.oneof(
    fc.array(fc.constantFrom(...YAML_TOKENS), { maxLength: 60 }).map((t) => t.join('')),
    fc.string({ unit: 'binary', maxLength: 200 }),
    // A valid file with a few characters inserted, removed or replaced.
    fc.tuple(fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), fc.constantFrom(...YAML_TOKENS)), { minLength: 1, maxLength: 4 })).map(([edits]) => {
      let t = stringify(minimalConfig());
      for (const [at, del, insert] of edits) {
        const i = at % (t.length + 1);
        t = t.slice(0, i) + insert + t.slice(i + del);
      }
      return t;
    }),
  );
  fc.assert(
    fc.property(text, (yaml) => {
      const { config } = refusal(() => parseConfig(yaml, {}, 'fuzz.yml'));
      if (config) assertAgentInRange(config as AgentConfig);
    }),
    params(RUNS),
  );
});

test('parseConfig: a bad value in any known field is refused at that field, or accepted in range', () => {
  fc.assert(
    fc.property(fc.constantFrom(...FIELDS), badValue, (field, value) => {
      const tree = minimalConfig();
      set(tree, field, value);
      const { config, error } = refusal(() => parseConfig(stringify(tree), {}, 'fuzz.yml'));
      // A merge key (`<<`) with a source that is not a mapping is a YAML error, placed by line.
      const yamlError = error?.key === 'fuzz.yml' && /^fuzz\.yml: YAML error at line \d+, column \d+: Merge/.test(error.message) && String(JSON.stringify(value)).includes('"<<"');
      if (error) assert.ok(yamlError || names(error, field), `changed ${field} to ${JSON.stringify(value)}, refused at ${error.key}: ${error.message}`);
      else assertAgentInRange(config as AgentConfig);
    }),
    params(RUNS, 3),
  );
});

test('parseConfig: several bad fields at once still give a ConfigError or a configuration in range', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom(...FIELDS), badValue), { minLength: 2, maxLength: 6 }), (edits) => {
      const tree = minimalConfig();
      for (const [field, value] of edits) set(tree, field, value);
      const { config } = refusal(() => parseConfig(stringify(tree), {}, 'fuzz.yml'));
      if (config) assertAgentInRange(config as AgentConfig);
    }),
    params(RUNS),
  );
});

const ENV_SUFFIXES = [
  'SCOPE', 'NAME', 'NAMESPACE', 'LOG_LEVEL', 'LOG_TYPE', 'LOG_DIR', 'RESTAPI_LISTEN', 'RESTAPI_CONNECT_ADDRESS', 'RESTAPI_USERNAME', 'RESTAPI_PASSWORD',
  'RESTAPI_CERTFILE', 'RESTAPI_KEYFILE', 'RESTAPI_CAFILE', 'RESTAPI_VERIFY_CLIENT', 'POSTGRESQL_LISTEN', 'POSTGRESQL_CONNECT_ADDRESS', 'POSTGRESQL_DATA_DIR',
  'SUPERUSER_USERNAME', 'REPLICATION_USERNAME', 'RAFT_SELF_ADDR', 'RAFT_BIND_ADDR', 'RAFT_DATA_DIR', 'RAFT_PARTNER_ADDRS', 'RAFT_PASSWORD',
];

test('parseConfig: environment overrides with any text are refused by key or accepted in range', () => {
  fc.assert(
    fc.property(
      fc.dictionary(fc.constantFrom(...ENV_SUFFIXES.flatMap((s) => [`CONCLAVE_${s}`, `PATRONI_${s}`])), fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('', '127.0.0.1:9999', "['127.0.0.1:1','127.0.0.1:2']", '[,]', 'on'))),
      fc.boolean(),
      (env, withFile) => {
        const { config } = refusal(() => parseConfig(withFile ? stringify(minimalConfig()) : '', env, 'fuzz.yml'));
        if (config) assertAgentInRange(config as AgentConfig);
      },
    ),
    params(RUNS),
  );
});

test('validateDynamicConfig (PATCH/PUT /config): any JSON is refused under config.* or accepted in range', () => {
  const dynamic = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.array(fc.tuple(fc.constantFrom(...DYNAMIC_FIELDS), badValue), { maxLength: 5 }).map((edits) => {
      const tree: Tree = {};
      for (const [field, value] of edits) set(tree, field, value);
      return tree;
    }),
  );
  fc.assert(
    fc.property(dynamic, (raw) => {
      const { config, error } = refusal(() => validateDynamicConfig(raw, 'config'));
      if (error) assert.ok(error.key === 'config' || error.key.startsWith('config.') || error.key.startsWith('config['), error.message);
      else assertDynamicInRange(config as DynamicConfig);
    }),
    params(RUNS, 2),
  );
});

// ---- Regression tests: inputs the fuzzer (or its first probes) found -------------------------------

const refusedAt = (yaml: string, key: string, problem: RegExp): void => {
  const { error } = refusal(() => parseConfig(yaml, {}, 'fuzz.yml'));
  assert.ok(error, 'refused');
  assert.equal(error.key, key, error.message);
  assert.match(error.message, problem);
};

test('regression: an alias bomb is a ConfigError, not a ReferenceError', () => {
  const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (const [name, prev] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd']]) lines.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(', ')}]`);
  refusedAt(`${lines.join('\n')}\n`, 'fuzz.yml', /Excessive alias count/);
});

test('regression: an alias inside its own anchor is refused at its key, not a TypeError on a cycle', () => {
  refusedAt('scope: &a [*a]\n', 'scope[0]', /refers to itself/);
  refusedAt('scope: s\nname: n\ntags: &t {x: *t}\n', 'tags.x', /refers to itself/);
});

test('regression: a merge key whose source is not a mapping is a ConfigError', () => {
  refusedAt('<<: 5\n', 'fuzz.yml', /YAML error at line 1, column 1: Merge sources must be maps/);
  refusedAt('scope: s\ntags:\n  <<: [{a: 1}, false]\n', 'fuzz.yml', /YAML error at line 3, column 3: Merge sources must be maps/);
});

test('regression: values nested deeper than any setting are refused by key', () => {
  const deep = { ...minimalConfig(), tags: { custom: JSON.parse(`${'['.repeat(200)}1${']'.repeat(200)}`) as unknown } };
  refusedAt(stringify(deep), `tags.custom${'[0]'.repeat(MAX_CONFIG_DEPTH - 2)}`, /nested more than 64 levels/);
  const json = JSON.parse(`${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`) as unknown;
  assert.throws(() => validateDynamicConfig({ pause: json }, 'config'), (e: unknown) => e instanceof ConfigError && e.key.startsWith('config.pause.a'));
});

test('regression: a NaN or infinite value is shown as such, and a bigint does not break the message', () => {
  refusedAt(`${stringify(minimalConfig())}bootstrap: {dcs: {ttl: .nan}}\n`, 'bootstrap.dcs.ttl', /got NaN/);
  assert.throws(() => validateDynamicConfig({ ttl: 10n }, 'config'), (e: unknown) => e instanceof ConfigError && e.key === 'config.ttl');
});

test('regression: an allowlist CIDR prefix longer than its address is refused (the write guard threw on it)', () => {
  for (const entry of ['::1/129', '10.0.0.0/33']) {
    const tree = minimalConfig();
    set(tree, 'restapi.allowlist', ['127.0.0.0/8', entry]);
    refusedAt(stringify(tree), 'restapi.allowlist[1]', /a CIDR block/);
  }
  const tree = minimalConfig();
  set(tree, 'restapi.allowlist', ['10.0.0.0/32', '::/0', '::1/128']);
  assert.deepEqual((parseConfig(stringify(tree), {}, 'fuzz.yml')).restapi.allowlist, ['10.0.0.0/32', '::/0', '::1/128']);
});
