// Who may change things through the REST API, as in Patroni (reference §1.4): GET, HEAD and
// OPTIONS are open to all (load balancers, monitoring, peers during a race); every other method
// passes, in order, the allowlist (403 "Access is denied"), a client certificate when
// verify_client asks for one (403), and Basic authentication when restapi.authentication is set
// (401 with a Basic challenge). Also the TLS options of the server (restapi.certfile, ...).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { AgentConfig } from '../ha/config/types.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The https options for Fastify when restapi.certfile is set; null for plain HTTP. */
export function httpsOptions(restapi: AgentConfig['restapi']): Record<string, unknown> | null {
  if (restapi.certfile === null) return null;
  const read = (path: string, key: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`restapi.${key}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  const cert = read(restapi.certfile, 'certfile');
  return {
    cert,
    key: restapi.keyfile !== null ? read(restapi.keyfile, 'keyfile') : cert,
    passphrase: restapi.keyfile_password ?? undefined,
    ca: restapi.cafile !== null ? read(restapi.cafile, 'cafile') : undefined,
    // Asked for whenever verify_client is on; refused at the handshake only when required
    // (optional: the guard below refuses mutating requests without one).
    requestCert: restapi.verify_client !== 'none',
    rejectUnauthorized: restapi.verify_client === 'required',
  };
}

export interface WriteGuardOptions {
  restapi: AgentConfig['restapi'];
  /** The hosts of the members' api_url, for allowlist_include_members (looked up when asked). */
  memberHosts?: () => string[];
}

/** Installs the access check on every mutating request. */
export function registerWriteGuard(app: FastifyInstance, opts: WriteGuardOptions): void {
  const { restapi } = opts;
  const expected = restapi.authentication ? digest(`Basic ${Buffer.from(`${restapi.authentication.username}:${restapi.authentication.password}`).toString('base64')}`) : null;
  const listed = restapi.allowlist.length > 0 || restapi.allowlist_include_members;
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (SAFE_METHODS.has(req.method)) return;
    if (listed && !(await allowed(req.ip, restapi, opts.memberHosts))) return reply.code(403).type('text/plain').send('Access is denied');
    if (restapi.verify_client !== 'none' && !hasTrustedClientCert(req.raw.socket as TLSSocket)) return reply.code(403).type('text/plain').send('Access is denied: a valid client certificate is required');
    if (expected === null) return;
    const given = req.headers.authorization;
    if (!given) return reply.code(401).header('WWW-Authenticate', 'Basic realm="Patroni"').type('text/plain').send('no auth header received');
    if (!timingSafeEqual(digest(given), expected)) return reply.code(401).header('WWW-Authenticate', 'Basic realm="Patroni"').type('text/plain').send('not authenticated');
  });
}

/**
 * `authorized` alone is not enough: on the second request of a keep-alive connection Node 20
 * reports it true although no certificate was presented (seen here); a certificate must be there.
 */
function hasTrustedClientCert(socket: TLSSocket): boolean {
  if (typeof socket.getPeerCertificate !== 'function') return false;
  return socket.authorized === true && Object.keys(socket.getPeerCertificate()).length > 0;
}

/** Fixed-length digests, so the comparison takes the same time whatever the header's length. */
const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

async function allowed(ip: string, restapi: AgentConfig['restapi'], memberHosts?: () => string[]): Promise<boolean> {
  const client = ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
  const entries = [...restapi.allowlist, ...(restapi.allowlist_include_members && memberHosts ? memberHosts() : [])];
  const list = new BlockList();
  for (const entry of entries) {
    const [addr, bits] = entry.split('/');
    const addrs = isIP(addr!) !== 0 ? [addr!] : await resolveHost(addr!);
    for (const a of addrs) {
      const family = isIP(a) === 6 ? 'ipv6' : 'ipv4';
      if (bits !== undefined) list.addSubnet(a, Number(bits), family);
      else list.addAddress(a, family);
    }
  }
  const family = isIP(client) === 6 ? 'ipv6' : 'ipv4';
  return isIP(client) !== 0 && list.check(client, family);
}

async function resolveHost(host: string): Promise<string[]> {
  try {
    return (await lookup(host, { all: true })).map((r) => r.address);
  } catch {
    return [];
  }
}
