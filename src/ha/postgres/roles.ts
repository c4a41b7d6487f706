// The roles a freshly bootstrapped cluster needs (reference §7, "initdb"): the superuser's
// password, a replication role for standbys and base backups, and a rewind role that may read the
// files pg_rewind compares (PG11+: EXECUTE on four file functions, no superuser needed).
//
// The statements carry passwords, so they run in one transaction on a session whose statement
// logging was turned off by an earlier query (QUIET_SESSION_SQL); a role equal to the superuser is
// left alone (it can do all of this already), and a rewind role equal to the replication role gets
// both sets of rights.
import type { Credentials } from '../config/types.ts';

export interface RoleSpec {
  readonly superuser: Credentials;
  readonly replication: Credentials;
  readonly rewind: Credentials;
}

/** pg_rewind's needs from a non-superuser source connection (PostgreSQL docs, pg_rewind). */
export const REWIND_FUNCTIONS = [
  'pg_catalog.pg_ls_dir(text, boolean, boolean)',
  'pg_catalog.pg_stat_file(text, boolean)',
  'pg_catalog.pg_read_binary_file(text)',
  'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)',
];

export interface Quoting {
  ident(name: string): string;
  literal(value: string): string;
}

/**
 * Session settings that keep the role statements out of the server log (also when one fails) and
 * out of pg_stat_statements, for the statements' session. They must be a query of their own, sent
 * first: log_statement judges, and logs, a whole query string when it arrives, so a SET inside the
 * string with the passwords comes too late (Patroni sends its SETs separately for the same reason).
 * Only the settings this server has are set (log_min_duration_sample is PG13+; the
 * pg_stat_statements one exists only while the module is loaded).
 */
export const QUIET_SESSION_SQL = `SELECT pg_catalog.set_config(v.name, v.value, false) FROM (VALUES
  ('log_statement', 'none'), ('log_min_duration_statement', '-1'), ('log_min_duration_sample', '-1'),
  ('log_transaction_sample_rate', '0'), ('log_min_error_statement', 'panic'), ('pg_stat_statements.track_utility', 'off')
) AS v(name, value) WHERE v.name IN (SELECT name FROM pg_catalog.pg_settings)`;

/**
 * The statements, as one string for a single round trip, to run after QUIET_SESSION_SQL on the
 * same session; `existing` are the role names already there (ALTER instead of CREATE).
 */
export function roleStatements(spec: RoleSpec, existing: ReadonlySet<string>, q: Quoting): string {
  const su = spec.superuser.username;
  const out = [
    'BEGIN',
    // Bootstrap must not wait for a synchronous standby that does not exist yet.
    "SET LOCAL synchronous_commit = 'local'",
  ];
  if (spec.superuser.password !== '') out.push(`ALTER ROLE ${q.ident(su)} WITH PASSWORD ${q.literal(spec.superuser.password)}`);

  const upsert = (role: Credentials, options: string): void => {
    const password = role.password === '' ? '' : ` PASSWORD ${q.literal(role.password)}`;
    const verb = existing.has(role.username) ? 'ALTER' : 'CREATE';
    out.push(`${verb} ROLE ${q.ident(role.username)} WITH ${options}${password}`);
  };
  const sameRole = spec.rewind.username === spec.replication.username;
  if (spec.replication.username !== su) upsert(spec.replication, 'LOGIN REPLICATION');
  if (spec.rewind.username !== su) {
    if (!sameRole) upsert(spec.rewind, 'LOGIN');
    for (const fn of REWIND_FUNCTIONS) out.push(`GRANT EXECUTE ON FUNCTION ${fn} TO ${q.ident(spec.rewind.username)}`);
  }
  out.push('COMMIT');
  return `${out.join(';\n')};`;
}
