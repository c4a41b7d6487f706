// NetLab: namespaces on a shared cluster network plus control links; isolate/heal; cleanup.
// Needs root (network namespaces). Every probe runs as a real process inside a namespace.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { NETLAB_STATE_DIR, NetLab, cleanupStaleNetLabs, liveNetLabs } from './netlab.ts';
import { sleep, startProcess, stopAll } from './processes.ts';
import type { ProcessHandle } from './processes.ts';

/** Ports inside fresh namespaces are all free, so a fixed one is fine. */
const PORT = 7400;

/** TCP echo server on 0.0.0.0 (reachable via both the cluster and the control address). */
const ECHO_SERVER = `
const net = require('net');
const srv = net.createServer((s) => { s.on('error', () => {}); s.pipe(s); });
srv.listen(Number(process.argv[1]), '0.0.0.0', () => console.log('listening'));`;

/** One connection attempt; prints {"ok","code","ms"} and exits. */
const PROBE = `
const net = require('net');
const [host, port, ms] = process.argv.slice(1);
const t0 = Date.now();
const s = net.connect({ host, port: Number(port) });
const done = (r) => { console.log(JSON.stringify({ ...r, ms: Date.now() - t0 })); s.destroy(); process.exit(0); };
s.setTimeout(Number(ms), () => done({ ok: false, code: 'TIMEOUT' }));
s.on('connect', () => done({ ok: true, code: null }));
s.on('error', (e) => done({ ok: false, code: e.code }));`;

/** One long-lived connection: sends "ping <n>" every 100 ms and prints "echo <n>" for each echo. */
const STREAM_CLIENT = `
const net = require('net');
const [host, port] = process.argv.slice(1);
let n = 0, buf = '';
const s = net.connect({ host, port: Number(port) }, () => {
  console.log('connected');
  setInterval(() => s.write('ping ' + n++ + '\\n'), 100);
});
s.setEncoding('utf8');
s.on('data', (d) => {
  buf += d;
  for (let i; (i = buf.indexOf('\\n')) >= 0; buf = buf.slice(i + 1)) console.log('echo ' + buf.slice(0, i).split(' ')[1]);
});
s.on('error', (e) => { console.error(e.code); process.exit(1); });
s.on('close', () => process.exit(2));`;

interface ProbeResult {
  ok: boolean;
  code: string | null;
  ms: number;
}

/** A connect attempt from inside node `from`'s namespace. */
async function probeFrom(lab: NetLab, from: number, host: string, timeoutMs = 1500): Promise<ProbeResult> {
  const h = await startProcess({
    cmd: lab.execPrefix(from)[0]!,
    args: [...lab.execPrefix(from).slice(1), process.execPath, '-e', PROBE, host, String(PORT), String(timeoutMs)],
    name: `probe ${from}->${host}`,
  });
  await h.waitForExit(timeoutMs + 10_000);
  const line = h.stdoutLines.at(-1);
  assert.ok(line, `${h.describe()}\nprinted nothing`);
  return JSON.parse(line) as ProbeResult;
}

/** A connect attempt from the root namespace (this process). */
function probeFromRoot(host: string, timeoutMs = 1500): Promise<ProbeResult> {
  return new Promise((resolveProbe) => {
    const t0 = performance.now();
    const s = connect({ host, port: PORT });
    const done = (ok: boolean, code: string | null): void => {
      s.destroy();
      resolveProbe({ ok, code, ms: Math.round(performance.now() - t0) });
    };
    s.setTimeout(timeoutMs, () => done(false, 'TIMEOUT'));
    s.once('connect', () => done(true, null));
    s.once('error', (e: NodeJS.ErrnoException) => done(false, e.code ?? e.message));
  });
}

/** A SYN got through and something answered: a connection, or a RST from a port nobody listens on. */
const gotThrough = (r: ProbeResult): boolean => r.ok || r.code === 'ECONNREFUSED';

function ipOut(...args: string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolveRun) => {
    execFile('ip', args, (err, stdout, stderr) => resolveRun({ ok: !err, out: `${stdout}${stderr}` }));
  });
}

async function echoCount(client: ProcessHandle): Promise<number> {
  return client.stdoutLines.filter((l) => l.startsWith('echo ')).length;
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Our traces in the root namespace: namespaces, links and unreachable routes of `lab`. */
async function traces(lab: NetLab, nets: string[]): Promise<string[]> {
  const [netns, links, routes] = await Promise.all([ipOut('netns', 'list'), ipOut('-o', 'link', 'show'), ipOut('-4', 'route', 'show', 'table', 'all')]);
  return [
    ...netns.out.split('\n').filter((l) => l.startsWith(`cnl-${lab.id}-`)),
    ...links.out.split('\n').filter((l) => l.includes(`cnl${lab.id}`)),
    ...routes.out.split('\n').filter((l) => nets.some((net) => l.includes(net))),
  ];
}

describe('NetLab with 3 nodes', () => {
  let lab: NetLab;
  let server: ProcessHandle;
  let stream: ProcessHandle;

  before(async () => {
    lab = await NetLab.create(3);
    const [cmd, ...prefix] = lab.execPrefix(1);
    server = await startProcess({
      cmd: cmd!,
      args: [...prefix, process.execPath, '-e', ECHO_SERVER, String(PORT)],
      name: 'echo server in node 1',
      readyLine: (l) => l === 'listening',
      timeoutMs: 10_000,
    });
    const [cmd0, ...prefix0] = lab.execPrefix(0);
    stream = await startProcess({
      cmd: cmd0!,
      args: [...prefix0, process.execPath, '-e', STREAM_CLIENT, lab.clusterIp(1), String(PORT)],
      name: 'stream client in node 0',
      readyLine: (l) => l === 'connected',
      timeoutMs: 10_000,
    });
  });

  after(async () => {
    await stopAll(1000); // only processes this file started (by PID)
    for (const l of liveNetLabs()) await l.destroy();
  });

  test('addresses: distinct cluster /24 and control /30s, short interface names', () => {
    assert.equal(lab.size, 3);
    const cluster = [0, 1, 2].map((i) => lab.clusterIp(i));
    const control = [0, 1, 2].map((i) => lab.controlIp(i));
    assert.equal(new Set([...cluster, ...control]).size, 6);
    for (const a of cluster) assert.ok(a.startsWith(lab.clusterCidr.replace(/\.0\/24$/, '.')), a);
    assert.deepEqual(lab.execPrefix(1), ['ip', 'netns', 'exec', lab.nsName(1)]);
    for (const name of [lab.bridgeName, lab.clusterLink(2), lab.controlLink(2)]) assert.ok(name.length <= 15, name);
    assert.throws(() => lab.clusterIp(3), RangeError);
  });

  test('nodes reach each other on the cluster network; the root namespace reaches them only on control links', async () => {
    const [viaCluster, viaControl, twoToOne] = await Promise.all([
      probeFrom(lab, 0, lab.clusterIp(1)),
      probeFrom(lab, 0, lab.controlIp(1)),
      probeFrom(lab, 2, lab.clusterIp(1)),
    ]);
    assert.ok(viaCluster.ok, `node 0 -> cluster ip of node 1: ${JSON.stringify(viaCluster)}`);
    assert.ok(twoToOne.ok, `node 2 -> cluster ip of node 1: ${JSON.stringify(twoToOne)}`);
    // No route inside a namespace to another node's control link: it can't bypass a partition.
    assert.equal(viaControl.code, 'ENETUNREACH', `node 0 -> control ip of node 1: ${JSON.stringify(viaControl)}`);

    const rootToControl = await probeFromRoot(lab.controlIp(1));
    assert.ok(rootToControl.ok, `root -> control ip of node 1: ${JSON.stringify(rootToControl)}`);
    // Check the route before connecting: without the unreachable route the SYN would leave
    // through the default route of the root namespace.
    const route = await ipOut('route', 'get', lab.clusterIp(1));
    assert.ok(!route.ok && /No route to host/.test(route.out), `root ns must have no route to the cluster net: ${route.out}`);
    const rootToCluster = await probeFromRoot(lab.clusterIp(1));
    assert.equal(rootToCluster.code, 'EHOSTUNREACH', `root -> cluster ip of node 1: ${JSON.stringify(rootToCluster)}`);

    await waitFor('echoes on the long-lived connection', async () => (await echoCount(stream)) >= 3, 5000);
  });

  test('isolate(1) cuts node 1 off in both directions, established connections included; its control link stays up', async () => {
    await lab.isolate(1);
    assert.ok(lab.isIsolated(1));
    await sleep(200); // echoes already in flight
    const before = await echoCount(stream);
    const [zeroToOne, oneToZero, zeroToTwo] = await Promise.all([
      probeFrom(lab, 0, lab.clusterIp(1)),
      probeFrom(lab, 1, lab.clusterIp(0)), // nobody listens in node 0: a RST (ECONNREFUSED) would mean it got through
      probeFrom(lab, 0, lab.clusterIp(2)),
    ]);
    assert.ok(!gotThrough(zeroToOne), `node 0 -> node 1 while isolated: ${JSON.stringify(zeroToOne)}`);
    assert.ok(!gotThrough(oneToZero), `node 1 -> node 0 while isolated: ${JSON.stringify(oneToZero)}`);
    assert.ok(gotThrough(zeroToTwo), `node 0 -> node 2 (not isolated): ${JSON.stringify(zeroToTwo)}`);
    assert.equal(await echoCount(stream), before, 'no echo may get through on the established connection');
    assert.ok(stream.running, stream.describe());

    const rootToControl = await probeFromRoot(lab.controlIp(1));
    assert.ok(rootToControl.ok, `root -> control ip of isolated node 1: ${JSON.stringify(rootToControl)}`);
  });

  test('heal(1) restores connectivity, and the established connection resumes', async () => {
    await lab.heal(1);
    assert.ok(!lab.isIsolated(1));
    await waitFor('node 0 to reach node 1 again', async () => (await probeFrom(lab, 0, lab.clusterIp(1), 500)).ok, 5000);
    const now = await echoCount(stream);
    // The stalled connection resumes at its next retransmission (exponential backoff).
    await waitFor('echoes to resume on the established connection', async () => (await echoCount(stream)) > now + 2, 10_000);
    assert.ok(stream.running, stream.describe());
  });

  test('destroy() removes namespaces, links and routes, and is idempotent', async () => {
    await stream.stop(1000);
    await server.stop(1000);
    const nets = [lab.clusterCidr, lab.controlIp(0).replace(/\.\d+$/, '.0/24')];
    assert.notDeepEqual(await traces(lab, nets), []);
    await lab.destroy();
    await lab.destroy();
    assert.deepEqual(await traces(lab, nets), []);
    assert.ok(!liveNetLabs().includes(lab));
  });
});

describe('NetLab cleanup', () => {
  after(async () => {
    for (const l of liveNetLabs()) await l.destroy();
  });

  test('create rejects a bad size without leaving anything behind', async () => {
    await assert.rejects(NetLab.create(0), /n must be/);
    await assert.rejects(NetLab.create(65), /n must be/);
  });

  test('cleanupStaleNetLabs removes labs whose owner process is gone and spares live ones', async () => {
    const [live, stale] = await Promise.all([NetLab.create(1), NetLab.create(2)]);
    const staleNets = [stale.clusterCidr, stale.controlIp(0).replace(/\.\d+$/, '.0/24')];
    // Pretend `stale` belongs to a process that was SIGKILLed: give its records a dead PID.
    const deadPid = spawnSync('true').pid;
    for (const file of [`${stale.id}.json`, ...staleNets.map((n) => `net-${n.replace(/\.0\/24$/, '')}`)]) {
      const path = join(NETLAB_STATE_DIR, file);
      writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), pid: deadPid }));
    }
    await cleanupStaleNetLabs();
    assert.deepEqual(await traces(stale, staleNets), []);
    const liveNets = [live.clusterCidr, live.controlIp(0).replace(/\.\d+$/, '.0/24')];
    assert.equal((await traces(live, liveNets)).length, 1 + 3 + 2, 'live lab: 1 netns, 2 veths + bridge, 2 routes');
    await stale.destroy(); // everything already gone: still fine
    await live.destroy();
    assert.deepEqual(await traces(live, liveNets), []);
  });
});

/** UDP listener: prints "got <message>" for each datagram. */
const UDP_LISTENER = `
const d = require('dgram').createSocket('udp4');
d.on('message', (m) => console.log('got ' + String(m)));
d.bind(Number(process.argv[1]), '0.0.0.0', () => console.log('listening'));`;

/** Sends one message three times, 30 ms apart, then exits. */
const UDP_SEND = `
const d = require('dgram').createSocket('udp4');
const [host, port, msg] = process.argv.slice(1);
let n = 0;
const send = () => d.send(msg, Number(port), host, () => { if (++n < 3) setTimeout(send, 30); else d.close(); });
send();`;

const UDP_PORT = PORT + 1;

describe('NetLab partitions (tc, one way)', () => {
  let lab: NetLab;
  const listeners: ProcessHandle[] = [];
  let tag = 0;

  before(async () => {
    lab = await NetLab.create(3);
    for (let i = 0; i < 3; i++) {
      const [cmd, ...prefix] = lab.execPrefix(i);
      listeners.push(await startProcess({ cmd: cmd!, args: [...prefix, process.execPath, '-e', UDP_LISTENER, String(UDP_PORT)], name: `udp listener in node ${i}`, readyLine: (l) => l === 'listening', timeoutMs: 10_000 }));
    }
  });

  after(async () => {
    await stopAll(1000);
    for (const l of liveNetLabs()) await l.destroy();
  });

  /** Whether a datagram sent from node `from`'s namespace to node `to`'s cluster address arrives. */
  async function udpReaches(from: number, to: number): Promise<boolean> {
    const msg = `${from}->${to}#${tag++}`;
    const [cmd, ...prefix] = lab.execPrefix(from);
    const sender = await startProcess({ cmd: cmd!, args: [...prefix, process.execPath, '-e', UDP_SEND, lab.clusterIp(to), String(UDP_PORT), msg], name: `udp ${msg}` });
    await sender.waitForExit(10_000);
    const deadline = performance.now() + 700;
    while (performance.now() < deadline) {
      if (listeners[to]!.stdoutLines.includes(`got ${msg}`)) return true;
      await sleep(20);
    }
    return false;
  }

  async function reachability(): Promise<string[]> {
    const pairs = [[0, 1], [1, 0], [0, 2], [2, 0], [1, 2], [2, 1]] as const;
    const ok = await Promise.all(pairs.map(([a, b]) => udpReaches(a, b)));
    return pairs.filter((_, k) => ok[k]).map(([a, b]) => `${a}->${b}`);
  }

  const filterCount = async (i: number): Promise<number> => {
    const out = await new Promise<string>((resolveRun) => execFile('tc', ['-n', lab.nsName(i), 'filter', 'show', 'dev', 'cluster'], (_e, stdout) => resolveRun(stdout)));
    return out.split('\n').filter((l) => l.trim().startsWith('match ')).length;
  };

  test('without partitions every direction passes', async () => {
    assert.deepEqual(await reachability(), ['0->1', '1->0', '0->2', '2->0', '1->2', '2->1']);
  });

  test('partition([[0, 1]]) drops 0 -> 1 silently while 1 -> 0 still passes', async () => {
    await lab.partition([[0, 1]]);
    assert.deepEqual(lab.partitions(), [[0, 1]]);
    assert.deepEqual(await reachability(), ['1->0', '0->2', '2->0', '1->2', '2->1']);
    // Silent, as on a real network: a connect neither fails nor is refused, it hangs.
    const connect = await probeFrom(lab, 0, lab.clusterIp(1), 1000);
    assert.equal(connect.code, 'TIMEOUT', JSON.stringify(connect));
  });

  test('partition is idempotent and adds to the cuts in force; a two-way cut is both pairs', async () => {
    await lab.partition([[0, 1], [0, 1]]);
    assert.equal(await filterCount(0), 1);
    await lab.partition([[0, 2], [2, 0]]);
    assert.deepEqual(lab.partitions(), [[0, 1], [0, 2], [2, 0]]);
    assert.equal(await filterCount(0), 2);
    assert.deepEqual(await reachability(), ['1->0', '1->2', '2->1']);
    await assert.rejects(lab.partition([[1, 1]]), RangeError);
    await assert.rejects(lab.partition([[0, 3]]), RangeError);
  });

  test('healPartitions() removes every cut, twice is fine; isolate/heal are unaffected', async () => {
    await lab.healPartitions();
    await lab.healPartitions();
    assert.deepEqual(lab.partitions(), []);
    assert.equal(await filterCount(0), 0);
    assert.deepEqual(await reachability(), ['0->1', '1->0', '0->2', '2->0', '1->2', '2->1']);
    await lab.isolate(2);
    await lab.partition([[0, 1]]);
    assert.deepEqual(await reachability(), ['1->0']);
    await lab.heal(2);
    assert.deepEqual(await reachability(), ['1->0', '0->2', '2->0', '1->2', '2->1']);
  });

  test('destroy() with partitions in force leaves nothing behind', async () => {
    for (const l of listeners) await l.stop(1000);
    const nets = [lab.clusterCidr, lab.controlIp(0).replace(/\.\d+$/, '.0/24')];
    await lab.destroy();
    assert.deepEqual(lab.partitions(), []);
    assert.deepEqual(await traces(lab, nets), []);
  });
});
