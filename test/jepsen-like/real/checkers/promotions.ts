// Checker (5): promotions allowed by tags and lag (I3), from the agents' decision lines. Seen from
// outside, so the lag is only a lower bound; a node tagged nofailover deciding to promote itself
// is a violation whatever the lag.
import { formatLsn, secs } from './common.ts';
import type { CheckResult, RunRecord } from './record.ts';

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
