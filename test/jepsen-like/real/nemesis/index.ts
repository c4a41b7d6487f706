// Every nemesis of the real-process harness, by name: what the run draws from (types.ts: Nemesis).
import type { Nemesis } from '../types.ts';
import { CLOCK_NEMESES } from './clock.ts';
import { OPERATION_NEMESES } from './operations.ts';
import { PARTITION_NEMESES } from './partitions.ts';
import { PROCESS_NEMESES } from './processes.ts';

export const NEMESES: Record<string, Nemesis> = Object.fromEntries([...PARTITION_NEMESES, ...PROCESS_NEMESES, ...CLOCK_NEMESES, ...OPERATION_NEMESES].map((n) => [n.name, n]));

/** Fewest nodes a nemesis needs to do anything (a ring of 3 cuts nothing); 3 when not listed. */
export const MIN_NODES: Readonly<Record<string, number>> = { 'partition-ring': 4 };

/** Names of the nemeses that mean something on a cluster of `nodes` nodes (and, without fakeClock, not clock-jump). */
export function nemesesFor(nodes: number, opts: { fakeClock?: boolean } = {}): string[] {
  return Object.keys(NEMESES).filter((name) => nodes >= (MIN_NODES[name] ?? 3) && (opts.fakeClock === true || name !== 'clock-jump'));
}
