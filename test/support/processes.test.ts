// The process harness itself: readiness, kill by PID, stopAll, readiness timeouts, ports, temp dirs.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  ProcessStartError,
  freePorts,
  isAlive,
  makeTempDir,
  releasePorts,
  removeDir,
  runningProcesses,
  startProcess,
  stopAll,
} from './processes.ts';

/** A node child that prints `ready <pid>` after `delayMs` and then runs until signalled. */
function child(script: string, name: string, extra: { timeoutMs?: number } = {}) {
  return startProcess({
    cmd: process.execPath,
    args: ['-e', script],
    name,
    readyLine: (line) => line.startsWith('ready'),
    timeoutMs: extra.timeoutMs ?? 10_000,
  });
}

const SLEEPER = `console.log('ready ' + process.pid); setInterval(() => {}, 1000);`;
/** Ignores SIGTERM, so only the SIGKILL fallback ends it. */
const STUBBORN = `process.on('SIGTERM', () => console.error('ignoring SIGTERM')); console.log('ready'); setInterval(() => {}, 1000);`;

describe('process harness', () => {
  after(() => stopAll(500));

  test('resolves on the ready line and exposes pid and stdout lines', async () => {
    const h = await child(`console.log('starting'); setTimeout(() => { ${SLEEPER} }, 50);`, 'sleeper');
    assert.ok(h.running);
    assert.equal(h.readyLineText, `ready ${h.pid}`);
    assert.deepEqual(h.stdoutLines, ['starting', `ready ${h.pid}`]);
    assert.ok(isAlive(h.pid));
    assert.equal(h.kill('SIGTERM'), true);
    const exit = await h.waitForExit(5000);
    assert.equal(exit.signal, 'SIGTERM');
    assert.equal(isAlive(h.pid), false);
    assert.equal(h.kill('SIGTERM'), false, 'killing an exited process is a no-op');
  });

  test('stop() falls back to SIGKILL when SIGTERM is ignored', async () => {
    const h = await child(STUBBORN, 'stubborn');
    const exit = await h.stop(300);
    assert.equal(exit.signal, 'SIGKILL');
    assert.match(h.stderrTail(), /ignoring SIGTERM/);
  });

  test('stopAll leaves no process alive', async () => {
    const handles = await Promise.all([child(SLEEPER, 'a'), child(SLEEPER, 'b'), child(STUBBORN, 'c')]);
    const pids = handles.map((h) => h.pid);
    assert.equal(new Set(pids).size, 3);
    for (const pid of pids) assert.ok(runningProcesses().some((h) => h.pid === pid));
    await stopAll(300);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
    assert.deepEqual(runningProcesses(), []);
  });

  test('a readiness timeout kills the process and reports its stderr tail', async () => {
    const script = `for (let i = 0; i < 300; i++) console.error('line ' + i); console.log('not the line'); setInterval(() => {}, 1000);`;
    let pid = 0;
    await assert.rejects(
      // Long enough for the child to start and print even on a loaded machine (the test runs in parallel).
      startProcess({ cmd: process.execPath, args: ['-e', script], name: 'silent', readyLine: () => false, timeoutMs: 2500 }),
      (err: unknown) => {
        assert.ok(err instanceof ProcessStartError);
        assert.match(err.message, /silent: no ready line within 2500 ms/);
        assert.match(err.message, /line 299/);
        assert.match(err.message, /not the line/);
        assert.doesNotMatch(err.stderrTail, /line 99\n/, 'only the last 200 stderr lines are kept');
        assert.equal(err.exit?.signal, 'SIGKILL');
        pid = Number(/pid (\d+)/.exec(err.message)?.[1]);
        return true;
      },
    );
    assert.ok(pid > 0);
    assert.equal(isAlive(pid), false);
  });

  test('a process that exits before it is ready is reported with its exit code', async () => {
    await assert.rejects(
      child(`console.error('boom: bad flag'); process.exit(3);`, 'crasher'),
      (err: unknown) => {
        assert.ok(err instanceof ProcessStartError);
        assert.match(err.message, /exited with code 3 before it was ready/);
        assert.match(err.message, /boom: bad flag/);
        return true;
      },
    );
  });

  test('a command that does not exist is an error, not a hang', async () => {
    await assert.rejects(startProcess({ cmd: '/nonexistent/conclave-binary', readyLine: () => true }), /ENOENT/);
  });

  // A parent that uses the harness, starts a grandchild and then dies without calling stopAll.
  for (const ending of ['exit', 'uncaught', 'SIGTERM'] as const) {
    test(`the safety net kills children when their parent ends by ${ending}`, async () => {
      const harness = new URL('./processes.ts', import.meta.url).href;
      const finish = ending === 'exit' ? 'process.exit(1);' : ending === 'uncaught' ? "setTimeout(() => { throw new Error('test failed'); }, 10);" : '';
      const parentScript = `
        import { startProcess } from ${JSON.stringify(harness)};
        const h = await startProcess({ cmd: process.execPath, args: ['-e', ${JSON.stringify(SLEEPER)}], readyLine: (l) => l.startsWith('ready') });
        console.log('child ' + h.pid);
        setInterval(() => {}, 1000);
        ${finish}`;
      const parent = await startProcess({
        cmd: process.execPath,
        args: ['--import', 'tsx', '--input-type=module', '-e', parentScript],
        name: `parent-${ending}`,
        readyLine: (line) => line.startsWith('child '),
      });
      const grandchild = Number(parent.readyLineText?.split(' ')[1]);
      if (ending === 'SIGTERM') parent.kill('SIGTERM');
      const exit = await parent.waitForExit(5000);
      assert.ok(ending === 'SIGTERM' ? exit.signal === 'SIGTERM' : exit.code === 1, `${ending}: ${JSON.stringify(exit)}`);
      // SIGKILL is sent before the parent exits; give the kernel a moment to reap the orphan.
      for (let i = 0; i < 50 && isAlive(grandchild); i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(isAlive(grandchild), false, `grandchild ${grandchild} survived its parent's ${ending}`);
    });
  }

  test('freePorts returns distinct ports that can be bound', async () => {
    const ports = await freePorts(5);
    assert.equal(new Set(ports).size, 5);
    for (const port of ports) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
      });
      await new Promise((resolve) => server.close(resolve));
    }
    const more = await freePorts(5);
    assert.equal(more.filter((p) => ports.includes(p)).length, 0, 'reserved ports are not handed out again');
    releasePorts([...ports, ...more]);
  });

  test('makeTempDir and removeDir', async () => {
    const dir = await makeTempDir('conclave-harness');
    writeFileSync(join(dir, 'x'), 'y');
    await removeDir(dir);
    assert.equal(existsSync(dir), false);
    await assert.rejects(removeDir('/etc'), /refusing/);
  });
});
