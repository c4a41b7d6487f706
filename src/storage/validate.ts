// Consistency rules a loaded Raft store must meet before the node may run on it. A node that
// started from a log with a hole, a term going backwards or a commit index past its log would
// break Raft's safety argument silently (Log Matching, Raft paper §5.3; the persisted state of
// Figure 2), so the store stops with a precise description instead (STYLE.md: invariants stop
// the node). Pure: it judges decoded records and touches no disk.
import type { Entry, HardState, SnapshotMeta } from '../raft/core/types.ts';

export interface StoredEntry {
  /** The index the LevelDB key stands for. */
  keyIndex: number;
  entry: Entry;
}

export interface StoredState {
  hardState: HardState;
  snapshotMeta: SnapshotMeta | null;
  /** Every stored entry in key order, including any the snapshot already covers. */
  stored: StoredEntry[];
}

/** The first thing wrong with a stored state, in words for an operator, or null if it is sound. */
export function findInconsistency({ hardState, snapshotMeta, stored }: StoredState): string | null {
  return checkEntries(stored) ?? checkAgainstSnapshot(stored, snapshotMeta) ?? checkHardState(hardState, stored, snapshotMeta);
}

function checkEntries(stored: StoredEntry[]): string | null {
  for (let k = 0; k < stored.length; k++) {
    const { keyIndex, entry } = stored[k];
    if (entry.index !== keyIndex) return `the entry stored under log index ${keyIndex} says it is index ${entry.index}`;
    if (k === 0) continue;
    const prev = stored[k - 1];
    if (keyIndex !== prev.keyIndex + 1) {
      return `gap in the log: entry ${prev.keyIndex} is followed by entry ${keyIndex} (entries ${prev.keyIndex + 1}..${keyIndex - 1} are missing)`;
    }
    if (entry.term < prev.entry.term) {
      return `terms go down along the log: entry ${keyIndex} has term ${entry.term} after term ${prev.entry.term} at entry ${prev.keyIndex}`;
    }
  }
  return null;
}

// Without a snapshot the log starts from the empty point (index 0, term 0), so the same rules
// demand that it starts at entry 1. Entries at or below the snapshot index may remain until
// compact() removes them (saveSnapshot keeps them); they must still agree with the snapshot.
function checkAgainstSnapshot(stored: StoredEntry[], snap: SnapshotMeta | null): string | null {
  if (stored.length === 0) return null;
  const base = snap ?? { index: 0, term: 0 };
  const first = stored[0].keyIndex;
  const last = stored[stored.length - 1].keyIndex;
  if (first > base.index + 1) {
    return snap
      ? `the log starts at entry ${first} but the snapshot ends at index ${base.index}, so it must start at ${base.index + 1} or earlier`
      : `the log starts at entry ${first} but there is no snapshot, so it must start at entry 1`;
  }
  if (last < base.index) return `the log ends at entry ${last}, before the snapshot index ${base.index}`;
  const atBase = stored[base.index - first];
  if (atBase && atBase.entry.term !== base.term) {
    return `entry ${base.index} has term ${atBase.entry.term} but the snapshot ending there has term ${base.term}`;
  }
  const next = stored[base.index + 1 - first];
  if (next && next.entry.term < base.term) {
    return `entry ${next.keyIndex} has term ${next.entry.term}, below the term ${base.term} of the snapshot it follows`;
  }
  return null;
}

// Commit can only name an index the node holds (Figure 2: commitIndex ≤ last log index), and a
// node only accepts entries of terms it has seen, so currentTerm ≥ the last entry's term.
function checkHardState(hs: HardState, stored: StoredEntry[], snap: SnapshotMeta | null): string | null {
  const lastEntry = stored.length > 0 ? stored[stored.length - 1].entry : null;
  const useEntry = lastEntry !== null && lastEntry.index > (snap?.index ?? 0);
  const lastIndex = useEntry ? lastEntry.index : snap?.index ?? 0;
  const lastTerm = useEntry ? lastEntry.term : snap?.term ?? 0;
  const where = useEntry ? `last log entry ${lastIndex}` : snap ? `snapshot at index ${lastIndex}` : 'empty log';
  if (hs.commit > lastIndex) return `hard state commit ${hs.commit} is beyond the last index ${lastIndex} (${where})`;
  if (hs.term < lastTerm) return `hard state term ${hs.term} is below term ${lastTerm} of the ${where}`;
  return null;
}
