// A deliberately unsafe fault, to show the checkers can fail: the primary's agent AND its fence
// process are frozen, so nothing stops its PostgreSQL while another member is promoted. In
// asynchronous mode the old primary goes on acknowledging writes: two writable primaries.
//
// Not in NEMESES (index.ts) on purpose: `--nemesis all` never draws it; it is run only by name.
// The fence process lookup lives here too, because this fault is why the run must SIGCONT fences
// before it stops the cluster (run/faults.ts: resumeStopped).
import { readdirSync, readFileSync } from 'node:fs';
import type { AgentCluster } from '../../../support/agents.ts';
import type { Nemesis } from '../types.ts';
import { applyFault } from './common.ts';

export function signalPid(pid: number, signal: NodeJS.Signals): boolean {
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
