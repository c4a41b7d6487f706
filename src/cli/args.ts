// The command line: the commands with patronictl's names and options (reference §2), and a parser
// that turns argv into one command, its positional arguments and its options. Pure: no I/O, so
// every refusal can be tested; a refusal is a CliError('ERR_USAGE') carrying the usage to print.
//
// Global options (-c, -k, --url) go before the command as in patronictl, and are also accepted
// after it unless the command has an option of the same name: `query -c SQL` is the query's
// --command, as in `patronictl -c conf.yml query -c SQL`.
//
// No option takes a password: every local user can read a command line (ps, /proc). The REST
// credentials come from the configuration (ctl.authentication, restapi.authentication) or the
// environment (context.ts); a --password, or a --url with user:password@ in it, is refused with
// the way to do it instead, and the value is never echoed.
import { usageError } from './errors.ts';

export type OptValue = string | boolean | string[];

export interface OptionSpec {
  /** Spellings, e.g. ['-f', '--format']; the first long one names it in messages. */
  readonly names: readonly string[];
  /** Where the value lands in Parsed.opts. */
  readonly key: string;
  /** The value's placeholder in usage; absent for a flag. */
  readonly value?: string;
  readonly repeat?: boolean;
  readonly choices?: readonly string[];
  /** The value must be a number > 0. */
  readonly positive?: boolean;
  readonly help: string;
}

export interface CommandSpec {
  /** One or two words: 'list', 'raft status'. */
  readonly name: string;
  /** Positional arguments as shown in usage. */
  readonly args: string;
  readonly minArgs: number;
  readonly maxArgs: number;
  readonly options: readonly OptionSpec[];
  readonly help: string;
}

export interface GlobalOptions {
  readonly configFile: string | null;
  readonly insecure: boolean;
  /** --url: REST addresses to ask first (raft commands: Raft addresses to ask instead of the config's). */
  readonly urls: readonly string[];
}

export interface Parsed {
  /** null with help: the global usage was asked for. */
  readonly command: CommandSpec | null;
  readonly args: readonly string[];
  readonly opts: Readonly<Record<string, OptValue>>;
  readonly global: GlobalOptions;
  readonly help: boolean;
}

const FORMATS = ['pretty', 'json', 'yaml', 'tsv'] as const;
const FORCE: OptionSpec = { names: ['--force'], key: 'force', help: 'do not ask for confirmation' };
const FORMAT: OptionSpec = { names: ['-f', '--format'], key: 'format', value: 'FORMAT', choices: FORMATS, help: 'output format (default pretty)' };
const TIMESTAMP: OptionSpec = { names: ['-t', '--timestamp'], key: 'timestamp', help: 'print the time before the output' };
const WATCH: OptionSpec[] = [
  { names: ['-W'], key: 'watchDefault', help: 'repeat every 2 seconds until interrupted' },
  { names: ['-w', '--watch'], key: 'watch', value: 'SECONDS', positive: true, help: 'repeat every SECONDS until interrupted' },
];
const ROLES = ['leader', 'primary', 'master', 'standby-leader', 'replica', 'standby', 'any'] as const;
const ROLE: OptionSpec = { names: ['-r', '--role'], key: 'role', value: 'ROLE', choices: ROLES, help: 'only members of this role' };
const MEMBER: OptionSpec = { names: ['-m', '--member'], key: 'member', value: 'NAME', help: 'this member' };

export const COMMANDS: readonly CommandSpec[] = [
  { name: 'list', args: '[cluster]', minArgs: 0, maxArgs: 1, options: [{ names: ['-e', '--extended'], key: 'extended', help: 'also Pending restart, Scheduled restart and Tags' }, TIMESTAMP, FORMAT, ...WATCH], help: 'the members, their roles, states and lag' },
  { name: 'topology', args: '[cluster]', minArgs: 0, maxArgs: 1, options: [TIMESTAMP, ...WATCH], help: 'the members as a replication tree under the leader' },
  {
    name: 'switchover', args: '[cluster]', minArgs: 0, maxArgs: 1, help: 'hand the leadership to a replica (planned, both sides healthy)',
    options: [
      { names: ['--leader', '--primary', '--master'], key: 'leader', value: 'NAME', help: 'the current leader (checked)' },
      { names: ['--candidate'], key: 'candidate', value: 'NAME', help: 'the member to promote; default: the best replica' },
      { names: ['--scheduled'], key: 'scheduled', value: 'TIME', help: 'when (ISO 8601; local time without a zone), or now' },
      FORCE,
    ],
  },
  { name: 'failover', args: '[cluster]', minArgs: 0, maxArgs: 1, options: [{ names: ['--candidate'], key: 'candidate', value: 'NAME', help: 'the member to promote (required)' }, FORCE], help: 'promote a given member, with or without a healthy leader' },
  {
    name: 'restart', args: '<cluster> [member...]', minArgs: 1, maxArgs: Infinity, help: 'restart PostgreSQL on members (all by default)',
    options: [
      ROLE,
      { names: ['--any'], key: 'any', help: 'one member chosen at random among the selected' },
      { names: ['--pending'], key: 'pending', help: 'only members whose restart is pending' },
      { names: ['--scheduled'], key: 'scheduled', value: 'TIME', help: 'when (ISO 8601; local time without a zone), or now' },
      { names: ['--pg-version'], key: 'pgVersion', value: 'VERSION', help: 'only if PostgreSQL is older than VERSION' },
      { names: ['--timeout'], key: 'timeout', value: 'SECONDS', positive: true, help: 'how long a primary may take to start' },
      FORCE,
    ],
  },
  { name: 'reload', args: '<cluster> [member...]', minArgs: 1, maxArgs: Infinity, options: [ROLE, FORCE], help: 're-read the local configuration on members' },
  {
    name: 'reinit', args: '<cluster> <member...>', minArgs: 2, maxArgs: Infinity, help: 'rebuild replicas from the leader',
    options: [FORCE, { names: ['--wait'], key: 'wait', help: 'wait until each member runs again' }, { names: ['--from-leader'], key: 'fromLeader', help: 'take the copy from the leader' }],
  },
  { name: 'flush', args: '<cluster> [member...] restart|switchover', minArgs: 2, maxArgs: Infinity, options: [ROLE, FORCE], help: 'cancel scheduled restarts or a scheduled switchover' },
  {
    name: 'edit-config', args: '[cluster]', minArgs: 0, maxArgs: 1, help: 'change the cluster-wide configuration (shows the diff first)',
    options: [
      { names: ['-s', '--set'], key: 'set', value: 'KEY=VALUE', repeat: true, help: 'set a key (dotted path; VALUE is YAML; null deletes)' },
      { names: ['-p', '--pg'], key: 'pg', value: 'NAME=VALUE', repeat: true, help: 'set postgresql.parameters.NAME' },
      { names: ['--apply'], key: 'apply', value: 'FILE', help: 'merge a YAML file (- for stdin) into it' },
      { names: ['--replace'], key: 'replace', value: 'FILE', help: 'replace it with a YAML file (- for stdin)' },
      { names: ['-q', '--quiet'], key: 'quiet', help: 'do not show the diff' },
      FORCE,
    ],
  },
  { name: 'show-config', args: '[cluster]', minArgs: 0, maxArgs: 1, options: [], help: 'print the cluster-wide configuration as YAML' },
  { name: 'pause', args: '[cluster]', minArgs: 0, maxArgs: 1, options: [{ names: ['--wait'], key: 'wait', help: 'wait until every member reports it' }], help: 'maintenance mode: the agents stop acting on PostgreSQL' },
  { name: 'resume', args: '[cluster]', minArgs: 0, maxArgs: 1, options: [{ names: ['--wait'], key: 'wait', help: 'wait until every member reports it' }], help: 'leave maintenance mode' },
  { name: 'history', args: '[cluster]', minArgs: 0, maxArgs: 1, options: [FORMAT], help: 'the timeline switches' },
  { name: 'dsn', args: '[member]', minArgs: 0, maxArgs: 1, options: [MEMBER, ROLE], help: "a member's libpq connection string (default: the leader)" },
  {
    name: 'query', args: '[cluster]', minArgs: 0, maxArgs: 1, help: 'run SQL on a member (default: the leader)',
    options: [
      { names: ['-c', '--command'], key: 'command', value: 'SQL', help: 'the SQL to run' },
      { names: ['--file'], key: 'file', value: 'FILE', help: 'read the SQL from FILE (- for stdin)' },
      MEMBER, ROLE,
      { names: ['-U', '--username'], key: 'username', value: 'USER', help: 'default: the superuser of the configuration' },
      { names: ['-d', '--dbname'], key: 'dbname', value: 'DB', help: 'default: postgres' },
      { names: ['--format'], key: 'format', value: 'FORMAT', choices: FORMATS, help: 'output format (default tsv)' },
    ],
  },
  { name: 'remove', args: '<cluster>', minArgs: 1, maxArgs: 1, options: [FORCE], help: "delete the cluster's keys from the store (agents paused, PostgreSQL stopped)" },
  { name: 'remove-member', args: '<name>', minArgs: 1, maxArgs: 1, options: [FORCE], help: 'take a member out of the cluster (Raft, member key, slot)' },
  { name: 'version', args: '[cluster [member...]]', minArgs: 0, maxArgs: Infinity, options: [], help: "conclavectl's version, and the members' with a cluster" },
  { name: 'raft status', args: '', minArgs: 0, maxArgs: 0, options: [], help: "each Raft member's role, term, leader, commit and applied index" },
  { name: 'raft add', args: '<id> <url>', minArgs: 2, maxArgs: 2, options: [], help: 'admit a member to the consensus group (as a learner first)' },
  { name: 'raft remove', args: '<id>', minArgs: 1, maxArgs: 1, options: [FORCE], help: 'remove a member from the consensus group' },
  { name: 'raft transfer-leader', args: '<id>', minArgs: 1, maxArgs: 1, options: [], help: 'make another voter the Raft leader' },
];

const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  { names: ['-c', '--config-file'], key: 'configFile', value: 'FILE', help: 'an agent configuration (default: $CONCLAVECTL_CONFIG_FILE, else config/node1.yml)' },
  { names: ['-k', '--insecure'], key: 'insecure', help: 'do not verify the REST API certificate' },
  { names: ['--url'], key: 'url', value: 'URL', repeat: true, help: 'a member REST address to ask first (raft commands: a Raft address), repeatable' },
];

const HELP = new Set(['-h', '--help']);

function optionLine(o: OptionSpec): string {
  const names = o.names.join(', ') + (o.value ? ` ${o.value}` : '');
  return `  ${names.padEnd(28)} ${o.help}${o.choices ? ` (${o.choices.join('|')})` : ''}`;
}

export function commandUsage(c: CommandSpec): string {
  const lines = [`usage: conclavectl [global options] ${c.name}${c.args ? ` ${c.args}` : ''}${c.options.length > 0 ? ' [options]' : ''}`, `  ${c.help}`];
  if (c.options.length > 0) lines.push('options:', ...c.options.map(optionLine));
  return lines.join('\n');
}

export function globalUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => `${c.name} ${c.args}`.length));
  return [
    'usage: conclavectl [-c FILE] [-k] [--url URL] <command> [arguments] [options]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${`${c.name} ${c.args}`.padEnd(width)}  ${c.help}`),
    '',
    'global options:',
    ...GLOBAL_OPTIONS.map(optionLine),
    '',
    'conclavectl <command> --help shows the options of a command.',
  ].join('\n');
}

/** Splits "--name=value" into its parts; other words come back whole. */
function splitInline(word: string): [string, string | null] {
  const eq = word.indexOf('=');
  return word.startsWith('--') && eq > 2 ? [word.slice(0, eq), word.slice(eq + 1)] : [word, null];
}

const isOptionWord = (w: string): boolean => w.startsWith('-') && w !== '-' && !/^-\d/.test(w);

/** Where credentials go instead of the command line; said by every refusal of one. */
export const CREDENTIALS_HINT =
  'set CONCLAVE_CTL_USERNAME and CONCLAVE_CTL_PASSWORD (or PATRONI_CTL_*, CONCLAVE_RESTAPI_*, PATRONI_RESTAPI_*) in the environment, or ctl.authentication in the configuration file';

const PASSWORD_OPTION = /^--(password|passwd|pass)$/;

/** URL userinfo ("http://user:pw@host") is a password on the command line. */
function hasUserInfo(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return /^[a-z]+:\/\/[^/]*@/i.test(url);
  }
}

function checkValue(o: OptionSpec, name: string, v: string, usage: string): void {
  if (o.choices && !o.choices.includes(v)) throw usageError(`${name} must be one of ${o.choices.join(', ')}, got ${JSON.stringify(v)}`, usage);
  if (o.positive && !(Number.isFinite(Number(v)) && Number(v) > 0)) throw usageError(`${name} needs a number > 0, got ${JSON.stringify(v)}`, usage);
  if (o.key === 'url' && hasUserInfo(v)) throw usageError(`--url must not carry credentials (a command line is visible to every local user): ${CREDENTIALS_HINT}`, usage);
  if (o.key === 'url' && !/^https?:\/\/[^/\s]+/.test(v)) throw usageError(`--url needs an address like http://127.0.0.1:8008, got ${JSON.stringify(v)}`, usage);
}

function store(opts: Record<string, OptValue>, o: OptionSpec, value: string | true): void {
  if (o.repeat) opts[o.key] = [...((opts[o.key] as string[] | undefined) ?? []), value as string];
  else opts[o.key] = value;
}

/**
 * Reads one option at argv[i] if `specs` knows it; returns the index of the last word consumed,
 * or null when the word is not one of these options.
 */
function takeOption(argv: readonly string[], i: number, specs: readonly OptionSpec[], opts: Record<string, OptValue>, usage: string): number | null {
  const [name, inline] = splitInline(argv[i]);
  if (PASSWORD_OPTION.test(name)) throw usageError(`${name}: conclavectl takes no password on the command line (every local user can read it): ${CREDENTIALS_HINT}`, usage);
  const o = specs.find((s) => s.names.includes(name));
  if (!o) return null;
  if (!o.value) {
    if (inline !== null) throw usageError(`${name} takes no value`, usage);
    store(opts, o, true);
    return i;
  }
  const v = inline ?? argv[i + 1];
  if (v === undefined || (inline === null && isOptionWord(v))) throw usageError(`${name} needs a value (${o.value})`, usage);
  checkValue(o, name, v, usage);
  store(opts, o, v);
  return inline === null ? i + 1 : i;
}

function findCommand(words: readonly string[], start: number): { spec: CommandSpec; next: number } | null {
  const one = words[start];
  const two = words[start + 1] === undefined ? null : `${one} ${words[start + 1]}`;
  const spec = COMMANDS.find((c) => c.name === two) ?? COMMANDS.find((c) => c.name === one);
  return spec ? { spec, next: start + spec.name.split(' ').length } : null;
}

export function parseArgs(argv: readonly string[]): Parsed {
  const globalOpts: Record<string, OptValue> = {};
  const opts: Record<string, OptValue> = {};
  const args: string[] = [];
  const usage = globalUsage();
  let i = 0;
  // Global options before the command.
  for (; i < argv.length && isOptionWord(argv[i]); i++) {
    if (HELP.has(argv[i])) return { command: null, args: [], opts: {}, global: toGlobal(globalOpts), help: true };
    const end = takeOption(argv, i, GLOBAL_OPTIONS, globalOpts, usage);
    if (end === null) throw usageError(`unknown option ${splitInline(argv[i])[0]}`, usage);
    i = end;
  }
  if (i >= argv.length) throw usageError('no command given', usage);
  const found = findCommand(argv, i);
  if (!found) {
    const word = argv[i] === 'raft' && argv[i + 1] !== undefined ? `raft ${argv[i + 1]}` : argv[i];
    throw usageError(`unknown command ${JSON.stringify(word)}`, usage);
  }
  const { spec } = found;
  const cmdUsage = commandUsage(spec);
  let help = false;
  let onlyArgs = false;
  for (i = found.next; i < argv.length; i++) {
    const word = argv[i];
    if (onlyArgs || !isOptionWord(word)) {
      args.push(word);
      continue;
    }
    if (word === '--') {
      onlyArgs = true;
      continue;
    }
    if (HELP.has(word)) {
      help = true;
      continue;
    }
    const end = takeOption(argv, i, spec.options, opts, cmdUsage) ?? takeOption(argv, i, GLOBAL_OPTIONS, globalOpts, cmdUsage);
    if (end === null) throw usageError(`unknown option ${splitInline(word)[0]} for ${spec.name}`, cmdUsage);
    i = end;
  }
  if (!help) {
    if (args.length < spec.minArgs) throw usageError(`${spec.name} needs ${spec.args}`, cmdUsage);
    if (args.length > spec.maxArgs) throw usageError(`${spec.name} takes ${spec.args || 'no arguments'}, got ${JSON.stringify(args.join(' '))}`, cmdUsage);
  }
  return { command: spec, args, opts, global: toGlobal(globalOpts), help };
}

function toGlobal(g: Record<string, OptValue>): GlobalOptions {
  return {
    configFile: typeof g.configFile === 'string' ? g.configFile : null,
    insecure: g.insecure === true,
    urls: Array.isArray(g.url) ? g.url : [],
  };
}

// ---- Typed access to Parsed.opts

export const flag = (p: Parsed, key: string): boolean => p.opts[key] === true;
export const value = (p: Parsed, key: string): string | null => (typeof p.opts[key] === 'string' ? (p.opts[key] as string) : null);
export const values = (p: Parsed, key: string): string[] => (Array.isArray(p.opts[key]) ? (p.opts[key] as string[]) : []);
