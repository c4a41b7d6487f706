// Checker (2): at most one writable primary at any instant (I1), judged by the clients' real-time
// order alone: which node acknowledged which write on which timeline, never a node's own clock.
import { MAX_EVIDENCE, describeInsert, groupReigns, inserts, limited, secs } from './common.ts';
import type { CheckResult, RunRecord } from './record.ts';

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
