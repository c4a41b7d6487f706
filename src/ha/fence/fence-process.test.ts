// The fence process and its watchdog device, with a regular file standing in for the device: the
// keepalives and the magic close are bytes in the file. The kernel side (a reset) is not tested.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pino from 'pino';
import { Fence } from './fence.ts';

const SCRIPT = join(import.meta.dirname, 'fence-process.ts');
const started: ChildProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'conclave-fence-'));
  dirs.push(d);
  return d;
}

const nowMono = (): number => Number(process.hrtime.bigint() / 1_000_000n);

interface FenceChild {
  send(line: string): void;
  /** The next stdout event whose `event` is `name`. */
  next(name: string): Promise<Record<string, unknown>>;
  events: Record<string, unknown>[];
  exited: Promise<number | null>;
  child: ChildProcess;
}

async function startFence(args: string[]): Promise<FenceChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  started.push(child);
  const events: Record<string, unknown>[] = [];
  const waiters: { name: string; resolve: (e: Record<string, unknown>) => void }[] = [];
  let seen = 0;
  const deliver = (): void => {
    for (const w of [...waiters]) {
      const i = events.findIndex((e, j) => j >= seen && e.event === w.name);
      if (i < 0) continue;
      seen = i + 1;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(events[i]);
    }
  };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    events.push(JSON.parse(line) as Record<string, unknown>);
    deliver();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const f: FenceChild = {
    send: (line) => child.stdin!.write(`${line}\n`),
    next: (name) =>
      Promise.race([
        new Promise<Record<string, unknown>>((resolve) => {
          waiters.push({ name, resolve });
          deliver();
        }),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no ${name} event; got ${JSON.stringify(events)}`)), 10_000).unref()),
      ]),
    events,
    exited,
    child,
  };
  await f.next('ready');
  return f;
}

test('automatic mode: the first arm opens and feeds the device, each arm feeds it, disarm writes the magic V', async () => {
  const dir = await tempDir();
  const device = join(dir, 'watchdog');
  writeFileSync(device, '');
  const f = await startFence([dir, 'automatic', device, '1']);
  assert.equal(readFileSync(device, 'utf8'), '', 'not touched before this member leads');
  f.send(`arm ${nowMono() + 60_000}`);
  const active = await f.next('watchdog');
  assert.equal(active.state, 'active');
  assert.match(String(active.warning), /timeout of .* is unknown/, 'a regular file has no timeout to read');
  f.send(`arm ${nowMono() + 60_000}`);
  f.send(`arm ${nowMono() + 60_000}`);
  f.send('disarm');
  assert.equal((await f.next('watchdog')).state, 'closed');
  assert.equal(readFileSync(device, 'utf8'), '111V');
  // A new leadership opens it again; a clean exit closes it the same way.
  f.send(`arm ${nowMono() + 60_000}`);
  assert.equal((await f.next('watchdog')).state, 'active');
  f.send('exit');
  assert.equal(await f.exited, 0);
  // Opened without truncation, so the second leadership's bytes overwrite the first's: '1V' + '1V'.
  assert.equal(readFileSync(device, 'utf8'), '1V1V');
});

test('when the agent dies the device is left open and unfed: no magic V', async () => {
  const dir = await tempDir();
  const device = join(dir, 'watchdog');
  writeFileSync(device, '');
  const f = await startFence([dir, 'automatic', device, '1']);
  f.send(`arm ${nowMono() + 300}`);
  assert.equal((await f.next('watchdog')).state, 'active');
  f.child.stdin!.end();
  // The fence acts at the deadline (no postmaster here) and exits; the device was never closed with V.
  assert.equal(await f.exited, 0);
  assert.equal(readFileSync(device, 'utf8'), '1');
});

test('required mode: a device whose timeout cannot be read, or that is missing, is not activated', async () => {
  const dir = await tempDir();
  const device = join(dir, 'watchdog');
  writeFileSync(device, '');
  const f = await startFence([dir, 'required', device, '1']);
  f.send(`arm ${nowMono() + 60_000}`);
  const failed = await f.next('watchdog');
  assert.deepEqual(failed, { event: 'watchdog', state: 'failed', device, reason: `cannot read the watchdog timeout of ${device}` });
  f.send(`arm ${nowMono() + 60_000}`);
  f.send('exit');
  assert.equal(await f.exited, 0);
  assert.equal(readFileSync(device, 'utf8'), '');
  assert.equal(f.events.filter((e) => e.event === 'watchdog').length, 1, 'tried once per leadership, not at every renewal');

  const missing = join(dir, 'nope');
  const g = await startFence([dir, 'automatic', missing, '1']);
  g.send(`arm ${nowMono() + 60_000}`);
  const gone = await g.next('watchdog');
  assert.equal(gone.state, 'failed');
  assert.match(String(gone.reason), /cannot use the watchdog device .*nope: ENOENT/);
  g.send('exit');
  await g.exited;
  assert.equal(existsSync(missing), false, 'a missing device is not created');
});

test('mode off (the default argv) never touches the device', async () => {
  const dir = await tempDir();
  const f = await startFence([dir]);
  f.send(`arm ${nowMono() + 60_000}`);
  f.send('disarm');
  f.send('exit');
  assert.equal(await f.exited, 0);
  assert.deepEqual(f.events.map((e) => e.event), ['ready']);
});

test("the agent's Fence reports the device's state and, in required mode, why it may not lead", async () => {
  const dir = await tempDir();
  const device = join(dir, 'watchdog');
  writeFileSync(device, '');
  const logger = pino({ level: 'silent' });
  const waitFor = async (what: string, fn: () => boolean): Promise<void> => {
    for (let i = 0; i < 200 && !fn(); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(fn(), what);
  };
  const fences: Fence[] = [];
  try {
    const auto = await Fence.start(dir, logger, { mode: 'automatic', device, safety_margin: 5, ttl: 2 });
    fences.push(auto);
    assert.equal(auto.watchdogState(), 'idle');
    assert.equal(auto.watchdogBlocksLeadership(), null, 'only required mode blocks');
    auto.arm(performance.now() + 60_000);
    await waitFor('active', () => auto.watchdogState() === 'active');
    // A renewal: the lease guard disarms, then arms again at once. The device stays open and is fed.
    auto.disarm();
    auto.arm(performance.now() + 60_000);
    await waitFor('fed twice', () => readFileSync(device, 'utf8') === '11');
    auto.disarm();
    await waitFor('idle again', () => auto.watchdogState() === 'idle');
    assert.equal(readFileSync(device, 'utf8'), '11V');

    const required = await Fence.start(dir, logger, { mode: 'required', device, safety_margin: 5, ttl: 2 });
    fences.push(required);
    assert.equal(required.watchdogBlocksLeadership(), `cannot read the watchdog timeout of ${device}`);
    const missing = await Fence.start(dir, logger, { mode: 'required', device: join(dir, 'nope'), safety_margin: -1, ttl: 2 });
    fences.push(missing);
    assert.match(missing.watchdogBlocksLeadership() ?? '', /cannot use the watchdog device .*nope: ENOENT/);
    // Armed anyway (the decision is the HA loop's): the failure is reported and keeps blocking.
    missing.arm(performance.now() + 60_000);
    await waitFor('failed', () => missing.watchdogState() === 'failed');
    assert.match(missing.watchdogBlocksLeadership() ?? '', /ENOENT/);

    const off = await Fence.start(dir, logger);
    fences.push(off);
    assert.equal(off.watchdogState(), 'off');
    assert.equal(off.watchdogBlocksLeadership(), null);
  } finally {
    for (const f of fences) {
      f.stop();
      // By PID as well, in case it did not take the exit line.
      const child = (f as unknown as { child: ChildProcess | null }).child;
      if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        await new Promise((r) => setTimeout(r, 200));
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
      }
    }
  }
});
