// The consensus group, on the members' Raft ports: `raft status` (every member's view), `raft add`
// and `raft remove` (membership requests, answered by the Raft leader; a follower names it and the
// request is sent there), and `raft transfer-leader`.
import type { Parsed } from '../args.ts';
import { flag } from '../args.ts';
import { CliError } from '../errors.ts';
import { apiError, parseJson } from '../http.ts';
import type { HttpClient, HttpResponse } from '../http.ts';
import type { Io } from '../context.ts';
import { prettyTable } from '../format.ts';
import type { MemberStatus } from '../../raft/node/kv-http.ts';

export interface RaftCtx {
  readonly http: HttpClient;
  /** Raft addresses to ask, e.g. http://127.0.0.1:2222. */
  readonly urls: readonly string[];
  readonly io: Io;
}

const TRANSFER_WAIT_MS = 10_000;
const MAX_REDIRECTS = 5;

async function statusOf(rc: RaftCtx, url: string): Promise<MemberStatus | string> {
  try {
    const res = await rc.http.request('GET', `${url}/v1/status`, { auth: 'raft', timeoutMs: 2000 });
    if (res.status !== 200) return `answered ${res.status}`;
    return parseJson<MemberStatus>(res, 'GET /v1/status');
  } catch (err) {
    return (err as Error).message.replace(/^GET \S+: /, '');
  }
}

async function allStatuses(rc: RaftCtx): Promise<Array<{ url: string; st: MemberStatus | string }>> {
  return Promise.all(rc.urls.map(async (url) => ({ url, st: await statusOf(rc, url) })));
}

export async function raftStatus(rc: RaftCtx): Promise<number> {
  const results = await allStatuses(rc);
  // Members the group knows but the configuration does not name (joined later): an agent's Raft
  // id is its raft.self_addr, so a host:port id is also where its status is served.
  const known = new Set(results.flatMap((r) => (typeof r.st === 'string' ? [r.url] : [r.url, `http://${r.st.id}`])));
  const others = [...new Set(results.flatMap((r) => (typeof r.st === 'string' ? [] : [...r.st.voters, ...r.st.learners])))]
    .filter((id) => /^[^\s/]+:\d+$/.test(id) && !known.has(`http://${id}`));
  results.push(...(await Promise.all(others.map(async (id) => ({ url: `http://${id}`, st: await statusOf(rc, `http://${id}`) })))));
  const columns = ['Member', 'URL', 'Role', 'Term', 'Leader', 'Commit', 'Applied', 'Last index'];
  const rows = results.map(({ url, st }) =>
    typeof st === 'string' ? ['?', url, `unreachable: ${st}`, '', '', '', '', ''] : [st.id, url, st.role, st.term, st.leader ?? '-', st.commit, st.applied, st.lastIndex]);
  rc.io.out(`${prettyTable(columns, rows)}\n`);
  const reachable = results.filter((r) => typeof r.st !== 'string').length;
  if (reachable === 0) throw new CliError('ERR_UNREACHABLE', `no Raft member answered (tried ${rc.urls.join(', ')})`);
  return 0;
}

/** POSTs a membership request, following a follower's pointer to the leader. */
async function membershipRequest(rc: RaftCtx, path: string, body: Record<string, string>): Promise<HttpResponse> {
  let last: unknown = null;
  for (const start of rc.urls) {
    let url = start;
    try {
      for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
        const res = await rc.http.request('POST', `${url}${path}`, { body, auth: 'raft', timeoutMs: 30_000 });
        const leaderUrl = res.status === 503 ? (JSON.parse(res.text || '{}') as { leaderUrl?: unknown }).leaderUrl : null;
        if (typeof leaderUrl === 'string' && leaderUrl !== url) {
          url = leaderUrl.replace(/\/+$/, '');
          continue;
        }
        return res;
      }
    } catch (err) {
      last = err;
    }
  }
  throw new CliError('ERR_UNREACHABLE', `no Raft member took ${path}${last ? ` (last: ${(last as Error).message})` : ''}`);
}

function confText(res: HttpResponse): string {
  const conf = (JSON.parse(res.text) as { conf?: { voters?: string[]; learners?: string[] } }).conf;
  return `voters: ${(conf?.voters ?? []).join(', ') || '-'}; learners: ${(conf?.learners ?? []).join(', ') || '-'}`;
}

export async function raftAdd(rc: RaftCtx, p: Parsed): Promise<number> {
  const [id, url] = p.args;
  if (!/^https?:\/\/[^\s/]+\/?$/.test(url)) throw new CliError('ERR_USAGE', `raft add: the url must look like http://host:port, got ${JSON.stringify(url)}`, { usage: 'usage: conclavectl raft add <id> <url>' });
  const res = await membershipRequest(rc, '/raft/v1/join', { id, url: url.replace(/\/+$/, '') });
  if (res.status !== 200) throw apiError(res, `raft add ${id}`);
  rc.io.out(`Success: ${id} admitted as a learner (a voter once it has caught up); ${confText(res)}\n`);
  return 0;
}

export async function raftRemove(rc: RaftCtx, p: Parsed, confirm: (force: boolean, what: string) => Promise<void>): Promise<number> {
  const id = p.args[0];
  await confirm(flag(p, 'force'), `remove ${id} from the consensus group`);
  const res = await membershipRequest(rc, '/raft/v1/remove', { id });
  if (res.status !== 200) throw apiError(res, `raft remove ${id}`);
  rc.io.out(`Success: ${id} removed from the consensus group; ${confText(res)}\n`);
  return 0;
}

export async function raftTransferLeader(rc: RaftCtx, p: Parsed): Promise<number> {
  const target = p.args[0];
  const results = await allStatuses(rc);
  const leader = results.find((r): r is { url: string; st: MemberStatus } => typeof r.st !== 'string' && r.st.role === 'leader');
  if (!leader) throw new CliError('ERR_UNREACHABLE', `no Raft leader among ${rc.urls.join(', ')}`);
  if (leader.st.id === target) {
    rc.io.out(`${target} already leads the consensus group (term ${leader.st.term})\n`);
    return 0;
  }
  if (!leader.st.voters.includes(target)) throw new CliError('ERR_REFUSED', `${target} is not a voter (voters: ${leader.st.voters.join(', ')})`);
  const res = await rc.http.request('POST', `${leader.url}/v1/raft/transfer-leader`, { body: { target }, auth: 'raft' });
  if (res.status !== 202 && res.status !== 200) throw apiError(res, 'transfer-leader');
  rc.io.out(`transferring leadership from ${leader.st.id} to ${target}\n`);
  const deadline = performance.now() + TRANSFER_WAIT_MS;
  while (performance.now() < deadline) {
    await rc.io.sleep(200);
    const now = (await allStatuses(rc)).find((r) => typeof r.st !== 'string' && r.st.role === 'leader');
    if (now && typeof now.st !== 'string' && now.st.id === target) {
      rc.io.out(`Success: ${target} leads the consensus group (term ${now.st.term})\n`);
      return 0;
    }
  }
  throw new CliError('ERR_TIMEOUT', `${target} did not take the leadership within ${TRANSFER_WAIT_MS / 1000} s (it may be behind or unreachable)`);
}
