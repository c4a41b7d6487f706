// Commands that act on chosen members, one REST request per member as patronictl sends them:
// restart, reload, reinit, flush, and remove-member (Conclave's own: membership is ours, not a
// DCS's). Each member's outcome is one line ("Success: ..." / "Failed: ..."); any failure makes
// the command fail.
import type { Parsed } from '../args.ts';
import { flag, value } from '../args.ts';
import { CliError } from '../errors.ts';
import { apiError, bodyLine } from '../http.ts';
import type { HttpResponse } from '../http.ts';
import type { Ctx } from '../context.ts';
import { basesLeaderFirst, checkClusterName, confirm, getCluster, memberBase, parseScheduled, progress, restSeeds, sendToFirst, waitUntil } from '../context.ts';
import { selectMembers } from '../cluster.ts';
import type { ClusterMember } from '../cluster.ts';

const RESTART_TIMEOUT_MS = 600_000;
const REINIT_WAIT_MS = 3_600_000;

/** The members named after the cluster (all when none), filtered by --role; unknown names refused. */
async function chosen(ctx: Ctx, p: Parsed, names: readonly string[]) {
  checkClusterName(ctx, p.args[0]);
  const located = await getCluster(ctx);
  const { members, unknown } = selectMembers(located.cluster, names, value(p, 'role'));
  if (unknown.length > 0) throw new CliError('ERR_REFUSED', `${unknown.join(', ')} ${unknown.length > 1 ? 'are not members' : 'is not a member'} of cluster ${located.cluster.scope}`);
  if (members.length === 0) throw new CliError('ERR_REFUSED', `no member of cluster ${located.cluster.scope} matches${value(p, 'role') ? ` role ${value(p, 'role')}` : ''}`);
  return { located, members };
}

function failedLine(action: string, m: ClusterMember, res: HttpResponse): string {
  return `Failed: ${action} for member ${m.name}, status code=${res.status}, (${bodyLine(res)})`;
}

/** Runs `send` on each member in turn, prints its line, and fails the command if any failed. */
async function perMember(ctx: Ctx, action: string, members: readonly ClusterMember[], send: (m: ClusterMember) => Promise<string | null>): Promise<number> {
  const failed: string[] = [];
  for (const m of members) {
    let line: string | null;
    try {
      line = await send(m);
    } catch (err) {
      line = `Failed: ${action} for member ${m.name}, ${(err as Error).message}`;
    }
    if (line === null) continue;
    ctx.io.out(`${line}\n`);
    if (line.startsWith('Failed')) failed.push(m.name);
  }
  if (failed.length > 0) throw new CliError('ERR_API', `${action} failed on ${failed.join(', ')}`);
  return 0;
}

export async function restart(ctx: Ctx, p: Parsed): Promise<number> {
  const { members } = await chosen(ctx, p, p.args.slice(1));
  const targets = flag(p, 'any') ? [members[Math.floor(Math.random() * members.length)]] : members;
  const schedule = parseScheduled(value(p, 'scheduled'), ctx.io.now());
  const body: Record<string, unknown> = {};
  if (flag(p, 'pending')) body.restart_pending = true;
  if (schedule !== null) body.schedule = schedule;
  if (value(p, 'pgVersion') !== null) body.postgres_version = value(p, 'pgVersion');
  if (value(p, 'timeout') !== null) body.timeout = Number(value(p, 'timeout'));
  await confirm(ctx, flag(p, 'force'), `${schedule ? `schedule a restart at ${schedule} of` : 'restart'} members ${targets.map((m) => m.name).join(', ')}`);
  return perMember(ctx, 'restart', targets, async (m) => {
    const res = await ctx.http.request('POST', `${memberBase(ctx, m)}/restart`, { body, timeoutMs: RESTART_TIMEOUT_MS });
    if (res.status === 200) return `Success: restart on member ${m.name}${bodyLine(res) && !/restarted/i.test(bodyLine(res)) ? ` (${bodyLine(res)})` : ''}`;
    if (res.status === 202) return `Success: restart scheduled on member ${m.name}`;
    // A filter that does not match (--pending, --pg-version) is Patroni's 503 too, but nothing failed.
    if (res.status === 503 && /conditions are not satisfied/i.test(res.text)) return `Skipped: restart on member ${m.name}: ${bodyLine(res)}`;
    return failedLine('restart', m, res);
  });
}

export async function reload(ctx: Ctx, p: Parsed): Promise<number> {
  const { members } = await chosen(ctx, p, p.args.slice(1));
  return perMember(ctx, 'reload', members, async (m) => {
    const res = await ctx.http.request('POST', `${memberBase(ctx, m)}/reload`);
    if (res.status === 200 || res.status === 202) return `Reload request received for member ${m.name}${bodyLine(res) ? `: ${bodyLine(res)}` : ''}`;
    return failedLine('reload', m, res);
  });
}

export async function reinit(ctx: Ctx, p: Parsed): Promise<number> {
  const { members } = await chosen(ctx, p, p.args.slice(1));
  const force = flag(p, 'force');
  await confirm(ctx, force, `reinitialize members ${members.map((m) => m.name).join(', ')}`);
  const started: ClusterMember[] = [];
  const body: Record<string, unknown> = { force };
  if (flag(p, 'fromLeader')) body.from_leader = true;
  const status = await perMember(ctx, 'reinitialize', members, async (m) => {
    const res = await ctx.http.request('POST', `${memberBase(ctx, m)}/reinitialize`, { body, timeoutMs: RESTART_TIMEOUT_MS });
    if (res.status !== 200) return failedLine('reinitialize', m, res);
    started.push(m);
    return `Success: reinitialize for member ${m.name}`;
  }).catch((err: unknown) => {
    if (!flag(p, 'wait') || started.length === 0) throw err;
    ctx.io.err(`conclavectl: ${(err as Error).message}\n`);
    return 1;
  });
  if (!flag(p, 'wait') || started.length === 0) return status;
  ctx.io.out(`Waiting for reinitialize to complete on: ${started.map((m) => m.name).join(', ')}\n`);
  const say = progress(ctx);
  const waiting = new Set(started.map((m) => m.name));
  await waitUntil(ctx, `reinitialize to complete on ${[...waiting].join(', ')}`, REINIT_WAIT_MS, 1000, async () => {
    for (const m of started.filter((x) => waiting.has(x.name))) {
      let state = 'not answering';
      try {
        const res = await ctx.http.request('GET', `${memberBase(ctx, m)}/patroni`);
        state = (JSON.parse(res.text) as { state?: string }).state ?? 'unknown';
      } catch {
        // still restarting
      }
      say(`${m.name}: ${state}`);
      if (state === 'running') {
        waiting.delete(m.name);
        ctx.io.out(`Reinitialize is completed on: ${m.name}\n`);
      }
    }
    return waiting.size === 0;
  });
  return status;
}

export async function flush(ctx: Ctx, p: Parsed): Promise<number> {
  const target = p.args[p.args.length - 1];
  if (target !== 'restart' && target !== 'switchover') {
    throw new CliError('ERR_USAGE', `flush needs restart or switchover as its last argument, got ${JSON.stringify(target)}`, { usage: 'usage: conclavectl flush <cluster> [member...] restart|switchover' });
  }
  const names = p.args.slice(1, -1);
  if (target === 'switchover') {
    if (names.length > 0) throw new CliError('ERR_USAGE', 'flush switchover takes no member names', { usage: 'usage: conclavectl flush <cluster> switchover' });
    checkClusterName(ctx, p.args[0]);
    const located = await getCluster(ctx);
    const res = await sendToFirst(ctx, basesLeaderFirst(ctx, located), 'DELETE', '/switchover');
    if (res.status === 404) {
      ctx.io.out('No pending scheduled switchover\n');
      return 0;
    }
    if (res.status !== 200) throw apiError(res, 'flush switchover');
    ctx.io.out('Success: scheduled switchover deleted\n');
    return 0;
  }
  const { members } = await chosen(ctx, p, names);
  return perMember(ctx, 'flush scheduled restart', members, async (m) => {
    const res = await ctx.http.request('DELETE', `${memberBase(ctx, m)}/restart`);
    if (res.status === 200) return `Success: flush scheduled restart for member ${m.name}`;
    if (res.status === 404) return `No scheduled restart for member ${m.name}`;
    return failedLine('flush scheduled restart', m, res);
  });
}

export async function removeMember(ctx: Ctx, p: Parsed): Promise<number> {
  const name = p.args[0];
  // Any member can carry the removal; the one being removed only as a last resort.
  let bases: string[];
  try {
    const located = await getCluster(ctx);
    const self = located.cluster.members.find((m) => m.name === name);
    const selfBase = self ? memberBase(ctx, self) : null;
    const all = basesLeaderFirst(ctx, located);
    bases = [...all.filter((b) => b !== selfBase), ...all.filter((b) => b === selfBase)];
    if (!self) ctx.io.err(`conclavectl: note: ${name} is not among the members GET /cluster lists; asking to remove it anyway\n`);
  } catch {
    bases = restSeeds(ctx);
  }
  await confirm(ctx, flag(p, 'force'), `remove member ${name} from cluster ${ctx.config.scope}`);
  const res = await sendToFirst(ctx, bases, 'DELETE', `/cluster/members/${encodeURIComponent(name)}`, { timeoutMs: 60_000 });
  if (res.status < 200 || res.status >= 300) throw apiError(res, `remove-member ${name}`);
  ctx.io.out(`Success: ${bodyLine(res) || `member ${name} removed`}\n`);
  return 0;
}
