// Output formats shared by the commands that print rows (list, history, query): patronictl's
// pretty table (with the cluster title drawn into its top border), tsv, json and yaml. Pure.
import { stringify } from 'yaml';

export type Format = 'pretty' | 'tsv' | 'json' | 'yaml';
export type Cell = string | number | boolean | null | undefined | Readonly<Record<string, unknown>> | readonly unknown[];

/**
 * YAML with sorted keys and no line folding, as Patroni's yaml.safe_dump writes it. Written as
 * YAML 1.1 so that strings such as `on` and `yes` come out quoted: PyYAML (Patroni) would read
 * them unquoted as booleans; our YAML 1.2 reader reads the quoted form the same.
 */
export function yamlText(v: unknown): string {
  return stringify(v, { sortMapEntries: true, lineWidth: 0, version: '1.1' });
}

const isEmpty = (c: Cell): boolean =>
  c === null || c === undefined || c === '' || (typeof c === 'object' && Object.keys(c).length === 0);

/** A cell as table text: maps (tags) as YAML lines, like patronictl. */
export function cellText(c: Cell): string {
  if (isEmpty(c)) return '';
  if (typeof c === 'object') return yamlText(c).trimEnd();
  return String(c);
}

export interface TableOptions {
  /** Drawn into the top border from its left end, e.g. "+ Cluster: demo (7345...) ". */
  readonly title?: string;
  /** Columns aligned right (numbers). */
  readonly rightAlign?: readonly string[];
  /** json/yaml: keep empty cells as null (query results) instead of leaving them out (list). */
  readonly keepEmpty?: boolean;
}

export function prettyTable(columns: readonly string[], rows: readonly (readonly Cell[])[], opts: TableOptions = {}): string {
  const cells = rows.map((r) => columns.map((_, c) => cellText(r[c]).split('\n')));
  const widths = columns.map((h, c) => Math.max(h.length, ...cells.map((r) => Math.max(...r[c].map((l) => l.length)))));
  const rule = (): string => `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  // The title must fit with at least one '-' and the closing '+' after it.
  if (opts.title && opts.title.length + 2 > rule().length) widths[widths.length - 1] += opts.title.length + 2 - rule().length;
  const right = new Set(opts.rightAlign ?? []);
  const line = (parts: readonly string[]): string =>
    `| ${parts.map((p, c) => (right.has(columns[c]) ? p.padStart(widths[c]) : p.padEnd(widths[c]))).join(' | ')} |`;
  const body = cells.flatMap((r) => {
    const height = Math.max(...r.map((lines) => lines.length));
    return Array.from({ length: height }, (_, i) => line(r.map((lines) => lines[i] ?? '')));
  });
  const top = opts.title ? opts.title + rule().slice(opts.title.length) : rule();
  return [top, line(columns), rule(), ...body, rule()].join('\n');
}

export function tsvTable(columns: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = (c: Cell): string => (isEmpty(c) ? '' : typeof c === 'object' ? JSON.stringify(c) : String(c).replace(/[\t\n]/g, ' '));
  return [columns.join('\t'), ...rows.map((r) => columns.map((_, c) => text(r[c])).join('\t'))].join('\n');
}

/** Rows as objects keyed by column; empty cells are left out, as patronictl does for json and yaml. */
export function rowObjects(columns: readonly string[], rows: readonly (readonly Cell[])[], keepEmpty = false): Record<string, Cell>[] {
  return rows.map((r) => Object.fromEntries(columns.map((h, c) => [h, keepEmpty ? r[c] ?? null : r[c]] as const).filter(([, v]) => keepEmpty || !isEmpty(v))));
}

export function render(format: Format, columns: readonly string[], rows: readonly (readonly Cell[])[], opts: TableOptions = {}): string {
  switch (format) {
    case 'pretty': return prettyTable(columns, rows, opts);
    case 'tsv': return tsvTable(columns, rows);
    case 'json': return JSON.stringify(rowObjects(columns, rows, opts.keepEmpty));
    case 'yaml': return yamlText(rowObjects(columns, rows, opts.keepEmpty)).trimEnd();
  }
}
