// Every nemesis of the real-process harness, injected and healed once in turn on one 3-node
// cluster (agents under libfaketime, node i in namespace i of a NetLab): what each did, as seen
// from outside, and that after its heal (called twice: heal is idempotent) the cluster converges
// again to one primary with every replica streaming. Plus a check of libfaketime itself: a
// process's Date.now() jumps when its offset file is rewritten, its performance.now() does not.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { fakeClockEnv } from '../../support/agents.ts';
import { makeTempDir, removeDir, sleep, startProcess } from '../../support/processes.ts';
import type { ProcessHandle } from '../../support/processes.ts';
import { startClusterUnderTest } from './cluster-under-test.ts';
import type { ClusterUnderTest } from './cluster-under-test.ts';
import { NEMESES, nemesesFor } from './nemesis/index.ts';
import type { ActiveFault, FaultContext, NemesisEvent, ObservationEvent } from './types.ts';

/** Prints Date.now() and performance.now(), rewrites its own offset file (argv[1]), and prints them again, twice. */
const CLOCK_PROBE = `
const show = () => console.log(JSON.stringify({ wall: Date.now(), mono: performance.now() }));
show();
setTimeout(() => { require('fs').writeFileSync(process.argv[1], '+3600s\\n'); show(); }, 300);
setTimeout(() => { require('fs').writeFileSync(process.argv[1], '-600s\\n'); show(); }, 600);`;

test('libfaketime: rewriting the offset file moves Date.now() of a running process, not performance.now()', async () => {
  const dir = await makeTempDir('conclave-faketime-');
  let q: ProcessHandle | null = null;
  try {
    const file = join(dir, 'offset');
    await writeFile(file, '+0s\n');
    q = await startProcess({ cmd: process.execPath, args: ['-e', CLOCK_PROBE, file], env: fakeClockEnv(file), name: 'clock probe' });
    const t0 = Date.now();
    await q.waitForExit(10_000);
    const [a, b, c] = q.stdoutLines.map((l) => JSON.parse(l) as { wall: number; mono: number });
    assert.ok(a && b && c, q.describe());
    assert.ok(Math.abs(a.wall - t0) < 5000, `before: ${a.wall - t0} ms off`);
    const jump1 = b.wall - a.wall - (b.mono - a.mono);
    const jump2 = c.wall - b.wall - (c.mono - b.mono);
    assert.ok(Math.abs(jump1 - 3_600_000) < 1000, `the first jump was ${jump1} ms`);
    assert.ok(Math.abs(jump2 + 4_200_000) < 1000, `the second jump was ${jump2} ms`);
    assert.ok(b.mono - a.mono > 250 && b.mono - a.mono < 2000, `monotonic time went on as usual: ${b.mono - a.mono} ms`);
  } finally {
    await q?.stop(1000);
    await removeDir(dir);
  }
});

describe('nemeses on a 3-node cluster', { timeout: 10 * 60_000 }, () => {
  let cut: ClusterUnderTest | null = null;
  let ctx: FaultContext;
  const events: Array<NemesisEvent | ObservationEvent> = [];

  before(async () => {
    cut = await startClusterUnderTest({ nodes: 3, seed: 42, fakeClock: true });
    ctx = cut.faultContext({ record: (e) => events.push(e) });
  });

  after(async () => {
    await cut?.stop();
  });

  const c = () => cut!.cluster;
  const starts = (kind: string): NemesisEvent[] => events.filter((e): e is NemesisEvent => e.type === 'nemesis' && e.kind === kind);
  const observed = (what: string): ObservationEvent[] => events.filter((e): e is ObservationEvent => e.type === 'observation' && e.what === what);

  /** Injects `name`, runs `during`, heals twice, waits for convergence; returns the fault. */
  async function round(name: string, during: (fault: ActiveFault) => Promise<void> = async () => undefined): Promise<ActiveFault> {
    const before = events.length;
    const fault = await NEMESES[name]!.inject(ctx);
    try {
      const recorded = events.slice(before).filter((e) => e.type === 'nemesis');
      assert.equal(recorded.length, 1, `${name} records one start: ${JSON.stringify(recorded)}`);
      assert.deepEqual({ ...recorded[0], at: 0 }, { type: 'nemesis', phase: 'start', kind: name, targets: fault.targets, detail: fault.detail, at: 0 });
      await during(fault);
    } finally {
      await Promise.all([fault.heal(), fault.heal()]);
      await fault.heal();
    }
    assert.deepEqual(cut!.lab.partitions(), [], 'no cut left');
    await cut!.waitForConvergence(90_000);
    return fault;
  }

  /** Waits for a primary other than `old` (and `old` no longer one). */
  const anotherPrimary = (old: string) =>
    c().waitFor(`a primary other than ${old}`, async () => {
      const p = await c().primaries();
      return p.length === 1 && p[0] !== old ? p[0] : null;
    }, 60_000);

  test('the registry: names match, and nemesesFor leaves out what cannot apply', () => {
    for (const [name, n] of Object.entries(NEMESES)) assert.equal(n.name, name);
    assert.ok(!nemesesFor(3).includes('partition-ring'));
    assert.ok(nemesesFor(5).includes('partition-ring'));
    assert.ok(!nemesesFor(3).includes('clock-jump'));
    assert.ok(nemesesFor(3, { fakeClock: true }).includes('clock-jump'));
  });

  test('partition-primary: the old primary stops being one, another takes over', async () => {
    const old = (await ctx.currentPrimary())!;
    const fault = await round('partition-primary', async (f) => {
      assert.deepEqual(f.targets, [old]);
      assert.equal(cut!.lab.partitions().length, 4);
      await anotherPrimary(old);
    });
    assert.match(fault.detail, new RegExp(`^${old} \\(primary\\) \\| `));
  });

  test('partition-raft-leader: another node leads Raft', async () => {
    const old = (await ctx.raftLeader())!;
    await round('partition-raft-leader', async (f) => {
      assert.deepEqual(f.targets, [old]);
      await c().waitFor('another raft leader', async () => {
        const l = await ctx.raftLeader();
        return l !== null && l !== old;
      }, 30_000);
    });
  });

  test('partition-one: one node cut off both ways', async () => {
    await round('partition-one', async (f) => {
      const i = ctx.nodes.indexOf(f.targets[0]!);
      const pairs = cut!.lab.partitions();
      assert.equal(pairs.length, 4);
      assert.ok(pairs.every(([a, b]) => a === i || b === i), JSON.stringify(pairs));
      // A replica cut off leaves the primary in place; a primary cut off is replaced.
      await anotherPrimary(f.targets[0]!);
    });
  });

  test('partition-halves: minority | majority, a primary only in the majority', async () => {
    await round('partition-halves', async (f) => {
      assert.equal(f.targets.length, 1);
      assert.equal(cut!.lab.partitions().length, 4);
      await c().waitFor('a primary in the majority', async () => {
        const p = await c().primaries();
        return p.length === 1 && !f.targets.includes(p[0]!);
      }, 60_000);
    });
  });

  test('partition-ring: with 3 nodes nothing to cut, and it says so', async () => {
    const fault = await round('partition-ring', async (f) => {
      assert.deepEqual(cut!.lab.partitions(), []);
      assert.deepEqual(f.targets, []);
    });
    assert.match(fault.detail, /no cut/);
  });

  test('partition-bridge: the two outer nodes cannot talk, the bridge sees both; a primary serves', async () => {
    await round('partition-bridge', async (f) => {
      const b = ctx.nodes.indexOf(f.targets[0]!);
      const pairs = cut!.lab.partitions();
      assert.equal(pairs.length, 2);
      assert.ok(pairs.every(([x, y]) => x !== b && y !== b), JSON.stringify(pairs));
      await sleep(3000);
      await c().waitForPrimary(undefined, 30_000);
    });
  });

  test('partition-one-way: a primary that hears nothing is replaced', async () => {
    const old = (await ctx.currentPrimary())!;
    await round('partition-one-way', async (f) => {
      assert.deepEqual(f.targets, [old]);
      const p = ctx.nodes.indexOf(old);
      assert.ok(cut!.lab.partitions().every(([, to]) => to === p));
      await anotherPrimary(old);
    });
  });

  test('partition-one-way-in: a primary whose packets are all lost is replaced', async () => {
    const old = (await ctx.currentPrimary())!;
    await round('partition-one-way-in', async (f) => {
      assert.deepEqual(f.targets, [old]);
      const p = ctx.nodes.indexOf(old);
      assert.ok(cut!.lab.partitions().every(([from]) => from === p));
      await anotherPrimary(old);
    });
  });

  test('kill-agent: the agent is gone until heal restarts it', async () => {
    const fault = await round('kill-agent', async (f) => {
      const h = c().node(f.targets[0]!).handle!;
      assert.equal(h.exit?.signal, 'SIGKILL');
    });
    assert.ok(c().node(fault.targets[0]!).handle?.running, 'running again after heal');
  });

  test('kill-postgres: the postmaster dies and its agent starts another', async () => {
    await round('kill-postgres', async (f) => {
      const m = /postmaster (\d+)/.exec(f.detail);
      assert.ok(m, f.detail);
      const oldPid = Number(m[1]);
      await c().waitFor(`a new postmaster on ${f.targets[0]}`, async () => {
        const pid = await c().postmasterPid(f.targets[0]!);
        return pid !== null && pid !== oldPid;
      }, 60_000);
    });
  });

  test('kill-both: agent and postmaster gone; heal restarts the agent', async () => {
    await round('kill-both', async (f) => {
      assert.equal(c().node(f.targets[0]!).handle!.exit?.signal, 'SIGKILL');
      assert.equal(await c().postmasterPid(f.targets[0]!), null);
    });
  });

  test('pause-agent: the agent answers nothing until SIGCONT', async () => {
    const fault = await round('pause-agent', async (f) => {
      assert.equal(await c().api(f.targets[0]!), null, 'a stopped agent does not answer');
      assert.ok(c().node(f.targets[0]!).handle?.running);
    });
    assert.ok(await c().api(fault.targets[0]!), 'answers after heal');
  });

  test('clock-jump: the agent\'s and PostgreSQL\'s wall clocks jump; the cluster serves on', async () => {
    /** The node's wall clock as its API's HTTP Date header tells it, minus ours, in seconds. */
    const skewOf = async (name: string): Promise<number> => {
      const n = c().node(name);
      const res = await request(`http://${n.testHost}:${n.apiPort}/health`, { headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.dump();
      return (Date.parse(String(res.headers.date)) - Date.now()) / 1000;
    };
    const pgSkewOf = async (name: string): Promise<number> => {
      const r = await c().trySql(name, 'select extract(epoch from clock_timestamp())::float8 as t');
      return Number(r?.rows[0]?.t) - Date.now() / 1000;
    };
    let offset = 0;
    const fault = await round('clock-jump', async (f) => {
      const m = /([+-])(\d+) s$/.exec(f.detail);
      assert.ok(m, f.detail);
      offset = (m[1] === '-' ? -1 : 1) * Number(m[2]);
      assert.ok(Math.abs(offset) >= 60 && Math.abs(offset) <= 3600);
      await sleep(1100); // the Date header is cached for up to a second
      const skew = await skewOf(f.targets[0]!);
      assert.ok(Math.abs(skew - offset) < 3, `agent clock ${skew} s off, wanted ${offset}`);
      const pgSkew = await pgSkewOf(f.targets[0]!);
      assert.ok(Math.abs(pgSkew - offset) < 3, `PostgreSQL clock ${pgSkew} s off, wanted ${offset}`);
      await sleep(3000);
      await c().waitForPrimary(undefined, 30_000);
    });
    await sleep(1100);
    assert.ok(Math.abs(await skewOf(fault.targets[0]!)) < 3, 'back to the real time after heal');
    assert.equal((await readFile(c().node(fault.targets[0]!).clockFile!, 'utf8')).trim(), '+0s');
  });

  test('switchover: the candidate becomes the primary; the answer is recorded', async () => {
    const fault = await round('switchover');
    const [from, to] = fault.targets;
    assert.ok(from && to && from !== to, fault.detail);
    const answer = observed('switchover answered').at(-1);
    assert.equal(answer?.data?.status, 200, JSON.stringify(answer));
    assert.deepEqual(await c().primaries(), [to]);
  });

  test('restart-primary: PostgreSQL of the primary restarts in place', async () => {
    const primary = (await ctx.currentPrimary())!;
    const pid = await c().postmasterPid(primary);
    await round('restart-primary');
    const answer = observed('restart-primary answered').at(-1);
    assert.equal(answer?.data?.status, 200, JSON.stringify(answer));
    const now = await c().postmasterPid(primary);
    assert.ok(now !== null && now !== pid, `postmaster ${pid} -> ${now}`);
  });

  test('membership: a removed replica leaves Raft, and after heal joins again as a new member', async () => {
    const raftId = (name: string): string => `${cut!.lab.clusterIp(ctx.nodes.indexOf(name))}:${c().node(name).raftPort}`;
    const fault = await round('membership', async (f) => {
      const victim = f.targets[0]!;
      assert.match(f.detail, / 200: removed /);
      const leader = (await ctx.raftLeader())!;
      assert.notEqual(leader, victim);
      const st = await c().raftStatus(leader);
      assert.ok(st && !st.voters.includes(raftId(victim)) && !st.learners.includes(raftId(victim)), JSON.stringify(st));
      await c().waitFor(`${victim}'s agent to stop`, async () => c().node(victim).handle?.exit !== null, 30_000);
    });
    const victim = fault.targets[0]!;
    await c().waitFor(`${victim} a raft voter again`, async () => {
      const leader = await ctx.raftLeader();
      return leader !== null && (await c().raftStatus(leader))?.voters.includes(raftId(victim));
    }, 60_000);
    assert.ok(c().node(victim).handle!.stdoutLines.some((l) => l.includes('joining the existing raft cluster')), `${victim} joined as a new member`);
  });

  test('every fault recorded its start once', (t) => {
    for (const e of events) t.diagnostic(e.type === 'nemesis' ? `${e.kind}: ${e.detail}` : `  ${e.what}: ${JSON.stringify(e.data)}`);
    const kinds = events.filter((e) => e.type === 'nemesis').map((e) => (e as NemesisEvent).kind);
    assert.deepEqual(new Set(kinds), new Set(Object.keys(NEMESES)));
    assert.equal(kinds.length, Object.keys(NEMESES).length);
    for (const k of Object.keys(NEMESES)) assert.equal(starts(k).length, 1, k);
  });
});

describe('partition shapes on a 5-node cluster', { timeout: 5 * 60_000 }, () => {
  let cut: ClusterUnderTest | null = null;
  let ctx: FaultContext;
  const events: Array<NemesisEvent | ObservationEvent> = [];

  before(async () => {
    cut = await startClusterUnderTest({ nodes: 5, seed: 7 });
    ctx = cut.faultContext({ record: (e) => events.push(e) });
  });

  after(async () => {
    await cut?.stop();
  });

  /** Injects, checks the cuts against `expect` (the pairs, by name), heals and waits for convergence. */
  async function shape(name: string, expect: (fault: ActiveFault) => Array<[string, string]>): Promise<ActiveFault> {
    const fault = await NEMESES[name]!.inject(ctx);
    try {
      const byName = cut!.lab.partitions().map(([a, b]) => `${ctx.nodes[a]}>${ctx.nodes[b]}`).sort();
      assert.deepEqual(byName, expect(fault).map(([a, b]) => `${a}>${b}`).sort(), fault.detail);
      await sleep(3000);
      assert.ok((await cut!.cluster.primaries()).length <= 1, 'never two primaries');
    } finally {
      await fault.heal();
    }
    await cut!.waitForConvergence(90_000);
    return fault;
  }

  const both = (a: readonly string[], b: readonly string[]): Array<[string, string]> => a.flatMap((x) => b.flatMap((y): Array<[string, string]> => [[x, y], [y, x]]));

  test('partition-ring: each node keeps its two neighbours', async () => {
    await shape('partition-ring', (f) => {
      const ring = /^ring (.*)$/.exec(f.detail)![1]!.split('-').slice(0, 5);
      assert.deepEqual([...ring].sort(), ctx.nodes);
      const pairs: Array<[string, string]> = [];
      for (let i = 0; i < 5; i++) pairs.push(...both([ring[i]!], [ring[(i + 2) % 5]!]));
      return pairs;
    });
  });

  test('partition-halves: 2 | 3', async () => {
    await shape('partition-halves', (f) => {
      assert.equal(f.targets.length, 2);
      return both(f.targets, ctx.nodes.filter((n) => !f.targets.includes(n)));
    });
  });

  test('partition-bridge: 2 | bridge | 2', async () => {
    await shape('partition-bridge', (f) => {
      const [left, right] = f.detail.split(' (')[0]!.split(' | ').filter((_, k) => k !== 1).map((side) => side.split(' '));
      assert.equal(left!.length, 2);
      assert.equal(right!.length, 2);
      assert.ok(!left!.includes(f.targets[0]!) && !right!.includes(f.targets[0]!));
      return both(left!, right!);
    });
  });
});
