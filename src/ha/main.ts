// `conclave <config.yml>`: runs one agent. `conclave --validate-config <config.yml>` checks a
// config and exits (0 if valid, 1 with the problem named). Without a file the configuration comes
// from CONCLAVE_CONFIGURATION / PATRONI_CONFIGURATION or the individual variables, as Patroni.
import pino from 'pino';
import { join } from 'node:path';
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

const destination = config.log.dir ? pino.destination({ dest: join(config.log.dir, `${config.name}.log`), mkdir: true, sync: true }) : pino.destination({ fd: 1, sync: true });
// auto: plain for a person at a terminal, JSON lines for whatever collects the output.
const plain = config.log.type === 'plain' || (config.log.type === 'auto' && !config.log.dir && process.stdout.isTTY === true);
const logger = pino({ level: config.log.level, base: { name: config.name } }, plain ? plainStream(destination) : destination);

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
