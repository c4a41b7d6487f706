// The cluster-wide configuration: show-config, edit-config (diff, confirm, then a compare-and-set
// write when GET /config gave a revision), pause and resume (PATCH /config {pause}).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Parsed } from '../args.ts';
import { flag, value, values } from '../args.ts';
import { CliError } from '../errors.ts';
import { apiError, parseJson } from '../http.ts';
import type { Ctx } from '../context.ts';
import { checkClusterName, confirm, getCluster, memberBase, memberBases, progress, restSeeds, sendToFirst, waitUntil } from '../context.ts';
import type { ClusterMember } from '../cluster.ts';
import { assign, deepMerge, isMap, mergePatch, parseConfigDocument, parsePg, parseSet } from '../config-changes.ts';
import type { JsonMap } from '../config-changes.ts';
import { unifiedDiff } from '../diff.ts';
import { yamlText } from '../format.ts';

const PAUSE_WAIT_MS = 120_000;

interface ConfigRead {
  readonly config: JsonMap;
  /** The revision to compare-and-set against: GET /config's ETag, if it sends one. */
  readonly revision: string | null;
  /** The member that answered, asked first for the write too. */
  readonly bases: string[];
}

async function readConfig(ctx: Ctx): Promise<ConfigRead> {
  const bases = await memberBases(ctx);
  const res = await sendToFirst(ctx, bases, 'GET', '/config');
  if (res.status !== 200) throw apiError(res, 'GET /config');
  const config = parseJson<unknown>(res, 'GET /config');
  if (!isMap(config)) throw new CliError('ERR_API', `GET /config: ${res.url} answered something other than a JSON object`);
  const answered = res.url.slice(0, -'/config'.length);
  return { config, revision: res.headers.etag ?? null, bases: [answered, ...bases.filter((b) => b !== answered)] };
}

export async function showConfig(ctx: Ctx, p: Parsed): Promise<number> {
  checkClusterName(ctx, p.args[0]);
  ctx.io.out(yamlText((await readConfig(ctx)).config));
  return 0;
}

async function readSource(ctx: Ctx, file: string): Promise<string> {
  if (file === '-') return ctx.io.readStdin();
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError('ERR_REFUSED', `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}

/** patronictl opens $EDITOR when no change is given on the command line. */
function editInEditor(ctx: Ctx, text: string): string {
  if (!ctx.io.isTTY) throw new CliError('ERR_USAGE', 'nothing to change: give -s, -p, --apply or --replace (an editor needs a terminal)', { usage: 'see: conclavectl edit-config --help' });
  const dir = mkdtempSync(join(tmpdir(), 'conclavectl-'));
  const file = join(dir, 'config.yaml');
  try {
    writeFileSync(file, text);
    const editor = process.env.EDITOR || process.env.VISUAL || 'vi';
    const r = spawnSync(editor, [file], { stdio: 'inherit', shell: true });
    if (r.status !== 0) throw new CliError('ERR_REFUSED', `the editor (${editor}) exited with ${r.status ?? r.signal}; nothing changed`);
    return readFileSync(file, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function editConfig(ctx: Ctx, p: Parsed): Promise<number> {
  checkClusterName(ctx, p.args[0]);
  const sets = values(p, 'set').map(parseSet);
  const pgs = values(p, 'pg').map(parsePg);
  const applyFile = value(p, 'apply');
  const replaceFile = value(p, 'replace');
  if (applyFile === '-' && replaceFile === '-') throw new CliError('ERR_USAGE', '--apply and --replace cannot both read stdin', { usage: 'see: conclavectl edit-config --help' });
  const read = await readConfig(ctx);
  const before = read.config;
  let after = before;
  if (replaceFile !== null) after = parseConfigDocument(await readSource(ctx, replaceFile), replaceFile);
  if (applyFile !== null) after = deepMerge(after, parseConfigDocument(await readSource(ctx, applyFile), applyFile));
  for (const a of [...sets, ...pgs]) after = assign(after, a);
  if (replaceFile === null && applyFile === null && sets.length === 0 && pgs.length === 0) {
    after = parseConfigDocument(editInEditor(ctx, yamlText(before)), 'the edited configuration');
  }
  const diff = unifiedDiff(yamlText(before), yamlText(after));
  if (diff === '') {
    ctx.io.out('Not changed\n');
    return 0;
  }
  if (!flag(p, 'quiet')) ctx.io.out(diff);
  await confirm(ctx, flag(p, 'force'), 'apply these changes');
  const headers: Record<string, string> = read.revision ? { 'if-match': read.revision } : {};
  const res = replaceFile !== null
    ? await sendToFirst(ctx, read.bases, 'PUT', '/config', { body: after, headers })
    : await sendToFirst(ctx, read.bases, 'PATCH', '/config', { body: mergePatch(before, after), headers });
  if (res.status === 409 || res.status === 412) throw new CliError('ERR_REFUSED', 'Config modification aborted due to concurrent changes');
  if (res.status < 200 || res.status >= 300) throw apiError(res, `${replaceFile !== null ? 'PUT' : 'PATCH'} /config`);
  ctx.io.out('Configuration changed\n');
  return 0;
}

/** Whether a member's GET /patroni reports the pause state `paused` (absent means not paused). */
async function reportsPause(ctx: Ctx, base: string): Promise<boolean | null> {
  try {
    const res = await ctx.http.request('GET', `${base}/patroni`);
    if (res.status !== 200) return null;
    return (JSON.parse(res.text) as { pause?: unknown }).pause === true;
  } catch {
    return null;
  }
}

export async function togglePause(ctx: Ctx, p: Parsed, paused: boolean): Promise<number> {
  checkClusterName(ctx, p.args[0]);
  let members: ClusterMember[] = [];
  let bases: string[];
  try {
    const located = await getCluster(ctx);
    if (paused && located.cluster.pause === true) throw new CliError('ERR_REFUSED', 'Cluster is already paused');
    if (!paused && located.cluster.pause !== true) throw new CliError('ERR_REFUSED', 'Cluster is not paused');
    members = [...located.cluster.members];
    bases = await memberBases(ctx);
  } catch (err) {
    if (err instanceof CliError && err.code === 'ERR_REFUSED') throw err;
    bases = restSeeds(ctx);
  }
  const res = await sendToFirst(ctx, bases, 'PATCH', '/config', { body: { pause: paused ? true : null } });
  if (res.status < 200 || res.status >= 300) throw apiError(res, 'PATCH /config');
  const done = `Success: cluster management is ${paused ? 'paused' : 'resumed'}`;
  if (!flag(p, 'wait')) {
    ctx.io.out(`${done}\n`);
    return 0;
  }
  ctx.io.out(`'${paused ? 'pause' : 'resume'}' request sent, waiting until it is recognized by all nodes\n`);
  const say = progress(ctx);
  const targets = members.length > 0 ? members.map((m) => ({ name: m.name, base: memberBase(ctx, m) })) : bases.map((b) => ({ name: b, base: b }));
  const pending = new Set(targets.map((t) => t.name));
  await waitUntil(ctx, `${[...pending].join(', ')} to report ${paused ? 'pause' : 'resume'}`, PAUSE_WAIT_MS, 500, async () => {
    for (const t of targets.filter((x) => pending.has(x.name))) {
      if ((await reportsPause(ctx, t.base)) === paused) pending.delete(t.name);
    }
    say(pending.size === 0 ? `all ${targets.length} members ${paused ? 'paused' : 'resumed'}` : `waiting for ${[...pending].join(', ')}`);
    return pending.size === 0;
  });
  ctx.io.out(`${done}\n`);
  return 0;
}
