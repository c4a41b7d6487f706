// The configuration loader: the demo files, defaults, environment overrides, Patroni compatibility,
// and one refusal per class of mistake, each naming the key the operator has to fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { applyEnv, parseEnvList } from './env.ts';
import { dynamicConfigToJson, loadConfigFile, parseConfig, validateDynamicConfig } from './load.ts';
import { minimalConfig } from '../../../test/support/configs.ts';
import { ConfigError } from './types.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const NO_ENV = {};

type Tree = Record<string, unknown>;

/** minimalConfig() (the smallest valid configuration) with `edits` applied: dotted path → new value, undefined to delete the key. */
function edited(edits: Tree): Tree {
  const config = minimalConfig();
  for (const [path, value] of Object.entries(edits)) {
    const parts = path.split('.');
    const parent = parts.slice(0, -1).reduce((node, part) => (node[part] ??= {}) as Tree, config);
    if (value === undefined) delete parent[parts[parts.length - 1]!];
    else parent[parts[parts.length - 1]!] = value;
  }
  return config;
}

const parse = (config: unknown, env: Record<string, string> = NO_ENV) => parseConfig(stringify(config), env, 'test.yml');

/** Asserts that `run` throws a ConfigError for `key` whose message matches `problem`. */
function refuses(run: () => unknown, key: string, problem: RegExp): void {
  let error: unknown;
  try {
    run();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof ConfigError, `expected a ConfigError for ${key}, got ${String(error)}`);
  assert.equal(error.key, key, error.message);
  assert.equal(error.code, 'ERR_BAD_CONFIG');
  assert.ok(error.message.startsWith(`${key}: `), error.message);
  assert.match(error.message, problem);
}

test('the three demo files parse and describe one cluster', async () => {
  const nodes = await Promise.all([1, 2, 3].map((i) => loadConfigFile(resolve(repoRoot, `config/node${i}.yml`), NO_ENV)));
  nodes.forEach((c, i) => {
    const n = i + 1;
    assert.equal(c.scope, 'conclave-demo');
    assert.equal(c.namespace, '/service');
    assert.equal(c.name, `node${n}`);
    assert.deepEqual(c.restapi.listen, { host: '127.0.0.1', port: 8007 + n });
    assert.deepEqual(c.raft.self_addr, { host: '127.0.0.1', port: 2221 + n });
    assert.deepEqual(c.postgresql!.listen, { host: '127.0.0.1', port: 5431 + n });
    assert.equal(c.raft.data_dir, resolve(`data/node${n}/raft`));
    assert.equal(c.postgresql!.data_dir, resolve(`data/node${n}/pg`));
    assert.equal(c.postgresql!.bin_dir, '/usr/lib/postgresql/15/bin');
    assert.deepEqual(c.postgresql!.authentication.rewind, { username: 'rewind_user', password: 'conclave-rewind' });
    assert.equal(c.postgresql!.use_pg_rewind, true);
    assert.ok(c.postgresql!.pg_hba.includes('local all all trust'));
    assert.ok(c.postgresql!.pg_hba.some((line) => /^host\s+replication\s+replicator\s+127\.0\.0\.1\/32\s+md5$/.test(line)));
    assert.deepEqual(c.bootstrap.initdb, [{ encoding: 'UTF8' }, 'data-checksums']);
    assert.deepEqual({ ttl: c.bootstrap.dcs.ttl, loop_wait: c.bootstrap.dcs.loop_wait, retry_timeout: c.bootstrap.dcs.retry_timeout }, { ttl: 2, loop_wait: 0.5, retry_timeout: 0.5 });
    assert.deepEqual(c.bootstrap.dcs.postgresql.parameters, { wal_log_hints: 'on' });
    // Every member lists exactly the other two as partners.
    const others = nodes.filter((o) => o !== c).map((o) => o.raft.self_addr);
    assert.deepEqual([...c.raft.partner_addrs], others);
  });
});

test('defaults fill every optional setting', () => {
  const c = parse(minimalConfig());
  assert.equal(c.namespace, '/service');
  assert.deepEqual(c.restapi.connect_address, c.restapi.listen);
  assert.equal(c.restapi.authentication, null);
  assert.deepEqual(c.raft.bind_addr, c.raft.self_addr);
  assert.deepEqual(c.postgresql!.connect_address, { host: '127.0.0.1', port: 5432 });
  assert.deepEqual(c.postgresql!.authentication.rewind, { username: 'postgres', password: 's' });
  assert.equal(c.postgresql!.bin_dir, '/usr/lib/postgresql/15/bin');
  assert.equal(c.postgresql!.run_as, 'postgres');
  assert.equal(c.postgresql!.pg_ctl_timeout, 60);
  assert.deepEqual(c.postgresql!.create_replica_methods, ['basebackup']);
  assert.equal(c.postgresql!.remove_data_directory_on_rewind_failure, false);
  assert.equal(c.postgresql!.remove_data_directory_on_diverged_timelines, false);
  assert.equal(c.postgresql!.use_pg_rewind, null);
  assert.deepEqual(c.postgresql!.parameters, {});
  assert.deepEqual(c.postgresql!.callbacks, {});
  assert.deepEqual(c.bootstrap.initdb, []);
  assert.deepEqual(c.tags, { nofailover: false, failover_priority: 1, noloadbalance: false, clonefrom: false, nosync: false, replicatefrom: null, all: {} });
  assert.deepEqual(c.watchdog, { mode: 'automatic', device: '/dev/watchdog', safety_margin: 5 });
  assert.deepEqual(c.log, { level: 'info', type: 'auto', dir: null });
  assert.deepEqual(c.bootstrap.dcs, {
    ttl: 2, loop_wait: 0.5, retry_timeout: 0.5,
    maximum_lag_on_failover: 1048576, maximum_lag_on_syncnode: -1,
    primary_start_timeout: 300, primary_stop_timeout: 0,
    synchronous_mode: false, synchronous_mode_strict: false, synchronous_node_count: 1,
    failsafe_mode: false, check_timeline: false, member_slots_ttl: 1800, max_timelines_history: 0,
    postgresql: { use_slots: true, use_pg_rewind: false, parameters: {}, pg_hba: [] },
    extra: {},
  });
});

test('relative paths are resolved against the working directory, absolute ones kept', () => {
  const c = parse(edited({ 'postgresql.data_dir': '/var/lib/pg', 'log.dir': 'logs' }));
  assert.equal(c.postgresql!.data_dir, '/var/lib/pg');
  assert.equal(c.raft.data_dir, resolve(process.cwd(), 'data/n1/raft'));
  assert.equal(c.log.dir, resolve(process.cwd(), 'logs'));
});

test('environment overrides: PATRONI_ and CONCLAVE_ prefixes, CONCLAVE_ wins', () => {
  const env = {
    PATRONI_SCOPE: 'from-patroni',
    CONCLAVE_SCOPE: 'from-conclave',
    PATRONI_NAME: 'n9',
    PATRONI_NAMESPACE: '/ha/',
    CONCLAVE_LOG_LEVEL: 'DEBUG',
    PATRONI_LOG_TYPE: 'json',
    PATRONI_RESTAPI_LISTEN: '0.0.0.0:9008',
    PATRONI_RESTAPI_CONNECT_ADDRESS: '10.0.0.9:9008',
    PATRONI_RESTAPI_USERNAME: 'admin',
    CONCLAVE_RESTAPI_PASSWORD: 'pw',
    PATRONI_POSTGRESQL_LISTEN: '127.0.0.1:6432',
    PATRONI_POSTGRESQL_BIN_DIR: '/opt/pg/bin',
    PATRONI_SUPERUSER_PASSWORD: 'super2',
    PATRONI_REWIND_USERNAME: 'rw',
    CONCLAVE_REPLICATION_USERNAME: 'rep2',
    PATRONI_RAFT_SELF_ADDR: '127.0.0.1:3222',
    PATRONI_RAFT_BIND_ADDR: '0.0.0.0:3222',
    PATRONI_RAFT_PARTNER_ADDRS: "'127.0.0.1:3223','127.0.0.1:3224'",
  };
  const c = parse(minimalConfig(), env);
  assert.equal(c.scope, 'from-conclave');
  assert.equal(c.name, 'n9');
  assert.equal(c.namespace, '/ha');
  assert.equal(c.log.level, 'debug');
  assert.equal(c.log.type, 'json');
  assert.deepEqual(c.restapi.listen, { host: '0.0.0.0', port: 9008 });
  assert.deepEqual(c.restapi.connect_address, { host: '10.0.0.9', port: 9008 });
  assert.deepEqual(c.restapi.authentication, { username: 'admin', password: 'pw' });
  assert.deepEqual(c.postgresql!.listen, { host: '127.0.0.1', port: 6432 });
  assert.equal(c.postgresql!.bin_dir, '/opt/pg/bin');
  assert.deepEqual(c.postgresql!.authentication.superuser, { username: 'postgres', password: 'super2' });
  assert.deepEqual(c.postgresql!.authentication.replication, { username: 'rep2', password: 'r' });
  assert.deepEqual(c.postgresql!.authentication.rewind, { username: 'rw', password: '' });
  assert.deepEqual(c.raft.bind_addr, { host: '0.0.0.0', port: 3222 });
  assert.deepEqual(c.raft.partner_addrs, [{ host: '127.0.0.1', port: 3223 }, { host: '127.0.0.1', port: 3224 }]);
});

test('an override from the environment is validated like the file, and applyEnv does not modify its input', () => {
  refuses(() => parse(minimalConfig(), { CONCLAVE_POSTGRESQL_LISTEN: 'localhost' }), 'postgresql.listen', /expected "host:port", got "localhost"/);
  const raw = minimalConfig();
  const before = structuredClone(raw);
  const out = applyEnv(raw, { PATRONI_SCOPE: 'x', PATRONI_RESTAPI_USERNAME: 'u' }) as { scope: string; restapi: { authentication: { username: string } } };
  assert.deepEqual(raw, before);
  assert.equal(out.scope, 'x');
  assert.equal(out.restapi.authentication.username, 'u');
  // An empty section (`restapi:` → null) is filled; a section of the wrong type is left for validation.
  assert.deepEqual(applyEnv({ restapi: null }, { PATRONI_RESTAPI_LISTEN: ':1' }), { restapi: { listen: ':1' } });
  assert.deepEqual(applyEnv({ restapi: 'x' }, { PATRONI_RESTAPI_LISTEN: ':1' }), { restapi: 'x' });
});

test('partner lists from the environment: Patroni quoted form, brackets, plain commas, empty', () => {
  const both = ['127.0.0.1:2223', '127.0.0.1:2224'];
  assert.deepEqual(parseEnvList("'127.0.0.1:2223','127.0.0.1:2224'"), both);
  assert.deepEqual(parseEnvList('["127.0.0.1:2223", "127.0.0.1:2224"]'), both);
  assert.deepEqual(parseEnvList(' 127.0.0.1:2223 , 127.0.0.1:2224 '), both);
  assert.deepEqual(parseEnvList(''), []);
  const c = parse(minimalConfig(), { PATRONI_RAFT_PARTNER_ADDRS: '127.0.0.1:2223' });
  assert.deepEqual(c.raft.partner_addrs, [{ host: '127.0.0.1', port: 2223 }]);
});

test('the whole configuration from CONCLAVE_CONFIGURATION / PATRONI_CONFIGURATION, or from variables alone', async () => {
  const yamlText = stringify(minimalConfig());
  assert.equal((await loadConfigFile(null, { PATRONI_CONFIGURATION: yamlText })).scope, 'demo');
  const other = stringify({ ...minimalConfig(), scope: 'conclave-wins' });
  assert.equal((await loadConfigFile(undefined, { PATRONI_CONFIGURATION: yamlText, CONCLAVE_CONFIGURATION: other })).scope, 'conclave-wins');
  const env = {
    PATRONI_SCOPE: 's', PATRONI_NAME: 'n', PATRONI_RESTAPI_LISTEN: '127.0.0.1:8008',
    PATRONI_RAFT_SELF_ADDR: '127.0.0.1:2222', PATRONI_RAFT_DATA_DIR: 'r', PATRONI_POSTGRESQL_LISTEN: '127.0.0.1:5432',
    PATRONI_POSTGRESQL_DATA_DIR: 'd', PATRONI_SUPERUSER_USERNAME: 'postgres', PATRONI_REPLICATION_USERNAME: 'rep',
  };
  const c = await loadConfigFile(null, env);
  assert.deepEqual(c.postgresql!.authentication.replication, { username: 'rep', password: '' });
  await assert.rejects(loadConfigFile('/nonexistent/conclave.yml', NO_ENV), (e: unknown) => e instanceof ConfigError && e.key === '/nonexistent/conclave.yml' && /ENOENT/.test(e.message));
});

test('addresses: ":port", IPv6, a comma list of PostgreSQL hosts, all interfaces with a connect address', () => {
  const c = parse(edited({
    restapi: { listen: ':8008', connect_address: '10.0.0.1:8008' },
    'postgresql.listen': '127.0.0.1,127.0.0.2:5432',
    'raft.bind_addr': '[::]:2222',
  }));
  assert.deepEqual(c.restapi.listen, { host: '', port: 8008 });
  assert.deepEqual(c.restapi.connect_address, { host: '10.0.0.1', port: 8008 });
  assert.deepEqual(c.postgresql!.listen, { host: '127.0.0.1', port: 5432 });
  assert.deepEqual(c.postgresql!.connect_address, { host: '127.0.0.1', port: 5432 });
  assert.deepEqual(c.raft.bind_addr, { host: '::', port: 2222 });
});

test('numbers and booleans written as strings (env style, YAML 1.1 words) are parsed', () => {
  const dcs = { ttl: '30', loop_wait: '10', retry_timeout: '10', synchronous_mode: 'on', failsafe_mode: 'yes', postgresql: { use_slots: 'off' } };
  const config = edited({ 'bootstrap.dcs': dcs, tags: { nofailover: 'true', failover_priority: '3', nosync: 'off', zone: 'a' } });
  const c = parse(config);
  assert.equal(c.bootstrap.dcs.ttl, 30);
  assert.equal(c.bootstrap.dcs.synchronous_mode, true);
  assert.equal(c.bootstrap.dcs.failsafe_mode, true);
  assert.equal(c.bootstrap.dcs.postgresql.use_slots, false);
  assert.equal(c.tags.failover_priority, 3);
  assert.deepEqual(c.tags.all, { nofailover: true, failover_priority: 3, nosync: false, zone: 'a' });
  assert.equal(parse(edited({ 'bootstrap.dcs.synchronous_mode': 'quorum' })).bootstrap.dcs.synchronous_mode, 'quorum');
});

test('every required key is named when missing', () => {
  const required = [
    'scope', 'name', 'restapi.listen', 'raft.self_addr', 'raft.data_dir', 'postgresql.listen', 'postgresql.data_dir',
    'postgresql.authentication.superuser.username', 'postgresql.authentication.replication.username',
  ];
  for (const key of required) refuses(() => parse(edited({ [key]: undefined })), key, /: required$/);
});

/** One case per class of mistake: [description, edits to the minimal config, key, message]. */
const BAD: [string, Tree, string, RegExp][] = [
  ['empty scope', { scope: ' ' }, 'scope', /must not be empty/],
  ['a name that is a path', { name: 'a/../../b' }, 'name', /must not contain "\/"/],
  ['a dot name', { name: '..' }, 'name', /must not be "\." or "\.\."/],
  ['a name with a comma (a list entry of the sync key)', { name: 'a,b' }, 'name', /comma/],
  ['a name with a line break', { name: 'a\nb' }, 'name', /control character/],
  ['raft TLS incomplete', { 'raft.certfile': '/x.crt' }, 'raft.keyfile', /mutual TLS between members needs certfile, keyfile and cafile/],
  ['an empty raft password', { 'raft.password': '' }, 'raft.password', /empty/],
  ['listen without port', { 'postgresql.listen': 'localhost' }, 'postgresql.listen', /^postgresql\.listen: expected "host:port", got "localhost"$/],
  ['listen port out of range', { 'restapi.listen': '127.0.0.1:70000' }, 'restapi.listen', /port must be 1 to 65535/],
  ['IPv6 address without port', { 'restapi.listen': '::1' }, 'restapi.listen', /expected "host:port", got "::1"/],
  ['listen as a number', { 'restapi.listen': 8008 }, 'restapi.listen', /expected "host:port", got 8008/],
  ['all interfaces, no connect address', { 'restapi.listen': '0.0.0.0:8008' }, 'restapi.connect_address', /required when restapi.listen is on all interfaces/],
  ['postgresql on all interfaces, no connect address', { 'postgresql.listen': '*:5432' }, 'postgresql.connect_address', /required when postgresql.listen/],
  ['connect address on all interfaces', { 'restapi.connect_address': '0.0.0.0:8008' }, 'restapi.connect_address', /other members can connect to/],
  ['self_addr on all interfaces', { 'raft.self_addr': '0.0.0.0:2222' }, 'raft.self_addr', /other members can connect to/],
  ['ttl not a number', { bootstrap: { dcs: { ttl: 'abc' } } }, 'bootstrap.dcs.ttl', /^bootstrap\.dcs\.ttl: must be a number of seconds > 0, got "abc"$/],
  ['ttl zero', { bootstrap: { dcs: { ttl: 0 } } }, 'bootstrap.dcs.ttl', /> 0, got 0/],
  ['loop_wait zero', { bootstrap: { dcs: { loop_wait: 0 } } }, 'bootstrap.dcs.loop_wait', /> 0/],
  ['retry_timeout negative', { bootstrap: { dcs: { retry_timeout: -1 } } }, 'bootstrap.dcs.retry_timeout', /> 0/],
  ['timing rule broken', { bootstrap: { dcs: { ttl: 2, loop_wait: 1, retry_timeout: 1 } } }, 'bootstrap.dcs.ttl', /1 \+ 2 \* 1 = 3, got 2/],
  ['etcd instead of raft', { raft: undefined, etcd: { hosts: '127.0.0.1:2379' } }, 'raft', /^raft: required; Conclave has no etcd, use the raft section/],
  ['etcd3 instead of raft', { raft: undefined, etcd3: { host: '127.0.0.1:2379' } }, 'raft', /no etcd3/],
  ['negative failover_priority', { tags: { failover_priority: -1 } }, 'tags.failover_priority', /an integer >= 0, got -1/],
  ['fractional failover_priority', { tags: { failover_priority: 1.5 } }, 'tags.failover_priority', /integer/],
  ['failover_priority not a number', { tags: { failover_priority: 'high' } }, 'tags.failover_priority', /got "high"/],
  ['nofailover not a boolean', { tags: { nofailover: 'maybe' } }, 'tags.nofailover', /expected true or false/],
  ['self_addr among partners', { 'raft.partner_addrs': ['127.0.0.1:2223', '127.0.0.1:2224', '127.0.0.1:2222'] }, 'raft.partner_addrs[2]', /is raft.self_addr/],
  ['partner listed twice', { 'raft.partner_addrs': ['127.0.0.1:2223', '127.0.0.1:2224', '127.0.0.1:2223'] }, 'raft.partner_addrs[2]', /listed twice/],
  ['partner_addrs not a list', { 'raft.partner_addrs': '127.0.0.1:2223' }, 'raft.partner_addrs', /expected a list/],
  ['unknown log level', { log: { level: 'verbose' } }, 'log.level', /expected one of debug, info, .*got "verbose"/],
  ['unknown log type', { log: { type: 'xml' } }, 'log.type', /plain, json, auto/],
  ['misspelt watchdog mode', { watchdog: { mode: 'requried' } }, 'watchdog.mode', /got "requried"/],
  ['keyfile without certfile', { 'restapi.keyfile': '/etc/conclave/api.key' }, 'restapi.certfile', /required when restapi.keyfile/],
  ['verify_client without a CA', { 'restapi.certfile': '/etc/conclave/api.crt', 'restapi.verify_client': 'required' }, 'restapi.cafile', /required with verify_client: required/],
  ['misspelt verify_client', { 'restapi.verify_client': 'always' }, 'restapi.verify_client', /none, optional, required/],
  ['allowlist entry that is no host', { 'restapi.allowlist': ['10.0.0.0/8', 'not a host!'] }, 'restapi.allowlist[1]', /host name, an IP address or a CIDR block/],
  ['numeric password', { 'postgresql.authentication.superuser.password': 123 }, 'postgresql.authentication.superuser.password', /quote it/],
  ['parameter that is a mapping', { 'postgresql.parameters': { work_mem: { a: 1 } } }, 'postgresql.parameters.work_mem', /string, number or boolean/],
  ['section of the wrong type', { 'postgresql.authentication': ['postgres'] }, 'postgresql.authentication', /expected a mapping/],
  ['dynamic boolean not a boolean', { bootstrap: { dcs: { postgresql: { use_slots: 'sometimes' } } } }, 'bootstrap.dcs.postgresql.use_slots', /true or false/],
  ['synchronous_node_count zero', { bootstrap: { dcs: { synchronous_node_count: 0 } } }, 'bootstrap.dcs.synchronous_node_count', />= 1/],
  ['unknown callback', { 'postgresql.callbacks': { on_promote: '/bin/true' } }, 'postgresql.callbacks.on_promote', /unknown callback/],
  ['bad initdb option', { bootstrap: { initdb: [{ encoding: 'UTF8', locale: 'C' }] } }, 'bootstrap.initdb[0]', /one option/],
  ['namespace of only a slash', { namespace: '/' }, 'namespace', /must name a path/],
  ['name with a slash', { name: 'a/b' }, 'name', /must not contain "\/"/],
  ['two servers on one address', { 'postgresql.listen': '127.0.0.1:8008' }, 'postgresql.listen', /is also restapi.listen/],
];

for (const [what, edits, key, problem] of BAD) {
  test(`refused: ${what} (${key})`, () => refuses(() => parse(edited(edits)), key, problem));
}

test('refused: YAML syntax errors name the line; a top level that is not a mapping', () => {
  refuses(() => parseConfig('scope: demo\nname: n1\nrestapi: [127.0.0.1:8008\n', NO_ENV, 'node.yml'), 'node.yml', /YAML syntax error at line \d+/);
  refuses(() => parseConfig('scope: demo\nscope: again\n', NO_ENV, 'node.yml'), 'node.yml', /line 2.*unique/);
  refuses(() => parseConfig('- scope\n- name\n', NO_ENV, 'node.yml'), 'node.yml', /top level/);
});

test('a Patroni raft-style configuration is accepted as it is', () => {
  // Shaped like Patroni's postgres0.yml with the raft store: keys Conclave does not use are ignored.
  const patroniYaml = `
scope: batman
namespace: /service/
name: postgresql0
restapi:
  listen: 127.0.0.1:8008
  connect_address: 127.0.0.1:8008
  authentication:
    username: patroni
    password: secret
ctl:
  insecure: false
citus:
  group: 0
  database: citus
raft:
  data_dir: .
  self_addr: 127.0.0.1:2222
  partner_addrs: ['127.0.0.1:2223', '127.0.0.1:2224']
  password: raft-secret
  min_timeout: 0.4
  max_timeout: 1.4
bootstrap:
  dcs:
    ttl: 30
    loop_wait: 10
    retry_timeout: 10
    maximum_lag_on_failover: 1048576
    master_start_timeout: 120
    postgresql:
      use_pg_rewind: true
      pg_hba:
        - host replication replicator 127.0.0.1/32 md5
      pg_ident: ['map1 os_user db_user']
    slots:
      keep_me: {type: physical}
  initdb:
    - encoding: UTF8
    - data-checksums
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: data/postgresql0
  pgpass: /tmp/pgpass0
  authentication:
    replication:
      username: replicator
      password: rep-pass
    superuser:
      username: postgres
      password: zalando
    rewind:
      username: rewind_user
      password: rewind_password
  parameters:
    unix_socket_directories: '..'
    wal_log_hints: on
tags:
  noloadbalance: false
  clonefrom: false
  nostream: false
  zone: eu-1
`;
  const c = parseConfig(patroniYaml, NO_ENV, 'postgres0.yml');
  assert.equal(c.scope, 'batman');
  assert.equal(c.namespace, '/service');
  assert.deepEqual(c.restapi.authentication, { username: 'patroni', password: 'secret' });
  assert.equal(c.raft.data_dir, process.cwd());
  assert.equal(c.raft.partner_addrs.length, 2);
  assert.deepEqual(c.postgresql!.authentication.rewind, { username: 'rewind_user', password: 'rewind_password' });
  assert.equal(c.postgresql!.parameters.wal_log_hints, 'on');
  assert.equal(c.bootstrap.dcs.ttl, 30);
  assert.equal(c.bootstrap.dcs.primary_start_timeout, 120);
  assert.deepEqual(c.bootstrap.dcs.extra, { slots: { keep_me: { type: 'physical' } }, postgresql: { pg_ident: ['map1 os_user db_user'] } });
  assert.deepEqual(c.tags.all, { noloadbalance: false, clonefrom: false, nostream: false, zone: 'eu-1' });
});

test('validateDynamicConfig checks the stored config key under its own prefix and round-trips unknown keys', () => {
  refuses(() => validateDynamicConfig({ ttl: 1, loop_wait: 0.5, retry_timeout: 0.5 }, 'config'), 'config.ttl', /0\.5 \+ 2 \* 0\.5 = 1\.5, got 1/);
  refuses(() => validateDynamicConfig('ttl=2', 'config'), 'config', /expected a mapping/);
  // Fractions that only pass with exact arithmetic are not refused through rounding.
  assert.equal(validateDynamicConfig({ ttl: 0.5, loop_wait: 0.1, retry_timeout: 0.2 }, 'config').ttl, 0.5);
  const stored = { ttl: 3, loop_wait: 1, retry_timeout: 1, pause: true, postgresql: { use_slots: false, recovery_conf: { a: 1 } } };
  const d = validateDynamicConfig(stored, 'config');
  assert.deepEqual(d.extra, { pause: true, postgresql: { recovery_conf: { a: 1 } } });
  const json = dynamicConfigToJson(d);
  assert.equal(json.pause, true);
  assert.deepEqual(json.postgresql, { recovery_conf: { a: 1 }, use_slots: false, use_pg_rewind: false, parameters: {}, pg_hba: [] });
  assert.deepEqual(validateDynamicConfig(json, 'config'), d);
  assert.deepEqual(validateDynamicConfig(null, 'config').ttl, 2);
});

test('a config without a postgresql section describes a witness; a present but incomplete one is still refused', () => {
  const witness = parse(edited({ postgresql: undefined }));
  assert.equal(witness.postgresql, null);
  refuses(() => parse(edited({ 'postgresql.listen': undefined })), 'postgresql.listen', /required/);
});
