// The HTTP client of conclavectl: one undici Agent (TLS settings from the configuration and -k),
// Basic auth on every REST request, a timeout on every request, and failures turned into
// CliErrors whose one-line message names the address and what went wrong.
import { Agent, request } from 'undici';
import { AUTH_HEADER } from '../raft/transport/auth.ts';
import type { RaftAuth } from '../raft/transport/auth.ts';
import { CliError } from './errors.ts';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

export interface TlsOptions {
  /** -k: accept any certificate. */
  readonly insecure: boolean;
  /** PEM texts (already read from their files). */
  readonly ca: string | null;
  readonly cert: string | null;
  readonly key: string | null;
  readonly passphrase: string | null;
}

export interface HttpResponse {
  readonly url: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly text: string;
}

export interface RequestOptions {
  /** Sent as JSON. */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** 0: wait as long as it takes (a switchover the member follows to its end). Default 5 s. */
  readonly timeoutMs?: number;
  /** Send the REST credentials (default true), none (false), or sign as for a Raft port ('raft'). */
  readonly auth?: boolean | 'raft';
}

export const DEFAULT_TIMEOUT_MS = 5000;

export class HttpClient {
  private readonly dispatcher: Agent;
  private readonly authHeader: string | null;
  /** Signs requests to the Raft ports with the cluster secret (raft.password), when the config has one. */
  raftAuth: RaftAuth | null = null;

  constructor(auth: Credentials | null, tls: TlsOptions) {
    this.authHeader = auth ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` : null;
    this.dispatcher = new Agent({
      connect: {
        rejectUnauthorized: !tls.insecure,
        ...(tls.ca ? { ca: tls.ca } : {}),
        ...(tls.cert ? { cert: tls.cert } : {}),
        ...(tls.key ? { key: tls.key } : {}),
        ...(tls.passphrase ? { passphrase: tls.passphrase } : {}),
      },
    });
  }

  async request(method: string, url: string, opts: RequestOptions = {}): Promise<HttpResponse> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (this.authHeader && opts.auth !== false && opts.auth !== 'raft') headers.authorization = this.authHeader;
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const target = new URL(url);
    const raftAuth = opts.auth === 'raft' ? this.raftAuth : null;
    try {
      for (let attempt = 0; ; attempt++) {
        const signed = raftAuth?.sign(target.origin, method, target.pathname + target.search, body === undefined ? null : Buffer.from(body));
        if (signed) headers[AUTH_HEADER] = signed.header;
        const res = await this.send(method, url, headers, body, timeoutMs);
        raftAuth?.learn(target.origin, res.headers);
        // A Raft port that has not told us its epoch yet refuses the first signed request with it.
        if (signed && attempt === 0 && res.status === 401 && res.text.includes('ERR_AUTH_EPOCH')) continue;
        return res;
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${timeoutMs / 1000} s` : e.code ?? e.message;
      throw new CliError('ERR_UNREACHABLE', `${method} ${url}: ${why}`, { cause: err });
    }
  }

  private async send(method: string, url: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number): Promise<HttpResponse> {
    const res = await request(url, {
      method: method as 'GET',
      headers,
      body,
      dispatcher: this.dispatcher,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      ...(timeoutMs > 0 ? { signal: AbortSignal.timeout(timeoutMs) } : {}),
    });
    const text = await res.body.text();
    const flat: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) flat[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    return { url, status: res.statusCode, headers: flat, text };
  }

  async close(): Promise<void> {
    await this.dispatcher.close().catch(() => undefined);
  }
}

/** The first line of a response body, shortened: what an error message quotes. */
export function bodyLine(res: HttpResponse): string {
  let text = res.text.trim();
  try {
    const j = JSON.parse(text) as { message?: unknown; error?: unknown };
    if (typeof j.message === 'string') text = j.message;
    else if (typeof j.error === 'string') text = j.error;
  } catch {
    // plain text
  }
  const line = text.split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

export function apiError(res: HttpResponse, what: string): CliError {
  const hint = res.status === 404 ? ' (endpoint missing: is this agent older than conclavectl?)' : res.status === 401 ? ' (check ctl.authentication or restapi.authentication, or CONCLAVE_CTL_USERNAME / CONCLAVE_CTL_PASSWORD)' : '';
  const body = bodyLine(res);
  return new CliError('ERR_API', `${what}: ${res.url} answered ${res.status}${body ? ` ${body}` : ''}${hint}`);
}

export function parseJson<T>(res: HttpResponse, what: string): T {
  try {
    return JSON.parse(res.text) as T;
  } catch {
    throw new CliError('ERR_API', `${what}: ${res.url} answered ${res.status} with a body that is not JSON`);
  }
}
