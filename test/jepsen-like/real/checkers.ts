// The real-process harness's checkers (jepsen.md §6, I1–I5): pure functions over what a run
// recorded, one module each under checkers/. Each returns its own verdict, a one-line summary and,
// when it fails, the evidence (the operations or observations that prove it). `valid: 'unknown'`
// means the checker could not judge (for instance no final read from a primary), never that it
// passed. This module is their index: checkAll() runs them in the order the summary prints them,
// and everything the run, the report and the tests use is re-exported from here.
//
// Times are the harness's one monotonic clock (milliseconds). Only real-time order between the
// harness's own records is used, never a node's clock: A precedes B only if A completed before B
// was invoked (Jepsen's rule; checker/linearizability.ts applies the same one).
import { checkConvergence } from './checkers/convergence.ts';
import { checkLostWrites } from './checkers/lost-writes.ts';
import { checkPromotions } from './checkers/promotions.ts';
import type { CheckResult, RunRecord } from './checkers/record.ts';
import { checkSinglePrimary } from './checkers/single-primary.ts';
import { checkStore } from './checkers/store.ts';

export type { AgentDecision, CheckResult, CommitInfo, Convergence, ConvergenceSnapshot, Mode, NodeSnapshot, PositionSample, RaftSample, RunRecord, StoreOp, Verdict } from './checkers/record.ts';
export { finalPrimary, finalReads, formatLsn, inserts, lastReads, parseLsn } from './checkers/common.ts';
export { checkLostWrites, lostWrites } from './checkers/lost-writes.ts';
export { checkSinglePrimary } from './checkers/single-primary.ts';
export { checkConvergence, convergenceProblems } from './checkers/convergence.ts';
export { checkStore } from './checkers/store.ts';
export { checkPromotions, isPromotion, isPromotionDecision } from './checkers/promotions.ts';
export { failoverTimes } from './checkers/failover-times.ts';
export type { FailoverTime } from './checkers/failover-times.ts';

export function checkAll(r: RunRecord): CheckResult[] {
  return [checkLostWrites(r), checkSinglePrimary(r), checkConvergence(r), checkStore(r), checkPromotions(r)];
}
