// The real-process harness's checkers (jepsen.md §6, I1–I5): pure functions over what a run
// recorded. Each returns its own verdict, a one-line summary and, when it fails, the evidence (the
// operations or observations that prove it). `valid: 'unknown'` means the checker could not judge
// (for instance no final read from a primary), never that it passed.
//
// Times are the harness's one monotonic clock (milliseconds). Only real-time order between the
// harness's own records is used, never a node's clock: A precedes B only if A completed before B
// was invoked (Jepsen's rule; checker/linearizability.ts applies the same one).
import type { Operation } from '../checker/history.ts';
import { describeOperation } from '../checker/history.ts';
import { checkLinearizable } from '../checker/linearizability.ts';
import type { ClientOp, NemesisEvent, RunEvent } from './types.ts';

export type Verdict = boolean | 'unknown';

export interface CheckResult {
  readonly name: string;
  readonly valid: Verdict;
  readonly summary: string;
  readonly evidence: string[];
}

export type Mode = 'sync-strict' | 'async';

/** What an acknowledged insert returned: the WAL insert position and the timeline it was written on. */
export interface CommitInfo {
  readonly lsn: number;
  readonly timeline: number;
}

/** One node's state as the convergence wait saw it (through the control link, by SQL and HTTP). */
export interface NodeSnapshot {
  readonly name: string;
  /** PostgreSQL's role, or null when it did not answer. */
  readonly role: 'primary' | 'replica' | null;
  readonly timeline: number | null;
  /** The node's own PostgreSQL address as the others reach it ("host:port"). */
  readonly address: string;
  /** A replica's WAL receiver: status and the address it streams from ("host:port"). */
  readonly receiver: { readonly status: string; readonly upstream: string } | null;
  /** Raft as this member reports it, or null when it did not answer. */
  readonly raft: { readonly role: string; readonly term: number; readonly leader: string | null; readonly voters: readonly string[] } | null;
}

export interface ConvergenceSnapshot {
  readonly at: number;
  readonly nodes: readonly NodeSnapshot[];
  /** The leader key's value (the primary's name), or null when absent or unreadable. */
  readonly leaderKey: string | null;
}

export interface Convergence {
  /** When the last fault was healed. */
  readonly healedAt: number;
  readonly boundMs: number;
  /** When a snapshot first passed, or null if none did within the bound. */
  readonly convergedAt: number | null;
  /** The last snapshot taken (the passing one, or the last failing one). */
  readonly last: ConvergenceSnapshot | null;
}

/** An operation on the cluster store through a member's debug API (/v1/kv); reads carry modRevision. */
export interface StoreOp extends Operation {
  readonly member: string;
  modRevision?: number;
}

/** A member's answer to GET /v1/status during the run. */
export interface RaftSample {
  readonly at: number;
  readonly node: string;
  readonly term: number;
  readonly role: string;
  readonly leader: string | null;
}

/** A node's WAL position as its REST API reported it (a primary's write position, a replica's received/replayed). */
export interface PositionSample {
  readonly at: number;
  readonly node: string;
  readonly role: 'primary' | 'replica';
  readonly position: number;
}

/** A decision line an agent logged, stamped with the harness time it arrived at. */
export interface AgentDecision {
  readonly at: number;
  readonly node: string;
  readonly msg: string;
}

/** Everything the checkers read; run.ts builds it and report.ts writes it out as JSON. */
export interface RunRecord {
  readonly mode: Mode;
  readonly history: RunEvent[];
  /** Keyed by the insert's ClientOp id. */
  readonly commits: ReadonlyMap<number, CommitInfo>;
  readonly maximumLagOnFailover: number;
  /** Slack on the async loss bound and the promotion lag check (WAL written in one publish interval). */
  readonly lagSlackBytes: number;
  /** How long before a promotion a primary's position must have been seen to count (≥ loop_wait). */
  readonly publishMarginMs: number;
  readonly convergence: Convergence;
  readonly storeOps: readonly StoreOp[];
  readonly leaderKey: string;
  readonly raftSamples: readonly RaftSample[];
  readonly positions: readonly PositionSample[];
  readonly decisions: readonly AgentDecision[];
  /** Per node: may it be promoted by its tags (false for nofailover or failover_priority ≤ 0). */
  readonly mayFailOver: Readonly<Record<string, boolean>>;
}

const MAX_EVIDENCE = 12;
const secs = (t: number): string => `${(t / 1000).toFixed(3)} s`;

function limited(lines: string[], total: number): string[] {
  return total > lines.length ? [...lines, `... ${total - lines.length} more`] : lines;
}

export const inserts = (history: readonly RunEvent[]): ClientOp[] => history.filter((e): e is ClientOp => e.type === 'client' && e.f === 'insert');
export const finalReads = (history: readonly RunEvent[]): ClientOp[] => history.filter((e): e is ClientOp => e.type === 'client' && e.f === 'read');

function describeInsert(op: ClientOp, commit?: CommitInfo): string {
  const at = op.completedAt === null ? `invoked ${secs(op.invokedAt)}` : `[${secs(op.invokedAt)}, ${secs(op.completedAt)}]`;
  const where = commit ? ` timeline ${commit.timeline} lsn ${formatLsn(commit.lsn)}` : '';
  return `#${op.id} ${op.client} insert ${op.value} on ${op.node} ${at} ${op.outcome ?? 'open'}${where}`;
}

export function formatLsn(lsn: number): string {
  return `${Math.floor(lsn / 2 ** 32).toString(16).toUpperCase()}/${(lsn % 2 ** 32).toString(16).toUpperCase()}`;
}

export function parseLsn(text: string): number {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(text.trim());
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(text)}`);
  return parseInt(m[1], 16) * 2 ** 32 + parseInt(m[2], 16);
}

/** The node the convergence snapshot found to be the one primary, or null. */
export function finalPrimary(c: Convergence): string | null {
  const primaries = c.last?.nodes.filter((n) => n.role === 'primary') ?? [];
  return primaries.length === 1 ? primaries[0].name : null;
}

/** Each node's last final read (a read is retried until it succeeds; earlier attempts do not count). */
export function lastReads(history: readonly RunEvent[]): ClientOp[] {
  const last = new Map<string, ClientOp>();
  for (const op of finalReads(history)) last.set(op.node, op);
  return [...last.values()];
}

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

// ---------------------------------------------------------------------------------------------
// (1) Lost acknowledged writes (set-full, jepsen.md §4; I2 and I3).

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

// ---------------------------------------------------------------------------------------------
// (2) At most one writable primary at any instant (I1), by the clients' real-time order.

interface Reign {
  readonly node: string;
  readonly timeline: number;
  readonly acks: ClientOp[];
  /** The reign's first acknowledgement (by completion time). */
  readonly first: ClientOp;
}

/** Acknowledged inserts grouped by (node, timeline), ordered older to newer: by timeline, then by first acknowledgement. */
function groupReigns(acked: readonly ClientOp[], commits: ReadonlyMap<number, CommitInfo>): Reign[] {
  const groups = new Map<string, ClientOp[]>();
  for (const op of acked) {
    const key = `${op.node}\u0000${commits.get(op.id)?.timeline ?? 0}`;
    const list = groups.get(key);
    if (list) list.push(op);
    else groups.set(key, [op]);
  }
  const reigns = [...groups.values()].map((acks) => {
    acks.sort((a, b) => a.completedAt! - b.completedAt! || a.id - b.id);
    return { node: acks[0].node, timeline: commits.get(acks[0].id)?.timeline ?? 0, acks, first: acks[0] };
  });
  return reigns.sort((a, b) => a.timeline - b.timeline || a.first.completedAt! - b.first.completedAt!);
}

/**
 * A reign is one node acknowledging writes on one timeline. A newer reign (higher timeline, or the
 * same timeline with a later first acknowledgement: two promotions from one timeline) means a newer
 * primary. Once a newer primary's first acknowledgement has completed, an older primary on another
 * node must acknowledge nothing invoked after it: that write proves both were writable at once.
 */
export function checkSinglePrimary(r: RunRecord): CheckResult {
  const name = 'single-primary';
  const acked = inserts(r.history).filter((op) => op.outcome === 'ok');
  const reigns = groupReigns(acked, r.commits);
  const violations: string[] = [];
  for (const [i, old] of reigns.entries()) {
    const newer = reigns.slice(i + 1).filter((n) => n.node !== old.node);
    if (newer.length === 0) continue;
    const successor = newer.reduce((a, b) => (b.first.completedAt! < a.first.completedAt! ? b : a));
    for (const op of old.acks) {
      if (op.invokedAt > successor.first.completedAt!) {
        violations.push(
          `${old.node} (timeline ${old.timeline}) acknowledged ${describeInsert(op, r.commits.get(op.id))}, invoked after ${successor.node} ` +
            `(timeline ${successor.timeline}) had acknowledged its first write as the newer primary: ${describeInsert(successor.first, r.commits.get(successor.first.id))}`,
        );
      }
    }
  }
  const order = reigns.map((x) => `${x.node}@tl${x.timeline} (${x.acks.length} acks from ${secs(x.first.completedAt!)})`).join(' → ');
  const summary = violations.length === 0
    ? `${reigns.length} primary reigns, none overlapping: ${order || 'no acknowledged writes'}`
    : `${violations.length} writes acknowledged by an older primary after a newer one took writes; reigns: ${order}`;
  return { name, valid: violations.length === 0, summary, evidence: limited(violations.slice(0, MAX_EVIDENCE), violations.length) };
}

// ---------------------------------------------------------------------------------------------
// (3) Convergence after heal (I4).

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

// ---------------------------------------------------------------------------------------------
// (4) The cluster store: linearizable register operations, the leader key's observed history, and
// Raft election safety as the members reported it (I5).

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

// ---------------------------------------------------------------------------------------------
// (5) Promotions allowed by tags and lag (I3), from the agents' decision logs.

/** A "promoted self ..." decision; the driver appends "; but <what failed>" when its actions did not all succeed (a lost race). */
export const isPromotionDecision = (msg: string): boolean => msg.startsWith('promoted self');
export const isPromotion = (msg: string): boolean => isPromotionDecision(msg) && !msg.includes('; but ');

/**
 * No node tagged nofailover (or failover_priority ≤ 0) may decide to promote itself, whether or
 * not it then won the race. Lag, for promotions that happened, judged from outside and therefore
 * only as a lower bound: the highest position another node reported as primary at least
 * `publishMarginMs` before the decision line arrived (so its agent had published it as the optime
 * before the decision), minus the first position the promoted node reported after it (at least
 * its position at the decision). Beyond maximum_lag_on_failover + slack, it should not have been
 * promoted.
 */
export function checkPromotions(r: RunRecord): CheckResult {
  const name = 'promotions';
  const evidence: string[] = [];
  const attempts = r.decisions.filter((d) => isPromotionDecision(d.msg));
  for (const p of attempts) {
    if (r.mayFailOver[p.node] === false) evidence.push(`${p.node} is tagged nofailover but decided to promote itself at ${secs(p.at)}: "${p.msg}"`);
  }
  const promotions = attempts.filter((d) => isPromotion(d.msg));
  let judged = 0;
  for (const p of promotions) {
    const primaryBefore = r.positions.filter((s) => s.node !== p.node && s.role === 'primary' && s.at <= p.at - r.publishMarginMs && s.at >= p.at - 60_000);
    const mineAfter = r.positions.find((s) => s.node === p.node && s.at > p.at);
    if (primaryBefore.length === 0 || mineAfter === undefined) continue;
    judged++;
    const best = primaryBefore.reduce((a, b) => (b.position > a.position ? b : a));
    const lag = best.position - mineAfter.position;
    if (lag > r.maximumLagOnFailover + r.lagSlackBytes) {
      evidence.push(
        `${p.node} promoted itself at ${secs(p.at)} at least ${lag} bytes behind: ${best.node} was at ${formatLsn(best.position)} at ${secs(best.at)}, ` +
          `${p.node} at most at ${formatLsn(mineAfter.position)} (seen ${secs(mineAfter.at)}); maximum_lag_on_failover ${r.maximumLagOnFailover} + slack ${r.lagSlackBytes}`,
      );
    }
  }
  const who = promotions.map((p) => `${p.node}@${secs(p.at)}`).join(', ');
  const summary = `${promotions.length} promotions${who ? ` (${who})` : ''}, ${attempts.length - promotions.length} lost races; lag judged for ${judged} (lower bound from sampled positions)`;
  return { name, valid: evidence.length === 0, summary, evidence };
}

export function checkAll(r: RunRecord): CheckResult[] {
  return [checkLostWrites(r), checkSinglePrimary(r), checkConvergence(r), checkStore(r), checkPromotions(r)];
}

// ---------------------------------------------------------------------------------------------
// Failover times (not a checker: a measurement for the report).

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
