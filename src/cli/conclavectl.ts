// conclavectl: talks to members over their HTTP API. Step 1 offers the consensus group's view;
// patronictl's commands (list, switchover, edit-config, ...) arrive with the HA agent (step 4).
import { request } from 'undici';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MemberStatus } from '../raft/node/kv-http.ts';

const USAGE = `usage: conclavectl <command> [options]

commands:
  raft status [--url URL ...]   each member's role, term, leader, commit and applied index
  version                       print the version

options:
  --url URL   a member's API address (repeatable); default: the raft addresses of config/node1..3.yml`;


function defaultUrls(): string[] {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  return ['node1', 'node2', 'node3'].flatMap((n) => {
    const text = readFileSync(join(root, 'config', `${n}.yml`), 'utf8');
    return [...text.matchAll(/self_addr:\s*(\S+)/g)].map((m) => `http://${m[1]}`);
  });
}

async function fetchStatus(url: string): Promise<MemberStatus | string> {
  try {
    const res = await request(`${url.replace(/\/+$/, '')}/v1/status`, { headersTimeout: 2000, bodyTimeout: 2000 });
    if (res.statusCode !== 200) return `answered ${res.statusCode}`;
    return (await res.body.json()) as MemberStatus;
  } catch (err) {
    return (err as Error).message || String(err);
  }
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  return [rule, line(rows[0]), rule, ...rows.slice(1).map(line), rule].join('\n');
}

async function raftStatus(urls: string[]): Promise<number> {
  const results = await Promise.all(urls.map(async (url) => ({ url, st: await fetchStatus(url) })));
  const rows = [['Member', 'URL', 'Role', 'Term', 'Leader', 'Commit', 'Applied', 'Last index']];
  let reachable = 0;
  for (const { url, st } of results) {
    if (typeof st === 'string') {
      rows.push(['?', url, `unreachable: ${st}`, '', '', '', '', '']);
      continue;
    }
    reachable++;
    rows.push([st.id, url, st.role, String(st.term), st.leader ?? '-', String(st.commit), String(st.applied), String(st.lastIndex)]);
  }
  process.stdout.write(`${table(rows)}\n`);
  return reachable === 0 ? 1 : 0;
}

export async function main(argv: string[]): Promise<number> {
  const urls: string[] = [];
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--url') {
      const url = argv[++i];
      if (!url || !/^https?:\/\/[^/]+/.test(url)) {
        process.stderr.write(`conclavectl: --url needs an address like http://127.0.0.1:7001, got ${JSON.stringify(url ?? '')}\n`);
        return 2;
      }
      urls.push(url);
    } else if (argv[i] === '--help' || argv[i] === '-h') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    } else {
      words.push(argv[i]);
    }
  }
  const command = words.join(' ');
  if (command === 'version') {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`conclavectl version ${pkg.version}\n`);
    return 0;
  }
  if (command === 'raft status') return raftStatus(urls.length > 0 ? urls : defaultUrls());
  process.stderr.write(`conclavectl: unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
  return 2;
}
