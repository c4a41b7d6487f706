// The agent's side of Raft membership: who the Raft members are (their ids are the raft
// addresses, as in patroni.yml's raft section), how a fresh agent decides between founding the
// cluster and joining it, and how an operator removes a member (DELETE /cluster/members/<name>).
import type { Logger } from 'pino';
import type { AgentConfig, HostPort } from './config/types.ts';
import type { ClusterStore } from './cluster-store.ts';
import type { RaftNode } from '../raft/node/raft-node.ts';
import { RaftAuth } from '../raft/transport/auth.ts';
import { loadOrCreateIncarnation } from '../raft/node/incarnation.ts';
import { readRaftTls } from '../raft/transport/tls.ts';
import { RAFT_JOIN_PATH, RAFT_REMOVE_PATH, chooseStartMode, isFreshDataDir, requestMembershipChange } from '../raft/node/membership.ts';

const addr = (h: HostPort): string => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);

/** This member's Raft id: its raft.self_addr. */
export const raftMemberId = (config: AgentConfig): string => addr(config.raft.self_addr);

/** A member's Raft URL: https when the members use mutual TLS. */
const raftUrl = (config: AgentConfig, h: HostPort): string => `${config.raft.tls ? 'https' : 'http'}://${addr(h)}`;

/** The founding voters (this member and its partners) and their URLs. */
export function raftPeers(config: AgentConfig): Record<string, string> {
  const peers: Record<string, string> = { [raftMemberId(config)]: raftUrl(config, config.raft.self_addr) };
  for (const p of config.raft.partner_addrs) peers[addr(p)] = raftUrl(config, p);
  return peers;
}

/** Below this many characters a shared secret is guessable from one captured request: warned. */
const SHORT_SECRET = 16;

/**
 * How this member proves itself on the Raft port: raft.password (Patroni's key) signs every
 * request; without one anyone who reaches the port can vote, and the agent says so loudly.
 */
export async function raftAuthFor(config: AgentConfig, logger: Logger): Promise<RaftAuth> {
  const incarnation = await loadOrCreateIncarnation(config.raft.data_dir);
  const secret = config.raft.password;
  if (secret === null && config.raft.tls) {
    logger.warn('raft.password is not set: members prove themselves by their TLS certificates alone (raft.cafile signs whom the cluster trusts)');
  } else if (secret === null) {
    logger.warn(
      'NO RAFT AUTHENTICATION: raft.password is not set, so anyone who can reach this member\'s Raft port (' +
        `${addr(config.raft.bind_addr)}) can vote, join and write the cluster state, and so choose the primary. ` +
        'Set the same raft.password (or CONCLAVE_RAFT_PASSWORD) on every member.',
    );
  } else if (secret.length < SHORT_SECRET) {
    logger.warn(`raft.password is shorter than ${SHORT_SECRET} characters: a captured request lets an attacker guess it offline`);
  }
  return new RaftAuth({ secret, scope: config.scope, self: { id: raftMemberId(config), incarnation }, tls: config.raft.tls ? readRaftTls(config.raft.tls) : null });
}

/**
 * Whether this agent's Raft starts by joining an existing cluster: only when its Raft data
 * directory is empty and a partner answers with a cluster that is not the founding one of this
 * configuration (membership.ts: chooseStartMode).
 */
export async function shouldJoin(config: AgentConfig, logger: Logger, auth: RaftAuth | null): Promise<boolean> {
  if (!(await isFreshDataDir(config.raft.data_dir))) return false;
  const partners = config.raft.partner_addrs.map((p) => raftUrl(config, p));
  if (partners.length === 0) return false;
  const mode = await chooseStartMode(auth, Object.keys(raftPeers(config)), partners);
  if (mode.type === 'join') logger.info({ cluster: mode.conf, via: mode.from }, 'joining the existing raft cluster as a new member');
  return mode.type === 'join';
}

/**
 * Asks the leader to admit this member, again and again until it does or `stopped()` says the
 * agent is stopping: a joining member has nothing to do until it is admitted.
 */
export async function askToJoin(config: AgentConfig, logger: Logger, auth: RaftAuth | null, stopped: () => boolean): Promise<void> {
  const partners = config.raft.partner_addrs.map((p) => raftUrl(config, p));
  const body = { id: raftMemberId(config), url: raftUrl(config, config.raft.self_addr) };
  while (!stopped()) {
    try {
      const conf = await requestMembershipChange(auth, partners, RAFT_JOIN_PATH, body, performance.now() + 10_000);
      logger.info({ conf }, 'admitted to the raft cluster as a learner; a voter once caught up');
      return;
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'asking to join the raft cluster failed; trying again');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

export interface RemovalResult {
  status: number;
  message: string;
}

/**
 * Removes a member from the cluster while it serves: out of the Raft configuration (the leader
 * refuses its writes from then on, so an agent still running there stops), its member key gone
 * and its replication slot dropped by the primary at its next cycle. `name` is a member name, or
 * the raft address of a witness (which has no member key). The primary cannot be removed: switch
 * over first.
 */
export async function removeClusterMember(deps: { store: ClusterStore; raft: RaftNode; selfUrl: string; name: string }): Promise<RemovalResult> {
  const { store, raft, name } = deps;
  const cluster = await store.getCluster();
  const conf = raft.status().conf;
  const inRaft = (id: string): boolean => conf.voters.includes(id) || conf.learners.includes(id);
  const member = cluster.members.find((m) => m.name === name) ?? null;
  const raftId = member ? (typeof member.data.raft_id === 'string' ? member.data.raft_id : null) : inRaft(name) ? name : null;
  if (!member && raftId === null) return { status: 404, message: `no member named ${JSON.stringify(name)} (nor a raft member with that address)` };
  if (cluster.leader?.name === name) return { status: 409, message: `${name} is the primary: switch over to another member first` };
  if (raftId !== null && inRaft(raftId) && conf.voters.length === 1 && conf.voters[0] === raftId) {
    return { status: 409, message: `${name} is the last raft voter; a cluster cannot remove it` };
  }
  // Marked first, so that the primary stops keeping its slot even if the rest is interrupted.
  await store.markRemoved(name, raftId);
  if (raftId !== null && inRaft(raftId)) await requestMembershipChange(raft.auth, [deps.selfUrl], RAFT_REMOVE_PATH, { id: raftId }, performance.now() + 15_000);
  // A member removing itself can no longer write: its key expires with its lease instead.
  if (raftId !== raft.id && member) await store.deleteMemberKey(name);
  return { status: 200, message: `removed ${name} from the cluster` };
}
