// The command line parser: commands, options in every accepted spelling, and each refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMANDS, flag, parseArgs, value, values } from './args.ts';
import { CliError } from './errors.ts';

function refusal(argv: string[]): CliError {
  try {
    parseArgs(argv);
  } catch (err) {
    assert.ok(err instanceof CliError, String(err));
    return err;
  }
  assert.fail(`parseArgs(${JSON.stringify(argv)}) did not refuse`);
}

test('global options go before the command and are also taken after it', () => {
  const p = parseArgs(['-c', 'x.yml', '-k', 'list', '-f', 'json', '--url', 'http://h:1']);
  assert.equal(p.command?.name, 'list');
  assert.deepEqual(p.global, { configFile: 'x.yml', insecure: true, urls: ['http://h:1'] });
  assert.equal(value(p, 'format'), 'json');
  const late = parseArgs(['list', '--config-file=y.yml']);
  assert.equal(late.global.configFile, 'y.yml');
});

test("a command's own option wins over a global one of the same name: query -c is the SQL", () => {
  const p = parseArgs(['-c', 'conf.yml', 'query', '-c', 'select 1', '-m', 'node2']);
  assert.equal(p.global.configFile, 'conf.yml');
  assert.equal(value(p, 'command'), 'select 1');
  assert.equal(value(p, 'member'), 'node2');
});

test('two-word commands, positionals, repeatable options and flags', () => {
  const add = parseArgs(['raft', 'add', '127.0.0.1:2225', 'http://127.0.0.1:2225']);
  assert.equal(add.command?.name, 'raft add');
  assert.deepEqual(add.args, ['127.0.0.1:2225', 'http://127.0.0.1:2225']);
  const edit = parseArgs(['edit-config', '-s', 'loop_wait=1', '--set', 'ttl=30', '-p', 'work_mem=8MB', '--force']);
  assert.deepEqual(values(edit, 'set'), ['loop_wait=1', 'ttl=30']);
  assert.deepEqual(values(edit, 'pg'), ['work_mem=8MB']);
  assert.equal(flag(edit, 'force'), true);
  const sw = parseArgs(['switchover', '--primary', 'node1', '--candidate=node2', '--scheduled', 'now']);
  assert.equal(value(sw, 'leader'), 'node1');
  assert.equal(value(sw, 'candidate'), 'node2');
  const fl = parseArgs(['flush', 'demo', 'node1', 'node2', 'restart']);
  assert.deepEqual(fl.args, ['demo', 'node1', 'node2', 'restart']);
  assert.equal(value(parseArgs(['list', '-w', '5']), 'watch'), '5');
  assert.equal(flag(parseArgs(['list', '-W']), 'watchDefault'), true);
});

test('--help gives the usage, globally or for one command', () => {
  assert.equal(parseArgs(['--help']).help, true);
  assert.equal(parseArgs(['--help']).command, null);
  const p = parseArgs(['reinit', '--help']);
  assert.equal(p.help, true);
  assert.equal(p.command?.name, 'reinit');
});

test('refusals are usage errors (exit 2) that name the problem', () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /no command given/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['raft', 'frob'], /unknown command "raft frob"/],
    [['list', '--bogus'], /unknown option --bogus for list/],
    [['--bogus', 'list'], /unknown option --bogus/],
    [['list', '-f', 'xml'], /-f must be one of pretty, json, yaml, tsv, got "xml"/],
    [['list', '-w', '0'], /-w needs a number > 0/],
    [['list', '-w'], /-w needs a value/],
    [['list', '-f', '--extended'], /-f needs a value/],
    [['list', '--extended=yes'], /--extended takes no value/],
    [['restart'], /restart needs <cluster> \[member\.\.\.\]/],
    [['reinit', 'demo'], /reinit needs <cluster> <member\.\.\.>/],
    [['remove-member', 'a', 'b'], /remove-member takes <name>, got "a b"/],
    [['raft', 'status', 'x'], /raft status takes no arguments/],
    [['raft', 'status', '--url', 'not-a-url'], /--url needs an address/],
    [['restart', 'demo', '--role', 'boss'], /--role must be one of/],
  ];
  for (const [argv, message] of cases) {
    const err = refusal(argv);
    assert.equal(err.code, 'ERR_USAGE', argv.join(' '));
    assert.match(err.message, message, argv.join(' '));
    assert.ok(err.usage && err.usage.startsWith('usage: conclavectl'), `usage printed for ${argv.join(' ')}`);
  }
});

test('every command has a unique name and its options unique spellings', () => {
  assert.equal(new Set(COMMANDS.map((c) => c.name)).size, COMMANDS.length);
  for (const c of COMMANDS) {
    const names = c.options.flatMap((o) => o.names);
    assert.equal(new Set(names).size, names.length, c.name);
  }
});

test('no password on the command line: --password and a --url with credentials are refused, pointing at the environment', () => {
  for (const argv of [['switchover', '--password', 'hunter2-secret'], ['--password=hunter2-secret', 'list'], ['list', '--passwd', 'hunter2-secret'], ['--pass', 'hunter2-secret', 'list']]) {
    const err = refusal(argv);
    assert.equal(err.code, 'ERR_USAGE');
    assert.match(err.message, /takes no password on the command line/);
    assert.match(err.message, /CONCLAVE_CTL_PASSWORD/);
    assert.doesNotMatch(err.message, /hunter2/, 'the refusal does not repeat the password');
  }
  for (const url of ['http://admin:hunter2-secret@127.0.0.1:8008', 'https://admin@h:1']) {
    const err = refusal(['--url', url, 'list']);
    assert.equal(err.code, 'ERR_USAGE');
    assert.match(err.message, /--url must not carry credentials/);
    assert.doesNotMatch(err.message, /hunter2/);
  }
  assert.ok(COMMANDS.every((c) => c.options.every((o) => o.names.every((n) => !/pass/i.test(n)))), 'no option takes a password');
});
