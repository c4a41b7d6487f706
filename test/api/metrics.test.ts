// GET /metrics on real agents (one three-member cluster): every line is valid Prometheus text
// (format 0.0.4), Patroni's metric names and meanings hold on the primary and the replicas, the
// Raft metrics agree across members (one Raft leader, the leader's view of its peers), a sync
// standby shows once synchronous_mode is switched on, and a new Raft leader counts its campaign.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { AgentCluster } from '../support/agents.ts';
import { CONCLAVE_VERSION } from '../../src/ha/member-data.ts';
import { paddedVersion } from '../../src/api/metrics-api.ts';

const NAMES = ['n1', 'n2', 'n3'];
let c: AgentCluster;
let primary = '';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  raw: string;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const VALUE = '(?:[-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?|NaN|[-+]Inf)';
const SAMPLE_LINE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (${VALUE})(?: -?\\d+)?$`);
const HELP_LINE = new RegExp(`^# HELP (${NAME}) .*$`);
const TYPE_LINE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

/** Parses exposition text, asserting every line is valid and each metric is declared once, before its samples. */
function parse(text: string): Sample[] {
  assert.ok(text.endsWith('\n'), 'the text ends with a newline');
  const samples: Sample[] = [];
  const typed = new Set<string>();
  const helped = new Set<string>();
  const finished = new Set<string>();
  let current: string | null = null;
  for (const line of text.slice(0, -1).split('\n')) {
    const help = HELP_LINE.exec(line);
    const type = TYPE_LINE.exec(line);
    const sample = SAMPLE_LINE.exec(line);
    if (help) {
      assert.ok(!helped.has(help[1]!), `one HELP for ${help[1]}`);
      helped.add(help[1]!);
    } else if (type) {
      assert.ok(!typed.has(type[1]!), `one TYPE for ${type[1]}`);
      typed.add(type[1]!);
    } else if (sample) {
      const name = sample[1]!;
      assert.ok(typed.has(name), `TYPE before the samples of ${name}`);
      assert.ok(!finished.has(name), `the samples of ${name} are together`);
      if (current !== null && current !== name) finished.add(current);
      current = name;
      const labels: Record<string, string> = {};
      for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, ch: string) => (ch === 'n' ? '\n' : ch));
      samples.push({ name, labels, value: Number(sample[3]), raw: sample[3]! });
    } else {
      assert.fail(`not a valid exposition line: ${JSON.stringify(line)}`);
    }
  }
  return samples;
}

async function scrape(node: string): Promise<{ contentType: string; samples: Sample[] }> {
  const n = c.node(node);
  const res = await request(`http://${n.testHost}:${n.apiPort}/metrics`, { headersTimeout: 30_000, bodyTimeout: 30_000 });
  const text = await res.body.text();
  assert.equal(res.statusCode, 200, text);
  return { contentType: String(res.headers['content-type']), samples: parse(text) };
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

async function scrapeAll(names = NAMES): Promise<Record<string, Sample[]>> {
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, (await scrape(n)).samples] as const)));
}

const PATRONI_NAMES = [
  'patroni_version', 'patroni_postgres_running', 'patroni_postmaster_start_time', 'patroni_primary', 'patroni_master', 'patroni_replica',
  'patroni_sync_standby', 'patroni_standby_leader', 'patroni_xlog_location', 'patroni_xlog_received_location', 'patroni_xlog_replayed_location',
  'patroni_xlog_paused', 'patroni_postgres_server_version', 'patroni_cluster_unlocked', 'patroni_postgres_timeline', 'patroni_dcs_last_seen',
  'patroni_pending_restart', 'patroni_is_paused', 'patroni_postgres_streaming', 'patroni_postgres_state', 'patroni_failover_priority',
];
const RAFT_NAMES = ['conclave_raft_term', 'conclave_raft_leader', 'conclave_raft_commit_index', 'conclave_raft_applied_index', 'conclave_raft_last_index', 'conclave_raft_first_index', 'conclave_raft_snapshot_index', 'conclave_raft_elections_total'];

before(async () => {
  c = await AgentCluster.create(NAMES.map((name) => ({ name })));
  await c.startAll();
  primary = await c.waitForPrimary(NAMES, 120_000);
  await c.waitFor('both replicas streaming', async () => {
    const r = await Promise.all(NAMES.filter((n) => n !== primary).map((n) => c.api(n)));
    return r.every((x) => x?.body.replication_state === 'streaming');
  });
  // A replica streams a moment before its agent's clone task has finished ('creating replica').
  await c.waitFor('every member running', async () => (await Promise.all(NAMES.map((n) => c.api(n)))).every((x) => x?.body.state === 'running'));
});

after(() => c?.stopAll());

test('every line is valid exposition text; Patroni names, labels and meanings on the primary and the replicas', async () => {
  const first = await scrape(primary);
  assert.match(first.contentType, /^text\/plain; version=0\.0\.4/);
  const all = await c.waitFor('every member scraped with the cluster settled', async () => {
    const s = await scrapeAll();
    return NAMES.every((n) => value(s[n]!, 'patroni_cluster_unlocked') === 0 && value(s[n]!, 'patroni_postgres_running') === 1) ? s : null;
  });
  const now = Date.now() / 1000;
  for (const n of NAMES) {
    const s = all[n]!;
    for (const name of [...PATRONI_NAMES, ...RAFT_NAMES]) assert.ok(s.some((x) => x.name === name), `${n} has ${name}`);
    for (const x of s) {
      assert.equal(x.labels.scope, 'test', `${x.name} scope label`);
      assert.equal(x.labels.name, n, `${x.name} name label`);
    }
    const isPrimary = n === primary;
    assert.equal(value(s, 'patroni_primary'), isPrimary ? 1 : 0, `${n} patroni_primary`);
    assert.equal(value(s, 'patroni_master'), isPrimary ? 1 : 0);
    assert.equal(value(s, 'patroni_replica'), isPrimary ? 0 : 1, `${n} patroni_replica`);
    assert.equal(value(s, 'patroni_sync_standby'), 0, 'no synchronous mode yet');
    assert.equal(value(s, 'patroni_standby_leader'), 0);
    assert.equal(s.find((x) => x.name === 'patroni_version')?.raw, paddedVersion(CONCLAVE_VERSION));
    assert.ok(value(s, 'patroni_postgres_server_version')! >= 150000);
    assert.equal(value(s, 'patroni_postgres_timeline'), 1);
    assert.equal(value(s, 'patroni_postgres_state'), 5, 'running');
    assert.equal(value(s, 'patroni_is_paused'), 0);
    assert.equal(value(s, 'patroni_pending_restart'), 0);
    assert.equal(value(s, 'patroni_failover_priority'), 1);
    const started = value(s, 'patroni_postmaster_start_time')!;
    assert.ok(started > now - 3600 && started <= now + 1, `postmaster start time ${started} is recent`);
    const seen = value(s, 'patroni_dcs_last_seen')!;
    assert.ok(seen > now - 60 && seen <= now + 1, `dcs_last_seen ${seen} is recent`);
    if (isPrimary) {
      assert.ok(value(s, 'patroni_xlog_location')! > 0);
      assert.equal(value(s, 'patroni_xlog_received_location'), 0);
      assert.equal(value(s, 'patroni_postgres_streaming'), 0);
    } else {
      assert.equal(value(s, 'patroni_xlog_location'), 0);
      assert.ok(value(s, 'patroni_xlog_received_location')! > 0);
      assert.ok(value(s, 'patroni_xlog_replayed_location')! > 0);
      assert.equal(value(s, 'patroni_postgres_streaming'), 1);
    }
  }
});

test('Raft metrics: one leader across members, its view of both peers, indexes in order', async () => {
  const all = await c.waitFor('the members agreeing on one Raft term', async () => {
    const s = await scrapeAll();
    const terms = new Set(NAMES.map((n) => value(s[n]!, 'conclave_raft_term')));
    return terms.size === 1 ? s : null;
  });
  const leaders = NAMES.filter((n) => value(all[n]!, 'conclave_raft_leader') === 1);
  assert.equal(NAMES.reduce((sum, n) => sum + value(all[n]!, 'conclave_raft_leader')!, 0), 1, 'conclave_raft_leader sums to 1');
  const leader = leaders[0]!;
  for (const n of NAMES) {
    const s = all[n]!;
    const first = value(s, 'conclave_raft_first_index')!;
    const last = value(s, 'conclave_raft_last_index')!;
    assert.ok(value(s, 'conclave_raft_applied_index')! > 0);
    assert.ok(value(s, 'conclave_raft_commit_index')! <= last);
    assert.ok(first <= last + 1);
    assert.equal(value(s, 'conclave_raft_snapshot_index'), first - 1);
    const peerIds = NAMES.filter((x) => x !== n).map((x) => `127.0.0.1:${c.node(x).raftPort}`).sort();
    const matches = s.filter((x) => x.name === 'conclave_raft_peer_match_index');
    const contacts = s.filter((x) => x.name === 'conclave_raft_peer_last_contact_seconds');
    if (n === leader) {
      assert.deepEqual(matches.map((x) => x.labels.peer).sort(), peerIds);
      for (const m of matches) assert.ok(m.value > 0 && m.value <= last);
      assert.deepEqual(contacts.map((x) => x.labels.peer).sort(), peerIds);
      for (const x of contacts) assert.ok(x.value >= 0 && x.value < 10, `${x.labels.peer} heard ${x.value} s ago`);
      assert.ok(value(s, 'conclave_raft_elections_total')! >= 1, 'the leader campaigned');
    } else {
      assert.deepEqual(matches, [], 'peer progress is shown by the leader only');
      assert.deepEqual(contacts, []);
    }
  }
});

test('patroni_sync_standby once synchronous_mode is switched on; a new Raft leader counts its campaign', async () => {
  const n = c.node(primary);
  const res = await request(`http://${n.testHost}:${n.apiPort}/config`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ synchronous_mode: true }), headersTimeout: 30_000, bodyTimeout: 30_000 });
  assert.equal(res.statusCode, 200, await res.body.text());
  await c.waitFor('exactly one sync standby in the metrics, and not the primary', async () => {
    const s = await scrapeAll();
    const sync = NAMES.filter((x) => value(s[x]!, 'patroni_sync_standby') === 1);
    return sync.length === 1 && sync[0] !== primary;
  });

  const before = await scrapeAll();
  const raftLeader = NAMES.find((x) => value(before[x]!, 'conclave_raft_leader') === 1)!;
  const survivors = NAMES.filter((x) => x !== raftLeader);
  c.killAgent(raftLeader);
  const after = await c.waitFor('another member leading Raft', async () => {
    const s = await scrapeAll(survivors);
    return survivors.some((x) => value(s[x]!, 'conclave_raft_leader') === 1) ? s : null;
  });
  const next = survivors.find((x) => value(after[x]!, 'conclave_raft_leader') === 1)!;
  assert.equal(survivors.reduce((sum, x) => sum + value(after[x]!, 'conclave_raft_leader')!, 0), 1);
  assert.ok(value(after[next]!, 'conclave_raft_elections_total')! > value(before[next]!, 'conclave_raft_elections_total')!, 'the campaign was counted');
  assert.ok(value(after[next]!, 'conclave_raft_term')! > value(before[next]!, 'conclave_raft_term')!);
});
