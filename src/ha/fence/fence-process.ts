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
// argv: <data_dir>. Stopping = SIGQUIT to the postmaster named in <data_dir>/postmaster.pid, the
// immediate shutdown: every backend exits at once.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const dataDir = process.argv[2];
if (!dataDir) {
  process.stderr.write('fence: usage: fence-process <data_dir>\n');
  process.exit(2);
}

let deadline: number | null = null;
let timer: NodeJS.Timeout | null = null;
let agentGone = false;

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
  } else if (cmd === 'disarm') {
    deadline = null;
    schedule();
  } else if (cmd === 'exit') {
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
