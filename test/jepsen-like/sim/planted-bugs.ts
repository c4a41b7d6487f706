// Known Raft bugs, planted on purpose to show that the simulator's checkers catch them. Each
// returns an undo function. They patch the core's prototypes in this process only.
import { RaftLog } from '../../../src/raft/core/log.ts';
import type { Entry } from '../../../src/raft/core/types.ts';
import { LeaseCountdown } from '../../../src/raft/node/lease-countdown.ts';
import type { LeaseInfo } from '../../../src/raft/node/lease-countdown.ts';

export type PlantedBug = 'commit-old-term' | 'forget-vote' | 'truncate-on-stale-append' | 'lease-no-restart';
export const PLANTED_BUGS: readonly PlantedBug[] = ['commit-old-term', 'forget-vote', 'truncate-on-stale-append', 'lease-no-restart'];

/** Figure 8: commit whatever a quorum holds, whatever its term. */
function commitOldTerm(): () => void {
  const original = RaftLog.prototype.maybeCommit;
  RaftLog.prototype.maybeCommit = function (this: RaftLog, maxIndex: number): boolean {
    if (maxIndex > this.committed) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  };
  return () => {
    RaftLog.prototype.maybeCommit = original;
  };
}

/** A follower that treats every append as authoritative and cuts its log after it. */
function truncateOnStaleAppend(): () => void {
  const original = RaftLog.prototype.maybeAppend;
  RaftLog.prototype.maybeAppend = function (this: RaftLog, index: number, logTerm: number, committed: number, ents: Entry[]): number | null {
    if (!this.matchTerm(index, logTerm)) return null;
    const lastNew = index + ents.length;
    if (ents.length > 0) this.unstable.truncateAndAppend(ents);
    if (committed > this.committed) this.committed = Math.min(committed, lastNew);
    return lastNew;
  };
  return () => {
    RaftLog.prototype.maybeAppend = original;
  };
}

/** Breaks the lease rule: a new leader does not restart countdowns, it expires every lease at once. */
function leaseNoRestart(): () => void {
  const original = LeaseCountdown.prototype.restartAll;
  LeaseCountdown.prototype.restartAll = function (this: LeaseCountdown, leases: LeaseInfo[]): void {
    for (const l of leases) this.renewed({ ...l, ttlMs: 0 });
  };
  return () => {
    LeaseCountdown.prototype.restartAll = original;
  };
}

/**
 * Applies a bug and returns its undo. `forget-vote` lives in the driver's write path (the
 * durable hard state drops its vote), so it is a simulation option rather than a patch.
 */
export function plant(bug: PlantedBug): { undo: () => void; forgetVote: boolean } {
  switch (bug) {
    case 'commit-old-term':
      return { undo: commitOldTerm(), forgetVote: false };
    case 'truncate-on-stale-append':
      return { undo: truncateOnStaleAppend(), forgetVote: false };
    case 'forget-vote':
      return { undo: () => {}, forgetVote: true };
    case 'lease-no-restart':
      return { undo: leaseNoRestart(), forgetVote: false };
  }
}
