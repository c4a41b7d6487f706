// Carries out what decide() chose. Each action talks to the store or to PostgreSQL through their
// one interface each; none decides anything beyond "did it work". Long actions (bootstrap, clone,
// start, rejoin) run as the agent's single background task while cycles go on keeping the lock
// (Patroni's async executor). An action that fails stops the rest of the list, and the cycle's
// sentence says what failed.
import type { Logger } from 'pino';
import type { Action, DemoteMode, Upstream } from './decide-types.ts';
import type { ClusterStore } from './cluster-store.ts';
import type { ClusterView } from './cluster-view.ts';
import type { DatabaseAgentConfig, DynamicConfig } from './config/types.ts';
import { dynamicConfigToJson } from './config/load.ts';
import type { PostgresController } from './postgres/controller.ts';
import { slotNameFor } from './postgres/conf-files.ts';
import type { LeaseGuard } from './lease-guard.ts';
import type { MemberState } from './member-data.ts';
import type { CallbackRunner } from './callbacks.ts';
import { STRICT_PLACEHOLDER, standbyNamesSetting, syncStandbys } from './decide-sync.ts';

/** The agent's mutable state that actions change and the next cycle's facts read. */
export interface AgentState {
  task: string | null;
  rewindFailed: boolean;
  checkpointAfterPromote: boolean | null;
  memberState: MemberState;
  leaseExpiresAt: number | null;
  /** The last `status` value written, so it is written only when it changes. */
  lastStatusJson: string | null;
}

export interface ExecutorDeps {
  config: DatabaseAgentConfig;
  store: ClusterStore;
  pg: PostgresController;
  guard: LeaseGuard;
  state: AgentState;
  logger: Logger;
  callbacks: CallbackRunner;
  settings: () => DynamicConfig;
  /** Ask for a cycle as soon as possible (a task finished, the lock changed hands). */
  wake: () => void;
  /** The agent must stop: running on would do harm. */
  fatal: (message: string) => void;
}

/** Runs `actions` in order; returns null when all went through, else what failed. */
export async function execute(actions: readonly Action[], cluster: ClusterView | null, deps: ExecutorDeps): Promise<string | null> {
  for (const action of actions) {
    try {
      const failure = await run(action, cluster, deps);
      if (failure) return failure;
    } catch (err) {
      return `${action.type} failed: ${(err as Error).message}`;
    }
  }
  return null;
}

async function run(action: Action, cluster: ClusterView | null, deps: ExecutorDeps): Promise<string | null> {
  const { store, pg, config, state } = deps;
  const ttlMs = deps.settings().ttl * 1000;
  switch (action.type) {
    case 'bootstrap':
      return background(deps, 'bootstrap', () => bootstrap(deps));
    case 'adopt':
      return (await store.initialize(action.sysid)) ? null : 'another member initialized the cluster first';
    case 'clone':
      return background(deps, 'clone', async () => {
        state.memberState = 'creating replica';
        await pg.stop('immediate');
        await pg.basebackup(action.from);
        await startReplica(deps, action.from);
      });
    case 'startPrimary':
      return background(deps, 'start', async () => {
        state.memberState = 'starting';
        await pg.start({ role: 'primary', upstream: null, slotName: null });
        state.memberState = 'running';
        deps.callbacks.fire('on_start', 'primary');
      });
    case 'startReplica':
      return background(deps, action.rewind ? 'rewind' : 'start', async () => {
        state.memberState = 'starting';
        if (action.rewind && action.upstream) {
          try {
            // A running replica found diverged is stopped first: pg_rewind needs a clean shutdown.
            if ((await pg.postmasterPid()) !== null) await pg.stop('fast');
            await pg.rewind(action.upstream);
          } catch (err) {
            // A rewind that never reached the point of changing the data directory (its source
            // unreachable for now) is tried again next cycle; only a broken-off one needs a re-clone.
            if ((err as { code?: string }).code !== 'ERR_PG_REWIND_UNTOUCHED') state.rewindFailed = true;
            state.memberState = 'stopped';
            throw err;
          }
        }
        await startReplica(deps, action.upstream);
      });
    case 'acquireLock': {
      const r = await store.attemptToAcquireLeader(config.name, ttlMs);
      if (!r.acquired || r.leaseExpiresAt === null) return 'lost the race for the leader lock';
      holdLease(deps, r.leaseExpiresAt);
      if (cluster?.failover) await store.setFailover(null, cluster.failover.revision);
      if (action.promote) {
        const blocked = await prepareSyncPromotion(deps, cluster);
        if (blocked) return blocked;
        await promote(deps, cluster);
      }
      return null;
    }
    case 'renewLock':
      return renew(deps, ttlMs);
    case 'releaseLock':
      deps.guard.disarm();
      state.leaseExpiresAt = null;
      await store.deleteLeader(config.name);
      return null;
    case 'promote':
      await promote(deps, cluster);
      return null;
    case 'demote':
      await demote(deps, action.mode);
      return null;
    case 'follow':
      await pg.writeConfig({ role: 'replica', upstream: action.upstream, slotName: ownSlot(deps) });
      await pg.reload();
      return null;
    case 'syncSlots':
      await pg.syncPhysicalSlots(action.members.map(slotNameFor));
      return null;
    case 'writeSync':
      return (await store.setSyncState(action.value, action.revision)) ? null : 'the sync key changed meanwhile';
    case 'setSyncNames':
      await pg.setSynchronousStandbyNames(action.value);
      return null;
    case 'clearFailover':
      await store.setFailover(null, action.revision);
      return null;
    case 'repairKeys':
      await repairKeys(deps, cluster);
      return null;
    case 'fatal':
      deps.fatal(action.message);
      return action.message;
  }
}

/** Starts `fn` as the background task; the cycle goes on. */
function background(deps: ExecutorDeps, name: string, fn: () => Promise<void>): null {
  const { state, logger } = deps;
  state.task = name;
  void (async () => {
    try {
      await fn();
      logger.info({ task: name }, `${name} finished`);
    } catch (err) {
      logger.error({ task: name, err }, `${name} failed: ${(err as Error).message}`);
      if (state.memberState === 'starting') state.memberState = 'start failed';
    } finally {
      state.task = null;
      deps.wake();
    }
  })();
  return null;
}

/**
 * Synchronous mode, before a promotion (Patroni does the same): the `sync` key names us as its
 * leader, and PostgreSQL comes up requiring synchronous standbys at once; strict mode keeps the
 * previous standbys in the key (none of them misses an acknowledged commit: none can happen
 * until one of them, or a new one, confirms). Returns why the promotion must wait, or null.
 */
async function prepareSyncPromotion(deps: ExecutorDeps, cluster: ClusterView | null): Promise<string | null> {
  const settings = deps.settings();
  if (settings.synchronous_mode !== true) return null;
  const me = deps.config.name;
  const previous = cluster ? syncStandbys(cluster).filter((n) => n !== me) : [];
  const keep = settings.synchronous_mode_strict ? previous : [];
  const written = await deps.store.setSyncState({ leader: me, sync_standby: keep.length > 0 ? keep.join(',') : null }, cluster?.sync?.revision ?? 0);
  if (!written) return 'the sync key changed before the promotion; promoting next cycle';
  if (settings.synchronous_mode_strict) await deps.pg.setSynchronousStandbyNames(standbyNamesSetting([STRICT_PLACEHOLDER], 1));
  return null;
}

async function startReplica(deps: ExecutorDeps, upstream: Upstream | null): Promise<void> {
  const { pg, state } = deps;
  await pg.setSynchronousStandbyNames(null);
  await pg.start({ role: 'replica', upstream, slotName: upstream ? ownSlot(deps) : null });
  state.rewindFailed = false;
  state.memberState = 'running';
  deps.callbacks.fire('on_start', 'replica');
}

/** The slot this member streams through, when the cluster uses slots (use_slots). */
function ownSlot(deps: ExecutorDeps): string | null {
  return deps.settings().postgresql.use_slots ? slotNameFor(deps.config.name) : null;
}

function holdLease(deps: ExecutorDeps, leaseExpiresAt: number): void {
  deps.state.leaseExpiresAt = leaseExpiresAt;
  deps.guard.arm(leaseExpiresAt);
}

async function renew(deps: ExecutorDeps, ttlMs: number): Promise<string | null> {
  const { store, config, state, guard, pg } = deps;
  const r = await store.updateLeader(config.name, ttlMs);
  if (!r.held || r.leaseExpiresAt === null) {
    guard.disarm();
    state.leaseExpiresAt = null;
    // The store answered: someone else may be promoted from now on. Stop writes at once.
    const st = await pg.status();
    if (st.role === 'primary') {
      await demote(deps, 'immediate-nolock');
      return 'demoted self because failed to update leader lock in the store';
    }
    return 'failed to update leader lock in the store';
  }
  holdLease(deps, r.leaseExpiresAt);
  // The leader publishes its position so that replicas can judge their lag in a race.
  const st = await pg.status();
  if (st.role === 'primary' && st.walPosition !== null) {
    const json = JSON.stringify({ optime: st.walPosition });
    if (json !== state.lastStatusJson) {
      await store.setStatus({ optime: st.walPosition });
      state.lastStatusJson = json;
    }
  }
  return null;
}

async function promote(deps: ExecutorDeps, cluster: ClusterView | null): Promise<void> {
  const { pg, store, config, state, logger } = deps;
  const before = await pg.status();
  state.task = 'promote';
  try {
    await pg.promote();
  } finally {
    state.task = null;
  }
  state.checkpointAfterPromote = false;
  deps.callbacks.fire('on_role_change', 'primary');
  // The checkpoint makes pg_control show the new timeline, which pg_rewind on the old primary
  // reads; until it is done our member key says so and rewinders wait.
  void pg.checkpoint().then(
    () => {
      state.checkpointAfterPromote = null;
      deps.wake();
    },
    (err: Error) => logger.warn({ err }, 'checkpoint after promote failed; retried next cycle'),
  );
  if (before.timeline !== null) {
    const history = Array.isArray(cluster?.history?.value) ? [...cluster.history.value] : [];
    history.push([before.timeline, before.walPosition ?? 0, 'no recovery target specified', new Date().toISOString(), config.name]);
    await store.setHistory(history).catch((err: Error) => logger.warn({ err }, 'could not write history'));
  }
}

export async function demote(deps: ExecutorDeps, mode: DemoteMode): Promise<void> {
  const { pg, store, config, state, guard } = deps;
  if (mode === 'graceful') {
    // A checkpoint first, so that the shutdown one is short; a fast stop then sends every record,
    // the shutdown checkpoint included, to the connected replicas before the postmaster exits.
    // Only then is the key released: whoever takes it has everything this primary wrote.
    await pg.checkpoint().catch(() => undefined);
    await pg.stop('fast');
    state.memberState = 'stopped';
    deps.callbacks.fire('on_role_change', 'demoted');
    guard.disarm();
    state.leaseExpiresAt = null;
    await store.deleteLeader(config.name);
    return;
  }
  await pg.stop('immediate');
  state.memberState = 'stopped';
  deps.callbacks.fire('on_role_change', 'demoted');
  if (mode === 'immediate') {
    guard.disarm();
    state.leaseExpiresAt = null;
    await store.deleteLeader(config.name);
  }
  if (mode === 'immediate-nolock') {
    guard.disarm();
    state.leaseExpiresAt = null;
  }
  // offline keeps the lease bookkeeping: it is about to lapse anyway and the guard holds no writer.
}

async function repairKeys(deps: ExecutorDeps, cluster: ClusterView | null): Promise<void> {
  const { store, pg, config } = deps;
  if (cluster?.initialize === null) {
    const control = await pg.controlData();
    if (control) await store.initialize(control.systemIdentifier);
  }
  if (cluster?.config === null) await store.setConfig(dynamicConfigToJson(config.bootstrap.dcs) as Record<string, unknown>, 0);
}

/** initdb, start, roles, then take the lock and record the cluster (Patroni: bootstrap + post_bootstrap). */
async function bootstrap(deps: ExecutorDeps): Promise<void> {
  const { store, pg, config, state, logger } = deps;
  if (!(await store.initialize(''))) {
    logger.info('another member won the bootstrap race');
    return;
  }
  state.memberState = 'initializing new cluster';
  let sysid: string | null = null;
  try {
    await pg.initdb();
    await pg.start({ role: 'primary', upstream: null, slotName: null });
    await pg.createRoles();
    deps.callbacks.fire('on_start', 'primary');
    const control = await pg.controlData();
    if (!control) throw new Error('pg_controldata found no cluster after initdb');
    sysid = control.systemIdentifier;
    const r = await store.attemptToAcquireLeader(config.name, config.bootstrap.dcs.ttl * 1000);
    if (!r.acquired || r.leaseExpiresAt === null) throw new Error('could not take the leader lock after initdb');
    holdLease(deps, r.leaseExpiresAt);
    // The cluster exists from the moment `initialize` holds our system identifier: that write is
    // the last step. The config key is best effort; the lock holder repairs it if it is missing.
    await store.setConfig(dynamicConfigToJson(config.bootstrap.dcs) as Record<string, unknown>, 0).catch((err: Error) => logger.warn({ err: err.message }, 'could not write the config key yet'));
    if (!(await store.completeInitialize(sysid))) throw new Error('the initialize key changed during bootstrap');
    state.memberState = 'running';
  } catch (err) {
    // A write that timed out may still have applied: if `initialize` names our cluster, the
    // bootstrap did happen, and wiping this data directory would leave a cluster with no data.
    const done = sysid !== null && (await store.getCluster().then((v) => v.initialize === sysid, () => false));
    if (done) {
      logger.warn({ err: (err as Error).message }, 'bootstrap: a step reported failure but the cluster is initialized with our data; carrying on');
      state.memberState = 'running';
      return;
    }
    // Give the race back and leave no half-made cluster behind: the next attempt starts clean.
    deps.guard.disarm();
    state.leaseExpiresAt = null;
    await pg.stop('immediate').catch(() => undefined);
    await store.deleteLeader(config.name).catch(() => undefined);
    await store.cancelInitialize().catch(() => undefined);
    await pg.removeDataDir().catch(() => undefined);
    state.memberState = 'stopped';
    throw err;
  }
}
