// The terminal-facing helpers every command uses: confirmation (and its refusal without a
// terminal), --scheduled times, progress lines, and the order in which members are asked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confirm, parseScheduled, progress, restCredentials, restSeeds, timestamp } from './context.ts';
import type { Ctx, Io } from './context.ts';
import type { CliError } from './errors.ts';

function fakeIo(opts: { isTTY: boolean; answers?: string[] }): Io & { printed: string[]; asked: string[] } {
  const answers = [...(opts.answers ?? [])];
  const printed: string[] = [];
  const asked: string[] = [];
  return {
    printed,
    asked,
    isTTY: opts.isTTY,
    out: (t) => void printed.push(t),
    err: (t) => void printed.push(t),
    ask: async (q) => {
      asked.push(q);
      return answers.shift() ?? null;
    },
    readStdin: async () => '',
    sleep: async () => undefined,
    now: () => new Date(2030, 0, 2, 3, 4, 5),
  };
}

test('confirm: --force asks nothing; no terminal refuses with the reason; a terminal asks [y/N]', async () => {
  const quiet = fakeIo({ isTTY: false });
  await confirm({ io: quiet }, true, 'switchover cluster demo');
  assert.deepEqual(quiet.asked, []);
  await assert.rejects(confirm({ io: quiet }, false, 'switchover cluster demo'), (err: CliError) =>
    err.code === 'ERR_REFUSED' && err.message === 'refusing to switchover cluster demo without confirmation: stdin is not a terminal (add --force)');
  const yes = fakeIo({ isTTY: true, answers: ['y'] });
  await confirm({ io: yes }, false, 'restart members n1');
  assert.deepEqual(yes.asked, ['Are you sure you want to restart members n1? [y/N]: ']);
  for (const answer of ['', 'n', 'nope']) {
    await assert.rejects(confirm({ io: fakeIo({ isTTY: true, answers: [answer] }) }, false, 'x'), /aborted: not confirmed/);
  }
});

test('--scheduled: now is at once; a time without a zone is local; the past is refused', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  assert.equal(parseScheduled(null, now), null);
  assert.equal(parseScheduled('now', now), null);
  assert.equal(parseScheduled('2030-01-01T02:00+01:00', now), '2030-01-01T01:00:00.000Z');
  assert.equal(parseScheduled('2030-06-01T12:00', now), new Date(2030, 5, 1, 12, 0).toISOString());
  assert.throws(() => parseScheduled('tomorrow', now), /cannot read "tomorrow" as a time/);
  assert.throws(() => parseScheduled('2029-01-01T00:00Z', now), /is in the past/);
});

test('progress prints a line only when it changes, with patronictl\'s timestamp', () => {
  const io = fakeIo({ isTTY: false });
  const say = progress({ io });
  say('leader: n1');
  say('leader: n1');
  say('no leader');
  assert.deepEqual(io.printed, ['2030-01-02 03:04:05 leader: n1\n', '2030-01-02 03:04:05 no leader\n']);
  assert.equal(timestamp(new Date(2024, 10, 9, 8, 7, 6)), '2024-11-09 08:07:06');
});

test('members are asked through --url first, then the configured REST address', () => {
  const ctx = {
    scheme: 'http',
    global: { configFile: null, insecure: false, urls: ['http://10.0.0.9:8008/'] },
    config: { restapi: { connect_address: { host: '127.0.0.1', port: 8008 } } },
  } as unknown as Ctx;
  assert.deepEqual(restSeeds(ctx), ['http://10.0.0.9:8008', 'http://127.0.0.1:8008']);
  assert.deepEqual(restSeeds({ ...ctx, scheme: 'https', global: { ...ctx.global, urls: [] } } as Ctx), ['https://127.0.0.1:8008']);
});

test('REST credentials: CONCLAVE_CTL_* / PATRONI_CTL_* over ctl.authentication over restapi.authentication', () => {
  const config = { restapi: { authentication: { username: 'rest', password: 'rest-pw' } } } as unknown as Pick<Ctx['config'], 'restapi'>;
  const none = { restapi: { authentication: null } } as unknown as Pick<Ctx['config'], 'restapi'>;
  const ctlRaw = { ctl: { authentication: { username: 'ctl', password: 'ctl-pw' } } };
  assert.deepEqual(restCredentials(config, {}, {}), { username: 'rest', password: 'rest-pw' });
  assert.deepEqual(restCredentials(config, ctlRaw, {}), { username: 'ctl', password: 'ctl-pw' });
  assert.deepEqual(restCredentials(config, ctlRaw, { CONCLAVE_CTL_USERNAME: 'env', CONCLAVE_CTL_PASSWORD: 'env-pw' }), { username: 'env', password: 'env-pw' });
  assert.deepEqual(restCredentials(none, {}, { PATRONI_CTL_USERNAME: 'p', PATRONI_CTL_PASSWORD: 'p-pw' }), { username: 'p', password: 'p-pw' });
  assert.deepEqual(restCredentials(none, {}, { CONCLAVE_CTL_USERNAME: 'c', PATRONI_CTL_USERNAME: 'p', PATRONI_CTL_PASSWORD: 'p-pw' }), { username: 'c', password: 'p-pw' }, 'CONCLAVE_ wins');
  assert.deepEqual(restCredentials(config, {}, { CONCLAVE_CTL_PASSWORD: 'only-pw' }), { username: 'rest', password: 'only-pw' }, 'one half from the environment, one from the file');
  assert.equal(restCredentials(none, {}, {}), null);
});
