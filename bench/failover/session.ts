// One cluster of the benchmark: three agents with PostgreSQL 15 (test/support/agents.ts, test
// timing: ttl 2 s, loop_wait 0.5 s, retry_timeout 0.5 s, as the defaults in docs/failover.md), in
// asynchronous or synchronous strict mode, optionally each member in a network namespace of its
// own (the partition scenario), and HAProxy in front when it is installed and wanted.
import pg from 'pg';
import { AgentCluster, SUPERUSER } from '../../test/support/agents.ts';
import { NetLab } from '../../test/support/netlab.ts';
import { freePorts, makeTempDir, releasePorts, removeDir } from '../../test/support/processes.ts';
import { deferCleanup } from './cleanup.ts';
import { startHaproxy } from './haproxy.ts';
import type { Haproxy } from './haproxy.ts';
import type { Mode } from './options.ts';
import { HAPROXY_WRITER } from './measure.ts';
import { CREATE_TABLE, DEFAULT_WRITER_OPTIONS, TABLE } from './writer.ts';
import type { WriterOptions, WriterTarget } from './writer.ts';

export const NAMES = ['n1', 'n2', 'n3'] as const;

export interface Session {
  readonly mode: Mode;
  readonly c: AgentCluster;
  readonly lab: NetLab | null;
  readonly haproxy: Haproxy | null;
  /** From starting the agents to one primary, two streaming replicas (and HAProxy routing). */
  readonly bootstrapMs: number;
  /** Sequence numbers of the rows, unique within the session (its table lives as long). */
  nextSeq(): number;
  writerTargets(): WriterTarget[];
  writerOptions(): WriterOptions;
  close(): Promise<void>;
}

export interface SessionOptions {
  mode: Mode;
  inLab: boolean;
  haproxy: boolean;
}

/** Sends a statement to `host:port` over a connection of its own; null if it failed. */
export async function query(host: string, port: number, text: string, values: unknown[] = [], timeoutMs = 5000): Promise<pg.QueryResult | null> {
  const client = new pg.Client({ host, port, user: SUPERUSER.username, password: SUPERUSER.password, database: 'postgres', connectionTimeoutMillis: 2000, query_timeout: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.query(text, values);
  } catch {
    return null;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The primary, once the cluster is fit for the next run: exactly one member answers /primary,
 * every other one is a streaming replica, in synchronous mode one of them is the synchronous
 * standby (or a strict-mode commit would wait), and HAProxy sends writes to the primary.
 */
export async function healthy(s: Pick<Session, 'c' | 'mode' | 'haproxy'>): Promise<string | null> {
  const { c } = s;
  const primaries = await c.primaries();
  if (primaries.length !== 1) return null;
  const primary = primaries[0];
  const replicas = NAMES.filter((n) => n !== primary);
  const states = await Promise.all(replicas.map((n) => c.api(n)));
  if (!states.every((r) => r?.body.role === 'replica' && r.body.replication_state === 'streaming')) return null;
  if (s.mode === 'sync-strict') {
    const sync = await Promise.all(replicas.map((n) => c.api(n, '/synchronous')));
    if (!sync.some((r) => r?.status === 200)) return null;
  }
  if (s.haproxy) {
    const via = await query('127.0.0.1', s.haproxy.ports.primary, 'select inet_server_port() as port', [], 2000);
    if (via?.rows[0]?.port !== c.node(primary).pgPort) return null;
  }
  return primary;
}

/** Starts the cluster (and lab, and HAProxy) and waits until it is healthy and has the bench's table. */
export async function openSession(opts: SessionOptions, log: (line: string) => void): Promise<Session> {
  // Undone newest first, by close() or, if opening fails half-way, at once.
  const undo: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    while (undo.length > 0) await undo.pop()!();
  };
  try {
    let lab: NetLab | null = null;
    if (opts.inLab) {
      const l = (lab = await NetLab.create(NAMES.length));
      undo.push(deferCleanup('network lab', () => l.destroy()));
    }
    const c = await AgentCluster.create(NAMES.map((name) => ({ name })), {
      logLevel: 'info',
      lab: lab ?? undefined,
      dcs: opts.mode === 'sync-strict' ? { synchronous_mode: true, synchronous_mode_strict: true } : {},
    });
    undo.push(deferCleanup(`cluster (${opts.mode}${lab ? ', in a network lab' : ''})`, async () => {
      // A frozen agent cannot act on SIGTERM; a cut-off one stops all the same.
      for (const n of c.nodes.values()) n.handle?.kill('SIGCONT');
      await c.stopAll();
    }));
    let haproxy: Haproxy | null = null;
    const t0 = performance.now();
    await c.startAll();
    if (opts.haproxy) {
      const dir = await makeTempDir('conclave-failover-bench-haproxy-');
      const ports = await freePorts(3);
      undo.push(deferCleanup('HAProxy config', async () => {
        await removeDir(dir);
        releasePorts(ports);
      }));
      const members = NAMES.map((n) => ({ host: c.node(n).testHost, pgPort: c.node(n).pgPort, apiPort: c.node(n).apiPort }));
      const h = (haproxy = await startHaproxy(dir, members, { primary: ports[0], replicas: ports[1], stats: ports[2] }));
      undo.push(deferCleanup('HAProxy', () => h.stop()));
    }
    const partial = { c, mode: opts.mode, haproxy };
    const primary = await c.waitFor('a healthy cluster', () => healthy(partial), 180_000, 100);
    const bootstrapMs = performance.now() - t0;
    if (!(await c.trySql(primary, CREATE_TABLE))) throw new Error(`cannot create the bench's table on ${primary}`);
    await c.waitFor('the table on every replica', async () => {
      const r = await Promise.all(NAMES.map((n) => c.trySql(n, `select 1 from ${TABLE} limit 1`)));
      return r.every((x) => x !== null);
    }, 60_000);
    log(`[${opts.mode}] cluster${lab ? ' in a network lab' : ''} healthy after ${(bootstrapMs / 1000).toFixed(1)} s: primary ${primary}${haproxy ? `, HAProxy on 127.0.0.1:${haproxy.ports.primary}` : ''}`);

    let seq = 0;
    const memberOfPort = (port: number) => NAMES.find((n) => c.node(n).pgPort === port) ?? null;
    return {
      mode: opts.mode,
      c,
      lab,
      haproxy,
      bootstrapMs,
      nextSeq: () => ++seq,
      writerTargets: () => [
        ...NAMES.map((n) => ({ via: n, host: c.node(n).testHost, port: c.node(n).pgPort })),
        ...(haproxy ? [{ via: HAPROXY_WRITER, host: '127.0.0.1', port: haproxy.ports.primary, memberOfPort }] : []),
      ],
      writerOptions: () => ({ ...DEFAULT_WRITER_OPTIONS, user: SUPERUSER.username, password: SUPERUSER.password }),
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
