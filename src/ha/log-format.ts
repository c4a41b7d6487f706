// `log.type: plain` (Patroni's default): one human line per record, "2026-11-22 06:10:10,123
// INFO: [ha] no action: I am node1, the leader with the lock". `json` keeps pino's JSON lines,
// which is what tools (and the tests) read.
import { Writable } from 'node:stream';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARNING', 50: 'ERROR', 60: 'CRITICAL' };
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'layer']);

function timestamp(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())},${pad(d.getMilliseconds(), 3)}`;
}

/** Formats one pino JSON line; a line that is not JSON passes through unchanged. */
export function plainLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const level = LEVELS[rec.level as number] ?? String(rec.level);
  const layer = typeof rec.layer === 'string' ? `[${rec.layer}] ` : '';
  const extra = Object.fromEntries(Object.entries(rec).filter(([k]) => !OMIT.has(k)));
  const tail = Object.keys(extra).length > 0 ? ` ${JSON.stringify(extra)}` : '';
  return `${timestamp(typeof rec.time === 'number' ? rec.time : Date.now())} ${level}: ${layer}${String(rec.msg ?? '')}${tail}\n`;
}

/** A stream for pino that writes plain lines to `out`. */
export function plainStream(out: { write(s: string): unknown }): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) out.write(plainLine(line));
      done();
    },
  });
}
