// The fault schedule of a real-process run, drawn from the seed: quiet, fault, quiet, fault, ...
// as Jepsen's start/stop cycles with 5–10 s gaps (jepsen.md §2). Faults are drawn by cycling
// through the nemesis list in a seeded shuffled order, so every listed nemesis is used once before
// any repeats. Pure: the same seed, list and duration give the same schedule; printed before the
// run so a failure can be replayed with --seed.
import { Prng } from '../sim/prng.ts';

export interface ScheduledFault {
  readonly index: number;
  readonly nemesis: string;
  /** Milliseconds from the start of the fault phase. */
  readonly startAt: number;
  readonly holdMs: number;
}

export interface Schedule {
  readonly seed: number;
  readonly durationMs: number;
  readonly faults: readonly ScheduledFault[];
  /** The quiet period after the last fault's end (the rest of the duration, at least the minimum quiet). */
  readonly tailQuietMs: number;
}

export interface ScheduleOptions {
  readonly seed: number;
  readonly nemeses: readonly string[];
  /** The fault phase's length: faults and the quiet periods between them. */
  readonly durationMs: number;
  readonly holdMs?: readonly [number, number];
  readonly quietMs?: readonly [number, number];
}

export const DEFAULT_HOLD_MS: readonly [number, number] = [5000, 15_000];
export const DEFAULT_QUIET_MS: readonly [number, number] = [5000, 10_000];

export function buildSchedule(opts: ScheduleOptions): Schedule {
  if (opts.nemeses.length === 0) throw new Error('buildSchedule: no nemesis to schedule');
  const [holdLo, holdHi] = opts.holdMs ?? DEFAULT_HOLD_MS;
  const [quietLo, quietHi] = opts.quietMs ?? DEFAULT_QUIET_MS;
  const rng = new Prng(opts.seed);
  const faults: ScheduledFault[] = [];
  let order: string[] = [];
  let t = 0;
  for (;;) {
    const quiet = rng.between(quietLo, quietHi);
    const hold = rng.between(holdLo, holdHi);
    // A fault fits only if a minimum quiet period follows it before the end; the first always runs.
    if (faults.length > 0 && t + quiet + hold + quietLo > opts.durationMs) break;
    if (order.length === 0) order = rng.shuffle(opts.nemeses);
    const nemesis = order.shift()!;
    faults.push({ index: faults.length, nemesis, startAt: t + quiet, holdMs: hold });
    t += quiet + hold;
  }
  return { seed: opts.seed, durationMs: opts.durationMs, faults, tailQuietMs: Math.max(quietLo, opts.durationMs - t) };
}

/** The schedule as printed before the run, one fault per line. */
export function describeSchedule(s: Schedule): string {
  const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const lines = [`schedule (seed ${s.seed}, ${sec(s.durationMs)} of faults and quiet periods):`];
  for (const f of s.faults) lines.push(`  ${String(f.index + 1).padStart(2)}. at +${sec(f.startAt).padStart(7)}  ${f.nemesis.padEnd(22)} held ${sec(f.holdMs)}`);
  lines.push(`  then quiet for ${sec(s.tailQuietMs)}, heal everything, wait for convergence, final reads`);
  return lines.join('\n');
}
