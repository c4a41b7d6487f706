// What one run measured, from the writers' records alone (no I/O here: measure.test.ts feeds it
// made-up records). All times are the bench process's performance.now().
//
// - The new primary is the member of the first acknowledgement after the fault that only a
//   primary after the fault can have given: an acknowledgement from another member than the old
//   primary, or from the old primary on a connection opened after the fault (after kill -9 of
//   PostgreSQL alone, the old primary may be primary again once its PostgreSQL restarted; a
//   frozen or cut-off old primary goes on acknowledging on its existing connections, which says
//   nothing about who is primary after the fault).
// - The gap is fault → first such acknowledgement by the new primary, separately for the direct
//   writers and for the one through HAProxy.
// - Overlap (two members accepting writes at once) is judged as test/support/split-brain.ts judges
//   it: an acknowledgement by any member other than the new primary that arrived after the new
//   primary's first acknowledged write was *sent* means their commits may have overlapped in real
//   time; an acknowledgement by another member than the old primary before the fault is one too.
//   A write whose answer arrived before another was sent committed before it, so no overlap is
//   ever reported where there was none; one reported may be a near miss, hence the times.
// - Lost: acknowledged rows that the final primary does not have after recovery.

/** The writer that goes through HAProxy (the others are named after their member). */
export const HAPROXY_WRITER = 'haproxy';

export type Outcome = 'ok' | 'failed' | 'unknown';

export interface WriteRecord {
  readonly seq: number;
  /** The writer: a member's name, or HAPROXY_WRITER. */
  readonly via: string;
  /** Who acknowledged (through HAProxy: the member whose port answered); null unless ok. */
  node: string | null;
  readonly invokeAt: number;
  /** 0 while the statement is in flight. */
  doneAt: number;
  outcome: Outcome;
  /** When the writer began opening the connection this statement went over. */
  readonly connStartedAt: number;
  error?: string;
  /** A notice PostgreSQL sent during the statement (e.g. a canceled wait for a synchronous standby). */
  notice?: string;
}

export interface RunMeasure {
  newPrimary: string | null;
  /** Fault → first acknowledgement by the new primary to a direct writer. */
  gapMs: number | null;
  /** The same through HAProxy (null: no HAProxy, or none came). */
  gapViaHaproxyMs: number | null;
  /**
   * How long the new primary's first direct acknowledgement took from its statement being sent:
   * near 0 when the member was refusing writes until it could take them; long when the statement
   * was accepted and then waited (a commit waiting for a synchronous standby).
   */
  firstAckWaitMs: number | null;
  /** Fault → last acknowledgement by the old primary on a connection it had before the fault; null if none came after the fault. */
  oldLastAckMs: number | null;
  /**
   * What a client sees: from the old primary's last acknowledgement (on a connection opened before
   * the fault, before or after it) to the new primary's first, directly. docs/failover.md quotes
   * this "write gap" for the planned hand-overs.
   */
  writeGapMs: number | null;
  overlap: boolean;
  /** What overlapped, in words, with times relative to the fault. */
  overlapDetail: string | null;
  acked: number;
  failed: number;
  unknown: number;
  /**
   * Acknowledged although PostgreSQL canceled the commit's wait for the synchronous standby (it
   * says so in a WARNING: committed locally, maybe not replicated). In strict mode such a write
   * can be lost; it is counted in `acked` all the same, as the client got an acknowledgement.
   */
  ackedUnconfirmed: number;
}

/** An acknowledgement that only a primary after the fault can have given (see the file comment). */
export function primaryAfterFault(r: WriteRecord, faultAt: number, oldPrimary: string): boolean {
  return r.outcome === 'ok' && r.invokeAt >= faultAt && (r.node !== oldPrimary || r.connStartedAt >= faultAt);
}

function earliest(records: readonly WriteRecord[]): WriteRecord | null {
  let best: WriteRecord | null = null;
  for (const r of records) if (best === null || r.doneAt < best.doneAt) best = r;
  return best;
}

/** The first acknowledgement by a primary after the fault, direct or through HAProxy. */
export function firstNewAck(records: readonly WriteRecord[], faultAt: number, oldPrimary: string, via: 'direct' | 'haproxy' | 'any' = 'any'): WriteRecord | null {
  const ofVia = (r: WriteRecord) => via === 'any' || (via === 'haproxy') === (r.via === HAPROXY_WRITER);
  const first = earliest(records.filter((r) => primaryAfterFault(r, faultAt, oldPrimary)));
  if (first === null) return null;
  return earliest(records.filter((r) => ofVia(r) && r.node === first.node && primaryAfterFault(r, faultAt, oldPrimary)));
}

const ms = (t: number, faultAt: number): string => `${(t - faultAt).toFixed(0)} ms`;

export function measureRun(records: readonly WriteRecord[], faultAt: number, oldPrimary: string): RunMeasure {
  const first = firstNewAck(records, faultAt, oldPrimary);
  const newPrimary = first?.node ?? null;
  const direct = firstNewAck(records, faultAt, oldPrimary, 'direct');
  const viaHaproxy = firstNewAck(records, faultAt, oldPrimary, 'haproxy');
  const acked = records.filter((r) => r.outcome === 'ok');
  const oldAfter = acked.filter((r) => r.node === oldPrimary && r.connStartedAt < faultAt && r.doneAt >= faultAt);
  const oldLast = oldAfter.length > 0 ? Math.max(...oldAfter.map((r) => r.doneAt)) : null;
  const oldAll = acked.filter((r) => r.node === oldPrimary && r.connStartedAt < faultAt && r.via !== HAPROXY_WRITER);
  const oldLastEver = oldAll.length > 0 ? Math.max(...oldAll.map((r) => r.doneAt)) : null;

  const problems: string[] = [];
  const before = acked.filter((r) => r.node !== oldPrimary && r.doneAt < faultAt);
  if (before.length > 0) problems.push(`${describe(before[0])} acknowledged ${ms(before[0].doneAt, faultAt)} after the fault, while ${oldPrimary} was primary`);
  if (first !== null) {
    const late = acked.filter((r) => r.node !== newPrimary && r.doneAt > first.invokeAt);
    if (late.length > 0) {
      const last = late.reduce((a, b) => (b.doneAt > a.doneAt ? b : a));
      problems.push(`${describe(last)} acknowledged ${ms(last.doneAt, faultAt)} after the fault, after ${newPrimary}'s first acknowledged write was sent (${ms(first.invokeAt, faultAt)}; ${late.length} such)`);
    }
  }
  return {
    newPrimary,
    gapMs: direct ? direct.doneAt - faultAt : null,
    gapViaHaproxyMs: viaHaproxy ? viaHaproxy.doneAt - faultAt : null,
    firstAckWaitMs: direct ? direct.doneAt - direct.invokeAt : null,
    oldLastAckMs: oldLast === null ? null : oldLast - faultAt,
    writeGapMs: direct && oldLastEver !== null ? direct.doneAt - oldLastEver : null,
    overlap: problems.length > 0,
    overlapDetail: problems.length > 0 ? problems.join('; ') : null,
    acked: acked.length,
    failed: records.filter((r) => r.outcome === 'failed').length,
    unknown: records.filter((r) => r.outcome === 'unknown').length,
    ackedUnconfirmed: acked.filter((r) => r.notice !== undefined && /wait for synchronous replication/i.test(r.notice)).length,
  };
}

function describe(r: WriteRecord): string {
  return `${r.node ?? 'an unknown member'}${r.via === HAPROXY_WRITER ? ' (through HAProxy)' : ''}`;
}

/** Sequence numbers whose rows must be looked for on the final primary: acknowledged and unknown. */
export function seqsToCheck(records: readonly WriteRecord[]): number[] {
  return records.filter((r) => r.outcome !== 'failed').map((r) => r.seq);
}

/** Acknowledged rows missing on the final primary, and how many unknown ones committed after all. */
export function lostWrites(records: readonly WriteRecord[], present: ReadonlySet<number>): { lost: number[]; unknownCommitted: number } {
  return {
    lost: records.filter((r) => r.outcome === 'ok' && !present.has(r.seq)).map((r) => r.seq),
    unknownCommitted: records.filter((r) => r.outcome === 'unknown' && present.has(r.seq)).length,
  };
}

export interface Stats {
  n: number;
  min: number;
  median: number;
  max: number;
}

export function stats(xs: readonly (number | null)[]): Stats | null {
  const s = xs.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { n: s.length, min: s[0], median, max: s[s.length - 1] };
}
