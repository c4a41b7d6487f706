// One signed request to a Raft port, for every client of it but the message stream: forwarded
// proposals, membership requests, status and KV reads. Learns the receiver's epoch from every
// answer; when refused for want of a current one (ERR_AUTH_EPOCH), signs again once and resends.
import { request } from 'undici';
import type { Dispatcher } from 'undici';
import { AUTH_HEADER } from './auth.ts';
import type { RaftAuth } from './auth.ts';

export interface RaftRequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  contentType?: string;
  body?: Buffer | string;
  timeoutMs: number;
  dispatcher?: Dispatcher;
}

export interface RaftResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Rejects with undici's error when the request cannot be made; any HTTP status resolves. */
export async function raftRequest(auth: RaftAuth | null, url: string, opts: RaftRequestOptions): Promise<RaftResponse> {
  const target = new URL(url);
  const method = opts.method ?? 'GET';
  const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : (opts.body ?? null);
  const deadline = performance.now() + opts.timeoutMs;
  const dispatcher = opts.dispatcher ?? auth?.dispatcher() ?? null;
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = {};
    if (opts.contentType) headers['content-type'] = opts.contentType;
    const signed = auth?.sign(target.origin, method, target.pathname + target.search, body);
    if (signed) headers[AUTH_HEADER] = signed.header;
    const left = Math.max(1, Math.ceil(deadline - performance.now()));
    const res = await request(target, {
      method,
      headers,
      body: body ?? undefined,
      headersTimeout: left,
      bodyTimeout: left,
      signal: AbortSignal.timeout(left),
      ...(dispatcher ? { dispatcher } : {}),
    });
    const payload = Buffer.from(await res.body.arrayBuffer());
    auth?.learn(target.origin, res.headers);
    if (attempt === 0 && res.statusCode === 401 && signed && isEpochRefusal(payload)) continue;
    return { status: res.statusCode, headers: res.headers, body: payload };
  }
}

function isEpochRefusal(payload: Buffer): boolean {
  try {
    return (JSON.parse(payload.toString('utf8')) as { error?: unknown }).error === 'ERR_AUTH_EPOCH';
  } catch {
    return false;
  }
}
