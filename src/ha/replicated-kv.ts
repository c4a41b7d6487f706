// What the cluster store needs from the replicated key-value store, and nothing more. RaftNode
// satisfies it as it is; keeping the HA layer on this interface (STYLE.md: "the HA logic talks to
// the cluster store only through one interface") lets it be tested without Raft's insides.
import type { KeyValue, KvOp, KvResult, LeaseInfo } from '../raft/kv/commands.ts';
import type { KeyChange } from '../raft/kv/state-machine.ts';

/** Local reads of the applied state; linearizable only after readBarrier() has resolved. */
export interface KvReader {
  /** The log index of the last entry applied to this state. */
  readonly appliedIndex: number;
  get(key: string): KeyValue | null;
  range(prefix: string): KeyValue[];
  lease(id: string): LeaseInfo | null;
}

export type ChangesListener = (changes: KeyChange[], index: number) => void;

export interface ReplicatedKv {
  /**
   * Replicates one operation; resolves once applied on this member. Rejects with RaftError
   * (ERR_NOT_LEADER on a follower, ERR_TIMEOUT, ERR_PROPOSAL_DROPPED, ERR_STOPPED).
   */
  propose(op: KvOp): Promise<KvResult>;
  /** Resolves once this member has applied everything committed before the call (ReadIndex). */
  readBarrier(): Promise<void>;
  readonly state: KvReader;
  /** Fired on every member for each applied entry that changed keys. */
  on(event: 'changes', listener: ChangesListener): unknown;
  off(event: 'changes', listener: ChangesListener): unknown;
}
