// Command-line options of `npm run bench:failover`. Any mistake is a UsageError: the entry point
// prints its one line and exits with status 2, before a cluster is started.
import { SCENARIO_NAMES } from './scenarios.ts';
import type { ScenarioName } from './scenarios.ts';

export const MODES = ['async', 'sync-strict'] as const;
export type Mode = (typeof MODES)[number];

export interface Options {
  runs: number;
  scenarios: ScenarioName[];
  modes: Mode[];
  haproxy: boolean;
  /** 0: no idle measurement. */
  idleSeconds: number;
}

export const USAGE = `usage: npm run bench:failover -- [--runs N] [--scenarios ${SCENARIO_NAMES.join(',')}] [--modes ${MODES.join(',')}] [--no-haproxy] [--idle-seconds S]
  --runs N           runs per scenario and mode (default 5)
  --scenarios a,b    which scenarios (default: all)
  --modes a,b        asynchronous and/or synchronous strict replication (default: both)
  --no-haproxy       do not measure through HAProxy (it is skipped anyway when not installed)
  --idle-seconds S   idle cost, Raft writes per second and Raft data size, sampled every 10 s (default 60; 0: skip)`;

export class UsageError extends Error {}

function list<T extends string>(flag: string, text: string | undefined, allowed: readonly T[]): T[] {
  if (text === undefined || text === '' || text.startsWith('--')) throw new UsageError(`${flag} needs a comma-separated list of ${allowed.join(', ')}`);
  const items = text.split(',').map((s) => s.trim());
  const unknown = items.filter((s) => !(allowed as readonly string[]).includes(s));
  if (unknown.length > 0) throw new UsageError(`${flag}: unknown ${unknown.map((s) => JSON.stringify(s)).join(', ')} (one of ${allowed.join(', ')})`);
  // In the order given, each once.
  return [...new Set(items as T[])];
}

function number(flag: string, text: string | undefined, integer: boolean, min: number): number {
  const v = text === undefined || text.trim() === '' ? NaN : Number(text);
  if (!Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw new UsageError(`${flag} needs ${integer ? 'an integer' : 'a number'} >= ${min}, got ${text === undefined ? 'nothing' : JSON.stringify(text)}`);
  }
  return v;
}

/** Parses argv (without node and the script); null when --help was asked for. */
export function parseOptions(argv: readonly string[]): Options | null {
  const o: Options = { runs: 5, scenarios: [...SCENARIO_NAMES], modes: [...MODES], haproxy: true, idleSeconds: 60 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].startsWith('--') && argv[i].includes('=') ? [argv[i].slice(0, argv[i].indexOf('=')), argv[i].slice(argv[i].indexOf('=') + 1)] : [argv[i], undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--help':
      case '-h':
        return null;
      case '--runs':
        o.runs = number(flag, value(), true, 1);
        break;
      case '--scenarios':
        o.scenarios = list(flag, value(), SCENARIO_NAMES);
        break;
      case '--modes':
        o.modes = list(flag, value(), MODES);
        break;
      case '--no-haproxy':
        if (inline !== undefined) throw new UsageError('--no-haproxy takes no value');
        o.haproxy = false;
        break;
      case '--idle-seconds':
        o.idleSeconds = number(flag, value(), false, 0);
        break;
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(argv[i])}`);
    }
  }
  return o;
}
