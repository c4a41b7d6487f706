// Environment overrides, the third configuration layer (reference §3.3): a variable wins over the
// same key in the file. They are applied to the raw parsed YAML, before validation, so a bad value
// from the environment is refused with the same message (and key name) as one from the file.
//
// Each setting can be given as CONCLAVE_<X> or PATRONI_<X>, so an existing Patroni deployment's
// environment (container images, systemd units) works unchanged; CONCLAVE_<X> wins when both are
// set. Values stay strings here; the validator parses numbers and booleans per key.

/** Variable suffix → dotted key path in the configuration. */
const ENV_KEYS: Readonly<Record<string, string>> = {
  SCOPE: 'scope',
  NAME: 'name',
  NAMESPACE: 'namespace',
  LOG_LEVEL: 'log.level',
  LOG_TYPE: 'log.type',
  LOG_DIR: 'log.dir',
  RESTAPI_LISTEN: 'restapi.listen',
  RESTAPI_CONNECT_ADDRESS: 'restapi.connect_address',
  RESTAPI_USERNAME: 'restapi.authentication.username',
  RESTAPI_PASSWORD: 'restapi.authentication.password',
  RESTAPI_CERTFILE: 'restapi.certfile',
  RESTAPI_KEYFILE: 'restapi.keyfile',
  RESTAPI_KEYFILE_PASSWORD: 'restapi.keyfile_password',
  RESTAPI_CAFILE: 'restapi.cafile',
  RESTAPI_VERIFY_CLIENT: 'restapi.verify_client',
  POSTGRESQL_LISTEN: 'postgresql.listen',
  POSTGRESQL_CONNECT_ADDRESS: 'postgresql.connect_address',
  POSTGRESQL_DATA_DIR: 'postgresql.data_dir',
  POSTGRESQL_BIN_DIR: 'postgresql.bin_dir',
  POSTGRESQL_PGPASS: 'postgresql.pgpass',
  SUPERUSER_USERNAME: 'postgresql.authentication.superuser.username',
  SUPERUSER_PASSWORD: 'postgresql.authentication.superuser.password',
  REPLICATION_USERNAME: 'postgresql.authentication.replication.username',
  REPLICATION_PASSWORD: 'postgresql.authentication.replication.password',
  REWIND_USERNAME: 'postgresql.authentication.rewind.username',
  REWIND_PASSWORD: 'postgresql.authentication.rewind.password',
  RAFT_SELF_ADDR: 'raft.self_addr',
  RAFT_BIND_ADDR: 'raft.bind_addr',
  RAFT_DATA_DIR: 'raft.data_dir',
  RAFT_PARTNER_ADDRS: 'raft.partner_addrs',
  RAFT_PASSWORD: 'raft.password',
  RAFT_CERTFILE: 'raft.certfile',
  RAFT_KEYFILE: 'raft.keyfile',
  RAFT_CAFILE: 'raft.cafile',
};

/** Keys whose value is a list; the rest are set as the plain string. */
const LIST_KEYS = new Set(['RAFT_PARTNER_ADDRS']);

const PREFIXES = ['CONCLAVE_', 'PATRONI_'] as const;

type Env = Record<string, string | undefined>;

/** The value of CONCLAVE_<suffix>, else PATRONI_<suffix>; undefined when neither is set. An empty string counts as set. */
export function envValue(env: Env, suffix: string): string | undefined {
  for (const prefix of PREFIXES) {
    const value = env[prefix + suffix];
    if (value !== undefined) return value;
  }
  return undefined;
}

/** The whole configuration given as YAML in the environment (used when no file is named), with its variable's name. */
export function configTextFromEnv(env: Env): { text: string; source: string } | null {
  for (const prefix of PREFIXES) {
    const text = env[`${prefix}CONFIGURATION`];
    if (text !== undefined) return { text, source: `${prefix}CONFIGURATION` };
  }
  return null;
}

/**
 * A list as Patroni writes it in a variable: `'127.0.0.1:2223','127.0.0.1:2224'` (YAML flow items,
 * optionally in brackets) or plainly `127.0.0.1:2223,127.0.0.1:2224`. Addresses contain no commas,
 * so a split is enough; quotes around an item are removed.
 */
export function parseEnvList(value: string): string[] {
  let text = value.trim();
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  return text
    .split(',')
    .map((item) => item.trim())
    .map((item) => (/^(['"]).*\1$/.test(item) ? item.slice(1, -1).trim() : item))
    .filter((item) => item !== '');
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Sets `path` in `root`, creating sections that are absent or null (an empty YAML section such as
 * `restapi:` parses as null). A section that is something else (a list, a string) is left alone so
 * that validation reports it rather than the override silently replacing it.
 */
function setPath(root: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = root;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === undefined || next === null) node[part] = {};
    else if (!isMap(next)) return;
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

/**
 * The raw configuration with the environment's overrides applied. Pure: `raw` is not modified, a
 * changed copy is returned. An empty document (null) counts as an empty mapping, so a
 * configuration can come from the environment alone, as Patroni allows; any other non-mapping is
 * returned unchanged for the validator to refuse.
 */
export function applyEnv(raw: unknown, env: Env): unknown {
  if (raw !== null && raw !== undefined && !isMap(raw)) return raw;
  const result: Record<string, unknown> = raw ? structuredClone(raw) : {};
  for (const [suffix, path] of Object.entries(ENV_KEYS)) {
    const value = envValue(env, suffix);
    if (value === undefined) continue;
    setPath(result, path, LIST_KEYS.has(suffix) ? parseEnvList(value) : value);
  }
  return result;
}
