// Reads the agent's configuration: YAML text → environment overrides (env.ts) → validation with
// defaults (defaults.ts) → AgentConfig. Every refusal is a ConfigError naming the dotted key and
// the problem, because an operator fixing a config file needs the key, not a stack trace.
//
// Compatibility with patroni.yml: keys we do not use (ctl, citus,
// postgresql.config_dir, ...) are ignored so a Patroni file can be pointed at Conclave as it is. Where
// we differ we refuse rather than guess: another store's section instead of `raft`, and timing
// that breaks the rule loop_wait + 2*retry_timeout <= ttl (Patroni silently lowers loop_wait).
//
// YAML: the `yaml` package reads YAML 1.2, where `on`/`off`/`yes`/`no` are strings, not booleans
// as in Patroni's PyYAML (YAML 1.1). Boolean settings therefore accept those words too, and a
// PostgreSQL parameter written `on` reaches postgresql.conf as `on` either way.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isIP } from 'node:net';
import { LineCounter, isAlias, isMap as isYamlMap, isScalar, isSeq, parseDocument, visit } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import {
  DEFAULT_BIN_DIR, DEFAULT_NAMESPACE, DYNAMIC_DEFAULTS, LOG_DEFAULTS, POSTGRESQL_DEFAULTS, TAG_DEFAULTS, WATCHDOG_DEFAULTS,
} from './defaults.ts';
import { applyEnv, configTextFromEnv } from './env.ts';
import { ConfigError } from './types.ts';
import type { AgentConfig, CallbackName, Credentials, DynamicConfig, HostPort, Tags } from './types.ts';

type Raw = Record<string, unknown>;
type Env = Record<string, string | undefined>;
type Param = string | number | boolean;

// ---- Value readers: each takes the raw value and its dotted key, and returns it parsed or throws.

/** A value as shown in messages: JSON, so strings appear quoted, shortened if long. */
function show(value: unknown): string {
  let text: string;
  try {
    // JSON would show NaN and Infinity (YAML's .nan, .inf) as null.
    text = typeof value === 'number' && !Number.isFinite(value) ? String(value) : JSON.stringify(value) ?? String(value);
  } catch {
    // A value JSON has no form for (a bigint); never let the message about a value throw instead.
    text = Object.prototype.toString.call(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Deeper than any real setting. A YAML alias inside its own anchor (`a: &x [*x]`) makes a cycle,
 * which has no depth at all, and a JSON body can nest hundreds of thousands of levels: both would
 * overflow the stack of whatever walks them next (the validators, structuredClone, JSON.stringify).
 */
export const MAX_CONFIG_DEPTH = 64;

/** Refuses a value that contains itself or nests deeper than MAX_CONFIG_DEPTH, naming the key where it does. */
export function checkNesting(value: unknown, key: string, ancestors: readonly object[] = []): void {
  if (typeof value !== 'object' || value === null) return;
  if (ancestors.includes(value)) throw new ConfigError(key, 'refers to itself (a YAML alias inside its own anchor)');
  if (ancestors.length >= MAX_CONFIG_DEPTH) throw new ConfigError(key, `nested more than ${MAX_CONFIG_DEPTH} levels deep`);
  const inside = [...ancestors, value];
  if (Array.isArray(value)) value.forEach((item, i) => checkNesting(item, `${key}[${i}]`, inside));
  else for (const [name, item] of Object.entries(value)) checkNesting(item, key === '' ? name : `${key}.${name}`, inside);
}

function isMap(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const absent = (value: unknown): value is null | undefined => value === undefined || value === null;

/** A section; absent or empty (`restapi:` parses as null) gives {}. */
function section(value: unknown, key: string): Raw {
  if (absent(value)) return {};
  if (!isMap(value)) throw new ConfigError(key, `expected a mapping, got ${show(value)}`);
  return value;
}

/** Numbers and booleans are not turned into strings: `password: 0123` would lose its zero, so quoting is asked for. */
function str(value: unknown, key: string, fallback?: string): string {
  if (absent(value)) {
    if (fallback === undefined) throw new ConfigError(key, 'required');
    return fallback;
  }
  if (typeof value !== 'string') throw new ConfigError(key, `expected a string (quote it in YAML), got ${show(value)}`);
  return value;
}

function nonEmpty(value: unknown, key: string, fallback?: string): string {
  const text = str(value, key, fallback);
  if (text.trim() === '') throw new ConfigError(key, 'must not be empty');
  return text;
}

const NUMERIC = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/** A number, or a string holding one (environment values, hand-edited store JSON). `what` describes the allowed range. */
function num(value: unknown, key: string, fallback: number, what: string, ok: (n: number) => boolean): number {
  if (absent(value)) return fallback;
  const n = typeof value === 'number' ? value : typeof value === 'string' && NUMERIC.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isFinite(n) || !ok(n)) throw new ConfigError(key, `must be ${what}, got ${show(value)}`);
  return n;
}

const seconds = (value: unknown, key: string, fallback: number): number =>
  num(value, key, fallback, 'a number of seconds > 0', (n) => n > 0);
const secondsOrZero = (value: unknown, key: string, fallback: number): number =>
  num(value, key, fallback, 'a number of seconds >= 0', (n) => n >= 0);
const integer = (value: unknown, key: string, fallback: number, min: number): number =>
  num(value, key, fallback, `an integer >= ${min}`, (n) => Number.isInteger(n) && n >= min);

const TRUE_WORDS = new Set(['true', 'on', 'yes', '1']);
const FALSE_WORDS = new Set(['false', 'off', 'no', '0']);

function bool(value: unknown, key: string, fallback: boolean): boolean {
  if (absent(value)) return fallback;
  if (typeof value === 'boolean') return value;
  if (value === 0 || value === 1) return value === 1;
  if (typeof value === 'string') {
    const word = value.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
  }
  throw new ConfigError(key, `expected true or false (or on/off, yes/no), got ${show(value)}`);
}

function oneOf<T>(value: unknown, key: string, fallback: T, words: Readonly<Record<string, T>>): T {
  if (absent(value)) return fallback;
  const word = typeof value === 'string' ? value.trim().toLowerCase() : value === false ? 'off' : undefined;
  if (word !== undefined && Object.hasOwn(words, word)) return words[word]!;
  throw new ConfigError(key, `expected one of ${Object.keys(words).join(', ')}, got ${show(value)}`);
}

function strList(value: unknown, key: string, fallback: readonly string[]): readonly string[] {
  if (absent(value)) return fallback;
  if (!Array.isArray(value)) throw new ConfigError(key, `expected a list, got ${show(value)}`);
  return value.map((item, i) => str(item, `${key}[${i}]`));
}

function parameters(value: unknown, key: string): Readonly<Record<string, Param>> {
  const out: Record<string, Param> = {};
  for (const [name, v] of Object.entries(section(value, key))) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new ConfigError(`${key}.${name}`, `expected a string, number or boolean, got ${show(v)}`);
    }
    out[name] = v;
  }
  return out;
}

// ---- Addresses

/** Hosts meaning "every interface": fine to listen on, useless for others to connect to. */
const WILDCARDS = new Set(['', '0.0.0.0', '::', '*']);

/**
 * "host:port", ":port" (all interfaces) or "[v6]:port"; an unbracketed IPv6 host is split at the
 * last colon, as Patroni does. With `hostList`, "h1,h2:port" (PostgreSQL's listen_addresses) is
 * accepted and the first host kept: it is the one Patroni itself connects to locally, and
 * HostPort holds a single host.
 */
function hostPort(value: unknown, key: string, opts: { wildcard: boolean; hostList?: boolean }): HostPort {
  if (absent(value)) throw new ConfigError(key, 'required');
  const bad = (): ConfigError => new ConfigError(key, `expected "host:port", got ${show(value)}`);
  if (typeof value !== 'string') throw bad();
  const text = value.trim();
  const match = /^\[([^\]]*)\]:(\d+)$/.exec(text) ?? /^(.*):(\d+)$/.exec(text);
  if (!match) throw bad();
  const port = Number(match[2]);
  if (port < 1 || port > 65535) throw new ConfigError(key, `port must be 1 to 65535, got ${show(value)}`);
  const hosts = match[1]!.split(',').map((h) => h.trim());
  if (hosts.length > 1 && !opts.hostList) throw new ConfigError(key, `expected a single "host:port", got ${show(value)}`);
  // A host ending in a colon ("::1" read as host ":" port 1) means the port was left out of an IPv6 address.
  if ((hosts.length > 1 && hosts.some((h) => h === '')) || hosts.some((h) => /\s/.test(h) || (h.endsWith(':') && h !== '::'))) throw bad();
  const host = hosts[0]!;
  if (!opts.wildcard && WILDCARDS.has(host)) {
    throw new ConfigError(key, `must be an address other members can connect to, got ${show(value)}`);
  }
  return { host, port };
}

const formatHostPort = (a: HostPort): string => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);

/** connect_address, defaulting to listen unless listen is on all interfaces (then nobody could use it). */
function connectAddress(value: unknown, key: string, listen: HostPort, listenKey: string): HostPort {
  if (!absent(value)) return hostPort(value, key, { wildcard: false });
  if (WILDCARDS.has(listen.host)) {
    throw new ConfigError(key, `required when ${listenKey} is on all interfaces (${formatHostPort(listen)}); give the address others should use`);
  }
  return listen;
}

function credentials(value: unknown, key: string): Credentials {
  const raw = section(value, key);
  return { username: nonEmpty(raw.username, `${key}.username`), password: str(raw.password, `${key}.password`, '') };
}

/** Relative paths are taken from the directory the agent is started in, as Patroni does. */
const absolutePath = (value: unknown, key: string): string => resolve(nonEmpty(value, key));

// ---- The dynamic (cluster-wide) configuration

/** Keys validateDynamicConfig interprets; everything else goes to `extra`. master_* are Patroni 3.x names. */
const DYNAMIC_KEYS = new Set([...Object.keys(DYNAMIC_DEFAULTS).filter((k) => k !== 'extra'), 'master_start_timeout', 'master_stop_timeout']);
const DYNAMIC_PG_KEYS = new Set(Object.keys(DYNAMIC_DEFAULTS.postgresql));
const EPSILON = 1e-9; // 0.1 + 2 * 0.2 must not fail against 0.5 through rounding

/**
 * Validates a dynamic configuration: bootstrap.dcs (keyPrefix 'bootstrap.dcs') or the JSON of the
 * store's `config` key (keyPrefix 'config'). Missing keys take DYNAMIC_DEFAULTS. Keys not
 * interpreted here are kept in `extra`; those under `postgresql` (pg_ident, recovery_conf, ...)
 * in `extra.postgresql`, so dynamicConfigToJson can write everything back.
 */
export function validateDynamicConfig(raw: unknown, keyPrefix: string): DynamicConfig {
  checkNesting(raw, keyPrefix);
  const d = section(raw, keyPrefix);
  const k = (name: string): string => `${keyPrefix}.${name}`;
  const D = DYNAMIC_DEFAULTS;
  const ttl = seconds(d.ttl, k('ttl'), D.ttl);
  const loopWait = seconds(d.loop_wait, k('loop_wait'), D.loop_wait);
  const retryTimeout = seconds(d.retry_timeout, k('retry_timeout'), D.retry_timeout);
  // Refused, not corrected as Patroni does: a silently changed loop_wait is a surprise at failover time.
  if (loopWait + 2 * retryTimeout > ttl + EPSILON) {
    const sum = `${loopWait} + 2 * ${retryTimeout} = ${loopWait + 2 * retryTimeout}`;
    throw new ConfigError(k('ttl'), `must be at least loop_wait + 2 * retry_timeout = ${sum}, got ${ttl}`);
  }
  const pg = section(d.postgresql, k('postgresql'));
  const pgExtra = Object.fromEntries(Object.entries(pg).filter(([name]) => !DYNAMIC_PG_KEYS.has(name)));
  const extra: Raw = Object.fromEntries(Object.entries(d).filter(([name]) => !DYNAMIC_KEYS.has(name)));
  if (Object.keys(pgExtra).length > 0) extra.postgresql = pgExtra;
  return {
    ttl,
    loop_wait: loopWait,
    retry_timeout: retryTimeout,
    maximum_lag_on_failover: integer(d.maximum_lag_on_failover, k('maximum_lag_on_failover'), D.maximum_lag_on_failover, 0),
    maximum_lag_on_syncnode: integer(d.maximum_lag_on_syncnode, k('maximum_lag_on_syncnode'), D.maximum_lag_on_syncnode, -1),
    primary_start_timeout: secondsOrZero(d.primary_start_timeout ?? d.master_start_timeout, k('primary_start_timeout'), D.primary_start_timeout),
    primary_stop_timeout: secondsOrZero(d.primary_stop_timeout ?? d.master_stop_timeout, k('primary_stop_timeout'), D.primary_stop_timeout),
    synchronous_mode:
      typeof d.synchronous_mode === 'string' && d.synchronous_mode.trim().toLowerCase() === 'quorum'
        ? 'quorum'
        : bool(d.synchronous_mode, k('synchronous_mode'), D.synchronous_mode as boolean),
    synchronous_mode_strict: bool(d.synchronous_mode_strict, k('synchronous_mode_strict'), D.synchronous_mode_strict),
    synchronous_node_count: integer(d.synchronous_node_count, k('synchronous_node_count'), D.synchronous_node_count, 1),
    failsafe_mode: bool(d.failsafe_mode, k('failsafe_mode'), D.failsafe_mode),
    check_timeline: bool(d.check_timeline, k('check_timeline'), D.check_timeline),
    member_slots_ttl: secondsOrZero(d.member_slots_ttl, k('member_slots_ttl'), D.member_slots_ttl),
    max_timelines_history: integer(d.max_timelines_history, k('max_timelines_history'), D.max_timelines_history, 0),
    postgresql: {
      use_slots: bool(pg.use_slots, k('postgresql.use_slots'), D.postgresql.use_slots),
      use_pg_rewind: bool(pg.use_pg_rewind, k('postgresql.use_pg_rewind'), D.postgresql.use_pg_rewind),
      parameters: parameters(pg.parameters, k('postgresql.parameters')),
      pg_hba: strList(pg.pg_hba, k('postgresql.pg_hba'), D.postgresql.pg_hba),
    },
    extra,
  };
}

/** The JSON to store in the `config` key: the interpreted values over the kept extra keys (inverse of validateDynamicConfig). */
export function dynamicConfigToJson(config: DynamicConfig): Raw {
  const { extra, postgresql, ...known } = config;
  const pgExtra = isMap(extra.postgresql) ? extra.postgresql : {};
  return { ...extra, ...known, postgresql: { ...pgExtra, ...postgresql } };
}

// ---- The agent's local configuration

/** Patroni's other stores; a file carrying one of them and no `raft` section was written for another backend. */
const OTHER_STORES = ['etcd', 'etcd3', 'consul', 'zookeeper', 'exhibitor', 'kubernetes'];

function raftSection(root: Raw): AgentConfig['raft'] {
  if (absent(root.raft)) {
    const other = OTHER_STORES.find((name) => name in root);
    if (other) throw new ConfigError('raft', `required; Conclave has no ${other}, use the raft section (found "${other}")`);
  }
  // The Patroni 4.1 timing keys (min_timeout, ...) belong to pysyncobj: ignored. `password` is
  // Patroni's too (it encrypts pysyncobj's traffic); here it is the shared secret every request
  // on the Raft port is signed with (raft/transport/auth.ts).
  const r = section(root.raft, 'raft');
  const password = absent(r.password) ? null : str(r.password, 'raft.password');
  if (password === '') throw new ConfigError('raft.password', 'empty; leave it out to run without authentication (not recommended)');
  const self = hostPort(r.self_addr, 'raft.self_addr', { wildcard: false });
  const bind = absent(r.bind_addr) ? self : hostPort(r.bind_addr, 'raft.bind_addr', { wildcard: true });
  const partners = absent(r.partner_addrs) ? [] : r.partner_addrs;
  if (!Array.isArray(partners)) throw new ConfigError('raft.partner_addrs', `expected a list of "host:port", got ${show(partners)}`);
  const seen = new Set<string>([formatHostPort(self)]);
  const partnerAddrs = partners.map((item, i) => {
    const key = `raft.partner_addrs[${i}]`;
    const addr = hostPort(item, key, { wildcard: false });
    const text = formatHostPort(addr);
    if (text === formatHostPort(self)) throw new ConfigError(key, `${text} is raft.self_addr; list only the other members`);
    if (seen.has(text)) throw new ConfigError(key, `${text} is listed twice`);
    seen.add(text);
    return addr;
  });
  // Mutual TLS between members: all three files or none. Each member presents its certificate to
  // the others and accepts only certificates the CA signed.
  const tlsFiles = { certfile: r.certfile, keyfile: r.keyfile, cafile: r.cafile };
  const given = Object.entries(tlsFiles).filter(([, v]) => !absent(v)).map(([k]) => k);
  if (given.length > 0 && given.length < 3) {
    const missing = Object.keys(tlsFiles).find((k) => !given.includes(k))!;
    throw new ConfigError(`raft.${missing}`, `required with raft.${given[0]}: mutual TLS between members needs certfile, keyfile and cafile`);
  }
  const tls = given.length === 3 ? { certfile: absolutePath(r.certfile, 'raft.certfile'), keyfile: absolutePath(r.keyfile, 'raft.keyfile'), cafile: absolutePath(r.cafile, 'raft.cafile') } : null;
  return { self_addr: self, bind_addr: bind, partner_addrs: partnerAddrs, data_dir: absolutePath(r.data_dir, 'raft.data_dir'), password, tls };
}

function initdbOptions(value: unknown): AgentConfig['bootstrap']['initdb'] {
  const key = 'bootstrap.initdb';
  if (absent(value)) return [];
  // Patroni also takes a mapping ({encoding: UTF8}); it means the same as a list of one-key maps.
  const items = isMap(value) ? Object.entries(value).map(([k, v]) => ({ [k]: v })) : value;
  if (!Array.isArray(items)) throw new ConfigError(key, `expected a list, got ${show(value)}`);
  return items.map((item: unknown, i) => {
    if (typeof item === 'string') return item;
    const entries = isMap(item) ? Object.entries(item) : [];
    const [name, v] = entries[0] ?? [];
    if (entries.length !== 1 || !['string', 'number', 'boolean'].includes(typeof v)) {
      throw new ConfigError(`${key}[${i}]`, `expected a switch such as "data-checksums" or one option such as {encoding: UTF8}, got ${show(item)}`);
    }
    return { [name!]: String(v) };
  });
}

const CALLBACKS: readonly CallbackName[] = ['on_start', 'on_stop', 'on_restart', 'on_reload', 'on_role_change'];

function callbacks(value: unknown): NonNullable<AgentConfig['postgresql']>['callbacks'] {
  const out: Partial<Record<CallbackName, string>> = {};
  for (const [name, command] of Object.entries(section(value, 'postgresql.callbacks'))) {
    const key = `postgresql.callbacks.${name}`;
    // A misspelt hook would otherwise never run, silently.
    if (!(CALLBACKS as readonly string[]).includes(name)) throw new ConfigError(key, `unknown callback; expected one of ${CALLBACKS.join(', ')}`);
    out[name as CallbackName] = nonEmpty(command, key);
  }
  return out;
}

function postgresqlSection(root: Raw): AgentConfig['postgresql'] {
  // No section at all: a witness (votes in Raft, runs no PostgreSQL).
  if (absent(root.postgresql)) return null;
  const p = section(root.postgresql, 'postgresql');
  const listen = hostPort(p.listen, 'postgresql.listen', { wildcard: true, hostList: true });
  const auth = section(p.authentication, 'postgresql.authentication');
  const superuser = credentials(auth.superuser, 'postgresql.authentication.superuser');
  const P = POSTGRESQL_DEFAULTS;
  const flag = (name: 'remove_data_directory_on_rewind_failure' | 'remove_data_directory_on_diverged_timelines'): boolean =>
    bool(p[name], `postgresql.${name}`, P[name]);
  return {
    listen,
    connect_address: connectAddress(p.connect_address, 'postgresql.connect_address', listen, 'postgresql.listen'),
    data_dir: absolutePath(p.data_dir, 'postgresql.data_dir'),
    bin_dir: str(p.bin_dir, 'postgresql.bin_dir', DEFAULT_BIN_DIR),
    authentication: {
      superuser,
      replication: credentials(auth.replication, 'postgresql.authentication.replication'),
      rewind: absent(auth.rewind) ? superuser : credentials(auth.rewind, 'postgresql.authentication.rewind'),
    },
    parameters: parameters(p.parameters, 'postgresql.parameters'),
    pg_hba: strList(p.pg_hba, 'postgresql.pg_hba', []),
    use_pg_rewind: absent(p.use_pg_rewind) ? null : bool(p.use_pg_rewind, 'postgresql.use_pg_rewind', false),
    remove_data_directory_on_rewind_failure: flag('remove_data_directory_on_rewind_failure'),
    remove_data_directory_on_diverged_timelines: flag('remove_data_directory_on_diverged_timelines'),
    create_replica_methods: strList(p.create_replica_methods, 'postgresql.create_replica_methods', P.create_replica_methods),
    callbacks: callbacks(p.callbacks),
    pg_ctl_timeout: seconds(p.pg_ctl_timeout, 'postgresql.pg_ctl_timeout', P.pg_ctl_timeout),
    run_as: nonEmpty(p.run_as, 'postgresql.run_as', P.run_as),
    pgpass: absent(p.pgpass) ? null : absolutePath(p.pgpass, 'postgresql.pgpass'),
  };
}

function tagsSection(root: Raw): Tags {
  const t = section(root.tags, 'tags');
  const T = TAG_DEFAULTS;
  const known = {
    nofailover: bool(t.nofailover, 'tags.nofailover', T.nofailover),
    // Patroni's validator also refuses a negative priority; 0 is its way to say nofailover.
    failover_priority: integer(t.failover_priority, 'tags.failover_priority', T.failover_priority, 0),
    noloadbalance: bool(t.noloadbalance, 'tags.noloadbalance', T.noloadbalance),
    clonefrom: bool(t.clonefrom, 'tags.clonefrom', T.clonefrom),
    nosync: bool(t.nosync, 'tags.nosync', T.nosync),
    replicatefrom: absent(t.replicatefrom) ? null : nonEmpty(t.replicatefrom, 'tags.replicatefrom'),
  };
  // `all`: every tag as written, but the known ones in their parsed form ("on" → true), so
  // readers of the member key need not parse them again.
  const parsedGiven = Object.fromEntries(Object.entries(known).filter(([name]) => name in t));
  return { ...known, all: { ...t, ...parsedGiven } };
}

function namespaceOf(value: unknown): string {
  const text = nonEmpty(value, 'namespace', DEFAULT_NAMESPACE).trim().replace(/\/+$/, '');
  if (text === '') throw new ConfigError('namespace', `must name a path such as "${DEFAULT_NAMESPACE}", got ${show(value)}`);
  return text.startsWith('/') ? text : `/${text}`;
}

/** The servers of one agent must not share an address: the second one would fail to bind. */
function checkDistinctAddresses(config: Pick<AgentConfig, 'restapi' | 'raft' | 'postgresql'>): void {
  const used = new Map<string, string>();
  const servers = [
    ['restapi.listen', config.restapi.listen],
    ['raft.bind_addr', config.raft.bind_addr],
    ...(config.postgresql ? [['postgresql.listen', config.postgresql.listen] as const] : []),
  ] as const;
  for (const [key, addr] of servers) {
    const text = formatHostPort(addr);
    const other = used.get(text);
    if (other) throw new ConfigError(key, `${text} is also ${other}`);
    used.set(text, key);
  }
}

// Patroni turns an unknown watchdog mode into "off" with a warning; here a typo must not disable fencing.
const WATCHDOG_MODES = {
  off: 'off', disabled: 'off', automatic: 'automatic', auto: 'automatic', required: 'required', require: 'required',
} as const;
// Patroni writes Python's level names (INFO, WARNING, CRITICAL); ours are pino's.
const LOG_LEVELS = { debug: 'debug', info: 'info', warn: 'warn', warning: 'warn', error: 'error', critical: 'error' } as const;

const VERIFY_CLIENT = { none: 'none', optional: 'optional', required: 'required' } as const;

/** TLS and the allowlist of the REST API (Patroni's restapi keys; api/security.ts applies them). */
function restapiSecurity(api: Raw): Pick<AgentConfig['restapi'], 'certfile' | 'keyfile' | 'keyfile_password' | 'cafile' | 'verify_client' | 'allowlist' | 'allowlist_include_members'> {
  const path = (key: string): string | null => (absent(api[key]) ? null : resolve(nonEmpty(api[key], `restapi.${key}`)));
  const certfile = path('certfile');
  const keyfile = path('keyfile');
  const cafile = path('cafile');
  const verify_client = oneOf(api.verify_client, 'restapi.verify_client', 'none' as const, VERIFY_CLIENT);
  if (certfile === null && (keyfile !== null || cafile !== null)) throw new ConfigError('restapi.certfile', 'required when restapi.keyfile or restapi.cafile is set (HTTPS needs a certificate)');
  if (verify_client !== 'none' && cafile === null) throw new ConfigError('restapi.cafile', `required with verify_client: ${verify_client} (client certificates are checked against it)`);
  const allowlist = strList(api.allowlist, 'restapi.allowlist', []);
  for (const [i, entry] of allowlist.entries()) {
    if (!isAllowlistEntry(entry)) throw new ConfigError(`restapi.allowlist[${i}]`, `expected a host name, an IP address or a CIDR block, got ${show(entry)}`);
  }
  return {
    certfile,
    keyfile,
    keyfile_password: absent(api.keyfile_password) ? null : str(api.keyfile_password, 'restapi.keyfile_password'),
    cafile,
    verify_client,
    allowlist,
    allowlist_include_members: bool(api.allowlist_include_members, 'restapi.allowlist_include_members', false),
  };
}

function isAllowlistEntry(entry: string): boolean {
  const [addr, bits, extra] = entry.split('/');
  if (extra !== undefined || !addr) return false;
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return false;
  // The write guard builds a BlockList from these on every mutating request; a prefix longer than
  // the address (10.0.0.0/33) would throw there, and every such request would fail with a 500.
  if (bits !== undefined && Number(bits) > (isIP(addr) === 6 ? 128 : 32)) return false;
  return isIP(addr) !== 0 || (bits === undefined && /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(addr));
}

function validateAgentConfig(root: Raw): AgentConfig {
  const scope = nonEmpty(root.scope, 'scope');
  const name = nonEmpty(root.name, 'name');
  // The name is a key segment (members/<name>); a slash would put it somewhere else. It also
  // names files beside the data directory (<name>.pgpass, <name>-postgres.log), a list entry of
  // the sync key (comma-separated) and application_name: no dot names, commas or control characters.
  if (name.includes('/')) throw new ConfigError('name', `must not contain "/", got ${show(name)}`);
  if (name === '.' || name === '..' || name.includes(',') || [...name].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
    throw new ConfigError('name', `must not be "." or "..", nor contain a comma or a control character, got ${show(name)}`);
  }
  const namespace = namespaceOf(root.namespace);
  const api = section(root.restapi, 'restapi');
  const listen = hostPort(api.listen, 'restapi.listen', { wildcard: true });
  const restapi = {
    listen,
    connect_address: connectAddress(api.connect_address, 'restapi.connect_address', listen, 'restapi.listen'),
    authentication: absent(api.authentication) ? null : credentials(api.authentication, 'restapi.authentication'),
    ...restapiSecurity(api),
  };
  const raft = raftSection(root);
  const postgresql = postgresqlSection(root);
  checkDistinctAddresses({ restapi, raft, postgresql });
  const bootstrap = section(root.bootstrap, 'bootstrap');
  const watchdog = section(root.watchdog, 'watchdog');
  const log = section(root.log, 'log');
  return {
    scope,
    namespace,
    name,
    restapi,
    raft,
    bootstrap: {
      dcs: validateDynamicConfig(bootstrap.dcs, 'bootstrap.dcs'),
      initdb: initdbOptions(bootstrap.initdb),
      pg_hba: strList(bootstrap.pg_hba, 'bootstrap.pg_hba', []),
    },
    postgresql,
    tags: tagsSection(root),
    watchdog: {
      mode: oneOf(watchdog.mode, 'watchdog.mode', WATCHDOG_DEFAULTS.mode, WATCHDOG_MODES),
      device: nonEmpty(watchdog.device, 'watchdog.device', WATCHDOG_DEFAULTS.device),
      safety_margin: num(watchdog.safety_margin, 'watchdog.safety_margin', WATCHDOG_DEFAULTS.safety_margin,
        'a number of seconds >= 0, or -1', (n) => n >= 0 || n === -1),
    },
    log: {
      level: oneOf(log.level, 'log.level', LOG_DEFAULTS.level, LOG_LEVELS),
      type: oneOf<'plain' | 'json' | 'auto'>(log.type, 'log.type', LOG_DEFAULTS.type, { plain: 'plain', json: 'json', auto: 'auto' }),
      dir: absent(log.dir) ? LOG_DEFAULTS.dir : absolutePath(log.dir, 'log.dir'),
    },
  };
}

// ---- Entry points

/**
 * Where the first merge key (`<<`) with a source other than a mapping is, as " at line L, column C";
 * '' if there is none. The yaml package refuses such a key with an Error that does not say where.
 */
function badMergeAt(doc: Document, lineCounter: LineCounter): string {
  const resolved = (node: unknown): unknown => (isAlias(node) ? node.resolve(doc) : node);
  let where = '';
  visit(doc, {
    Pair(_, pair) {
      const key = pair.key;
      if (!isScalar(key) || !(key.value === '<<' || (typeof key.value === 'symbol' && key.value.description === '<<'))) return undefined;
      const value = resolved(pair.value);
      const sources = isSeq(value) ? value.items.map(resolved) : [value];
      if (sources.every((s) => isYamlMap(s))) return undefined;
      const pos = lineCounter.linePos((key as YamlNode).range?.[0] ?? 0);
      where = ` at line ${pos.line}, column ${pos.col}`;
      return visit.BREAK;
    },
  });
  return where;
}

/** Parses YAML text, applies the environment and validates. `source` names the text in syntax errors. */
export function parseConfig(yamlText: string, env: Env = process.env, source = '<file>'): AgentConfig {
  // merge: `<<` keys, which PyYAML (and so Patroni) supports.
  const lineCounter = new LineCounter();
  const doc = parseDocument(yamlText, { merge: true, lineCounter });
  const error = doc.errors[0];
  if (error) {
    const where = error.linePos ? ` at line ${error.linePos[0].line}, column ${error.linePos[0].col}` : '';
    const detail = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(source, `YAML syntax error${where}: ${detail}`);
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    // The document parsed, but building it failed: too many aliases (an alias bomb), a merge key
    // (`<<`) whose source is not a mapping.
    throw new ConfigError(source, `YAML error${badMergeAt(doc, lineCounter)}: ${(err as Error).message.split('\n')[0]}`);
  }
  checkNesting(raw, '');
  const root = applyEnv(raw, env);
  if (!isMap(root)) throw new ConfigError(source, `expected a mapping of settings at the top level, got ${show(root)}`);
  return validateAgentConfig(root);
}

/**
 * Reads and parses a configuration file. With no path, the YAML comes from
 * CONCLAVE_CONFIGURATION or PATRONI_CONFIGURATION, or else from the individual variables alone.
 */
export async function loadConfigFile(path: string | null | undefined, env: Env = process.env): Promise<AgentConfig> {
  if (!path) {
    const fromEnv = configTextFromEnv(env);
    return parseConfig(fromEnv?.text ?? '', env, fromEnv?.source ?? '<environment>');
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    const error = new ConfigError(path, `cannot read the configuration file (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`);
    error.cause = cause;
    throw error;
  }
  return parseConfig(text, env, path);
}
