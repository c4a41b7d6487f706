// npm run jepsen -- --nemesis <a,b,...> --time <seconds> --seed <n> [--nodes 3|5] [--mode sync-strict|async] [--report <dir>]
//
// One real-process run (needs root: network namespaces). Prints the schedule, progress, each
// checker's verdict, the counts and the failover times; writes history.json and report.html, and
// each agent's stdout as logs/<node>.log while the run goes on.
// Exit status: 0 when every checker passed, 1 on any violation, 2 on bad arguments, 3 when the
// harness itself failed (the cluster did not start, ...), 4 when a checker could not judge.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIN_NODES, NEMESES, nemesesFor } from './nemesis/index.ts';
import { UNSAFE_NEMESES } from './nemesis/unsafe.ts';
import { runJepsen } from './run.ts';
import type { RunOptions } from './run.ts';
import { summaryText, writeReport } from './report.ts';

const KNOWN = { ...NEMESES, ...UNSAFE_NEMESES };
const USAGE = 'usage: npm run jepsen -- --nemesis <a,b,...|all> --time <seconds> --seed <n> [--nodes 3|5] [--mode sync-strict|async] [--report <dir>]';

class ArgError extends Error {}

export interface CliArgs {
  readonly run: Omit<RunOptions, 'log' | 'agentLogDir'>;
  readonly reportDir: string | null;
}

/** Parses the command line; throws ArgError with a one-line message naming the problem. */
export function parseArgs(argv: readonly string[]): CliArgs {
  let nemeses: string[] | null = null;
  let time: number | null = null;
  let seed: number | null = null;
  let nodes: 3 | 5 = 3;
  let mode: 'sync-strict' | 'async' = 'sync-strict';
  let reportDir: string | null = null;
  const value = (flag: string, i: number): string => {
    const v = argv[i];
    if (v === undefined || v.startsWith('--')) throw new ArgError(`${flag} needs a value`);
    return v;
  };
  const integer = (flag: string, text: string, min: number): number => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) throw new ArgError(`${flag} needs an integer ≥ ${min}, got ${JSON.stringify(text)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case '--nemesis': {
        const list = value(flag, ++i).split(',').map((s) => s.trim()).filter((s) => s !== '');
        nemeses = list;
        const unknown = nemeses.filter((n) => !KNOWN[n] && n !== 'all');
        if (unknown.length > 0) throw new ArgError(`unknown nemesis ${unknown.map((n) => JSON.stringify(n)).join(', ')} (known: ${Object.keys(KNOWN).join(', ')})`);
        if (nemeses.length === 0) throw new ArgError('--nemesis needs at least one name');
        break;
      }
      case '--time':
        time = integer(flag, value(flag, ++i), 1);
        break;
      case '--seed':
        seed = integer(flag, value(flag, ++i), 0);
        break;
      case '--nodes': {
        const v = value(flag, ++i);
        if (v !== '3' && v !== '5') throw new ArgError(`--nodes must be 3 or 5, got ${JSON.stringify(v)}`);
        nodes = v === '3' ? 3 : 5;
        break;
      }
      case '--mode': {
        const v = value(flag, ++i);
        if (v !== 'sync-strict' && v !== 'async') throw new ArgError(`--mode must be sync-strict or async, got ${JSON.stringify(v)}`);
        mode = v;
        break;
      }
      case '--report':
        reportDir = value(flag, ++i);
        break;
      default:
        throw new ArgError(`unknown argument ${JSON.stringify(flag)}`);
    }
  }
  if (nemeses === null) throw new ArgError('--nemesis is required');
  if (time === null) throw new ArgError('--time is required');
  if (seed === null) throw new ArgError('--seed is required');
  // 'all': every nemesis that means something on this many nodes (clock-jump included: the run
  // then starts the agents under libfaketime); never the unsafe ones.
  if (nemeses.includes('all')) nemeses = [...new Set([...nemesesFor(nodes, { fakeClock: true }), ...nemeses.filter((n) => n !== 'all')])];
  const tooFew = nemeses.filter((n) => nodes < (MIN_NODES[n] ?? 3));
  if (tooFew.length > 0) throw new ArgError(`${tooFew.join(', ')} needs --nodes ${Math.max(...tooFew.map((n) => MIN_NODES[n]))} or more`);
  return { run: { nodes, seed, mode, timeSec: time, nemeses }, reportDir };
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    console.log('nemeses:');
    for (const n of Object.values(KNOWN)) console.log(`  ${n.name.padEnd(30)} ${n.description}`);
    return 0;
  }
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof ArgError)) throw err;
    console.error(`jepsen: ${err.message}`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    console.error('jepsen: needs root (network namespaces for the partitions)');
    return 2;
  }
  console.log(`jepsen: seed ${args.run.seed}, ${args.run.nodes} nodes, mode ${args.run.mode}, ${args.run.timeSec} s, nemeses ${args.run.nemeses.join(',')}`);
  // Chosen before the run, not after: the agents' logs are written into it while the run goes on.
  const dir = args.reportDir ?? join(tmpdir(), 'conclave-jepsen', `seed-${args.run.seed}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const logs = join(dir, 'logs');
  let result;
  try {
    result = await runJepsen({ ...args.run, agentLogDir: logs, log: (line) => console.log(line) });
  } catch (err) {
    console.error(`jepsen: the run failed: ${(err as Error).stack ?? String(err)}`);
    if (existsSync(logs)) console.error(`agent logs: ${logs}`);
    return 3;
  }
  console.log(summaryText(result));
  const files = await writeReport(result, dir);
  console.log(`report: ${files.html}\nhistory: ${files.json}\nagent logs: ${logs}/<node>.log`);
  return result.valid === true ? 0 : result.valid === false ? 1 : 4;
}

// Exit once stdout is flushed; the harness leaves no handle open, but be sure.
main(process.argv.slice(2)).then(
  (code) => process.stdout.write('', () => process.exit(code)),
  (err: unknown) => {
    console.error(`jepsen: ${(err as Error).stack ?? String(err)}`);
    process.exit(3);
  },
);
