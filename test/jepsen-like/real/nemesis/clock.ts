// A wall-clock jump on one node: its agent (and the PostgreSQL it started) sees Date.now() move by
// ±60 s to ±1 h at once, while CLOCK_MONOTONIC (performance.now(), timers, the fence's deadlines)
// goes on undisturbed, as when NTP steps a clock or an operator sets it. The agents run under
// libfaketime (AgentCluster's fakeClock option) and the offset file is rewritten. Whatever in the
// agent measures durations with the wall clock (a lease computed from Date.now(), a deadline in
// epoch milliseconds) is what this finds.
import type { Nemesis } from '../types.ts';
import { applyFault, primaryOrRandom, roleNote } from './common.ts';

/** Offsets drawn: 60 s to 3600 s, either sign. */
export const CLOCK_JUMP_RANGE_S: readonly [number, number] = [60, 3600];

export const clockJump: Nemesis = {
  name: 'clock-jump',
  description: "one node's wall clock jumps by ±60 s … ±1 h (the primary's with probability 1/2) while its monotonic clock does not; back at heal (needs a cluster started with fakeClock)",
  async inject(ctx) {
    const t = await primaryOrRandom(ctx);
    const size = ctx.rng.between(CLOCK_JUMP_RANGE_S[0], CLOCK_JUMP_RANGE_S[1]);
    const offset = ctx.rng.chance(0.5) ? size : -size;
    if (ctx.cluster.node(t.name).clockFile === null) throw new Error('clock-jump: the cluster was not started with fakeClock: true (libfaketime)');
    const sign = offset < 0 ? '-' : '+';
    return applyFault(
      ctx,
      { kind: 'clock-jump', targets: [t.name], detail: `wall clock of ${t.name}${roleNote(t)} ${sign}${Math.abs(offset)} s` },
      () => ctx.cluster.setClockOffset(t.name, offset),
      () => ctx.cluster.setClockOffset(t.name, 0),
    );
  },
};

export const CLOCK_NEMESES: readonly Nemesis[] = [clockJump];
