// GET /patroni (peers read it during a race) and the health checks load balancers and
// orchestrators poll, with Patroni's paths, query filters and status codes (reference §1.1): 200
// when the condition holds, else 503. GET answers with the status JSON; HEAD and OPTIONS with the
// status alone (HAProxy's `option httpchk` sends OPTIONS), so a Patroni user's HAProxy config and
// Kubernetes probes work unchanged.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HaLoop } from '../ha/ha-loop.ts';
import type { AgentConfig, DatabaseAgentConfig } from '../ha/config/types.ts';
import type { ClusterView, JsonObject } from '../ha/cluster-view.ts';
import { syncStandbys } from '../ha/decide-sync.ts';
import { CONCLAVE_VERSION, patroniStatus } from '../ha/member-data.ts';

export interface ApiDeps {
  config: DatabaseAgentConfig;
  loop: HaLoop;
  now: () => number;
}

/** The query string as fastify parses it; Patroni reads the first value of a repeated key. */
type Query = Record<string, string | string[] | undefined>;
type Check = (deps: ApiDeps, q: Query) => boolean;

/**
 * How old a PostgreSQL status a HEAD or OPTIONS check may be judged on. HAProxy checks every
 * member once a second per `listen` section, and several proxies multiply that: one query per
 * check would queue on the agent's single connection to PostgreSQL behind the HA loop's own. The
 * lock is always judged as it is now; only PostgreSQL's role and positions may be this old (or
 * come from a query sent before the check arrived), and a promoted PostgreSQL does not become a
 * replica again without a restart, which takes longer than this.
 */
export const CHECK_FRESH_MS = 100;

const first = (q: Query, key: string): string | undefined => {
  const v = q[key];
  return Array.isArray(v) ? v[0] : v;
};

/** `lag=` values: bytes, or PostgreSQL-style sizes (16kB, 64MB, 1GB; units are powers of 1024, any case). */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return null;
  const units: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, kb: 2 ** 10, m: 2 ** 20, mb: 2 ** 20, g: 2 ** 30, gb: 2 ** 30, t: 2 ** 40, tb: 2 ** 40 };
  const unit = units[m[2]!.toLowerCase()];
  return unit === undefined ? null : Math.floor(Number(m[1]) * unit);
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The leader's WAL position: its member key's xlog_location, else the optime it last published in `status`. */
function leaderPosition(cluster: ClusterView | null): number | null {
  if (cluster === null) return null;
  const leader = cluster.leader ? cluster.members.find((m) => m.name === cluster.leader!.name) : undefined;
  return num(leader?.data.xlog_location) ?? num(cluster.status?.value.optime);
}

/**
 * How many bytes this replica is behind the leader: received WAL by default (`mode=write`),
 * replayed WAL with `mode=apply` (Patroni 4's readiness modes). null when either end is unknown.
 */
export function replicaLag(deps: ApiDeps, q: Query): number | null {
  const pg = deps.loop.lastPg;
  const mine = first(q, 'mode') === 'apply' ? pg.replayedLsn : pg.receivedLsn;
  const leader = leaderPosition(deps.loop.lastCluster);
  // The leader's position is from the last cycle's read: a replica may already be past it.
  return mine === null || leader === null ? null : Math.max(0, leader - mine);
}

/**
 * `lag=`: within it, or no (parsable) filter. An unparsable value is ignored, as Patroni does; an
 * unknown lag fails the filter (Patroni lets it pass when it knows no leader position).
 */
function lagOk(deps: ApiDeps, q: Query): boolean {
  const text = first(q, 'lag');
  const max = text === undefined ? null : parseSize(text);
  if (max === null) return true;
  const lag = replicaLag(deps, q);
  return lag !== null && lag <= max;
}

/** `tag_<name>=<value>`: 503 unless the member has the tag with that value (non-strings compared as lowercase text). */
function tagsOk({ config }: ApiDeps, q: Query): boolean {
  for (const key of Object.keys(q)) {
    if (!key.startsWith('tag_')) continue;
    // Own keys only: `tag_constructor` must not find Object.prototype.constructor.
    const name = key.slice(4);
    const mine = Object.hasOwn(config.tags.all, name) ? config.tags.all[name] : undefined;
    if (mine === undefined || mine === null) return false;
    const text = typeof mine === 'string' ? mine : String(mine).toLowerCase();
    if (text !== first(q, key)) return false;
  }
  return true;
}

const isPaused = ({ loop }: ApiDeps): boolean => loop.settings().extra.pause === true;

/** Named in the `sync` key of the current leader (synchronous_mode: true; quorum mode is not supported). */
function isSyncStandby({ loop, config }: ApiDeps): boolean {
  const cluster = loop.lastCluster;
  if (cluster === null || loop.settings().synchronous_mode !== true) return false;
  return syncStandbys(cluster, cluster.leader?.name).includes(config.name);
}

// Patroni answers /primary on the lock alone. We also want PostgreSQL promoted: between taking the
// lock and the end of the promotion the node is still a read-only replica, and a load balancer
// must not send it writes yet.
const isPrimary: Check = ({ loop }) => loop.isLeader() && loop.lastPg.running && loop.lastPg.role === 'primary';

/** Patroni's replica conditions: a running replica, load-balanced, within `lag=`, in `replication_state=`. */
const isReplica: Check = (d, q) => {
  const { loop, config } = d;
  const pg = loop.lastPg;
  if (loop.isLeader() || config.tags.noloadbalance) return false;
  // 'running' means no task (restart, reinitialize, rewind) is under way either.
  if (loop.localState().state !== 'running' || pg.role !== 'replica') return false;
  const wantedState = first(q, 'replication_state');
  if (wantedState !== undefined && pg.replicationState !== wantedState) return false;
  return lagOk(d, q);
};

const never: Check = () => false;

/** Health paths and what makes them 200. Patroni matches by substring; we route the paths it documents. */
const CHECKS: Record<string, Check> = {
  '/': isPrimary,
  '/primary': isPrimary,
  '/master': isPrimary,
  '/read-write': isPrimary,
  // The lock alone, as in Patroni: also while PostgreSQL is still being promoted.
  '/leader': ({ loop }) => loop.isLeader(),
  // A standby leader leads a standby cluster (one replicating from another cluster); Conclave
  // has no standby clusters, so nobody is one.
  '/standby-leader': never,
  '/standby_leader': never,
  '/replica': isReplica,
  '/read-only': (d, q) => isPrimary(d, q) || isReplica(d, q),
  '/sync': (d, q) => isSyncStandby(d) && isReplica(d, q),
  '/synchronous': (d, q) => isSyncStandby(d) && isReplica(d, q),
  // Patroni requires a store view here: without one nobody can say the replica is not synchronous.
  '/async': (d, q) => d.loop.lastCluster !== null && !isSyncStandby(d) && isReplica(d, q),
  '/asynchronous': (d, q) => d.loop.lastCluster !== null && !isSyncStandby(d) && isReplica(d, q),
  '/read-only-sync': (d, q) => isPrimary(d, q) || (isSyncStandby(d) && isReplica(d, q)),
  '/read-only-synchronous': (d, q) => isPrimary(d, q) || (isSyncStandby(d) && isReplica(d, q)),
  // Patroni 4's quorum commit (synchronous_mode: quorum) is not supported: no quorum standbys.
  '/quorum': never,
  '/read-only-quorum': isPrimary,
  '/health': ({ loop }) => loop.lastPg.running,
};

/** Paths whose 200 says where writes go: Patroni ignores tag filters on them. */
const LEADER_PATHS = new Set(['/', '/primary', '/master', '/read-write', '/leader', '/standby-leader', '/standby_leader']);

/** Status-only probes (Patroni writes no body for these, even on GET). */
const PROBES: Record<string, Check> = {
  // Patroni: paused, or the last HA cycle started less than ttl (primary) / 2 ttl (replica) ago. A
  // paused cluster stays "alive" so that an orchestrator does not restart it during maintenance.
  '/liveness': (d) => {
    const { loop, config, now } = d;
    if (isPaused(d)) return true;
    const started = loop.lastCycleStartedAt;
    const limit = (loop.isLeader() ? 1 : 2) * loop.settings().ttl * 1000;
    return started !== null && now() - started < Math.max(limit, config.bootstrap.dcs.ttl * 1000);
  },
  // The leader when it holds the lock and PostgreSQL runs; any other member when it runs as a
  // replica, within `lag=` if given (mode=apply measures replayed WAL).
  '/readiness': (d, q) => {
    const pg = d.loop.lastPg;
    if (d.loop.isLeader()) return pg.running;
    return pg.running && pg.role === 'replica' && lagOk(d, q);
  },
};

/** Every health path, for the witness. */
export const HEALTH_PATHS: readonly string[] = [...Object.keys(CHECKS), ...Object.keys(PROBES)];

/**
 * PostgreSQL's status as the API judges it. GET asks PostgreSQL afresh; HEAD and OPTIONS accept
 * an answer up to `maxAgeMs` old, or wait for the query in flight: a PostgreSQL slow to answer
 * must not get one more query per check queued behind it.
 */
class PgRefresher {
  private takenAt = -Infinity;
  private inflight: { startedAt: number; done: Promise<void> } | null = null;
  private readonly loop: HaLoop;
  private readonly now: () => number;

  constructor(loop: HaLoop, now: () => number) {
    this.loop = loop;
    this.now = now;
  }

  refresh(maxAgeMs: number): Promise<void> {
    const t = this.now();
    if (t - this.takenAt <= maxAgeMs) return Promise.resolve();
    if (this.inflight && (maxAgeMs > 0 || this.inflight.startedAt >= t)) return this.inflight.done;
    const startedAt = t;
    // A status is as old as the moment its query was sent.
    const done = this.loop.refreshPg().then(() => {
      this.takenAt = Math.max(this.takenAt, startedAt);
      if (this.inflight?.startedAt === startedAt) this.inflight = null;
    });
    this.inflight = { startedAt, done };
    return done;
  }
}

async function statusBody(deps: ApiDeps): Promise<JsonObject> {
  const { loop, config } = deps;
  const pg = loop.lastPg;
  return patroniStatus(config, loop.localState(), {
    clusterUnlocked: loop.lastCluster !== null && loop.lastCluster.leader === null,
    systemIdentifier: loop.lastControl?.systemIdentifier ?? null,
    lastReason: loop.lastReason,
    paused: isPaused(deps),
    storeReadAt: loop.lastStoreReadAt,
    // One more small query, on GET only and only on a primary.
    replication: pg.running && pg.role === 'primary' ? await loop.replicationRows() : null,
    syncStandby: isSyncStandby(deps),
  });
}

export function registerPatroniApi(app: FastifyInstance, deps: ApiDeps): void {
  const pg = new PgRefresher(deps.loop, deps.now);
  app.get('/patroni', async () => {
    // A fresh look at PostgreSQL: a peer deciding a race must not see a role or a position from
    // before the last promotion.
    await pg.refresh(0);
    return statusBody(deps);
  });
  for (const [path, check] of Object.entries(CHECKS)) {
    const handler = async (req: FastifyRequest, reply: FastifyReply) => {
      const q = (req.query ?? {}) as Query;
      // GET judges PostgreSQL as it is now (Patroni queries too); HEAD and OPTIONS must be cheap.
      await pg.refresh(req.method === 'GET' ? 0 : CHECK_FRESH_MS);
      const ok = check(deps, q) && (LEADER_PATHS.has(path) || tagsOk(deps, q));
      const code = ok ? 200 : 503;
      if (req.method !== 'GET') return reply.code(code).send();
      return reply.code(code).send(await statusBody(deps));
    };
    route(app, path, handler);
  }
  for (const [path, check] of Object.entries(PROBES)) {
    route(app, path, async (req, reply) => {
      if (path !== '/liveness') await pg.refresh(CHECK_FRESH_MS); // liveness asks nothing of PostgreSQL
      return reply.code(check(deps, (req.query ?? {}) as Query) ? 200 : 503).send();
    });
  }
}

/** GET, HEAD and OPTIONS on one handler (our own HEAD: fastify's automatic one would run GET's work). */
function route(app: FastifyInstance, url: string, handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>): void {
  app.route({ method: ['GET', 'HEAD', 'OPTIONS'], url, exposeHeadRoute: false, handler });
}

/**
 * A witness's API: it runs no PostgreSQL, so every health check that asks about PostgreSQL says
 * 503; GET /patroni and /liveness say what it is.
 */
export function registerWitnessApi(app: FastifyInstance, config: AgentConfig): void {
  const body = () => ({ state: 'running', role: 'witness', patroni: { version: CONCLAVE_VERSION, scope: config.scope, name: config.name, product: 'Conclave' }, tags: config.tags.all });
  app.get('/patroni', async () => body());
  route(app, '/liveness', async (req, reply) => (req.method === 'GET' ? reply.send(body()) : reply.send()));
  for (const path of HEALTH_PATHS.filter((p) => p !== '/liveness')) {
    route(app, path, async (req, reply) => (req.method === 'GET' ? reply.code(503).send(body()) : reply.code(503).send()));
  }
}
