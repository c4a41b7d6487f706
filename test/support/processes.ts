// Harness for tests (and the bench) that start real OS processes: free ports, readiness on a stdout
// line, and cleanup. Every process started here goes into one registry, so `stopAll()` in an
// `after()` hook or a `finally` leaves nothing running even when a test fails half-way, and a
// process 'exit' hook SIGKILLs whatever is still left. Processes are signalled by PID only.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartProcessOptions {
  cmd: string;
  args?: string[];
  cwd?: string;
  /** Merged over process.env; a value of undefined removes the variable. */
  env?: Record<string, string | undefined>;
  /** Used in error messages; defaults to the command and its last argument. */
  name?: string;
  /** The process is ready when this returns true for a stdout line. Without it, ready once spawned. */
  readyLine?: (line: string) => boolean;
  /** How long to wait for the ready line before killing the process; default 30 s. */
  timeoutMs?: number;
  /** How many stderr lines to keep for error messages; default 200. */
  stderrTailLines?: number;
}

/** The process exited, or never said it was ready. The message carries its stderr tail. */
export class ProcessStartError extends Error {
  readonly stderrTail: string;
  readonly exit: ExitInfo | null;

  constructor(message: string, stderrTail: string, exit: ExitInfo | null) {
    super(message);
    this.name = 'ProcessStartError';
    this.stderrTail = stderrTail;
    this.exit = exit;
  }
}

const MAX_STDOUT_LINES = 10_000;
const registry = new Set<ProcessHandle>();

export class ProcessHandle {
  readonly name: string;
  readonly pid: number;
  /** Every stdout line so far (the oldest are dropped past 10,000). */
  readonly stdoutLines: string[] = [];
  /** The line that made the process ready, if readyLine was given. */
  readyLineText: string | null = null;
  /** Set once the process has exited. */
  exit: ExitInfo | null = null;
  /** performance.now() at spawn and at exit, for error messages. */
  readonly startedAt = performance.now();
  exitedAt: number | null = null;
  private readonly tail: string[] = [];
  private readonly tailMax: number;
  private readonly exited: Promise<ExitInfo>;
  private readonly stdoutListeners = new Set<(line: string) => void>();

  constructor(name: string, child: ReturnType<typeof spawn>, tailMax: number) {
    if (child.pid === undefined) throw new Error(`${name}: no pid`);
    this.name = name;
    this.pid = child.pid;
    this.tailMax = tailMax;
    splitLines(child.stdout!, (line) => {
      this.stdoutLines.push(line);
      if (this.stdoutLines.length > MAX_STDOUT_LINES) this.stdoutLines.shift();
      for (const listener of this.stdoutListeners) listener(line);
    });
    splitLines(child.stderr!, (line) => {
      this.tail.push(line);
      if (this.tail.length > this.tailMax) this.tail.shift();
    });
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.exitedAt = performance.now();
        const info = { code, signal };
        // 'close' follows once stdout and stderr are drained, so the stderr tail is complete; a
        // grandchild holding the pipes open must not keep us waiting, hence the cap.
        const done = (): void => {
          if (this.exit) return;
          this.exit = info;
          this.exitedAt ??= performance.now();
          registry.delete(this);
          resolveExit(info);
        };
        child.once('close', done);
        setTimeout(done, 200).unref();
      });
    });
    registry.add(this);
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** The last stderr lines, joined. */
  stderrTail(): string {
    return this.tail.join('\n');
  }

  /** Sends `signal` to the PID. False if the process had already exited. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.exit) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
      throw err;
    }
  }

  /** Resolves on exit; with a timeout, rejects if the process is still running after it. */
  waitForExit(timeoutMs?: number): Promise<ExitInfo> {
    if (timeoutMs === undefined) return this.exited;
    return withTimeout(this.exited, timeoutMs, () => new Error(`${this.describe()}\nstill running after ${timeoutMs} ms`));
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 5000): Promise<ExitInfo> {
    if (this.exit) return this.exit;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Calls `listener` with each stdout line from now on; returns a function that unsubscribes. */
  onStdoutLine(listener: (line: string) => void): () => void {
    this.stdoutListeners.add(listener);
    return () => void this.stdoutListeners.delete(listener);
  }

  /** One paragraph for an error message: who, whether it runs, and its stderr tail. */
  describe(): string {
    const secs = (t: number): string => `${((t - this.startedAt) / 1000).toFixed(1)} s`;
    const now = performance.now();
    const state = this.exit
      ? `exited with ${formatExit(this.exit)} ${secs(this.exitedAt ?? now)} after start, ${((now - (this.exitedAt ?? now)) / 1000).toFixed(1)} s ago`
      : `running for ${secs(now)}`;
    const tail = this.tail.length > 0 ? this.stderrTail() : '(empty)';
    return `${this.name} (pid ${this.pid}, ${state})\n--- stderr tail of ${this.name} ---\n${tail}\n--- end of ${this.name} ---`;
  }
}

/** Starts a process and resolves once it printed its ready line; kills it and rejects otherwise. */
export async function startProcess(opts: StartProcessOptions): Promise<ProcessHandle> {
  installSafetyNet();
  const args = opts.args ?? [];
  const name = opts.name ?? [opts.cmd, args.at(-1)].filter(Boolean).join(' ');
  const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
  const child = spawn(opts.cmd, args, { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) {
    const err = await new Promise<Error>((resolveErr) => child.once('error', resolveErr));
    throw new ProcessStartError(`cannot start ${name}: ${err.message}`, '', null);
  }
  const handle = new ProcessHandle(name, child, opts.stderrTailLines ?? 200);
  const readyLine = opts.readyLine;
  if (!readyLine) return handle;

  const timeoutMs = opts.timeoutMs ?? 30_000;
  let unsubscribe = (): void => undefined;
  const ready = new Promise<void>((resolveReady, rejectReady) => {
    const check = (line: string): void => {
      if (handle.readyLineText !== null || !readyLine(line)) return;
      handle.readyLineText = line;
      resolveReady();
    };
    unsubscribe = handle.onStdoutLine(check);
    handle.stdoutLines.forEach(check);
    void handle.waitForExit().then((info) => rejectReady(new Error(`exited with ${formatExit(info)} before it was ready`)));
  });
  try {
    await withTimeout(ready, timeoutMs, () => new Error(`no ready line within ${timeoutMs} ms`));
    return handle;
  } catch (err) {
    handle.kill('SIGKILL');
    await handle.waitForExit();
    const stdout = handle.stdoutLines.slice(-20).join('\n') || '(empty)';
    throw new ProcessStartError(
      `${name}: ${(err as Error).message}\n${handle.describe()}\n--- stdout of ${name} ---\n${stdout}`,
      handle.stderrTail(),
      handle.exit,
    );
  } finally {
    unsubscribe();
  }
}

/** Every process started here that has not exited yet. */
export function runningProcesses(): ProcessHandle[] {
  return [...registry];
}

/** Stops every process started here: SIGTERM, then SIGKILL after `graceMs`. Never throws. */
export async function stopAll(graceMs = 3000): Promise<void> {
  await Promise.all([...registry].map((h) => h.stop(graceMs).catch(() => undefined)));
}

// ---------------------------------------------------------------------------------------------
// Ports. Binding port 0 asks the kernel for a free port; the servers stay open until all n are
// picked so the same port is not handed out twice. Test files run in parallel processes, so each
// port is also reserved with a lock file (owner PID inside) that other users of this module honour
// until we exit; a lock whose owner is dead is taken over.

const PORT_LOCK_DIR = join(tmpdir(), 'conclave-test-ports');
const ownPortLocks = new Set<number>();

export async function freePorts(n: number): Promise<number[]> {
  installSafetyNet();
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempts = 0; ports.length < n; attempts++) {
      if (attempts > 50 * n + 50) throw new Error(`freePorts: could not reserve ${n} ports (${ports.length} so far)`);
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolveListen, rejectListen) => {
        server.once('error', rejectListen);
        server.listen(0, '127.0.0.1', () => resolveListen());
      });
      const port = (server.address() as AddressInfo).port;
      if (!ports.includes(port) && lockPort(port)) ports.push(port);
    }
    return ports;
  } catch (err) {
    releasePorts(ports);
    throw err;
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolveClose) => s.close(resolveClose))));
  }
}

/**
 * Reserves these exact ports (for a test of configs that name fixed ports); throws naming the
 * first one that another test holds or something already listens on.
 */
export async function reservePorts(wanted: number[]): Promise<void> {
  installSafetyNet();
  const taken: number[] = [];
  try {
    for (const port of wanted) {
      if (!lockPort(port)) throw new Error(`port ${port} is reserved by another test`);
      taken.push(port);
      const server = createServer();
      await new Promise<void>((resolveListen, rejectListen) => {
        server.once('error', () => rejectListen(new Error(`port ${port} is in use (is \`npm start\` running?)`)));
        server.listen(port, '127.0.0.1', () => resolveListen());
      });
      await new Promise((resolveClose) => server.close(resolveClose));
    }
  } catch (err) {
    releasePorts(taken);
    throw err;
  }
}

/** Gives reserved ports back before this process exits (it happens on exit anyway). */
export function releasePorts(ports: Iterable<number>): void {
  for (const port of ports) {
    if (!ownPortLocks.delete(port)) continue;
    try {
      unlinkSync(join(PORT_LOCK_DIR, String(port)));
    } catch {
      // already gone
    }
  }
}

function lockPort(port: number): boolean {
  if (ownPortLocks.has(port)) return false;
  mkdirSync(PORT_LOCK_DIR, { recursive: true });
  const path = join(PORT_LOCK_DIR, String(port));
  for (let i = 0; i < 2; i++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      ownPortLocks.add(port);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (isAlive(Number(readOrEmpty(path)))) return false;
    try {
      unlinkSync(path); // stale: its owner is gone
    } catch {
      // someone else took it over first; the next openSync decides
    }
  }
  return false;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Whether a PID runs (signal 0 checks without sending anything). A zombie counts as dead: an orphan
 * killed after its parent exited waits for init to reap it, which can take seconds in a container.
 */
export function isAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // /proc/<pid>/stat: "pid (comm) state ..."; comm may contain spaces or parentheses.
  const stat = readOrEmpty(`/proc/${pid}/stat`);
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

// ---------------------------------------------------------------------------------------------
// Temporary directories.

export function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix.endsWith('-') ? prefix : `${prefix}-`));
}

/** Removes a directory made by makeTempDir; refuses anything outside the temp directory. */
export async function removeDir(dir: string): Promise<void> {
  const rel = relative(tmpdir(), resolve(dir));
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new Error(`removeDir: refusing ${dir}: not inside ${tmpdir()}`);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

// ---------------------------------------------------------------------------------------------
// Safety net: on exit, SIGKILL every child still running (exit handlers must be synchronous). On
// SIGINT/SIGTERM/SIGHUP, if nobody else handles the signal, do the same and die of the signal as
// before; a program with its own handler (the bench) does its own orderly shutdown instead. Such a
// handler must stay registered (process.on, not once): `once` removes itself before it runs, and
// this handler would then see itself alone and kill everything under the orderly shutdown.

let safetyNetInstalled = false;

function installSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  process.on('exit', () => {
    killAllNow();
    releasePorts([...ownPortLocks]);
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(signal) > 1) return;
      killAllNow();
      releasePorts([...ownPortLocks]);
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function killAllNow(): void {
  for (const handle of registry) {
    try {
      handle.kill('SIGKILL');
    } catch {
      // nothing more can be done while exiting
    }
  }
}

// ---------------------------------------------------------------------------------------------

function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  });
  stream.on('end', () => {
    if (partial !== '') onLine(partial);
    partial = '';
  });
}

export function formatExit(info: ExitInfo): string {
  return info.signal ? `signal ${info.signal}` : `code ${info.code}`;
}

/** Rejects with `onTimeout()` if `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, rejectTimeout) => {
    timer = setTimeout(() => rejectTimeout(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number): Promise<void> => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
