// Mutual TLS between members, the option beside the shared secret (auth.ts): each member serves
// its Raft port over HTTPS with its certificate, presents the same certificate as a client, and
// accepts only peers whose certificate the cluster's CA signed. Refused at the handshake, a
// stranger never reaches a route.
import { readFileSync } from 'node:fs';
import { Agent } from 'undici';

export interface RaftTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

/** Reads the three PEM files; an unreadable one is named by its config key. */
export function readRaftTls(files: { certfile: string; keyfile: string; cafile: string }): RaftTls {
  const read = (path: string, key: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`raft.${key}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  return { cert: read(files.certfile, 'certfile'), key: read(files.keyfile, 'keyfile'), ca: read(files.cafile, 'cafile') };
}

/** fastify's `https` option for the Raft port: a client certificate is required at the handshake. */
export function raftServerTls(tls: RaftTls): Record<string, unknown> {
  return { cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true, rejectUnauthorized: true };
}

/** undici `connect` options for requests to other members. */
export function raftConnectTls(tls: RaftTls | null): Record<string, unknown> {
  return tls ? { cert: tls.cert, key: tls.key, ca: tls.ca, rejectUnauthorized: true } : {};
}

/** A dispatcher for one-off requests to members over mutual TLS. */
export function raftTlsAgent(tls: RaftTls): Agent {
  return new Agent({ connect: raftConnectTls(tls), keepAliveTimeout: 30_000 });
}
