// Virtual time: events ordered by time, ties broken by insertion order, so a run is a pure
// function of its seed.
interface Scheduled {
  at: number;
  seq: number;
  run: () => void;
}

export class EventQueue {
  now = 0;
  private heap: Scheduled[] = [];
  private seq = 0;

  at(time: number, run: () => void): void {
    this.push({ at: Math.max(time, this.now), seq: this.seq++, run });
  }

  after(delay: number, run: () => void): void {
    this.at(this.now + delay, run);
  }

  /** Runs events up to and including `until` (at most `maxEvents`); returns how many ran. */
  runUntil(until: number, maxEvents = Infinity): number {
    let n = 0;
    while (this.heap.length > 0 && this.heap[0].at <= until && n < maxEvents) {
      const ev = this.pop();
      this.now = ev.at;
      ev.run();
      n++;
    }
    if (n < maxEvents) this.now = Math.max(this.now, until);
    return n;
  }

  private less(a: Scheduled, b: Scheduled): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(ev: Scheduled): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): Scheduled {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
