// pg_controldata: what the control file says, readable while PostgreSQL is down. The HA loop
// needs it to decide whether a stopped node shut down cleanly (pg_rewind wants that) and on which
// timeline it stopped; the rewind decision needs wal_log_hints or data checksums.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PostgresError } from './errors.ts';
import { parseLsn } from './lsn.ts';
import type { PgRunner } from './run-as.ts';
import type { ControlData } from './types.ts';

/** Runs pg_controldata on `dataDir`; null when there is no control file yet. */
export async function readControlData(runner: PgRunner, dataDir: string): Promise<ControlData | null> {
  if (!existsSync(join(dataDir, 'global', 'pg_control'))) return null;
  const { stdout } = await runner.run('pg_controldata', ['-D', dataDir], { timeoutMs: 30_000 });
  return parseControlData(stdout);
}

/** "Key:   value" lines (C locale) → ControlData; throws naming the first missing key. */
export function parseControlData(text: string): ControlData {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const get = (key: string): string => {
    const value = fields.get(key);
    if (value === undefined) throw new PostgresError('ERR_PG_NO_DATA', `pg_controldata output has no "${key}"`);
    return value;
  };
  const timeline = Number(get("Latest checkpoint's TimeLineID"));
  if (!Number.isInteger(timeline)) throw new PostgresError('ERR_PG_NO_DATA', `pg_controldata: bad timeline ${get("Latest checkpoint's TimeLineID")}`);
  return {
    systemIdentifier: get('Database system identifier'),
    state: get('Database cluster state'),
    timeline,
    checkpointLsn: parseLsn(get('Latest checkpoint location')),
    walLogHints: get('wal_log_hints setting') === 'on',
    // "Data page checksum version: 0" means checksums are off; 1 is the only version so far.
    dataChecksums: get('Data page checksum version') !== '0',
  };
}
