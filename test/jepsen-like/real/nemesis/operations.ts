// Operator actions while clients write: a switchover, a restart of the primary's PostgreSQL, and a
// membership change (a replica removed, then wiped and brought back as a new member). Not faults
// of the environment, but operations the cluster must carry out without losing an acknowledged
// write. Requests go to a node's REST API over its control link; their answers are recorded as
// observations when they arrive.
import type { FaultContext, Nemesis } from '../types.ts';
import { removeDir } from '../../../support/processes.ts';
import { applyFault, callApi, describeAnswer, indexOf } from './common.ts';
import type { ApiAnswer } from './common.ts';

/** Nodes other than `primary` whose /patroni says they run as replicas; all others if none does. */
async function replicasOf(ctx: FaultContext, primary: string): Promise<string[]> {
  const rest = ctx.nodes.filter((n) => n !== primary);
  const roles = await Promise.all(rest.map(async (n) => (await ctx.cluster.api(n))?.body.role));
  const running = rest.filter((_, k) => roles[k] === 'replica');
  return running.length > 0 ? running : rest;
}

/**
 * Sends a request without waiting for it; its answer is recorded as an observation `what` when it
 * comes. The fault's heal waits for the answer, so an operation is in force from the request to
 * its answer (or to the heal, whichever is later).
 */
function operation(ctx: FaultContext, kind: string, targets: string[], detail: string, via: string, send: () => Promise<ApiAnswer>, data: Record<string, unknown>) {
  let pending: Promise<void> = Promise.resolve();
  return applyFault(
    ctx,
    { kind, targets, detail },
    async () => {
      pending = send().then((a) => ctx.record({ type: 'observation', what: `${kind} answered`, node: via, at: ctx.now(), data: { ...data, status: a.status, answer: a.text } }));
    },
    () => pending,
  );
}

/** Records that nothing was done (no primary to act on), as a fault with nothing to heal. */
function nothing(ctx: FaultContext, kind: string, why: string) {
  return applyFault(ctx, { kind, targets: [], detail: why }, async () => undefined, async () => undefined);
}

export const switchover: Nemesis = {
  name: 'switchover',
  description: 'POST /switchover from the primary to a random replica, sent to a random node\'s API; the answer is recorded when it comes (heal waits for it)',
  async inject(ctx) {
    const via = ctx.rng.pick(ctx.nodes);
    const draw = ctx.rng.next();
    const primary = await ctx.currentPrimary();
    if (primary === null) return nothing(ctx, 'switchover', 'no primary: no switchover asked');
    const replicas = await replicasOf(ctx, primary);
    const candidate = replicas[Math.floor(draw * replicas.length)]!;
    const body = { leader: primary, candidate };
    return operation(ctx, 'switchover', [primary, candidate], `switchover ${primary} -> ${candidate} via ${via}`, via, () => callApi(ctx, via, 'POST', '/switchover', body), body);
  },
};

export const restartPrimary: Nemesis = {
  name: 'restart-primary',
  description: 'POST /restart on the primary: its PostgreSQL is restarted in place; the answer is recorded when it comes (heal waits for it)',
  async inject(ctx) {
    const primary = await ctx.currentPrimary();
    if (primary === null) return nothing(ctx, 'restart-primary', 'no primary: no restart asked');
    return operation(ctx, 'restart-primary', [primary], `restart postgres on ${primary}`, primary, () => callApi(ctx, primary, 'POST', '/restart', {}), {});
  },
};

/** The victim's Raft id: its raft.self_addr, the lab's cluster address and its Raft port. */
const raftIdOf = (ctx: FaultContext, name: string): string => `${ctx.lab.clusterIp(indexOf(ctx, name))}:${ctx.cluster.node(name).raftPort}`;

/** Whether any other member that answers says `name` is still a voter or learner; null when none answers. */
async function stillInRaft(ctx: FaultContext, name: string): Promise<boolean | null> {
  const id = raftIdOf(ctx, name);
  const answers = await Promise.all(ctx.nodes.filter((n) => n !== name).map((n) => ctx.cluster.raftStatus(n)));
  const known = answers.filter((s) => s !== null);
  if (known.length === 0) return null;
  return known.some((s) => s.voters.includes(id) || s.learners.includes(id));
}

export const membership: Nemesis = {
  name: 'membership',
  description:
    'DELETE /cluster/members/<a random replica> through another node\'s API; at heal its agent is stopped if it still runs, its PostgreSQL killed, its Raft and PostgreSQL data wiped, and its agent started again: it joins the cluster as a new member and clones a fresh replica',
  async inject(ctx) {
    const draw = ctx.rng.next();
    const viaDraw = ctx.rng.next();
    const primary = await ctx.currentPrimary();
    if (primary === null) return nothing(ctx, 'membership', 'no primary: no member removed');
    const candidates = ctx.nodes.filter((n) => n !== primary);
    const victim = candidates[Math.floor(draw * candidates.length)]!;
    const vias = ctx.nodes.filter((n) => n !== victim);
    const via = vias[Math.floor(viaDraw * vias.length)]!;
    let answer: ApiAnswer = { status: null, text: 'not sent' };
    return applyFault(
      ctx,
      () => ({ kind: 'membership', targets: [victim], detail: `remove ${victim} via ${via}: ${describeAnswer(answer)}` }),
      async () => {
        answer = await callApi(ctx, via, 'DELETE', `/cluster/members/${encodeURIComponent(victim)}`);
        ctx.record({ type: 'observation', what: 'membership answered', node: via, at: ctx.now(), data: { remove: victim, status: answer.status, answer: answer.text } });
      },
      () => bringBack(ctx, victim, () => answer),
    );
  },
};

/**
 * Undoes a removal: a removed agent stops by itself (the leader refuses its writes), but its
 * PostgreSQL runs detached and its data directories still say it belongs. Wiped, it starts as a
 * new member: with an empty raft.data_dir and partners whose voters are no longer the founding
 * ones, it asks to join (ha/raft-membership.ts: shouldJoin, askToJoin), and the leader admits it,
 * lifting its removal mark (RaftNode.admit). When the removal did not happen, nothing is done.
 */
async function bringBack(ctx: FaultContext, victim: string, answer: () => ApiAnswer): Promise<void> {
  const c = ctx.cluster;
  const node = c.node(victim);
  if (answer().status !== 200) {
    // Refused, or the request's fate is unknown: the Raft configuration decides.
    const inRaft = await stillInRaft(ctx, victim);
    if (inRaft !== false) {
      if (node.handle?.exit) await c.start(victim); // it stopped anyway: let it run again
      return;
    }
  }
  const handle = node.handle;
  if (handle && !handle.exit) {
    // Removed agents stop on their own within a few seconds; past that, stop it ourselves.
    await handle.waitForExit(20_000).catch(() => c.stopAgent(victim));
  }
  await c.killPostgres(victim);
  await removeDir(node.raftDataDir);
  await removeDir(node.pgDataDir);
  await c.start(victim);
}

export const OPERATION_NEMESES: readonly Nemesis[] = [switchover, restartPrimary, membership];
