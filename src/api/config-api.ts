// GET, PATCH and PUT /config: the dynamic configuration in the store's `config` key (Patroni api.py
// do_GET_config / do_PATCH_config / do_PUT_config; reference §1.2, §1.3). Every agent adopts the key
// at its next cycle (ha-loop adoptDynamicConfig), so a write here takes effect by itself; the
// answering agent is woken to adopt it at once.
//
// Unlike Patroni, a write is validated first (validateDynamicConfig): an invalid key would be
// ignored by every agent, which keeps its settings in force, so the operator would never learn
// that the change did nothing. Concurrency: PATCH is a compare-and-set on the revision it read and
// retries a lost race on a fresh read (the merge is re-done on what the other writer wrote); with
// `If-Match: <revision>` (as GET /config's ETag gives it) the client pins the revision and a
// mismatch is 409 instead.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ClusterStore } from '../ha/cluster-store.ts';
import type { HaLoop } from '../ha/ha-loop.ts';
import type { JsonObject } from '../ha/cluster-view.ts';
import { validateDynamicConfig } from '../ha/config/load.ts';
import { ApiError, isObject, objectBody, sendFailure, sendText } from './api-errors.ts';

export interface ConfigApiDeps {
  store: ClusterStore;
  loop: HaLoop;
}

/** How many times PATCH reads, merges and writes before giving up on a busy key (409). */
const PATCH_ATTEMPTS = 8;

/** A short random pause between attempts, so that writers that collided do not collide again. */
const backoff = (attempt: number): Promise<void> => new Promise((r) => setTimeout(r, Math.random() * 20 * (attempt + 1)));

/**
 * Deep merge of `patch` into `base` (a new object; neither is changed): objects merge key by key,
 * a null deletes the key, anything else replaces (Patroni utils.py: patch_config). Nulls inside a
 * new sub-object are dropped rather than stored.
 */
export function mergeConfigPatch(base: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (key === '__proto__') throw new ApiError(400, 'the key "__proto__" is not allowed');
    if (value === null) delete out[key];
    else if (isObject(value)) out[key] = mergeConfigPatch(isObject(out[key]) ? out[key] : {}, value);
    else out[key] = value;
  }
  return out;
}

/** The revision an `If-Match` header names (`7`, `"7"` or `W/"7"`), or null when absent. */
export function ifMatchRevision(header: string | string[] | undefined): number | null {
  if (header === undefined) return null;
  const text = (Array.isArray(header) ? header[0] ?? '' : header).trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
  if (!/^\d{1,15}$/.test(text)) throw new ApiError(400, `If-Match must be the config revision (a number, as GET /config's ETag gives it), got ${JSON.stringify(header)}`);
  return Number(text);
}

/** Refuses a configuration the agents would not adopt, naming the key (400). */
function validate(config: JsonObject): void {
  try {
    validateDynamicConfig(config, 'config');
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BAD_CONFIG') throw new ApiError(400, (err as Error).message);
    throw err;
  }
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export function registerConfigApi(app: FastifyInstance, deps: ConfigApiDeps): void {
  const { store, loop } = deps;

  app.get('/config', async (_req, reply) => {
    try {
      const view = await store.getCluster();
      // Patroni: 502 when the key is missing (a cluster that never finished its bootstrap).
      if (!view.config) return sendText(reply, 502, 'the config key is missing from the store');
      return reply.header('etag', `"${view.config.revision}"`).send(view.config.value);
    } catch (err) {
      return sendFailure(reply, err);
    }
  });

  app.patch('/config', async (req: FastifyRequest, reply: FastifyReply) => {
    try {
      // objectBody refuses deep nesting before mergeConfigPatch recurses into it.
      const patch = objectBody(req.body, false, 'config');
      const pinned = ifMatchRevision(req.headers['if-match']);
      for (let attempt = 0; attempt < PATCH_ATTEMPTS; attempt++) {
        const view = await store.getCluster();
        if (!view.config) return sendText(reply, 503, 'the config key is missing from the store; PUT /config writes a whole one');
        if (pinned !== null && view.config.revision !== pinned) return sendText(reply, 409, `the config changed meanwhile: its revision is ${view.config.revision}, not ${pinned}`);
        const merged = mergeConfigPatch(view.config.value, patch);
        validate(merged);
        if (sameJson(merged, view.config.value)) return reply.header('etag', `"${view.config.revision}"`).send(merged);
        if (await store.setConfig(merged, view.config.revision)) {
          loop.wake();
          return reply.send(merged);
        }
        if (pinned !== null) return sendText(reply, 409, `the config changed meanwhile: revision ${pinned} is no longer current`);
        await backoff(attempt);
      }
      return sendText(reply, 409, `the config kept changing under this request (${PATCH_ATTEMPTS} attempts); try again`);
    } catch (err) {
      return sendFailure(reply, err);
    }
  });

  app.put('/config', async (req: FastifyRequest, reply: FastifyReply) => {
    try {
      const config = objectBody(req.body, false, 'config');
      const pinned = ifMatchRevision(req.headers['if-match']);
      validate(config);
      // Patroni writes unconditionally; with If-Match it is a compare-and-set (revision 0: create only).
      const written = pinned === null ? await store.setConfig(config) : await store.setConfig(config, pinned);
      if (!written) return sendText(reply, 409, `the config changed meanwhile: revision ${pinned} is no longer current`);
      loop.wake();
      return reply.send(config);
    } catch (err) {
      return sendFailure(reply, err);
    }
  });
}
