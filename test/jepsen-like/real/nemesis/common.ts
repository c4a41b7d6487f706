// What every nemesis family shares: recording the start of a fault once it is in force, a heal
// that runs at most once (and is retried only after it failed), undoing a half-done inject, target
// choice, and calls to a node's REST API over its control address.
import { request } from 'undici';
import type { ActiveFault, FaultContext } from '../types.ts';

export interface FaultSpec {
  readonly kind: string;
  readonly targets: readonly string[];
  readonly detail: string;
}

/**
 * Runs `act`; once it has taken effect, records the fault's start and returns it. If `act` throws,
 * `undo` runs before the error propagates (the run never sees that fault, so nobody else would heal
 * it). The returned heal() runs `undo` once however often it is called, concurrently included; a
 * heal that failed may be called again.
 */
export async function applyFault(ctx: FaultContext, spec: FaultSpec | (() => FaultSpec), act: () => Promise<void>, undo: () => Promise<void>): Promise<ActiveFault> {
  const heal = once(undo);
  try {
    await act();
  } catch (err) {
    await heal().catch(() => undefined);
    throw err;
  }
  // A spec given as a function is read after `act`: its detail may carry what act learned.
  const s = typeof spec === 'function' ? spec() : spec;
  ctx.record({ type: 'nemesis', phase: 'start', kind: s.kind, targets: s.targets, detail: s.detail, at: ctx.now() });
  return { kind: s.kind, targets: s.targets, detail: s.detail, heal };
}

/** `fn` at most once at a time and, once it succeeded, never again. */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  let done = false;
  return () => {
    if (done) return Promise.resolve();
    running ??= fn().then(
      () => {
        done = true;
      },
      (err: unknown) => {
        running = null;
        throw err;
      },
    );
    return running;
  };
}

/** Namespace index of a node in the lab (node i runs in namespace i). */
export function indexOf(ctx: FaultContext, name: string): number {
  const i = ctx.nodes.indexOf(name);
  if (i < 0) throw new Error(`nemesis: no node ${name} in ${ctx.nodes.join(' ')}`);
  return i;
}

export interface Target {
  readonly name: string;
  /** Whether it was chosen as the primary (not merely a random node that happens to be it). */
  readonly asPrimary: boolean;
}

/**
 * The primary with probability 1/2 (when there is one), else a random node. Both draws are made
 * every time, so the PRNG advances alike whatever the cluster answers.
 */
export async function primaryOrRandom(ctx: FaultContext): Promise<Target> {
  const wantPrimary = ctx.rng.chance(0.5);
  const random = ctx.rng.pick(ctx.nodes);
  const primary = wantPrimary ? await ctx.currentPrimary() : null;
  return primary !== null ? { name: primary, asPrimary: true } : { name: random, asPrimary: false };
}

/** `role` of the primary for a detail line: " (primary)" or "". */
export const roleNote = (t: Target): string => (t.asPrimary ? ' (primary)' : '');

export interface ApiAnswer {
  /** HTTP status, or null when the node did not answer (refused, timed out). */
  readonly status: number | null;
  /** The body's first 300 characters, or the error. */
  readonly text: string;
}

/** One request to a node's REST API (over its control link); never throws. */
export async function callApi(ctx: FaultContext, node: string, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, timeoutMs = 60_000): Promise<ApiAnswer> {
  const n = ctx.cluster.node(node);
  try {
    const res = await request(`http://${n.testHost}:${n.apiPort}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.statusCode, text: (await res.body.text()).slice(0, 300) };
  } catch (err) {
    return { status: null, text: (err as Error).message };
  }
}

export const describeAnswer = (a: ApiAnswer): string => `${a.status ?? 'no answer'}: ${a.text.replace(/\s+/g, ' ').trim()}`;
