// Passwords for PostgreSQL's tools and for a replica's WAL receiver, in libpq's password file
// (PostgreSQL docs, libpq "The Password File"): `host:port:database:user:password` per line.
//
// Why a file: a command line is readable by every local user (ps, /proc/<pid>/cmdline), and
// PGPASSWORD in the environment is discouraged by libpq itself. A pgpass file of mode 0600, owned
// by the user the tool runs as, is what libpq accepts (it ignores a file group or others may
// read) and what Patroni uses (`postgresql.pgpass`, PGPASSFILE; `passfile=` in primary_conninfo).
import { join } from 'node:path';
import { PostgresError } from './errors.ts';
import type { PgRunner } from './run-as.ts';

export interface PgpassEntry {
  readonly host: string;
  readonly port: number;
  /** '*' matches any database, also the `replication` pseudo-database of a WAL connection. */
  readonly database?: string;
  readonly user: string;
  readonly password: string;
}

/** One field, with ':' and '\' escaped by '\' as libpq requires. */
export function pgpassField(value: string): string {
  return value.replace(/[\\:]/g, (c) => `\\${c}`);
}

/**
 * The file's text. The file is line-based: a password or user name with a line break cannot be
 * written (libpq would read a truncated one), so it is refused rather than silently mangled.
 */
export function pgpassText(entries: readonly PgpassEntry[]): string {
  return entries
    .map((e) => {
      if (/[\r\n]/.test(e.password) || /[\r\n]/.test(e.user)) {
        throw new PostgresError('ERR_PG_BAD_OPTION', `a password or user name of role ${JSON.stringify(e.user.split(/[\r\n]/)[0])} contains a line break, which a pgpass file cannot hold`);
      }
      return `${[e.host, String(e.port), e.database ?? '*', e.user, e.password].map(pgpassField).join(':')}\n`;
    })
    .join('');
}

/**
 * Runs `fn` with a pgpass file holding `entry` in a fresh private directory (0700, the run-as
 * user's), passing the environment that points libpq at it; the directory is removed afterwards,
 * also when `fn` fails. No password: no file, an empty environment.
 */
export async function withPgpass<T>(runner: PgRunner, entry: PgpassEntry, fn: (env: Record<string, string>) => Promise<T>): Promise<T> {
  if (entry.password === '') return fn({});
  const temp = await runner.privateTempDir();
  try {
    const file = join(temp.dir, 'pgpass');
    await runner.writeOwnedFile(file, pgpassText([entry]));
    return await fn({ PGPASSFILE: file });
  } finally {
    await temp.remove();
  }
}
