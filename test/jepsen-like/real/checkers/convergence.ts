// Checker (3): convergence after the heal (I4). convergenceProblems() is also what the run's waits
// poll with (run/readiness.ts), so "ready to start from" and "converged" mean the same thing.
import { finalPrimary, lastReads, secs } from './common.ts';
import type { CheckResult, ConvergenceSnapshot, RunRecord } from './record.ts';

/** What keeps a snapshot from being converged; empty when it is. */
export function convergenceProblems(s: ConvergenceSnapshot): string[] {
  const problems: string[] = [];
  const primaries = s.nodes.filter((n) => n.role === 'primary');
  if (primaries.length !== 1) problems.push(`${primaries.length} primaries (${primaries.map((n) => n.name).join(', ') || 'none'})`);
  const primary = primaries.length === 1 ? primaries[0] : null;
  for (const n of s.nodes) {
    if (n.role === null) problems.push(`${n.name}: PostgreSQL does not answer`);
    if (primary === null || n === primary || n.role !== 'replica') continue;
    if (n.receiver?.status !== 'streaming') problems.push(`${n.name}: not streaming (${n.receiver?.status ?? 'no WAL receiver'})`);
    else if (n.receiver.upstream !== primary.address) problems.push(`${n.name}: streams from ${n.receiver.upstream}, not from ${primary.name} (${primary.address})`);
    if (n.timeline !== primary.timeline) problems.push(`${n.name}: on timeline ${n.timeline}, the primary on ${primary.timeline}`);
  }
  if (primary !== null && s.leaderKey !== primary.name) problems.push(`the leader key names ${s.leaderKey ?? 'nobody'}, the primary is ${primary.name}`);
  const raft = s.nodes.map((n) => n.raft);
  if (raft.some((x) => x === null)) problems.push(`Raft status missing from ${s.nodes.filter((n) => n.raft === null).map((n) => n.name).join(', ')}`);
  const answered = raft.filter((x): x is NonNullable<typeof x> => x !== null);
  const leaders = new Set(answered.map((x) => x.leader));
  if (leaders.size > 1 || leaders.has(null)) problems.push(`Raft members disagree on the leader: ${s.nodes.map((n) => `${n.name}→${n.raft?.leader ?? '?'}`).join(' ')}`);
  const voters = new Set(answered.map((x) => [...x.voters].sort().join(',')));
  if (voters.size > 1) problems.push(`Raft members disagree on the voters: ${s.nodes.map((n) => `${n.name}:[${n.raft?.voters.join(',') ?? '?'}]`).join(' ')}`);
  return problems;
}

/** Converged within the bound (one primary, everyone streaming from it, leader key and Raft agreeing), and every final read equal. */
export function checkConvergence(r: RunRecord): CheckResult {
  const name = 'convergence';
  const c = r.convergence;
  const evidence: string[] = [];
  if (c.convergedAt === null) {
    evidence.push(`not converged ${secs(c.boundMs)} after the heal; last snapshot at +${secs((c.last?.at ?? c.healedAt) - c.healedAt)}:`);
    evidence.push(...(c.last ? convergenceProblems(c.last) : ['no snapshot taken']).map((p) => `  ${p}`));
    return { name, valid: false, summary: `no convergence within ${secs(c.boundMs)} of the heal`, evidence };
  }
  const primary = finalPrimary(c);
  const reads = lastReads(r.history);
  const reference = reads.find((op) => op.node === primary && op.outcome === 'ok');
  for (const op of reads) {
    if (op.outcome !== 'ok' || op.readValues === undefined) {
      evidence.push(`final read on ${op.node} failed: ${op.error ?? op.outcome}`);
      continue;
    }
    if (reference === undefined || op === reference) continue;
    const mine = new Set(op.readValues);
    const theirs = new Set(reference.readValues);
    const missing = [...theirs].filter((v) => !mine.has(v));
    const extra = [...mine].filter((v) => !theirs.has(v));
    if (missing.length > 0 || extra.length > 0) {
      evidence.push(`final read on ${op.node} differs from the primary ${primary}'s: ${missing.length} missing (${missing.slice(0, 5).join(', ')}), ${extra.length} extra (${extra.slice(0, 5).join(', ')})`);
    }
  }
  if (reference === undefined) evidence.push(`no final read from the primary ${primary}`);
  const took = `converged ${secs(c.convergedAt - c.healedAt)} after the heal (bound ${secs(c.boundMs)}): primary ${primary}, ${reads.length} final reads`;
  return { name, valid: evidence.length === 0, summary: evidence.length === 0 ? `${took}, all equal` : took, evidence };
}
