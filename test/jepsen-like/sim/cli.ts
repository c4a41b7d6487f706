// npm run sim -- --seeds N [--from S] [--duration MS]     many seeds, one line per failing seed
// npm run sim -- --seed S --trace                         replay one seed with its event trace
import { PROFILES, runSimulation } from './simulation.ts';
import type { SimResult } from './simulation.ts';

interface Args {
  seeds: number;
  from: number;
  seed: number | null;
  trace: boolean;
  duration: number | undefined;
  profile: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seeds: 100, from: 1, seed: null, trace: false, duration: undefined, profile: 'default' };
  const number = (flag: string, value: string | undefined): number => {
    const n = Number(value);
    if (value === undefined || !Number.isSafeInteger(n) || n < 0) {
      console.error(`sim: ${flag} needs a non-negative integer, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`);
      process.exit(2);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case '--seeds':
        args.seeds = number(flag, argv[++i]);
        break;
      case '--from':
        args.from = number(flag, argv[++i]);
        break;
      case '--seed':
        args.seed = number(flag, argv[++i]);
        break;
      case '--duration':
        args.duration = number(flag, argv[++i]);
        break;
      case '--trace':
        args.trace = true;
        break;
      case '--profile':
        args.profile = argv[++i] ?? '';
        if (!PROFILES[args.profile]) {
          console.error(`sim: unknown profile ${JSON.stringify(args.profile)} (known: ${Object.keys(PROFILES).join(', ')})`);
          process.exit(2);
        }
        break;
      default:
        console.error(`sim: unknown argument ${JSON.stringify(flag)} (expected --seeds N, --from S, --seed S, --trace, --duration MS, --profile NAME)`);
        process.exit(2);
    }
  }
  return args;
}

function failureLine(r: SimResult, profileFlag: string): string {
  const first = r.violations[0];
  return `seed ${r.seed}: FAIL ${first.property} at ${first.time}ms: ${first.detail}${r.violations.length > 1 ? ` (+${r.violations.length - 1} more)` : ''}  (replay: npm run sim -- --seed ${r.seed} --trace${profileFlag})`;
}

const args = parseArgs(process.argv.slice(2));
if (args.seed !== null) {
  const r = runSimulation({ ...PROFILES[args.profile], seed: args.seed, duration: args.duration, trace: args.trace ? (line) => console.log(line) : undefined });
  console.log(`seed ${r.seed}: ${r.ok ? 'ok' : 'FAIL'}; ops ok=${r.ops.ok} fail=${r.ops.fail} unknown=${r.ops.unknown}; leaders=${r.leaders}; messages=${r.messages}; recovered ${r.recoveredAfter}ms after heal`);
  for (const v of r.violations) console.log(`  ${v.property} at ${v.time}ms: ${v.detail}`);
  process.exit(r.ok ? 0 : 1);
}
const started = performance.now();
let failed = 0;
const totals = { ok: 0, fail: 0, unknown: 0, messages: 0, leaders: 0 };
for (let s = args.from; s < args.from + args.seeds; s++) {
  const r = runSimulation({ ...PROFILES[args.profile], seed: s, duration: args.duration });
  totals.ok += r.ops.ok;
  totals.fail += r.ops.fail;
  totals.unknown += r.ops.unknown;
  totals.messages += r.messages;
  totals.leaders += r.leaders;
  if (!r.ok) {
    failed++;
    console.log(failureLine(r, args.profile === 'default' ? '' : ` --profile ${args.profile}`));
  }
}
const secs = (performance.now() - started) / 1000;
console.log(`${args.seeds - failed} passed, ${failed} failed  (seeds ${args.from}..${args.from + args.seeds - 1}; ${totals.ok} ops ok, ${totals.fail} failed, ${totals.unknown} unknown; ${totals.leaders} elections won; ${totals.messages} messages; ${secs.toFixed(1)}s)`);
process.exit(failed === 0 ? 0 : 1);
