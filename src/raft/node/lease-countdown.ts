// The leader's lease countdowns: the lease rule (README, "Lease rule") in one place.
//
// A lease's expiry is decided only by the current Raft leader, on its own monotonic clock, and
// becomes real only as a revoke committed to the log. The countdown restarts whenever a grant or
// keep-alive is applied here, and for every lease when this node becomes leader: a new leader has
// no idea how long ago the last renewal was sent, so it grants the full TTL again. The holder, for
// its part, counts from the moment it *sent* its last successful renewal, which is never later
// than when the leader applied it, so the holder's view expires first.
//
// The revoke carries the renewal count the leader saw; if a renewal commits in between, the
// state machine refuses the revoke (a renewal always wins a race with expiry).
export interface LeaseInfo {
  lease: string;
  ttlMs: number;
  renewals: number;
}

interface Countdown {
  deadline: number;
  renewals: number;
  revoking: boolean;
}

export class LeaseCountdown {
  private readonly leases = new Map<string, Countdown>();
  private readonly now: () => number;

  /** `now` must be monotonic (performance.now), never wall time. */
  constructor(now: () => number) {
    this.now = now;
  }

  /** This node became leader: every lease gets its full TTL from now. */
  restartAll(leases: LeaseInfo[]): void {
    this.leases.clear();
    for (const l of leases) this.renewed(l);
  }

  /** This node is no longer leader: it decides nothing about leases. */
  clear(): void {
    this.leases.clear();
  }

  /** A grant or keep-alive was applied. */
  renewed(l: LeaseInfo): void {
    this.leases.set(l.lease, { deadline: this.now() + l.ttlMs, renewals: l.renewals, revoking: false });
  }

  /** The lease was revoked (by anyone): nothing left to count. */
  gone(lease: string): void {
    this.leases.delete(lease);
  }

  /** A revoke was refused or failed to commit: the next tick may try again. */
  revokeFailed(lease: string): void {
    const c = this.leases.get(lease);
    if (c) c.revoking = false;
  }

  /** Leases past their deadline with no revoke under way; each is marked as being revoked. */
  expired(): { lease: string; renewals: number }[] {
    const now = this.now();
    const out: { lease: string; renewals: number }[] = [];
    for (const [lease, c] of this.leases) {
      if (c.revoking || c.deadline > now) continue;
      c.revoking = true;
      out.push({ lease, renewals: c.renewals });
    }
    return out;
  }

  /** Milliseconds until the lease expires on this leader's clock, or null if not counted here. */
  remaining(lease: string): number | null {
    const c = this.leases.get(lease);
    return c ? Math.max(0, c.deadline - this.now()) : null;
  }
}
