// The Linux watchdog device, the pure parts (Patroni's `watchdog` section; reference: Patroni
// watchdog/base.py and the kernel's Documentation/watchdog/watchdog-api.rst). The fence process
// (fence-process.ts) owns the device: it opens it when this member starts leading, feeds it at every
// lease renewal, and disarms it with the "magic close" (write 'V', then close) when it stops leading.
// If nobody feeds it, the kernel resets the machine once the device's timeout has passed.
//
// Node has no ioctl, so Conclave cannot set the device's timeout (WDIOC_SETTIMEOUT) as Patroni
// does: it reads it from sysfs and refuses a device whose timeout is too long. Operators set it
// when loading the driver, e.g. `modprobe softdog soft_margin=1`, or with the driver's own option
// (the `timeout`/`heartbeat` module parameter of most hardware drivers).
//
// Pure: no I/O; the callers pass what they read from the file system.

export type WatchdogMode = 'off' | 'automatic' | 'required';

export interface WatchdogSettings {
  readonly mode: WatchdogMode;
  readonly device: string;
  /** Patroni's safety_margin: seconds the watchdog fires before the lease expires; -1: ttl / 2. */
  readonly safety_margin: number;
}

export interface RequiredTimeout {
  /** The longest device timeout, in whole seconds (at least 1), that still fires before the lease expires. */
  readonly seconds: number;
  /** Set when safety_margin left no positive timeout and ttl / 2 was used instead: say so once. */
  readonly note: string | null;
}

/**
 * Patroni's rule, timeout = ttl - safety_margin (ttl / 2 for -1). Patroni's default margin of 5 s
 * leaves nothing of our default ttl of 2 s, so below one second ttl / 2 is used instead.
 */
export function requiredTimeout(ttlS: number, safetyMarginS: number): RequiredTimeout {
  const half = ttlS / 2;
  const raw = safetyMarginS === -1 ? half : ttlS - safetyMarginS;
  const fallback = raw < 1;
  const seconds = Math.max(1, Math.floor(fallback ? half : raw));
  const note = fallback && safetyMarginS !== -1
    ? `watchdog.safety_margin ${safetyMarginS} s leaves no timeout under ttl ${ttlS} s; requiring a device timeout of at most ${seconds} s (ttl / 2) instead`
    : null;
  return { seconds, note };
}

/** A device number as Linux encodes it (glibc gnu_dev_major / gnu_dev_minor). */
export function majorMinor(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  return {
    major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n)),
    minor: Number((d & 0xffn) | ((d >> 12n) & 0xffffff00n)),
  };
}

/** The misc device /dev/watchdog (10:130) is the legacy name of the first watchdog, watchdog0. */
const LEGACY_WATCHDOG = { major: 10, minor: 130 };

/**
 * Where sysfs shows the timeout of the character device `rdev` opened as `path`, most specific
 * first: the device's own node, then (for the legacy /dev/watchdog, whose misc node has no timeout
 * attribute) watchdog0, then the watchdog class entry named like the device file.
 */
export function timeoutFiles(path: string, rdev: number): string[] {
  const { major, minor } = majorMinor(rdev);
  const files = [`/sys/dev/char/${major}:${minor}/timeout`];
  if (major === LEGACY_WATCHDOG.major && minor === LEGACY_WATCHDOG.minor) files.push('/sys/class/watchdog/watchdog0/timeout');
  const base = path.slice(path.lastIndexOf('/') + 1);
  if (base && !files.includes(`/sys/class/watchdog/${base}/timeout`)) files.push(`/sys/class/watchdog/${base}/timeout`);
  return files;
}

/** A sysfs timeout attribute's text as whole seconds, or null when it is not one. */
export function parseTimeout(text: string): number | null {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return null;
  const n = Number(t);
  return n > 0 ? n : null;
}

/** What stat (or fstat) said of the device file. */
export interface DeviceStat {
  isCharacterDevice(): boolean;
  readonly rdev: number;
}

/**
 * The device's timeout in seconds, or null when it cannot be known (not a character device, no
 * sysfs attribute: a kernel without CONFIG_WATCHDOG_SYSFS). `read` returns a file's text or null.
 */
export function deviceTimeout(path: string, stat: DeviceStat, read: (file: string) => string | null): number | null {
  if (!stat.isCharacterDevice()) return null;
  for (const file of timeoutFiles(path, stat.rdev)) {
    const text = read(file);
    const seconds = text === null ? null : parseTimeout(text);
    if (seconds !== null) return seconds;
  }
  return null;
}

/** The file system calls the checks need, passed in by the caller (node:fs in fence.ts and fence-process.ts). */
export interface DeviceFs {
  /** stat(2), following links; throws when the path cannot be reached. */
  stat(path: string): DeviceStat;
  /** Throws unless this process may open `path` for writing. */
  checkWritable(path: string): void;
  /** A file's text, or null when it cannot be read. */
  read(file: string): string | null;
}

export type Verdict =
  /** `warning`: used, but the operator should know (its timeout is unknown). */
  | { readonly usable: true; readonly warning: string | null }
  | { readonly usable: false; readonly reason: string };

/**
 * Whether a device whose timeout is `timeoutS` (null: unknown) may be used when the lease allows
 * `allowedS`. An unknown timeout is accepted in automatic mode (with a warning) and refused in
 * required mode, which promises that the machine resets before the lease can expire.
 */
export function judgeTimeout(mode: 'automatic' | 'required', path: string, timeoutS: number | null, allowedS: number): Verdict {
  if (timeoutS === null) {
    if (mode === 'required') return { usable: false, reason: `cannot read the watchdog timeout of ${path}` };
    return { usable: true, warning: `the watchdog timeout of ${path} is unknown; using it anyway (make sure it is at most ${allowedS} s)` };
  }
  if (timeoutS > allowedS) {
    const reason = `watchdog device timeout ${timeoutS} s is longer than the ${allowedS} s the lease allows`;
    return { usable: false, reason: mode === 'automatic' ? `${reason}; not using it` : reason };
  }
  return { usable: true, warning: null };
}

/**
 * Whether the device can be used, without opening it: an open starts the kernel's countdown, and
 * on a driver built with nowayout even the magic close cannot stop it again. Also the device
 * admits one opener at a time, which while this member leads is its fence process.
 */
export function inspectDevice(mode: 'automatic' | 'required', path: string, allowedS: number, fs: DeviceFs): Verdict {
  let stat: DeviceStat;
  try {
    stat = fs.stat(path);
    fs.checkWritable(path);
  } catch (err) {
    return { usable: false, reason: `cannot use the watchdog device ${path}: ${(err as Error).message}` };
  }
  return judgeTimeout(mode, path, deviceTimeout(path, stat, fs.read), allowedS);
}
