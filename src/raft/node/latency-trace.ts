// A latency tracer for finding where a write's time goes across member processes. Off unless
// CONCLAVE_TRACE names a directory: then each process records (wall-clock ms with sub-ms
// precision, event) pairs in memory and writes them to <dir>/<pid>.trace at exit, so the files
// of all members can be merged on one time axis. Recording costs one array push.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.CONCLAVE_TRACE;
const events: string[] = [];
const origin = performance.timeOrigin;

export const tracing = dir !== undefined && dir !== '';

export function trace(event: string): void {
  if (tracing) events.push(`${(origin + performance.now()).toFixed(3)} ${event}`);
}

if (tracing) {
  process.on('exit', () => {
    writeFileSync(join(dir!, `${process.pid}.trace`), events.join('\n') + '\n');
  });
}
