// A standalone Raft node process serving the replicated key-value store: what the real-process
// tests and `npm run bench:raft` start. The HA agent (src/ha) embeds RaftNode the same way.
//
//   node --import tsx src/raft/node/main.ts --id n1 --listen 127.0.0.1:7001 \
//     --peers n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7002,n3=http://127.0.0.1:7003 \
//     --data-dir data/n1 [--tick-ms 10 --election-ticks 10 --heartbeat-ticks 1 --join]
import Fastify from 'fastify';
import pino from 'pino';
import { RaftNode } from './raft-node.ts';
import { registerKvApi } from './kv-http.ts';

const USAGE = 'usage: main.ts --id ID --listen HOST:PORT --peers ID=URL,... --data-dir DIR [--tick-ms N] [--election-ticks N] [--heartbeat-ticks N] [--join] [--exit-with-stdin]';

function fail(message: string): never {
  process.stderr.write(`raft-node: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parse(argv: string[]) {
  const out = { id: '', listen: '', peers: {} as Record<string, string>, dataDir: '', tickMs: 10, electionTicks: 30, heartbeatTicks: 5, join: false, exitWithStdin: false };
  const int = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) fail(`${flag} needs a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const next = (): string => argv[++i] ?? fail(`${flag} needs a value`);
    switch (flag) {
      case '--id': out.id = next(); break;
      case '--listen': out.listen = next(); break;
      case '--data-dir': out.dataDir = next(); break;
      case '--tick-ms': out.tickMs = int(flag, next()); break;
      case '--election-ticks': out.electionTicks = int(flag, next()); break;
      case '--heartbeat-ticks': out.heartbeatTicks = int(flag, next()); break;
      case '--join': out.join = true; break;
      case '--exit-with-stdin': out.exitWithStdin = true; break;
      case '--peers':
        for (const pair of next().split(',')) {
          const eq = pair.indexOf('=');
          if (eq <= 0) fail(`--peers entry ${JSON.stringify(pair)} is not ID=URL`);
          const url = pair.slice(eq + 1);
          try {
            new URL(url);
          } catch {
            fail(`--peers entry ${JSON.stringify(pair)} has an invalid URL`);
          }
          out.peers[pair.slice(0, eq)] = url;
        }
        break;
      case '--help': process.stdout.write(`${USAGE}\n`); process.exit(0); break;
      default: fail(`unknown argument ${JSON.stringify(flag)}`);
    }
  }
  if (!out.id) fail('--id is required');
  if (!out.dataDir) fail('--data-dir is required');
  if (!/^[^:]+:\d+$/.test(out.listen)) fail(`--listen must be HOST:PORT, got ${JSON.stringify(out.listen)}`);
  if (!out.join && !out.peers[out.id]) fail(`--peers must include this node (${out.id})`);
  if (out.heartbeatTicks >= out.electionTicks) fail('--heartbeat-ticks must be below --election-ticks');
  return out;
}

const args = parse(process.argv.slice(2));
const logger = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { node: args.id } }, pino.destination(2));
const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
const [host, port] = [args.listen.slice(0, args.listen.lastIndexOf(':')), Number(args.listen.slice(args.listen.lastIndexOf(':') + 1))];

let node: RaftNode;
try {
  node = await RaftNode.start({ id: args.id, dataDir: args.dataDir, peers: args.peers, join: args.join, tickMs: args.tickMs, electionTicks: args.electionTicks, heartbeatTicks: args.heartbeatTicks, logger }, app);
} catch (err) {
  logger.fatal({ err }, 'cannot start');
  process.stderr.write(`raft-node: cannot start: ${(err as Error).message}\n`);
  process.exit(1);
}
registerKvApi(app, node);
node.on('fatal', () => process.exit(1));
await app.listen({ host, port });
process.stdout.write(`${JSON.stringify({ event: 'listening', id: args.id, url: `http://${args.listen}` })}\n`);

let stopping = false;
const shutdown = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await app.close();
  await node.stop();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
// A supervisor that dies without stopping us (kill -9) closes our stdin: stop with it.
if (args.exitWithStdin) {
  process.stdin.on('end', () => void shutdown());
  process.stdin.resume();
}
process.on('SIGINT', () => void shutdown());
