// `npm start`: runs the three-member cluster of config/raft-cluster.yml on this machine, waits for
// a leader, prints where to connect, and stops every member cleanly on Ctrl-C.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const configPath = join(root, process.argv[2] ?? 'config/raft-cluster.yml');

interface Member {
  id: string;
  listen: string;
  data_dir: string;
}

function fail(message: string): never {
  process.stderr.write(`start-cluster: ${configPath}: ${message}\n`);
  process.exit(2);
}

function loadConfig(): { tick: number; election: number; heartbeat: number; members: Member[] } {
  let raw: unknown;
  try {
    raw = parse(readFileSync(configPath, 'utf8'));
  } catch (err) {
    fail(`cannot read: ${(err as Error).message}`);
  }
  const c = raw as Record<string, unknown>;
  const int = (key: string): number => {
    const v = c[key];
    if (!Number.isSafeInteger(v) || (v as number) <= 0) fail(`${key} must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  if (!Array.isArray(c.members) || c.members.length === 0) fail('members must be a non-empty list');
  const members = (c.members as unknown[]).map((m, i) => {
    const mm = m as Record<string, unknown>;
    for (const key of ['id', 'listen', 'data_dir']) {
      if (typeof mm[key] !== 'string' || (mm[key] as string).length === 0) fail(`members[${i}].${key} must be a non-empty string`);
    }
    if (!/^[^:]+:\d+$/.test(mm.listen as string)) fail(`members[${i}].listen must be HOST:PORT, got ${JSON.stringify(mm.listen)}`);
    return mm as unknown as Member;
  });
  return { tick: int('tick_ms'), election: int('election_ticks'), heartbeat: int('heartbeat_ticks'), members };
}

const cfg = loadConfig();
const peers = cfg.members.map((m) => `${m.id}=http://${m.listen}`).join(',');
const children = new Map<string, ChildProcess>();
let stopping = false;

for (const m of cfg.members) {
  const child = spawn(process.execPath, [
    '--import', 'tsx', join(root, 'src/raft/node/main.ts'),
    '--id', m.id, '--listen', m.listen, '--peers', peers, '--data-dir', join(root, m.data_dir),
    '--tick-ms', String(cfg.tick), '--election-ticks', String(cfg.election), '--heartbeat-ticks', String(cfg.heartbeat),
    '--exit-with-stdin',
  ], { cwd: root, stdio: ['pipe', 'ignore', 'pipe'] });
  child.stderr!.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      try {
        const rec = JSON.parse(line) as { level: number; msg: string; role?: string; term?: number };
        if (rec.level >= 40 || rec.msg === 'raft role') process.stdout.write(`[${m.id}] ${rec.msg}${rec.role ? ` ${rec.role} term ${rec.term}` : ''}\n`);
      } catch {
        process.stdout.write(`[${m.id}] ${line}\n`);
      }
    }
  });
  child.on('exit', (code, signal) => {
    children.delete(m.id);
    if (!stopping) {
      process.stderr.write(`start-cluster: member ${m.id} exited (${signal ?? code}); stopping the others\n`);
      void stop(1);
    }
  });
  children.set(m.id, child);
}

async function stop(code: number): Promise<void> {
  stopping = true;
  for (const child of children.values()) child.kill('SIGTERM');
  const deadline = Date.now() + 5000;
  while (children.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const child of children.values()) child.kill('SIGKILL');
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

async function leader(): Promise<{ id: string; term: number } | null> {
  for (const m of cfg.members) {
    try {
      const res = await fetch(`http://${m.listen}/v1/status`);
      const st = (await res.json()) as { role: string; id: string; term: number };
      if (st.role === 'leader') return { id: st.id, term: st.term };
    } catch {
      // not up yet
    }
  }
  return null;
}

const started = Date.now();
let found: { id: string; term: number } | null = null;
while (!found && Date.now() - started < 30_000) {
  await new Promise((r) => setTimeout(r, 200));
  found = await leader();
}
if (!found) {
  process.stderr.write('start-cluster: no leader after 30 s\n');
  await stop(1);
} else {
  const leaderMember = cfg.members.find((m) => m.id === found.id)!;
  process.stdout.write(`\nConclave raft cluster is up: ${cfg.members.length} members, leader ${found.id} (term ${found.term}).\n`);
  for (const m of cfg.members) process.stdout.write(`  ${m.id}  http://${m.listen}  data ${m.data_dir}\n`);
  process.stdout.write(`\nTry:\n  curl -X PUT -H 'content-type: application/json' -d '{"value":"hello"}' http://${leaderMember.listen}/v1/kv/greeting\n  curl http://${cfg.members[0].listen}/v1/kv/greeting\n  curl http://${cfg.members[0].listen}/v1/status\nCtrl-C stops every member.\n`);
}
