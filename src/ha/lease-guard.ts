// The primary's side of the lease rule. The Raft leader can revoke our leader lease no earlier
// than the TTL after it applied our last renewal, so no earlier than the TTL after we *sent* it;
// ClusterStore reports that instant as leaseExpiresAt. The guard stops PostgreSQL a safety
// margin before it, from a timer of its own: an HA cycle stuck in a slow store call or a slow
// query cannot delay the demotion past the moment another member may be promoted.
//
// The margin covers the time from the timer firing to PostgreSQL refusing writes (a SIGQUIT to the
// postmaster, which stops every backend at once) plus timer lateness on a busy event loop.

/** Something outside this process that stops PostgreSQL at a deadline (fence/fence.ts). */
export interface OutsideFence {
  arm(deadline: number): void;
  disarm(): void;
}

export interface LeaseGuardOptions {
  /** Monotonic milliseconds. */
  now: () => number;
  marginMs: number;
  /**
   * Told each deadline too, half the margin later than our own timer: it acts only when this
   * process could not (frozen, killed), and still before the lease can expire anywhere.
   */
  fence?: OutsideFence;
  /** Stops PostgreSQL at once; called at most once per armed deadline. */
  onExpiry: (lateByMs: number) => void;
}

export class LeaseGuard {
  private readonly opts: LeaseGuardOptions;
  private timer: NodeJS.Timeout | null = null;
  private deadline: number | null = null;

  constructor(opts: LeaseGuardOptions) {
    this.opts = opts;
  }

  /** The instant PostgreSQL must be read-only by, or null when no lease is held. */
  get demoteBy(): number | null {
    return this.deadline === null ? null : this.deadline - this.opts.marginMs;
  }

  /** A renewal succeeded: PostgreSQL may stay writable until `leaseExpiresAt` minus the margin. */
  arm(leaseExpiresAt: number): void {
    this.disarm();
    this.deadline = leaseExpiresAt;
    const delay = Math.max(0, leaseExpiresAt - this.opts.marginMs - this.opts.now());
    this.timer = setTimeout(() => this.fire(), delay);
    this.opts.fence?.arm(leaseExpiresAt - this.opts.marginMs / 2);
  }

  /** The lease was released or is known lost (the caller demotes itself in that case). */
  disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.deadline = null;
    this.opts.fence?.disarm();
  }

  /** True while a lease is held and its demotion instant has not passed. */
  valid(): boolean {
    const by = this.demoteBy;
    return by !== null && this.opts.now() < by;
  }

  private fire(): void {
    const by = this.demoteBy;
    this.timer = null;
    this.deadline = null;
    this.opts.onExpiry(by === null ? 0 : this.opts.now() - by);
  }
}
