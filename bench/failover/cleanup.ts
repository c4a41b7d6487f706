// Everything the bench starts (clusters, HAProxy, network namespaces) is undone by a function
// registered here as soon as the thing exists, so that a failure half-way, an error thrown from
// anywhere, or Ctrl-C leaves nothing running. Each function runs once, newest first; the normal
// path calls the one it got back when it is done with the resource, the signal handler runs
// whatever is left. (processes.ts kills its own children on exit as a last resort, but not the
// postmasters, which the agents start detached: only AgentCluster.stopAll stops those, by PID.)

const pending: Array<{ what: string; run: () => Promise<void> }> = [];
let interrupted = false;

/** Registers `undo`; returns a function that runs it (once) and unregisters it. */
export function deferCleanup(what: string, undo: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | null = null;
  const entry = {
    what,
    run: () => {
      done ??= undo().catch((err: unknown) => {
        process.stderr.write(`cleanup of ${what} failed: ${(err as Error).message}\n`);
      });
      const i = pending.indexOf(entry);
      if (i >= 0) pending.splice(i, 1);
      return done;
    },
  };
  pending.push(entry);
  return entry.run;
}

/** Runs every cleanup still registered, newest first. */
export async function cleanupAll(): Promise<void> {
  while (pending.length > 0) await pending[pending.length - 1].run();
}

/** True once a signal asked the bench to stop (errors after that are the shutdown's, not news). */
export function wasInterrupted(): boolean {
  return interrupted;
}

/**
 * SIGINT, SIGTERM, SIGHUP: clean up, then exit with 128 + the signal's number. A second signal
 * during the cleanup exits at once (processes.ts then SIGKILLs the agents; postmasters of killed
 * agents may stay behind, and their temporary directories).
 */
export function installSignalHandlers(): void {
  const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // process.on, not once: processes.ts's own handler stands aside only while ours is registered.
    process.on(signal, () => {
      if (interrupted) {
        process.stderr.write(`${signal} again: exiting without cleaning up\n`);
        process.exit(128 + numbers[signal]);
      }
      interrupted = true;
      process.stderr.write(`${signal}: stopping everything the bench started (${pending.map((p) => p.what).join(', ') || 'nothing'})\n`);
      void cleanupAll().finally(() => process.exit(128 + numbers[signal]));
    });
  }
}
