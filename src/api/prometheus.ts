// Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE` once per metric, then its samples
// `name{label="value",...} number`. Pure; the metric names and their meaning are the caller's.

export type Labels = Readonly<Record<string, string>>;
export type MetricType = 'gauge' | 'counter';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function formatValue(v: number | string): string {
  if (typeof v === 'string') return v; // a preformatted number, e.g. Patroni's zero-padded version
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export class Exposition {
  private readonly lines: string[] = [];
  private readonly base: Labels;

  /** `base`: the labels every sample carries (Patroni: scope and name). */
  constructor(base: Labels) {
    this.base = base;
  }

  /** One metric with its samples; a metric with no samples writes nothing. */
  metric(name: string, type: MetricType, help: string, samples: number | string | readonly { labels?: Labels; value: number | string }[]): this {
    const list = typeof samples === 'object' ? samples : [{ value: samples }];
    if (list.length === 0) return this;
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const s of list) {
      const labels = Object.entries({ ...this.base, ...s.labels }).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
      this.lines.push(`${name}{${labels.join(',')}} ${formatValue(s.value)}`);
    }
    return this;
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}
