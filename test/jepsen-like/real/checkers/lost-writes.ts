// Checker (1): lost acknowledged writes (set-full, jepsen.md §4; I2 and I3). Every value the
// clients inserted and saw acknowledged is looked for in the final primary's read. The run also
// counts the lost writes for its summary (lostWrites), whatever the mode allows.
import type { ClientOp } from '../types.ts';
import { MAX_EVIDENCE, describeInsert, finalPrimary, groupReigns, inserts, lastReads, limited } from './common.ts';
import type { CheckResult, RunRecord } from './record.ts';

function primaryRead(r: RunRecord): ClientOp | undefined {
  const primary = finalPrimary(r.convergence);
  return lastReads(r.history).find((op) => op.node === primary && op.outcome === 'ok' && op.readValues !== undefined);
}

/** Acknowledged inserts missing from the final primary's read; null when there is no such read. */
export function lostWrites(r: RunRecord): ClientOp[] | null {
  const read = primaryRead(r);
  if (read === undefined) return null;
  const present = new Set(read.readValues);
  return inserts(r.history).filter((op) => op.outcome === 'ok' && !present.has(op.value!));
}

/**
 * Sync-strict: every `ok` insert must be in the final primary's read. Async: lost `ok` inserts are
 * allowed, but each must lie within maximum_lag_on_failover (+ slack) bytes of WAL past the last
 * write of the same primary reign that survived (an estimate of the promotion point). In both
 * modes a value nobody inserted, or a `fail` insert that is present, is a violation.
 */
export function checkLostWrites(r: RunRecord): CheckResult {
  const name = 'lost-writes';
  const primary = finalPrimary(r.convergence);
  const read = primaryRead(r);
  if (primary === null || read === undefined) {
    return { name, valid: 'unknown', summary: `no final read from a primary (final primary: ${primary ?? 'none'}); lost writes cannot be counted`, evidence: [] };
  }
  const present = new Set(read.readValues);
  const ops = inserts(r.history);
  const byValue = new Map(ops.map((op) => [op.value, op]));
  const acked = ops.filter((op) => op.outcome === 'ok');
  const lost = acked.filter((op) => !present.has(op.value!));
  const unexpected = [...present].filter((v) => !byValue.has(v));
  const failedPresent = ops.filter((op) => op.outcome === 'fail' && present.has(op.value!));
  const unknown = ops.filter((op) => op.outcome === 'unknown');
  const unknownPresent = unknown.filter((op) => present.has(op.value!)).length;
  const evidence: string[] = [];
  for (const v of unexpected.slice(0, MAX_EVIDENCE)) evidence.push(`value ${v} is in ${primary}'s final read but was never inserted`);
  for (const op of failedPresent.slice(0, MAX_EVIDENCE)) evidence.push(`failed insert is present in ${primary}'s final read: ${describeInsert(op, r.commits.get(op.id))} (${op.error ?? ''})`);
  const counts = `${acked.length} acknowledged, ${lost.length} lost; ${unknown.length} unknown (${unknownPresent} present); final primary ${primary}`;
  const bad = unexpected.length > 0 || failedPresent.length > 0;

  if (r.mode === 'sync-strict') {
    for (const op of lost.slice(0, MAX_EVIDENCE)) evidence.push(`lost: ${describeInsert(op, r.commits.get(op.id))}`);
    if (lost.length > MAX_EVIDENCE) evidence.push(`... ${lost.length - MAX_EVIDENCE} more lost`);
    const valid = lost.length === 0 && !bad;
    return { name, valid, summary: `${counts}; synchronous strict mode allows no loss`, evidence: valid ? [] : evidence };
  }

  // Async: how far past the (estimated) promotion point each lost write lies.
  const bound = r.maximumLagOnFailover + r.lagSlackBytes;
  const reigns = groupReigns(acked, r.commits);
  let worst = 0;
  const beyond: string[] = [];
  for (const reign of reigns) {
    const lostHere = reign.acks.filter((op) => !present.has(op.value!));
    if (lostHere.length === 0) continue;
    const survivors = reign.acks.filter((op) => present.has(op.value!)).map((op) => r.commits.get(op.id)!.lsn);
    const firstLost = lostHere.reduce((m, op) => Math.min(m, r.commits.get(op.id)!.lsn), Infinity);
    for (const op of lostHere) {
      const lsn = r.commits.get(op.id)!.lsn;
      const before = survivors.filter((s) => s < lsn);
      const from = before.length > 0 ? before.reduce((m, v) => Math.max(m, v), -Infinity) : firstLost;
      const excess = lsn - from;
      worst = Math.max(worst, excess);
      if (excess > bound) beyond.push(`lost ${excess} bytes past ${reign.node}'s last surviving write: ${describeInsert(op, r.commits.get(op.id))}`);
    }
  }
  evidence.push(...limited(beyond.slice(0, MAX_EVIDENCE), beyond.length));
  const valid = beyond.length === 0 && !bad;
  const summary = `${counts}; asynchronous mode: loss bounded by maximum_lag_on_failover ${r.maximumLagOnFailover} + slack ${r.lagSlackBytes} bytes, worst lost write ${worst} bytes past its primary's last surviving write`;
  return { name, valid, summary, evidence: valid ? [] : evidence };
}
