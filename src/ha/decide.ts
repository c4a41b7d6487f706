// The HA decision: one cycle's facts in, the actions to take and one sentence saying why out.
// This file is the place to read how Conclave decides; it follows the order of Patroni's
// Ha._run_cycle (reference §5): store reachable? → data directory (bootstrap, clone, identity) →
// PostgreSQL down (crash recovery, rejoin with pg_rewind) → the lock: free (race), ours (renew),
// someone else's (follow). Pure: no I/O, no clock (the driver passes `now`).
//
// Safety does not rest on this function alone. The lease rule is enforced by the driver's lease
// guard, which stops a primary before its lease can expire anywhere even when a cycle is stuck in
// I/O; decide() only has to never keep a primary whose lock it knows to be lost.
import type { ClusterView, MemberView } from './cluster-view.ts';
import type { Action, DecideInput, Decision, Upstream } from './decide-types.ts';
import type { ControlData } from './postgres/types.ts';
import { failoverRequest, isHealthiest, mayFailOver, promotableReplica } from './decide-race.ts';
import { syncActions } from './decide-sync.ts';

export function decide(input: DecideInput): Decision {
  const { me, cluster } = input;
  if (cluster === null) return storeUnavailable(input);
  const iHoldLock = cluster.leader?.name === me.name;
  if (input.settings.paused) return paused(input, cluster, iHoldLock);

  if (me.task !== null) {
    if (iHoldLock) return { actions: [{ type: 'renewLock' }], reason: `updated leader lock during ${me.task}` };
    return none(`${me.task} in progress`);
  }
  if (me.dataDirEmpty) return emptyDataDir(input, cluster, iHoldLock);

  const identity = checkIdentity(input, cluster);
  if (identity) return identity;
  if (!me.pg.running) return postgresDown(input, cluster, iHoldLock);
  if (cluster.leader === null) return unlocked(input, cluster);
  if (iHoldLock) return lockedByMe(input, cluster);
  return lockedByOther(input, cluster);
}

const none = (why: string): Decision => ({ actions: [], reason: `no action: ${why}` });

/**
 * Watchdog mode `required`: a member whose watchdog cannot be activated must not lead (Patroni:
 * "Not promoting self because watchdog could not be activated"). Why, or null.
 */
function watchdogBlock(input: DecideInput): string | null {
  const why = input.me.watchdogBlocksLeadership;
  return why === null ? null : `the watchdog is required but not usable (${why})`;
}

/**
 * Pause mode (Patroni's): the agents report but do not act on PostgreSQL. A primary keeps its
 * lock while it runs and gives it up when it does not; nobody races, starts, stops or demotes.
 */
function paused(input: DecideInput, cluster: ClusterView, iHoldLock: boolean): Decision {
  const { me } = input;
  if (iHoldLock) {
    if (me.pg.running && me.pg.role === 'primary') return { actions: [{ type: 'renewLock' }], reason: `PAUSE: no action: I am ${me.name}, the leader with the lock` };
    return { actions: [{ type: 'releaseLock' }], reason: 'PAUSE: released the leader lock: postgres is not running as primary' };
  }
  if (!me.pg.running) return { actions: [], reason: 'PAUSE: no action: postgres is not running' };
  const role = me.pg.role === 'primary' ? 'a primary without the lock' : 'a secondary';
  const leader = cluster.leader ? `following a leader (${cluster.leader.name})` : 'and there is no leader';
  return { actions: [], reason: `PAUSE: no action: I am ${me.name}, ${role}, ${leader}` };
}

/**
 * Replicas keep replicating. A primary keeps running until its lease deadline: the lease guard
 * stops it before the lease can expire anywhere, so a blip of the store (a Raft election) does not
 * cost a demotion (Patroni demotes at once here, having no such deadline; docs/divergence.md).
 */
function storeUnavailable(input: DecideInput): Decision {
  const { me, storeError, leaseExpiresAt, now } = input;
  const why = `the store is unavailable (${storeError ?? 'no answer'})`;
  if (me.pg.role !== 'primary') return none(`${why}; still ${me.pg.running ? 'replicating' : 'waiting'}`);
  if (leaseExpiresAt === null || leaseExpiresAt <= now) {
    return { actions: [{ type: 'demote', mode: 'offline' }], reason: `demoted self because ${why} and I hold no valid leader lease` };
  }
  return none(`${why}; still primary for at most ${Math.round(leaseExpiresAt - now)} ms, until my lease deadline`);
}

function emptyDataDir(input: DecideInput, cluster: ClusterView, iHoldLock: boolean): Decision {
  const { me } = input;
  if (iHoldLock) return { actions: [{ type: 'releaseLock' }], reason: 'released the leader lock: my data directory is empty' };
  if (cluster.leader === null) {
    if (cluster.initialize !== null) return none('waiting for the leader to bootstrap');
    if (!mayFailOver(me.nofailover, me.failoverPriority)) return none('not bootstrapping a cluster: tagged nofailover; waiting for a leader');
    const blocked = watchdogBlock(input);
    if (blocked) return none(`not bootstrapping a cluster: ${blocked}`);
    return { actions: [{ type: 'bootstrap' }], reason: `bootstrapping a new cluster: no cluster is initialized, and I am ${me.name}` };
  }
  const source = cloneSource(cluster, me.name);
  if (source === null) return none(`waiting for the leader ${cluster.leader.name} to publish its address`);
  return { actions: [{ type: 'clone', from: source }], reason: `creating a replica from ${source.name} with pg_basebackup` };
}

/** A data directory from another cluster must never join this one. */
function checkIdentity(input: DecideInput, cluster: ClusterView): Decision | null {
  const sysid = input.me.control?.systemIdentifier ?? null;
  if (cluster.initialize === '') return none('waiting for the cluster bootstrap in progress elsewhere');
  if (sysid !== null && cluster.initialize !== null && cluster.initialize !== sysid) {
    const message = `the data directory has system identifier ${sysid} but cluster ${JSON.stringify(cluster.initialize)} is initialized; refusing to run against another cluster's data`;
    return { actions: [{ type: 'fatal', message }], reason: message };
  }
  if (sysid !== null && cluster.initialize === null && cluster.leader === null) {
    return { actions: [{ type: 'adopt', sysid }], reason: `adopted the existing data directory as the cluster's (system identifier ${sysid})` };
  }
  return null;
}

/**
 * Patroni's primary_start_timeout: a lock holder whose PostgreSQL has not come back within it
 * gives the lock up, so that a healthy replica can take over, instead of retrying for as long as
 * its agent runs. Only when some replica could take over: with none, restarting is all there is.
 */
function primaryStartTimedOut(input: DecideInput, cluster: ClusterView): Decision | null {
  const { me, settings } = input;
  if (me.primaryDownSince === null || input.now - me.primaryDownSince < settings.primaryStartTimeoutMs) return null;
  if (!cluster.members.some((m) => m.name !== me.name && promotableReplica(m))) return null;
  const waited = Math.round((input.now - me.primaryDownSince) / 1000);
  return { actions: [{ type: 'releaseLock' }], reason: `released the leader lock: postgres has not started as primary for ${waited} s (primary_start_timeout ${settings.primaryStartTimeoutMs / 1000} s) and a replica can take over` };
}

function postgresDown(input: DecideInput, cluster: ClusterView, iHoldLock: boolean): Decision {
  const { me, settings } = input;
  if (iHoldLock) {
    const gaveUp = primaryStartTimedOut(input, cluster);
    if (gaveUp) return gaveUp;
  }
  if (me.pg.starting) {
    if (iHoldLock) return { actions: [{ type: 'renewLock' }], reason: 'updated leader lock while postgres is starting' };
    return none('waiting for postgres to start');
  }
  if (iHoldLock) {
    const blocked = watchdogBlock(input);
    if (blocked) return { actions: [{ type: 'releaseLock' }], reason: `released the leader lock: ${blocked}` };
    if (wasPrimary(me.control)) return { actions: [{ type: 'renewLock' }, { type: 'startPrimary' }], reason: 'restarting postgres as primary: it was not running and I hold the leader lock' };
    return { actions: [{ type: 'releaseLock' }], reason: "released the leader lock: postgres is not running and my data directory is not a primary's" };
  }
  if (cluster.leader === null) {
    return { actions: [{ type: 'startReplica', upstream: null, rewind: false }], reason: 'starting postgres read-only: there is no leader yet' };
  }
  const leader = cluster.members.find((m) => m.name === cluster.leader!.name);
  const upstream = leader ? upstreamOf(leader) : null;
  if (upstream === null) return { actions: [{ type: 'startReplica', upstream: null, rewind: false }], reason: `starting postgres read-only: the leader ${cluster.leader.name} has not published its address` };

  const divergence = mayHaveDiverged(me.control, cluster, leader);
  if (divergence === 'unknown') return none(`waiting for ${upstream.name} to finish its promotion and record its timeline switch before deciding on pg_rewind`);
  const diverged = divergence === 'yes';
  if (diverged && !settings.usePgRewind && settings.removeDataDirectoryOnDivergedTimelines) {
    return { actions: [{ type: 'clone', from: upstream }], reason: `re-creating the replica from ${upstream.name}: I was a primary and pg_rewind is off` };
  }
  if (!diverged || !settings.usePgRewind) {
    const caveat = diverged ? ' (pg_rewind is off: if our timelines diverged it will not stream)' : '';
    return { actions: [{ type: 'startReplica', upstream, rewind: false }], reason: `starting postgres as a replica of ${upstream.name}${caveat}` };
  }
  if (me.rewindFailed) {
    if (settings.removeDataDirectoryOnRewindFailure) return { actions: [{ type: 'clone', from: upstream }], reason: `re-creating the replica from ${upstream.name}: pg_rewind failed` };
    return none('pg_rewind failed and remove_data_directory_on_rewind_failure is off: this member needs an operator');
  }
  // pg_rewind reads the new primary's control file, which shows the new timeline only after its
  // first checkpoint; rewinding earlier would wrongly find nothing to do (Patroni waits the same way).
  if (leader?.data.checkpoint_after_promote === false) return none(`waiting for ${upstream.name} to checkpoint after its promotion before pg_rewind`);
  return { actions: [{ type: 'startReplica', upstream, rewind: true }], reason: `rejoining as a replica of ${upstream.name} after pg_rewind: I was a primary` };
}

function unlocked(input: DecideInput, cluster: ClusterView): Decision {
  const { me } = input;
  const blocked = watchdogBlock(input);
  const verdict = blocked ? { healthiest: false, why: blocked } : isHealthiest(input);
  if (!verdict.healthiest) {
    // A primary that may not take the lock must not stay writable without it.
    if (me.pg.role === 'primary') return { actions: [{ type: 'demote', mode: 'immediate-nolock' }], reason: `demoted self: the leader lock is free but I may not take it (${verdict.why})` };
    return none(`the leader lock is free but I am not racing: ${verdict.why}`);
  }
  if (me.pg.role === 'primary') {
    return { actions: [{ type: 'acquireLock', promote: false }, ...leaderUpkeep(input, cluster)], reason: 'acquired the leader lock as the running primary' };
  }
  return { actions: [{ type: 'acquireLock', promote: true }], reason: 'promoted self because the leader lock was free and I am the healthiest member' };
}

function lockedByMe(input: DecideInput, cluster: ClusterView): Decision {
  const { me } = input;
  // Patroni demotes at once here ('immediate': stop, then release the lock).
  const blocked = watchdogBlock(input);
  if (blocked && me.pg.role === 'primary') return { actions: [{ type: 'demote', mode: 'immediate' }], reason: `demoted self because ${blocked}` };
  if (blocked) return { actions: [{ type: 'releaseLock' }], reason: `released the leader lock: ${blocked}` };
  if (me.pg.role !== 'primary') {
    // We won a race but the promotion did not happen (failed, or the agent restarted in between).
    return { actions: [{ type: 'renewLock' }, { type: 'promote' }], reason: 'promoted self: I hold the leader lock but postgres was still a replica' };
  }
  const switchover = plannedHandOver(input, cluster);
  if (switchover) return switchover;
  return { actions: [{ type: 'renewLock' }, ...leaderUpkeep(input, cluster)], reason: `no action: I am ${me.name}, the leader with the lock` };
}

/**
 * The leader's side of a switchover or manual failover (Patroni: process_manual_failover_from_leader).
 * Carried out by a graceful demotion; the candidate (or the best replica) takes the freed lock.
 */
function plannedHandOver(input: DecideInput, cluster: ClusterView): Decision | null {
  const request = failoverRequest(cluster);
  if (!request || !cluster.failover) return null;
  const { me } = input;
  const clear = { type: 'clearFailover', revision: cluster.failover.revision } as const;
  if (request.leader !== null && request.leader !== me.name) {
    return { actions: [{ type: 'renewLock' }, clear], reason: `cleared a ${request.kind} request for leader ${request.leader}: I am the leader` };
  }
  if (request.candidate === me.name) return { actions: [{ type: 'renewLock' }, clear], reason: `cleared a ${request.kind} request to ${me.name}: I am already the leader` };
  if (request.scheduledAt !== null && request.scheduledAt > input.wallNow) {
    return { actions: [{ type: 'renewLock' }, ...leaderUpkeep(input, cluster)], reason: `no action: I am ${me.name}, the leader with the lock; a ${request.kind} is scheduled at ${request.scheduledAtText}` };
  }
  const healthy = cluster.members.filter((m) => m.name !== me.name && promotableReplica(m));
  const target = request.candidate === null ? healthy : healthy.filter((m) => m.name === request.candidate);
  if (target.length === 0) {
    const why = request.candidate === null ? 'no healthy replica may take over' : `${request.candidate} is not a healthy replica that may take over`;
    return { actions: [{ type: 'renewLock' }, clear], reason: `cleared a ${request.kind} request: ${why}` };
  }
  const to = request.candidate ?? 'the healthiest replica';
  return { actions: [{ type: 'demote', mode: 'graceful' }], reason: `${request.kind}: demoting myself gracefully in favour of ${to}` };
}


/** What the lock holder maintains each cycle, after renewing: missing keys and the members' slots. */
function leaderUpkeep(input: DecideInput, cluster: ClusterView): Action[] {
  const actions: Action[] = [];
  if (cluster.initialize === null || cluster.config === null) actions.push({ type: 'repairKeys' });
  if (input.settings.useSlots) actions.push({ type: 'syncSlots', members: slotMembers(input, cluster) });
  if (input.me.pg.role === 'primary') actions.push(...syncActions(input.me.name, cluster, input.replication, input.settings.sync, input.managedSyncNames));
  return actions;
}

function lockedByOther(input: DecideInput, cluster: ClusterView): Decision {
  const { me } = input;
  const leaderName = cluster.leader!.name;
  if (me.pg.role === 'primary') return { actions: [{ type: 'demote', mode: 'immediate-nolock' }], reason: `demoted self because ${leaderName} holds the leader lock` };
  const leader = cluster.members.find((m) => m.name === leaderName);
  const upstream = leader ? upstreamOf(leader) : null;
  if (upstream === null) return none(`I am ${me.name}, a secondary; the leader ${leaderName} has not published its address yet`);
  const diverged = replicaDiverged(input, cluster, leader);
  if (diverged) {
    const { settings } = input;
    if (settings.usePgRewind && !me.rewindFailed) return { actions: [{ type: 'startReplica', upstream, rewind: true }], reason: `rewinding: ${diverged}` };
    if ((!settings.usePgRewind && settings.removeDataDirectoryOnDivergedTimelines) || (me.rewindFailed && settings.removeDataDirectoryOnRewindFailure)) {
      return { actions: [{ type: 'clone', from: upstream }], reason: `re-creating the replica from ${upstream.name}: ${diverged}` };
    }
    return none(`${diverged}; pg_rewind is off or failed: this member needs an operator (or remove_data_directory_on_diverged_timelines)`);
  }
  const following = me.pg.upstreamHost === upstream.host && me.pg.upstreamPort === upstream.port;
  const actions: Action[] = following ? [] : [{ type: 'follow', upstream }];
  return { actions, reason: `no action: I am ${me.name}, a secondary, and following a leader (${leaderName})` };
}

/** The control file says this data directory was a primary's (running or cleanly shut down). */
function wasPrimary(control: ControlData | null): boolean {
  return control !== null && (control.state === 'in production' || control.state === 'shut down');
}

/**
 * A running replica that replayed WAL past the point where the new leader's timeline forked off
 * its own (an asynchronous replica ahead of the member that won the race) cannot stream from it:
 * its walreceiver waits forever on the old timeline. The `history` entry for its timeline says
 * where the fork is. Why it must be rewound, or null. Only judged while it is not streaming.
 */
function replicaDiverged(input: DecideInput, cluster: ClusterView, leader: MemberView | undefined): string | null {
  const { pg } = input.me;
  if (pg.role !== 'replica' || pg.replicationState === 'streaming' || pg.timeline === null) return null;
  const leaderTimeline = typeof leader?.data.timeline === 'number' ? leader.data.timeline : null;
  if (leaderTimeline === null || pg.timeline >= leaderTimeline) return null;
  const forkedAt = (cluster.history?.value ?? []).find((h) => Array.isArray(h) && h[0] === pg.timeline);
  const forkLsn = Array.isArray(forkedAt) && typeof forkedAt[1] === 'number' ? forkedAt[1] : null;
  // Replayed, not received: received WAL may already be the new timeline's (a replica switching
  // over normally), while replay stays on ours until the fork. Replay past the fork on our
  // timeline is divergence for certain.
  const position = pg.replayedLsn ?? 0;
  if (forkLsn === null || position <= forkLsn) return null;
  return `I replayed WAL up to ${position} on timeline ${pg.timeline}, past where the leader's timeline forked off it (${forkLsn})`;
}

/**
 * Whether this data directory may hold WAL the leader does not have, so that it must be rewound
 * before it can follow. A replica's may not (it only replays what it received), unless it is on a
 * timeline ahead of the leader's. A former primary's may, except after a clean shutdown whose
 * checkpoint the new primary had received before it switched timeline: the `history` entry for our
 * timeline records where the switch happened (Patroni asks the new primary over a replication
 * connection for the same fact).
 */
function mayHaveDiverged(control: ControlData | null, cluster: ClusterView, leader: MemberView | undefined): 'yes' | 'no' | 'unknown' {
  if (control === null) return 'no';
  const leaderTimeline = typeof leader?.data.timeline === 'number' ? leader.data.timeline : null;
  if (leaderTimeline !== null && control.timeline > leaderTimeline) return 'yes';
  if (!wasPrimary(control)) return 'no';
  if (control.state !== 'shut down') return 'yes';
  const switchedAt = (cluster.history?.value ?? []).find((h) => Array.isArray(h) && h[0] === control.timeline);
  const switchLsn = Array.isArray(switchedAt) && typeof switchedAt[1] === 'number' ? switchedAt[1] : null;
  if (switchLsn !== null) return switchLsn > control.checkpointLsn ? 'no' : 'yes';
  // The new leader holds the lock but has not finished promoting (still on our timeline): its
  // history entry comes right after. Once it is on a later timeline with no entry, rewind.
  return leaderTimeline === null || leaderTimeline <= control.timeline ? 'unknown' : 'yes';
}

/**
 * Members whose slot the primary keeps: every other member, and vanished ones for member_slots_ttl
 * unless an operator removed them.
 */
function slotMembers(input: DecideInput, cluster: ClusterView): string[] {
  const names = new Set(cluster.members.filter((m) => m.data.tags === undefined || !(m.data.tags as { nostream?: unknown }).nostream).map((m) => m.name));
  // Vanished: seen lately, no member key now (a present member tagged nostream stays without one).
  const present = new Set(cluster.members.map((m) => m.name));
  const removed = new Set(cluster.removed);
  for (const [name, seen] of input.membersLastSeen) {
    if (!present.has(name) && !removed.has(name) && input.now - seen < input.settings.memberSlotsTtlMs) names.add(name);
  }
  names.delete(input.me.name);
  return [...names].sort();
}

/** A running member tagged clonefrom, else the leader (Patroni: clone source choice, first one not random). */
function cloneSource(cluster: ClusterView, self: string): Upstream | null {
  const running = cluster.members.filter((m) => m.name !== self && m.data.state === 'running');
  for (const m of running) {
    const tags = m.data.tags as { clonefrom?: unknown } | undefined;
    const up = upstreamOf(m);
    if (tags?.clonefrom === true && up) return up;
  }
  const leader = cluster.members.find((m) => m.name === cluster.leader?.name);
  return leader ? upstreamOf(leader) : null;
}

/** Host and port from a member's `conn_url` (postgres://host:port/postgres), or null. */
export function upstreamOf(member: MemberView): Upstream | null {
  const url = member.data.conn_url;
  if (typeof url !== 'string') return null;
  const m = /^postgres(?:ql)?:\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/]+):(\d+)/.exec(url);
  if (!m) return null;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { name: member.name, host: m[1].replace(/^\[|\]$/g, ''), port };
}
