// `switchover` and `failover`: checked here as patronictl checks them (a leader to demote, a
// candidate that exists), confirmed, then POSTed to the leader first (any member can write the
// request). An immediate one is followed: the member answers when the leader has changed, and
// meanwhile each change of who leads is printed as it happens.
import type { Parsed } from '../args.ts';
import { flag, value } from '../args.ts';
import { CliError } from '../errors.ts';
import { apiError } from '../http.ts';
import type { HttpResponse } from '../http.ts';
import type { Ctx, Located } from '../context.ts';
import { basesLeaderFirst, checkClusterName, confirm, getCluster, parseScheduled, progress, sendToFirst, timestamp } from '../context.ts';
import { leaderOf, roleTitle } from '../cluster.ts';
import type { ClusterInfo } from '../cluster.ts';
import { membersText } from './list.ts';

/** How long the member may take to answer an immediate switchover (it follows it for 2*max(10, loop_wait) s). */
const FOLLOW_TIMEOUT_MS = 180_000;

function stage(cluster: ClusterInfo, candidate: string | null): string {
  const leader = leaderOf(cluster);
  const c = candidate ? cluster.members.find((m) => m.name === candidate) : null;
  const about = c ? `; ${c.name}: ${roleTitle(c.role)}, ${c.state ?? 'unknown'}` : '';
  return `${leader ? `leader: ${leader.name} (${leader.state ?? 'unknown'})` : 'no leader: hand-over in progress'}${about}`;
}

/** Sends the request and prints each change of leadership until the member answers. */
async function followRequest(ctx: Ctx, located: Located, path: string, body: Record<string, string>, candidate: string | null): Promise<HttpResponse> {
  const say = progress(ctx);
  let done = false;
  const watcher = (async () => {
    while (!done) {
      try {
        const { cluster } = await getCluster(ctx);
        if (!done) say(stage(cluster, candidate));
      } catch {
        // members are busy handing over; the next look will tell
      }
      await ctx.io.sleep(500);
    }
  })();
  try {
    return await sendToFirst(ctx, basesLeaderFirst(ctx, located), 'POST', path, { body, timeoutMs: FOLLOW_TIMEOUT_MS });
  } finally {
    done = true;
    await watcher;
  }
}

async function showAfter(ctx: Ctx, res: HttpResponse): Promise<void> {
  ctx.io.out(`${timestamp(ctx.io.now())} ${res.text.trim()}\n`);
  try {
    ctx.io.out(`${await membersText(ctx, await getCluster(ctx), { extended: false, topology: false })}\n`);
  } catch {
    // the request succeeded; failing to redraw the table is not a failure of the command
  }
}

function checkCandidate(cluster: ClusterInfo, candidate: string, leaderName: string | null): void {
  if (!cluster.members.some((m) => m.name === candidate)) throw new CliError('ERR_REFUSED', `Member ${candidate} does not exist in cluster ${cluster.scope}`);
  if (candidate === leaderName) throw new CliError('ERR_REFUSED', `Member ${candidate} is already the leader of cluster ${cluster.scope}`);
}

export async function switchover(ctx: Ctx, p: Parsed): Promise<number> {
  checkClusterName(ctx, p.args[0]);
  const located = await getCluster(ctx);
  const { cluster } = located;
  const leader = leaderOf(cluster);
  if (!leader) throw new CliError('ERR_REFUSED', 'This cluster has no leader (a failover --candidate promotes a member without one)');
  const given = value(p, 'leader');
  if (given !== null && given !== leader.name) throw new CliError('ERR_REFUSED', `Member ${given} is not the leader of cluster ${cluster.scope}`);
  const candidate = value(p, 'candidate');
  if (candidate !== null) checkCandidate(cluster, candidate, leader.name);
  else if (!cluster.members.some((m) => m !== leader)) throw new CliError('ERR_REFUSED', 'No candidates found to switchover to');
  const scheduledAt = parseScheduled(value(p, 'scheduled'), ctx.io.now());

  ctx.io.out(`Current cluster topology\n${await membersText(ctx, located, { extended: false, topology: false })}\n`);
  const what = scheduledAt
    ? `schedule a switchover of cluster ${cluster.scope} at ${scheduledAt}, demoting current leader ${leader.name}`
    : `switchover cluster ${cluster.scope}, demoting current leader ${leader.name}`;
  await confirm(ctx, flag(p, 'force'), what);

  const body: Record<string, string> = { leader: leader.name };
  if (candidate !== null) body.candidate = candidate;
  if (scheduledAt !== null) {
    body.scheduled_at = scheduledAt;
    const res = await sendToFirst(ctx, basesLeaderFirst(ctx, located), 'POST', '/switchover', { body });
    if (res.status !== 202 && res.status !== 200) throw apiError(res, 'switchover');
    ctx.io.out(`${timestamp(ctx.io.now())} ${res.text.trim()}\n`);
    return 0;
  }
  ctx.io.out(`${timestamp(ctx.io.now())} switchover requested: ${leader.name} -> ${candidate ?? 'the best replica'}\n`);
  const res = await followRequest(ctx, located, '/switchover', body, candidate);
  if (res.status !== 200) throw apiError(res, 'switchover');
  await showAfter(ctx, res);
  return 0;
}

export async function failover(ctx: Ctx, p: Parsed): Promise<number> {
  checkClusterName(ctx, p.args[0]);
  const candidate = value(p, 'candidate');
  if (candidate === null) throw new CliError('ERR_USAGE', 'failover needs --candidate NAME (the member to promote)', { usage: 'usage: conclavectl failover [cluster] --candidate NAME [--force]' });
  const located = await getCluster(ctx);
  const { cluster } = located;
  const leader = leaderOf(cluster);
  checkCandidate(cluster, candidate, leader?.name ?? null);
  ctx.io.out(`Current cluster topology\n${await membersText(ctx, located, { extended: false, topology: false })}\n`);
  await confirm(ctx, flag(p, 'force'), `failover cluster ${cluster.scope} to ${candidate}${leader ? `, demoting current leader ${leader.name}` : ''}`);
  ctx.io.out(`${timestamp(ctx.io.now())} failover requested: promote ${candidate}\n`);
  const res = await followRequest(ctx, located, '/failover', { candidate }, candidate);
  if (res.status !== 200) throw apiError(res, 'failover');
  await showAfter(ctx, res);
  return 0;
}
