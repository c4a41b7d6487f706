// One Conclave agent: a Raft member (the cluster's consensus group is its agents), the cluster
// store on it, the PostgreSQL controller, the HA loop and the REST API, wired together and
// stopped in the reverse order.
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { RaftNode } from '../raft/node/raft-node.ts';
import { ForwardingKv } from '../raft/node/forwarding.ts';
import { registerKvApi } from '../raft/node/kv-http.ts';
import { ClusterStore } from './cluster-store.ts';
import type { AgentConfig, HostPort } from './config/types.ts';
import { PostgresController } from './postgres/controller.ts';
import { HaLoop } from './ha-loop.ts';
import { registerPatroniApi } from '../api/patroni-api.ts';
import { registerSwitchoverApi } from '../api/switchover-api.ts';
import { registerMemberApi } from '../api/member-api.ts';
import { CallbackRunner } from './callbacks.ts';
import { Fence } from './fence/fence.ts';

const addr = (h: HostPort): string => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);

/** Raft member ids are the members' raft addresses, as in patroni.yml's raft section. */
export function raftPeers(config: AgentConfig): Record<string, string> {
  const peers: Record<string, string> = { [addr(config.raft.self_addr)]: `http://${addr(config.raft.self_addr)}` };
  for (const p of config.raft.partner_addrs) peers[addr(p)] = `http://${addr(p)}`;
  return peers;
}

export interface AgentOptions {
  config: AgentConfig;
  logger: Logger;
  /** Called when the agent must stop (a fatal decision). */
  onFatal: (message: string) => void;
}

export class Agent {
  readonly config: AgentConfig;
  private readonly logger: Logger;
  private raftApp!: FastifyInstance;
  private apiApp!: FastifyInstance;
  raft!: RaftNode;
  pg!: PostgresController;
  loop!: HaLoop;
  store!: ClusterStore;
  private kv!: ForwardingKv;
  private callbacks!: CallbackRunner;
  private fence!: Fence;

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

    agent.raftApp = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
    agent.raft = await RaftNode.start(
      { id: addr(config.raft.self_addr), dataDir: config.raft.data_dir, peers: raftPeers(config), tickMs: 10, electionTicks: 30, heartbeatTicks: 5, requestTimeoutMs: retryMs, logger: logger.child({ layer: 'raft' }) },
      agent.raftApp,
    );
    // The store's own debugging API (GET /v1/status, /v1/kv) on the Raft port: `conclavectl raft status`.
    registerKvApi(agent.raftApp, agent.raft);
    agent.raft.on('fatal', (err: Error) => opts.onFatal(`raft stopped: ${err.message}`));
    await agent.raftApp.listen({ host: config.raft.bind_addr.host, port: config.raft.bind_addr.port });

    agent.kv = new ForwardingKv(agent.raft, { timeoutMs: retryMs });
    agent.store = new ClusterStore({ raft: agent.kv, namespace: config.namespace, scope: config.scope, now });
    agent.pg = new PostgresController({
      name: config.name,
      scope: config.scope,
      dataDir: config.postgresql.data_dir,
      binDir: config.postgresql.bin_dir,
      listen: config.postgresql.listen,
      superuser: config.postgresql.authentication.superuser,
      replication: config.postgresql.authentication.replication,
      rewind: config.postgresql.authentication.rewind,
      parameters: { ...config.bootstrap.dcs.postgresql.parameters, ...config.postgresql.parameters },
      pgHba: config.postgresql.pg_hba.length > 0 ? config.postgresql.pg_hba : config.bootstrap.pg_hba,
      initdbOptions: config.bootstrap.initdb,
      runAs: process.getuid?.() === 0 ? config.postgresql.run_as : null,
      timeoutMs: config.postgresql.pg_ctl_timeout * 1000,
      logger: logger.child({ layer: 'postgres' }),
    });
    const runAs = process.getuid?.() === 0 ? config.postgresql.run_as : null;
    agent.callbacks = new CallbackRunner({ commands: config.postgresql.callbacks, scope: config.scope, runAs, logger: logger.child({ layer: 'callbacks' }) });
    const unsupported = config.postgresql.create_replica_methods.filter((m) => m !== 'basebackup');
    if (unsupported.length > 0) logger.warn({ unsupported }, 'postgresql.create_replica_methods: only basebackup is supported; the others are skipped');
    agent.fence = await Fence.start(config.postgresql.data_dir, logger.child({ layer: 'fence' }));
    agent.loop = new HaLoop({ config, store: agent.store, pg: agent.pg, logger: logger.child({ layer: 'ha' }), now, onFatal: opts.onFatal, callbacks: agent.callbacks, fence: agent.fence });

    agent.apiApp = Fastify({ logger: false });
    registerPatroniApi(agent.apiApp, { config, loop: agent.loop, now });
    registerSwitchoverApi(agent.apiApp, { store: agent.store, waitMs: 30_000 });
    registerMemberApi(agent.apiApp, agent.loop);
    await agent.apiApp.listen({ host: config.restapi.listen.host, port: config.restapi.listen.port });
    agent.loop.start();
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
    await this.loop.stop();
    if (opts.stopPostgres) {
      const wasRunning = (await this.pg.postmasterPid().catch(() => null)) !== null;
      await this.pg.stop('fast').catch((err: Error) => this.logger.error({ err }, 'could not stop postgres'));
      if (wasRunning) this.callbacks.fire('on_stop', this.loop.lastPg.role ?? 'replica');
      this.loop.guard.disarm();
      const released = await this.store.deleteLeader(this.config.name).catch(() => false);
      if (released) this.logger.info('released the leader lock: this agent is stopping');
    }
    // Only now: until PostgreSQL is stopped the fence still guards the lease deadline.
    this.fence.stop();
    await this.handOffRaftLeadership();
    await this.pg.close();
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
