// One Conclave agent: a Raft member (the cluster's consensus group is its agents), the cluster
// store on it, the PostgreSQL controller, the HA loop and the REST API, wired together and
// stopped in the reverse order.
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { RaftNode } from '../raft/node/raft-node.ts';
import { ForwardingKv } from '../raft/node/forwarding.ts';
import { raftServerTls } from '../raft/transport/tls.ts';
import { registerKvApi } from '../raft/node/kv-http.ts';
import { ClusterStore } from './cluster-store.ts';
import type { AgentConfig, DatabaseAgentConfig } from './config/types.ts';
import { askToJoin, raftAuthFor, raftMemberId, raftPeers, shouldJoin } from './raft-membership.ts';
import { registerClusterMembersApi } from '../api/cluster-members-api.ts';
import { httpsOptions, registerWriteGuard } from '../api/security.ts';
import { PostgresController } from './postgres/controller.ts';
import { HaLoop } from './ha-loop.ts';
import { registerWitnessApi } from '../api/patroni-api.ts';
import { registerDatabaseApi } from '../api/database-api.ts';
import { registerWitnessMetricsApi } from '../api/metrics-api.ts';
import { CallbackRunner } from './callbacks.ts';
import { Fence } from './fence/fence.ts';

/** The host of a member's api_url, for allowlist_include_members. */
function hostOfUrl(url: unknown): string[] {
  if (typeof url !== 'string') return [];
  try {
    return [new URL(url).hostname.replace(/^\[|\]$/g, '')];
  } catch {
    return [];
  }
}

export interface AgentOptions {
  config: AgentConfig;
  logger: Logger;
  /** Called when the agent must stop (a fatal decision). */
  onFatal: (message: string) => void;
}

/** The parts that exist only on a member that runs PostgreSQL (not on a witness). */
interface DatabaseParts {
  pg: PostgresController;
  loop: HaLoop;
  callbacks: CallbackRunner;
  fence: Fence;
}

export class Agent {
  readonly config: AgentConfig;
  private readonly logger: Logger;
  private raftApp!: FastifyInstance;
  private apiApp!: FastifyInstance;
  raft!: RaftNode;
  store!: ClusterStore;
  private kv!: ForwardingKv;
  /** null on a witness. */
  private db: DatabaseParts | null = null;
  private stopping = false;

  private constructor(opts: AgentOptions) {
    this.config = opts.config;
    this.logger = opts.logger;
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    const agent = new Agent(opts);
    const { config, logger } = opts;
    const now = (): number => performance.now();
    // How long one store request may take. Safety does not rest on it (the lease guard and the
    // fence do), so it is generous: under a loaded machine a timed-out write is an ambiguous one.
    const retryMs = Math.max(2000, config.bootstrap.dcs.retry_timeout * 2000);

    const auth = await raftAuthFor(config, logger);
    agent.raftApp = auth.tls ? Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024, https: raftServerTls(auth.tls) }) : Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
    const join = await shouldJoin(config, logger, auth);
    agent.raft = await RaftNode.start(
      { id: raftMemberId(config), dataDir: config.raft.data_dir, peers: raftPeers(config), join, tickMs: 10, electionTicks: 30, heartbeatTicks: 5, requestTimeoutMs: retryMs, logger: logger.child({ layer: 'raft' }), auth },
      agent.raftApp,
    );
    // The store's own debugging API (GET /v1/status, /v1/kv) on the Raft port: `conclavectl raft status`.
    registerKvApi(agent.raftApp, agent.raft);
    agent.raft.on('fatal', (err: Error) => opts.onFatal(`raft stopped: ${err.message}`));
    agent.raft.once('removed', () => opts.onFatal('this member was removed from the cluster; to join it again, empty raft.data_dir and start the agent'));
    await agent.raftApp.listen({ host: config.raft.bind_addr.host, port: config.raft.bind_addr.port });
    // Only once listening: the leader starts replicating to a learner as soon as it admits it.
    if (join) void askToJoin(config, logger.child({ layer: 'raft' }), agent.raft.auth, () => agent.stopping);

    agent.kv = new ForwardingKv(agent.raft, { timeoutMs: retryMs });
    agent.store = new ClusterStore({ raft: agent.kv, namespace: config.namespace, scope: config.scope, now });
    const https = httpsOptions(config.restapi);
    agent.apiApp = https ? Fastify({ logger: false, https }) : Fastify({ logger: false });
    registerWriteGuard(agent.apiApp, {
      restapi: config.restapi,
      memberHosts: () => (agent.db?.loop.lastCluster?.members ?? []).flatMap((m) => hostOfUrl(m.data.api_url)),
    });
    registerClusterMembersApi(agent.apiApp, { store: agent.store, raft: agent.raft, selfUrl: raftPeers(config)[raftMemberId(config)]! });
    if (config.postgresql === null) {
      // A witness: a Raft voter and nothing else (no member key, so no slot is kept for it).
      registerWitnessApi(agent.apiApp, config);
      registerWitnessMetricsApi(agent.apiApp, { config, raft: agent.raft });
      await agent.apiApp.listen({ host: config.restapi.listen.host, port: config.restapi.listen.port });
      logger.info('witness: votes in Raft, runs no PostgreSQL');
      return agent;
    }
    const db = config as DatabaseAgentConfig;
    const pgConfig = db.postgresql;
    const runAs = process.getuid?.() === 0 ? pgConfig.run_as : null;
    const pg = new PostgresController({
      name: config.name,
      scope: config.scope,
      dataDir: pgConfig.data_dir,
      binDir: pgConfig.bin_dir,
      listen: pgConfig.listen,
      superuser: pgConfig.authentication.superuser,
      replication: pgConfig.authentication.replication,
      rewind: pgConfig.authentication.rewind,
      parameters: { ...config.bootstrap.dcs.postgresql.parameters, ...pgConfig.parameters },
      pgHba: pgConfig.pg_hba.length > 0 ? pgConfig.pg_hba : config.bootstrap.pg_hba,
      initdbOptions: config.bootstrap.initdb,
      runAs,
      timeoutMs: pgConfig.pg_ctl_timeout * 1000,
      logger: logger.child({ layer: 'postgres' }),
      pgpass: pgConfig.pgpass,
    });
    const callbacks = new CallbackRunner({ commands: pgConfig.callbacks, scope: config.scope, runAs, logger: logger.child({ layer: 'callbacks' }) });
    const unsupported = pgConfig.create_replica_methods.filter((m) => m !== 'basebackup');
    if (unsupported.length > 0) logger.warn({ unsupported }, 'postgresql.create_replica_methods: only basebackup is supported; the others are skipped');
    const fence = await Fence.start(pgConfig.data_dir, logger.child({ layer: 'fence' }), { ...config.watchdog, ttl: config.bootstrap.dcs.ttl });
    const loop = new HaLoop({ config: db, store: agent.store, pg, logger: logger.child({ layer: 'ha' }), now, onFatal: opts.onFatal, callbacks, fence });
    agent.db = { pg, loop, callbacks, fence };

    registerDatabaseApi(agent.apiApp, { config: db, store: agent.store, raft: agent.raft, loop, pg, now, switchoverWaitMs: 30_000 });
    await agent.apiApp.listen({ host: config.restapi.listen.host, port: config.restapi.listen.port });
    loop.start();
    return agent;
  }

  /**
   * Stops the agent, handing off at once rather than leaving the others to wait out the lease
   * (a planned stop must not be a slow failover): PostgreSQL is stopped (a fast shutdown sends the
   * shutdown checkpoint to connected replicas before it exits), the leader key is released so the
   * replicas race immediately, and Raft leadership moves to a caught-up voter before this member
   * leaves the consensus group.
   */
  async stop(opts: { stopPostgres: boolean } = { stopPostgres: true }): Promise<void> {
    this.stopping = true;
    const db = this.db;
    if (db) {
      await db.loop.stop();
      if (opts.stopPostgres) {
        const wasRunning = (await db.pg.postmasterPid().catch(() => null)) !== null;
        await db.pg.stop('fast').catch((err: Error) => this.logger.error({ err }, 'could not stop postgres'));
        if (wasRunning) db.callbacks.fire('on_stop', db.loop.lastPg.role ?? 'replica');
        db.loop.guard.disarm();
        const released = await this.store.deleteLeader(this.config.name).catch(() => false);
        if (released) this.logger.info('released the leader lock: this agent is stopping');
      }
      // Only now: until PostgreSQL is stopped the fence still guards the lease deadline.
      db.fence.stop();
    }
    await this.handOffRaftLeadership();
    await db?.pg.close();
    await this.kv.close();
    await this.apiApp.close();
    await this.raftApp.close();
    await this.raft.stop();
  }

  /** If this member leads Raft, transfers leadership to the most caught-up voter and waits briefly. */
  private async handOffRaftLeadership(): Promise<void> {
    if (!this.raft.isLeader()) return;
    const st = this.raft.status();
    const candidates = Object.entries(st.progress).filter(([id, p]) => id !== st.id && !p.isLearner && st.conf.voters.includes(id));
    if (candidates.length === 0) return;
    const [target] = candidates.reduce((a, b) => (b[1].match > a[1].match ? b : a));
    try {
      this.raft.transferLeadership(target);
    } catch {
      return;
    }
    for (let i = 0; i < 50 && this.raft.isLeader(); i++) await new Promise((r) => setTimeout(r, 10));
    this.logger.info({ to: target, done: !this.raft.isLeader() }, 'handed Raft leadership over before stopping');
  }
}
