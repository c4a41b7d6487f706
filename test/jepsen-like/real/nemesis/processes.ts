// Process faults: kill -9 of an agent, of a PostgreSQL (the postmaster's whole process group), of
// both, and SIGSTOP of an agent while its PostgreSQL runs on (a stalled VM, a long GC pause: the
// case the fence process exists for, ha/fence/fence-process.ts). Each targets the primary with
// probability 1/2, else a random node. Signals go to PIDs the harness holds (the agent's
// ProcessHandle) or reads from postmaster.pid, never by name.
import type { FaultContext, Nemesis } from '../types.ts';
import { applyFault, primaryOrRandom, roleNote } from './common.ts';

/** kill -9 of the agent; resolves once it has exited. False when it was not running. */
async function killAgentNow(ctx: FaultContext, name: string): Promise<boolean> {
  const handle = ctx.cluster.node(name).handle;
  if (!handle || handle.exit) return false;
  ctx.cluster.killAgent(name);
  await handle.waitForExit(10_000);
  return true;
}

/** Starts the agent again unless it runs. */
async function restartAgent(ctx: FaultContext, name: string): Promise<void> {
  const handle = ctx.cluster.node(name).handle;
  if (handle && !handle.exit) return;
  await ctx.cluster.start(name);
}

export const killAgent: Nemesis = {
  name: 'kill-agent',
  description: 'kill -9 of an agent (the primary\'s with probability 1/2), its PostgreSQL left running; the agent is started again at heal',
  async inject(ctx) {
    const t = await primaryOrRandom(ctx);
    let wasRunning = true;
    return applyFault(
      ctx,
      () => ({ kind: 'kill-agent', targets: [t.name], detail: `kill -9 agent ${t.name}${roleNote(t)}${wasRunning ? '' : ' (it was not running)'}` }),
      async () => {
        wasRunning = await killAgentNow(ctx, t.name);
      },
      () => restartAgent(ctx, t.name),
    );
  },
};

export const killPostgres: Nemesis = {
  name: 'kill-postgres',
  description: 'kill -9 of a node\'s PostgreSQL (postmaster and backends; the primary\'s with probability 1/2); its agent starts it again, heal does nothing',
  async inject(ctx) {
    const t = await primaryOrRandom(ctx);
    let pid: number | null = null;
    return applyFault(
      ctx,
      () => ({ kind: 'kill-postgres', targets: [t.name], detail: pid === null ? `no postmaster running on ${t.name}${roleNote(t)}: nothing killed` : `kill -9 postgres ${t.name}${roleNote(t)} (postmaster ${pid})` }),
      async () => {
        pid = await ctx.cluster.postmasterPid(t.name);
        if (pid !== null) await ctx.cluster.killPostgres(t.name);
      },
      async () => undefined,
    );
  },
};

export const killBoth: Nemesis = {
  name: 'kill-both',
  description: 'kill -9 of an agent and then of its PostgreSQL (the primary\'s with probability 1/2): a machine crash; the agent is started again at heal',
  async inject(ctx) {
    const t = await primaryOrRandom(ctx);
    let pid: number | null = null;
    return applyFault(
      ctx,
      () => ({ kind: 'kill-both', targets: [t.name], detail: `kill -9 agent and postgres ${t.name}${roleNote(t)}${pid === null ? ' (no postmaster was running)' : ''}` }),
      async () => {
        // The agent first, so that it cannot start PostgreSQL again in between.
        pid = await ctx.cluster.postmasterPid(t.name);
        await killAgentNow(ctx, t.name);
        await ctx.cluster.killPostgres(t.name);
      },
      () => restartAgent(ctx, t.name),
    );
  },
};

export const pauseAgent: Nemesis = {
  name: 'pause-agent',
  description: 'SIGSTOP of an agent (the primary\'s with probability 1/2) while its PostgreSQL and fence run on; SIGCONT at heal',
  async inject(ctx) {
    const t = await primaryOrRandom(ctx);
    const handle = ctx.cluster.node(t.name).handle;
    let stopped = false;
    return applyFault(
      ctx,
      () => ({ kind: 'pause-agent', targets: [t.name], detail: `SIGSTOP agent ${t.name}${roleNote(t)}${stopped ? '' : ' (it was not running)'}` }),
      async () => {
        stopped = handle?.kill('SIGSTOP') ?? false;
      },
      async () => {
        handle?.kill('SIGCONT'); // false once it has exited: nothing to do
      },
    );
  },
};

export const PROCESS_NEMESES: readonly Nemesis[] = [killAgent, killPostgres, killBoth, pauseAgent];
