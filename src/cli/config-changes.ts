// edit-config's changes to the cluster-wide configuration, as patronictl makes them: `-s a.b=v`
// and `-p name=v` (v read as YAML, null deletes), `--apply` deep-merges a document, and the
// result is sent as a JSON merge patch (PATCH /config: nested maps merged, null deletes). Pure.
import { parse } from 'yaml';
import { usageError } from './errors.ts';

const SEE = 'see: conclavectl edit-config --help';

export type JsonMap = Record<string, unknown>;

export const isMap = (v: unknown): v is JsonMap => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface Assignment {
  readonly path: readonly string[];
  /** null deletes the key. */
  readonly value: unknown;
}

function yamlValue(text: string, what: string): unknown {
  try {
    return parse(text) ?? null;
  } catch (err) {
    throw usageError(`${what}: the value is not valid YAML (${(err as Error).message.split('\n')[0]})`, SEE);
  }
}

/** "-s postgresql.parameters.work_mem=8MB" */
export function parseSet(text: string): Assignment {
  const eq = text.indexOf('=');
  const key = eq < 0 ? '' : text.slice(0, eq).trim();
  const path = key.split('.');
  if (eq < 0 || key === '' || path.some((p) => p === '')) throw usageError(`-s needs KEY=VALUE with a dotted KEY, got ${JSON.stringify(text)}`, SEE);
  return { path, value: yamlValue(text.slice(eq + 1), `-s ${key}`) };
}

/** "-p work_mem=8MB" sets postgresql.parameters.work_mem. */
export function parsePg(text: string): Assignment {
  const eq = text.indexOf('=');
  const name = eq < 0 ? '' : text.slice(0, eq).trim();
  if (name === '') throw usageError(`-p needs NAME=VALUE, got ${JSON.stringify(text)}`, SEE);
  return { path: ['postgresql', 'parameters', name], value: yamlValue(text.slice(eq + 1), `-p ${name}`) };
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Returns a copy of `config` with the assignment made (intermediate maps created as needed). */
export function assign(config: JsonMap, a: Assignment): JsonMap {
  const out = clone(config);
  let node: JsonMap = out;
  for (const part of a.path.slice(0, -1)) {
    if (!isMap(node[part])) {
      if (a.value === null) return out; // deleting under a key that is not there: nothing to do
      node[part] = {};
    }
    node = node[part] as JsonMap;
  }
  const last = a.path[a.path.length - 1];
  if (a.value === null) delete node[last];
  else node[last] = a.value;
  return out;
}

/** Patroni's patch_config: maps merge recursively, null deletes, anything else replaces. */
export function deepMerge(base: JsonMap, patch: JsonMap): JsonMap {
  const out = clone(base);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (isMap(v) && isMap(out[k])) out[k] = deepMerge(out[k] as JsonMap, v);
    else out[k] = clone(v);
  }
  return out;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The merge patch that turns `before` into `after` (RFC 7386 shape); {} when they are equal. */
export function mergePatch(before: JsonMap, after: JsonMap): JsonMap {
  const patch: JsonMap = {};
  for (const k of Object.keys(before)) if (!(k in after)) patch[k] = null;
  for (const [k, v] of Object.entries(after)) {
    const old = before[k];
    if (isMap(v) && isMap(old)) {
      const sub = mergePatch(old, v);
      if (Object.keys(sub).length > 0) patch[k] = sub;
    } else if (!(k in before) || !same(old, v)) {
      patch[k] = v;
    }
  }
  return patch;
}

/** Reads a YAML document meant to be a configuration (a mapping; empty is {}). */
export function parseConfigDocument(text: string, source: string): JsonMap {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw usageError(`${source}: not valid YAML (${(err as Error).message.split('\n')[0]})`, SEE);
  }
  if (doc === null || doc === undefined) return {};
  if (!isMap(doc)) throw usageError(`${source}: expected a mapping of settings at the top level`, SEE);
  return doc;
}
