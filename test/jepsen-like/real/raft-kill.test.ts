// kill -9 the leader of three real node processes (loopback HTTP, LevelDB on disk) while clients
// write, bring it back on the same data dir, and check that no acknowledged write was lost. The
// claim is Raft's State Machine Safety plus durability: an entry acknowledged to a client is
// committed, a committed entry is in every later leader's log (Raft thesis §3.6.3, Leader
// Completeness), and a node restarted on its disk recovers its log and catches up (§3.8, what must
// be persisted before answering). Unique keys make every acknowledged write checkable by a read.
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startRaftCluster } from '../../support/raft-cluster.ts';
import type { KeyValue, RaftCluster } from '../../support/raft-cluster.ts';
import { sleep, stopAll } from '../../support/processes.ts';

const PREFIX = 'jk/';
const WRITERS = 4;

interface Ack {
  key: string;
  invokedAt: number;
  ackedAt: number;
}

/** Closed-loop writers of unique keys, each recording which puts were acknowledged. */
class Writers {
  /** key → value, for every put attempted (acknowledged or not). */
  readonly attempted = new Map<string, string>();
  /** key → value, for puts answered 200. */
  readonly acked = new Map<string, string>();
  readonly acks: Ack[] = [];
  failures = 0;
  lastFailure = '';
  private stopped = false;
  private readonly loops: Promise<void>[] = [];

  constructor(private readonly cluster: RaftCluster) {}

  start(count: number): void {
    for (let w = 0; w < count; w++) this.loops.push(this.loop(w));
  }

  private async loop(w: number): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      const key = `${PREFIX}w${w}/${String(i).padStart(6, '0')}`;
      const value = `value-${w}-${i}-${Math.random().toString(36).slice(2, 10)}`;
      this.attempted.set(key, value);
      const invokedAt = performance.now();
      try {
        // A put that fails within 5 s is simply not acknowledged; it may still take effect later.
        await this.cluster.put(key, value, 5000);
        this.acked.set(key, value);
        this.acks.push({ key, invokedAt, ackedAt: performance.now() });
      } catch (err) {
        this.failures++;
        this.lastFailure = (err as Error).message.split('\n')[0];
      }
    }
  }

  /** Acknowledged puts that were invoked after `t`. */
  ackedSince(t: number): number {
    return this.acks.filter((a) => a.invokedAt > t).length;
  }

  async until(what: string, predicate: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!predicate()) {
      if (performance.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${this.acked.size} acked, ${this.failures} failed (last: ${this.lastFailure})\n${this.cluster.describe()}`);
      }
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const byKey = (kvs: KeyValue[]): Map<string, KeyValue> => new Map(kvs.map((kv) => [kv.key, kv]));

describe('real processes: kill -9 the leader under writes', { timeout: 90_000 }, () => {
  let cluster: RaftCluster | undefined;
  let writers: Writers | undefined;

  after(async () => {
    await writers?.stop();
    await cluster?.stop({ graceMs: 3000 });
    await stopAll(1000); // anything a failed start left behind
  });

  test('no acknowledged write is lost, and the restarted node agrees', async (t: TestContext) => {
    const t0 = performance.now();
    const phase = (name: string): void => t.diagnostic(`${((performance.now() - t0) / 1000).toFixed(1)} s: ${name}`);

    cluster = await startRaftCluster({ nodes: 3, tickMs: 10, electionTicks: 20, heartbeatTicks: 2 });
    const c = cluster;
    const first = await c.waitForLeader(20_000);
    phase(`cluster up, ${first} leads`);

    writers = new Writers(c);
    writers.start(WRITERS);
    const w = writers;
    await w.until('200 acknowledged writes before the kill', () => w.acked.size >= 200, 20_000);

    // Leadership may have moved while writing; kill whoever leads now.
    const victim = await c.waitForLeader(10_000);
    const victimPid = c.node(victim).process?.pid;
    const exit = await c.kill(victim, 'SIGKILL');
    const killedAt = performance.now();
    assert.equal(exit.signal, 'SIGKILL');
    const ackedBeforeKill = w.acked.size;
    phase(`killed leader ${victim} (pid ${victimPid}) with ${ackedBeforeKill} writes acknowledged`);

    const successor = await c.waitForLeader(15_000);
    assert.notEqual(successor, victim, 'a killed node cannot lead');
    phase(`${successor} leads after ${((performance.now() - killedAt) / 1000).toFixed(2)} s`);
    await w.until('200 writes acknowledged after the kill', () => w.ackedSince(killedAt) >= 200, 15_000);

    await c.restart(victim);
    const restartedAt = performance.now();
    phase(`restarted ${victim} on ${c.node(victim).dataDir}`);
    await w.until('100 writes acknowledged after the restart', () => w.ackedSince(restartedAt) >= 100, 15_000);
    await w.stop();
    phase(`writers stopped: ${w.acked.size} acknowledged, ${w.failures} failed, ${w.ackedSince(killedAt)} acknowledged after the kill`);

    const leader = await c.waitForLeader(15_000);
    const leaderStatus = await c.status(leader);
    const caughtUp = await c.waitForApplied(victim, leaderStatus.commit, 20_000);
    assert.equal(caughtUp.leader, leader, `${victim} follows ${caughtUp.leader}, not ${leader}`);
    phase(`${victim} applied ${caughtUp.applied} >= leader ${leader}'s commit ${leaderStatus.commit}`);

    // Every acknowledged write, read back linearizably through the leader.
    const missing: string[] = [];
    const wrong: string[] = [];
    await forEachLimit([...w.acked], 16, async ([key, value]) => {
      const kv = await c.get(key);
      if (kv === null) missing.push(key);
      else if (kv.value !== value) wrong.push(`${key}: wrote ${value}, read ${kv.value}`);
    });
    assert.deepEqual(missing, [], `${missing.length} of ${w.acked.size} acknowledged writes are missing on the leader`);
    assert.deepEqual(wrong, [], 'acknowledged writes read back with other values');

    // The restarted node's view, by range: every acknowledged write, nothing never written.
    const onRestarted = byKey(await c.range(PREFIX, victim));
    const lostThere = [...w.acked].filter(([key, value]) => onRestarted.get(key)?.value !== value).map(([key]) => key);
    assert.deepEqual(lostThere, [], `${victim} (restarted) lacks acknowledged writes`);
    const phantoms = [...onRestarted.values()].filter((kv) => w.attempted.get(kv.key) !== kv.value).map((kv) => kv.key);
    assert.deepEqual(phantoms, [], 'keys or values that no client wrote');

    // And it agrees with the leader on everything, unacknowledged writes that took effect included.
    const onLeader = byKey(await c.range(PREFIX, leader));
    assert.equal(onRestarted.size, onLeader.size, `${victim} has ${onRestarted.size} keys, leader ${leader} has ${onLeader.size}`);
    for (const [key, kv] of onLeader) assert.deepEqual(onRestarted.get(key), kv, `${victim} and ${leader} differ on ${key}`);
    phase(`checked ${w.acked.size} acknowledged keys; ${onLeader.size} keys in the store`);
  });
});
