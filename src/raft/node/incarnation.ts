// A member's incarnation: a random token made once with its Raft data directory and kept in it.
// Requests on the Raft port carry it (transport/auth.ts), so that a removed member is refused as
// that member with that data, while the same host emptied and started again joins as a new one.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newIncarnation } from '../transport/auth.ts';

/** Its file in the data directory; not Raft state (isFreshDataDir looks past it). */
export const INCARNATION_FILE = 'INCARNATION';

/** The data directory's incarnation, made (and the directory with it, owner-only) on first use. */
export async function loadOrCreateIncarnation(dataDir: string): Promise<string> {
  const file = join(dataDir, INCARNATION_FILE);
  try {
    const text = (await readFile(file, 'utf8')).trim();
    if (/^[A-Za-z0-9_-]{8,64}$/.test(text)) return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const incarnation = newIncarnation();
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await writeFile(file, `${incarnation}\n`, { mode: 0o600 });
  return incarnation;
}
