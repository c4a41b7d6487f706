// Runs a range of seeds and collects the failures, for the seed tests and the CLI.
import { PROFILES, runSimulation } from './simulation.ts';
import type { SimOptions, SimResult } from './simulation.ts';

export function runSeeds(from: number, count: number, profile = 'default', extra: Partial<SimOptions> = {}): { failures: SimResult[]; runs: number } {
  const failures: SimResult[] = [];
  for (let seed = from; seed < from + count; seed++) {
    const r = runSimulation({ ...PROFILES[profile], ...extra, seed });
    if (!r.ok) failures.push(r);
  }
  return { failures, runs: count };
}

export function describeFailures(failures: SimResult[]): string {
  return failures.map((r) => `seed ${r.seed}: ${r.violations.map((v) => `${v.property}: ${v.detail}`).join('; ')}`).join('\n');
}
