// The HA loop's driver: once per loop_wait (or at once when the leader key changes, or a task
// ends) it gathers the facts (store view, PostgreSQL status, peers during a race), asks decide()
// and has the executor carry the decision out; then it publishes the member key. The sentence
// decide() returned is logged when it changes and served by GET /patroni.
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { readFileSync } from 'node:fs';
import type { ClusterStore } from './cluster-store.ts';
import type { ClusterView } from './cluster-view.ts';
import type { DatabaseAgentConfig, DynamicConfig } from './config/types.ts';
import { validateDynamicConfig } from './config/load.ts';
import type { PostgresController } from './postgres/controller.ts';
import type { ControlData, PgStatus } from './postgres/types.ts';
import { NOT_RUNNING } from './postgres/status.ts';
import { decide, upstreamOf } from './decide.ts';
import { slotNameFor } from './postgres/conf-files.ts';
import { mayFailOver } from './decide-race.ts';
import type { DecideInput, PeerReport } from './decide-types.ts';
import { LeaseGuard } from './lease-guard.ts';
import type { OutsideFence } from './lease-guard.ts';
import { execute } from './ha-actions.ts';
import type { AgentState } from './ha-actions.ts';
import { memberData, peerReportFrom } from './member-data.ts';
import type { LocalState } from './member-data.ts';
import type { CallbackRunner } from './callbacks.ts';

export interface HaLoopDeps {
  config: DatabaseAgentConfig;
  store: ClusterStore;
  pg: PostgresController;
  logger: Logger;
  /** Monotonic milliseconds. */
  now: () => number;
  /** Called when the agent must stop (a fatal decision). */
  onFatal: (message: string) => void;
  callbacks: CallbackRunner;
  /**
   * Stops PostgreSQL from outside this process if the agent misses its deadline; the real one
   * (fence/fence.ts) also owns the watchdog device and says why this member may not lead.
   */
  fence?: OutsideFence & { watchdogBlocksLeadership?: () => string | null };
}

/** An unchanged decision is logged again after this long (repeats are folded in between). */
const REASON_RELOG_MS = 60_000;

export class HaLoop {
  private readonly deps: HaLoopDeps;
  private readonly log: Logger;
  readonly guard: LeaseGuard;
  readonly state: AgentState = { task: null, rewindFailed: false, checkpointAfterPromote: null, memberState: 'stopped', leaseExpiresAt: null, lastStatusJson: null };
  private dynamic: DynamicConfig;
  private readonly membersLastSeen = new Map<string, number>();
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private cycling: Promise<void> | null = null;
  private wakeRequested = false;
  private unwatch: (() => void) | null = null;
  /* Peers are asked with a short connect timeout of their own: an abort signal does not cut short
   * a TCP connect to a host that drops packets (a partitioned peer), which would hold the race
   * for undici's default 10 s. */
  private readonly peerDispatcher: Agent;

  /** What the REST API shows between cycles. */
  lastReason: string | null = null;
  private reasonRepeats = 0;
  private primaryDownSince: number | null = null;
  private reasonLoggedAt = 0;
  lastPg: PgStatus = NOT_RUNNING;
  lastCluster: ClusterView | null = null;
  lastControl: ControlData | null = null;
  lastCycleStartedAt: number | null = null;
  /** Wall-clock ms of the last successful read of the store (GET /patroni's dcs_last_seen). */
  lastStoreReadAt: number | null = null;
  cycles = 0;

  constructor(deps: HaLoopDeps) {
    this.deps = deps;
    this.log = deps.logger;
    this.dynamic = deps.config.bootstrap.dcs;
    // Peers' APIs over HTTPS are trusted through restapi.cafile (the cluster's own CA, as a rule).
    // With verify_client: required a peer asks for a client certificate even on GET: ours.
    const { cafile, certfile, keyfile, keyfile_password, verify_client } = deps.config.restapi;
    const tls = {
      ...(cafile ? { ca: readFileSync(cafile) } : {}),
      ...(verify_client === 'required' && certfile ? { cert: readFileSync(certfile), key: readFileSync(keyfile ?? certfile), passphrase: keyfile_password ?? undefined } : {}),
    };
    this.peerDispatcher = new Agent({ connect: { timeout: this.peerTimeoutMs(), ...tls }, keepAliveTimeout: 10_000 });
    this.guard = new LeaseGuard({
      now: deps.now,
      marginMs: this.marginMs(),
      fence: deps.fence,
      onExpiry: (late) => void this.leaseExpired(late),
    });
  }

  settings(): DynamicConfig {
    return this.dynamic;
  }

  /** True while this agent holds the leader lock with time left on it (the LB's "primary"). */
  isLeader(): boolean {
    return this.guard.valid();
  }

  start(): void {
    // Replicas wake as soon as the leader key changes: a lapsed lease starts the race at once.
    this.unwatch = this.deps.store.watchLeader((leader) => {
      if (leader?.name !== this.deps.config.name) this.wake();
    });
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.unwatch?.();
    await this.cycling;
    await this.peerDispatcher.close();
  }

  wake(): void {
    if (this.stopped) return;
    if (this.cycling) {
      this.wakeRequested = true;
      return;
    }
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.cycling = this.cycle().finally(() => {
        this.cycling = null;
        const next = this.wakeRequested ? 0 : Math.max(0, (this.lastCycleStartedAt ?? 0) + this.dynamic.loop_wait * 1000 - this.deps.now());
        this.wakeRequested = false;
        this.schedule(next);
      });
    }, delayMs);
  }

  /** One HA cycle. Never throws: every failure becomes part of the cycle's sentence. */
  async cycle(): Promise<void> {
    const { config, store, pg, now } = this.deps;
    this.lastCycleStartedAt = now();
    this.cycles++;
    let reason: string;
    try {
      const pgStatus = await pg.status().catch(() => NOT_RUNNING);
      // pg_controldata is a process spawn: while PostgreSQL runs, what decide() needs from it (the
      // system identifier) cannot change, so it is read only when PostgreSQL is not running.
      const dataDirEmpty = pgStatus.running ? false : await pg.dataDirEmpty();
      const control = pgStatus.running && this.lastControl !== null ? this.lastControl : await pg.controlData().catch(() => null);
      this.lastPg = pgStatus;
      this.lastControl = control;
      let cluster: ClusterView | null = null;
      let storeError: string | null = null;
      try {
        cluster = await store.getCluster();
        this.lastStoreReadAt = Date.now();
        if (this.adoptDynamicConfig(cluster)) await this.applyParameters();
        for (const m of cluster.members) this.membersLastSeen.set(m.name, now());
      } catch (err) {
        storeError = (err as { code?: string }).code ?? (err as Error).message;
      }
      this.lastCluster = cluster;
      if (pgStatus.running && pgStatus.role === 'primary') this.state.memberState = 'running';
      const watchdogBlocksLeadership = this.deps.fence?.watchdogBlocksLeadership?.() ?? null;
      const input: DecideInput = {
        now: now(),
        wallNow: Date.now(),
        me: {
          name: config.name,
          nofailover: config.tags.nofailover,
          failoverPriority: config.tags.failover_priority,
          clonefrom: config.tags.clonefrom,
          dataDirEmpty,
          control,
          pg: pgStatus,
          task: this.state.task,
          rewindFailed: this.state.rewindFailed,
          watchdogBlocksLeadership,
          primaryDownSince: this.trackPrimaryDown(pgStatus),
        },
        cluster,
        storeError,
        leaseExpiresAt: this.guard.valid() ? this.state.leaseExpiresAt : null,
        peers: cluster && cluster.leader === null && pgStatus.running && watchdogBlocksLeadership === null && mayFailOver(config.tags.nofailover, config.tags.failover_priority) ? await this.askPeers(cluster) : [],
        settings: {
          ttlMs: this.dynamic.ttl * 1000,
          maximumLagOnFailover: this.dynamic.maximum_lag_on_failover,
          checkTimeline: this.dynamic.check_timeline,
          usePgRewind: config.postgresql.use_pg_rewind ?? this.dynamic.postgresql.use_pg_rewind,
          removeDataDirectoryOnRewindFailure: config.postgresql.remove_data_directory_on_rewind_failure,
          removeDataDirectoryOnDivergedTimelines: config.postgresql.remove_data_directory_on_diverged_timelines,
          useSlots: this.dynamic.postgresql.use_slots,
          memberSlotsTtlMs: this.dynamic.member_slots_ttl * 1000,
          primaryStartTimeoutMs: this.dynamic.primary_start_timeout * 1000,
          paused: this.dynamic.extra.pause === true,
          sync: { mode: this.dynamic.synchronous_mode === true, strict: this.dynamic.synchronous_mode_strict, nodeCount: this.dynamic.synchronous_node_count },
        },
        membersLastSeen: this.membersLastSeen,
        replication: cluster?.leader?.name === config.name && pgStatus.role === 'primary' && this.dynamic.synchronous_mode === true ? await pg.replication().catch(() => null) : null,
        managedSyncNames: pg.managedSyncNames,
      };
      const decision = decide(input);
      const failure = await execute(decision.actions, cluster, {
        config,
        store,
        pg,
        guard: this.guard,
        state: this.state,
        logger: this.log,
        callbacks: this.deps.callbacks,
        settings: () => this.dynamic,
        wake: () => this.wake(),
        fatal: (message) => this.deps.onFatal(message),
      });
      reason = failure ? `${decision.reason}; but ${failure}` : decision.reason;
      if (cluster !== null) await this.publishMember();
    } catch (err) {
      reason = `cycle failed: ${(err as Error).message}`;
    }
    this.logReason(reason);
  }

  /** While this member holds the lock, since when its PostgreSQL has not been a running primary. */
  private trackPrimaryDown(pg: PgStatus): number | null {
    if (!this.isLeader() || (pg.running && pg.role === 'primary')) this.primaryDownSince = null;
    else this.primaryDownSince ??= this.deps.now();
    return this.primaryDownSince;
  }

  /**
   * One line per decision, repeats folded: a changed reason is logged at once (with how often
   * the previous one repeated); an unchanged one only once a minute, so a quiet cluster still
   * shows it is alive without a line every loop_wait.
   */
  private logReason(reason: string): void {
    const t = this.deps.now();
    if (reason !== this.lastReason) {
      this.log.info(this.reasonRepeats > 1 ? { cycle: this.cycles, previousRepeated: this.reasonRepeats } : { cycle: this.cycles }, reason);
      this.reasonRepeats = 1;
      this.reasonLoggedAt = t;
    } else {
      this.reasonRepeats++;
      if (t - this.reasonLoggedAt >= REASON_RELOG_MS) {
        this.log.info({ cycle: this.cycles, repeated: this.reasonRepeats }, reason);
        this.reasonLoggedAt = t;
      } else {
        this.log.debug({ cycle: this.cycles }, reason);
      }
    }
    this.lastReason = reason;
  }

  /** The member key, refreshed every cycle (its lease is the member's heartbeat). */
  private async publishMember(): Promise<void> {
    const pgStatus = await this.deps.pg.status().catch(() => NOT_RUNNING);
    this.lastPg = pgStatus;
    try {
      await this.deps.store.touchMember(this.deps.config.name, memberData(this.deps.config, this.localState()), this.dynamic.ttl * 1000);
    } catch (err) {
      this.log.debug({ err }, 'could not write the member key');
    }
  }

  /** Re-reads PostgreSQL's status for the API (between cycles it may have been promoted or stopped). */
  async refreshPg(): Promise<void> {
    this.lastPg = await this.deps.pg.status().catch(() => NOT_RUNNING);
  }

  /** Who streams from this server (pg_stat_replication, Patroni's `replication` field); [] when PostgreSQL does not answer. */
  async replicationRows(): Promise<Record<string, unknown>[]> {
    // host(): an inet cast to text would carry the netmask ("127.0.0.1/32"); Patroni shows the bare address.
    const sql = 'SELECT usename, application_name, host(client_addr) AS client_addr, state, sync_state, sync_priority FROM pg_catalog.pg_stat_replication ORDER BY application_name';
    return this.deps.pg.query(sql).catch(() => []);
  }

  localState(): LocalState {
    const pg = this.lastPg;
    // With no task under way, PostgreSQL's own state is the member's: a postmaster that died (or
    // was stopped by hand in pause) is 'stopped' whatever the last action left behind.
    const idle = this.state.task === null;
    const state = idle && pg.running ? 'running' : pg.starting ? 'starting' : idle && this.state.memberState === 'running' ? 'stopped' : this.state.memberState;
    return { pg, state, checkpointAfterPromote: this.state.checkpointAfterPromote, isLeader: this.isLeader(), pendingRestartReasons: this.deps.pg.pendingRestartReasons() };
  }

  /** GET /patroni on every other member in parallel; no answer within the timeout = unreachable. */
  private async askPeers(cluster: ClusterView): Promise<PeerReport[]> {
    const timeoutMs = this.peerTimeoutMs();
    const others = cluster.members.filter((m) => m.name !== this.deps.config.name);
    return Promise.all(
      others.map(async (m): Promise<PeerReport> => {
        const unreachable: PeerReport = { name: m.name, reachable: false, role: null, walPosition: null, timeline: null, nofailover: false, failoverPriority: 1 };
        const url = m.data.api_url;
        if (typeof url !== 'string') return unreachable;
        try {
          const ask = async (): Promise<unknown> => {
            const res = await request(url, { method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs), dispatcher: this.peerDispatcher });
            return res.body.json();
          };
          let timer: NodeJS.Timeout | undefined;
          const deadline = new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('no answer in time')), timeoutMs);
          });
          try {
            return peerReportFrom(m.name, await Promise.race([ask(), deadline]));
          } finally {
            clearTimeout(timer);
          }
        } catch {
          return unreachable;
        }
      }),
    );
  }

  /**
   * Runs an operator's request as the agent's one background task, so cycles go on keeping the
   * lock meanwhile. A restart is awaited; a reinitialize only started. Resolves with why it cannot
   * be done (or failed), or null.
   */
  /** `startTimeoutMs` (restart): how long PostgreSQL may take to come back (POST /restart's timeout). */
  async runOperatorTask(name: 'restart' | 'reinitialize', startTimeoutMs?: number): Promise<string | null> {
    if (this.state.task !== null) return `${this.state.task} already in progress`;
    const { pg, store, config, callbacks } = this.deps;
    if (name === 'reinitialize') {
      const cluster = await store.getCluster();
      if (cluster.leader === null) return 'Cluster has no leader, can not reinitialize';
      if (cluster.leader.name === config.name) return 'I am the leader, can not reinitialize';
      const leader = cluster.members.find((m) => m.name === cluster.leader!.name);
      const from = leader ? upstreamOf(leader) : null;
      if (!from) return `the leader ${cluster.leader.name} has not published its address`;
      // Started, not awaited: a fresh copy takes as long as the data is big (Patroni answers at once too).
      this.state.task = 'reinitialize';
      void (async () => {
        try {
          this.state.memberState = 'creating replica';
          await pg.stop('immediate');
          await pg.basebackup(from);
          await pg.start({ role: 'replica', upstream: from, slotName: this.dynamic.postgresql.use_slots ? slotNameFor(config.name) : null });
          this.state.memberState = 'running';
          this.state.rewindFailed = false;
          callbacks.fire('on_start', 'replica');
          this.log.info(`reinitialized from ${from.name}`);
        } catch (err) {
          this.state.memberState = 'stopped';
          this.log.error({ err: (err as Error).message }, 'reinitialize failed');
        } finally {
          this.state.task = null;
          this.wake();
        }
      })();
      return null;
    }
    this.state.task = 'restart';
    try {
      const role = this.lastPg.role ?? 'replica';
      await pg.restart(startTimeoutMs);
      callbacks.fire('on_restart', role);
      return null;
    } catch (err) {
      return `restart failed: ${(err as Error).message}`;
    } finally {
      this.state.task = null;
      this.wake();
    }
  }

  /**
   * The cluster's `config` key, when valid, replaces the settings in force (Patroni: dynamic
   * config). True when PostgreSQL's parameters changed with it.
   */
  private adoptDynamicConfig(cluster: ClusterView): boolean {
    if (!cluster.config) return false;
    try {
      const next = validateDynamicConfig(cluster.config.value, 'config');
      if (JSON.stringify(next) === JSON.stringify(this.dynamic)) return false;
      this.log.info({ ttl: next.ttl, loop_wait: next.loop_wait, retry_timeout: next.retry_timeout }, 'dynamic configuration changed');
      if (next.synchronous_mode === 'quorum') this.log.warn("synchronous_mode: quorum is not supported yet; replication stays asynchronous (use synchronous_mode: true)");
      const parametersChanged = JSON.stringify(next.postgresql.parameters) !== JSON.stringify(this.dynamic.postgresql.parameters);
      this.dynamic = next;
      return parametersChanged;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'the config key is invalid; keeping the settings in force');
      return false;
    }
  }

  /** Dynamic parameters under the local ones (local wins, as in Patroni), reloaded into PostgreSQL. */
  private async applyParameters(): Promise<void> {
    const merged = { ...this.dynamic.postgresql.parameters, ...this.deps.config.postgresql.parameters };
    try {
      await this.deps.pg.applyParameters(merged);
      if (this.lastPg.running) this.deps.callbacks.fire('on_reload', this.lastPg.role ?? 'replica');
      const pending = this.deps.pg.pendingRestartReasons();
      this.log.info({ pending }, pending.length > 0 ? 'parameters reloaded; some need a restart' : 'parameters reloaded');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not apply the changed parameters');
    }
  }

  /** Patroni gives peers 2 s; a loop of half a second cannot wait that long. */
  private peerTimeoutMs(): number {
    return Math.max(200, Math.min(2000, this.dynamic.retry_timeout * 1000));
  }

  private marginMs(): number {
    return Math.max(250, this.dynamic.ttl * 1000 * 0.25);
  }

  /** The lease guard fired: no renewal got through in time. Stop writes now. */
  private async leaseExpired(lateByMs: number): Promise<void> {
    this.state.leaseExpiresAt = null;
    const reason = `demoted self because the leader lease deadline passed without a successful renewal (timer ${Math.round(lateByMs)} ms late)`;
    this.log.warn(reason);
    this.lastReason = reason;
    try {
      const st = await this.deps.pg.status();
      if (st.role === 'primary' || st.running || st.starting) await this.deps.pg.stop('immediate');
      this.state.memberState = 'stopped';
      // PostgreSQL is down: the fence and its watchdog have nothing left to guard (Patroni disables
      // the watchdog once a demotion has stopped PostgreSQL). Unless a renewal got through meanwhile.
      if (this.guard.demoteBy === null) this.deps.fence?.disarm();
      this.deps.callbacks.fire('on_role_change', 'demoted');
    } catch (err) {
      this.log.error({ err }, 'could not stop postgres after the lease deadline');
    }
    this.wake();
  }
}
