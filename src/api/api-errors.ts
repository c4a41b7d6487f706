// The REST API's errors and the one table that maps error codes to HTTP statuses (STYLE.md: callers
// match on codes, never on messages). A refusal the handler decides itself is an ApiError with its
// status; anything thrown from below (the store, PostgreSQL) is mapped here by its code.
import type { FastifyReply } from 'fastify';
import { checkNesting } from '../ha/config/load.ts';
import { ConfigError } from '../ha/config/types.ts';

/** A request refused on purpose: `status` and the sentence that names the problem. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/**
 * Codes from the layers below. Whatever means "the store did not answer" (a RaftError: no leader,
 * timeout, stopped; a stale read) is 503, as Patroni answers when its DCS is down; a command the
 * store refused as malformed or too big is the client's to fix.
 */
const STATUS_BY_CODE: Record<string, number> = {
  ERR_TOO_LARGE: 413,
  ERR_BAD_MESSAGE: 400,
  ERR_BAD_CONFIG: 400,
};

/** Status and sentence for anything a handler threw. */
export function describeFailure(err: unknown): { status: number; message: string } {
  if (err instanceof ApiError) return { status: err.status, message: err.message };
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const status = typeof code === 'string' ? STATUS_BY_CODE[code] : undefined;
  if (status !== undefined) return { status, message };
  return { status: 503, message: `the cluster store is unavailable: ${typeof code === 'string' ? `${code}: ` : ''}${message}` };
}

export function sendText(reply: FastifyReply, status: number, text: string): FastifyReply {
  return reply.code(status).type('text/plain; charset=utf-8').send(text);
}

export function sendFailure(reply: FastifyReply, err: unknown): FastifyReply {
  const { status, message } = describeFailure(err);
  return sendText(reply, status, message);
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The request body as a JSON object; absent means {} when `optional`. Refused when nested deeper
 * than any real request (400 naming where, with `name` as the root): a 1 MiB body can nest 500,000
 * levels, and whatever walks it next (a merge, JSON.stringify in a message) would overflow the stack.
 */
export function objectBody(body: unknown, optional: boolean, name = 'body'): Record<string, unknown> {
  if (optional && (body === undefined || body === null || body === '')) return {};
  if (!isObject(body)) throw new ApiError(400, 'the body must be a JSON object');
  try {
    checkNesting(body, name);
  } catch (err) {
    if (err instanceof ConfigError) throw new ApiError(400, err.message);
    throw err;
  }
  return body;
}
