// Helpers more than one checker (or the run) uses: bounded evidence lists and times as the
// evidence prints them, selections from the history (inserts, each node's last final read, the
// final primary), LSNs in PostgreSQL's text form, and primary reigns, which both the lost-writes
// and the single-primary checker reason about.
import type { ClientOp, RunEvent } from '../types.ts';
import type { CommitInfo, Convergence } from './record.ts';

/** Evidence lines kept per kind of problem; a report with thousands of lines helps nobody. */
export const MAX_EVIDENCE = 12;
export const secs = (t: number): string => `${(t / 1000).toFixed(3)} s`;

/** `lines` (already cut to at most MAX_EVIDENCE), with a note of how many more there were. */
export function limited(lines: string[], total: number): string[] {
  return total > lines.length ? [...lines, `... ${total - lines.length} more`] : lines;
}

export const inserts = (history: readonly RunEvent[]): ClientOp[] => history.filter((e): e is ClientOp => e.type === 'client' && e.f === 'insert');
export const finalReads = (history: readonly RunEvent[]): ClientOp[] => history.filter((e): e is ClientOp => e.type === 'client' && e.f === 'read');

export function describeInsert(op: ClientOp, commit?: CommitInfo): string {
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

/** One node acknowledging writes on one timeline. */
export interface Reign {
  readonly node: string;
  readonly timeline: number;
  readonly acks: ClientOp[];
  /** The reign's first acknowledgement (by completion time). */
  readonly first: ClientOp;
}

/** Acknowledged inserts grouped by (node, timeline), ordered older to newer: by timeline, then by first acknowledgement. */
export function groupReigns(acked: readonly ClientOp[], commits: ReadonlyMap<number, CommitInfo>): Reign[] {
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
