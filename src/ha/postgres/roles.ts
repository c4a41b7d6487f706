// The roles a freshly bootstrapped cluster needs (reference §7, "initdb"): the superuser's
// password, a replication role for standbys and base backups, and a rewind role that may read the
// files pg_rewind compares (PG11+: EXECUTE on four file functions, no superuser needed).
//
// The statements carry passwords, so they run in one transaction with statement logging off; a
// role equal to the superuser is left alone (it can do all of this already), and a rewind role
// equal to the replication role gets both sets of rights.
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
 * The statements, as one string for a single round trip; `existing` are the role names already
 * there (ALTER instead of CREATE).
 */
export function roleStatements(spec: RoleSpec, existing: ReadonlySet<string>, q: Quoting): string {
  const su = spec.superuser.username;
  const out = [
    'BEGIN',
    // Bootstrap must not wait for a synchronous standby that does not exist yet.
    "SET LOCAL synchronous_commit = 'local'",
    // Keep the passwords out of the server log, also when a statement fails.
    "SET LOCAL log_statement = 'none'",
    'SET LOCAL log_min_duration_statement = -1',
    "SET LOCAL log_min_error_statement = 'panic'",
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
