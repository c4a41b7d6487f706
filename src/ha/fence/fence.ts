// The agent's handle on its fence process (fence-process.ts): started once, told each new
// deadline, told to exit on a clean stop. Deadlines cross the process boundary as CLOCK_MONOTONIC
// milliseconds, which every process on the host reads alike (no wall clock involved).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Logger } from 'pino';

const FENCE_SCRIPT = join(import.meta.dirname, 'fence-process.ts');
// By URL, not by name: the agent may run from any working directory.
const TSX_LOADER = import.meta.resolve('tsx');

/** `performance.now()` milliseconds → CLOCK_MONOTONIC milliseconds. */
export function toMonotonicMs(perfMs: number): number {
  const nowMono = Number(process.hrtime.bigint() / 1_000_000n);
  return nowMono + (perfMs - performance.now());
}

export class Fence {
  private child: ChildProcess | null = null;
  private readonly dataDir: string;
  private readonly logger: Logger;
  private stopped = false;
  private lastLine = 'disarm';

  private constructor(dataDir: string, logger: Logger) {
    this.dataDir = dataDir;
    this.logger = logger;
  }

  /** Starts the fence process and waits until it listens. */
  static async start(dataDir: string, logger: Logger): Promise<Fence> {
    const fence = new Fence(dataDir, logger);
    await fence.spawn();
    return fence;
  }

  private async spawn(): Promise<void> {
    // Its own process group: a signal to the agent's group (Ctrl-C) does not reach it.
    const child = spawn(process.execPath, ['--import', TSX_LOADER, FENCE_SCRIPT, this.dataDir], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    this.child = child;
    child.stdin!.on('error', () => undefined);
    await new Promise<void>((resolveReady, rejectReady) => {
      child.once('error', rejectReady);
      child.once('exit', (code) => rejectReady(new Error(`the fence process exited (${code}) before it was ready`)));
      child.stdout!.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) {
          if (!line) continue;
          if (line.includes('"ready"')) resolveReady();
          else this.logger.warn({ fence: line }, 'fence process');
        }
      });
    });
    child.removeAllListeners('exit');
    child.on('exit', (code, signal) => {
      if (this.stopped) return;
      this.logger.error({ code, signal }, 'the fence process died; starting a new one');
      void this.spawn().then(() => this.send(this.lastLine), (err: Error) => this.logger.error({ err: err.message }, 'cannot restart the fence process'));
    });
  }

  /** PostgreSQL is stopped at `demoteByPerfMs` (performance.now() clock) unless re-armed or disarmed. */
  arm(demoteByPerfMs: number): void {
    this.send(`arm ${Math.floor(toMonotonicMs(demoteByPerfMs))}`);
  }

  disarm(): void {
    this.send('disarm');
  }

  /** A clean stop: the fence exits without acting. */
  stop(): void {
    this.stopped = true;
    this.send('exit');
    this.child?.stdin?.end();
  }

  private send(line: string): void {
    if (line !== 'exit') this.lastLine = line;
    this.child?.stdin?.write(`${line}\n`);
  }
}
