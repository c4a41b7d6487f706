// A unified diff of two texts, line by line, with three lines of context: what edit-config shows
// before it writes (patronictl shows difflib.unified_diff of the YAML). Pure. Configurations are
// small, so the quadratic longest-common-subsequence table is fine.

type Op = { kind: ' ' | '-' | '+'; line: string; a: number; b: number };

function lines(text: string): string[] {
  if (text === '') return [];
  return text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
}

function editScript(a: readonly string[], b: readonly string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) ops.push({ kind: ' ', line: a[i], a: i++, b: j++ });
    // Deletions before insertions, as diff and difflib print a changed line.
    else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) ops.push({ kind: '-', line: a[i], a: i++, b: j });
    else ops.push({ kind: '+', line: b[j], a: i, b: j++ });
  }
  return ops;
}

/** "start,count" as unified diff writes it (start is 1-based; an empty range names the line before). */
function range(start: number, count: number): string {
  const first = count === 0 ? start : start + 1;
  return count === 1 ? `${first}` : `${first},${count}`;
}

/** '' when the texts are equal. */
export function unifiedDiff(before: string, after: string, opts: { context?: number; fromFile?: string; toFile?: string } = {}): string {
  const context = opts.context ?? 3;
  const ops = editScript(lines(before), lines(after));
  const changed = ops.map((o, k) => (o.kind === ' ' ? -1 : k)).filter((k) => k >= 0);
  if (changed.length === 0) return '';
  // Group changes whose context overlaps into hunks.
  const hunks: Array<[number, number]> = [];
  for (const k of changed) {
    const lo = Math.max(0, k - context);
    const hi = Math.min(ops.length - 1, k + context);
    const last = hunks[hunks.length - 1];
    if (last && lo <= last[1] + 1) last[1] = hi;
    else hunks.push([lo, hi]);
  }
  const out = [`--- ${opts.fromFile ?? 'before'}`, `+++ ${opts.toFile ?? 'after'}`];
  for (const [lo, hi] of hunks) {
    const part = ops.slice(lo, hi + 1);
    const aCount = part.filter((o) => o.kind !== '+').length;
    const bCount = part.filter((o) => o.kind !== '-').length;
    out.push(`@@ -${range(part[0].a, aCount)} +${range(part[0].b, bCount)} @@`, ...part.map((o) => `${o.kind}${o.line}`));
  }
  return `${out.join('\n')}\n`;
}
