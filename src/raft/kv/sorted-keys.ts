// The key-value store's keys in sorted order (UTF-16 code unit order, JavaScript's `<`), for
// range reads, prefix deletes and snapshots. A single sorted array made every new key a splice
// of the whole array: with 100,000 keys that was about a tenth of a busy node's CPU. Here the
// keys live in blocks of at most MAX_BLOCK, so an insert or removal moves at most one block's
// elements plus a binary search over the blocks.

/** A block is split in half when it grows past this; a few hundred keeps splices cheap and blocks few. */
const MAX_BLOCK = 512;

export class SortedKeys {
  /** Non-empty sorted blocks; every key of a block sorts before every key of the next. */
  private blocks: string[][] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds a key that is not present. */
  insert(key: string): void {
    this.count++;
    if (this.blocks.length === 0) {
      this.blocks.push([key]);
      return;
    }
    // The first block whose last key is >= key; past the end, the last block takes it.
    const b = Math.min(this.blockFor(key), this.blocks.length - 1);
    const block = this.blocks[b];
    block.splice(lowerBound(block, key), 0, key);
    if (block.length > MAX_BLOCK) this.blocks.splice(b + 1, 0, block.splice(block.length >>> 1));
  }

  /** Appends a key that sorts after every key present (loading sorted keys from a snapshot). */
  append(key: string): void {
    const last = this.blocks[this.blocks.length - 1];
    if (last === undefined || last.length >= MAX_BLOCK) this.blocks.push([key]);
    else last.push(key);
    this.count++;
  }

  /** Removes a key; false if it was not present. */
  remove(key: string): boolean {
    const b = this.blockFor(key);
    const block = this.blocks[b];
    if (block === undefined) return false;
    const i = lowerBound(block, key);
    if (block[i] !== key) return false;
    block.splice(i, 1);
    if (block.length === 0) this.blocks.splice(b, 1);
    this.count--;
    return true;
  }

  /** The keys starting with `prefix`, in order; the empty prefix gives every key. */
  withPrefix(prefix: string): string[] {
    const out: string[] = [];
    const start = this.blockFor(prefix);
    for (let b = start; b < this.blocks.length; b++) {
      const block = this.blocks[b];
      for (let i = b === start ? lowerBound(block, prefix) : 0; i < block.length; i++) {
        if (!block[i].startsWith(prefix)) return out;
        out.push(block[i]);
      }
    }
    return out;
  }

  /** Removes and returns the keys starting with `prefix`, in order. */
  removePrefix(prefix: string): string[] {
    const removed = this.withPrefix(prefix);
    if (removed.length === 0) return removed;
    // They are contiguous: cut them out of the blocks they span, dropping blocks left empty.
    let b = this.blockFor(prefix);
    let from = lowerBound(this.blocks[b], prefix);
    let left = removed.length;
    while (left > 0) {
      const block = this.blocks[b];
      const n = Math.min(left, block.length - from);
      block.splice(from, n);
      left -= n;
      if (block.length === 0) this.blocks.splice(b, 1);
      else b++;
      from = 0; // later blocks lose keys from their start
    }
    this.count -= removed.length;
    return removed;
  }

  /** Every key, in order. */
  all(): string[] {
    return this.blocks.flat();
  }

  /** Index of the first block whose last key is >= key (blocks.length when none is). */
  private blockFor(key: string): number {
    let lo = 0;
    let hi = this.blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const block = this.blocks[mid];
      if (block[block.length - 1] < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** First position whose key is >= `key`. */
function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
