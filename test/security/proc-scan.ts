// Watches every process on the host, as `ps` would, for secrets: the command line of each
// (/proc/<pid>/cmdline, readable by any local user) and, since we run as root, its environment
// (/proc/<pid>/environ). A password in either is a leak; the scanner records where it saw one.
// It also remembers what each program it saw ran with, so a test can prove that it did see the
// program it cares about (a scan that saw nothing proves nothing).
import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

export interface Leak {
  readonly pid: number;
  readonly where: 'cmdline' | 'environ';
  readonly program: string;
  /** Which secret: its index in the list given, not the secret itself (test output is a log too). */
  readonly secretIndex: number;
  /** The command line at the time; never print it for a cmdline leak (it holds the secret). */
  readonly argv: readonly string[];
}

export interface Sighting {
  readonly pid: number;
  readonly argv: readonly string[];
  /** null when the environment could not be read (the process went, or it is not ours to read). */
  readonly env: readonly string[] | null;
}

export class ProcScanner {
  readonly leaks: Leak[] = [];
  /** Program name (basename of argv[0]) → what it ran with, once per PID. */
  readonly seen = new Map<string, Sighting[]>();
  private readonly seenPids = new Set<string>();
  private running = false;
  private loop: Promise<void> | null = null;
  scans = 0;

  constructor(private readonly secrets: readonly string[]) {
    if (secrets.some((s) => s.length < 6)) throw new Error('ProcScanner: secrets must be distinctive (6 characters or more)');
  }

  /** Scans every `intervalMs` until stop(). */
  start(intervalMs: number): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        this.scanOnce();
        await new Promise((resolveSleep) => setTimeout(resolveSleep, intervalMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.scanOnce();
  }

  scanOnce(): void {
    this.scans++;
    let entries: string[];
    try {
      entries = readdirSync('/proc');
    } catch {
      return;
    }
    for (const entry of entries) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter((w) => w !== '');
      } catch {
        continue; // exited while we looked
      }
      if (argv.length === 0) continue; // a kernel thread or a zombie
      let env: string[] | null = null;
      try {
        env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').filter((w) => w !== '');
      } catch {
        env = null;
      }
      const program = basename(argv[0]!).replace(/:$/, '');
      this.check(Number(entry), program, argv, 'cmdline', argv.join(' '));
      if (env) this.check(Number(entry), program, argv, 'environ', env.join('\n'));
      const key = `${entry} ${argv.join(' ')}`;
      if (this.seenPids.has(key)) continue;
      this.seenPids.add(key);
      const list = this.seen.get(program) ?? [];
      list.push({ pid: Number(entry), argv, env });
      this.seen.set(program, list);
    }
  }

  private check(pid: number, program: string, argv: readonly string[], where: Leak['where'], text: string): void {
    this.secrets.forEach((secret, secretIndex) => {
      const key = argv.join(' ');
      if (text.includes(secret) && !this.leaks.some((l) => l.pid === pid && l.where === where && l.secretIndex === secretIndex && l.argv.join(' ') === key)) {
        this.leaks.push({ pid, where, program, secretIndex, argv });
      }
    });
  }
}
