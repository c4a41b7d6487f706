// The observation the fencing and partition tests share: a client writes continuously to the old
// primary while another probes every other member with a write, around a fault. Times are this
// test process's clock: a write whose answer arrived before another write was sent committed
// before it, so `lastOldAckAt < firstNewSentAt` means the two primaries never both took writes.
// The table `w (id serial, at text)` must exist.
import assert from 'node:assert/strict';
import type { AgentCluster } from './agents.ts';
import { sleep } from './processes.ts';

export interface HandOverObservation {
  readonly faultAt: number;
  readonly lastOldAckAt: number;
  readonly firstNewSentAt: number;
  readonly newPrimary: string;
  readonly oldWrites: number;
}

/** Writes to `old`, probes `others`, runs `fault`, and returns once one of `others` took a write. */
export async function observeHandOver(c: AgentCluster, old: string, others: readonly string[], fault: () => void | Promise<void>): Promise<HandOverObservation> {
  let lastOldAckAt = 0;
  let oldWrites = 0;
  let firstNewSentAt = 0;
  let newPrimary: string | null = null;
  let stop = false;
  const oldWriter = (async () => {
    const client = await c.sql(old);
    try {
      while (!stop) {
        const ok = await Promise.race([client.query("insert into w (at) values ('old')").then(() => true, () => false), sleep(1000).then(() => false)]);
        if (!ok) break;
        lastOldAckAt = performance.now();
        oldWrites++;
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  const prober = (async () => {
    while (!stop && newPrimary === null) {
      for (const n of others) {
        const sentAt = performance.now();
        if (await c.trySql(n, "insert into w (at) values ('new')")) {
          newPrimary = n;
          firstNewSentAt = sentAt;
          break;
        }
      }
      await sleep(20);
    }
  })();
  await sleep(300);
  const faultAt = performance.now();
  await fault();
  try {
    await c.waitFor('a new primary', async () => newPrimary, 30_000, 50);
  } finally {
    // Also when no primary came: the loops must end, or the test process never exits.
    stop = true;
    await Promise.all([oldWriter, prober]);
  }
  return { faultAt, lastOldAckAt, firstNewSentAt, newPrimary: newPrimary!, oldWrites };
}

/** The old primary's last acknowledged write came before the new primary's first; prints the timings. */
export function assertNoOverlap(what: string, o: HandOverObservation): void {
  assert.ok(o.oldWrites > 0, 'the old primary took writes before the fault');
  assert.ok(o.lastOldAckAt < o.firstNewSentAt, `${what}: the old primary acknowledged a write ${(o.lastOldAckAt - o.firstNewSentAt).toFixed(0)} ms after the new one was first written to`);
  process.stdout.write(`# ${what}: old primary's last write ${(o.lastOldAckAt - o.faultAt).toFixed(0)} ms after the fault; new primary writable ${(o.firstNewSentAt - o.faultAt).toFixed(0)} ms after it\n`);
}
