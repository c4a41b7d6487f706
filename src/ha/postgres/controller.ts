// The one way the HA loop acts on PostgreSQL (STYLE.md, "From Patroni"): create a data
// directory, start and stop the postmaster, promote, clone, rewind, and report a PgStatus. Each
// method does one thing and returns when it is done or throws a PostgresError saying why not; the
// decisions (when to rewind, whom to follow) are the HA loop's.
//
// The postmaster is spawned directly, not through pg_ctl, detached into its own process group so
// the agent can exit or crash without taking PostgreSQL down (reference §7, "Start"). Its output
// goes to `<data_dir>/../<name>-postgres.log`, outside the data directory, which base backups and
// rewinds replace.
//
// Passwords reach PostgreSQL's tools and a replica's WAL receiver only through pgpass files
// (pgpass.ts), never a command line or the environment: a temporary one for pg_basebackup and
// pg_rewind, and for primary_conninfo the file `pgpass` names (Patroni's postgresql.pgpass).
import { closeSync, existsSync, fstatSync, openSync } from 'node:fs';
import { chmod, open, readdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Credentials } from '../config/types.ts';
import { initdbArgs, protectedArgs, protectedParameters, COMMAND_LINE_PARAMETERS } from './command-line.ts';
import type { ParameterValue } from './conf-files.ts';
import { PEER_CONNECTION_SETTINGS, conninfo, keepInitdbConfAsBase, removeSignalFiles, writeConfFiles } from './conf-files.ts';
import { readControlData } from './control-data.ts';
import { PostgresError } from './errors.ts';
import { parseLsnOrNull } from './lsn.ts';
import { connectHost, PgConnection, probe, querySession, replayTimeline } from './pg-client.ts';
import type { ConnectTarget } from './pg-client.ts';
import { isProcessAlive, isPostgresAlive, killWithChildren, livePostmasterPid, pidFromFile, PID_FILE, signal, waitForExit } from './postmaster.ts';
import { QUIET_SESSION_SQL, roleStatements } from './roles.ts';
import { pgpassText, withPgpass } from './pgpass.ts';
import { PgRunner, tailLines } from './run-as.ts';
import { NOT_RUNNING, STATUS_SQL, statusFromRow } from './status.ts';
import type { StatusRow } from './status.ts';
import type { ControlData, PgEndpoint, PgStatus, StartOptions, StopMode } from './types.ts';

export interface PostgresControllerOptions {
  /** Member name: application_name on the upstream, and the name our slot is derived from. */
  name: string;
  /** cluster_name. */
  scope: string;
  dataDir: string;
  binDir: string;
  /** listen_addresses and port on the postmaster command line; we connect here too. */
  listen: PgEndpoint;
  superuser: Credentials;
  replication: Credentials;
  rewind: Credentials;
  /** The user's parameters, dynamic and local merged. */
  parameters: Readonly<Record<string, ParameterValue>>;
  pgHba: readonly string[];
  initdbOptions: readonly (string | Readonly<Record<string, string>>)[];
  /** The OS user for PostgreSQL and its tools when the agent runs as root; null: ourselves. */
  runAs: string | null;
  /** pg_ctl_timeout: how long a start, stop or promote may take. */
  timeoutMs: number;
  logger: Logger;
  /**
   * postgresql.pgpass: the file (0600, the run-as user's) a replica's primary_conninfo takes the
   * replication password from. Default: `<name>.pgpass` beside the data directory, a place the
   * run-as user can reach and that base backups and rewinds do not replace.
   */
  pgpass?: string | null;
}

const SIGNAL_OF: Readonly<Record<StopMode, NodeJS.Signals>> = { smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT' };
/** After an immediate stop or SIGKILL, how long to wait for the postmaster to go. */
const LAST_RESORT_WAIT_MS = 5000;
const POLL_MS = 100;
/**
 * Settings Conclave writes unless the user sets them, both on the failover path of synchronous
 * mode. wal_receiver_status_interval: a standby reports its flush position at least this often;
 * PostgreSQL's 10 s would hold a commit waiting on a newly named synchronous standby up to 10 s.
 * wal_retrieve_retry_interval: how soon a standby connects again (to the new primary, after a
 * failover); PostgreSQL's 5 s would keep the new primary's first commits waiting that long.
 */
const CONF_DEFAULTS: Readonly<Record<string, ParameterValue>> = { wal_receiver_status_interval: '1s', wal_retrieve_retry_interval: '500ms' };
/** The promotion is on every failover's critical path: polled finely. */
const PROMOTE_POLL_MS = 10;
/** Patroni's pause between the two base backup attempts. */
const BASEBACKUP_RETRY_DELAY_MS = 5000;
const LOG_TAIL_LINES = 20;

const sleep = (ms: number): Promise<void> => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

export class PostgresController {
  readonly name: string;
  readonly dataDir: string;
  /** Where the postmaster's stdout/stderr go. */
  readonly logFile: string;
  /** The pgpass file primary_conninfo names (written only for a replica with a password). */
  readonly pgpassFile: string;
  private readonly opts: PostgresControllerOptions;
  private readonly runner: PgRunner;
  private readonly conn: PgConnection;
  private readonly superuserTarget: ConnectTarget;
  private readonly logger: Logger;
  /** The user parameters in force (the dynamic config can change them at run time). */
  private parameters: Readonly<Record<string, ParameterValue>>;
  /** synchronous_standby_names as the HA loop manages it (synchronous mode), over the user's. */
  private syncNames: string | null = null;
  /** The last recovery setup written, so a parameter change rewrites the same role's files. */
  private lastStartOptions: StartOptions | null = null;
  /** The protected command-line arguments the running postmaster was started with. */
  private startedWithArgs: string[] | null = null;
  /** Said once: the local replication connection (for a standby's replay timeline) was refused. */
  private warnedNoReplayTimeline = false;

  constructor(opts: PostgresControllerOptions) {
    this.opts = opts;
    this.parameters = opts.parameters;
    this.name = opts.name;
    this.dataDir = resolve(opts.dataDir);
    if (this.dataDir === '/') throw new PostgresError('ERR_PG_BAD_OPTION', 'the data directory cannot be /');
    this.logFile = join(dirname(this.dataDir), `${opts.name}-postgres.log`);
    this.pgpassFile = resolve(opts.pgpass ?? join(dirname(this.dataDir), `${opts.name}.pgpass`));
    this.logger = opts.logger;
    this.runner = new PgRunner({ binDir: opts.binDir, runAs: opts.runAs, logger: opts.logger });
    this.superuserTarget = {
      host: connectHost(opts.listen.host),
      port: opts.listen.port,
      user: opts.superuser.username,
      password: opts.superuser.password,
      database: 'postgres',
    };
    this.conn = new PgConnection(this.superuserTarget, opts.logger);
  }

  /** True when there is no cluster here: no directory, an empty one, or no PG_VERSION. */
  async dataDirEmpty(): Promise<boolean> {
    return !existsSync(join(this.dataDir, 'PG_VERSION'));
  }

  /** pg_controldata; null when there is no cluster here. */
  async controlData(): Promise<ControlData | null> {
    return readControlData(this.runner, this.dataDir);
  }

  /** A new cluster (reference §7, "initdb"); the data directory must be missing or empty. */
  async initdb(): Promise<void> {
    await this.assertStopped('initdb');
    const args = ['-D', this.dataDir, ...initdbArgs(this.opts.initdbOptions), `--username=${this.opts.superuser.username}`];
    await this.runner.ensureDir(this.dataDir);
    const temp = this.opts.superuser.password === '' ? null : await this.runner.privateTempDir();
    try {
      if (temp) {
        const pwfile = join(temp.dir, 'pwfile');
        await this.runner.writeOwnedFile(pwfile, `${this.opts.superuser.password}\n`);
        args.push(`--pwfile=${pwfile}`);
      }
      this.logger.info({ dataDir: this.dataDir }, 'initdb');
      // The host's locale, not C: it decides the new cluster's default encoding and collation.
      await this.runner.run('initdb', args, { keepLocale: true });
    } finally {
      await temp?.remove();
    }
    await keepInitdbConfAsBase(this.dataDir);
    await this.writeConfig({ role: 'primary', upstream: null, slotName: null });
  }

  /**
   * Writes postgresql.conf, pg_hba.conf and the standby signal for `opts`. start() does this
   * itself; call it directly to point a running replica elsewhere, then reload() (PG13+).
   */
  async writeConfig(opts: StartOptions): Promise<void> {
    const r = this.opts.replication;
    let recovery = null;
    if (opts.role === 'replica') {
      const passfile = opts.upstream && r.password !== '' ? this.pgpassFile : null;
      // Written before postgresql.conf names it, so a reload never finds the file missing.
      if (opts.upstream && passfile) await this.runner.writeOwnedFile(passfile, pgpassText([{ ...opts.upstream, user: r.username, password: r.password }]));
      recovery = { upstream: opts.upstream, slotName: opts.slotName, user: r.username, passfile, applicationName: this.name };
    }
    // A replica never gets the managed list: promoted, it starts with the user's setting until its
    // agent (which sets the list before promoting in synchronous mode) says otherwise.
    const withDefaults = { ...CONF_DEFAULTS, ...this.parameters };
    const parameters = this.syncNames !== null ? { ...withDefaults, synchronous_standby_names: this.syncNames } : withDefaults;
    await writeConfFiles(this.runner, this.dataDir, { parameters, pgHba: this.opts.pgHba, recovery }, COMMAND_LINE_PARAMETERS);
    this.lastStartOptions = opts;
  }

  /**
   * New user parameters (a changed dynamic config): rewritten into postgresql.conf and reloaded
   * when PostgreSQL runs. What a reload cannot change shows up as pending restart: PostgreSQL's own
   * pending_restart for file settings, pendingRestartReasons() for the command-line ones.
   */
  async applyParameters(parameters: Readonly<Record<string, ParameterValue>>): Promise<void> {
    this.parameters = parameters;
    if (this.lastStartOptions === null || (await this.postmasterPid()) === null) return;
    await this.writeConfig(this.lastStartOptions);
    await this.reload();
  }

  /** Command-line parameters whose configured value differs from the running postmaster's. */
  pendingRestartReasons(): string[] {
    if (this.startedWithArgs === null) return [];
    const now = protectedArgs(this.commandLineSpec());
    const before = new Set(this.startedWithArgs);
    return now.filter((a) => !before.has(a)).map((a) => `${a.replace(/^--/, '').split('=')[0]} changed; needs a restart`);
  }

  /**
   * Writes the configuration for `opts` and starts the postmaster; resolves once it accepts
   * connections. Rejects with ERR_PG_START_FAILED (it exited; the message has its log tail) or
   * ERR_PG_START_TIMEOUT (not accepting within timeoutMs; it has been stopped again).
   */
  /** `timeoutMs`: how long to wait for it to accept connections (default pg_ctl_timeout). */
  async start(opts: StartOptions, timeoutMs: number = this.opts.timeoutMs): Promise<void> {
    await this.assertStopped('start');
    if (await this.dataDirEmpty()) throw new PostgresError('ERR_PG_NO_DATA', `cannot start: no cluster in ${this.dataDir}`);
    await this.removeForeignPidFile();
    await chmod(this.dataDir, 0o700); // PostgreSQL refuses a data directory others can read
    await this.writeConfig(opts);

    // 0600 as PostgreSQL's own log_file_mode: a server log shows statements and their errors.
    const logFd = openSync(this.logFile, 'a', 0o600);
    const logStart = fstatSync(logFd).size;
    let child;
    try {
      await this.runner.giveToUser(this.logFile);
      const protectedNow = protectedArgs(this.commandLineSpec());
      const args = ['-D', this.dataDir, `--config-file=${join(this.dataDir, 'postgresql.conf')}`, ...protectedNow];
      this.startedWithArgs = protectedNow;
      this.logger.info({ role: opts.role, upstream: opts.upstream, log: this.logFile }, 'starting postgres');
      child = await this.runner.spawnDetached('postgres', args, logFd);
    } finally {
      closeSync(logFd);
    }
    const pid = child.pid!;
    let exit: string | null = null;
    child.once('exit', (code, sig) => {
      exit = sig ? `signal ${sig}` : `code ${code}`;
    });

    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      // Accepting, and it is ours: another server on the same port must not pass for this one.
      if (exit === null && (await probe(this.superuserTarget)) === 'accepting' && (await pidFromFile(this.dataDir)) === pid) {
        this.logger.info({ pid }, 'postgres accepts connections');
        return;
      }
      if (exit !== null) {
        const tail = await this.logTail(logStart);
        throw new PostgresError('ERR_PG_START_FAILED', `postgres exited with ${exit} while starting:\n${tail}`);
      }
      await sleep(Math.min(POLL_MS, Math.max(0, deadline - performance.now())));
    }
    // Not ready in time: stop what we started, by the PID we spawned (postmaster.pid may not be
    // written yet), so no half-started server is left for the next attempt to trip over.
    this.logger.warn({ pid, timeoutMs: timeoutMs }, 'postgres not accepting connections in time; stopping it');
    if (exit === null) {
      signal(pid, 'SIGQUIT');
      if (!(await waitForExit(pid, LAST_RESORT_WAIT_MS))) {
        killWithChildren(pid);
        await waitForExit(pid, LAST_RESORT_WAIT_MS);
      }
    }
    const tail = await this.logTail(logStart);
    throw new PostgresError('ERR_PG_START_TIMEOUT', `postgres did not accept connections within ${timeoutMs} ms; stopped it again:\n${tail}`);
  }

  /** The PID of the postmaster running on our data directory, or null. */
  async postmasterPid(): Promise<number | null> {
    return livePostmasterPid(this.dataDir);
  }

  /**
   * Stops the postmaster with `mode`; after timeoutMs escalates to immediate, then SIGKILL for it
   * and its children (reference §7, "Stop"). Resolves once it is gone; nothing to do if none runs.
   */
  async stop(mode: StopMode): Promise<void> {
    // Our own session would hold up a smart shutdown forever.
    await this.conn.close();
    const pid = await this.postmasterPid();
    if (pid === null) return;
    this.logger.info({ pid, mode }, 'stopping postgres');
    signal(pid, SIGNAL_OF[mode]);
    if (await waitForExit(pid, this.opts.timeoutMs)) return;
    if (mode !== 'immediate') {
      this.logger.warn({ pid, mode, timeoutMs: this.opts.timeoutMs }, 'postgres still running; stopping it immediately');
      signal(pid, 'SIGQUIT');
      if (await waitForExit(pid, Math.min(this.opts.timeoutMs, LAST_RESORT_WAIT_MS))) return;
    }
    this.logger.warn({ pid }, 'postgres still running; SIGKILL');
    killWithChildren(pid);
    if (await waitForExit(pid, LAST_RESORT_WAIT_MS)) return;
    throw new PostgresError('ERR_PG_STOP_TIMEOUT', `postgres (pid ${pid}) still runs after SIGKILL`);
  }

  /** One snapshot; never throws. Not accepting connections: running=false, starting=postmaster alive. */
  async status(): Promise<PgStatus> {
    try {
      const [row] = await this.conn.query<StatusRow>(STATUS_SQL);
      // A standby not streaming: its receiver's timeline is gone or stale, and pg_control keeps
      // the last restartpoint's, which lags a timeline switch by up to checkpoint_timeout. The
      // divergence judgement needs the timeline replay is on (Patroni asks the same way).
      const replayTli = row!.in_recovery && row!.receiver_status !== 'streaming' ? await this.replayTimeline() : null;
      return statusFromRow(row!, replayTli);
    } catch (err) {
      const pid = await this.postmasterPid();
      if (pid !== null) this.logger.debug({ err: (err as Error).message }, 'postgres runs but does not answer');
      return { ...NOT_RUNNING, starting: pid !== null };
    }
  }

  private async replayTimeline(): Promise<number | null> {
    const { username, password } = this.opts.replication;
    const tli = await replayTimeline({ ...this.superuserTarget, user: username, password });
    if (!(tli instanceof Error)) return tli;
    // Once per process: a missing pg_hba line would otherwise log this every cycle. A server
    // shutting down or too busy to answer in time also lands here, hence the error in the line.
    if (!this.warnedNoReplayTimeline) {
      this.warnedNoReplayTimeline = true;
      this.logger.warn({ err: tli.message }, `cannot ask the local standby its replay timeline over a replication connection as ${username} to ${this.superuserTarget.host} (does pg_hba allow it?): its divergence is judged on its last restartpoint's timeline`);
    }
    return null;
  }

  /**
   * Ends recovery: `pg_ctl promote -w`, then waits until pg_is_in_recovery() is false. Nothing to
   * do on a primary. The new timeline reaches pg_control only with the next checkpoint: call
   * checkpoint() afterwards before anyone rewinds against this node (reference §7, "Promote").
   */
  async promote(): Promise<void> {
    if ((await this.postmasterPid()) === null) throw new PostgresError('ERR_PG_NOT_RUNNING', 'cannot promote: postgres is not running');
    if (!(await this.inRecovery())) return;
    this.logger.info('promoting');
    // pg_promote(wait => false) over the open connection, then our own fine-grained poll: pg_ctl
    // promote -w (a process to spawn, and a 100 ms wait loop) would add up to a tenth of a second
    // to every failover. pg_ctl stays the fallback when the query cannot be made.
    const signalled = await this.conn.query<{ ok: boolean }>('SELECT pg_catalog.pg_promote(false) AS ok').then((r) => r[0]?.ok === true, () => false);
    if (!signalled) {
      const seconds = Math.max(1, Math.ceil(this.opts.timeoutMs / 1000));
      await this.runner.run('pg_ctl', ['promote', '-w', '-t', String(seconds), '-D', this.dataDir], { timeoutMs: this.opts.timeoutMs + 5000 });
    }
    const deadline = performance.now() + this.opts.timeoutMs;
    while (await this.inRecovery().catch(() => true)) {
      if (performance.now() >= deadline) throw new PostgresError('ERR_PG_PROMOTE_TIMEOUT', `still in recovery ${this.opts.timeoutMs} ms after the promotion was requested`);
      await sleep(PROMOTE_POLL_MS);
    }
    // From now on the configuration we write is a primary's (no standby.signal, no conninfo).
    this.lastStartOptions = { role: 'primary', upstream: null, slotName: null };
  }

  /** After the first start of a new cluster: passwords, the replication and the rewind role. */
  async createRoles(): Promise<void> {
    const { superuser, replication, rewind } = this.opts;
    const rows = await this.conn.query<{ rolname: string }>('SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY($1)', [[replication.username, rewind.username]]);
    const sql = roleStatements({ superuser, replication, rewind }, new Set(rows.map((r) => r.rolname)), { ident: PgConnection.ident, literal: PgConnection.literal });
    // A session of its own: its logging is off before the passwords reach the server, and a
    // failure leaves no aborted transaction behind on the controller's connection.
    await querySession(this.superuserTarget, QUIET_SESSION_SQL, sql, 30_000);
    this.logger.info({ replication: replication.username, rewind: rewind.username }, 'roles created');
  }

  /**
   * A new replica's data directory, copied from `from` with pg_basebackup (reference §7, "Replica
   * creation"): the directory is emptied first, and a failed attempt is tried once more.
   */
  async basebackup(from: PgEndpoint): Promise<void> {
    await this.assertStopped('basebackup');
    const { username, password } = this.opts.replication;
    const dsn = conninfo({ host: from.host, port: from.port, user: username, ...PEER_CONNECTION_SETTINGS });
    const args = [`--pgdata=${this.dataDir}`, '-X', 'stream', `--dbname=${dsn}`, '--checkpoint=fast', '--no-password', '--progress'];
    let lastError: unknown;
    for (let attempt = 1; attempt <= 2; attempt++) {
      await this.emptyDataDir();
      try {
        this.logger.info({ from, attempt }, 'pg_basebackup');
        await withPgpass(this.runner, { ...from, user: username, password }, (env) => this.runner.run('pg_basebackup', args, { env, onStderr: progressReporter(this.logger, 'pg_basebackup') }));
        await chmod(this.dataDir, 0o700);
        return;
      } catch (err) {
        lastError = err;
        this.logger.warn({ err: (err as Error).message, attempt }, 'pg_basebackup failed');
        if (attempt < 2) await sleep(BASEBACKUP_RETRY_DELAY_MS);
      }
    }
    await this.emptyDataDir(); // a half copy must not look like a cluster
    throw lastError;
  }

  /**
   * pg_rewind against `from` (reference §7, "pg_rewind decision"); the HA loop has decided that a
   * rewind is due. PostgreSQL must be stopped. A data directory that was not shut down cleanly is
   * first taken through crash recovery in single-user mode, as pg_rewind requires.
   *
   * Meant for a former primary. That crash recovery ends recovery on the local WAL and writes a
   * checkpoint there; a crashed replica should rather be started as a replica again (it recovers
   * in standby mode) than be sent through here.
   */
  async rewind(from: PgEndpoint): Promise<'not-needed' | 'rewound'> {
    await this.assertStopped('rewind');
    const control = await this.controlData();
    if (!control) throw new PostgresError('ERR_PG_NO_DATA', `cannot rewind: no cluster in ${this.dataDir}`);
    if (control.state !== 'shut down' && control.state !== 'shut down in recovery') await this.crashRecovery(control.state);
    const { username, password } = this.opts.rewind;
    const dsn = conninfo({ host: from.host, port: from.port, user: username, dbname: 'postgres', ...PEER_CONNECTION_SETTINGS });
    this.logger.info({ from }, 'pg_rewind');
    const args = ['-D', this.dataDir, `--source-server=${dsn}`, '--progress'];
    const reportProgress = progressReporter(this.logger, 'pg_rewind');
    const stage = rewindStageTracker();
    const onStderr = (chunk: string): void => {
      stage.see(chunk);
      reportProgress(chunk);
    };
    const { stdout, stderr } = await withPgpass(this.runner, { ...from, user: username, password }, (env) => this.runner.run('pg_rewind', args, { env, onStderr })).catch((err: unknown) => {
      if (stage.touchedTarget()) throw err;
      throw new PostgresError('ERR_PG_REWIND_UNTOUCHED', `pg_rewind from ${from.host}:${from.port} failed before changing the data directory; it can be retried: ${(err as Error).message}`, { cause: err });
    });
    const outcome = /no rewind required/.test(`${stdout}\n${stderr}`) ? 'not-needed' : 'rewound';
    this.logger.info({ outcome }, 'pg_rewind done');
    return outcome;
  }

  /**
   * Deletes everything in the data directory (the directory itself stays, with its owner, mode and
   * any mount), e.g. after a failed bootstrap or before a re-clone. PostgreSQL must be stopped.
   */
  async removeDataDir(): Promise<void> {
    await this.assertStopped('remove the data directory');
    this.logger.warn({ dataDir: this.dataDir }, 'removing the data directory');
    await this.emptyDataDir();
  }

  async checkpoint(): Promise<void> {
    await this.conn.query('CHECKPOINT', [], Math.max(this.opts.timeoutMs, 2000));
  }

  /**
   * Sets synchronous_standby_names (null: back to the user's own value) and reloads when it
   * changed. Resolves once the postmaster has been signalled; the setting is in force when
   * pg_settings shows it (see synchronousStandbyNames()).
   */
  async setSynchronousStandbyNames(value: string | null): Promise<void> {
    if (value === this.syncNames) return;
    this.syncNames = value;
    if (this.lastStartOptions === null) return;
    await this.writeConfig(this.lastStartOptions);
    if ((await this.postmasterPid()) === null) return;
    await this.reload();
    // A standby named now confirms commits that wait for it only in its next reply, and one that
    // has already flushed everything replies only every wal_receiver_status_interval. A little WAL,
    // flushed at once, makes it reply now: a message in a transaction that commits locally (it
    // must not itself wait for the standby).
    if (value !== null && value !== '') {
      await this.conn
        .query("BEGIN; SET LOCAL synchronous_commit TO local; SELECT pg_catalog.pg_logical_emit_message(true, 'conclave', 'synchronous_standby_names changed'); COMMIT")
        .catch(() => this.conn.query('ROLLBACK').catch(() => undefined));
    }
  }

  /** Stops (fast) and starts again in the same role: what a restart API call or a pending restart needs. */
  async restart(startTimeoutMs?: number): Promise<void> {
    const opts = this.lastStartOptions;
    if (opts === null || (await this.postmasterPid()) === null) throw new PostgresError('ERR_PG_NOT_RUNNING', 'cannot restart: postgres is not running');
    await this.stop('fast');
    await this.start(opts, startTimeoutMs);
  }

  /** The value the managed list was last set to (null: not managed). */
  get managedSyncNames(): string | null {
    return this.syncNames;
  }

  /** The standbys streaming from this server: who they are and whether they are synchronous now. */
  async replication(): Promise<{ name: string; state: string; syncState: string; flushLsn: number | null }[]> {
    const rows = await this.conn.query<{ application_name: string; state: string; sync_state: string; flush: string | null }>(
      'select application_name, state, sync_state, flush_lsn::text as flush from pg_stat_replication',
    );
    return rows.map((r) => ({ name: r.application_name, state: r.state, syncState: r.sync_state, flushLsn: parseLsnOrNull(r.flush) }));
  }

  /** SIGHUP to the postmaster: it rereads its configuration files. */
  async reload(): Promise<void> {
    const pid = await this.postmasterPid();
    if (pid === null || !signal(pid, 'SIGHUP')) throw new PostgresError('ERR_PG_NOT_RUNNING', 'cannot reload: postgres is not running');
  }

  /** A statement on the controller's superuser connection (2 s timeout unless given). */
  query<Row extends object = Record<string, unknown>>(sql: string, params: readonly unknown[] = [], timeoutMs?: number): Promise<Row[]> {
    return this.conn.query<Row>(sql, params, timeoutMs);
  }

  /**
   * Makes the physical slots match `wanted`: creates the missing ones (reserving WAL at once), drops
   * the others unless a walsender uses them. Logical slots are not touched.
   */
  async syncPhysicalSlots(wanted: readonly string[]): Promise<void> {
    for (const name of wanted) {
      if (!/^[a-z0-9_]{1,63}$/.test(name)) throw new PostgresError('ERR_PG_BAD_OPTION', `not a replication slot name: ${JSON.stringify(name)}`);
    }
    const slots = await this.conn.query<{ slot_name: string; active: boolean }>("SELECT slot_name, active FROM pg_catalog.pg_replication_slots WHERE slot_type = 'physical'");
    const have = new Set(slots.map((s) => s.slot_name));
    for (const name of wanted) {
      if (have.has(name)) continue;
      this.logger.info({ slot: name }, 'creating physical replication slot');
      await this.conn.query('SELECT pg_catalog.pg_create_physical_replication_slot($1, true)', [name]);
    }
    for (const slot of slots) {
      if (wanted.includes(slot.slot_name) || slot.active) continue;
      this.logger.info({ slot: slot.slot_name }, 'dropping physical replication slot');
      await this.conn.query('SELECT pg_catalog.pg_drop_replication_slot($1)', [slot.slot_name]);
    }
  }

  /** Ends the SQL connection. PostgreSQL keeps running. */
  async close(): Promise<void> {
    await this.conn.close();
  }

  // -------------------------------------------------------------------------------------------

  private commandLineSpec(): { listen: PgEndpoint; scope: string; parameters: Readonly<Record<string, ParameterValue>> } {
    return { listen: this.opts.listen, scope: this.opts.scope, parameters: this.parameters };
  }

  private async inRecovery(): Promise<boolean> {
    const [row] = await this.conn.query<{ in_recovery: boolean }>('SELECT pg_catalog.pg_is_in_recovery() AS in_recovery');
    return row!.in_recovery;
  }

  private async assertStopped(what: string): Promise<void> {
    const pid = await this.postmasterPid();
    if (pid !== null) throw new PostgresError('ERR_PG_RUNNING', `cannot ${what}: postgres is running (pid ${pid})`);
  }

  /**
   * A postmaster.pid whose PID now belongs to another program (say, after a container restart)
   * would make PostgreSQL refuse to start; it is ours to remove. A dead PID PostgreSQL handles.
   */
  private async removeForeignPidFile(): Promise<void> {
    const pid = await pidFromFile(this.dataDir);
    if (pid !== null && isProcessAlive(pid) && !isPostgresAlive(pid)) {
      this.logger.warn({ pid }, 'postmaster.pid names a process that is not postgres; removing it');
      await rm(join(this.dataDir, PID_FILE), { force: true });
    }
  }

  /** Removes everything inside the data directory, keeping the directory (and its mount, owner). */
  private async emptyDataDir(): Promise<void> {
    await this.runner.ensureDir(this.dataDir);
    for (const entry of await readdir(this.dataDir)) await rm(join(this.dataDir, entry), { recursive: true, force: true });
  }

  /**
   * `postgres --single` with stdin at EOF: replays the WAL and shuts down cleanly. The standby
   * signal goes first (a single-user server refuses standby mode; start() writes it again), and
   * wal_log_hints stays on, or pg_rewind would find it off in pg_control afterwards.
   */
  private async crashRecovery(state: string): Promise<void> {
    if (existsSync(join(this.dataDir, 'backup_label'))) {
      // Restoring from a backup label needs WAL we may not have; leave the call to pg_rewind.
      this.logger.info({ state }, 'backup_label present; no single-user crash recovery');
      return;
    }
    this.logger.info({ state }, 'crash recovery in single-user mode before pg_rewind');
    await removeSignalFiles(this.dataDir);
    const settings = protectedParameters(this.commandLineSpec()).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
    await this.runner.run('postgres', ['--single', '-D', this.dataDir, ...settings, '-c', 'archive_mode=off', 'template1']);
  }

  /** The postmaster log from `offset` on, last lines only. */
  private async logTail(offset: number): Promise<string> {
    const handle = await open(this.logFile, 'r');
    try {
      const { size } = await handle.stat();
      const start = Math.max(offset, size - 64 * 1024);
      const buffer = Buffer.alloc(size - start);
      await handle.read(buffer, 0, buffer.length, start);
      return tailLines(buffer.toString('utf8'), LOG_TAIL_LINES) || '(the log is empty)';
    } finally {
      await handle.close();
    }
  }
}

/** How often a long copy reports how far it got. */
const PROGRESS_EVERY_MS = 5000;

/**
 * Turns the `--progress` lines of pg_basebackup and pg_rewind ("12345/67890 kB (18%)") into a
 * log line every few seconds, so an operator watching a clone or a rewind sees it move.
 */
export function progressReporter(logger: Logger, tool: string, now: () => number = () => performance.now()): (chunk: string) => void {
  let reportedAt = now();
  return (chunk) => {
    const matches = [...chunk.matchAll(/(\d+)\/(\d+) kB \((\d+)%\)/g)];
    const last = matches.at(-1);
    if (!last || now() - reportedAt < PROGRESS_EVERY_MS) return;
    reportedAt = now();
    logger.info({ copiedMB: Math.round(Number(last[1]) / 1024), totalMB: Math.round(Number(last[2]) / 1024), percent: Number(last[3]) }, `${tool} progress`);
  };
}

/**
 * Follows pg_rewind's stderr to tell whether it has begun to change the target. Until it reports
 * what it will copy it has only read (the source's file list, the target's WAL), so a failure up
 * to there leaves the data directory intact; after it, PostgreSQL's own advice holds: a target
 * whose rewind broke off needs a fresh copy.
 */
function rewindStageTracker(): { see(chunk: string): void; touchedTarget(): boolean } {
  let seen = '';
  let touched = false;
  return {
    see(chunk) {
      if (touched) return;
      seen = (seen + chunk).slice(-4096);
      touched = /need to copy|creating backup label|updating control file|syncing target data directory|Done!/.test(seen);
    },
    touchedTarget: () => touched,
  };
}
