// Failover times: not a checker but a measurement for the summary and the report. How long the
// clients' writes stopped after each fault, from the history alone (the same real-time order the
// checkers use).
import type { NemesisEvent, RunEvent } from '../types.ts';
import { inserts } from './common.ts';

export interface FailoverTime {
  readonly fault: string;
  readonly startedAt: number;
  /** The node that acknowledged the last write before the fault. */
  readonly before: string | null;
  /** The node whose acknowledgement ended the interruption, or null when none did in the window. */
  readonly after: string | null;
  /** From the fault's start to that acknowledgement; null when writes never stopped or never resumed. */
  readonly ms: number | null;
  readonly what: 'failover' | 'recovered' | 'uninterrupted' | 'not resumed' | 'no writes before';
}

/**
 * Per fault: from its start to the first acknowledgement by a different node than the primary before
 * it, or by the same node after a gap of at least `gapMs` without acknowledgements from it (it
 * recovered), looking no further than the next fault's start (or the end of the history).
 */
export function failoverTimes(history: readonly RunEvent[], gapMs = 1000): FailoverTime[] {
  const acked = inserts(history).filter((op) => op.outcome === 'ok').sort((a, b) => a.completedAt! - b.completedAt!);
  const starts = history.filter((e): e is NemesisEvent => e.type === 'nemesis' && e.phase === 'start');
  return starts.map((f, i) => {
    const until = i + 1 < starts.length ? starts[i + 1].at : Infinity;
    const last = acked.filter((op) => op.completedAt! <= f.at).at(-1);
    const kind = f.kind;
    if (last === undefined) return { fault: kind, startedAt: f.at, before: null, after: null, ms: null, what: 'no writes before' };
    // The gap counts from the fault's start at the earliest: a lull before it is not its doing.
    let prev = f.at;
    for (const op of acked) {
      if (op.completedAt! <= f.at) continue;
      if (op.completedAt! > until) break;
      if (op.node !== last.node) return { fault: kind, startedAt: f.at, before: last.node, after: op.node, ms: op.completedAt! - f.at, what: 'failover' };
      if (op.completedAt! - prev >= gapMs) return { fault: kind, startedAt: f.at, before: last.node, after: op.node, ms: op.completedAt! - f.at, what: 'recovered' };
      prev = op.completedAt!;
    }
    const resumed = acked.some((op) => op.completedAt! > f.at && op.completedAt! <= until);
    return { fault: kind, startedAt: f.at, before: last.node, after: null, ms: null, what: resumed ? 'uninterrupted' : 'not resumed' };
  });
}
