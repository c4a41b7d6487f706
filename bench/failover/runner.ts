// One run of one scenario: writers on, the fault, the wait for the new primary, the fault held a
// little longer, recovery until the cluster is healthy again, writers off, then the rows checked
// on the final primary.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { sleep } from '../../test/support/processes.ts';
import { HAPROXY_WRITER, firstNewAck, lostWrites, measureRun, seqsToCheck } from './measure.ts';
import type { RunMeasure, WriteRecord } from './measure.ts';
import { SCENARIOS, pickCandidate } from './scenarios.ts';
import type { ScenarioName } from './scenarios.ts';
import { NAMES, healthy, query } from './session.ts';
import type { Session } from './session.ts';
import { TABLE, WriterSet } from './writer.ts';

/** No new primary within this long after the fault: the run failed. */
const NEW_PRIMARY_TIMEOUT_MS = 60_000;
/** From the start of recovery to a healthy cluster. */
const RECOVERY_TIMEOUT_MS = 180_000;
/**
 * The fault stays in place this long after the new primary's first acknowledgement, so that an
 * old primary that goes on accepting writes (frozen, cut off) is seen doing it: healing at once
 * would end its chance to, and hide the overlap.
 */
const HOLD_MS = 2000;
/** Acknowledged writes on the primary before the fault (1 s of writing at 20 ms). */
const WARMUP_ACKS = 50;

export interface RunResult extends Partial<RunMeasure> {
  scenario: ScenarioName;
  mode: string;
  run: number;
  oldPrimary: string;
  /** The old primary also led Raft: its loss costs an election on top (docs/failover.md). */
  oldLedRaft: boolean | null;
  candidate?: string;
  finalPrimary?: string;
  /** How long inject() took after the fault instant (spawning `ip`, for the partition). */
  injectMs?: number;
  recoveryMs?: number;
  lost?: number;
  /** The first few lost sequence numbers. */
  lostSeqs?: number[];
  unknownCommitted?: number;
  connectFailures?: Record<string, number>;
  /**
   * The bench's own event loop delay during the run (max, p99): answers are timestamped when the
   * bench gets to them, so a stalled bench (a loaded machine) makes every time here later by up to this.
   */
  benchLoopDelayMs?: { max: number; p99: number };
  /** The whole run, from the health check before it to the rows checked after it. */
  runMs?: number;
  /** Set when the run did not measure what it should (no new primary, the fault's operation failed...). */
  error?: string;
}

/** Thrown when the cluster could not be made healthy again: the session cannot go on. */
export class SessionBroken extends Error {}

export async function runOnce(s: Session, scenario: ScenarioName, run: number, log: (line: string) => void): Promise<RunResult> {
  const { c } = s;
  const startedAt = performance.now();
  const oldPrimary = await c.waitFor('a healthy cluster before the run', () => healthy(s), RECOVERY_TIMEOUT_MS, 100).catch((err: Error) => {
    throw new SessionBroken(err.message);
  });
  const oldLedRaft = await c.raftStatus(oldPrimary).then((st) => (st ? st.role === 'leader' : null));
  const candidate = await pickCandidate(c, NAMES, oldPrimary, s.mode === 'sync-strict');
  const result: RunResult = { scenario, mode: s.mode, run, oldPrimary, oldLedRaft, ...(scenario === 'switchover' ? { candidate } : {}) };
  const writers = new WriterSet(s.writerTargets(), () => s.nextSeq(), s.writerOptions());
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  writers.start();
  let faultAt = 0;
  try {
    const warm = await waitUntil(() => {
      const acked = writers.records().filter((r) => r.outcome === 'ok' && r.node === oldPrimary);
      return acked.filter((r) => r.via !== HAPROXY_WRITER).length >= WARMUP_ACKS && (!s.haproxy || acked.some((r) => r.via === HAPROXY_WRITER));
    }, 15_000);
    if (!warm) throw new Error(`the writers did not get ${WARMUP_ACKS} writes acknowledged by ${oldPrimary} within 15 s`);

    const fault = await SCENARIOS[scenario].inject({ c, lab: s.lab, primary: oldPrimary, candidate });
    faultAt = fault.faultAt;
    result.injectMs = fault.injectedAt - fault.faultAt;
    let faultError: string | null = null;
    void fault.settled.then((e) => (faultError = e));
    // Until the new primary acknowledged directly and (with HAProxy) through HAProxy.
    const found = await waitUntil(() => {
      if (faultError !== null) return true;
      const recs = writers.records();
      return firstNewAck(recs, faultAt, oldPrimary, 'direct') !== null && (!s.haproxy || firstNewAck(recs, faultAt, oldPrimary, 'haproxy') !== null);
    }, NEW_PRIMARY_TIMEOUT_MS);
    if (faultError !== null) result.error = faultError;
    else if (!found) result.error = firstNewAck(writers.records(), faultAt, oldPrimary, 'direct') ? `no write through HAProxy acknowledged by the new primary within ${NEW_PRIMARY_TIMEOUT_MS / 1000} s` : `no new primary acknowledged a write within ${NEW_PRIMARY_TIMEOUT_MS / 1000} s`;
    if (result.error === undefined) await sleep(HOLD_MS);

    const recoverAt = performance.now();
    try {
      await fault.recover();
      result.finalPrimary = await c.waitFor('a healthy cluster after recovery', () => healthy(s), RECOVERY_TIMEOUT_MS, 100);
    } catch (err) {
      throw new SessionBroken(`recovery after ${scenario} failed: ${(err as Error).message}`);
    }
    result.recoveryMs = performance.now() - recoverAt;
  } catch (err) {
    if (err instanceof SessionBroken) throw err;
    result.error = (err as Error).message;
  } finally {
    await writers.stop();
    loopDelay.disable();
  }
  result.benchLoopDelayMs = { max: loopDelay.max / 1e6, p99: loopDelay.percentile(99) / 1e6 };

  const records = writers.records();
  result.connectFailures = writers.connectFailures();
  if (faultAt > 0) {
    Object.assign(result, measureRun(records, faultAt, oldPrimary));
    if (!s.haproxy) delete result.gapViaHaproxyMs;
  }
  if (result.finalPrimary) {
    const fp = c.node(result.finalPrimary);
    const seqs = seqsToCheck(records);
    const rows = await query(fp.testHost, fp.pgPort, `select seq from ${TABLE} where seq = any($1::bigint[])`, [seqs], 30_000);
    if (rows === null) {
      result.error ??= `cannot read the rows back from ${result.finalPrimary}`;
    } else {
      const { lost, unknownCommitted } = lostWrites(records, new Set(rows.rows.map((r: { seq: string }) => Number(r.seq))));
      result.lost = lost.length;
      result.lostSeqs = lost.slice(0, 10);
      result.unknownCommitted = unknownCommitted;
    }
    if (result.newPrimary && result.newPrimary !== result.finalPrimary) result.error ??= `the primary changed again during recovery (${result.newPrimary} took over, ${result.finalPrimary} is primary after recovery)`;
  }
  result.runMs = performance.now() - startedAt;
  if (process.env.FAILOVER_BENCH_RECORDS) dumpRecords(process.env.FAILOVER_BENCH_RECORDS, result, records, faultAt, Object.fromEntries(NAMES.map((n) => [n, c.node(n).handle?.stdoutLines.slice(-500) ?? []])));
  log(describeRun(result));
  return result;
}

/**
 * FAILOVER_BENCH_RECORDS=<dir>: every run's records as JSON (times relative to the fault), with
 * the last log lines of each agent (of its current process), to look into a figure that seems off.
 */
function dumpRecords(dir: string, r: RunResult, records: readonly WriteRecord[], faultAt: number, agentLogs: Record<string, string[]>): void {
  mkdirSync(dir, { recursive: true });
  const rel = (t: number) => Math.round((t - faultAt) * 10) / 10;
  const rows = records.map((x) => ({ ...x, invokeAt: rel(x.invokeAt), doneAt: rel(x.doneAt), connStartedAt: rel(x.connStartedAt) }));
  writeFileSync(join(dir, `${r.mode}-${r.scenario}-${r.run}.json`), `${JSON.stringify({ result: r, records: rows, agentLogs }, null, 1)}\n`);
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

const sec = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `${(x / 1000).toFixed(2)} s`);

export function describeRun(r: RunResult): string {
  const parts = [
    `[${r.mode}] ${r.scenario} ${r.run}: ${r.oldPrimary}${r.oldLedRaft ? ' (Raft leader)' : ''} → ${r.newPrimary ?? '?'}`,
    `writes after ${sec(r.gapMs)}${r.firstAckWaitMs && r.firstAckWaitMs > 200 ? ` (that write waited ${sec(r.firstAckWaitMs)} for its commit)` : ''}`,
    ...(r.gapViaHaproxyMs !== undefined ? [`through HAProxy ${sec(r.gapViaHaproxyMs)}`] : []),
    `old primary's last ack ${r.oldLastAckMs === null || r.oldLastAckMs === undefined ? '—' : `+${sec(r.oldLastAckMs)}`}`,
    `write gap ${sec(r.writeGapMs)}`,
    `lost ${r.lost ?? '?'} of ${r.acked ?? '?'} acked${r.ackedUnconfirmed ? ` (${r.ackedUnconfirmed} acknowledged after a canceled wait for the synchronous standby)` : ''}`,
    `overlap ${r.overlap === undefined ? '?' : r.overlap ? `YES (${r.overlapDetail})` : 'no'}`,
    `recovered in ${sec(r.recoveryMs)} (run ${sec(r.runMs)})`,
    ...(r.benchLoopDelayMs && r.benchLoopDelayMs.max > 50 ? [`bench event loop stalled up to ${r.benchLoopDelayMs.max.toFixed(0)} ms (times less precise)`] : []),
  ];
  return parts.join(', ') + (r.error ? `; ERROR: ${r.error}` : '');
}
