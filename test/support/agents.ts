// Real Conclave agents for tests: each `bin/conclave.js <config.yml>` in its own process, with
// its own PostgreSQL 15, on loopback ports that no other test uses at the same time. stopAll()
// stops the agents and then every postmaster by PID (PostgreSQL runs detached from its agent, as
// in production, so killing an agent leaves it running), removes the directories and frees the
// ports, also when the test failed.
import { existsSync } from 'node:fs';
import { chmod, readFile, rename, writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import pg from 'pg';
import { request } from 'undici';
import { freePorts, makeTempDir, releasePorts, removeDir, sleep, startProcess, isAlive } from './processes.ts';
import type { ProcessHandle } from './processes.ts';
import type { NetLab } from './netlab.ts';
import { RaftAuth } from '../../src/raft/transport/auth.ts';
import { readRaftTls } from '../../src/raft/transport/tls.ts';
import { raftRequest } from '../../src/raft/transport/auth-request.ts';
import type { RaftRequestOptions, RaftResponse } from '../../src/raft/transport/auth-request.ts';

/** The shared Raft secret of test clusters (raft.password), unless a test sets its own or none. */
export const TEST_RAFT_PASSWORD = 'test-raft-secret-for-conclave';

const REPO = resolve(import.meta.dirname, '../..');
export const SUPERUSER = { username: 'postgres', password: 'test-super' };
/** libfaketime as Debian's `faketime` package installs it (ClusterOptions.fakeClock). */
export const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

/**
 * The environment that gives a process a wall clock offset by whatever `clockFile` says ("+3600s",
 * "-60s", "+0s"), read again at every clock call (FAKETIME_NO_CACHE), so rewriting the file moves
 * the clock of a running process at once. CLOCK_MONOTONIC is left alone: Node's performance.now(),
 * its timers and the fence's deadlines go on as before; Date.now() and new Date() jump.
 */
export function fakeClockEnv(clockFile: string): Record<string, string> {
  return { LD_PRELOAD: FAKETIME_LIB, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}

export interface AgentSpec {
  name: string;
  tags?: Record<string, unknown>;
  /** A witness: its config has no postgresql section. */
  witness?: boolean;
  /**
   * Not a founding member: the founders' configs do not name it, its own names the founders as
   * partners, and startAll leaves it out (the test starts it once the cluster runs: it joins).
   */
  joins?: boolean;
  /** Its own raft.password instead of the cluster's (null: none), e.g. an intruder's. */
  raftPassword?: string | null;
  /** Its own scope instead of 'test': an agent of another cluster. */
  scope?: string;
  /** Its own raft TLS files instead of the cluster's, e.g. a certificate another CA signed. */
  raftTls?: { certfile: string; keyfile: string; cafile: string };
}

export interface AgentNode {
  readonly name: string;
  readonly apiPort: number;
  readonly raftPort: number;
  readonly pgPort: number;
  readonly dir: string;
  readonly configPath: string;
  readonly pgDataDir: string;
  /** raft.data_dir. */
  readonly raftDataDir: string;
  /** The libfaketime offset file of its agent (ClusterOptions.fakeClock), else null. */
  readonly clockFile: string | null;
  /** Where the test reaches this node's API and PostgreSQL. */
  readonly testHost: string;
  /** The lab's namespace index, when it runs in one. */
  readonly labIndex: number | null;
  handle: ProcessHandle | null;
}

export interface ClusterOptions {
  /** Extra dynamic settings for bootstrap.dcs (merged over the test timing). */
  dcs?: Record<string, unknown>;
  postgresql?: Record<string, unknown>;
  /** Extra restapi settings (authentication, allowlist, TLS), merged into each node's. */
  restapi?: Record<string, unknown>;
  /** Extra environment variables for every agent (configuration overrides such as CONCLAVE_RESTAPI_PASSWORD). */
  env?: Record<string, string>;
  /** postgresql.authentication (default: SUPERUSER and the test replication/rewind roles); sql() logs in as its superuser. */
  authentication?: { superuser: { username: string; password: string }; replication: { username: string; password: string }; rewind: { username: string; password: string } };
  /** The agents' log level; default debug (a failing test prints the last lines). */
  logLevel?: 'debug' | 'info';
  /**
   * Run node i inside the lab's namespace i: members talk over the lab's cluster network, the
   * test reaches each node over its control link (so it still sees a node that is cut off).
   */
  lab?: NetLab;
  /**
   * Start every agent under libfaketime (FAKETIME_LIB, Debian package `faketime`) with its own
   * offset file, "+0s" at first: setClockOffset() then moves one node's wall clock while the
   * agent runs. PostgreSQL, which the agent starts, inherits the offset.
   */
  fakeClock?: boolean;
  /** raft.password of every member; default TEST_RAFT_PASSWORD, null for none. */
  raftPassword?: string | null;
  /** Mutual TLS between members (raft.certfile/keyfile/cafile); the harness presents the same certificate. */
  raftTls?: { certfile: string; keyfile: string; cafile: string };
}

export class AgentCluster {
  /** Signs the harness's own requests to the Raft ports (status, store reads and writes). */
  raftAuth: RaftAuth = new RaftAuth({ secret: TEST_RAFT_PASSWORD, scope: 'test', self: { id: 'test-harness', incarnation: 'test-harness' } });
  readonly nodes = new Map<string, AgentNode>();
  private root = '';
  private ports: number[] = [];
  private readonly postmasters = new Set<number>();
  private lab: NetLab | null = null;
  private readonly joiners = new Set<string>();
  private fakeClock = false;
  private superuser = SUPERUSER;
  private agentEnv: Record<string, string> = {};

  static async create(specs: AgentSpec[], opts: ClusterOptions = {}): Promise<AgentCluster> {
    const c = new AgentCluster();
    c.root = await makeTempDir('conclave-agents-');
    // PostgreSQL runs as `postgres`: it must be able to reach its data directory.
    await chmod(c.root, 0o755);
    c.ports = await freePorts(specs.length * 3);
    c.lab = opts.lab ?? null;
    c.fakeClock = opts.fakeClock ?? false;
    c.superuser = opts.authentication?.superuser ?? SUPERUSER;
    c.agentEnv = opts.env ?? {};
    const raftPassword = opts.raftPassword === undefined ? TEST_RAFT_PASSWORD : opts.raftPassword;
    c.raftAuth = new RaftAuth({ secret: raftPassword, scope: 'test', self: { id: 'test-harness', incarnation: 'test-harness' }, tls: opts.raftTls ? readRaftTls(opts.raftTls) : null });
    if (c.fakeClock && !existsSync(FAKETIME_LIB)) throw new Error(`fakeClock: ${FAKETIME_LIB} is missing (apt-get install faketime)`);
    const lab = c.lab;
    const hostOf = (i: number) => (lab ? lab.clusterIp(i) : '127.0.0.1');
    const listenHost = lab ? '0.0.0.0' : '127.0.0.1';
    const raftAddr = (i: number) => `${hostOf(i)}:${c.ports[i * 3 + 1]}`;
    for (const [i, spec] of specs.entries()) {
      const dir = join(c.root, spec.name);
      await mkdir(dir, { recursive: true });
      await chmod(dir, 0o755);
      const node: AgentNode = {
        name: spec.name,
        apiPort: c.ports[i * 3],
        raftPort: c.ports[i * 3 + 1],
        pgPort: c.ports[i * 3 + 2],
        dir,
        configPath: join(dir, 'conclave.yml'),
        pgDataDir: join(dir, 'pg'),
        raftDataDir: join(dir, 'raft'),
        clockFile: c.fakeClock ? join(dir, 'faketime') : null,
        testHost: lab ? lab.controlIp(i) : '127.0.0.1',
        labIndex: lab ? i : null,
        handle: null,
      };
      const password = spec.raftPassword === undefined ? raftPassword : spec.raftPassword;
      const config = {
        scope: spec.scope ?? 'test',
        namespace: '/service',
        name: spec.name,
        restapi: { listen: `${listenHost}:${node.apiPort}`, connect_address: `${hostOf(i)}:${node.apiPort}`, ...opts.restapi },
        // In a lab, Raft also listens on the control link, so that raftStatus/getKey/putKey reach it.
        raft: { self_addr: raftAddr(i), ...(lab ? { bind_addr: `0.0.0.0:${node.raftPort}` } : {}), partner_addrs: specs.map((_, j) => j).filter((j) => j !== i && !specs[j].joins).map(raftAddr), data_dir: node.raftDataDir, ...(password === null ? {} : { password }), ...(spec.raftTls ?? opts.raftTls ?? {}) },
        bootstrap: {
          dcs: { ttl: 2, loop_wait: 0.5, retry_timeout: 0.5, postgresql: { use_pg_rewind: true, use_slots: true, parameters: { wal_log_hints: 'on' } }, ...opts.dcs },
          initdb: [{ encoding: 'UTF8' }, 'data-checksums'],
        },
        postgresql: {
          listen: `${listenHost}:${node.pgPort}`,
          connect_address: `${hostOf(i)}:${node.pgPort}`,
          data_dir: node.pgDataDir,
          bin_dir: '/usr/lib/postgresql/15/bin',
          authentication: opts.authentication ?? { superuser: SUPERUSER, replication: { username: 'replicator', password: 'test-repl' }, rewind: { username: 'rewinder', password: 'test-rewind' } },
          parameters: { unix_socket_directories: '/tmp', shared_buffers: '16MB', wal_retrieve_retry_interval: '500ms' },
          pg_hba: lab
            ? ['local all all trust', 'host all all 0.0.0.0/0 md5', 'host replication all 0.0.0.0/0 md5']
            : ['local all all trust', 'host all all 127.0.0.1/32 md5', 'host replication all 127.0.0.1/32 md5'],
          use_pg_rewind: true,
          ...opts.postgresql,
        },
        tags: spec.tags ?? {},
        // Never a real watchdog device under test: an agent killed on purpose would reset the host.
        watchdog: { mode: 'off' },
        log: { level: opts.logLevel ?? 'debug', type: 'json' },
      };
      await writeFile(node.configPath, stringify(spec.witness ? { ...config, postgresql: undefined } : config));
      if (node.clockFile) await writeFile(node.clockFile, '+0s\n');
      c.nodes.set(spec.name, node);
      if (spec.joins) c.joiners.add(spec.name);
    }
    return c;
  }

  node(name: string): AgentNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  async start(name: string): Promise<void> {
    const n = this.node(name);
    const agentArgv = [process.execPath, join(REPO, 'bin/conclave.js'), n.configPath];
    // `ip netns exec` execs the command, so the PID we hold is the agent's own.
    const argv = this.lab && n.labIndex !== null ? [...this.lab.execPrefix(n.labIndex), ...agentArgv] : agentArgv;
    n.handle = await startProcess({
      cmd: argv[0],
      args: argv.slice(1),
      cwd: REPO,
      env: { ...(n.clockFile ? fakeClockEnv(n.clockFile) : {}), ...this.agentEnv },
      name: `agent ${name}`,
      readyLine: (line) => line.includes('"agent started"'),
      timeoutMs: 30_000,
    });
  }

  async startAll(): Promise<void> {
    await Promise.all([...this.nodes.keys()].filter((n) => !this.joiners.has(n)).map((n) => this.start(n)));
  }

  /** Sets a node's wall clock to real time + `offsetS` seconds (fakeClock clusters only); 0 undoes it. */
  async setClockOffset(name: string, offsetS: number): Promise<void> {
    const file = this.node(name).clockFile;
    if (!file) throw new Error(`setClockOffset: ${name} does not run under libfaketime (ClusterOptions.fakeClock)`);
    if (!Number.isInteger(offsetS)) throw new RangeError(`setClockOffset: whole seconds, got ${offsetS}`);
    // libfaketime reads the file at every clock call: write a new file and rename it into place,
    // so that no reader ever sees it empty or half-written.
    const tmp = `${file}.tmp`;
    await writeFile(tmp, `${offsetS < 0 ? '-' : '+'}${Math.abs(offsetS)}s\n`);
    await rename(tmp, file);
  }

  /** GET a path on a node's REST API: status and JSON body, or null when it does not answer. */
  async api(name: string, path = '/patroni'): Promise<{ status: number; body: Record<string, unknown> } | null> {
    try {
      const res = await request(`http://${this.node(name).testHost}:${this.node(name).apiPort}${path}`, { headersTimeout: 1000, bodyTimeout: 1000, signal: AbortSignal.timeout(1500) });
      const text = await res.body.text();
      return { status: res.statusCode, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
    } catch {
      return null;
    }
  }

  /** One request to a member's Raft port, signed as the harness; rejects when it cannot be made. */
  raftRequest(name: string, path: string, opts: Partial<RaftRequestOptions> = {}): Promise<RaftResponse> {
    const n = this.node(name);
    return raftRequest(this.raftAuth, `${this.raftAuth.scheme}://${n.testHost}:${n.raftPort}${path}`, { timeoutMs: 2000, ...opts });
  }

  /** A member's Raft status (GET /v1/status on its Raft port), or null when it does not answer. */
  async raftStatus(name: string): Promise<{ id: string; role: string; leader: string | null; voters: string[]; learners: string[] } | null> {
    try {
      const res = await this.raftRequest(name, '/v1/status', { timeoutMs: 1500 });
      if (res.status !== 200) return null;
      return JSON.parse(res.body.toString('utf8')) as { id: string; role: string; leader: string | null; voters: string[]; learners: string[] };
    } catch {
      return null;
    }
  }

  /** Reads a key of the replicated store through a member's debug API (on its Raft port). */
  async getKey(key: string): Promise<string | null> {
    for (const name of this.nodes.keys()) {
      try {
        const res = await this.raftRequest(name, `/v1/kv/${encodeURIComponent(key)}`);
        if (res.status === 200) return (JSON.parse(res.body.toString('utf8')) as { value?: string }).value ?? null;
        if (res.status === 404) return null;
      } catch {
        // try the next member
      }
    }
    throw new Error(`no member answered a read of ${key}`);
  }

  /** Writes a key of the replicated store at whichever member leads Raft. */
  async putKey(key: string, value: string): Promise<void> {
    for (const name of this.nodes.keys()) {
      try {
        const res = await this.raftRequest(name, `/v1/kv/${encodeURIComponent(key)}`, { method: 'PUT', contentType: 'application/json', body: JSON.stringify({ value }) });
        if (res.status === 200) return;
      } catch {
        // try the next member
      }
    }
    throw new Error(`no member accepted a write of ${key}`);
  }

  /** Names of the nodes whose /primary answers 200 right now. */
  async primaries(names = [...this.nodes.keys()]): Promise<string[]> {
    const codes = await Promise.all(names.map(async (n) => ((await this.api(n, '/primary'))?.status === 200 ? n : null)));
    return codes.filter((n): n is string => n !== null);
  }

  async waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000, pollMs = 100): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${await this.diagnostics()}`);
      await sleep(pollMs);
    }
  }

  /** The one primary among `names`, once exactly one answers /primary. */
  async waitForPrimary(names = [...this.nodes.keys()], timeoutMs = 60_000): Promise<string> {
    return this.waitFor('exactly one primary', async () => {
      const p = await this.primaries(names);
      return p.length === 1 ? p[0] : null;
    }, timeoutMs);
  }

  /** A connected client to a node's PostgreSQL as the superuser; the caller ends it. */
  async sql(name: string, database = 'postgres'): Promise<pg.Client> {
    const client = new pg.Client({ host: this.node(name).testHost, port: this.node(name).pgPort, user: this.superuser.username, password: this.superuser.password, database, connectionTimeoutMillis: 2000 });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  /** Runs one statement on a node; null when the node cannot be reached or refuses. */
  async trySql(name: string, text: string, values: unknown[] = []): Promise<pg.QueryResult | null> {
    let client: pg.Client | null = null;
    try {
      client = await this.sql(name);
      return await client.query(text, values);
    } catch {
      return null;
    } finally {
      await client?.end().catch(() => undefined);
    }
  }

  async postmasterPid(name: string): Promise<number | null> {
    try {
      const pid = Number((await readFile(join(this.node(name).pgDataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
      if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return null;
      this.postmasters.add(pid);
      return pid;
    } catch {
      return null;
    }
  }

  /** kill -9 of a node's PostgreSQL (postmaster and every backend: its whole process group). */
  async killPostgres(name: string): Promise<void> {
    const pid = await this.postmasterPid(name);
    if (pid === null) return;
    killGroup(pid, 'SIGKILL');
    for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(20);
  }

  /** kill -9 of the agent process alone. */
  killAgent(name: string): void {
    this.node(name).handle?.kill('SIGKILL');
  }

  async stopAgent(name: string): Promise<void> {
    await this.node(name).handle?.stop(15_000);
  }

  /** Recent log lines of each agent, for a failing test's message. */
  async diagnostics(): Promise<string> {
    const out: string[] = [];
    for (const n of this.nodes.values()) {
      const lines = n.handle?.stdoutLines.slice(-8).map((l) => {
        try {
          const j = JSON.parse(l) as { msg?: string; layer?: string };
          return `  ${j.layer ?? ''} ${j.msg ?? l}`;
        } catch {
          return `  ${l}`;
        }
      });
      out.push(`${n.name} (${n.handle?.exit ? 'exited' : 'running'}):\n${(lines ?? []).join('\n')}`);
    }
    return out.join('\n');
  }

  async stopAll(): Promise<void> {
    for (const n of this.nodes.values()) {
      await this.postmasterPid(n.name);
      if (n.handle && !n.handle.exit) await n.handle.stop(15_000).catch(() => undefined);
    }
    for (const n of this.nodes.values()) await this.postmasterPid(n.name);
    for (const pid of this.postmasters) {
      if (!isAlive(pid)) continue;
      killGroup(pid, 'SIGQUIT');
      for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(20);
      if (isAlive(pid)) killGroup(pid, 'SIGKILL');
    }
    await removeDir(this.root);
    releasePorts(this.ports);
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}
