// Finding and signalling the postmaster of a data directory. Its PID is the first line of
// postmaster.pid, which outlives a crashed or SIGKILLed postmaster; so a PID counts only while a
// process with it lives and is a PostgreSQL server (a container restart easily hands the old PID
// to another program). Everything here is by PID: never by process name.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const PID_FILE = 'postmaster.pid';

/** The PID in postmaster.pid, or null if there is no such file or it holds no PID. */
export async function pidFromFile(dataDir: string): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(join(dataDir, PID_FILE), 'utf8');
  } catch {
    return null;
  }
  const pid = Number(text.split('\n', 1)[0]!.trim());
  // A standalone backend (postgres --single) writes its PID negated.
  return Number.isSafeInteger(pid) && pid !== 0 ? Math.abs(pid) : null;
}

/** The postmaster's PID if one runs on `dataDir`, else null. */
export async function livePostmasterPid(dataDir: string): Promise<number | null> {
  const pid = await pidFromFile(dataDir);
  return pid !== null && isPostgresAlive(pid) ? pid : null;
}

/** Alive, not a zombie, and (where /proc tells) a postgres binary. */
export function isPostgresAlive(pid: number): boolean {
  if (!isProcessAlive(pid)) return false;
  const stat = procStat(pid);
  if (stat === null) return true; // no /proc: trust kill(0)
  return /postgres|postmaster/.test(stat.comm);
}

/**
 * Whether the PID runs. A zombie counts as dead: a postmaster that exited waits as a zombie until
 * its parent (us, or init) reaps it, and it holds nothing any more.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const stat = procStat(pid);
  return stat === null || (stat.state !== 'Z' && stat.state !== 'X');
}

interface ProcStat {
  readonly comm: string;
  readonly state: string;
  readonly pgrp: number;
}

/** /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses. */
function procStat(pid: number): ProcStat | null {
  let text: string;
  try {
    // Synchronous on purpose: a tiny read from procfs, and callers poll it in a loop.
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const rest = text.slice(close + 2).split(' ');
  return { comm: text.slice(open + 1, close), state: rest[0] ?? '', pgrp: Number(rest[2]) };
}

/** Sends a signal; false if the process is gone. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/**
 * SIGKILL for a postmaster and its children. We start the postmaster as the leader of its own
 * process group, so killing the group takes the backends too; they would otherwise linger until
 * they notice their parent is gone, holding the shared memory a new postmaster needs.
 */
export function killWithChildren(pid: number): void {
  const stat = procStat(pid);
  if (stat?.pgrp === pid) {
    try {
      process.kill(-pid, 'SIGKILL');
      return;
    } catch {
      // fall through to the PID alone
    }
  }
  signal(pid, 'SIGKILL');
}

/** Polls until the PID is gone; true if it went within `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number, pollMs = 50): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (isProcessAlive(pid)) {
    if (performance.now() >= deadline) return false;
    await new Promise((resolveSleep) => setTimeout(resolveSleep, pollMs));
  }
  return true;
}
