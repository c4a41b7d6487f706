// `npm run bench:handover`: the planned hand-overs and the fence, on real agents and PostgreSQL 15.
//   - switchover write gap: a client writes continuously to whichever member is primary; the gap
//     is the time from its last acknowledged write on the old primary to its first on the new one
//     (POST /switchover to the best member), over --runs runs;
//   - graceful-stop write gap: the same around SIGTERM to the primary's agent (restarted after);
//   - frozen agent: after SIGSTOP of the primary's agent, how long its PostgreSQL still acknowledges
//     writes, and when the new primary first does (the lease is ttl = 2 s from the last renewal).
// Usage: node --import tsx bench/handover-bench.ts [--runs 5]
import { request } from 'undici';
import { AgentCluster } from '../test/support/agents.ts';
import { sleep } from '../test/support/processes.ts';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
if (!Number.isInteger(RUNS) || RUNS < 1) {
  process.stderr.write('--runs needs a positive integer\n');
  process.exit(2);
}
const NAMES = ['n1', 'n2', 'n3'];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (xs: number[]) => `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}) over ${xs.length}`;

async function healthy(c: AgentCluster): Promise<string | null> {
  const p = await c.primaries();
  if (p.length !== 1) return null;
  const r = await Promise.all(NAMES.filter((n) => n !== p[0]).map((n) => c.api(n)));
  return r.every((x) => x?.body.role === 'replica' && x.body.replication_state === 'streaming') ? p[0] : null;
}

/** Writes to `from` until it fails, then to whoever accepts; resolves with the gap and the new primary. */
async function measureGap(c: AgentCluster, from: string, fault: () => Promise<unknown> | void): Promise<{ gapMs: number; lastOldAfterFaultMs: number; to: string }> {
  let lastOk = 0;
  const client = await c.sql(from);
  let running = true;
  const writer = (async () => {
    while (running) {
      const ok = await Promise.race([client.query('insert into bench default values').then(() => true, () => false), sleep(500).then(() => false)]);
      if (!ok) break;
      lastOk = performance.now();
    }
    await client.end().catch(() => undefined);
  })();
  await sleep(300);
  const faultAt = performance.now();
  const faulting = fault();
  let to: string | null = null;
  let firstNew = 0;
  while (to === null) {
    for (const n of NAMES.filter((x) => x !== from)) {
      if (await c.trySql(n, 'insert into bench default values')) {
        to = n;
        firstNew = performance.now();
        break;
      }
    }
    if (performance.now() - faultAt > 60_000) throw new Error('no new primary within 60 s');
    if (to === null) await sleep(10);
  }
  running = false;
  await writer;
  await faulting;
  return { gapMs: firstNew - lastOk, lastOldAfterFaultMs: lastOk - faultAt, to };
}

const c = await AgentCluster.create(NAMES.map((name) => ({ name })), { logLevel: 'info' });
try {
  await c.startAll();
  let primary = await c.waitFor('a healthy cluster', () => healthy(c), 120_000);
  await c.trySql(primary, 'create table bench (id serial primary key)');

  const switchover: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const from = primary;
    const r = await measureGap(c, from, () => request(`http://127.0.0.1:${c.node(from).apiPort}/switchover`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ leader: from }), headersTimeout: 60_000, bodyTimeout: 60_000 }).then((res) => res.body.dump()));
    switchover.push(r.gapMs);
    process.stdout.write(`switchover ${i + 1}: ${from} → ${r.to}, write gap ${r.gapMs.toFixed(0)} ms\n`);
    primary = await c.waitFor('a healthy cluster', () => healthy(c), 60_000);
  }

  const graceful: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const from = primary;
    const r = await measureGap(c, from, () => c.stopAgent(from));
    graceful.push(r.gapMs);
    process.stdout.write(`graceful stop ${i + 1}: ${from} → ${r.to}, write gap ${r.gapMs.toFixed(0)} ms\n`);
    await c.start(from);
    primary = await c.waitFor('a healthy cluster', () => healthy(c), 60_000);
  }

  const frozenWrites: number[] = [];
  const frozenNew: number[] = [];
  for (let i = 0; i < Math.min(RUNS, 3); i++) {
    const from = primary;
    const frozeAt = performance.now();
    const r = await measureGap(c, from, () => {
      c.node(from).handle!.kill('SIGSTOP');
    });
    frozenWrites.push(r.lastOldAfterFaultMs);
    frozenNew.push(r.lastOldAfterFaultMs + r.gapMs);
    process.stdout.write(`frozen agent ${i + 1}: ${from}'s PostgreSQL acknowledged writes for ${r.lastOldAfterFaultMs.toFixed(0)} ms after the freeze; ${r.to} writable ${(r.lastOldAfterFaultMs + r.gapMs).toFixed(0)} ms after it (${(performance.now() - frozeAt).toFixed(0)} ms measured)\n`);
    c.node(from).handle!.kill('SIGCONT');
    primary = await c.waitFor('a healthy cluster', () => healthy(c), 60_000);
  }

  process.stdout.write(`switchover write gap: ${fmt(switchover)}\ngraceful-stop write gap: ${fmt(graceful)}\nfrozen agent: PostgreSQL writable after the freeze ${fmt(frozenWrites)}; new primary writable after the freeze ${fmt(frozenNew)}\n`);
  process.stdout.write(`${JSON.stringify({ bench: 'handover', switchoverGapMs: switchover, gracefulStopGapMs: graceful, frozenWritableMs: frozenWrites, frozenNewPrimaryMs: frozenNew })}\n`);
} finally {
  for (const n of c.nodes.values()) n.handle?.kill('SIGCONT');
  await c.stopAll();
}
