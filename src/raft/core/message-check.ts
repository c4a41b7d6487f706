// What no member running this code can send: numbers that are not log positions, entries that do not
// follow the position they are appended after or carry a term from the future, snapshots with no
// voters, conf entries that do not decode. The codec (transport/codec.ts) already refuses what is
// malformed on the wire; this judges what is well-formed but impossible, and also guards step()
// against callers that did not come through the codec. Raft.step drops such a message instead of
// throwing: the node driver treats any exception from the core as a broken invariant and stops the
// node (STYLE.md), and one member's bad message must not take another member down.
import type { Entry, Message, Snapshot } from './types.ts';
import { decodeConfChange } from './conf-change.ts';

/**
 * The largest term or index accepted from a peer: 2^52. At a million entries or elections a second
 * that is 142 years away, and it leaves 2^52 increments before a number stops being an exact
 * integer (a term of 2^53 + 1 is 2^53 in floating point, and two elections would share a term).
 */
export const MAX_RAFT_NUMBER = 2 ** 52;

const isPosition = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_RAFT_NUMBER;

const isId = (v: unknown): boolean => typeof v === 'string' && v.length > 0;

/** Why `m` cannot have come from a correct member, or null when it could have. */
export function implausibility(m: Message): string | null {
  if (typeof m !== 'object' || m === null) return 'not a message';
  if (!isId(m.from) || !isId(m.to)) return 'from and to must be member ids';
  if (m.from === m.to) return `${m.from} sent a message to itself`;
  // typeof, not String(): a value from a caller that bypassed the codec may not convert to text.
  if (!isPosition(m.term)) return `term ${typeof m.term === 'number' ? m.term : typeof m.term} is not a term`;
  switch (m.type) {
    case 'app':
      if (!isPosition(m.index) || !isPosition(m.logTerm) || !isPosition(m.commit)) return 'index, logTerm and commit must be log positions';
      if (m.logTerm > m.term) return `logTerm ${m.logTerm} is above the leader's term ${m.term}`;
      return entriesProblem(m.entries, m.index, m.logTerm, m.term);
    case 'appResp':
      if (!isPosition(m.index) || !isPosition(m.hintIndex) || !isPosition(m.hintTerm)) return 'index, hintIndex and hintTerm must be log positions';
      return typeof m.reject === 'boolean' ? null : 'reject must be a boolean';
    case 'vote':
    case 'preVote':
      if (!isPosition(m.index) || !isPosition(m.logTerm)) return 'index and logTerm must be log positions';
      if (m.logTerm > m.term) return `the candidate's last log term ${m.logTerm} is above the term ${m.term} it runs in`;
      return typeof m.transfer === 'boolean' ? null : 'transfer must be a boolean';
    case 'voteResp':
    case 'preVoteResp':
      return typeof m.reject === 'boolean' ? null : 'reject must be a boolean';
    case 'heartbeat':
      if (!isPosition(m.commit)) return 'commit must be a log position';
      return m.context === null || typeof m.context === 'string' ? null : 'context must be a string or null';
    case 'heartbeatResp':
      return m.context === null || typeof m.context === 'string' ? null : 'context must be a string or null';
    case 'snap':
      return snapshotProblem(m.snapshot, m.term);
    case 'readIndex':
      return typeof m.context === 'string' ? null : 'context must be a string';
    case 'readIndexResp':
      if (!isPosition(m.index)) return 'index must be a log position';
      return typeof m.context === 'string' ? null : 'context must be a string';
    case 'timeoutNow':
      return null;
    case 'transferLeader':
      return isId(m.target) ? null : 'target must be a member id';
    default:
      return 'unknown message type';
  }
}

/** Entries after (index, logTerm) in a leader's log of `term`: consecutive, terms never falling nor above `term`. */
function entriesProblem(entries: Entry[], index: number, logTerm: number, term: number): string | null {
  if (!Array.isArray(entries)) return 'entries must be a list';
  let prevIndex = index;
  let prevTerm = logTerm;
  for (const [i, e] of entries.entries()) {
    if (typeof e !== 'object' || e === null) return `entry ${i} is not an entry`;
    if (!isPosition(e.index) || !isPosition(e.term)) return `entry ${i}: index and term must be log positions`;
    if (e.index !== prevIndex + 1) return `entry ${i}: index ${e.index} does not follow ${prevIndex}`;
    // Terms along a log never go down (Log Matching), and a leader has no entries of later terms.
    if (e.term < prevTerm) return `entry ${e.index}: term ${e.term} is below the term ${prevTerm} before it`;
    if (e.term > term) return `entry ${e.index}: term ${e.term} is above the leader's term ${term}`;
    if (!(e.data instanceof Uint8Array)) return `entry ${e.index}: data must be bytes`;
    if (e.type === 'conf') {
      // An undecodable membership change would stop every member that applies it.
      try {
        decodeConfChange(e.data);
      } catch (err) {
        return `entry ${e.index}: ${(err as Error).message}`;
      }
    } else if (e.type !== 'normal') return `entry ${e.index}: unknown entry type`;
    prevIndex = e.index;
    prevTerm = e.term;
  }
  return null;
}

function snapshotProblem(snap: Snapshot, term: number): string | null {
  const meta = snap?.meta;
  if (typeof meta !== 'object' || meta === null || !(snap.data instanceof Uint8Array)) return 'snapshot must have meta and data';
  // Index 0 is "no snapshot"; a leader sends only a real one (raft.ts sendSnapshot).
  if (!isPosition(meta.index) || meta.index === 0 || !isPosition(meta.term)) return 'snapshot index and term must be log positions';
  if (meta.term > term) return `snapshot term ${meta.term} is above the leader's term ${term}`;
  const conf = meta.conf;
  if (typeof conf !== 'object' || conf === null || !Array.isArray(conf.voters) || !Array.isArray(conf.learners)) return 'snapshot conf must list voters and learners';
  if (![...conf.voters, ...conf.learners].every(isId)) return 'snapshot conf members must be ids';
  // A configuration with no voters can elect no one: a member that adopted it would be stuck for good.
  if (conf.voters.length === 0) return 'snapshot conf has no voters';
  // Voters and learners are disjoint in every configuration the core makes; one listed as both
  // would become a learner, which may leave no voter at all.
  const learners = new Set(conf.learners);
  const both = conf.voters.find((id) => learners.has(id));
  if (both !== undefined) return `snapshot conf lists ${both} as both voter and learner`;
  return null;
}
