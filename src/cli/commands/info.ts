// Read-only commands: history, dsn, query (straight to a member's PostgreSQL, as patronictl
// connects with libpq) and version.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Parsed } from '../args.ts';
import { value } from '../args.ts';
import { CliError } from '../errors.ts';
import { apiError, parseJson } from '../http.ts';
import type { Ctx } from '../context.ts';
import { REPO_ROOT, checkClusterName, getCluster, memberBase, memberBases, sendToFirst } from '../context.ts';
import { dsnOf, hasRole } from '../cluster.ts';
import type { ClusterInfo, ClusterMember, HistoryEntry } from '../cluster.ts';
import { render } from '../format.ts';
import type { Cell, Format } from '../format.ts';

export async function history(ctx: Ctx, p: Parsed): Promise<number> {
  checkClusterName(ctx, p.args[0]);
  const res = await sendToFirst(ctx, await memberBases(ctx), 'GET', '/history');
  if (res.status !== 200) throw apiError(res, 'GET /history');
  const entries = parseJson<HistoryEntry[]>(res, 'GET /history');
  if (!Array.isArray(entries)) throw new CliError('ERR_API', `GET /history: ${res.url} answered something other than a list`);
  const rows: Cell[][] = entries.map((e) => [e[0], e[1], e[2], e[3] ?? '', e[4] ?? '']);
  ctx.io.out(`${render((value(p, 'format') ?? 'pretty') as Format, ['TL', 'LSN', 'Reason', 'Timestamp', 'New Leader'], rows, { rightAlign: ['TL', 'LSN'] })}\n`);
  return 0;
}

/** -m/--member (or the positional member), else the first member of -r/--role (default: the leader). */
function pickMember(cluster: ClusterInfo, member: string | null, role: string | null): ClusterMember {
  if (member !== null) {
    const m = cluster.members.find((x) => x.name === member);
    if (!m) throw new CliError('ERR_REFUSED', `Member ${member} does not exist in cluster ${cluster.scope}`);
    return m;
  }
  const wanted = role ?? 'leader';
  const m = cluster.members.find((x) => hasRole(x, wanted));
  if (!m) throw new CliError('ERR_REFUSED', `no member of cluster ${cluster.scope} has role ${wanted}`);
  return m;
}

export async function dsn(ctx: Ctx, p: Parsed): Promise<number> {
  const { cluster } = await getCluster(ctx);
  // patronictl takes the cluster name here; accept it when it names no member.
  const positional = p.args[0] !== undefined && !(p.args[0] === ctx.config.scope && !cluster.members.some((m) => m.name === p.args[0])) ? p.args[0] : null;
  const m = pickMember(cluster, value(p, 'member') ?? positional, value(p, 'role'));
  const text = dsnOf(m);
  if (!text) throw new CliError('ERR_API', `member ${m.name} publishes no PostgreSQL host and port`);
  ctx.io.out(`${text}\n`);
  return 0;
}

export async function query(ctx: Ctx, p: Parsed): Promise<number> {
  checkClusterName(ctx, p.args[0]);
  const file = value(p, 'file');
  const sql = value(p, 'command') ?? (file === '-' ? await ctx.io.readStdin() : file !== null ? readFileSync(file, 'utf8') : null);
  if (sql === null || sql.trim() === '') throw new CliError('ERR_USAGE', 'query needs -c SQL or --file FILE', { usage: 'usage: conclavectl query -c SQL [-m member | -r role] [-U user] [-d dbname] [--format tsv|pretty|json|yaml]' });
  const { cluster } = await getCluster(ctx);
  const m = pickMember(cluster, value(p, 'member'), value(p, 'role'));
  if (!m.host || !m.port) throw new CliError('ERR_API', `member ${m.name} publishes no PostgreSQL host and port`);
  const superuser = ctx.config.postgresql?.authentication.superuser ?? null;
  const user = value(p, 'username') ?? superuser?.username ?? process.env.PGUSER ?? 'postgres';
  // The configuration's password only for the user it belongs to; others use PGPASSWORD/.pgpass as libpq does.
  const password = superuser && user === superuser.username && superuser.password !== '' ? superuser.password : undefined;
  const client = new pg.Client({ host: m.host, port: m.port, user, password, database: value(p, 'dbname') ?? 'postgres', connectionTimeoutMillis: 5000, application_name: 'conclavectl' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const results = await client.query({ text: sql, rowMode: 'array' });
    for (const r of Array.isArray(results) ? (results as pg.QueryArrayResult[]) : [results]) {
      if (!r.fields || r.fields.length === 0) continue;
      const columns = r.fields.map((f) => f.name);
      const rows = r.rows.map((row) => row.map((v): Cell => (v === null || v === undefined ? null : v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : (v as Cell))));
      ctx.io.out(`${render((value(p, 'format') ?? 'tsv') as Format, columns, rows, { keepEmpty: true })}\n`);
    }
    return 0;
  } catch (err) {
    throw new CliError('ERR_QUERY', `query on ${m.name} (${m.host}:${m.port}): ${(err as Error).message}`, { cause: err });
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function ctlVersion(): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** 150004 → "15.4", 90624 → "9.6.24". */
export function pgVersionText(n: unknown): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return 'unknown';
  return n >= 100000 ? `${Math.floor(n / 10000)}.${n % 10000}` : `${Math.floor(n / 10000)}.${Math.floor(n / 100) % 100}.${n % 100}`;
}

/** `version <cluster> [member...]`: conclavectl's version, then each member's agent and PostgreSQL. */
export async function version(ctx: Ctx, p: Parsed): Promise<number> {
  ctx.io.out(`conclavectl version ${ctlVersion()}\n`);
  if (p.args.length === 0) return 0;
  checkClusterName(ctx, p.args[0]);
  const { cluster } = await getCluster(ctx);
  const names = p.args.slice(1);
  for (const m of cluster.members.filter((x) => names.length === 0 || names.includes(x.name))) {
    try {
      const res = await ctx.http.request('GET', `${memberBase(ctx, m)}/patroni`);
      const b = JSON.parse(res.text) as { patroni?: { version?: string; product?: string }; server_version?: number };
      ctx.io.out(`${m.name}: ${b.patroni?.product ?? 'Conclave'} ${b.patroni?.version ?? 'unknown'} PostgreSQL ${pgVersionText(b.server_version)}\n`);
    } catch (err) {
      ctx.io.out(`${m.name}: unreachable (${(err as Error).message})\n`);
    }
  }
  return 0;
}
