// What a run leaves behind: a text summary (printed), the whole record as JSON (history with each
// acknowledged insert's LSN and timeline, observations, store probes, samples, decisions,
// verdicts), and one self-contained HTML page: a timeline of operations per node with the fault
// windows shaded and the primary marked, and a latency plot over time (Jepsen's timeline and perf
// checkers, jepsen.md §4). Inline SVG, no scripts, no dependencies. (The agents' logs beside them,
// logs/<node>.log, are written while the run goes on: run/agent-logs.ts.)
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClientOp, NemesisEvent, ObservationEvent } from './types.ts';
import type { CheckResult, Verdict } from './checkers.ts';
import { describeSchedule } from './schedule.ts';
import type { RunResult } from './run.ts';

const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

export function verdictWord(v: Verdict): string {
  return v === true ? 'valid' : v === false ? 'VIOLATION' : 'unknown';
}

/** The text the CLI prints after a run. */
export function summaryText(r: RunResult, evidenceLines = 8): string {
  const o = r.options;
  const lines = [`run: ${o.nodes} nodes, mode ${o.mode}, seed ${o.seed}, nemeses ${o.nemeses.join(',')}, ${sec(r.durationMs)} in all`, 'checkers:'];
  for (const c of r.checks) {
    lines.push(`  ${c.name.padEnd(15)} ${verdictWord(c.valid).padEnd(9)} ${c.summary}`);
    for (const e of c.evidence.slice(0, evidenceLines)) lines.push(`      ${e.split('\n').join('\n      ')}`);
    if (c.evidence.length > evidenceLines) lines.push(`      ... ${c.evidence.length - evidenceLines} more (see the report)`);
  }
  const { ok, failed, unknown, lost } = r.counts;
  lines.push(`counts: ok ${ok}, failed ${failed}, unknown ${unknown}, lost ${lost ?? 'not known (no final primary read)'}`);
  lines.push('failover times (fault start on the run clock: interruption):');
  if (r.failovers.length === 0) lines.push('  (no faults)');
  for (const f of r.failovers) {
    const what = f.what === 'failover' ? `${f.before} → ${f.after} in ${sec(f.ms!)}` : f.what === 'recovered' ? `${f.before} took writes again after ${sec(f.ms!)}` : f.what;
    lines.push(`  +${sec(f.startedAt).padStart(7)}  ${f.fault.padEnd(22)} ${what}`);
  }
  const c = r.record.convergence;
  lines.push(c.convergedAt === null ? `convergence: NOT within ${sec(c.boundMs)}` : `convergence: ${sec(c.convergedAt - c.healedAt)} after the heal (bound ${sec(c.boundMs)})`);
  lines.push(`verdict: ${verdictWord(r.valid)}`);
  return lines.join('\n');
}

/** The record as plain JSON: commits folded into their inserts. */
export function toJson(r: RunResult): unknown {
  const history = r.record.history.map((e) => {
    const commit = e.type === 'client' ? r.record.commits.get(e.id) : undefined;
    return commit ? { ...e, lsn: commit.lsn, timeline: commit.timeline } : e;
  });
  return { ...r, record: { ...r.record, commits: undefined, history } };
}

export async function writeReport(r: RunResult, dir: string): Promise<{ json: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, 'history.json');
  const html = join(dir, 'report.html');
  await writeFile(json, JSON.stringify(toJson(r)));
  await writeFile(html, toHtml(r));
  return { json, html };
}

// ---------------------------------------------------------------------------------------------
// HTML

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLORS: Record<string, string> = { ok: '#2e7d32', fail: '#ef9a9a', unknown: '#f9a825' };
const W = 1200;
const LEFT = 90;
const RIGHT = 20;

interface Window {
  readonly kind: string;
  readonly detail: string;
  readonly from: number;
  readonly to: number;
}

/** Fault windows: each start paired with the next end of the same kind (or the end of the run). */
function faultWindows(r: RunResult): Window[] {
  const events = r.record.history.filter((e): e is NemesisEvent => e.type === 'nemesis');
  const out: Window[] = [];
  const open: NemesisEvent[] = [];
  for (const e of events) {
    if (e.phase === 'start') open.push(e);
    else {
      const i = open.findIndex((s) => s.kind === e.kind);
      if (i >= 0) out.push({ kind: e.kind, detail: open[i].detail, from: open[i].at, to: e.at });
      if (i >= 0) open.splice(i, 1);
    }
  }
  for (const s of open) out.push({ kind: s.kind, detail: s.detail, from: s.at, to: r.durationMs });
  return out;
}

function shading(windows: readonly Window[], x: (t: number) => number, top: number, height: number): string {
  return windows
    .map((w) => `<rect x="${x(w.from).toFixed(1)}" y="${top}" width="${Math.max(1, x(w.to) - x(w.from)).toFixed(1)}" height="${height}" fill="#90a4ae" fill-opacity="0.18"><title>${esc(`${w.kind}: ${w.detail} [${sec(w.from)} – ${sec(w.to)}]`)}</title></rect>` +
      `<text x="${(x(w.from) + 2).toFixed(1)}" y="${top + 10}" font-size="9" fill="#455a64">${esc(w.kind)}</text>`)
    .join('');
}

/** The plotted span: from a second before the first client operation (cluster start-up is left out) to the end. */
function span(r: RunResult): { from: number; x: (t: number) => number } {
  const first = r.record.history.find((e) => e.type === 'client');
  const from = Math.max(0, (first?.type === 'client' ? first.invokedAt : 0) - 1000);
  const width = Math.max(1, r.durationMs - from);
  return { from, x: (t: number) => LEFT + (Math.max(0, t - from) / width) * (W - LEFT - RIGHT) };
}

function axis(x: (t: number) => number, from: number, end: number, y: number): string {
  const step = end - from > 240_000 ? 30_000 : end - from > 60_000 ? 10_000 : 5000;
  const ticks: string[] = [];
  for (let t = Math.ceil(from / step) * step; t <= end; t += step) ticks.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${y}" y2="${y + 4}" stroke="#666"/><text x="${x(t)}" y="${y + 14}" font-size="9" text-anchor="middle">${t / 1000}s</text>`);
  return `<line x1="${LEFT}" x2="${W - RIGHT}" y1="${y}" y2="${y}" stroke="#666"/>${ticks.join('')}`;
}

/** Consecutive inserts of one client with one outcome, drawn as one bar (fewer elements, same picture). */
function runsOf(ops: readonly ClientOp[]): ClientOp[][] {
  const runs: ClientOp[][] = [];
  for (const op of ops) {
    const run = runs.at(-1);
    const prev = run?.at(-1);
    if (run && prev && prev.outcome === op.outcome && op.outcome !== 'unknown' && op.invokedAt - (prev.completedAt ?? prev.invokedAt) < 250) run.push(op);
    else runs.push([op]);
  }
  return runs;
}

function timeline(r: RunResult, windows: readonly Window[]): string {
  const end = r.durationMs;
  const { from: start, x } = span(r);
  const ops = r.record.history.filter((e): e is ClientOp => e.type === 'client' && e.f === 'insert');
  const clients = [...new Set(ops.map((o) => o.client))].sort();
  const laneH = 22;
  const top = 20;
  const height = top + clients.length * laneH + 30;
  const parts: string[] = [shading(windows, x, 0, height - 30)];
  const primaryObs = r.record.history.filter((e): e is ObservationEvent => e.type === 'observation' && e.what === 'primaries');
  // The status polls stop with the clients: the last observation holds until the last operation.
  // (A loop, not Math.max(...): a 30-minute run has more operations than a call has arguments.)
  const lastOp = ops.reduce((m, o) => Math.max(m, o.completedAt ?? o.invokedAt), 0);
  clients.forEach((client, i) => {
    const y = top + i * laneH;
    const mine = ops.filter((o) => o.client === client);
    const node = mine[0]?.node ?? '';
    parts.push(`<text x="4" y="${y + 12}" font-size="11">${esc(client)}</text>`);
    // Where this node answered as primary (from the status polls): a blue underline.
    primaryObs.forEach((o, k) => {
      const list = (o.data?.primaries ?? []) as string[];
      if (!list.includes(node)) return;
      const until = primaryObs[k + 1]?.at ?? Math.max(lastOp, o.at);
      parts.push(`<rect x="${x(o.at).toFixed(1)}" y="${y + 15}" width="${Math.max(1, x(until) - x(o.at)).toFixed(1)}" height="3" fill="#1565c0"><title>${esc(`${node} seen as primary from ${sec(o.at)}`)}</title></rect>`);
    });
    for (const run of runsOf(mine)) {
      const a = run[0];
      const b = run.at(-1)!;
      const from = a.invokedAt;
      const to = b.completedAt ?? end;
      const title = run.length === 1
        ? `#${a.id} insert ${a.value} ${a.outcome} [${sec(a.invokedAt)}, ${a.completedAt === null ? '…' : sec(a.completedAt)}]${a.error ? ` ${a.error}` : ''}`
        : `${run.length} inserts ${a.outcome} (${a.value}…${b.value}) [${sec(from)}, ${sec(to)}]${a.error ? ` e.g. ${a.error}` : ''}`;
      parts.push(`<rect x="${x(from).toFixed(1)}" y="${y + (a.outcome === 'unknown' ? 1 : 3)}" width="${Math.max(1, x(to) - x(from)).toFixed(1)}" height="${a.outcome === 'unknown' ? 12 : 10}" fill="${COLORS[a.outcome ?? 'unknown']}"><title>${esc(title)}</title></rect>`);
    }
  });
  const marks = r.record.history.filter((e): e is ObservationEvent => e.type === 'observation' && (e.what === 'healed' || e.what === 'converged' || e.what === 'not converged'));
  marks.forEach((o, k) => {
    const anchor = x(o.at) > W - 120 ? 'end' : 'start';
    parts.push(`<line x1="${x(o.at)}" x2="${x(o.at)}" y1="0" y2="${height - 30}" stroke="#6a1b9a" stroke-dasharray="3,2"/><text x="${x(o.at) + (anchor === 'end' ? -2 : 2)}" y="${10 + k * 10}" font-size="9" text-anchor="${anchor}" fill="#6a1b9a">${esc(o.what)}</text>`);
  });
  parts.push(axis(x, start, end, height - 28));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" font-family="sans-serif">${parts.join('')}</svg>`;
}

function latencyPlot(r: RunResult, windows: readonly Window[]): string {
  const end = r.durationMs;
  const { from: start, x } = span(r);
  const h = 260;
  const plotTop = 10;
  const plotH = h - 40;
  // Log scale from 1 ms to 10 s.
  const y = (ms: number): number => plotTop + plotH - (Math.log10(Math.min(10_000, Math.max(1, ms))) / 4) * plotH;
  const parts: string[] = [shading(windows, x, plotTop, plotH)];
  for (const ms of [1, 10, 100, 1000, 10_000]) {
    parts.push(`<line x1="${LEFT}" x2="${W - RIGHT}" y1="${y(ms)}" y2="${y(ms)}" stroke="#eee"/><text x="${LEFT - 4}" y="${y(ms) + 3}" font-size="9" text-anchor="end">${ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`}</text>`);
  }
  const ops = r.record.history.filter((e): e is ClientOp => e.type === 'client' && e.f === 'insert' && e.completedAt !== null);
  for (const outcome of ['fail', 'ok', 'unknown'] as const) {
    const pts = ops.filter((o) => o.outcome === outcome).map((o) => `M${x(o.invokedAt).toFixed(1)},${y(o.completedAt! - o.invokedAt).toFixed(1)}h0.1`);
    if (pts.length > 0) parts.push(`<path d="${pts.join('')}" stroke="${COLORS[outcome]}" stroke-width="3" stroke-linecap="round" fill="none"><title>${outcome}</title></path>`);
  }
  parts.push(`<text x="4" y="${plotTop + 10}" font-size="11">latency</text>`);
  parts.push(axis(x, start, end, plotTop + plotH + 2));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" font-family="sans-serif">${parts.join('')}</svg>`;
}

function checkRows(checks: readonly CheckResult[]): string {
  return checks
    .map((c) => {
      const color = c.valid === true ? '#2e7d32' : c.valid === false ? '#c62828' : '#f9a825';
      const evidence = c.evidence.length === 0 ? '' : `<details><summary>${c.evidence.length} lines of evidence</summary><pre>${esc(c.evidence.join('\n'))}</pre></details>`;
      return `<tr><td>${esc(c.name)}</td><td style="color:${color};font-weight:bold">${verdictWord(c.valid)}</td><td>${esc(c.summary)}${evidence}</td></tr>`;
    })
    .join('');
}

export function toHtml(r: RunResult): string {
  const windows = faultWindows(r);
  const o = r.options;
  const title = `Conclave jepsen-like run: seed ${o.seed}, ${o.mode}, ${verdictWord(r.valid)}`;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:16px;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:13px}pre{font-size:12px;white-space:pre-wrap}.legend span{display:inline-block;width:12px;height:10px;margin:0 4px 0 12px}</style>
</head><body>
<h1>${esc(title)}</h1>
<p>${o.nodes} nodes, nemeses ${esc(o.nemeses.join(', '))}, ${o.timeSec} s of faults, started ${esc(r.startedAtWall)}, ${sec(r.durationMs)} in all.
Counts: ok ${r.counts.ok}, failed ${r.counts.failed}, unknown ${r.counts.unknown}, lost ${r.counts.lost ?? '?'}.</p>
<h2>Checkers</h2><table><tr><th>checker</th><th>verdict</th><th>summary</th></tr>${checkRows(r.checks)}</table>
<h2>Timeline</h2>
<p class="legend">Inserts per client:<span style="background:${COLORS.ok}"></span>ok<span style="background:${COLORS.fail}"></span>fail<span style="background:${COLORS.unknown}"></span>unknown<span style="background:#1565c0"></span>node seen as primary<span style="background:#90a4ae;opacity:.4"></span>fault in force</p>
${timeline(r, windows)}
<h2>Latency</h2>
${latencyPlot(r, windows)}
<h2>Schedule and summary</h2><pre>${esc(describeSchedule(r.schedule))}\n\n${esc(summaryText(r, 50))}</pre>
</body></html>
`;
}
