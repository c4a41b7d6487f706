// The agents' logs kept with the report: each agent's full stdout (its JSON log lines, as they
// arrive) in <dir>/<node>.log, one file per node for the whole run. An agent restarted during the
// run (after a kill -9, or at the heal) writes on in the same file. Lines are written as they come,
// so a run that fails half-way still leaves what the agents said until then; the files are closed
// after the cluster has stopped, so the agents' shutdown lines are in them too.
import { createWriteStream, mkdirSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import type { AgentCluster } from '../../../support/agents.ts';
import { AgentStdout } from './agent-stdout.ts';

/** How often a restarted agent's new process is looked for; its earlier lines are replayed, so none is lost. */
const FOLLOW_MS = 200;

export class AgentLogs {
  private readonly files = new Map<string, WriteStream>();
  private stdout: AgentStdout | null = null;
  private timer: NodeJS.Timeout | null = null;

  /** Makes the directory at once: one that cannot be written fails the run before a cluster is started. */
  constructor(
    private readonly dir: string,
    private readonly warn: (line: string) => void,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  /** Starts writing: each node's current agent from its first line on, then every agent started later. */
  follow(cluster: AgentCluster, nodes: readonly string[]): void {
    for (const n of nodes) {
      // Truncated, not appended to: a report directory used again holds the logs of its last run only.
      const file = createWriteStream(join(this.dir, `${n}.log`));
      let warned = false;
      file.on('error', (err) => {
        if (!warned) this.warn(`agent logs: cannot write ${file.path}: ${err.message}`);
        warned = true;
      });
      this.files.set(n, file);
    }
    this.stdout = new AgentStdout(cluster, nodes, (node, line) => void this.files.get(node)?.write(`${line}\n`));
    this.stdout.follow();
    this.timer = setInterval(() => this.stdout?.follow(), FOLLOW_MS);
    this.timer.unref();
  }

  /** Takes the lines of any agent started since the last look, stops listening and closes every file. */
  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.stdout?.follow();
    this.stdout?.stop();
    this.stdout = null;
    const files = [...this.files.values()];
    this.files.clear();
    for (const f of files) f.end();
    // A file that failed has been reported already; closing the others must not wait on it.
    await Promise.all(files.map((f) => finished(f).catch(() => undefined)));
  }
}
