// The controller's SQL connection: one `pg` client over TCP as the superuser, opened on first use,
// dropped when it breaks or a query overruns, and opened again on the next query. Short timeouts:
// the HA loop asks once per cycle and must not hang on a server that stopped answering.
//
// Errors: a server that answers with an error → PgQueryError (ERR_PG_QUERY, SQLSTATE kept); no
// connection, a broken one, or no answer in time → ERR_PG_UNAVAILABLE.
import pg from 'pg';
import type { Logger } from 'pino';
import { PgQueryError, PostgresError } from './errors.ts';
import type { PgEndpoint } from './types.ts';

export interface ConnectTarget extends PgEndpoint {
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

export const CONNECT_TIMEOUT_MS = 2000;
export const QUERY_TIMEOUT_MS = 2000;

/**
 * Where to connect to reach a server listening on `listenHost`: the first address of a list, and
 * a loopback address for the wildcards.
 */
export function connectHost(listenHost: string): string {
  const first = listenHost.split(',')[0]!.trim();
  if (first === '' || first === '*' || first === '0.0.0.0') return '127.0.0.1';
  if (first === '::') return '::1';
  return first;
}

function clientConfig(target: ConnectTarget): pg.ClientConfig {
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    // '' would make pg look for a password elsewhere; undefined lets trust/peer auth work.
    password: target.password === '' ? undefined : target.password,
    database: target.database,
    application_name: 'conclave',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
  };
}

export class PgConnection {
  private readonly target: ConnectTarget;
  private readonly logger: Logger;
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;

  constructor(target: ConnectTarget, logger: Logger) {
    this.target = target;
    this.logger = logger;
  }

  /** Runs one statement and returns its rows. */
  async query<Row extends object = Record<string, unknown>>(sql: string, params: readonly unknown[] = [], timeoutMs = QUERY_TIMEOUT_MS): Promise<Row[]> {
    const client = await this.connect();
    let timer: NodeJS.Timeout | undefined;
    const overrun = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const result = await Promise.race([client.query<Row>(sql, params as unknown[]), overrun]);
      return result.rows;
    } catch (err) {
      if (err instanceof pg.DatabaseError && err.code) {
        throw new PgQueryError(err.code, `${firstLine(sql)}: ${err.message} (SQLSTATE ${err.code})`, err);
      }
      // Broken, or a query still running on it: this connection is of no more use.
      this.discard(client);
      throw new PostgresError('ERR_PG_UNAVAILABLE', `${firstLine(sql)}: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Quotes an identifier for statements that take no parameters (CREATE ROLE ...). */
  static ident(name: string): string {
    return pg.escapeIdentifier(name);
  }

  static literal(value: string): string {
    return pg.escapeLiteral(value);
  }

  /** Ends the connection; the next query opens a new one. */
  async close(): Promise<void> {
    const client = this.client ?? (await this.connecting?.catch(() => null)) ?? null;
    this.client = null;
    this.connecting = null;
    if (client) await client.end().catch(() => undefined);
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.open().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client(clientConfig(this.target));
    // Without a listener an 'error' event (server shutdown, reset) would crash the process.
    client.on('error', (err) => {
      this.logger.debug({ err: err.message }, 'postgres connection error');
      this.discard(client);
    });
    client.on('end', () => this.discard(client));
    try {
      await client.connect();
    } catch (err) {
      void client.end().catch(() => undefined);
      throw new PostgresError('ERR_PG_UNAVAILABLE', `cannot connect to ${this.target.host}:${this.target.port}: ${(err as Error).message}`, { cause: err });
    }
    this.client = client;
    return client;
  }

  private discard(client: pg.Client): void {
    if (this.client === client) this.client = null;
    void client.end().catch(() => undefined);
  }
}

export type ProbeResult = 'accepting' | 'rejecting' | 'no-response';

/**
 * pg_isready's question, answered with a connection attempt. A server that refuses us for a reason
 * other than "starting up / shutting down / in recovery" (SQLSTATE 57P03) — a wrong password, no
 * pg_hba line — still accepts connections: that is a configuration problem, not a start failure.
 */
export async function probe(target: ConnectTarget): Promise<ProbeResult> {
  const client = new pg.Client(clientConfig(target));
  client.on('error', () => undefined);
  try {
    await client.connect();
    return 'accepting';
  } catch (err) {
    if (err instanceof pg.DatabaseError && err.code) return err.code === '57P03' ? 'rejecting' : 'accepting';
    return 'no-response';
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The timeline this server's WAL replay is on, from IDENTIFY_SYSTEM over a physical replication
 * connection (a standby answers with its replay timeline; SQL has no function for it). An Error
 * saying why when there is no answer: the connection refused (no pg_hba replication line for
 * `target`), no answer in time, or no timeline in it.
 */
export async function replayTimeline(target: ConnectTarget): Promise<number | Error> {
  const client = new pg.Client({ ...clientConfig(target), replication: 'true' } as pg.ClientConfig);
  client.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  const overrun = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${QUERY_TIMEOUT_MS} ms`)), QUERY_TIMEOUT_MS);
  });
  try {
    const result = await Promise.race([client.connect().then(() => client.query<{ timeline: string | number }>('IDENTIFY_SYSTEM')), overrun]);
    const timeline = Number(result.rows[0]?.timeline);
    return Number.isInteger(timeline) && timeline > 0 ? timeline : new Error(`IDENTIFY_SYSTEM answered no timeline (${JSON.stringify(result.rows[0]?.timeline)})`);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  } finally {
    clearTimeout(timer);
    await client.end().catch(() => undefined);
  }
}

/**
 * Runs `setup`, then `statements`, on a connection of their own, and closes it. Nothing is
 * retried on another connection: whatever `setup` set holds for exactly this session (a
 * PgConnection would reconnect silently, and the statements could reach a session without it).
 */
export async function querySession(target: ConnectTarget, setup: string, statements: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({ ...clientConfig(target), query_timeout: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query(setup);
    await client.query(statements);
  } catch (err) {
    // The message names the first line only (BEGIN): the statements may carry passwords.
    if (err instanceof pg.DatabaseError && err.code) throw new PgQueryError(err.code, `${firstLine(statements)}: ${err.message} (SQLSTATE ${err.code})`, err);
    throw new PostgresError('ERR_PG_UNAVAILABLE', `${firstLine(statements)}: ${(err as Error).message}`, { cause: err });
  } finally {
    await client.end().catch(() => undefined);
  }
}

function firstLine(sql: string): string {
  const line = sql.trim().split('\n', 1)[0]!;
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}
