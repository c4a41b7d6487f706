// Command lines of the postmaster and initdb.
//
// The parameters HA depends on go on the postmaster command line, where nothing in
// postgresql.conf, an include, or postgresql.auto.conf (ALTER SYSTEM) can override them
// (reference §3.1, "Protected PG params").
//
// Two kinds. Fixed ones HA cannot work without: where to listen, the cluster name, a readable
// standby (hot_standby), wal_log_hints for pg_rewind. Sized ones a cluster may raise but that
// every member must agree on (a hot standby refuses to run with fewer connections, senders or
// slots than its primary); they come from the merged parameters, which take them from the shared
// dynamic configuration, with Patroni's defaults when unset.
import type { ParameterValue } from './conf-files.ts';
import { PostgresError } from './errors.ts';
import type { PgEndpoint } from './types.ts';

export interface CommandLineSpec {
  readonly listen: PgEndpoint;
  readonly scope: string;
  readonly parameters: Readonly<Record<string, ParameterValue>>;
}

/** Defaults for the sized parameters; a user value replaces them. */
const SIZED_DEFAULTS: Readonly<Record<string, string>> = {
  max_connections: '100',
  max_wal_senders: '10',
  max_replication_slots: '10',
  wal_keep_size: '128MB',
};

/** Every parameter that goes on the command line; postgresql.conf leaves these out. */
export const COMMAND_LINE_PARAMETERS: ReadonlySet<string> = new Set([
  'listen_addresses',
  'port',
  'cluster_name',
  'hot_standby',
  'wal_level',
  'wal_log_hints',
  'unix_socket_directories',
  ...Object.keys(SIZED_DEFAULTS),
]);

function asText(value: ParameterValue): string {
  return typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value);
}

/** name → value, in a stable order. */
export function protectedParameters(spec: CommandLineSpec): Array<[string, string]> {
  const p = spec.parameters;
  const user = (name: string): string | undefined => (p[name] === undefined ? undefined : asText(p[name]!));
  // 'logical' is a superset of 'replica'; anything lower ('minimal') would break replication.
  const walLevel = user('wal_level') === 'logical' ? 'logical' : 'replica';
  const out: Array<[string, string]> = [
    ['listen_addresses', spec.listen.host],
    ['port', String(spec.listen.port)],
    ['cluster_name', spec.scope],
    ['hot_standby', 'on'],
    ['wal_level', walLevel],
    ['wal_log_hints', 'on'],
  ];
  for (const [name, fallback] of Object.entries(SIZED_DEFAULTS)) out.push([name, user(name) ?? fallback]);
  out.push(['unix_socket_directories', user('unix_socket_directories') ?? '/tmp']);
  return out;
}

/** As `--name=value` arguments (no shell is involved, so no quoting). */
export function protectedArgs(spec: CommandLineSpec): string[] {
  return protectedParameters(spec).map(([name, value]) => `--${name}=${value}`);
}

/** initdb switches we set ourselves, or that would change what initdb is for. */
const INITDB_RESERVED = new Set(['pgdata', 'D', 'username', 'U', 'pwfile', 'pwprompt', 'W', 'sync-only', 'S', 'show', 's', 'version', 'V', 'help', '?']);

/**
 * bootstrap.initdb as written in the configuration: a switch ('data-checksums') or a single-key
 * map ({ encoding: 'UTF8' }) per entry → ['--data-checksums', '--encoding=UTF8'].
 */
export function initdbArgs(options: readonly (string | Readonly<Record<string, string>>)[]): string[] {
  const args: string[] = [];
  const check = (name: string): string => {
    const bare = name.replace(/^-+/, '');
    if (bare === '' || INITDB_RESERVED.has(bare)) throw new PostgresError('ERR_PG_BAD_OPTION', `bootstrap.initdb: option ${JSON.stringify(name)} is set by Conclave or not allowed`);
    return bare;
  };
  for (const option of options) {
    if (typeof option === 'string') {
      args.push(`--${check(option)}`);
      continue;
    }
    const entries = Object.entries(option);
    if (entries.length !== 1) throw new PostgresError('ERR_PG_BAD_OPTION', `bootstrap.initdb: ${JSON.stringify(option)} must have exactly one key`);
    const [name, value] = entries[0]!;
    args.push(`--${check(name)}=${value}`);
  }
  return args;
}
