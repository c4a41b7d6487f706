// POST /restart's body and the conditions it sets (Patroni api.py do_POST_restart, ha.py
// restart_matches; reference §1.3), and the one restart a member may have scheduled. The schedule
// is kept in the agent's memory, as Patroni keeps it in its own process: it is lost if the agent
// stops, and only the member that holds it shows it.
import type { FastifyBaseLogger } from 'fastify';
import type { HaLoop } from '../ha/ha-loop.ts';
import type { JsonObject } from '../ha/cluster-view.ts';
import { ApiError } from './api-errors.ts';

export type RestartRole = 'primary' | 'standby_leader' | 'replica';

export interface RestartRequest {
  readonly role: RestartRole | null;
  /** As given ("15.4"), and as server_version_num compares it (150004). */
  readonly postgresVersion: { text: string; num: number } | null;
  readonly restartPending: boolean;
  /** How long PostgreSQL may take to accept connections again; null: pg_ctl_timeout. A restart that overruns it fails (503). */
  readonly timeoutSeconds: number | null;
  /** Epoch milliseconds; null: restart now. */
  readonly scheduleAt: number | null;
}

/** What the conditions are checked against, taken when the restart would run. */
export interface RestartFacts {
  readonly role: 'primary' | 'replica' | null;
  readonly serverVersion: number | null;
  readonly pendingRestart: boolean;
}

/**
 * "15.4" → 150004, "9.6.24" → 90624 (Patroni postgresql/misc.py: postgres_version_to_int). Before
 * version 10 the major version has two parts, so a 9.x version needs all three.
 */
export function postgresVersionToInt(text: string): number {
  const parts = text.split('.');
  if (!parts.every((p) => /^\d+$/.test(p))) throw new ApiError(400, `Invalid PostgreSQL version: ${text}`);
  const n = parts.map(Number);
  if (n.length < 2 || n.length > 3 || (n.length === 2 && n[0]! < 10)) throw new ApiError(400, `Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: ${text}`);
  if (n.length === 2) n.splice(1, 0, 0);
  return n[0]! * 10_000 + n[1]! * 100 + n[2]!;
}

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, min: 60, h: 3600, d: 86_400 };

function timeoutSeconds(v: unknown): number {
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)?\s*$/.exec(v) : null;
  const seconds = typeof v === 'number' ? v : m ? Number(m[1]) * UNIT_SECONDS[m[2] ?? 's']! : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) throw new ApiError(400, 'Timeout should be a positive number of seconds');
  return seconds;
}

/** Patroni's parse_schedule for a restart: 422 unparsable or past, 400 without a time zone. */
function scheduleAt(v: unknown, nowMs: number): number {
  const at = typeof v === 'string' ? Date.parse(v) : NaN;
  if (!Number.isFinite(at)) throw new ApiError(422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601');
  if (!/(Z|[+-]\d\d(:?\d\d)?)$/i.test((v as string).trim())) throw new ApiError(400, 'Timezone information is mandatory for the scheduled restart');
  if (at < nowMs) throw new ApiError(422, 'Cannot schedule restart in the past');
  return at;
}

/** Reads the body, key by key in its order, refusing at the first problem as Patroni does. */
export function parseRestartRequest(body: Record<string, unknown>, ctx: { paused: boolean; nowMs: number }): RestartRequest {
  if (ctx.paused && body.schedule !== undefined) throw new ApiError(500, "Can't schedule restart in the paused state");
  let role: RestartRole | null = null;
  let postgresVersion: RestartRequest['postgresVersion'] = null;
  let restartPending = false;
  let timeout: number | null = null;
  let at: number | null = null;
  for (const [key, v] of Object.entries(body)) {
    if (key === 'schedule') at = v === null ? null : scheduleAt(v, ctx.nowMs);
    else if (key === 'role') {
      // `master` is Patroni 3.x's word for primary; 4.x refuses it, we still read it.
      if (v === 'primary' || v === 'master') role = 'primary';
      else if (v === 'replica' || v === 'standby_leader') role = v;
      else throw new ApiError(400, 'PostgreSQL role should be either primary, standby_leader, or replica');
    } else if (key === 'postgres_version') {
      if (typeof v !== 'string' && typeof v !== 'number') throw new ApiError(400, `Invalid PostgreSQL version: ${JSON.stringify(v)}`);
      postgresVersion = { text: String(v), num: postgresVersionToInt(String(v)) };
    } else if (key === 'timeout') timeout = timeoutSeconds(v);
    else if (key === 'restart_pending') {
      if (typeof v !== 'boolean') throw new ApiError(400, 'restart_pending must be a boolean');
      restartPending = v;
    } else throw new ApiError(400, `Unknown filter for the scheduled restart: ${key}`);
  }
  return { role, postgresVersion, restartPending, timeoutSeconds: timeout, scheduleAt: at };
}

/** Why the request's conditions do not hold (Patroni ha.py: restart_matches), or null when they do. */
export function restartMismatch(req: RestartRequest, facts: RestartFacts): string | null {
  if (req.role !== null && req.role !== facts.role) return 'host role mismatch';
  // Restart only onto a newer version: the running one must be lower than the one asked for.
  if (req.postgresVersion !== null && req.postgresVersion.num <= (facts.serverVersion ?? 0)) return 'postgres version mismatch';
  if (req.restartPending && !facts.pendingRestart) return 'pending restart flag is not set';
  return null;
}

export function restartFacts(loop: HaLoop): RestartFacts {
  const pg = loop.lastPg;
  return { role: pg.running ? pg.role : null, serverVersion: pg.serverVersion, pendingRestart: pg.pendingRestart || loop.localState().pendingRestartReasons.length > 0 };
}

/** setTimeout's limit; a farther schedule is reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A scheduled restart that finds another task running tries again this often, this many times. */
const BUSY_RETRY_MS = 1000;
const BUSY_RETRIES = 60;

interface Scheduled {
  readonly request: RestartRequest;
  readonly at: number;
  /** The postmaster the schedule was made for: if it restarted meanwhile, the restart is dropped (Patroni). */
  readonly postmasterStartTime: string | null;
  timer: NodeJS.Timeout | null;
}

/** The one scheduled restart of a member, run by a timer as the agent's background task. */
export class RestartScheduler {
  private pending: Scheduled | null = null;
  private closed = false;
  private readonly loop: HaLoop;
  private readonly log: FastifyBaseLogger;

  constructor(loop: HaLoop, log: FastifyBaseLogger) {
    this.loop = loop;
    this.log = log;
  }

  /** False when one is scheduled already (one at a time, as in Patroni). */
  schedule(request: RestartRequest, postmasterStartTime: string | null): boolean {
    if (this.pending !== null || request.scheduleAt === null || this.closed) return false;
    this.pending = { request, at: request.scheduleAt, postmasterStartTime, timer: null };
    this.arm(this.pending);
    return true;
  }

  /** DELETE /restart: false when none is scheduled. */
  cancel(): boolean {
    const p = this.pending;
    if (p === null) return false;
    if (p.timer) clearTimeout(p.timer);
    this.pending = null;
    return true;
  }

  close(): void {
    this.closed = true;
    this.cancel();
  }

  /** Patroni's `scheduled_restart` member field: the time and the conditions. */
  describe(): JsonObject | null {
    const p = this.pending;
    if (p === null) return null;
    const out: JsonObject = { schedule: new Date(p.at).toISOString(), postmaster_start_time: p.postmasterStartTime };
    if (p.request.role !== null) out.role = p.request.role;
    if (p.request.postgresVersion !== null) out.postgres_version = p.request.postgresVersion.text;
    if (p.request.restartPending) out.restart_pending = true;
    if (p.request.timeoutSeconds !== null) out.timeout = p.request.timeoutSeconds;
    return out;
  }

  private arm(p: Scheduled): void {
    const wait = p.at - Date.now();
    if (wait > 0) {
      p.timer = setTimeout(() => this.arm(p), Math.min(wait, MAX_TIMER_MS));
      p.timer.unref();
      return;
    }
    p.timer = null;
    if (this.pending !== p) return;
    this.pending = null; // due: no longer "scheduled", whatever happens next
    void this.run(p, 0);
  }

  private async run(p: Scheduled, attempt: number): Promise<void> {
    if (this.closed) return;
    try {
      await this.loop.refreshPg();
      if (p.postmasterStartTime !== null && this.loop.lastPg.postmasterStartTime !== p.postmasterStartTime) {
        this.log.info('scheduled restart dropped: postgres restarted since it was scheduled');
        return;
      }
      const mismatch = restartMismatch(p.request, restartFacts(this.loop));
      if (mismatch) {
        this.log.info(`scheduled restart dropped: ${mismatch}`);
        return;
      }
      const failure = await this.loop.runOperatorTask('restart', p.request.timeoutSeconds === null ? undefined : p.request.timeoutSeconds * 1000);
      if (failure?.endsWith('already in progress') && attempt < BUSY_RETRIES) {
        setTimeout(() => void this.run(p, attempt + 1), BUSY_RETRY_MS).unref();
        return;
      }
      if (failure) this.log.warn(`scheduled restart failed: ${failure}`);
      else this.log.info('scheduled restart done');
    } catch (err) {
      this.log.warn(`scheduled restart failed: ${(err as Error).message}`);
    }
  }
}

const schedulers = new WeakMap<HaLoop, RestartScheduler>();

/** The member's scheduler, shared by POST/DELETE /restart and the member's entry in GET /cluster. */
export function restartSchedulerFor(loop: HaLoop, log: FastifyBaseLogger): RestartScheduler {
  let s = schedulers.get(loop);
  if (!s) {
    s = new RestartScheduler(loop, log);
    schedulers.set(loop, s);
  }
  return s;
}
