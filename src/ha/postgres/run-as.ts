// Running PostgreSQL's binaries, and owning the files they read, as the configured OS user.
//
// PostgreSQL refuses to run as root, so an agent started as root (a container entrypoint, a
// systemd unit without User=) runs the server and its tools as `runAs` and gives that user every
// file it writes into the data directory. When the agent is not root it runs them as itself. A
// root agent with no run-as user, or one that is root too, runs nothing (ERR_PG_RUN_AS_ROOT).
//
// Passwords never go on a command line (any local user can read those from /proc) nor into the
// environment: callers put them in a pgpass file only the user can read (pgpass.ts, initdb's
// --pwfile). Messages are forced to the C locale so what we match on ("no rewind required") and
// what we show operators does not depend on the host's language.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { PgCommandError, PostgresError } from './errors.ts';

export interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

export interface RunOptions {
  /** Added to the environment, e.g. { PGPASSFILE }. */
  readonly env?: Readonly<Record<string, string>>;
  /** initdb: keep the agent's locale, so the cluster's default encoding/locale is the host's. */
  readonly keepLocale?: boolean;
  /** SIGKILL the tool after this long; none by default (a base backup may take hours). */
  readonly timeoutMs?: number;
  /** Sees the tool's stderr as it comes (progress reports). */
  readonly onStderr?: (chunk: string) => void;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

const STDOUT_MAX = 1 << 20;
const STDERR_KEEP = 64 << 10;
const TAIL_LINES = 20;

export class PgRunner {
  readonly binDir: string;
  private readonly runAs: string | null;
  private readonly logger: Logger;
  private userLookup: Promise<OsUser | null> | null = null;

  constructor(opts: { binDir: string; runAs: string | null; logger: Logger }) {
    this.binDir = opts.binDir;
    this.runAs = opts.runAs;
    this.logger = opts.logger;
  }

  /** Absolute path of a PostgreSQL binary. */
  bin(tool: string): string {
    return join(this.binDir, tool);
  }

  /** Whom we switch to, or null to run as ourselves (not root, or no run_as). Looked up once. */
  user(): Promise<OsUser | null> {
    this.userLookup ??= lookupUser(this.runAs).catch((err: unknown) => {
      this.userLookup = null; // let a later call try again (e.g. the user is created meanwhile)
      throw err;
    });
    return this.userLookup;
  }

  /** user(), refusing to run `tool` as root (lookupUser already refuses a run-as user that is root). */
  private async toolUser(tool: string): Promise<OsUser | null> {
    const user = await this.user();
    if (user === null && process.getuid?.() === 0) {
      throw new PostgresError('ERR_PG_RUN_AS_ROOT', `refusing to run ${tool} as root: set postgresql.run_as to the OS user that owns PostgreSQL (e.g. postgres)`);
    }
    return user;
  }

  /** The environment a tool runs with: ours minus PG*, CONCLAVE_* and PATRONI_* variables, C locale, plus `extra`. */
  env(extra: Readonly<Record<string, string>> = {}, keepLocale = false): Record<string, string> {
    const env: Record<string, string> = {};
    // A PGHOST, PGDATA or PGPASSWORD of the agent's own environment must not redirect a tool.
    for (const [key, value] of Object.entries(withoutAgentSecrets(process.env))) if (!key.startsWith('PG')) env[key] = value;
    if (!keepLocale) {
      env.LC_ALL = 'C';
      env.LANG = 'C';
    }
    return { ...env, ...extra };
  }

  /** Runs a tool to completion; rejects with a PgCommandError naming it, its exit and stderr tail. */
  async run(tool: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const user = await this.toolUser(tool);
    const command = [basename(tool), ...args].join(' ');
    this.logger.debug({ command, user: user?.name }, 'running');
    const child = spawn(this.bin(tool), args, {
      cwd: '/', // the agent's directory may not be readable by the user we switch to
      env: this.env(opts.env, opts.keepLocale),
      stdio: ['ignore', 'pipe', 'pipe'], // stdin is /dev/null: nothing may wait for a prompt
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
      ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs, killSignal: 'SIGKILL' as const } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < STDOUT_MAX) stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEEP);
      opts.onStderr?.(chunk);
    });
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolveExit) => {
      child.once('error', (error) => resolveExit({ code: null, signal: null, error }));
      child.once('close', (code, signal) => resolveExit({ code, signal }));
    });
    if (exit.error || exit.code !== 0) {
      const timedOut = exit.signal === 'SIGKILL' && opts.timeoutMs !== undefined ? `(timed out after ${opts.timeoutMs} ms)\n` : '';
      throw new PgCommandError(command, exit.code, exit.signal, timedOut + tailLines(stderr, TAIL_LINES), stdout, exit.error);
    }
    return { stdout, stderr };
  }

  /**
   * Starts a long-running binary (the postmaster) in its own process group with stdout and stderr
   * on `logFd`, and lets go of it: the agent's exit or a signal to the agent's group must not take
   * PostgreSQL down. The caller may still watch 'exit' while the agent lives.
   */
  async spawnDetached(tool: string, args: readonly string[], logFd: number): Promise<ChildProcess> {
    const user = await this.toolUser(tool);
    const command = [basename(tool), ...args].join(' ');
    this.logger.debug({ command, user: user?.name }, 'spawning');
    const child = spawn(this.bin(tool), args, {
      cwd: '/',
      env: this.env(),
      stdio: ['ignore', logFd, logFd],
      detached: true,
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    if (child.pid === undefined) {
      const error = await new Promise<Error>((resolveError) => child.once('error', resolveError));
      throw new PgCommandError(command, null, null, '', '', error);
    }
    child.unref();
    return child;
  }

  /**
   * Creates `dir` (and parents) if missing, sets its mode and gives it to the user. Parents we
   * create are owner-only too (they hold the server log and the pgpass file); makeReachable lets
   * the run-as user through them.
   */
  async ensureDir(dir: string, mode = 0o700): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, mode);
    await this.giveToUser(dir);
    await this.makeReachable(dir);
  }

  /*
   * Started as root we drop privileges for PostgreSQL ourselves, so the path to its data directory
   * must be walkable by that user. Directories we own that deny it (a raft data dir's parent made
   * 0700, say) get search permission for others: traversal only, no listing.
   */
  private async makeReachable(dir: string): Promise<void> {
    const user = await this.user();
    if (!user) return;
    for (let d = dirname(resolve(dir)); d !== dirname(d); d = dirname(d)) {
      const st = await stat(d);
      if (st.uid !== process.getuid?.() || (st.mode & 0o001) !== 0) continue;
      if (st.uid === user.uid || (st.gid === user.gid && (st.mode & 0o010) !== 0)) continue;
      await chmod(d, (st.mode & 0o7777) | 0o001);
    }
  }

  /** chown to the run-as user; nothing when we run as ourselves. */
  async giveToUser(path: string): Promise<void> {
    const user = await this.user();
    if (user) await chown(path, user.uid, user.gid);
  }

  /** Writes a file the user owns, atomically (temp file + rename), default mode 0600. */
  async writeOwnedFile(path: string, content: string, mode = 0o600): Promise<void> {
    const temp = `${path}.conclave-tmp`;
    // A fresh file (O_EXCL): a leftover or planted symlink at the temp name (a pgpass file may
    // live in /tmp) is removed, never followed, so a secret cannot be written somewhere else.
    await rm(temp, { force: true });
    await writeFile(temp, content, { mode, flag: 'wx' });
    await chmod(temp, mode); // the umask may have narrowed it
    await this.giveToUser(temp);
    await rename(temp, path);
  }

  /**
   * A fresh directory only the user can enter, for files such as initdb's --pwfile; the caller
   * removes it with the function returned.
   */
  async privateTempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-pg-'));
    await this.giveToUser(dir);
    return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
  }
}

/**
 * The user a root agent switches to for PostgreSQL (null when the agent is not root, or no runAs
 * is given). A run-as user that is root itself is refused: PostgreSQL must never run as root.
 */
export async function lookupUser(runAs: string | null): Promise<OsUser | null> {
  if (runAs === null || runAs === '' || process.getuid?.() !== 0) return null;
  // `id` asks NSS, so users from LDAP or sssd work as well as those in /etc/passwd.
  const [uid, gid] = await Promise.all([idOf(runAs, '-u'), idOf(runAs, '-g')]);
  if (uid === 0) throw new PostgresError('ERR_PG_RUN_AS_ROOT', `postgresql.run_as is ${JSON.stringify(runAs)}, which is root: PostgreSQL must not run as root; name its own OS user (e.g. postgres)`);
  return { name: runAs, uid, gid };
}

function idOf(user: string, flag: '-u' | '-g'): Promise<number> {
  return new Promise((resolveId, rejectId) => {
    // Only PATH: the agent's environment may carry its secrets (CONCLAVE_*_PASSWORD).
    execFile('id', [flag, user], { encoding: 'utf8', timeout: 5000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } }, (error, stdout, stderr) => {
      const value = Number(stdout.trim());
      if (error || !Number.isInteger(value)) {
        rejectId(new PgCommandError(`id ${flag} ${user}`, typeof error?.code === 'number' ? error.code : null, null, stderr.trim(), stdout, error ?? undefined));
      } else {
        resolveId(value);
      }
    });
  });
}

/** The last `n` non-empty lines of a text. */
/**
 * `env` without the agent's configuration variables (CONCLAVE_CONFIGURATION, *_PASSWORD, ...):
 * they hold its secrets, and neither PostgreSQL (whose superusers can run programs) nor a callback
 * script needs them.
 */
export function withoutAgentSecrets(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && !/^(CONCLAVE_|PATRONI_)/.test(key)) out[key] = value;
  return out;
}

export function tailLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((line) => line.trimEnd())
    .filter((line) => line !== '')
    .slice(-n)
    .join('\n');
}
