// The benchmark's clients: one writer per member, each with its own connection straight to that
// member's PostgreSQL, and one through HAProxy. Every writer inserts one row (seq, node, ts) every
// 20 ms, one statement at a time, and keeps a record of each attempt: when it was sent, when the
// answer came, who acknowledged it. A writer aimed at a replica is refused at once (read-only),
// so the first acknowledgement of a newly promoted member arrives within one interval of its
// promotion, without a client having to find the new primary first.
//
// Outcomes are kept apart: `ok` (acknowledged: the row must survive), `failed` (PostgreSQL refused
// the statement before running it: the row does not exist), `unknown` (the connection broke,
// PostgreSQL ended the session, or no answer came in time: the row may or may not exist; a commit
// waiting for a synchronous standby is such a case, as PostgreSQL may have committed locally).
// Times are performance.now() of this process, the clock the faults are timed with.
import pg from 'pg';
import { sleep } from '../../test/support/processes.ts';
import type { Outcome, WriteRecord } from './measure.ts';

export const TABLE = 'bench_writes';
export const CREATE_TABLE = `create table if not exists ${TABLE} (seq bigint primary key, node text not null, ts timestamptz not null default clock_timestamp())`;

export interface WriterTarget {
  via: string;
  host: string;
  port: number;
  /** The member behind a server port (to name who acknowledged a write through HAProxy). */
  memberOfPort?: (port: number) => string | null;
}

export interface WriterOptions {
  user: string;
  password: string;
  intervalMs: number;
  /** An answer that takes longer is `unknown`, and the connection is dropped. */
  statementTimeoutMs: number;
  connectTimeoutMs: number;
}

/**
 * statementTimeoutMs is long on purpose: a statement that is cut short is recorded as unknown and
 * its acknowledgement never seen, so the timeout must not decide what is measured. In synchronous
 * strict mode the first commit on a new primary can wait until the new synchronous standby sends
 * its next status reply, which without new WAL to confirm comes only after
 * wal_receiver_status_interval (10 s by default); a 10 s timeout here measured that timeout.
 */
export const DEFAULT_WRITER_OPTIONS = { intervalMs: 20, statementTimeoutMs: 30_000, connectTimeoutMs: 1000 };

/**
 * SQLSTATE classes that mean the statement was refused before it could commit: 23 integrity, 25
 * invalid transaction state (25006: read-only, the answer of a replica), 40 rolled back (but not
 * 40003, statement completion unknown), 42 syntax or access (a replica without the table yet).
 * Anything else, and any connection error, is unknown.
 */
const REFUSED_CLASSES = new Set(['23', '25', '40', '42']);

function classify(err: unknown): Outcome {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code) || code === '40003') return 'unknown';
  return REFUSED_CLASSES.has(code.slice(0, 2)) ? 'failed' : 'unknown';
}

/** Ends a connection at once, without waiting for the server (which may be gone or stuck). */
function drop(client: pg.Client): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

class Writer {
  readonly via: string;
  readonly records: WriteRecord[] = [];
  /** Connections that could not be opened (no statement was sent: not a write attempt). */
  connectFailures = 0;
  private client: pg.Client | null = null;
  private connStartedAt = 0;
  private current: WriteRecord | null = null;
  private stopping = false;
  private interrupt: () => void = () => undefined;
  private loop: Promise<void> = Promise.resolve();
  private readonly target: WriterTarget;
  private readonly nextSeq: () => number;
  private readonly opts: WriterOptions;

  constructor(target: WriterTarget, nextSeq: () => number, opts: WriterOptions) {
    this.target = target;
    this.via = target.via;
    this.nextSeq = nextSeq;
    this.opts = opts;
  }

  start(): void {
    this.loop = this.run();
  }

  /** Lets a statement in flight finish for up to `graceMs` (then it is cut: unknown). */
  async stop(graceMs = 1000): Promise<void> {
    this.stopping = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.loop, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.interrupt();
    await this.loop;
  }

  private async run(): Promise<void> {
    let next = performance.now();
    while (!this.stopping) {
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      // One statement per interval; after a slow one, the next goes at once (no burst to catch up).
      next = Math.max(next + this.opts.intervalMs, performance.now());
      if (this.stopping) break;
      if (this.client === null && !(await this.connect())) continue;
      await this.writeOne(this.client!);
    }
    if (this.client) {
      const c = this.client;
      this.client = null;
      await Promise.race([c.end().catch(() => undefined), sleep(1000)]);
      drop(c);
    }
  }

  private async connect(): Promise<boolean> {
    const startedAt = performance.now();
    const c = new pg.Client({ host: this.target.host, port: this.target.port, user: this.opts.user, password: this.opts.password, database: 'postgres', connectionTimeoutMillis: this.opts.connectTimeoutMs });
    c.on('error', () => undefined);
    c.on('notice', (msg) => {
      if (this.current) this.current.notice = msg.message;
    });
    try {
      await c.connect();
      this.client = c;
      this.connStartedAt = startedAt;
      return true;
    } catch {
      this.connectFailures++;
      drop(c);
      return false;
    }
  }

  private async writeOne(client: pg.Client): Promise<void> {
    const seq = this.nextSeq();
    const rec: WriteRecord = { seq, via: this.target.via, node: null, invokeAt: performance.now(), doneAt: 0, outcome: 'unknown', connStartedAt: this.connStartedAt };
    this.records.push(rec);
    this.current = rec;
    const text = this.target.memberOfPort
      ? `insert into ${TABLE} (seq, node) values ($1, $2) returning inet_server_port() as port`
      : `insert into ${TABLE} (seq, node) values ($1, $2)`;
    let timer: NodeJS.Timeout | undefined;
    const answer = client.query(text, [seq, this.target.via]).then((res) => ({ res }), (err: unknown) => ({ err }));
    const cut = new Promise<{ cut: string }>((resolveCut) => {
      timer = setTimeout(() => resolveCut({ cut: `no answer within ${this.opts.statementTimeoutMs} ms` }), this.opts.statementTimeoutMs);
      this.interrupt = () => resolveCut({ cut: 'the writer stopped' });
    });
    const r = await Promise.race([answer, cut]);
    clearTimeout(timer);
    this.interrupt = () => undefined;
    rec.doneAt = performance.now();
    this.current = null;
    if ('res' in r) {
      rec.outcome = 'ok';
      rec.node = this.target.memberOfPort ? this.target.memberOfPort(Number(r.res.rows[0]?.port)) : this.target.via;
      return;
    }
    if ('err' in r) {
      rec.outcome = classify(r.err);
      rec.error = (r.err as Error).message;
    } else {
      rec.error = r.cut;
    }
    // A refused statement leaves the session usable; anything else, start a new one.
    if (rec.outcome !== 'failed') {
      this.client = null;
      drop(client);
    }
  }
}

/** The writers of one run: started together, stopped together, their records merged. */
export class WriterSet {
  private readonly writers: Writer[];

  constructor(targets: readonly WriterTarget[], nextSeq: () => number, opts: WriterOptions) {
    this.writers = targets.map((t) => new Writer(t, nextSeq, opts));
  }

  start(): void {
    for (const w of this.writers) w.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.writers.map((w) => w.stop()));
  }

  /** Every attempt so far (a live view: records of statements in flight have doneAt 0). */
  records(): WriteRecord[] {
    return this.writers.flatMap((w) => w.records);
  }

  connectFailures(): Record<string, number> {
    return Object.fromEntries(this.writers.map((w) => [w.via, w.connectFailures]));
  }
}
