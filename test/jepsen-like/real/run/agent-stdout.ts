// Following each agent's stdout across restarts. An agent restarted by a nemesis or at the heal is
// a new process with a new handle: follow() notices it, replays the lines it printed before (the
// handle keeps its last 10,000) and then hands on each line as it arrives. The observers (decision
// lines) and the agent logs kept with the report (agent-logs.ts) both read the agents through this.
import type { AgentCluster } from '../../../support/agents.ts';
import type { ProcessHandle } from '../../../support/processes.ts';

export class AgentStdout {
  private readonly followed = new Map<string, ProcessHandle>();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly cluster: AgentCluster,
    private readonly nodes: readonly string[],
    private readonly onLine: (node: string, line: string) => void,
  ) {}

  /** Subscribes to each agent's stdout; a restarted agent has a new handle, whose earlier lines are taken as of now. */
  follow(): void {
    for (const n of this.nodes) {
      const h = this.cluster.node(n).handle;
      if (!h || this.followed.get(n) === h) continue;
      this.followed.set(n, h);
      for (const line of h.stdoutLines) this.onLine(n, line);
      this.unsubscribe.push(h.onStdoutLine((line) => this.onLine(n, line)));
    }
  }

  /** Stops listening to every handle followed so far. */
  stop(): void {
    for (const u of this.unsubscribe.splice(0)) u();
  }
}
