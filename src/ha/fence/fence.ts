// The agent's handle on its fence process (fence-process.ts): started once, told each new
// deadline, told to exit on a clean stop. Deadlines cross the process boundary as CLOCK_MONOTONIC
// milliseconds, which every process on the host reads alike (no wall clock involved).
//
// The watchdog device belongs to the fence process; this side only hears what became of it (its
// `watchdog` events) and, for watchdog mode `required`, tells the HA loop whether this member may
// lead (Patroni: "Not promoting self because watchdog could not be activated").
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { inspectDevice, requiredTimeout } from './watchdog.ts';
import type { WatchdogSettings } from './watchdog.ts';
import { deviceFs } from './device-fs.ts';

const FENCE_SCRIPT = join(import.meta.dirname, 'fence-process.ts');
// By URL, not by name: the agent may run from any working directory.
const TSX_LOADER = import.meta.resolve('tsx');
/**
 * After the fence process failed to activate the device while leading, required mode keeps this
 * member out of the race this long (the checks before the race do not open the device, so they
 * cannot see every cause, e.g. another process holding it).
 */
const FAILED_ACTIVATION_BLOCKS_MS = 10_000;

/** `performance.now()` milliseconds → CLOCK_MONOTONIC milliseconds. */
export function toMonotonicMs(perfMs: number): number {
  const nowMono = Number(process.hrtime.bigint() / 1_000_000n);
  return nowMono + (perfMs - performance.now());
}

/** off: not configured; idle: not open (not leading); active: open and fed; failed: the last activation or keepalive failed. */
export type WatchdogState = 'off' | 'idle' | 'active' | 'failed';

export interface FenceWatchdogOptions extends WatchdogSettings {
  /** The lease TTL in seconds, from which the longest usable device timeout follows. */
  readonly ttl: number;
}

export class Fence {
  private child: ChildProcess | null = null;
  private readonly dataDir: string;
  private readonly logger: Logger;
  private readonly watchdog: WatchdogSettings;
  /** The longest device timeout the lease allows, in seconds. */
  private readonly allowedS: number;
  private stopped = false;
  private lastLine = 'disarm';
  private state: WatchdogState;
  private lastFailure: { reason: string; at: number } | null = null;
  /** A disarm not yet sent: dropped if an arm follows in the same turn of the event loop. */
  private disarmPending = false;

  private constructor(dataDir: string, logger: Logger, watchdog: FenceWatchdogOptions) {
    this.dataDir = dataDir;
    this.logger = logger;
    this.watchdog = { mode: watchdog.mode, device: watchdog.device, safety_margin: watchdog.safety_margin };
    const required = requiredTimeout(watchdog.ttl, watchdog.safety_margin);
    this.allowedS = required.seconds;
    if (watchdog.mode !== 'off' && required.note) logger.info(required.note);
    this.state = watchdog.mode === 'off' ? 'off' : 'idle';
  }

  /** Starts the fence process and waits until it listens. Without `watchdog` the device is not used. */
  static async start(dataDir: string, logger: Logger, watchdog: FenceWatchdogOptions = { mode: 'off', device: '', safety_margin: 0, ttl: 0 }): Promise<Fence> {
    const fence = new Fence(dataDir, logger, watchdog);
    await fence.spawn();
    return fence;
  }

  private async spawn(): Promise<void> {
    const watchdogArgs = this.watchdog.mode === 'off' ? [] : [this.watchdog.mode, this.watchdog.device, String(this.allowedS)];
    // Its own process group: a signal to the agent's group (Ctrl-C) does not reach it.
    const child = spawn(process.execPath, ['--import', TSX_LOADER, FENCE_SCRIPT, this.dataDir, ...watchdogArgs], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    this.child = child;
    child.stdin!.on('error', () => undefined);
    await new Promise<void>((resolveReady, rejectReady) => {
      child.once('error', rejectReady);
      child.once('exit', (code) => rejectReady(new Error(`the fence process exited (${code}) before it was ready`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (!line) return;
        let event: Record<string, unknown> | null = null;
        try {
          event = JSON.parse(line) as Record<string, unknown>;
        } catch {
          // not one of ours; logged below
        }
        if (event?.event === 'ready') resolveReady();
        else if (event?.event === 'watchdog') this.onWatchdogEvent(event);
        else this.logger.warn({ fence: line }, 'fence process');
      });
    });
    child.removeAllListeners('exit');
    child.on('exit', (code, signal) => {
      if (this.stopped) return;
      this.logger.error({ code, signal }, 'the fence process died; starting a new one');
      // Its device (if open) was closed without the magic character and keeps counting: the
      // next `arm` reopens and feeds it from the new process.
      if (this.state === 'active') this.state = 'idle';
      void this.spawn().then(() => this.send(this.lastLine), (err: Error) => this.logger.error({ err: err.message }, 'cannot restart the fence process'));
    });
  }

  private onWatchdogEvent(event: Record<string, unknown>): void {
    const device = this.watchdog.device;
    if (event.state === 'active') {
      this.state = 'active';
      this.lastFailure = null;
      if (typeof event.warning === 'string') this.logger.warn({ device }, event.warning);
      else this.logger.info({ device, timeout: `<= ${this.allowedS} s` }, 'watchdog activated');
    } else if (event.state === 'failed') {
      const reason = typeof event.reason === 'string' ? event.reason : 'the watchdog failed';
      this.state = 'failed';
      this.lastFailure = { reason, at: performance.now() };
      if (this.watchdog.mode === 'required') this.logger.error({ device }, `${reason}; the watchdog is required, so this member gives up leadership`);
      else this.logger.warn({ device }, `${reason}; running without the watchdog`);
    } else if (event.state === 'closed') {
      this.state = 'idle';
      this.logger.info({ device }, 'watchdog disarmed (magic close)');
    }
  }

  /** What became of the watchdog device. */
  watchdogState(): WatchdogState {
    return this.state;
  }

  /**
   * Why this member may not lead, or null: only in required mode, when the device cannot be used
   * (checked without opening it) or the fence process failed to activate or feed it recently.
   */
  watchdogBlocksLeadership(): string | null {
    if (this.watchdog.mode !== 'required' || this.state === 'active') return null;
    if (this.lastFailure && performance.now() - this.lastFailure.at < FAILED_ACTIVATION_BLOCKS_MS) return this.lastFailure.reason;
    const verdict = inspectDevice('required', this.watchdog.device, this.allowedS, deviceFs);
    return verdict.usable ? null : verdict.reason;
  }

  /** PostgreSQL is stopped at `demoteByPerfMs` (performance.now() clock) unless re-armed or disarmed. */
  arm(demoteByPerfMs: number): void {
    this.disarmPending = false;
    this.send(`arm ${Math.floor(toMonotonicMs(demoteByPerfMs))}`);
  }

  /**
   * No deadline, and the watchdog closed. Sent a microtask later: the lease guard disarms before
   * each re-arm, and a disarm reaching the fence process between two arms would close and reopen
   * the device at every renewal (for the deadline alone it makes no difference).
   */
  disarm(): void {
    if (this.disarmPending) return;
    this.disarmPending = true;
    queueMicrotask(() => {
      if (!this.disarmPending) return;
      this.disarmPending = false;
      this.send('disarm');
    });
  }

  /** A clean stop: the fence exits without acting (and closes the watchdog device with the magic character). */
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
