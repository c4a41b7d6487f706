// The command line's errors, one module for the layer (STYLE.md). Each carries a stable code;
// main() maps codes to exit statuses in one table and prints the message as one line.

export type CliErrorCode =
  /** The command line itself is wrong: unknown command or option, missing value (exit 2, with usage). */
  | 'ERR_USAGE'
  /** The configuration file cannot be read or is invalid. */
  | 'ERR_CONFIG'
  /** No member answered (network failure or timeout on every address tried). */
  | 'ERR_UNREACHABLE'
  /** A member answered, but not with success (the HTTP status is in the message). */
  | 'ERR_API'
  /** conclavectl declines on its own: not confirmed, no TTY to ask, a precondition does not hold. */
  | 'ERR_REFUSED'
  /** A wait (switchover, pause --wait, reinit --wait) did not reach its goal in time. */
  | 'ERR_TIMEOUT'
  /** The PostgreSQL query failed. */
  | 'ERR_QUERY';

export const EXIT_STATUS: Readonly<Record<CliErrorCode, number>> = {
  ERR_USAGE: 2,
  ERR_CONFIG: 1,
  ERR_UNREACHABLE: 1,
  ERR_API: 1,
  ERR_REFUSED: 1,
  ERR_TIMEOUT: 1,
  ERR_QUERY: 1,
};

export class CliError extends Error {
  readonly code: CliErrorCode;
  /** Usage text printed after the one-line message (usage errors only). */
  readonly usage: string | null;
  constructor(code: CliErrorCode, message: string, opts: { usage?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CliError';
    this.code = code;
    this.usage = opts.usage ?? null;
  }
}

export const usageError = (message: string, usage: string): CliError => new CliError('ERR_USAGE', message, { usage });
