// The files PostgreSQL reads from the data directory, as we write them before every start
// (reference §7, "Recovery config"; PG12+ layout):
//
//   postgresql.conf       generated: an include of postgresql.base.conf (initdb's original file,
//                         renamed), then the user's parameters, then the recovery settings of a
//                         replica. Later lines win, so the user's parameters override initdb's.
//   pg_hba.conf           from the configured lines, when there are any.
//   standby.signal        present exactly when the node is to run as a replica.
//
// The parameters that must hold for HA to work (listen address, wal_level, ...) are not written
// here: they go on the postmaster command line (command-line.ts), above anything in these files
// or in postgresql.auto.conf (ALTER SYSTEM).
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { PgRunner } from './run-as.ts';
import type { PgEndpoint } from './types.ts';

export type ParameterValue = string | number | boolean;

export const BASE_CONF = 'postgresql.base.conf';
export const MAIN_CONF = 'postgresql.conf';
export const HBA_CONF = 'pg_hba.conf';
export const STANDBY_SIGNAL = 'standby.signal';
export const RECOVERY_SIGNAL = 'recovery.signal';

/**
 * Parameters the user may not set in the file: the ones we write for replicas ourselves, and the
 * file locations, which must stay the data directory's own (we write pg_hba.conf there).
 */
const MANAGED_HERE = new Set(['primary_conninfo', 'primary_slot_name', 'recovery_target_timeline', 'config_file', 'data_directory', 'hba_file']);

/** A replica's recovery settings; the upstream is null for a standby with nobody to follow yet. */
export interface RecoverySettings {
  readonly upstream: PgEndpoint | null;
  readonly slotName: string | null;
  /** The replication role, and our member name for application_name. */
  readonly user: string;
  /**
   * The pgpass file with the replication password (null: none is configured). The password
   * itself is never written here: superusers and pg_read_all_settings could read it back with
   * SHOW primary_conninfo, and a base backup of this directory would carry it along.
   */
  readonly passfile: string | null;
  readonly applicationName: string;
}

export interface ConfSpec {
  readonly parameters: Readonly<Record<string, ParameterValue>>;
  readonly pgHba: readonly string[];
  /** null: run as a primary (no standby.signal, no recovery settings). */
  readonly recovery: RecoverySettings | null;
}

/**
 * The physical slot name for a member, as Patroni derives it so slots survive a migration between
 * the two: lower case, '-' and '.' become '_', any other character outside [a-z0-9_] becomes 'u'
 * and its code point in (at least) four hex digits; at most 63 characters (NAMEDATALEN - 1).
 */
export function slotNameFor(member: string): string {
  let out = '';
  for (const ch of member.toLowerCase()) {
    if (/^[a-z0-9_]$/.test(ch)) out += ch;
    else if (ch === '-' || ch === '.') out += '_';
    else out += `u${ch.codePointAt(0)!.toString(16).padStart(4, '0')}`;
  }
  return out.slice(0, 63);
}

/**
 * A value as postgresql.conf wants it: always single-quoted (valid for every type), quotes doubled
 * and backslashes escaped, since the file's lexer reads backslash escapes inside quotes.
 */
export function quoteConfValue(value: ParameterValue): string {
  const text = typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value);
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "''").replace(/\n/g, '\\n')}'`;
}

/** A libpq connection-string value: bare when safe, else single-quoted with \ escapes. */
export function quoteConninfoValue(value: string): string {
  if (value !== '' && !/[\s'\\]/.test(value)) return value;
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** key=value pairs joined into a libpq connection string; undefined/'' values are left out. */
export function conninfo(pairs: Readonly<Record<string, string | number | undefined>>): string {
  return Object.entries(pairs)
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([key, value]) => `${key}=${quoteConninfoValue(String(value))}`)
    .join(' ');
}

/**
 * libpq settings for every connection to another member's PostgreSQL (the walreceiver's,
 * pg_basebackup's, pg_rewind's). Without them a peer that vanishes behind a partition is noticed
 * by nobody: a connect waits out the kernel's SYN retries (about two minutes), and an established
 * connection whose peer restarted while its packets were dropped stays half-open for good, since
 * the waiting side has nothing in flight to time out (the system's keepalive starts after two
 * hours). A real-process run saw pg_rewind hang that way for minutes, with its member unable to
 * rejoin. With these a dead peer is found within about 11 s (5 s idle, then 3 probes 2 s apart),
 * and data left unacknowledged for 10 s aborts the connection.
 */
export const PEER_CONNECTION_SETTINGS = {
  connect_timeout: 5,
  keepalives: 1,
  keepalives_idle: 5,
  keepalives_interval: 2,
  keepalives_count: 3,
  tcp_user_timeout: 10_000,
} as const;

/** primary_conninfo for a replica of `upstream`: the password comes from `passfile` (Patroni does the same on PG10+). */
export function primaryConninfo(upstream: PgEndpoint, r: Pick<RecoverySettings, 'user' | 'passfile' | 'applicationName'>): string {
  return conninfo({
    user: r.user,
    passfile: r.passfile ?? undefined,
    host: upstream.host,
    port: upstream.port,
    application_name: r.applicationName,
    sslmode: 'prefer',
    ...PEER_CONNECTION_SETTINGS,
  });
}

/** postgresql.conf as we generate it. Parameters managed elsewhere are left out. */
export function renderPostgresqlConf(spec: Pick<ConfSpec, 'parameters' | 'recovery'>, includeBase: boolean, omit: ReadonlySet<string> = new Set()): string {
  const lines = ['# Written by Conclave before every start; edits here are lost. Set parameters in the Conclave', '# configuration instead.'];
  if (includeBase) lines.push(`include ${quoteConfValue(BASE_CONF)}`);
  lines.push('');
  for (const name of Object.keys(spec.parameters).sort()) {
    if (MANAGED_HERE.has(name) || omit.has(name)) continue;
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) throw new Error(`not a parameter name: ${JSON.stringify(name)}`);
    lines.push(`${name} = ${quoteConfValue(spec.parameters[name]!)}`);
  }
  const r = spec.recovery;
  if (r) {
    lines.push('', '# Replica settings');
    if (r.upstream) {
      lines.push(`primary_conninfo = ${quoteConfValue(primaryConninfo(r.upstream, r))}`);
      if (r.slotName) lines.push(`primary_slot_name = ${quoteConfValue(r.slotName)}`);
    }
    lines.push(`recovery_target_timeline = 'latest'`);
  }
  return `${lines.join('\n')}\n`;
}

export function renderHba(lines: readonly string[]): string {
  return `# Written by Conclave from the pg_hba setting; edits here are lost.\n${lines.join('\n')}\n`;
}

/**
 * After initdb: keep its postgresql.conf as postgresql.base.conf, which ours includes. Does
 * nothing when that was done already (a base backup brings the source's base file along).
 */
export async function keepInitdbConfAsBase(dataDir: string): Promise<void> {
  const original = join(dataDir, MAIN_CONF);
  const base = join(dataDir, BASE_CONF);
  if (existsSync(original) && !existsSync(base)) await rename(original, base);
}

/** Writes postgresql.conf, pg_hba.conf (if lines are configured) and the standby signal file. */
export async function writeConfFiles(runner: PgRunner, dataDir: string, spec: ConfSpec, omit: ReadonlySet<string> = new Set()): Promise<void> {
  const includeBase = existsSync(join(dataDir, BASE_CONF));
  await runner.writeOwnedFile(join(dataDir, MAIN_CONF), renderPostgresqlConf(spec, includeBase, omit));
  if (spec.pgHba.length > 0) await runner.writeOwnedFile(join(dataDir, HBA_CONF), renderHba(spec.pgHba));
  if (spec.recovery) {
    await runner.writeOwnedFile(join(dataDir, STANDBY_SIGNAL), '');
  } else {
    await removeSignalFiles(dataDir);
  }
}

/** Without these a started server is a primary (or finishes crash recovery and becomes one). */
export async function removeSignalFiles(dataDir: string): Promise<void> {
  await rm(join(dataDir, STANDBY_SIGNAL), { force: true });
  await rm(join(dataDir, RECOVERY_SIGNAL), { force: true });
}
