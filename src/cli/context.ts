// What every command works with: the configuration it was pointed at, the HTTP client built from
// it, the terminal, and the way to the members. conclavectl finds the members as an operator
// would: it asks the configured member (restapi.connect_address, or --url) for GET /cluster,
// which lists every member's api_url; if that member does not answer, it reads the members' own
// api_url from their keys in the replicated store (the Raft debug API on the raft addresses of
// the configuration; patronictl reads its DCS the same way). No REST address is ever guessed
// from a Raft port.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { envValue } from '../ha/config/env.ts';
import { loadConfigFile } from '../ha/config/load.ts';
import type { AgentConfig, HostPort } from '../ha/config/types.ts';
import type { GlobalOptions } from './args.ts';
import { CliError } from './errors.ts';
import { HttpClient, apiError, parseJson } from './http.ts';
import { RaftAuth } from '../raft/transport/auth.ts';
import type { Credentials, HttpResponse, RequestOptions } from './http.ts';
import { apiBase, isLeaderRole } from './cluster.ts';
import type { ClusterInfo } from './cluster.ts';
import { isMap } from './config-changes.ts';
import type { JsonMap } from './config-changes.ts';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The terminal, injected so that commands can be driven by tests and by main() alike. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether stdin is a terminal an operator can answer on. */
  readonly isTTY: boolean;
  /** Prints the question and reads one line from stdin; null at end of input. */
  ask(question: string): Promise<string | null>;
  /** All of stdin (for `--apply -`). */
  readStdin(): Promise<string>;
  sleep(ms: number): Promise<void>;
  now(): Date;
}

export interface Ctx {
  readonly config: AgentConfig;
  readonly configPath: string;
  /** The YAML as written: sections the agent does not read (ctl, restapi.certfile on older agents). */
  readonly raw: JsonMap;
  readonly http: HttpClient;
  readonly scheme: 'http' | 'https';
  readonly global: GlobalOptions;
  readonly io: Io;
}

export const hostPort = (h: HostPort): string => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);

const sub = (m: JsonMap, key: string): JsonMap => (isMap(m[key]) ? (m[key] as JsonMap) : {});
const text = (m: JsonMap, key: string): string | null => (typeof m[key] === 'string' && m[key] !== '' ? (m[key] as string) : null);

function readPem(path: string | null, key: string): string | null {
  if (path === null) return null;
  try {
    return readFileSync(resolve(path), 'utf8');
  } catch (err) {
    throw new CliError('ERR_CONFIG', `${key}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}

/**
 * Basic auth for the REST API, never from the command line (args.ts): CONCLAVE_CTL_USERNAME /
 * CONCLAVE_CTL_PASSWORD (or PATRONI_CTL_*, as patronictl reads them) over ctl.authentication
 * (patronictl's own section) over restapi.authentication, which CONCLAVE_RESTAPI_USERNAME /
 * _PASSWORD (or PATRONI_RESTAPI_*) already override as they do for the agent. A variable given
 * alone pairs with the other half from the file, as Patroni merges them.
 */
export function restCredentials(config: Pick<AgentConfig, 'restapi'>, raw: JsonMap, env: Record<string, string | undefined>): Credentials | null {
  const ctl = sub(sub(raw, 'ctl'), 'authentication');
  const ctlUser = text(ctl, 'username');
  const fromFile = ctlUser !== null ? { username: ctlUser, password: text(ctl, 'password') ?? '' } : config.restapi.authentication;
  const username = envValue(env, 'CTL_USERNAME') ?? fromFile?.username ?? null;
  if (username === null || username === '') return null;
  return { username, password: envValue(env, 'CTL_PASSWORD') ?? fromFile?.password ?? '' };
}

export async function openContext(global: GlobalOptions, io: Io, env: Record<string, string | undefined>): Promise<Ctx> {
  const configPath = global.configFile ?? env.CONCLAVECTL_CONFIG_FILE ?? join(REPO_ROOT, 'config', 'node1.yml');
  let config: AgentConfig;
  try {
    config = await loadConfigFile(configPath, env);
  } catch (err) {
    throw new CliError('ERR_CONFIG', `configuration ${configPath}: ${(err as Error).message}`, { cause: err });
  }
  let raw: JsonMap = {};
  try {
    const doc: unknown = parse(readFileSync(configPath, 'utf8'), { merge: true });
    if (isMap(doc)) raw = doc;
  } catch {
    // loadConfigFile has read and parsed the same text; nothing more to learn here
  }
  const restapi = sub(raw, 'restapi');
  const ctl = sub(raw, 'ctl');
  const scheme = text(restapi, 'certfile') !== null || (config.restapi as { certfile?: string | null }).certfile ? 'https' : 'http';
  const http = new HttpClient(restCredentials(config, raw, env), {
    insecure: global.insecure || ctl.insecure === true,
    ca: readPem(text(ctl, 'cacert') ?? text(restapi, 'cafile'), 'ctl.cacert'),
    cert: readPem(text(ctl, 'certfile'), 'ctl.certfile'),
    key: readPem(text(ctl, 'keyfile'), 'ctl.keyfile'),
    passphrase: text(ctl, 'keyfile_password'),
  });
  // The Raft ports answer only requests signed with the cluster secret; conclavectl signs as itself.
  if (config.raft.password !== null) http.raftAuth = new RaftAuth({ secret: config.raft.password, scope: config.scope, self: { id: 'conclavectl', incarnation: 'conclavectl' } });
  return { config, configPath, raw, http, scheme, global, io };
}

// ---- Finding the members

/** The REST addresses to ask first: --url, then this configuration's member. */
export function restSeeds(ctx: Ctx): string[] {
  const own = `${ctx.scheme}://${hostPort(ctx.config.restapi.connect_address)}`;
  return [...new Set([...ctx.global.urls.map((u) => u.replace(/\/+$/, '')), own])];
}

/** The Raft addresses of the configuration (self_addr, then partner_addrs), or --url for raft commands. */
export function raftUrls(ctx: Ctx): string[] {
  if (ctx.global.urls.length > 0) return ctx.global.urls.map((u) => u.replace(/\/+$/, ''));
  const scheme = ctx.config.raft.tls ? 'https' : 'http';
  return [ctx.config.raft.self_addr, ...ctx.config.raft.partner_addrs].map((a) => `${scheme}://${hostPort(a)}`);
}

/** The key prefix of this cluster in the store: /<namespace>/<scope>/. */
export const clusterPrefix = (ctx: Ctx): string => `${ctx.config.namespace}/${ctx.config.scope}/`;

export interface StoreKey {
  readonly key: string;
  readonly value: string;
}

/** The keys under `prefix`, read through the first Raft address that answers; null when none does. */
export async function readStoreKeys(ctx: Ctx, prefix: string): Promise<StoreKey[] | null> {
  for (const url of raftUrls(ctx)) {
    try {
      const res = await ctx.http.request('GET', `${url}/v1/kv?prefix=${encodeURIComponent(prefix)}`, { auth: 'raft' });
      if (res.status === 200) return parseJson<{ kvs: StoreKey[] }>(res, 'reading the store').kvs;
    } catch {
      // the next Raft address
    }
  }
  return null;
}

/** The members' REST addresses as they publish them in their keys (the fallback way to the cluster). */
async function basesFromStore(ctx: Ctx): Promise<string[]> {
  const kvs = await readStoreKeys(ctx, `${clusterPrefix(ctx)}members/`);
  const out: string[] = [];
  for (const kv of kvs ?? []) {
    try {
      const data = JSON.parse(kv.value) as { api_url?: unknown };
      const base = typeof data.api_url === 'string' ? apiBase(data.api_url, ctx.scheme) : null;
      if (base) out.push(base);
    } catch {
      // a member key that is not JSON names no address
    }
  }
  return out;
}

export interface Located {
  readonly cluster: ClusterInfo;
  /** The REST address that answered. */
  readonly via: string;
}

/** GET /cluster from the first member that answers (see the top of this file for the order). */
export async function getCluster(ctx: Ctx): Promise<Located> {
  const tried = new Set<string>();
  let refusal: CliError | null = null;
  const attempt = async (base: string): Promise<Located | null> => {
    if (tried.has(base)) return null;
    tried.add(base);
    let res: HttpResponse;
    try {
      res = await ctx.http.request('GET', `${base}/cluster`);
    } catch {
      return null;
    }
    if (res.status !== 200) {
      refusal ??= apiError(res, 'GET /cluster');
      return null;
    }
    const cluster = parseJson<ClusterInfo>(res, 'GET /cluster');
    if (!cluster || !Array.isArray(cluster.members)) throw new CliError('ERR_API', `GET /cluster: ${res.url} answered without a members list`);
    return { cluster, via: base };
  };
  for (const base of restSeeds(ctx)) {
    const found = await attempt(base);
    if (found) return found;
  }
  for (const base of await basesFromStore(ctx)) {
    const found = await attempt(base);
    if (found) return found;
  }
  throw refusal ?? new CliError('ERR_UNREACHABLE', `no member answered GET /cluster (tried ${[...tried].join(', ')})`);
}

/** Checks a `<cluster>` argument against the configuration's scope. */
export function checkClusterName(ctx: Ctx, name: string | undefined): void {
  if (name !== undefined && name !== ctx.config.scope) {
    throw new CliError('ERR_REFUSED', `cluster ${JSON.stringify(name)} is not the scope of ${ctx.configPath} (${JSON.stringify(ctx.config.scope)})`);
  }
}

export function memberBase(ctx: Ctx, m: { name: string; api_url?: string }): string {
  const base = m.api_url ? apiBase(m.api_url, ctx.scheme) : null;
  if (!base) throw new CliError('ERR_API', `member ${m.name} publishes no usable api_url (${JSON.stringify(m.api_url ?? null)})`);
  return base;
}

/** Every member's REST address, the leader's first, then the one that answered GET /cluster. */
export function basesLeaderFirst(ctx: Ctx, located: Located): string[] {
  const ordered = [...located.cluster.members].sort((a, b) => Number(isLeaderRole(b.role)) - Number(isLeaderRole(a.role)));
  const bases = ordered.flatMap((m) => {
    const b = m.api_url ? apiBase(m.api_url, ctx.scheme) : null;
    return b ? [b] : [];
  });
  return [...new Set([...bases, located.via])];
}

/** Sends to the first address that answers at all (any status); unreachable ones are skipped. */
export async function sendToFirst(ctx: Ctx, bases: readonly string[], method: string, path: string, opts: RequestOptions = {}): Promise<HttpResponse> {
  let last: unknown = null;
  for (const base of bases) {
    try {
      return await ctx.http.request(method, `${base}${path}`, opts);
    } catch (err) {
      last = err;
    }
  }
  throw last instanceof CliError ? new CliError('ERR_UNREACHABLE', `no member answered ${method} ${path} (last: ${last.message})`) : new CliError('ERR_UNREACHABLE', `no member to send ${method} ${path} to`);
}

// ---- The terminal

/**
 * Asks "Are you sure you want to <what>? [y/N]:" unless --force. Without a terminal to ask on,
 * refuses: a script must say --force, it must not block or guess.
 */
export async function confirm(ctx: Pick<Ctx, 'io'>, force: boolean, what: string): Promise<void> {
  if (force) return;
  if (!ctx.io.isTTY) throw new CliError('ERR_REFUSED', `refusing to ${what} without confirmation: stdin is not a terminal (add --force)`);
  const answer = (await ctx.io.ask(`Are you sure you want to ${what}? [y/N]: `)) ?? '';
  if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('ERR_REFUSED', 'aborted: not confirmed');
}

/** Prints a line only when it differs from the previous one: progress of a long wait. */
export function progress(ctx: Pick<Ctx, 'io'>): (line: string) => void {
  let last: string | null = null;
  return (line) => {
    if (line === last) return;
    last = line;
    ctx.io.out(`${timestamp(ctx.io.now())} ${line}\n`);
  };
}

/** patronictl's time format: "2024-05-01 12:00:00" in local time. */
export function timestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/**
 * A time for --scheduled: "now" is null (at once); ISO 8601 with or without a zone (without one
 * it is local time, as patronictl reads it), returned in UTC with its zone.
 */
export function parseScheduled(text: string | null, now: Date): string | null {
  if (text === null || text === 'now') return null;
  const t = Date.parse(text);
  if (!Number.isFinite(t)) throw new CliError('ERR_USAGE', `--scheduled: cannot read ${JSON.stringify(text)} as a time (use ISO 8601, e.g. 2030-01-31T02:00+01:00, or now)`, { usage: 'see: conclavectl <command> --help' });
  if (t <= now.getTime()) throw new CliError('ERR_REFUSED', `--scheduled ${text} is in the past`);
  return new Date(t).toISOString();
}

/** Polls `check` every `everyMs` until it returns true; ERR_TIMEOUT naming `what` after `timeoutMs`. */
export async function waitUntil(ctx: Pick<Ctx, 'io'>, what: string, timeoutMs: number, everyMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (performance.now() > deadline) throw new CliError('ERR_TIMEOUT', `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await ctx.io.sleep(everyMs);
  }
}

/** Every member's REST address (leader first) when GET /cluster answers, else the configured ones. */
export async function memberBases(ctx: Ctx): Promise<string[]> {
  try {
    return basesLeaderFirst(ctx, await getCluster(ctx));
  } catch {
    return restSeeds(ctx);
  }
}
