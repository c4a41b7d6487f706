// Shared settings of the fuzz tests. `npm test` runs each property a small number of times so the
// whole suite stays fast; `npm run fuzz` sets FUZZ_RUNS (20,000 by default) for a long run.
//
// Every run draws a fresh seed unless FUZZ_SEED is set, so repeated runs explore new inputs. On a
// failure fast-check prints the seed and the counterexample's path; to replay it exactly:
//   FUZZ_SEED=<seed> FUZZ_PATH=<path> node --import tsx --test test/fuzz/<file>
// and then keep the shrunk input as a plain regression test beside the property.
import fc from 'fast-check';

/** How many cases a property runs: FUZZ_RUNS if set, else the file's default for `npm test`. */
export function runs(defaultRuns: number): number {
  const raw = process.env.FUZZ_RUNS;
  if (raw === undefined || raw === '') return defaultRuns;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`FUZZ_RUNS must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

const seed = process.env.FUZZ_SEED !== undefined && process.env.FUZZ_SEED !== '' ? Number(process.env.FUZZ_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got ${JSON.stringify(process.env.FUZZ_SEED)}`);

/**
 * fast-check parameters for a property: the run count (scaled by `weight` for expensive
 * properties, at least 1), the seed of this process and, when replaying, FUZZ_PATH.
 */
export function params<T>(defaultRuns: number, weight = 1): fc.Parameters<T> {
  // includeErrorInReport: the failing assertion's message in the report, not only as its cause.
  const p: fc.Parameters<T> = { numRuns: Math.max(1, Math.round(runs(defaultRuns) * weight)), seed, includeErrorInReport: true };
  if (process.env.FUZZ_PATH) p.path = process.env.FUZZ_PATH;
  return p;
}

/** The seed this process fuzzes with, for a test's diagnostic line. */
export const fuzzSeed = seed;

/** Bytes of every kind: empty, short, long, and runs of one byte (how nesting and lengths are written). */
export const anyBytes = (maxLength = 512): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc.uint8Array({ maxLength }),
    fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: maxLength })).map(([b, n]) => new Uint8Array(n).fill(b)),
  );

/** A number drawn to break things: negative, fractional, not finite, unsafe, or near a limit. */
export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(-1, -0, 0.5, NaN, Infinity, -Infinity, 2 ** 52, 2 ** 52 + 1, 2 ** 53, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE, Number.MIN_VALUE),
  fc.double(),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
);
