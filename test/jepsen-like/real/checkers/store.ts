// Checker (4): the cluster store (I5). Linearizable register operations, the leader key's observed
// history only moving forward, and Raft election safety as the members reported it. Its input is
// what the run's observers recorded (run/observers.ts): store probes and /v1/status samples.
import { describeOperation } from '../../checker/history.ts';
import { checkLinearizable } from '../../checker/linearizability.ts';
import { MAX_EVIDENCE, secs } from './common.ts';
import type { CheckResult, RaftSample, RunRecord, StoreOp } from './record.ts';

/**
 * Probe operations (put/get/cas on keys of their own) go through the WGL checker. Reads of the
 * leader key carry its modRevision: one revision must always hold one value, and a read invoked
 * after another completed must not see an older revision (the key's history, observed through
 * linearizable reads, only moves forward). /v1/status samples: at most one leader per term.
 */
export function checkStore(r: RunRecord): CheckResult {
  const name = 'store';
  const evidence: string[] = [];
  const probes = r.storeOps.filter((op) => op.key !== r.leaderKey);
  const lin = checkLinearizable(probes);
  if (lin.valid === false) evidence.push(`probe operations not linearizable: ${lin.evidence}`);

  const reads = r.storeOps.filter((op) => op.key === r.leaderKey && op.kind === 'get' && op.outcome === 'ok' && op.modRevision !== undefined);
  const valueAt = new Map<number, StoreOp>();
  for (const op of reads) {
    const seen = valueAt.get(op.modRevision!);
    if (seen === undefined) valueAt.set(op.modRevision!, op);
    else if (seen.result?.value !== op.result?.value) {
      evidence.push(`leader key revision ${op.modRevision} read as two values: ${describeStoreOp(seen)} and ${describeStoreOp(op)}`);
    }
  }
  const byCompletion = reads.slice().sort((a, b) => a.completeTime! - b.completeTime!);
  const byInvocation = reads.slice().sort((a, b) => a.invokeTime - b.invokeTime);
  let k = 0;
  let newest: StoreOp | null = null;
  let regressions = 0;
  for (const op of byInvocation) {
    while (k < byCompletion.length && byCompletion[k].completeTime! < op.invokeTime) {
      if (newest === null || byCompletion[k].modRevision! > newest.modRevision!) newest = byCompletion[k];
      k++;
    }
    if (newest !== null && op.modRevision! < newest.modRevision!) {
      if (++regressions <= MAX_EVIDENCE) evidence.push(`stale leader key read: ${describeStoreOp(op)} was invoked after ${describeStoreOp(newest)} completed`);
    }
  }

  const leaderOfTerm = new Map<number, RaftSample>();
  let splitTerms = 0;
  for (const s of r.raftSamples) {
    if (s.role !== 'leader') continue;
    const other = leaderOfTerm.get(s.term);
    if (other === undefined) leaderOfTerm.set(s.term, s);
    else if (other.node !== s.node && ++splitTerms <= MAX_EVIDENCE) {
      evidence.push(`two leaders in Raft term ${s.term}: ${other.node} at ${secs(other.at)} and ${s.node} at ${secs(s.at)}`);
    }
  }

  const okProbes = probes.filter((op) => op.outcome === 'ok').length;
  const summary = `${probes.length} probe ops (${okProbes} ok) ${lin.valid === true ? 'linearizable' : lin.valid === false ? 'NOT linearizable' : 'not decided'}; ` +
    `${reads.length} leader key reads (${valueAt.size} revisions, ${regressions} stale); ${leaderOfTerm.size} Raft terms with a leader seen, ${splitTerms} with two`;
  if (evidence.length > 0) return { name, valid: false, summary, evidence };
  if (lin.valid === 'unknown') return { name, valid: 'unknown', summary, evidence: [lin.reason] };
  return { name, valid: true, summary, evidence: [] };
}

function describeStoreOp(op: StoreOp): string {
  return `${describeOperation(op)} via ${op.member}${op.modRevision !== undefined ? ` (revision ${op.modRevision})` : ''}`;
}
