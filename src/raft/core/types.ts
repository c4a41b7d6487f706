// The data the Raft core exchanges with the world: log entries, persistent state, snapshots and
// messages. Names follow etcd's raft (raftpb) so the code can be read beside it and the thesis.

/** A member's identity. Never reused for another member (etcd raft README). */
export type NodeId = string;

/** `normal` carries application data (empty data = the leader's no-op); `conf` a ConfChange. */
export type EntryType = 'normal' | 'conf';

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be on disk before any message that depends on it leaves the node (Raft Figure 2). */
export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

/** One membership change at a time (thesis §4.1; single-server changes). */
export interface ConfChange {
  type: 'addLearner' | 'promote' | 'remove';
  node: NodeId;
}

interface MsgBase {
  from: NodeId;
  to: NodeId;
  term: number;
}

/** AppendEntries: entries follow (index, logTerm); commit is the leader's commit index. */
export interface MsgApp extends MsgBase {
  type: 'app';
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
}

/**
 * Answer to MsgApp. On success `index` is the last index now matched. On reject `index` is the
 * rejected probe index and (`hintIndex`, `hintTerm`) let the leader skip whole terms (etcd
 * findConflictByTerm; thesis §5.3 optimisation).
 */
export interface MsgAppResp extends MsgBase {
  type: 'appResp';
  index: number;
  reject: boolean;
  hintIndex: number;
  hintTerm: number;
}

/** RequestVote / PreVote. `transfer` marks a campaign started by leadership transfer. */
export interface MsgVote extends MsgBase {
  type: 'vote' | 'preVote';
  logTerm: number;
  index: number;
  transfer: boolean;
}

export interface MsgVoteResp extends MsgBase {
  type: 'voteResp' | 'preVoteResp';
  reject: boolean;
}

/** `context` ties heartbeats to pending ReadIndex requests (etcd read_only.go). */
export interface MsgHeartbeat extends MsgBase {
  type: 'heartbeat';
  commit: number;
  context: string | null;
}

export interface MsgHeartbeatResp extends MsgBase {
  type: 'heartbeatResp';
  context: string | null;
}

export interface MsgSnap extends MsgBase {
  type: 'snap';
  snapshot: Snapshot;
}

/** A follower forwarding a linearizable read to its leader. */
export interface MsgReadIndex extends MsgBase {
  type: 'readIndex';
  context: string;
}

export interface MsgReadIndexResp extends MsgBase {
  type: 'readIndexResp';
  index: number;
  context: string;
}

/** Tells the transfer target to campaign at once, bypassing leader stickiness. */
export interface MsgTimeoutNow extends MsgBase {
  type: 'timeoutNow';
}

/** A follower asking the leader to hand leadership to `target` (usually itself). */
export interface MsgTransferLeader extends MsgBase {
  type: 'transferLeader';
  target: NodeId;
}

export type Message =
  | MsgApp
  | MsgAppResp
  | MsgVote
  | MsgVoteResp
  | MsgHeartbeat
  | MsgHeartbeatResp
  | MsgSnap
  | MsgReadIndex
  | MsgReadIndexResp
  | MsgTimeoutNow
  | MsgTransferLeader;

export type MessageType = Message['type'];

export const MESSAGE_TYPES: readonly MessageType[] = [
  'app', 'appResp', 'vote', 'preVote', 'voteResp', 'preVoteResp', 'heartbeat', 'heartbeatResp',
  'snap', 'readIndex', 'readIndexResp', 'timeoutNow', 'transferLeader',
];

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** A linearizable read may be served once the state machine has applied `index`. */
export interface ReadState {
  index: number;
  context: string;
}

export interface SoftState {
  leader: NodeId | null;
  role: Role;
}

/**
 * What the driver must do, in order (etcd raft README, "Usage"):
 * 1. send `messagesNow` (the leader's appends and heartbeats; they depend on nothing unsynced here),
 * 2. durably write `snapshot`, `entries` (an entry at index i replaces every stored entry >= i)
 *    and `hardState`, in one synced batch,
 * 3. only then send `messages`,
 * 4. apply `snapshot` and `committedEntries` to the state machine, serve `readStates`,
 * 5. call advance(ready).
 */
export interface Ready {
  softState: SoftState | null;
  hardState: HardState | null;
  entries: Entry[];
  snapshot: Snapshot | null;
  committedEntries: Entry[];
  messagesNow: Message[];
  messages: Message[];
  readStates: ReadState[];
  /** True when entries, term or vote changed: the write must be fsynced (etcd MustSync). */
  mustSync: boolean;
}
