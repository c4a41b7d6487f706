// One run of the real-process harness (jepsen.md §1's test shape): start a cluster under test,
// start the clients and the observers, apply the seeded schedule's faults in order, heal
// everything, wait for convergence (and record how long it took), take final reads on every node,
// stop, and check. Returns everything the report needs; never leaves a process running.
//
// Observers besides the clients: the agents' log lines (decisions, stamped on arrival), each
// node's /patroni and Raft /v1/status every 500 ms (WAL positions, terms, leaders), and a probe of
// the cluster store (put/get on keys of its own, reads of the leader key with their revision).
import { readdirSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { AgentCluster } from '../../support/agents.ts';
import { sleep } from '../../support/processes.ts';
import { Prng } from '../sim/prng.ts';
import { startClusterUnderTest } from './cluster-under-test.ts';
import { NEMESES } from './nemesis/index.ts';
import { applyFault } from './nemesis/common.ts';
import type { ActiveFault, FaultContext, Nemesis, NemesisEvent, ObservationEvent, RunEvent } from './types.ts';
import { buildSchedule, describeSchedule } from './schedule.ts';
import type { Schedule } from './schedule.ts';
import { Workload, TABLE_DDL, finalRead } from './workload.ts';
import { checkAll, convergenceProblems, failoverTimes, inserts, lostWrites, parseLsn } from './checkers.ts';
import type { AgentDecision, CheckResult, Convergence, ConvergenceSnapshot, FailoverTime, Mode, NodeSnapshot, PositionSample, RaftSample, RunRecord, StoreOp, Verdict } from './checkers.ts';

export const LEADER_KEY = '/service/test/leader';
const PROBE_PREFIX = '/jepsen/probe/';
const DEFAULT_MAX_LAG = 1_048_576;

export interface RunOptions {
  readonly nodes: 3 | 5;
  readonly seed: number;
  readonly mode: Mode;
  /** Length of the fault phase (faults and quiet periods), seconds. */
  readonly timeSec: number;
  readonly nemeses: readonly string[];
  /** Where nemesis names are looked up; default NEMESES plus UNSAFE_NEMESES. */
  readonly registry?: Readonly<Record<string, Nemesis>>;
  /** Extra dynamic settings, merged over the mode's. */
  readonly dcs?: Record<string, unknown>;
  readonly holdMs?: readonly [number, number];
  readonly quietMs?: readonly [number, number];
  /** How long after the heal the cluster has to converge; default 60 s. */
  readonly convergeBoundMs?: number;
  readonly clientsPerNode?: number;
  /** Progress lines (the CLI prints them; tests prefix them with '#'). */
  readonly log?: (line: string) => void;
}

export interface RunCounts {
  readonly ok: number;
  readonly failed: number;
  readonly unknown: number;
  /** Acknowledged writes missing from the final primary, or null when it could not be read. */
  readonly lost: number | null;
}

export interface RunResult {
  readonly options: Omit<RunOptions, 'registry' | 'log'>;
  readonly startedAtWall: string;
  readonly schedule: Schedule;
  readonly record: RunRecord;
  readonly checks: CheckResult[];
  readonly counts: RunCounts;
  readonly failovers: FailoverTime[];
  /** false if any checker found a violation; 'unknown' if none did but one could not judge. */
  readonly valid: Verdict;
  readonly durationMs: number;
}

/** The mode's dynamic settings: strict synchronous replication, or asynchronous. */
export function modeDcs(mode: Mode): Record<string, unknown> {
  return mode === 'sync-strict' ? { synchronous_mode: true, synchronous_mode_strict: true } : { synchronous_mode: false };
}

export async function runJepsen(opts: RunOptions): Promise<RunResult> {
  const log = opts.log ?? (() => undefined);
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const startedAtWall = new Date().toISOString();
  const registry = opts.registry ?? { ...NEMESES, ...UNSAFE_NEMESES };
  for (const n of opts.nemeses) if (!registry[n]) throw new Error(`unknown nemesis ${JSON.stringify(n)}`);
  const schedule = buildSchedule({ seed: opts.seed, nemeses: opts.nemeses, durationMs: opts.timeSec * 1000, holdMs: opts.holdMs, quietMs: opts.quietMs });
  log(describeSchedule(schedule));

  const dcs = { ...modeDcs(opts.mode), ...opts.dcs };
  const history: RunEvent[] = [];
  const record = (e: RunEvent): void => void history.push(e);
  let ids = 0;
  const nextId = (): number => ids++;

  log(`starting ${opts.nodes} nodes (${opts.mode})`);
  const under = await startClusterUnderTest({ nodes: opts.nodes, seed: opts.seed, dcs, fakeClock: opts.nemeses.includes('clock-jump') });
  const { cluster, lab, nodes } = under;
  const observers = new Observers(cluster, nodes, now, record);
  let workload: Workload | null = null;
  try {
    await waitUntilReady(cluster, nodes, opts.mode, lab, log);
    observers.start();
    const rng = new Prng(opts.seed ^ 0x6a09e667);
    workload = new Workload({ cluster, nodes, clientsPerNode: opts.clientsPerNode, rng: rng.fork(), now, record }, nextId);
    workload.start();
    log('workload started');

    const ctx: FaultContext = under.faultContext({ record: (e: NemesisEvent | ObservationEvent) => record(e), rng: rng.fork(), now });
    const faults = await applySchedule(ctx, schedule, registry, log);

    // Heal everything (each heal is idempotent), let stopped or dead agents run again.
    for (const f of faults) await f.heal().catch((err: Error) => record(observation(now, 'heal failed', null, { kind: f.kind, error: err.message })));
    await reviveAgents(cluster, nodes, now, record);
    const healedAt = now();
    record(observation(now, 'healed', null));
    log('healed everything; waiting for convergence');
    const convergence = await waitForConvergence(cluster, lab, nodes, healedAt, opts.convergeBoundMs ?? 60_000, now);
    record(observation(now, convergence.convergedAt === null ? 'not converged' : 'converged', null, { afterMs: (convergence.convergedAt ?? now()) - healedAt }));
    log(convergence.convergedAt === null ? `NOT converged within ${(convergence.boundMs / 1000).toFixed(0)} s` : `converged ${((convergence.convergedAt - healedAt) / 1000).toFixed(1)} s after the heal`);

    await workload.stop();
    await observers.stop();
    await waitForReplay(cluster, nodes, 20_000);
    await Promise.all(nodes.map((n) => finalRead(cluster, n, { now, record, nextId, timeoutMs: 20_000 })));

    const maxLag = typeof dcs.maximum_lag_on_failover === 'number' ? dcs.maximum_lag_on_failover : DEFAULT_MAX_LAG;
    const loopWait = typeof dcs.loop_wait === 'number' ? dcs.loop_wait : 0.5;
    const runRecord: RunRecord = {
      mode: opts.mode,
      history,
      commits: workload.commits,
      maximumLagOnFailover: maxLag,
      lagSlackBytes: 65_536,
      // A decision line arrives after its cycle acted (the promotion done): a wide margin keeps the
      // lag bound a lower bound.
      publishMarginMs: loopWait * 1000 + 3000,
      convergence,
      storeOps: observers.storeOps,
      leaderKey: LEADER_KEY,
      raftSamples: observers.raftSamples,
      positions: observers.positions,
      decisions: observers.decisions,
      mayFailOver: readMayFailOver(cluster, nodes),
    };
    const checks = checkAll(runRecord);
    const ops = inserts(history);
    const lost = lostWrites(runRecord);
    const counts: RunCounts = {
      ok: ops.filter((o) => o.outcome === 'ok').length,
      failed: ops.filter((o) => o.outcome === 'fail').length,
      unknown: ops.filter((o) => o.outcome === 'unknown').length,
      lost: lost === null ? null : lost.length,
    };
    const valid: Verdict = checks.some((c) => c.valid === false) ? false : checks.some((c) => c.valid === 'unknown') ? 'unknown' : true;
    const { registry: _r, log: _l, ...options } = opts;
    return { options, startedAtWall, schedule, record: runRecord, checks, counts, failovers: failoverTimes(history), valid, durationMs: now() };
  } finally {
    await workload?.stop().catch(() => undefined);
    await observers.stop().catch(() => undefined);
    resumeStopped(cluster, nodes);
    await under.stop();
  }
}

function observation(now: () => number, what: string, node: string | null, data?: Record<string, unknown>): ObservationEvent {
  return data === undefined ? { type: 'observation', what, node, at: now() } : { type: 'observation', what, node, at: now(), data };
}

/** Applies the faults at their times; returns every fault injected (all healed already). */
async function applySchedule(ctx: FaultContext, schedule: Schedule, registry: Readonly<Record<string, Nemesis>>, log: (line: string) => void): Promise<ActiveFault[]> {
  const phaseStart = ctx.now();
  const injected: ActiveFault[] = [];
  const until = (t: number): Promise<void> => sleep(Math.max(0, t - ctx.now()));
  for (const f of schedule.faults) {
    await until(phaseStart + f.startAt);
    const nemesis = registry[f.nemesis];
    const calledAt = ctx.now();
    let fault: ActiveFault;
    try {
      fault = await nemesis.inject(ctx);
    } catch (err) {
      ctx.record(observation(ctx.now, 'nemesis failed', null, { nemesis: f.nemesis, error: (err as Error).message }));
      log(`  ${f.nemesis}: inject failed: ${(err as Error).message}`);
      continue;
    }
    injected.push(fault);
    log(`+${((ctx.now() - phaseStart) / 1000).toFixed(1)} s  ${fault.kind}: ${fault.detail}`);
    await until(calledAt + f.holdMs);
    try {
      await fault.heal();
    } catch (err) {
      ctx.record(observation(ctx.now, 'heal failed', null, { kind: fault.kind, error: (err as Error).message }));
      log(`  ${fault.kind}: heal failed (retried at the end): ${(err as Error).message}`);
    }
    ctx.record({ type: 'nemesis', phase: 'end', kind: fault.kind, targets: fault.targets, detail: fault.detail, at: ctx.now() });
  }
  await until(phaseStart + schedule.durationMs);
  return injected;
}

/** SIGCONT every agent (a paused one cannot be healed otherwise) and start agents that exited. */
async function reviveAgents(cluster: AgentCluster, nodes: readonly string[], now: () => number, record: (e: RunEvent) => void): Promise<void> {
  resumeStopped(cluster, nodes);
  for (const n of nodes) {
    const h = cluster.node(n).handle;
    if (h && !h.exit) continue;
    record(observation(now, 'agent started at heal', n, { exit: h?.exit ?? null }));
    await cluster.start(n).catch((err: Error) => record(observation(now, 'agent failed to start', n, { error: err.message })));
  }
}

/** SIGCONT to every agent and fence process of the cluster (both may be SIGSTOPped by a nemesis). */
function resumeStopped(cluster: AgentCluster, nodes: readonly string[]): void {
  for (const n of nodes) {
    cluster.node(n).handle?.kill('SIGCONT');
    const fence = fencePid(cluster, n);
    if (fence !== null) signalPid(fence, 'SIGCONT');
  }
}

function signalPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** The PID of a node's fence process (its command line names fence-process.ts and the node's data directory), or null. */
export function fencePid(cluster: AgentCluster, node: string): number | null {
  const dataDir = cluster.node(node).pgDataDir;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.endsWith('fence-process.ts')) && argv.includes(dataDir)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return null;
}

function readMayFailOver(cluster: AgentCluster, nodes: readonly string[]): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const n of nodes) {
    try {
      const tags = ((parseYaml(readFileSync(cluster.node(n).configPath, 'utf8')) as { tags?: Record<string, unknown> }).tags ?? {});
      const priority = typeof tags.failover_priority === 'number' ? tags.failover_priority : 1;
      out[n] = !(tags.nofailover === true || tags.nofailover === 'true') && priority > 0;
    } catch {
      out[n] = true;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Readiness, convergence and catch-up.

interface LabLike {
  clusterIp(i: number): string;
}

/** One primary with every replica streaming from it (and, in sync mode, a synchronous standby); then the table, everywhere. */
async function waitUntilReady(cluster: AgentCluster, nodes: readonly string[], mode: Mode, lab: LabLike, log: (line: string) => void): Promise<void> {
  let problems: string[] = [];
  const snapshot = await cluster.waitFor('a converged cluster to start from', async () => {
    const s = await takeSnapshot(cluster, lab, nodes, () => 0);
    problems = convergenceProblems(s);
    return problems.length === 0 ? s : null;
  }, 120_000, 500).catch((err: Error) => {
    throw new Error(`${problems.join('; ')}\n${err.message}`);
  });
  const primary = snapshot.nodes.find((n) => n.role === 'primary')!.name;
  if (mode === 'sync-strict') {
    await cluster.waitFor('a synchronous standby', async () => (await cluster.trySql(primary, "select 1 from pg_stat_replication where sync_state = 'sync'"))?.rowCount === 1, 60_000, 250);
  }
  await cluster.waitFor('the jepsen table', async () => (await cluster.trySql(primary, TABLE_DDL)) !== null, 30_000, 250);
  await cluster.waitFor('the jepsen table on every node', async () => (await Promise.all(nodes.map((n) => cluster.trySql(n, 'select 1 from jepsen limit 0')))).every((r) => r !== null), 30_000, 250);
  log(`cluster ready: primary ${primary}`);
}

/** Polls until a snapshot passes convergenceProblems or the bound passes. */
async function waitForConvergence(cluster: AgentCluster, lab: LabLike, nodes: readonly string[], healedAt: number, boundMs: number, now: () => number): Promise<Convergence> {
  let last: ConvergenceSnapshot | null = null;
  while (now() - healedAt <= boundMs) {
    last = await takeSnapshot(cluster, lab, nodes, now);
    if (convergenceProblems(last).length === 0) return { healedAt, boundMs, convergedAt: last.at, last };
    await sleep(500);
  }
  return { healedAt, boundMs, convergedAt: null, last };
}

const SNAPSHOT_SQL = `select pg_is_in_recovery() as recovery,
  case when pg_is_in_recovery() then null else pg_walfile_name(pg_current_wal_lsn()) end as walfile,
  r.status, r.sender_host, r.sender_port, r.received_tli
  from (select 1) one left join pg_stat_wal_receiver r on true`;

async function takeSnapshot(cluster: AgentCluster, lab: LabLike, nodes: readonly string[], now: () => number): Promise<ConvergenceSnapshot> {
  const ids = raftIds(cluster, lab, nodes);
  const snap = await Promise.all(nodes.map(async (name, i): Promise<NodeSnapshot> => {
    const node = cluster.node(name);
    const address = `${lab.clusterIp(node.labIndex ?? i)}:${node.pgPort}`;
    const [res, raft] = await Promise.all([cluster.trySql(name, SNAPSHOT_SQL), raftStatus(cluster, name)]);
    const raftView = raft === null ? null : { role: raft.role, term: raft.term, leader: raft.leader === null ? null : (ids.get(raft.leader) ?? raft.leader), voters: raft.voters.map((v) => ids.get(v) ?? v) };
    const row = res?.rows[0] as { recovery: boolean; walfile: string | null; status: string | null; sender_host: string | null; sender_port: number | null; received_tli: number | null } | undefined;
    if (!row) return { name, role: null, timeline: null, address, receiver: null, raft: raftView };
    if (!row.recovery) return { name, role: 'primary', timeline: parseInt(row.walfile!.slice(0, 8), 16), address, receiver: null, raft: raftView };
    const receiver = row.status === null ? null : { status: row.status, upstream: `${row.sender_host}:${row.sender_port}` };
    return { name, role: 'replica', timeline: row.received_tli, address, receiver, raft: raftView };
  }));
  let leaderKey: string | null = null;
  try {
    leaderKey = await cluster.getKey(LEADER_KEY);
  } catch {
    leaderKey = null;
  }
  return { at: now(), nodes: snap, leaderKey };
}

/** Raft member id ("clusterIp:raftPort") → node name. */
function raftIds(cluster: AgentCluster, lab: LabLike, nodes: readonly string[]): Map<string, string> {
  return new Map(nodes.map((n, i) => [`${lab.clusterIp(cluster.node(n).labIndex ?? i)}:${cluster.node(n).raftPort}`, n]));
}

interface RaftStatusBody {
  id: string;
  role: string;
  term: number;
  leader: string | null;
  voters: string[];
}

async function raftStatus(cluster: AgentCluster, name: string): Promise<RaftStatusBody | null> {
  return (await cluster.raftStatus(name)) as RaftStatusBody | null;
}

/** Waits (at most `timeoutMs`) until every replica has replayed what the primary has written. */
async function waitForReplay(cluster: AgentCluster, nodes: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const rows = await Promise.all(nodes.map((n) => cluster.trySql(n, 'select pg_is_in_recovery() as recovery, (case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end)::text as lsn')));
    const answers = rows.map((r) => r?.rows[0] as { recovery: boolean; lsn: string | null } | undefined);
    const primary = answers.find((a) => a && !a.recovery);
    if (primary?.lsn && answers.every((a) => a?.lsn && parseLsn(a.lsn) >= parseLsn(primary.lsn!))) return;
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------------------
// Observers: agent logs, status polls, store probes.

class Observers {
  readonly decisions: AgentDecision[] = [];
  readonly positions: PositionSample[] = [];
  readonly raftSamples: RaftSample[] = [];
  readonly storeOps: StoreOp[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];
  private readonly subscribed = new Map<string, unknown>();
  private readonly unsubscribe: (() => void)[] = [];
  private primaries = '';
  private believedLeader: string | null = null;
  private storeIds = 0;

  constructor(
    private readonly cluster: AgentCluster,
    private readonly nodes: readonly string[],
    private readonly now: () => number,
    private readonly record: (e: RunEvent) => void,
  ) {}

  start(): void {
    this.loops.push(this.every(200, () => this.followLogs()));
    this.loops.push(this.every(500, () => this.pollStatus()));
    for (const n of this.nodes) this.loops.push(this.probeLoop(n));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    this.loops = [];
    this.followLogs();
    for (const u of this.unsubscribe.splice(0)) u();
  }

  private async every(ms: number, fn: () => unknown): Promise<void> {
    while (!this.stopped) {
      await fn();
      await sleep(ms);
    }
  }

  /** Subscribes to each agent's stdout; a restarted agent has a new handle, whose earlier lines are taken as of now. */
  private followLogs(): void {
    for (const n of this.nodes) {
      const h = this.cluster.node(n).handle;
      if (!h || this.subscribed.get(n) === h) continue;
      this.subscribed.set(n, h);
      for (const line of h.stdoutLines) this.onLine(n, line);
      this.unsubscribe.push(h.onStdoutLine((line) => this.onLine(n, line)));
    }
  }

  private onLine(node: string, line: string): void {
    if (!line.startsWith('{')) return;
    try {
      const j = JSON.parse(line) as { level?: number; msg?: unknown };
      if (typeof j.msg === 'string' && (j.level ?? 0) >= 30) this.decisions.push({ at: this.now(), node, msg: j.msg });
    } catch {
      // not a JSON line
    }
  }

  private async pollStatus(): Promise<void> {
    const answers = await Promise.all(this.nodes.map(async (n) => ({ n, api: await this.cluster.api(n), raft: await raftStatus(this.cluster, n) })));
    const at = this.now();
    const primaries: string[] = [];
    for (const { n, api, raft } of answers) {
      const body = api?.body as { role?: string; xlog?: { location?: number; received_location?: number; replayed_location?: number } } | undefined;
      if (body?.role === 'primary' && typeof body.xlog?.location === 'number') {
        this.positions.push({ at, node: n, role: 'primary', position: body.xlog.location });
        primaries.push(n);
      } else if (body?.role === 'replica') {
        const pos = Math.max(body.xlog?.received_location ?? 0, body.xlog?.replayed_location ?? 0);
        if (pos > 0) this.positions.push({ at, node: n, role: 'replica', position: pos });
      }
      if (raft) {
        this.raftSamples.push({ at, node: n, term: raft.term, role: raft.role, leader: raft.leader });
        if (raft.role === 'leader') this.believedLeader = n;
      }
    }
    const key = primaries.join(',');
    if (key !== this.primaries) {
      this.primaries = key;
      this.record({ type: 'observation', what: 'primaries', node: primaries.length === 1 ? primaries[0] : null, at, data: { primaries } });
    }
  }

  /** One prober per member: puts of unique values to the believed Raft leader, gets through this member, reads of the leader key. */
  private async probeLoop(member: string): Promise<void> {
    const rng = new Prng(this.nodes.indexOf(member) + 17);
    for (let seq = 0; !this.stopped; seq++) {
      const draw = rng.next();
      const key = `${PROBE_PREFIX}${Math.floor(this.now() / 10_000)}`;
      if (draw < 0.35) await this.storeOp(this.believedLeader ?? member, member, 'put', key, `${member}-${seq}`);
      else if (draw < 0.7) await this.storeOp(member, member, 'get', key);
      else await this.storeOp(member, member, 'get', LEADER_KEY);
      await sleep(rng.between(100, 200));
    }
  }

  private async storeOp(target: string, client: string, kind: 'get' | 'put', key: string, value?: string): Promise<void> {
    const op: StoreOp = { id: this.storeIds++, client: `probe-${client}`, member: target, kind, key, invokeTime: this.now(), completeTime: null, outcome: 'unknown' };
    if (value !== undefined) op.value = value;
    this.storeOps.push(op);
    let connected = false;
    try {
      const res = await this.cluster.raftRequest(target, `/v1/kv/${encodeURIComponent(key)}`, {
        method: kind === 'put' ? 'PUT' : 'GET',
        ...(kind === 'put' ? { contentType: 'application/json', body: JSON.stringify({ value }) } : {}),
        timeoutMs: 2500,
      });
      connected = true;
      let body: { value?: string; modRevision?: number; error?: string } = {};
      try {
        body = JSON.parse(res.body.toString('utf8')) as typeof body;
      } catch {
        // no JSON: judged by the status alone
      }
      op.completeTime = this.now();
      if (res.status === 200) {
        op.outcome = 'ok';
        if (kind === 'get') {
          op.result = { value: body.value ?? null };
          op.modRevision = body.modRevision;
        }
      } else if (kind === 'get' && res.status === 404) {
        op.outcome = 'ok';
        op.result = { value: null };
      } else if (kind === 'get' || body.error === 'ERR_NOT_LEADER' || body.error === 'ERR_PROPOSAL_DROPPED') {
        // A read has no effect; a write refused by a follower, or whose entry was overwritten, did not happen.
        op.outcome = 'fail';
        if (body.error === 'ERR_NOT_LEADER') this.believedLeader = null;
      } else {
        op.completeTime = null; // sent, answer inconclusive: unknown
      }
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const notSent = !connected && /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|UND_ERR_CONNECT_TIMEOUT/.test(`${code} ${(err as Error).message}`);
      if (kind === 'get' || notSent) {
        op.outcome = 'fail';
        op.completeTime = this.now();
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A deliberately unsafe fault, to show the checkers can fail: the primary's agent AND its fence
// process are frozen, so nothing stops its PostgreSQL while another member is promoted. In
// asynchronous mode the old primary goes on acknowledging writes: two writable primaries.

export const pauseAgentAndFence: Nemesis = {
  name: 'unsafe-pause-agent-and-fence',
  description: "UNSAFE (defeats fencing on purpose): SIGSTOP of the primary's agent and of its fence process; SIGCONT at heal",
  async inject(ctx) {
    const primary = await ctx.currentPrimary();
    if (primary === null) throw new Error('unsafe-pause-agent-and-fence: no primary');
    const handle = ctx.cluster.node(primary).handle;
    let fence: number | null = null;
    return applyFault(
      ctx,
      () => ({ kind: 'unsafe-pause-agent-and-fence', targets: [primary], detail: `SIGSTOP agent and fence (pid ${fence ?? 'not found'}) of ${primary} (primary)` }),
      async () => {
        fence = fencePid(ctx.cluster, primary);
        if (fence !== null) signalPid(fence, 'SIGSTOP');
        handle?.kill('SIGSTOP');
      },
      async () => {
        handle?.kill('SIGCONT');
        if (fence !== null) signalPid(fence, 'SIGCONT');
      },
    );
  },
};

export const UNSAFE_NEMESES: Readonly<Record<string, Nemesis>> = { [pauseAgentAndFence.name]: pauseAgentAndFence };
