// What a quiet cluster costs: each agent's RSS and CPU seconds per minute (with its fence process,
// a separate process it starts), Raft writes per second (growth of the commit index; the lease
// renewals and member keys are written every loop_wait even when nothing happens), and the size of
// each member's Raft data directory over time, which snapshots and log compaction must keep
// bounded. Sampled every `everyS` seconds.
import { readFileSync, readdirSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentCluster } from '../../test/support/agents.ts';
import { sleep } from '../../test/support/processes.ts';

const CLK_TCK = 100; // Linux USER_HZ

export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime
}

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The agent's fence process: its child running fence-process.ts. */
function fencePid(agentPid: number): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === agentPid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('fence-process')) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return null;
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await dirBytes(p);
    else total += (await lstat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

interface RaftStatus {
  role: string;
  commit: number;
  firstIndex: number;
  lastIndex: number;
}

async function raftStatus(c: AgentCluster, name: string): Promise<RaftStatus | null> {
  try {
    const res = await c.raftRequest(name, '/v1/status');
    if (res.status !== 200) return null;
    return JSON.parse(res.body.toString('utf8')) as RaftStatus;
  } catch {
    return null;
  }
}

export interface IdleSample {
  atS: number;
  /** The Raft leader's commit index (null: no leader answered). */
  commit: number | null;
  raftDirBytes: Record<string, number>;
  /** Entries kept in each member's Raft log (lastIndex - firstIndex + 1). */
  raftLogEntries: Record<string, number | null>;
  /** The first index of each member's log: it moves up when a snapshot compacted the log. */
  raftFirstIndex: Record<string, number | null>;
}

export interface IdleResult {
  seconds: number;
  agents: Record<string, { rssMiB: number; fenceRssMiB: number | null; cpuSecondsPerMinute: number; fenceCpuSecondsPerMinute: number | null }>;
  raftWritesPerSecond: number | null;
  samples: IdleSample[];
  /** Per member: the largest Raft data directory seen in the first and in the second half. */
  raftDirMaxBytes: Record<string, { firstHalf: number; secondHalf: number }>;
}

async function sample(c: AgentCluster, names: readonly string[], atS: number): Promise<IdleSample> {
  const statuses = await Promise.all(names.map((n) => raftStatus(c, n)));
  const leader = statuses.find((s) => s?.role === 'leader') ?? null;
  const raftDirBytes: Record<string, number> = {};
  const raftLogEntries: Record<string, number | null> = {};
  const raftFirstIndex: Record<string, number | null> = {};
  for (const [k, n] of names.entries()) {
    raftDirBytes[n] = await dirBytes(c.node(n).raftDataDir);
    const st = statuses[k];
    raftLogEntries[n] = st ? st.lastIndex - st.firstIndex + 1 : null;
    raftFirstIndex[n] = st ? st.firstIndex : null;
  }
  return { atS, commit: leader?.commit ?? null, raftDirBytes, raftLogEntries, raftFirstIndex };
}

export async function measureIdle(c: AgentCluster, names: readonly string[], seconds: number, everyS: number, log: (line: string) => void): Promise<IdleResult> {
  const pids = names.map((n) => {
    const pid = c.node(n).handle?.pid;
    if (pid === undefined || !c.node(n).handle?.running) throw new Error(`idle: the agent of ${n} is not running`);
    return pid;
  });
  const fences = pids.map(fencePid);
  const cpu0 = pids.map(cpuSeconds);
  const fenceCpu0 = fences.map((p) => (p === null ? null : cpuSeconds(p)));
  const t0 = performance.now();
  const samples = [await sample(c, names, 0)];
  for (;;) {
    const elapsedS = (performance.now() - t0) / 1000;
    if (elapsedS >= seconds - 1e-3) break;
    await sleep(Math.min(everyS, seconds - elapsedS) * 1000);
    const s = await sample(c, names, (performance.now() - t0) / 1000);
    samples.push(s);
    log(`  idle ${s.atS.toFixed(0)} s: Raft commit ${s.commit ?? '?'}, data dirs ${names.map((n) => `${n} ${(s.raftDirBytes[n] / 1024).toFixed(0)} KiB`).join(', ')}`);
  }
  const elapsedS = (performance.now() - t0) / 1000;
  const perMinute = (now: number, before: number) => ((now - before) / elapsedS) * 60;
  const agents: IdleResult['agents'] = {};
  for (const [k, n] of names.entries()) {
    const f = fences[k];
    const f0 = fenceCpu0[k];
    let fenceCpu: number | null = null;
    let fenceRss: number | null = null;
    try {
      if (f !== null && f0 !== null) {
        fenceCpu = perMinute(cpuSeconds(f), f0);
        fenceRss = rssMiB(f);
      }
    } catch {
      // the fence was restarted meanwhile
    }
    agents[n] = { rssMiB: rssMiB(pids[k]), fenceRssMiB: fenceRss, cpuSecondsPerMinute: perMinute(cpuSeconds(pids[k]), cpu0[k]), fenceCpuSecondsPerMinute: fenceCpu };
  }
  const first = samples.find((s) => s.commit !== null);
  const last = [...samples].reverse().find((s) => s.commit !== null);
  const raftWritesPerSecond = first && last && last.atS > first.atS ? (last.commit! - first.commit!) / (last.atS - first.atS) : null;
  const half = elapsedS / 2;
  const raftDirMaxBytes: IdleResult['raftDirMaxBytes'] = {};
  for (const n of names) {
    const max = (xs: IdleSample[]) => Math.max(0, ...xs.map((s) => s.raftDirBytes[n]));
    raftDirMaxBytes[n] = { firstHalf: max(samples.filter((s) => s.atS <= half)), secondHalf: max(samples.filter((s) => s.atS > half)) };
  }
  return { seconds: elapsedS, agents, raftWritesPerSecond, samples, raftDirMaxBytes };
}
