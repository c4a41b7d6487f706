import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SortedKeys } from './sorted-keys.ts';
import { Prng } from '../../../test/jepsen-like/sim/prng.ts';

/** The obvious implementation the blocks must agree with: one sorted array. */
class Reference {
  keys: string[] = [];
  insert(k: string): void {
    this.keys.push(k);
    this.keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
  remove(k: string): boolean {
    const i = this.keys.indexOf(k);
    if (i < 0) return false;
    this.keys.splice(i, 1);
    return true;
  }
  withPrefix(p: string): string[] {
    return this.keys.filter((k) => k.startsWith(p));
  }
  removePrefix(p: string): string[] {
    const out = this.withPrefix(p);
    this.keys = this.keys.filter((k) => !k.startsWith(p));
    return out;
  }
}

describe('sorted keys', () => {
  it('agrees with a plain sorted array through thousands of random inserts, removals and prefix deletes', () => {
    // Enough keys that blocks split many times, and prefix deletes that span and empty whole blocks.
    const rng = new Prng(7);
    const keys = new SortedKeys();
    const ref = new Reference();
    const present = new Set<string>();
    const randomKey = (): string => `/${rng.int(4)}/${rng.int(40)}/${rng.int(60)}`;
    const randomPrefix = (): string => ['', `/${rng.int(4)}`, `/${rng.int(4)}/${rng.int(40)}/`, `/${rng.int(4)}/${rng.int(40)}/${rng.int(60)}`, '/9'][rng.int(5)];
    let largest = 0;
    for (let step = 0; step < 6000; step++) {
      const roll = rng.next();
      if (roll < 0.7) {
        const k = randomKey();
        if (present.has(k)) continue;
        present.add(k);
        keys.insert(k);
        ref.insert(k);
      } else if (roll < 0.95) {
        const k = randomKey();
        assert.equal(keys.remove(k), ref.remove(k), `remove ${k} at step ${step}`);
        present.delete(k);
      } else if (roll < 0.99) {
        const p = randomPrefix();
        assert.deepEqual(keys.withPrefix(p), ref.withPrefix(p), `withPrefix ${JSON.stringify(p)} at step ${step}`);
      } else {
        const p = rng.chance(0.9) ? `/${rng.int(4)}/${rng.int(40)}/` : randomPrefix();
        const removed = keys.removePrefix(p);
        assert.deepEqual(removed, ref.removePrefix(p), `removePrefix ${JSON.stringify(p)} at step ${step}`);
        for (const k of removed) present.delete(k);
      }
      assert.equal(keys.size, ref.keys.length);
      largest = Math.max(largest, ref.keys.length);
    }
    assert.ok(largest > 2000, `at most ${largest} keys at once: the blocks must have split several times`);
    assert.deepEqual(keys.all(), ref.keys);
  });

  it('appends keys loaded in order and then inserts among them', () => {
    const keys = new SortedKeys();
    const loaded = Array.from({ length: 1200 }, (_, i) => `k${String(i * 2).padStart(5, '0')}`);
    for (const k of loaded) keys.append(k);
    keys.insert('k00001');
    keys.insert('k99999');
    keys.insert('a');
    assert.deepEqual(keys.all(), ['a', loaded[0], 'k00001', ...loaded.slice(1), 'k99999']);
    assert.deepEqual(keys.withPrefix('k0000'), ['k00000', 'k00001', 'k00002', 'k00004', 'k00006', 'k00008']);
    // 'k00…' spans the first blocks and ends inside one: cut across block boundaries.
    const expected = ['k00000', 'k00001', ...loaded.slice(1).filter((k) => k.startsWith('k00'))];
    assert.ok(expected.length > 500);
    assert.deepEqual(keys.removePrefix('k00'), expected);
    assert.deepEqual(keys.all(), ['a', ...loaded.filter((k) => !k.startsWith('k00')), 'k99999']);
    assert.equal(keys.size, keys.all().length);
  });
});
