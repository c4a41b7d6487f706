// Errors of the PostgreSQL controller, one class with a stable `code` (STYLE.md: callers match on
// the code, never on the message). The message is for operators: it names the command or the
// query and carries PostgreSQL's own words (stderr tail, server log tail) where there are any.

export type PostgresErrorCode =
  /** A PostgreSQL tool (initdb, pg_ctl, pg_basebackup, pg_rewind, ...) failed; see `command`. */
  | 'ERR_PG_COMMAND'
  /** The postmaster exited while starting; the message carries the tail of its log. */
  | 'ERR_PG_START_FAILED'
  /** The postmaster did not accept connections within the timeout; it has been stopped again. */
  | 'ERR_PG_START_TIMEOUT'
  /** The postmaster survived every signal up to SIGKILL. */
  | 'ERR_PG_STOP_TIMEOUT'
  /** The operation needs PostgreSQL stopped, but a postmaster runs on the data directory. */
  | 'ERR_PG_RUNNING'
  /** The operation needs a running PostgreSQL, and none runs. */
  | 'ERR_PG_NOT_RUNNING'
  /** No connection could be made, or it broke during the query. */
  | 'ERR_PG_UNAVAILABLE'
  /** The server answered a query with an error; `sqlState` has its SQLSTATE. */
  | 'ERR_PG_QUERY'
  /** Still in recovery after `pg_ctl promote` and the timeout. */
  | 'ERR_PG_PROMOTE_TIMEOUT'
  /** There is no usable data directory (missing, or no pg_control). */
  | 'ERR_PG_NO_DATA'
  /** A configured option cannot be used (an initdb switch we set ourselves, a bad slot name). */
  | 'ERR_PG_BAD_OPTION'
  /** PostgreSQL or one of its tools would run as root: the agent is root and run_as is root or unset. */
  | 'ERR_PG_RUN_AS_ROOT'
  /**
   * pg_rewind failed before it changed anything in the target (it could not reach the source, or
   * lost it while comparing): the data directory is as it was, and the rewind may simply be retried.
   */
  | 'ERR_PG_REWIND_UNTOUCHED';

export class PostgresError extends Error {
  readonly code: PostgresErrorCode;
  constructor(code: PostgresErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PostgresError';
    this.code = code;
  }
}

/** A tool exited non-zero or was killed. */
export class PgCommandError extends PostgresError {
  /** The command line as run (never holds a password: those go through a pgpass file). */
  readonly command: string;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderrTail: string;
  readonly stdout: string;

  constructor(command: string, exitCode: number | null, signal: NodeJS.Signals | null, stderrTail: string, stdout: string, cause?: unknown) {
    const how = cause ? `could not run: ${(cause as Error).message}` : signal ? `killed by ${signal}` : `exited with code ${exitCode}`;
    super('ERR_PG_COMMAND', `${command}: ${how}${stderrTail ? `\n${stderrTail}` : ''}`, { cause });
    this.name = 'PgCommandError';
    this.command = command;
    this.exitCode = exitCode;
    this.signal = signal;
    this.stderrTail = stderrTail;
    this.stdout = stdout;
  }
}

/** The server refused a query; `sqlState` is PostgreSQL's error code (e.g. '42P01'). */
export class PgQueryError extends PostgresError {
  readonly sqlState: string;
  constructor(sqlState: string, message: string, cause: unknown) {
    super('ERR_PG_QUERY', message, { cause });
    this.name = 'PgQueryError';
    this.sqlState = sqlState;
  }
}
