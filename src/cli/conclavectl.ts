// conclavectl: the operator's command line, patronictl's commands over the members' REST API
// (reference §2) plus the consensus group's own (raft ...). This file parses, dispatches and
// turns every failure into one line `conclavectl: <reason>` and an exit status: 2 for a wrong
// command line (with usage), 1 for anything else. The commands live in ./commands/.
import { createInterface } from 'node:readline';
import { parseArgs, commandUsage, globalUsage } from './args.ts';
import type { Parsed } from './args.ts';
import { CliError, EXIT_STATUS } from './errors.ts';
import { HttpClient } from './http.ts';
import { confirm, openContext, raftUrls } from './context.ts';
import type { Ctx, Io } from './context.ts';
import { list } from './commands/list.ts';
import { failover, switchover } from './commands/switchover.ts';
import { flush, reinit, reload, removeMember, restart } from './commands/members.ts';
import { editConfig, showConfig, togglePause } from './commands/config.ts';
import { ctlVersion, dsn, history, query, version } from './commands/info.ts';
import { removeCluster } from './commands/remove.ts';
import { raftAdd, raftRemove, raftStatus, raftTransferLeader } from './commands/raft.ts';
import type { RaftCtx } from './commands/raft.ts';

type Handler = (ctx: Ctx, p: Parsed) => Promise<number>;

const HANDLERS: Readonly<Record<string, Handler>> = {
  list: (ctx, p) => list(ctx, p, false),
  topology: (ctx, p) => list(ctx, p, true),
  switchover,
  failover,
  restart,
  reload,
  reinit,
  flush,
  'edit-config': editConfig,
  'show-config': showConfig,
  pause: (ctx, p) => togglePause(ctx, p, true),
  resume: (ctx, p) => togglePause(ctx, p, false),
  history,
  dsn,
  query,
  remove: removeCluster,
  'remove-member': removeMember,
  version: (ctx, p) => version(ctx, p),
};

const RAFT_HANDLERS: Readonly<Record<string, (rc: RaftCtx, p: Parsed) => Promise<number>>> = {
  'raft status': (rc) => raftStatus(rc),
  'raft add': raftAdd,
  'raft remove': (rc, p) => raftRemove(rc, p, (force, what) => confirm(rc, force, what)),
  'raft transfer-leader': raftTransferLeader,
};

export function processIo(): Io {
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    isTTY: process.stdin.isTTY === true,
    ask: (question) => new Promise((resolve) => {
      const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
      let answered = false;
      rl.once('close', () => {
        if (!answered) resolve(null);
      });
      rl.question(question, (answer) => {
        answered = true;
        rl.close();
        // A piped answer is not echoed: end the prompt's line so the next output starts its own.
        if (process.stdin.isTTY !== true) process.stdout.write('\n');
        resolve(answer);
      });
    }),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    now: () => new Date(),
  };
}

async function run(p: Parsed, io: Io, env: Record<string, string | undefined>, opened: HttpClient[]): Promise<number> {
  const name = p.command!.name;
  // `version` alone needs no configuration (nor a reachable cluster).
  if (name === 'version' && p.args.length === 0) {
    io.out(`conclavectl version ${ctlVersion()}\n`);
    return 0;
  }
  const raftHandler = RAFT_HANDLERS[name];
  if (raftHandler) {
    // With --url the Raft addresses are given and no configuration is needed.
    if (p.global.urls.length > 0) {
      const http = new HttpClient(null, { insecure: p.global.insecure, ca: null, cert: null, key: null, passphrase: null });
      opened.push(http);
      return raftHandler({ http, urls: p.global.urls.map((u) => u.replace(/\/+$/, '')), io }, p);
    }
    const ctx = await openContext(p.global, io, env);
    opened.push(ctx.http);
    return raftHandler({ http: ctx.http, urls: raftUrls(ctx), io }, p);
  }
  const ctx = await openContext(p.global, io, env);
  opened.push(ctx.http);
  return HANDLERS[name](ctx, p);
}

export async function main(argv: string[], io: Io = processIo(), env: Record<string, string | undefined> = process.env): Promise<number> {
  const opened: HttpClient[] = [];
  try {
    const p = parseArgs(argv);
    if (p.help) {
      io.out(`${p.command ? commandUsage(p.command) : globalUsage()}\n`);
      return 0;
    }
    return await run(p, io, env, opened);
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`conclavectl: ${err.message}\n${err.usage ? `${err.usage}\n` : ''}`);
      return EXIT_STATUS[err.code];
    }
    io.err(`conclavectl: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  } finally {
    await Promise.all(opened.map((h) => h.close()));
  }
}
