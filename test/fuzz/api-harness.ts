// The REST API of a database agent, built as src/ha/agent.ts builds it, for fastify's inject(): the
// real config loader, ClusterStore, key-value state machine, HaLoop and every API module. Stand-ins
// replace only what would need processes: PostgreSQL (StandInPostgres answers like a running
// server and records what it was asked) and the Raft node (MemoryRaft applies each proposal at once
// to a real KvStateMachine, and can play a store without quorum).
import { EventEmitter } from 'node:events';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { parseConfig } from '../../src/ha/config/load.ts';
import type { DatabaseAgentConfig } from '../../src/ha/config/types.ts';
import { ClusterStore } from '../../src/ha/cluster-store.ts';
import { HaLoop } from '../../src/ha/ha-loop.ts';
import { CallbackRunner } from '../../src/ha/callbacks.ts';
import type { PostgresController } from '../../src/ha/postgres/controller.ts';
import type { PgStatus } from '../../src/ha/postgres/types.ts';
import { NOT_RUNNING } from '../../src/ha/postgres/status.ts';
import type { RaftNode } from '../../src/raft/node/raft-node.ts';
import { RaftError } from '../../src/raft/core/errors.ts';
import { KvStateMachine } from '../../src/raft/kv/state-machine.ts';
import { encodeCommand } from '../../src/raft/kv/commands.ts';
import type { KvOp, KvResult } from '../../src/raft/kv/commands.ts';
import type { ReplicatedKv } from '../../src/ha/replicated-kv.ts';
import { registerWriteGuard } from '../../src/api/security.ts';
import { registerClusterMembersApi } from '../../src/api/cluster-members-api.ts';
import { registerDatabaseApi } from '../../src/api/database-api.ts';
import { restartSchedulerFor } from '../../src/api/restart-request.ts';

/** The key-value store of a one-member Raft group: each proposal applies at once, in order. */
export class MemoryRaft extends EventEmitter implements ReplicatedKv {
  readonly id = 'n1';
  readonly auth = null;
  sm = new KvStateMachine();
  /** When set, every call fails as a member without a quorum would. */
  unavailable = false;
  private index = 0;
  private seq = 0;

  get state(): KvStateMachine {
    return this.sm;
  }

  /** An empty store. The log index goes on rising: the ClusterStore refuses a read older than one it saw. */
  reset(): void {
    this.sm = new KvStateMachine();
    this.unavailable = false;
  }

  async propose(op: KvOp): Promise<KvResult> {
    if (this.unavailable) throw new RaftError('ERR_NOT_LEADER', 'no leader (stand-in store without quorum)', { leaderHint: null });
    const applied = this.sm.apply(++this.index, encodeCommand({ clientId: 'api-fuzz', seq: ++this.seq, op }));
    if (applied.changes.length > 0) this.emit('changes', applied.changes, applied.index);
    return applied.result!;
  }

  async readBarrier(): Promise<void> {
    if (this.unavailable) throw new RaftError('ERR_TIMEOUT', 'read barrier timed out (stand-in store without quorum)');
  }

  status(): ReturnType<RaftNode['status']> {
    const last = this.index;
    return {
      id: this.id, term: 3, vote: this.id, lead: this.id, role: 'leader', commit: last, applied: last, lastIndex: last, firstIndex: 1,
      conf: { voters: [this.id], learners: [] }, leadTransferee: null,
      progress: { [this.id]: { match: last, next: last + 1, state: 'replicate', lastHeardTick: 0, isLearner: false } },
      transport: {},
      rejected: 0,
      refusedMessages: 0,
      lastRefusedMessage: null,
    } as unknown as ReturnType<RaftNode['status']>;
  }
}

/** PostgreSQL as the API sees it: a status to report, and operations that succeed and are recorded. */
export class StandInPostgres {
  pg: PgStatus = NOT_RUNNING;
  readonly calls: string[] = [];

  async status(): Promise<PgStatus> {
    return this.pg;
  }
  async query(): Promise<Record<string, unknown>[]> {
    return [];
  }
  pendingRestartReasons(): string[] {
    return [];
  }
  async postmasterPid(): Promise<number | null> {
    return this.pg.running ? 4242 : null;
  }
  // Operations that change PostgreSQL succeed at once and are only recorded.
  readonly applyParameters = this.recorded('applyParameters');
  readonly reload = this.recorded('reload');
  readonly restart = this.recorded('restart');
  readonly stop = this.recorded('stop');
  readonly basebackup = this.recorded('basebackup');
  readonly start = this.recorded('start');
  async close(): Promise<void> {}

  private recorded(name: string): () => Promise<void> {
    return async () => {
      this.calls.push(name);
    };
  }
}

export const RUNNING_REPLICA: PgStatus = {
  ...NOT_RUNNING, running: true, role: 'replica', timeline: 2, walPosition: 5000, receivedLsn: 5000, replayedLsn: 4000,
  replicationState: 'streaming', upstreamHost: '127.0.0.1', upstreamPort: 5433, serverVersion: 150004, postmasterStartTime: '2024-05-01 12:34:56.789+00',
};
export const RUNNING_PRIMARY: PgStatus = { ...RUNNING_REPLICA, role: 'primary', receivedLsn: null, replayedLsn: null, replicationState: null, upstreamHost: null, upstreamPort: null };

const CONFIG_YAML = `
scope: fuzz
name: n1
restapi: { listen: 127.0.0.1:8008 }
raft: { self_addr: 127.0.0.1:2222, data_dir: /nonexistent/raft }
postgresql:
  listen: 127.0.0.1:5432
  data_dir: /nonexistent/pg
  authentication: { superuser: { username: postgres }, replication: { username: rep } }
tags: { zone: a, nosync: false }
`;

export interface Harness {
  app: FastifyInstance;
  raft: MemoryRaft;
  pg: StandInPostgres;
  store: ClusterStore;
  loop: HaLoop;
  config: DatabaseAgentConfig;
  /** Back to the seeded cluster: config, leader n1, replica n2, a history; no pending requests. */
  reset(opts: { pg: PgStatus; unavailable: boolean }): Promise<void>;
  /** Everything a request could change: every key, and the scheduled restart. */
  snapshot(): string;
  close(): Promise<void>;
}

export async function buildHarness(opts: { authentication?: { username: string; password: string } } = {}): Promise<Harness> {
  const base = parseConfig(CONFIG_YAML, {}, 'fuzz.yml') as DatabaseAgentConfig;
  const config: DatabaseAgentConfig = { ...base, restapi: { ...base.restapi, authentication: opts.authentication ?? null } };
  const logger = pino({ level: 'silent' });
  const raft = new MemoryRaft();
  const pg = new StandInPostgres();
  const store = new ClusterStore({ raft, namespace: config.namespace, scope: config.scope, now: () => performance.now() });
  const postgres = pg as unknown as PostgresController;
  const callbacks = new CallbackRunner({ commands: {}, scope: config.scope, runAs: null, logger });
  const loop = new HaLoop({ config, store, pg: postgres, logger, now: () => performance.now(), onFatal: (m) => { throw new Error(`onFatal: ${m}`); }, callbacks });
  // Never started, and stopped so that wake() (after PATCH /config, a restart) runs no HA cycle:
  // the API is under test, not the HA loop.
  await loop.stop();
  const raftNode = raft as unknown as RaftNode;

  // As src/ha/agent.ts registers them for a database member (registerDatabaseApi is shared).
  const app = Fastify({ logger: false });
  registerWriteGuard(app, { restapi: config.restapi, memberHosts: () => [] });
  registerClusterMembersApi(app, { store, raft: raftNode, selfUrl: 'http://127.0.0.1:2222' });
  registerDatabaseApi(app, { config, store, raft: raftNode, loop, pg: postgres, now: () => performance.now(), switchoverWaitMs: 0 });
  await app.ready();
  const scheduler = restartSchedulerFor(loop, app.log);

  const member = (role: string, port: number) => ({
    conn_url: `postgres://127.0.0.1:${port}/postgres`, api_url: `http://127.0.0.1:${port + 100}/patroni`, state: 'running', role,
    xlog_location: 5000, timeline: 2, tags: {}, version: '0.1.0',
  });

  return {
    app, raft, pg, store, loop, config,
    async reset({ pg: status, unavailable }) {
      raft.reset();
      scheduler.cancel();
      pg.pg = status;
      pg.calls.length = 0;
      loop.state.task = null;
      await store.initialize('7350000000000000001');
      await store.setConfig({ ttl: 30, loop_wait: 10, retry_timeout: 10, postgresql: { use_slots: true, parameters: { max_connections: 100 } } });
      await store.attemptToAcquireLeader('n1', 3_600_000);
      await store.touchMember('n1', member('primary', 5432), 3_600_000);
      await store.touchMember('n2', member('replica', 5433), 3_600_000);
      await store.setHistory([[1, 25165984, 'no recovery target specified', '2024-05-01T12:00:00+00:00', 'n0']]);
      loop.lastCluster = await store.getCluster();
      raft.unavailable = unavailable;
    },
    snapshot() {
      return JSON.stringify({ kvs: raft.sm.range(''), leases: raft.sm.leases(), restart: scheduler.describe(), pg: pg.calls });
    },
    async close() {
      await app.close();
    },
  };
}
