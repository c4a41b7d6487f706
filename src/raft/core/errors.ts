// Errors of the Raft layer, each with a stable `code` that callers match on (STYLE.md).

export type RaftErrorCode =
  | 'ERR_COMPACTED'
  | 'ERR_UNAVAILABLE'
  | 'ERR_SNAP_OUT_OF_DATE'
  | 'ERR_NOT_LEADER'
  | 'ERR_PROPOSAL_DROPPED'
  | 'ERR_CONF_CHANGE_PENDING'
  | 'ERR_INVARIANT'
  | 'ERR_CORRUPT_STORE'
  | 'ERR_BAD_MESSAGE'
  | 'ERR_STOPPED'
  | 'ERR_TIMEOUT'
  /** The member was removed from the cluster. */
  | 'ERR_REMOVED';

export class RaftError extends Error {
  readonly code: RaftErrorCode;
  /** For ERR_NOT_LEADER: the leader this node knows of, if any. */
  readonly leaderHint: string | null;

  constructor(code: RaftErrorCode, message: string, options: { cause?: unknown; leaderHint?: string | null } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RaftError';
    this.code = code;
    this.leaderHint = options.leaderHint ?? null;
  }
}

/** A broken invariant: the node must stop rather than run on in a corrupt state. */
export function invariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new RaftError('ERR_INVARIANT', `raft invariant broken: ${message}`);
}
