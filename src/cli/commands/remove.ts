// `remove <cluster>`: patronictl wipes the cluster's keys from its DCS. Here the store lives inside
// the agents (embedded Raft), so it cannot be reached with every agent stopped; what is required
// instead is that no agent can act on what it reads: the cluster paused (the agents change
// nothing) and PostgreSQL stopped on every member (no primary loses its leader key while it takes
// writes). Then, after --force and the cluster name typed at the prompt, every key under
// /<namespace>/<scope>/ is deleted through the Raft debug API (DELETE /v1/kv/<key>).
import type { Parsed } from '../args.ts';
import { flag } from '../args.ts';
import { CliError } from '../errors.ts';
import { apiError } from '../http.ts';
import type { Ctx } from '../context.ts';
import { checkClusterName, clusterPrefix, getCluster, raftUrls, readStoreKeys } from '../context.ts';
import { apiBase } from '../cluster.ts';

interface MemberReport {
  readonly name: string;
  /** null: the agent does not answer (stopped). */
  readonly state: string | null;
  readonly role: string | null;
  readonly pause: boolean;
}

/** Every member known from its key, with what its REST API says now. */
async function memberReports(ctx: Ctx, memberKeys: ReadonlyArray<{ key: string; value: string }>): Promise<MemberReport[]> {
  return Promise.all(memberKeys.map(async (kv) => {
    const name = kv.key.slice(kv.key.lastIndexOf('/') + 1);
    let base: string | null = null;
    try {
      const url = (JSON.parse(kv.value) as { api_url?: unknown }).api_url;
      base = typeof url === 'string' ? apiBase(url, ctx.scheme) : null;
    } catch {
      // no address to ask
    }
    if (base === null) return { name, state: null, role: null, pause: false };
    try {
      const res = await ctx.http.request('GET', `${base}/patroni`, { timeoutMs: 2000 });
      const b = JSON.parse(res.text) as { state?: string; role?: string; pause?: boolean; postmaster_start_time?: unknown };
      // An agent that found PostgreSQL stopped while paused may still say state "running" (it
      // made no change); no postmaster and no database role is what "stopped" means then.
      const noPostmaster = 'postmaster_start_time' in b && b.postmaster_start_time === null && !['primary', 'master', 'replica', 'standby_leader'].includes(b.role ?? '');
      return { name, state: noPostmaster ? 'stopped' : b.state ?? 'unknown', role: b.role ?? null, pause: b.pause === true };
    } catch {
      return { name, state: null, role: null, pause: false };
    }
  }));
}

async function deleteKey(ctx: Ctx, key: string): Promise<void> {
  let last = '';
  for (const start of raftUrls(ctx)) {
    let url = start;
    for (let hop = 0; hop < 5; hop++) {
      let res;
      try {
        res = await ctx.http.request('DELETE', `${url}/v1/kv/${encodeURIComponent(key)}`, { auth: 'raft' });
      } catch (err) {
        last = (err as Error).message;
        break;
      }
      if (res.status === 200) return;
      const leaderUrl = res.status === 503 ? (JSON.parse(res.text || '{}') as { leaderUrl?: unknown }).leaderUrl : null;
      if (typeof leaderUrl === 'string' && leaderUrl !== url) {
        url = leaderUrl.replace(/\/+$/, '');
        continue;
      }
      throw apiError(res, `deleting ${key}`);
    }
  }
  throw new CliError('ERR_UNREACHABLE', `deleting ${key}: no Raft member took it (${last})`);
}

export async function removeCluster(ctx: Ctx, p: Parsed): Promise<number> {
  checkClusterName(ctx, p.args[0]);
  const scope = ctx.config.scope;
  if (!flag(p, 'force')) throw new CliError('ERR_REFUSED', `remove deletes every key of cluster ${scope}: it needs --force, then the cluster name typed at the prompt`);
  const prefix = clusterPrefix(ctx);
  const keys = await readStoreKeys(ctx, prefix);
  if (keys === null) {
    throw new CliError('ERR_UNREACHABLE', `no Raft member answered on ${raftUrls(ctx).join(', ')}: the keys live in the agents' Raft (with every agent stopped, delete their raft data_dir instead)`);
  }
  if (keys.length === 0) {
    ctx.io.out(`Nothing to remove: no keys under ${prefix}\n`);
    return 0;
  }
  const reports = (await memberReports(ctx, keys.filter((k) => k.key.startsWith(`${prefix}members/`)))).filter((r) => r.role !== 'witness');
  const running = reports.filter((r) => r.state !== null && r.state !== 'stopped');
  if (running.length > 0) {
    throw new CliError('ERR_REFUSED', `refusing to remove cluster ${scope}: PostgreSQL is not stopped on ${running.map((r) => `${r.name} (${r.state})`).join(', ')}; pause the cluster, stop PostgreSQL on every member, then retry`);
  }
  const answering = reports.filter((r) => r.state !== null);
  let paused = answering.length > 0 && answering.every((r) => r.pause);
  if (!paused) {
    try {
      paused = (await getCluster(ctx)).cluster.pause === true;
    } catch {
      // an agent that answers nothing is not acting either; only answering agents need the pause
      paused = answering.length === 0;
    }
  }
  if (!paused) throw new CliError('ERR_REFUSED', `refusing to remove cluster ${scope}: its agents are running and it is not paused (conclavectl pause --wait first)`);

  const typed = await ctx.io.ask(`You are about to remove all ${keys.length} keys under ${prefix}. Please confirm the cluster name to remove: `);
  if (typed === null || typed.trim() !== scope) throw new CliError('ERR_REFUSED', `aborted: ${typed === null ? 'no answer' : `${JSON.stringify(typed.trim())} is not the cluster name`}`);
  for (const kv of keys) await deleteKey(ctx, kv.key);
  ctx.io.out(`Success: removed ${keys.length} keys under ${prefix}\n`);
  return 0;
}
