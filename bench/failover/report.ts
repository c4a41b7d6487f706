// The summary: a table with min / median / max per mode and scenario, and one JSON line with
// every run (for docs/failover.md and for comparing machines).
import { stats } from './measure.ts';
import type { Stats } from './measure.ts';
import type { IdleResult } from './idle.ts';
import type { Options } from './options.ts';
import type { RunResult } from './runner.ts';
import { SCENARIOS } from './scenarios.ts';
import type { ScenarioName } from './scenarios.ts';

export interface ScenarioSummary {
  runs: number;
  /** Runs that measured what they should. */
  ok: number;
  gapMs: Stats | null;
  gapViaHaproxyMs: Stats | null;
  oldLastAckMs: Stats | null;
  writeGapMs: Stats | null;
  /** Runs in which the old primary also led Raft (an election on top of the lease). */
  oldLedRaft: number;
  /** Runs whose first acknowledged write on the new primary had waited over 1 s for its commit. */
  slowFirstCommit: number;
  firstAckWaitMs: Stats | null;
  lost: number;
  acked: number;
  overlaps: number;
  errors: string[];
  /** The worst stall of the bench's own event loop in these runs (see RunResult.benchLoopDelayMs). */
  benchLoopDelayMaxMs: number | null;
}

export interface ModeReport {
  mode: string;
  bootstrapMs: Record<string, number>;
  scenarios: Partial<Record<ScenarioName, { summary: ScenarioSummary; runs: RunResult[] }>>;
  /** Scenarios not run, and why (no network namespaces, a broken cluster). */
  skipped: Partial<Record<ScenarioName, string>>;
  idle: IdleResult | null;
  idleError?: string;
}

export function summarize(runs: readonly RunResult[]): ScenarioSummary {
  return {
    runs: runs.length,
    ok: runs.filter((r) => !r.error).length,
    gapMs: stats(runs.map((r) => r.gapMs ?? null)),
    gapViaHaproxyMs: stats(runs.map((r) => r.gapViaHaproxyMs ?? null)),
    oldLastAckMs: stats(runs.map((r) => r.oldLastAckMs ?? null)),
    writeGapMs: stats(runs.map((r) => r.writeGapMs ?? null)),
    oldLedRaft: runs.filter((r) => r.oldLedRaft).length,
    slowFirstCommit: runs.filter((r) => (r.firstAckWaitMs ?? 0) > 1000).length,
    firstAckWaitMs: stats(runs.map((r) => r.firstAckWaitMs ?? null)),
    lost: runs.reduce((a, r) => a + (r.lost ?? 0), 0),
    acked: runs.reduce((a, r) => a + (r.acked ?? 0), 0),
    overlaps: runs.filter((r) => r.overlap).length,
    errors: runs.filter((r) => r.error).map((r) => `run ${r.run}: ${r.error}`),
    benchLoopDelayMaxMs: stats(runs.map((r) => r.benchLoopDelayMs?.max ?? null))?.max ?? null,
  };
}

const s = (x: number) => (x / 1000).toFixed(2);
const triple = (st: Stats | null) => (st ? `${s(st.min)} / ${s(st.median)} / ${s(st.max)}` : '—');

/** Violations of the two promises: any overlap; an acknowledged write lost in synchronous strict mode. */
export function violations(reports: readonly ModeReport[]): string[] {
  const out: string[] = [];
  for (const m of reports) {
    for (const [name, sc] of Object.entries(m.scenarios)) {
      if (!sc) continue;
      if (sc.summary.overlaps > 0) out.push(`[${m.mode}] ${name}: two members accepted writes at once in ${sc.summary.overlaps} run(s)`);
      if (m.mode === 'sync-strict' && sc.summary.lost > 0) out.push(`[${m.mode}] ${name}: ${sc.summary.lost} acknowledged write(s) lost`);
    }
  }
  return out;
}

export function table(reports: readonly ModeReport[], haproxy: boolean): string {
  const head = ['mode', 'scenario', 'runs ok', 'led Raft', 'fault → new primary acks, s (min / med / max)', ...(haproxy ? ['through HAProxy, s'] : []), 'old primary acks until', 'write gap', 'lost / acked', 'overlap'];
  const rows: string[][] = [];
  for (const m of reports) {
    for (const [name, sc] of Object.entries(m.scenarios)) {
      if (!sc) continue;
      const x = sc.summary;
      const med = (st: Stats | null, sign = '') => (st ? `${sign}${s(st.median)} med` : '—');
      rows.push([m.mode, name, `${x.ok}/${x.runs}`, `${x.oldLedRaft}/${x.runs}`, triple(x.gapMs), ...(haproxy ? [triple(x.gapViaHaproxyMs)] : []), med(x.oldLastAckMs, '+'), med(x.writeGapMs), `${x.lost} / ${x.acked}`, x.overlaps > 0 ? `YES (${x.overlaps})` : 'no']);
    }
    for (const [name, why] of Object.entries(m.skipped)) rows.push([m.mode, name, 'skipped', why ?? '']);
  }
  const widths = head.map((h, k) => Math.max(h.length, ...rows.filter((r) => r.length === head.length).map((r) => r[k].length)));
  const line = (r: string[]) => (r.length === head.length ? r.map((c, k) => c.padEnd(widths[k])).join('  ') : `${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r.slice(2).join(': ')}`).trimEnd();
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  out.push('', 'fault → new primary acks: from the fault (signal sent, link set down, switchover requested) to the first write the new primary acknowledged.');
  out.push('led Raft: runs in which the old primary also led Raft. old primary acks until: its last acknowledgement after the fault, on connections');
  out.push('it had before it. write gap: from that last acknowledgement (or the last before the fault) to the new primary\'s first, as a client sees it.');
  const shown = new Set(reports.flatMap((m) => [...Object.keys(m.scenarios), ...Object.keys(m.skipped)]));
  for (const [name, sc] of Object.entries(SCENARIOS)) if (shown.has(name)) out.push(`  ${name}: ${sc.title}`);
  for (const m of reports) {
    const boot = Object.entries(m.bootstrapMs).map(([k, v]) => `${k} ${s(v)} s`).join(', ');
    if (boot) out.push(`[${m.mode}] bootstrap of three members (to a primary and two streaming replicas): ${boot}`);
    const stall = stats(Object.values(m.scenarios).map((sc) => sc?.summary.benchLoopDelayMaxMs ?? null));
    if (stall) out.push(`[${m.mode}] the bench's own event loop stalled up to ${stall.max.toFixed(0)} ms during the runs (answers were timestamped late by up to that much)`);
    for (const [name, sc] of Object.entries(m.scenarios)) {
      const x = sc?.summary;
      if (x && x.slowFirstCommit > 0) out.push(`[${m.mode}] ${name}: in ${x.slowFirstCommit} of ${x.runs} run(s) the new primary's first acknowledged write had been accepted and waited for its commit (max ${s(x.firstAckWaitMs?.max ?? 0)} s)`);
      for (const e of x?.errors ?? []) out.push(`[${m.mode}] ${name}: ${e}`);
    }
    if (m.idleError) out.push(`[${m.mode}] idle: ${m.idleError}`);
    if (m.idle) out.push(...idleLines(m.mode, m.idle));
  }
  return out.join('\n');
}

function idleLines(mode: string, idle: IdleResult): string[] {
  const out: string[] = [];
  for (const [n, a] of Object.entries(idle.agents)) {
    const fence = a.fenceCpuSecondsPerMinute === null ? '' : `; its fence process RSS ${a.fenceRssMiB?.toFixed(0)} MiB, CPU ${a.fenceCpuSecondsPerMinute.toFixed(2)} s per minute`;
    out.push(`[${mode}] idle agent ${n}: RSS ${a.rssMiB.toFixed(0)} MiB, CPU ${a.cpuSecondsPerMinute.toFixed(2)} s per minute${fence}`);
  }
  out.push(`[${mode}] idle Raft writes: ${idle.raftWritesPerSecond === null ? '?' : idle.raftWritesPerSecond.toFixed(1)} per second (commit index growth of the leader over ${idle.seconds.toFixed(0)} s)`);
  const first = idle.samples[0];
  const last = idle.samples[idle.samples.length - 1];
  for (const [n, h] of Object.entries(idle.raftDirMaxBytes)) {
    const series = idle.samples.map((x) => (x.raftDirBytes[n] / 1024).toFixed(0)).join(' ');
    const f0 = first?.raftFirstIndex[n];
    const f1 = last?.raftFirstIndex[n];
    const compacted = f0 != null && f1 != null ? (f1 > f0 ? `the log was compacted (first index ${f0} → ${f1})` : `no compaction during the measurement (first index ${f1})`) : 'compaction unknown';
    out.push(`[${mode}] Raft data dir ${n}: KiB every 10 s: ${series}; max ${(h.firstHalf / 1024).toFixed(0)} KiB in the first half, ${(h.secondHalf / 1024).toFixed(0)} KiB in the second; ${last?.raftLogEntries[n] ?? '?'} log entries kept, ${compacted}`);
  }
  return out;
}

export function jsonLine(opts: Options, reports: readonly ModeReport[], totalMs: number, extra: Record<string, unknown>): string {
  return JSON.stringify({ bench: 'failover', options: opts, totalSeconds: Math.round(totalMs / 1000), ...extra, modes: reports });
}
