// The faults, one function each. inject() notes the instant of the fault itself (faultAt: the
// clock is read right before the first signal or request, after any preparation such as reading
// the postmaster's PID) and returns how to undo it: recover() brings the member back (restarts
// its agent, resumes it, heals the network); the runner then waits until the cluster is healthy.
import { request } from 'undici';
import type { AgentCluster } from '../../test/support/agents.ts';
import type { NetLab } from '../../test/support/netlab.ts';

export const SCENARIO_NAMES = ['kill-agent-and-postgres', 'kill-postgres', 'sigstop-agent', 'stop-agent', 'switchover', 'partition'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export interface FaultTarget {
  c: AgentCluster;
  lab: NetLab | null;
  primary: string;
  /** The switchover's named candidate. */
  candidate: string;
}

export interface Fault {
  /** performance.now() right before the fault was injected. */
  faultAt: number;
  /** performance.now() once inject() had done its part (signals sent, link down, request sent). */
  injectedAt: number;
  /**
   * The fault's own operation, where it has one (the switchover request, the agent's shutdown):
   * settles with null when it went through, or with why not. A failure ends the wait for a new
   * primary at once (none will come).
   */
  settled: Promise<string | null>;
  recover(): Promise<void>;
}

export interface Scenario {
  /** One line for the report. */
  title: string;
  /** Needs a cluster whose members live in network namespaces. */
  needsLab: boolean;
  inject(t: FaultTarget): Promise<Fault>;
}

const done: Promise<string | null> = Promise.resolve(null);

/** kill -9 of a process group (a postmaster and its backends), or of the PID alone if that fails. */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function postmaster(c: AgentCluster, name: string): Promise<number> {
  // postmasterPid() also tells the cluster to kill it in stopAll, should the bench stop meanwhile.
  const pid = await c.postmasterPid(name);
  if (pid === null) throw new Error(`${name}: no running postmaster to kill`);
  return pid;
}

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  'kill-agent-and-postgres': {
    title: 'kill -9 of the primary\'s agent and PostgreSQL',
    needsLab: false,
    async inject({ c, primary }) {
      const pid = await postmaster(c, primary);
      const faultAt = performance.now();
      c.killAgent(primary);
      killGroup(pid);
      return { faultAt, injectedAt: performance.now(), settled: done, recover: () => c.start(primary) };
    },
  },
  'kill-postgres': {
    title: 'kill -9 of the primary\'s PostgreSQL alone',
    needsLab: false,
    async inject({ c, primary }) {
      const pid = await postmaster(c, primary);
      const faultAt = performance.now();
      killGroup(pid);
      // The agent lives on and acts on its own: nothing to restart.
      return { faultAt, injectedAt: performance.now(), settled: done, recover: async () => undefined };
    },
  },
  'sigstop-agent': {
    title: 'SIGSTOP of the primary\'s agent (PostgreSQL runs on)',
    needsLab: false,
    async inject({ c, primary }) {
      const handle = c.node(primary).handle;
      if (!handle?.running) throw new Error(`${primary}: its agent is not running`);
      const faultAt = performance.now();
      handle.kill('SIGSTOP');
      return { faultAt, injectedAt: performance.now(), settled: done, recover: async () => void handle.kill('SIGCONT') };
    },
  },
  'stop-agent': {
    title: 'graceful stop (SIGTERM) of the primary\'s agent',
    needsLab: false,
    async inject({ c, primary }) {
      const handle = c.node(primary).handle;
      if (!handle?.running) throw new Error(`${primary}: its agent is not running`);
      const faultAt = performance.now();
      // SIGTERM now; SIGKILL if it has not exited in 15 s (it should hand over well before).
      const stopped = handle.stop(15_000).then((exit) => (exit.signal === 'SIGKILL' ? 'the agent did not stop within 15 s and was killed' : null));
      const injectedAt = performance.now();
      return {
        faultAt,
        injectedAt,
        settled: stopped,
        recover: async () => {
          await stopped;
          await c.start(primary);
        },
      };
    },
  },
  switchover: {
    title: 'switchover to a named candidate (POST /switchover)',
    needsLab: false,
    async inject({ c, primary, candidate }) {
      const n = c.node(primary);
      const faultAt = performance.now();
      // The API answers once the candidate holds the leader key (or it gave up: 503), so the
      // answer comes after the hand-over, not before; only a refusal ends the wait early.
      const answer = request(`http://${n.testHost}:${n.apiPort}/switchover`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ leader: primary, candidate }),
        headersTimeout: 90_000,
        bodyTimeout: 90_000,
      }).then(
        async (res) => {
          const text = await res.body.text();
          return res.statusCode === 200 ? null : `POST /switchover answered ${res.statusCode}: ${text}`;
        },
        (err: Error) => `POST /switchover failed: ${err.message}`,
      );
      return { faultAt, injectedAt: performance.now(), settled: answer, recover: async () => void (await answer) };
    },
  },
  partition: {
    title: 'the primary cut off the cluster network (namespaces; both directions)',
    needsLab: true,
    async inject({ c, lab, primary }) {
      const i = c.node(primary).labIndex;
      if (!lab || i === null) throw new Error('partition: the cluster does not run in a network lab');
      // The link goes down somewhere inside `ip link set ... down` (a process spawn): faultAt is
      // before it, so the gap may be longer than the real one by up to injectedAt - faultAt.
      const faultAt = performance.now();
      await lab.isolate(i);
      return { faultAt, injectedAt: performance.now(), settled: done, recover: () => lab.heal(i) };
    },
  },
};

/**
 * The switchover's candidate: in synchronous mode the synchronous standby (the only member that
 * holds every acknowledged commit, and the one an operator would name); otherwise the replicas
 * in turn (the one after the primary, in name order).
 */
export async function pickCandidate(c: AgentCluster, names: readonly string[], primary: string, sync: boolean): Promise<string> {
  const replicas = names.filter((n) => n !== primary);
  if (sync) {
    const answers = await Promise.all(replicas.map((n) => c.api(n, '/synchronous')));
    const standby = replicas.find((_, k) => answers[k]?.status === 200);
    if (standby) return standby;
  }
  const i = names.indexOf(primary);
  return [...names.slice(i + 1), ...names.slice(0, i)].find((n) => n !== primary)!;
}
