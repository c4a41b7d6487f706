// Membership through the cluster itself, the way Patroni's Raft (pysyncobj's dynamic membership)
// grows: a new member starts with the addresses of some partners, finds that they already form a
// cluster without it, and asks the leader to admit it. The leader adds it as a learner (it votes
// on nothing while it catches up) and promotes it to voter once it has the whole committed log
// (RaftNode.promoteCaughtUpLearners). An operator removes a member through any member; the
// request travels to the leader like a join.
//
// Both requests are small JSON bodies on the Raft port, answered by the leader only; a follower
// answers 503 with the leader's URL, and the client follows it.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { readdir } from 'node:fs/promises';
import type { RaftNode } from './raft-node.ts';
import { RaftError } from '../core/errors.ts';
import type { ConfState } from '../core/types.ts';
import type { RaftAuth } from '../transport/auth.ts';
import { raftRequest } from '../transport/auth-request.ts';
import { INCARNATION_FILE } from './incarnation.ts';

export const RAFT_JOIN_PATH = '/raft/v1/join';
export const RAFT_REMOVE_PATH = '/raft/v1/remove';

const STATUS_BY_CODE: Record<string, number> = {
  ERR_NOT_LEADER: 503,
  ERR_STOPPED: 503,
  ERR_TIMEOUT: 504,
  ERR_CONF_CHANGE_PENDING: 409,
  ERR_PROPOSAL_DROPPED: 409,
};

function fail(node: RaftNode, reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof RaftError) {
    return reply.code(STATUS_BY_CODE[err.code] ?? 500).send({ error: err.code, message: err.message, leaderUrl: err.code === 'ERR_NOT_LEADER' ? node.leaderUrl() : null });
  }
  return reply.code(500).send({ error: 'ERR_INTERNAL', message: (err as Error).message });
}

const isMemberId = (v: unknown): v is string => typeof v === 'string' && /^[A-Za-z0-9.:[\]_-]{1,255}$/.test(v);
const isHttpUrl = (v: unknown): v is string => typeof v === 'string' && v.length <= 1024 && /^https?:\/\/[^\s/]+$/.test(v);

export function registerMembershipServer(app: FastifyInstance, node: RaftNode): void {
  app.post<{ Body: { id?: unknown; url?: unknown } }>(RAFT_JOIN_PATH, async (req, reply) => {
    const { id, url } = req.body ?? {};
    if (!isMemberId(id) || !isHttpUrl(url)) {
      return reply.code(400).send({ error: 'ERR_BAD_REQUEST', message: 'body must be {"id": "<host:port>", "url": "http://<host:port>"}' });
    }
    try {
      return { conf: await node.admit(id, url) };
    } catch (err) {
      return fail(node, reply, err);
    }
  });

  app.post<{ Body: { id?: unknown } }>(RAFT_REMOVE_PATH, async (req, reply) => {
    const id = req.body?.id;
    if (!isMemberId(id)) return reply.code(400).send({ error: 'ERR_BAD_REQUEST', message: 'body must be {"id": "<host:port>"}' });
    try {
      return { conf: await node.removeMember(id) };
    } catch (err) {
      return fail(node, reply, err);
    }
  });
}

/** One JSON POST to a member; network failures become ERR_TIMEOUT, refusals keep their code. */
async function post(auth: RaftAuth | null, url: string, body: unknown, timeoutMs: number): Promise<{ status: number; json: Record<string, unknown> }> {
  try {
    const res = await raftRequest(auth, url, { method: 'POST', contentType: 'application/json', body: JSON.stringify(body), timeoutMs });
    const text = res.body.toString('utf8');
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = { message: text.slice(0, 200) };
    }
    return { status: res.status, json };
  } catch (cause) {
    throw new RaftError('ERR_TIMEOUT', `${url}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Sends a membership request to the leader, starting from any of `urls` and following the
 * leader's URL when a follower answers. Retries until `deadline` (performance.now() ms) while no
 * leader is known or a change is in flight; other refusals are final.
 */
export async function requestMembershipChange(auth: RaftAuth | null, urls: string[], path: string, body: unknown, deadline: number): Promise<ConfState> {
  let lastError = 'no member answered';
  let next = [...urls];
  for (let attempt = 0; performance.now() < deadline; attempt++) {
    const url = next[attempt % next.length]!;
    try {
      const { status, json } = await post(auth, url + path, body, Math.max(500, Math.min(5000, deadline - performance.now())));
      if (status === 200) return json.conf as ConfState;
      lastError = `${url} answered ${status}: ${String(json.message ?? json.error)}`;
      if (typeof json.leaderUrl === 'string' && json.leaderUrl !== url) {
        next = [json.leaderUrl, ...urls];
        attempt = -1;
        continue;
      }
      if (status !== 503 && status !== 504 && status !== 409) throw new RaftError('ERR_PROPOSAL_DROPPED', lastError);
    } catch (err) {
      if (err instanceof RaftError && err.code === 'ERR_PROPOSAL_DROPPED') throw err;
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new RaftError('ERR_TIMEOUT', `membership request ${path} not accepted in time: ${lastError}`);
}

/**
 * Whether any of `peerUrls` says (by a linearizable read of its store) that `id` was removed. A
 * removed member that is no longer sent heartbeats knows no leader and cannot learn of its removal
 * from the log; it asks this instead (RaftNode.checkRemoval).
 */
export async function askedWhetherRemoved(auth: RaftAuth | null, peerUrls: string[], id: string, removedKeyPrefix: string, timeoutMs = 1000): Promise<boolean> {
  const key = encodeURIComponent(removedKeyPrefix + id);
  const answers = await Promise.all(
    peerUrls.map(async (url) => {
      try {
        const res = await raftRequest(auth, `${url}/v1/kv/${key}`, { timeoutMs });
        // With authentication on, a peer refuses a removed member's requests outright (403).
        return res.status === 200 || (res.status === 403 && res.body.toString('utf8').includes('ERR_REMOVED'));
      } catch {
        return false;
      }
    }),
  );
  return answers.some(Boolean);
}

/** What a member whose Raft store is empty should do. */
export type StartMode = { type: 'bootstrap' } | { type: 'join'; conf: ConfState; from: string };

/**
 * Asks the partners whether they already form a cluster. When one does, and its voters are not
 * exactly the founding voters of this member's configuration, this member joins it (a new member,
 * or one that lost its data after the cluster changed). Otherwise (nobody answers, or they are
 * the founding voters: the cluster's first start) it bootstraps with the founding voters, as every
 * founding member does alike, so their first snapshots are identical.
 */
export async function chooseStartMode(auth: RaftAuth | null, foundingVoters: string[], partnerUrls: string[], timeoutMs = 1000): Promise<StartMode> {
  const founding = [...foundingVoters].sort().join(',');
  const answers = await Promise.all(partnerUrls.map((url) => confOf(auth, url, timeoutMs)));
  for (const a of answers) {
    if (a && a.conf.voters.length > 0 && [...a.conf.voters].sort().join(',') !== founding) return { type: 'join', conf: a.conf, from: a.url };
  }
  return { type: 'bootstrap' };
}

/** A member's membership as its GET /v1/status tells it; null when it does not answer. */
async function confOf(auth: RaftAuth | null, url: string, timeoutMs: number): Promise<{ url: string; conf: ConfState } | null> {
  try {
    const res = await raftRequest(auth, `${url}/v1/status`, { timeoutMs });
    if (res.status !== 200) return null;
    const st = JSON.parse(res.body.toString('utf8')) as { voters?: unknown; learners?: unknown };
    if (!Array.isArray(st.voters) || !Array.isArray(st.learners)) return null;
    return { url, conf: { voters: st.voters.map(String), learners: st.learners.map(String) } };
  } catch {
    return null;
  }
}

/** A Raft data directory that is missing or empty (but for its incarnation) holds no state: the member starts fresh. */
export async function isFreshDataDir(dataDir: string): Promise<boolean> {
  try {
    return (await readdir(dataDir)).every((name) => name === INCARNATION_FILE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}
