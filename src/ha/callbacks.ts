// Patroni's callbacks (reference §7): `postgresql.callbacks.<action>` is run as
// `<command> <action> <role> <scope>` when PostgreSQL starts, stops, restarts, reloads or changes
// role. They run in the background and never hold up the HA loop; a new callback kills one that
// is still running (on_reload has a slot of its own, so a reload does not cancel a role change).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import type { Logger } from 'pino';
import type { CallbackName } from './config/types.ts';
import { withoutAgentSecrets } from './postgres/run-as.ts';

export type CallbackRole = 'primary' | 'replica' | 'demoted';

export interface CallbackOptions {
  commands: Readonly<Partial<Record<CallbackName, string>>>;
  scope: string;
  /** Run as this OS user when the agent is root (the user PostgreSQL runs as); null: as ourselves. */
  runAs: string | null;
  logger: Logger;
}

export class CallbackRunner {
  private readonly opts: CallbackOptions;
  private readonly running = new Map<'main' | 'reload', ChildProcess>();
  private ids: { uid: number; gid: number } | null | undefined;

  constructor(opts: CallbackOptions) {
    this.opts = opts;
  }

  fire(action: CallbackName, role: CallbackRole): void {
    const command = this.opts.commands[action];
    if (!command) return;
    // Whitespace-separated, no shell: the command line is the operator's, its arguments ours.
    const [cmd, ...args] = command.trim().split(/\s+/);
    const slot = action === 'on_reload' ? 'reload' : 'main';
    const previous = this.running.get(slot);
    if (previous && previous.exitCode === null && previous.signalCode === null) previous.kill('SIGKILL');
    const ids = this.userIds();
    try {
      const child = spawn(cmd, [...args, action, role, this.opts.scope], { stdio: 'ignore', env: withoutAgentSecrets(process.env), ...(ids ?? {}) });
      child.on('error', (err) => this.opts.logger.warn({ action, err: err.message }, `callback ${action} could not run`));
      child.on('exit', (code, signal) => {
        if (code !== 0) this.opts.logger.warn({ action, code, signal }, `callback ${action} ended with ${signal ?? `code ${code}`}`);
        if (this.running.get(slot) === child) this.running.delete(slot);
      });
      this.running.set(slot, child);
    } catch (err) {
      this.opts.logger.warn({ action, err: (err as Error).message }, `callback ${action} could not run`);
    }
  }

  /** Kills callbacks still running (the agent is stopping). */
  stop(): void {
    for (const child of this.running.values()) if (child.exitCode === null) child.kill('SIGKILL');
    this.running.clear();
  }

  private userIds(): { uid: number; gid: number } | null {
    if (this.ids !== undefined) return this.ids;
    if (this.opts.runAs === null || process.getuid?.() !== 0) return (this.ids = null);
    const uid = Number(execFileSync('id', ['-u', this.opts.runAs], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', this.opts.runAs], { encoding: 'utf8' }).trim());
    return (this.ids = { uid, gid });
  }
}
