// The clients of a real-process run: each connects straight to one node's PostgreSQL over the
// node's control link (never through a proxy, so a second writable node would be seen: jepsen.md
// §6) and inserts unique integers into `jepsen (v bigint primary key)` every 20–50 ms, recording
// invoke and completion on the harness clock.
//
// What an outcome means (jepsen.md §1: "sent, no reply" is unknown, never failed):
// - fail: the statement was never sent (no connection, connection refused, the server refused the
//   connection), or PostgreSQL answered with an ERROR that rules a commit out (read-only
//   transaction, constraint, bad state: the implicit transaction rolled back).
// - unknown: sent, then a timeout, a reset, a FATAL (server shutdown, admin termination) or any
//   answer that does not prove the transaction rolled back. In synchronous mode a commit waiting
//   for its standby is only slow; if it outlasts the timeout it is unknown.
// - ok: the INSERT returned, with the WAL position and timeline it was written at.
//
// No server-side statement_timeout: cancelling a commit that waits for a synchronous standby makes
// it visible locally while unreplicated, and PostgreSQL then reports success (Patroni #3194,
// jepsen.md §6 I2). A timeout here only closes the socket, and the op stays unknown.
import pg from 'pg';
import type { AgentCluster } from '../../support/agents.ts';
import { SUPERUSER } from '../../support/agents.ts';
import { sleep } from '../../support/processes.ts';
import type { Prng } from '../sim/prng.ts';
import type { ClientOp, RunEvent } from './types.ts';
import type { CommitInfo } from './checkers.ts';
import { parseLsn } from './checkers.ts';

export const TABLE_DDL = 'create table if not exists jepsen (v bigint primary key)';
const INSERT = 'insert into jepsen (v) values ($1) returning pg_current_wal_insert_lsn()::text as lsn, pg_walfile_name(pg_current_wal_insert_lsn()) as walfile';

export interface WorkloadOptions {
  readonly cluster: AgentCluster;
  readonly nodes: readonly string[];
  readonly clientsPerNode?: number;
  /** Connect and statement timeout, ms (default 2000). */
  readonly timeoutMs?: number;
  /** Pause between one client's inserts, ms (default 20–50). */
  readonly intervalMs?: readonly [number, number];
  readonly rng: Prng;
  now(): number;
  record(op: RunEvent): void;
}

/**
 * SQLSTATE classes of an ERROR (not FATAL) that proves the statement's implicit transaction did
 * not commit: data exception, integrity violation, invalid transaction state (read-only),
 * rollback, syntax or access rule, object not in prerequisite state (recovery in progress),
 * feature not supported. Anything else after sending is unknown.
 */
const NO_COMMIT_CLASSES = new Set(['22', '23', '25', '40', '42', '55', '0A']);

/** The outcome of an operation that threw; `sent` is whether the statement left the client. */
export function classifyError(err: unknown, sent: boolean): 'fail' | 'unknown' {
  if (!sent) return 'fail';
  const e = err as { code?: unknown; severity?: unknown };
  if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && e.severity === 'ERROR' && NO_COMMIT_CLASSES.has(e.code.slice(0, 2))) return 'fail';
  return 'unknown';
}

class TimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(ms)), ms);
  });
  p.catch(() => undefined); // a late rejection after the timeout must not go unhandled
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** One connection to one node, opened on demand and dropped after anything that may have broken it. */
class NodeConnection {
  private client: pg.Client | null = null;
  private broken = false;

  constructor(
    private readonly cluster: AgentCluster,
    private readonly node: string,
    private readonly timeoutMs: number,
  ) {}

  async get(): Promise<pg.Client> {
    if (this.client && !this.broken) return this.client;
    this.drop();
    const n = this.cluster.node(this.node);
    const client = new pg.Client({
      host: n.testHost,
      port: n.pgPort,
      user: SUPERUSER.username,
      password: SUPERUSER.password,
      database: 'postgres',
      application_name: 'jepsen',
      connectionTimeoutMillis: this.timeoutMs,
      keepAlive: true,
    });
    client.on('error', () => (this.broken = true));
    client.on('end', () => (this.broken = true));
    this.broken = false;
    try {
      await within(client.connect(), this.timeoutMs + 500);
    } catch (err) {
      destroy(client);
      throw err;
    }
    this.client = client;
    return client;
  }

  /** Closes the socket at once (never waits on a server that may not answer). */
  drop(): void {
    if (this.client) destroy(this.client);
    this.client = null;
  }
}

function destroy(client: pg.Client): void {
  try {
    client.connection.stream.destroy();
  } catch {
    // already closed
  }
  client.end().catch(() => undefined);
}

export class Workload {
  readonly commits = new Map<number, CommitInfo>();
  private stopped = false;
  private loops: Promise<void>[] = [];
  private nextValue = 1;
  private nextId: () => number;

  constructor(private readonly opts: WorkloadOptions, nextId: () => number) {
    this.nextId = nextId;
  }

  start(): void {
    const perNode = this.opts.clientsPerNode ?? 1;
    for (const node of this.opts.nodes) {
      for (let k = 0; k < perNode; k++) this.loops.push(this.loop(`${node}-c${k}`, node, this.opts.rng.fork()));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    this.loops = [];
  }

  private async loop(name: string, node: string, rng: Prng): Promise<void> {
    const timeoutMs = this.opts.timeoutMs ?? 2000;
    const [lo, hi] = this.opts.intervalMs ?? [20, 50];
    const conn = new NodeConnection(this.opts.cluster, node, timeoutMs);
    try {
      while (!this.stopped) {
        await this.insertOnce(name, node, conn, timeoutMs);
        await sleep(rng.between(lo, hi));
      }
    } finally {
      conn.drop();
    }
  }

  private async insertOnce(name: string, node: string, conn: NodeConnection, timeoutMs: number): Promise<void> {
    const op: ClientOp = { type: 'client', id: this.nextId(), client: name, node, f: 'insert', value: this.nextValue++, invokedAt: this.opts.now(), completedAt: null, outcome: null };
    this.opts.record(op);
    let sent = false;
    try {
      const client = await conn.get();
      sent = true;
      const res = await within(client.query<{ lsn: string; walfile: string }>(INSERT, [op.value]), timeoutMs);
      const row = res.rows[0];
      op.completedAt = this.opts.now();
      op.outcome = 'ok';
      this.commits.set(op.id, { lsn: parseLsn(row.lsn), timeline: parseInt(row.walfile.slice(0, 8), 16) });
    } catch (err) {
      op.completedAt = this.opts.now();
      op.outcome = classifyError(err, sent);
      op.error = (err as Error).message;
      // After a server ERROR the session is fine; after anything else it may not be.
      if ((err as { severity?: unknown }).severity !== 'ERROR') conn.drop();
    }
  }
}

/**
 * A final read of every value on one node, retried until it succeeds or `timeoutMs` passes; each
 * attempt is recorded. The last attempt's op is returned.
 */
export async function finalRead(cluster: AgentCluster, node: string, opts: { now(): number; record(op: RunEvent): void; nextId(): number; timeoutMs: number }): Promise<ClientOp> {
  const deadline = opts.now() + opts.timeoutMs;
  for (;;) {
    const op: ClientOp = { type: 'client', id: opts.nextId(), client: `final-${node}`, node, f: 'read', value: null, invokedAt: opts.now(), completedAt: null, outcome: null };
    opts.record(op);
    const conn = new NodeConnection(cluster, node, 2000);
    let sent = false;
    try {
      const client = await conn.get();
      sent = true;
      const res = await within(client.query<{ v: string }>('select v from jepsen order by v'), 10_000);
      op.readValues = res.rows.map((r) => Number(r.v));
      op.outcome = 'ok';
    } catch (err) {
      op.outcome = classifyError(err, sent);
      op.error = (err as Error).message;
    } finally {
      op.completedAt = opts.now();
      conn.drop();
    }
    if (op.outcome === 'ok' || opts.now() > deadline) return op;
    await sleep(500);
  }
}
