// `conclave <config.yml>`: runs one agent. `conclave --validate-config <config.yml>` checks a
// config and exits (0 if valid, 1 with the problem named). Without a file the configuration comes
// from CONCLAVE_CONFIGURATION / PATRONI_CONFIGURATION or the individual variables, as Patroni.
//
// Before anything runs: the agent's own files are made owner-only (the Raft directory 0700, a log
// directory it creates 0700, its log file 0600), and an agent that would run PostgreSQL as root
// refuses to start.
import pino from 'pino';
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from '../storage/level-raft-store.ts';
import { lookupUser } from './postgres/run-as.ts';
import { loadConfigFile } from './config/load.ts';
import type { AgentConfig } from './config/types.ts';
import { Agent } from './agent.ts';
import { plainStream } from './log-format.ts';

const USAGE = 'usage: conclave [--validate-config] [config.yml]';

function fail(message: string, code = 1): never {
  process.stderr.write(`conclave: ${message}\n`);
  process.exit(code);
}

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const validateOnly = args.includes('--validate-config');
const positional = args.filter((a) => !a.startsWith('--'));
const unknown = args.filter((a) => a.startsWith('--') && a !== '--validate-config');
if (unknown.length > 0) fail(`unknown option ${unknown[0]}\n${USAGE}`, 2);
if (positional.length > 1) fail(`one config file at most, got ${positional.length}\n${USAGE}`, 2);

let config: AgentConfig;
try {
  config = await loadConfigFile(positional[0] ?? null, process.env);
} catch (err) {
  fail(`invalid configuration: ${(err as Error).message}`);
}
if (validateOnly) {
  process.stdout.write(`configuration is valid: ${config.scope}/${config.name}\n`);
  process.exit(0);
}

/** The log file, owner-only; returns its old mode when it had to be narrowed (to warn once logging works). */
function openLogFile(dir: string, file: string): { destination: ReturnType<typeof pino.destination>; narrowedFrom: number | null } {
  // A directory we create is ours alone; an existing one (/var/log, shared) keeps its mode.
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const old = existsSync(file) ? statSync(file).mode & 0o777 : null;
  const narrowedFrom = old !== null && (old & 0o077) !== 0 ? old : null;
  if (narrowedFrom !== null) chmodSync(file, 0o600);
  return { destination: pino.destination({ dest: file, mode: 0o600, sync: true }), narrowedFrom };
}

const logFile = config.log.dir ? join(config.log.dir, `${config.name}.log`) : null;
let opened: ReturnType<typeof openLogFile> | null = null;
try {
  opened = logFile ? openLogFile(config.log.dir!, logFile) : null;
} catch (err) {
  fail(`cannot open the log file ${logFile}: ${(err as Error).message}`);
}
const destination = opened ? opened.destination : pino.destination({ fd: 1, sync: true });
// auto: plain for a person at a terminal, JSON lines for whatever collects the output.
const plain = config.log.type === 'plain' || (config.log.type === 'auto' && !config.log.dir && process.stdout.isTTY === true);
const logger = pino({ level: config.log.level, base: { name: config.name } }, plain ? plainStream(destination) : destination);
if (opened?.narrowedFrom != null) logger.warn({ file: logFile, mode: opened.narrowedFrom.toString(8) }, 'the log file was readable by others; narrowed it to 0600');

try {
  const narrowed = await ensurePrivateDir(config.raft.data_dir);
  if (narrowed !== null) logger.warn({ dir: config.raft.data_dir, mode: narrowed.toString(8) }, 'raft.data_dir was open to others; narrowed it to 0700');
} catch (err) {
  fail(`cannot create raft.data_dir ${config.raft.data_dir}: ${(err as Error).message}`);
}
// PostgreSQL must never run as root (it refuses to, and its files would be root's): a root agent
// needs a run_as user that is not root. Said now, not at the first initdb or clone.
if (config.postgresql && process.getuid?.() === 0) {
  try {
    await lookupUser(config.postgresql.run_as);
  } catch (err) {
    // The refusal of root names the key itself; a failed lookup (no such user) does not.
    const refusedRoot = (err as { code?: string }).code === 'ERR_PG_RUN_AS_ROOT';
    fail(`cannot start: ${refusedRoot ? '' : 'postgresql.run_as: '}${(err as Error).message}`);
  }
}

let agent: Agent | null = null;
let stopping = false;
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info('shutting down');
  try {
    await agent?.stop();
  } catch (err) {
    logger.error({ err }, 'error while stopping');
  }
  process.exit(code);
}

try {
  agent = await Agent.start({
    config,
    logger,
    onFatal: (message) => {
      logger.fatal(message);
      process.stderr.write(`conclave: ${message}\n`);
      void shutdown(1);
    },
  });
} catch (err) {
  fail(`cannot start: ${(err as Error).message}`);
}
logger.info({ api: `${config.restapi.connect_address.host}:${config.restapi.connect_address.port}` }, 'agent started');
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));
