// The immutable picture of one cluster's keys that the HA loop decides on (Patroni: dcs.Cluster,
// built from one read of the whole prefix each cycle). Pure: a function of the key-values alone.
//
// Parsing is defensive because the keys are writable by anyone with access to the store (patronictl,
// the REST API, an operator with a raw client): a bad value must not stop the HA loop, which would
// turn one typo into an outage. A value that does not parse becomes null (or, for a member, empty
// data, as Patroni's Member.from_node does) and its key is named in `problems`.
import type { KeyValue } from '../raft/kv/commands.ts';

export type JsonObject = Record<string, unknown>;

/** A JSON-valued key and the modRevision to pass back as expectRevision for a compare-and-set. */
export interface Versioned<T> {
  readonly value: T;
  readonly revision: number;
}

export interface LeaderView {
  readonly name: string;
  readonly revision: number;
  /** The lease the key is attached to; revoking it (expiry on the Raft leader) deletes the key. */
  readonly lease: string | null;
}

export interface MemberView {
  readonly name: string;
  readonly data: JsonObject;
  readonly revision: number;
}

export interface ClusterView {
  /** System identifier; "" while bootstrap is in progress (Patroni's convention). */
  readonly initialize: string | null;
  readonly config: Versioned<JsonObject> | null;
  readonly leader: LeaderView | null;
  /** Sorted by name. */
  readonly members: readonly MemberView[];
  readonly failover: Versioned<JsonObject> | null;
  readonly sync: Versioned<JsonObject> | null;
  readonly history: Versioned<unknown[]> | null;
  readonly status: Versioned<JsonObject> | null;
  readonly failsafe: Versioned<JsonObject> | null;
  /** Members an operator removed from the cluster (Conclave's own `removed/<name>` keys), sorted. */
  readonly removed: readonly string[];
  /** One sentence per key whose value could not be used, naming the key. */
  readonly problems: readonly string[];
}

/** The key names under `${namespace}/${scope}/`, as Patroni lays them out (reference §4). */
export const KEYS = {
  initialize: 'initialize',
  config: 'config',
  leader: 'leader',
  membersDir: 'members/',
  failover: 'failover',
  sync: 'sync',
  history: 'history',
  status: 'status',
  failsafe: 'failsafe',
  removedDir: 'removed/',
} as const;

/** Builds the view from the keys under `prefix` (which ends in '/'); keys it does not know are ignored. */
export function parseClusterView(prefix: string, kvs: readonly KeyValue[]): ClusterView {
  const problems: string[] = [];
  const byName = new Map<string, KeyValue>();
  for (const kv of kvs) if (kv.key.startsWith(prefix)) byName.set(kv.key.slice(prefix.length), kv);

  const json = <T>(name: string, accept: (v: unknown) => v is T, shape: string): Versioned<T> | null => {
    const kv = byName.get(name);
    if (!kv) return null;
    const value = parseJson(kv.value);
    if (value === undefined || !accept(value)) {
      problems.push(`${kv.key}: value is not a JSON ${shape}; ignored`);
      return null;
    }
    return { value, revision: kv.modRevision };
  };

  const members: MemberView[] = [];
  for (const [name, kv] of byName) {
    if (!name.startsWith(KEYS.membersDir)) continue;
    const member = name.slice(KEYS.membersDir.length);
    if (member === '' || member.includes('/')) continue;
    const data = parseJson(kv.value);
    if (data === undefined || !isObject(data)) problems.push(`${kv.key}: value is not a JSON object; member kept with empty data`);
    members.push({ name: member, data: isObject(data) ? data : {}, revision: kv.modRevision });
  }
  members.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const removed = [...byName.keys()].filter((k) => k.startsWith(KEYS.removedDir) && k.length > KEYS.removedDir.length).map((k) => k.slice(KEYS.removedDir.length)).sort();

  const leaderKv = byName.get(KEYS.leader);
  return {
    initialize: byName.get(KEYS.initialize)?.value ?? null,
    config: json(KEYS.config, isObject, 'object'),
    // The leader key holds the bare member name, not JSON (Patroni).
    leader: leaderKv ? { name: leaderKv.value, revision: leaderKv.modRevision, lease: leaderKv.lease } : null,
    members,
    failover: json(KEYS.failover, isObject, 'object'),
    sync: json(KEYS.sync, isObject, 'object'),
    history: json(KEYS.history, Array.isArray, 'array'),
    status: json(KEYS.status, isObject, 'object'),
    failsafe: json(KEYS.failsafe, isObject, 'object'),
    removed,
    problems,
  };
}

/** undefined when the text is not JSON (null is a valid JSON value). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
