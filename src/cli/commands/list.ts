// `list` and `topology`: the members as patronictl shows them, once or every few seconds (-W, -w).
import type { Parsed } from '../args.ts';
import { flag, value } from '../args.ts';
import type { Ctx, Located } from '../context.ts';
import { checkClusterName, getCluster, timestamp } from '../context.ts';
import { prettyTable, render } from '../format.ts';
import type { Format } from '../format.ts';
import { RIGHT_ALIGNED, clusterFooter, clusterTitle, memberRows } from '../members-table.ts';

/** The database system identifier, from the member that answered (GET /patroni); null if it does not say. */
async function systemIdentifier(ctx: Ctx, located: Located): Promise<string | null> {
  try {
    const res = await ctx.http.request('GET', `${located.via}/patroni`);
    if (res.status !== 200) return null;
    const id = (JSON.parse(res.text) as { database_system_identifier?: unknown }).database_system_identifier;
    return typeof id === 'string' || typeof id === 'number' ? String(id) : null;
  } catch {
    return null;
  }
}

/** The pretty table with its title and footer, as `list` and `topology` print it. */
export async function membersText(ctx: Ctx, located: Located, opts: { extended: boolean; topology: boolean }): Promise<string> {
  const { columns, rows } = memberRows(located.cluster, { ...opts, withCluster: false });
  const title = clusterTitle(located.cluster.scope ?? ctx.config.scope, await systemIdentifier(ctx, located));
  return [prettyTable(columns, rows, { title, rightAlign: RIGHT_ALIGNED }), ...clusterFooter(located.cluster)].join('\n');
}

export async function list(ctx: Ctx, p: Parsed, topology: boolean): Promise<number> {
  checkClusterName(ctx, p.args[0]);
  const format = (topology ? 'pretty' : value(p, 'format') ?? 'pretty') as Format;
  const extended = flag(p, 'extended');
  const every = flag(p, 'watchDefault') ? 2 : value(p, 'watch') !== null ? Number(value(p, 'watch')) : null;
  const once = async (): Promise<void> => {
    const located = await getCluster(ctx);
    const head = flag(p, 'timestamp') ? `${timestamp(ctx.io.now())}\n` : '';
    if (format === 'pretty') {
      ctx.io.out(`${head}${await membersText(ctx, located, { extended, topology })}\n`);
    } else {
      const { columns, rows } = memberRows(located.cluster, { extended, topology: false, withCluster: true });
      ctx.io.out(`${head}${render(format, columns, rows, { rightAlign: RIGHT_ALIGNED })}\n`);
    }
  };
  if (every === null) {
    await once();
    return 0;
  }
  // Watch until interrupted (Ctrl-C ends the process); a failed round is reported, not fatal.
  for (;;) {
    if (ctx.io.isTTY) ctx.io.out('\x1b[2J\x1b[H');
    try {
      await once();
    } catch (err) {
      ctx.io.err(`conclavectl: ${(err as Error).message}\n`);
    }
    await ctx.io.sleep(every * 1000);
  }
}
