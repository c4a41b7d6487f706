// The watchdog's pure parts: the timeout the lease allows, where sysfs shows a device's timeout,
// and which devices may be used in which mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deviceTimeout, inspectDevice, judgeTimeout, majorMinor, parseTimeout, requiredTimeout, timeoutFiles } from './watchdog.ts';
import type { DeviceFs, DeviceStat } from './watchdog.ts';

/** glibc's makedev. */
const makedev = (major: number, minor: number): number =>
  Number(((BigInt(major) & 0xfffn) << 8n) | ((BigInt(major) & 0xfffff000n) << 32n) | (BigInt(minor) & 0xffn) | ((BigInt(minor) & 0xffffff00n) << 12n));
const charDev = (major: number, minor: number): DeviceStat => ({ isCharacterDevice: () => true, rdev: makedev(major, minor) });
const regularFile: DeviceStat = { isCharacterDevice: () => false, rdev: 0 };

test("Patroni's ttl - safety_margin, with ttl / 2 when the margin leaves less than a second", () => {
  assert.deepEqual(requiredTimeout(30, 5), { seconds: 25, note: null });
  assert.deepEqual(requiredTimeout(30, -1), { seconds: 15, note: null });
  assert.deepEqual(requiredTimeout(10, 2.5), { seconds: 7, note: null }, 'floored to whole seconds');
  const small = requiredTimeout(2, 5);
  assert.equal(small.seconds, 1);
  assert.match(small.note ?? '', /safety_margin 5 s leaves no timeout under ttl 2 s; requiring a device timeout of at most 1 s \(ttl \/ 2\)/);
  assert.deepEqual(requiredTimeout(2, -1), { seconds: 1, note: null });
  assert.equal(requiredTimeout(1, -1).seconds, 1, 'never below one second');
  assert.equal(requiredTimeout(2, 1).seconds, 1);
});

test('device numbers decode as glibc encodes them, small and large', () => {
  assert.deepEqual(majorMinor(makedev(10, 130)), { major: 10, minor: 130 });
  assert.deepEqual(majorMinor(makedev(248, 0)), { major: 248, minor: 0 });
  assert.deepEqual(majorMinor(makedev(4095 + 5000, 300_000)), { major: 9095, minor: 300_000 });
});

test('sysfs timeout files: the device node, watchdog0 for the legacy /dev/watchdog, then the class entry', () => {
  assert.deepEqual(timeoutFiles('/dev/watchdog', makedev(10, 130)), [
    '/sys/dev/char/10:130/timeout',
    '/sys/class/watchdog/watchdog0/timeout',
    '/sys/class/watchdog/watchdog/timeout',
  ]);
  assert.deepEqual(timeoutFiles('/dev/watchdog1', makedev(247, 1)), ['/sys/dev/char/247:1/timeout', '/sys/class/watchdog/watchdog1/timeout']);
});

test('a timeout attribute is whole positive seconds', () => {
  assert.equal(parseTimeout('30\n'), 30);
  assert.equal(parseTimeout('0\n'), null);
  assert.equal(parseTimeout('abc'), null);
  assert.equal(parseTimeout(''), null);
});

test("the device's timeout comes from the first readable attribute; none for a non-device", () => {
  const files: Record<string, string> = { '/sys/class/watchdog/watchdog0/timeout': '1\n' };
  const read = (f: string): string | null => files[f] ?? null;
  assert.equal(deviceTimeout('/dev/watchdog', charDev(10, 130), read), 1);
  assert.equal(deviceTimeout('/dev/watchdog3', charDev(246, 3), read), null);
  assert.equal(deviceTimeout('/tmp/fake', regularFile, () => '1'), null, 'a regular file has no timeout, whatever sysfs says');
});

test('automatic mode uses a device of unknown timeout with a warning and skips one too slow; required refuses both', () => {
  assert.deepEqual(judgeTimeout('automatic', '/dev/watchdog', 1, 1), { usable: true, warning: null });
  assert.deepEqual(judgeTimeout('required', '/dev/watchdog', 1, 25), { usable: true, warning: null });
  const unknownAuto = judgeTimeout('automatic', '/tmp/fake', null, 1);
  assert.ok(unknownAuto.usable && /timeout of \/tmp\/fake is unknown/.test(unknownAuto.warning ?? ''));
  assert.deepEqual(judgeTimeout('required', '/tmp/fake', null, 1), { usable: false, reason: 'cannot read the watchdog timeout of /tmp/fake' });
  assert.deepEqual(judgeTimeout('automatic', '/dev/watchdog', 60, 1), { usable: false, reason: 'watchdog device timeout 60 s is longer than the 1 s the lease allows; not using it' });
  assert.deepEqual(judgeTimeout('required', '/dev/watchdog', 60, 1), { usable: false, reason: 'watchdog device timeout 60 s is longer than the 1 s the lease allows' });
});

test('inspecting a device: missing or not writable is unusable; otherwise its timeout decides', () => {
  const fs = (over: Partial<DeviceFs>): DeviceFs => ({ stat: () => charDev(10, 130), checkWritable: () => undefined, read: () => '1', ...over });
  const missing = inspectDevice('required', '/dev/nope', 1, fs({ stat: () => { throw new Error("ENOENT: no such file or directory, stat '/dev/nope'"); } }));
  assert.deepEqual(missing, { usable: false, reason: "cannot use the watchdog device /dev/nope: ENOENT: no such file or directory, stat '/dev/nope'" });
  const readOnly = inspectDevice('automatic', '/dev/watchdog', 1, fs({ checkWritable: () => { throw new Error('EACCES: permission denied'); } }));
  assert.equal(readOnly.usable, false);
  assert.deepEqual(inspectDevice('required', '/dev/watchdog', 1, fs({})), { usable: true, warning: null });
  assert.equal(inspectDevice('required', '/dev/watchdog', 1, fs({ read: () => '60' })).usable, false);
});
