// The real-process harness end to end, short enough for `npm test`: a run of about 70 s of faults
// (primary partitioned, agent and PostgreSQL killed, agent frozen, switchover) in synchronous
// strict mode, where every checker must pass; and a run with fencing defeated on purpose (the
// primary's agent and its fence process both frozen, asynchronous replication), which the
// checkers must report as a violation: two primaries acknowledging writes, and lost writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runJepsen } from './run.ts';
import type { RunResult } from './run.ts';
import { summaryText, writeReport } from './report.ts';
import { makeTempDir, removeDir } from '../../support/processes.ts';

const log = (line: string): void => void process.stdout.write(line.split('\n').map((l) => `# ${l}\n`).join(''));

/** Prints the summary; keeps the report only when the test fails (its path is printed). */
async function show(r: RunResult, keep: boolean): Promise<void> {
  log(summaryText(r));
  const dir = await makeTempDir('conclave-jepsen-report-');
  const files = await writeReport(r, dir);
  if (keep) log(`report kept: ${files.html}`);
  else await removeDir(dir);
}

test('sync-strict under partition, kill, pause and switchover: every checker passes', { timeout: 300_000 }, async () => {
  const r = await runJepsen({
    nodes: 3,
    seed: 7,
    mode: 'sync-strict',
    timeSec: 70,
    nemeses: ['partition-primary', 'kill-both', 'pause-agent', 'switchover'],
    holdMs: [5000, 9000],
    quietMs: [4000, 7000],
    log,
  });
  const failed = r.checks.filter((c) => c.valid !== true);
  await show(r, failed.length > 0);
  assert.ok(r.schedule.faults.length >= 4, `every nemesis drawn once: ${r.schedule.faults.map((f) => f.nemesis).join(', ')}`);
  assert.ok(r.counts.ok > 100, `writes were acknowledged (${r.counts.ok})`);
  assert.equal(r.counts.lost, 0);
  assert.deepEqual(failed.map((c) => `${c.name}: ${c.summary}\n${c.evidence.join('\n')}`), []);
});

test('fencing defeated on purpose (agent and fence frozen, async): reported as two primaries and lost writes', { timeout: 180_000 }, async () => {
  const r = await runJepsen({
    nodes: 3,
    seed: 11,
    mode: 'async',
    timeSec: 14,
    nemeses: ['unsafe-pause-agent-and-fence'],
    holdMs: [9000, 9000],
    quietMs: [4000, 4000],
    // Convergence is not what this run is about: do not wait long for it.
    convergeBoundMs: 20_000,
    log,
  });
  const single = r.checks.find((c) => c.name === 'single-primary')!;
  await show(r, single.valid !== false);
  assert.equal(r.valid, false, 'the run as a whole is a violation');
  assert.equal(single.valid, false, single.summary);
  assert.match(single.evidence[0], /acknowledged .* invoked after n\d \(timeline \d+\) had acknowledged its first write as the newer primary/);
  // What the old primary acknowledged after the new one took over is gone once it is rewound.
  assert.ok((r.counts.lost ?? 0) > 0, `lost acknowledged writes counted (${r.counts.lost})`);
  const lost = r.checks.find((c) => c.name === 'lost-writes')!;
  assert.match(lost.summary, /[1-9]\d* lost/);
});
