// The fence: a small process of its own, started by the agent, that stops PostgreSQL when the
// agent misses its deadline. The agent's own lease guard is a timer inside the agent; if the
// agent is frozen (SIGSTOP, a stalled VM) or killed, that timer never fires and PostgreSQL would
// go on accepting writes after another member may have been promoted. This process is not frozen
// with the agent, so it acts for it.
//
// Protocol, one line each on stdin:
//   arm <deadline>   stop PostgreSQL at <deadline> (CLOCK_MONOTONIC milliseconds, shared by every
//                    process on the host) unless re-armed later or disarmed first
//   disarm           no deadline (this agent holds no lease)
//   exit             disarm and exit (a clean agent stop)
// stdin closing (the agent died) keeps the deadline in force: PostgreSQL stops at it, then we exit.
// argv: <data_dir> [<watchdog mode> <watchdog device> <longest device timeout, s>]. Stopping =
// SIGQUIT to the postmaster named in <data_dir>/postmaster.pid, the immediate shutdown: every
// backend exits at once.
//
// The watchdog device (watchdog.ts), when its mode is not off, is ours too: this process outlives
// a frozen agent, and a device closed without the magic character keeps counting. The first `arm`
// of a leadership opens it, every `arm` feeds it, `disarm` and `exit` close it with the magic
// character. When stdin closes it stays open and unfed: the kernel resets the machine. Its timeout
// cannot be set from Node (no ioctl); the operator sets it when loading the driver, e.g.
// `modprobe softdog soft_margin=1`, and a device whose timeout is too long is not used.
import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { inspectDevice } from './watchdog.ts';
import { deviceFs } from './device-fs.ts';

const [dataDir, watchdogMode = 'off', watchdogDevice = '', allowedArg = ''] = process.argv.slice(2);
const allowedS = Number(allowedArg);
const watchdogOk = watchdogMode === 'off' || ((watchdogMode === 'automatic' || watchdogMode === 'required') && watchdogDevice !== '' && Number.isInteger(allowedS) && allowedS > 0);
if (!dataDir || !watchdogOk) {
  process.stderr.write('fence: usage: fence-process <data_dir> [off|automatic|required <device> <seconds>]\n');
  process.exit(2);
}

let deadline: number | null = null;
let timer: NodeJS.Timeout | null = null;
let agentGone = false;
/** The open watchdog device, while this member leads and the device is in use. */
let watchdogFd: number | null = null;
/** Activation was attempted in this leadership (since the last disarm): not retried every renewal. */
let watchdogTried = false;

const nowMs = (): number => Number(process.hrtime.bigint() / 1_000_000n);

// Once the agent is gone, so is the reader of our stdout: a write then fails with EPIPE, which
// must not end this process before it has done its one job.
process.stdout.on('error', () => undefined);

function say(event: string, extra: Record<string, unknown> = {}): void {
  if (agentGone) return;
  process.stdout.write(`${JSON.stringify({ event, ...extra })}\n`);
}

function postmasterPid(): number | null {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function fire(): void {
  timer = null;
  if (deadline === null) return;
  const late = nowMs() - deadline;
  if (late < 0) return schedule();
  deadline = null;
  const pid = postmasterPid();
  let signalled = false;
  if (pid !== null) {
    try {
      process.kill(pid, 'SIGQUIT');
      signalled = true;
    } catch {
      // not running
    }
  }
  say('fenced', { pid, signalled, lateMs: late });
  if (agentGone) process.exit(0);
}

/** Opens the device and gives it its first keepalive, if its mode and timeout allow. */
function activateWatchdog(): void {
  watchdogTried = true;
  if (watchdogMode === 'off') return;
  const verdict = inspectDevice(watchdogMode as 'automatic' | 'required', watchdogDevice, allowedS, deviceFs);
  if (!verdict.usable) return say('watchdog', { state: 'failed', device: watchdogDevice, reason: verdict.reason });
  try {
    // Not 'w': that would create a regular file where the device is missing. O_NONBLOCK: a FIFO
    // standing in for the device (tests) must not block this process.
    watchdogFd = openSync(watchdogDevice, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (err) {
    return say('watchdog', { state: 'failed', device: watchdogDevice, reason: `cannot open the watchdog device ${watchdogDevice}: ${(err as Error).message}` });
  }
  if (feedWatchdog()) say('watchdog', { state: 'active', device: watchdogDevice, warning: verdict.warning });
}

/** A keepalive (any write; '1' as Patroni writes). False when the device refused it (then closed). */
function feedWatchdog(): boolean {
  if (watchdogFd === null) return false;
  try {
    writeSync(watchdogFd, '1');
    return true;
  } catch (err) {
    closeWatchdog();
    say('watchdog', { state: 'failed', device: watchdogDevice, reason: `cannot feed the watchdog device ${watchdogDevice}: ${(err as Error).message}` });
    return false;
  }
}

/** The magic close: 'V', then close, tells the driver to stop counting (unless built with nowayout). */
function closeWatchdog(): boolean {
  if (watchdogFd === null) return false;
  const fd = watchdogFd;
  watchdogFd = null;
  try {
    writeSync(fd, 'V');
  } catch {
    // closed below all the same
  }
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
  return true;
}

function disarmWatchdog(): void {
  watchdogTried = false;
  if (closeWatchdog()) say('watchdog', { state: 'closed', device: watchdogDevice });
}

function schedule(): void {
  if (timer) clearTimeout(timer);
  timer = null;
  if (deadline === null) return;
  timer = setTimeout(fire, Math.max(0, deadline - nowMs()));
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === 'arm' && Number.isFinite(Number(arg))) {
    deadline = Number(arg);
    schedule();
    if (watchdogFd !== null) feedWatchdog();
    else if (!watchdogTried) activateWatchdog();
  } else if (cmd === 'disarm') {
    deadline = null;
    schedule();
    disarmWatchdog();
  } else if (cmd === 'exit') {
    closeWatchdog();
    process.exit(0);
  } else if (cmd) {
    say('bad-command', { line });
  }
});
lines.on('close', () => {
  agentGone = true;
  if (deadline === null) process.exit(0);
});
// Terminal signals are the agent's business, not ours: only `exit` or the deadline end us.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
say('ready');
