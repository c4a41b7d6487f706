// Network namespaces for partition tests: N nodes, each in its own network namespace, on one shared
// "cluster" network, plus one private "control" link per node to the root namespace, so a test can
// cut a node off the cluster while it still observes every node. Needs root and iproute2 (`ip`, `tc`);
// no iptables/nft is used.
//
// Layout of a lab with id <id> (6 random hex digits) and nodes i = 0..n-1:
//
//   root namespace                                     namespace cnl-<id>-<i>
//   bridge cnl<id>br (no address) ── cnl<id>c<i> ═══ veth ═══ "cluster"  10.A.B.(i+1)/24
//   cnl<id>k<i>  10.C.D.(4i+1)/30 ═══════════════════ veth ═══ "control"  10.C.D.(4i+2)/30
//
// - Cluster network 10.A.B.0/24 and control network 10.C.D.0/24 are random /24s (A, C in 100..250)
//   that overlap no address or route of the root namespace and no other live lab (claimed with lock
//   files, as ports are in processes.ts).
// - Inside a namespace there are only connected routes (lo, the cluster /24, the node's own control
//   /30) and no default route: a node can reach the other nodes' cluster addresses and the root end
//   of its own control link, nothing else. Another node's control address is unroutable, so the
//   control links can never bypass a partition, whatever the root namespace's ip_forward says.
// - The root namespace gets `unreachable` routes (proto 232) for both /24s. Without them, the root
//   namespace would send packets for cluster addresses out of its default route (they are not
//   connected there) and something outside might even answer; with them, connecting from the root
//   namespace to a cluster address fails at once with EHOSTUNREACH. The root namespace reaches the
//   nodes only through the connected /30 routes of the control links.
// - IPv6 is not configured on our links (addrgenmode none), so there are no link-local addresses
//   that could give a second path. lo is up in every namespace (127.0.0.1 and ::1).
// - isolate(i) sets the root end of the node's cluster veth down: the bridge drops its port and the
//   node's end loses carrier, so nothing passes in either direction, established TCP connections
//   included (their packets are silently dropped; they retransmit, and resume after heal(i)). The
//   node keeps its cluster address, so sockets bound to it stay valid.
// - partition(pairs) drops chosen directions only: for a pair [from, to], node `from`'s namespace
//   drops every IPv4 packet it would send to node `to`'s cluster address, with tc on its "cluster"
//   interface. The usual `prio` qdisc plus `u32 ... action drop` is not available on every kernel
//   (this one has neither sch_prio nor act_gact, nor netem), so the drop is built from what is:
//   an htb root (`default 0`: unclassified packets bypass it untouched), one htb class whose leaf
//   is a `pfifo limit 0` (it admits nothing: every packet classified there is dropped), and u32
//   filters `match ip dst <to>/32 flowid 1:1`, with no action module. Nobody answers and no ICMP
//   is sent. A TCP sender sees a local drop as congestion and retransmits on its timer, so a
//   connect or a request hangs as across a real partition; a UDP send reports success. A two-way
//   cut is both pairs. ARP is not IPv4 and passes, so the other direction keeps working: with
//   [[0, 1]], UDP from 1 reaches 0 and TCP segments from 1 arrive at 0, though a TCP handshake
//   either way cannot complete (0's answers are dropped). healPartitions() removes every such cut.
//   Independent of isolate(): a node can be isolated and partitioned at once.
//
// Cleanup: every lab is in a module registry; destroy() (call it in after()) deletes its links,
// routes and namespaces, and a process 'exit' hook does the same for labs still registered. A
// process killed by a signal leaves its lab behind: cleanupStaleNetLabs() (which create() also
// runs) removes every lab whose owner process is gone. Ownership is recorded in a state file per
// lab under <tmpdir>/conclave-netlabs holding the owner's PID; labs of live processes (for instance
// test files running in parallel) are left alone. destroy() does not kill processes still running
// inside a namespace (stop them first); the namespace then lingers, without links, until they exit.
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from './processes.ts';

/** Namespaces are named cnl-<id>-<i>; links in the root namespace cnl<id>br, cnl<id>c<i>, cnl<id>k<i>. */
export const NETLAB_PREFIX = 'cnl';
/** Names of the node's interfaces inside its namespace. */
export const CLUSTER_IFNAME = 'cluster';
export const CONTROL_IFNAME = 'control';
export const MAX_NETLAB_NODES = 64; // 64 control /30s fit in one /24
/** Routing protocol number marking our `unreachable` routes in the root namespace. */
const ROUTE_PROTO = '232';
/** Owner records: <id>.json per lab, net-10.A.B per claimed subnet, each {"pid", "id"}. */
export const NETLAB_STATE_DIR = join(tmpdir(), 'conclave-netlabs');
const STATE_DIR = NETLAB_STATE_DIR;
const NETNS_RE = new RegExp(`^${NETLAB_PREFIX}-([0-9a-f]{6})-\\d+$`);
const LINK_RE = new RegExp(`^${NETLAB_PREFIX}([0-9a-f]{6})(?:br|c\\d+|k\\d+)$`);
/** stderr of `ip` when the thing to delete is already gone. */
const GONE_RE = /Cannot find device|No such file or directory|No such process|does not exist|Cannot open network namespace/;
/** The htb class of partition() whose pfifo of length 0 drops whatever the filters send it. */
const DROP_CLASS = '1:1';
/** stderr of `tc qdisc del ... root` when there is no root qdisc of ours (only the default noqueue). */
const NO_QDISC_RE = /Cannot delete qdisc with handle of zero|Invalid handle|No such file or directory|Cannot find device|Cannot open network namespace/;

const registry = new Set<NetLab>();

export class NetLab {
  readonly id: string;
  readonly size: number;
  /** "10.A.B" and "10.C.D"; null until claimed (create failed early). */
  private clusterNet: string | null = null;
  private controlNet: string | null = null;
  private readonly isolated = new Set<number>();
  /** Cuts by sender: the nodes whose cluster address node `from`'s tc filters drop. */
  private readonly blocked = new Map<number, Set<number>>();

  private constructor(id: string, size: number) {
    this.id = id;
    this.size = size;
  }

  static async create(n: number): Promise<NetLab> {
    if (!Number.isInteger(n) || n < 1 || n > MAX_NETLAB_NODES) throw new Error(`NetLab.create: n must be 1..${MAX_NETLAB_NODES}, got ${n}`);
    installExitHook();
    await cleanupStaleNetLabs().catch(() => undefined); // best effort: leftovers of killed runs
    const lab = new NetLab(claimLabId(), n);
    registry.add(lab);
    try {
      const used = await usedIpv4Ranges();
      lab.clusterNet = claimSubnet(lab.id, used);
      lab.controlNet = claimSubnet(lab.id, used);
      await lab.build();
      return lab;
    } catch (err) {
      await lab.destroy().catch(() => undefined);
      throw err;
    }
  }

  /** The cluster network, e.g. "10.123.45.0/24". */
  get clusterCidr(): string {
    return `${this.nets().cluster}.0/24`;
  }

  /** The node's address on the shared cluster network (what agents use to talk to each other). */
  clusterIp(i: number): string {
    return `${this.nets(i).cluster}.${i + 1}`;
  }

  /** The node's address on its private control link with the root namespace (what the test uses to observe it). */
  controlIp(i: number): string {
    return `${this.nets(i).control}.${4 * i + 2}`;
  }

  /** The root namespace's end of node i's control link (the only non-cluster address node i can reach). */
  controlPeerIp(i: number): string {
    return `${this.nets(i).control}.${4 * i + 1}`;
  }

  /** argv prefix to run a command inside node i's namespace: ['ip','netns','exec', name] */
  execPrefix(i: number): string[] {
    return ['ip', 'netns', 'exec', this.nsName(i)];
  }

  nsName(i: number): string {
    this.checkIndex(i);
    return `${NETLAB_PREFIX}-${this.id}-${i}`;
  }

  /** Root-namespace end of node i's cluster veth (a bridge port); e.g. for tc netem. */
  clusterLink(i: number): string {
    this.checkIndex(i);
    return `${NETLAB_PREFIX}${this.id}c${i}`;
  }

  /** Root-namespace end of node i's control veth. */
  controlLink(i: number): string {
    this.checkIndex(i);
    return `${NETLAB_PREFIX}${this.id}k${i}`;
  }

  get bridgeName(): string {
    return `${NETLAB_PREFIX}${this.id}br`;
  }

  isIsolated(i: number): boolean {
    this.checkIndex(i);
    return this.isolated.has(i);
  }

  /** Cut node i off the cluster network (both directions), leaving its control link up. */
  async isolate(i: number): Promise<void> {
    await ip('link', 'set', 'dev', this.clusterLink(i), 'down');
    this.isolated.add(i);
  }

  async heal(i: number): Promise<void> {
    await ip('link', 'set', 'dev', this.clusterLink(i), 'up');
    this.isolated.delete(i);
  }

  /**
   * Drops every packet from node `from` to node `to`'s cluster address, for each [from, to] pair
   * (one way; a two-way cut is both pairs). Adds to the cuts already in force; a pair already cut
   * is left as it is, so calling this twice with the same pairs changes nothing.
   */
  async partition(blocked: ReadonlyArray<readonly [from: number, to: number]>): Promise<void> {
    const bySender = new Map<number, Set<number>>();
    for (const [from, to] of blocked) {
      this.checkIndex(from);
      this.checkIndex(to);
      if (from === to) throw new RangeError(`NetLab ${this.id}: cannot cut node ${from} off from itself`);
      if (!bySender.has(from)) bySender.set(from, new Set());
      bySender.get(from)!.add(to);
    }
    // Senders in parallel, each one's filters in order (tc assigns their handles).
    await Promise.all(
      [...bySender].map(async ([from, targets]) => {
        const ns = this.nsName(from);
        let cut = this.blocked.get(from);
        if (!cut) {
          try {
            await tc('-n', ns, 'qdisc', 'replace', 'dev', CLUSTER_IFNAME, 'root', 'handle', '1:', 'htb', 'default', '0');
            await tc('-n', ns, 'class', 'add', 'dev', CLUSTER_IFNAME, 'parent', '1:', 'classid', DROP_CLASS, 'htb', 'rate', '1kbit', 'quantum', '1514');
            await tc('-n', ns, 'qdisc', 'add', 'dev', CLUSTER_IFNAME, 'parent', DROP_CLASS, 'handle', '2:', 'pfifo', 'limit', '0');
          } catch (err) {
            await tc('-n', ns, 'qdisc', 'del', 'dev', CLUSTER_IFNAME, 'root').catch(() => undefined); // back to no qdisc of ours
            throw err;
          }
          cut = new Set();
          this.blocked.set(from, cut);
        }
        for (const to of targets) {
          if (cut.has(to)) continue;
          await tc('-n', ns, 'filter', 'add', 'dev', CLUSTER_IFNAME, 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'dst', `${this.clusterIp(to)}/32`, 'flowid', DROP_CLASS);
          cut.add(to);
        }
      }),
    );
  }

  /** Removes every cut made by partition() (not isolate()). Idempotent. */
  async healPartitions(): Promise<void> {
    const senders = [...this.blocked.keys()];
    const results = await Promise.allSettled(senders.map((from) => tc('-n', this.nsName(from), 'qdisc', 'del', 'dev', CLUSTER_IFNAME, 'root')));
    const errors: Error[] = [];
    for (const [k, r] of results.entries()) {
      if (r.status === 'fulfilled' || NO_QDISC_RE.test(String(r.reason))) this.blocked.delete(senders[k]!);
      else errors.push(r.reason as Error);
    }
    if (errors.length > 0) throw new AggregateError(errors, `NetLab ${this.id}: healPartitions failed: ${errors.map((e) => e.message).join('; ')}`);
  }

  /** The [from, to] pairs partition() cuts now, sorted. */
  partitions(): Array<[from: number, to: number]> {
    const pairs: Array<[number, number]> = [];
    for (const [from, cut] of this.blocked) for (const to of cut) pairs.push([from, to]);
    return pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  }

  /** Removes namespaces, bridge, veths and routes. Idempotent; safe after a half-way create. */
  async destroy(): Promise<void> {
    const errors: Error[] = [];
    for (const step of this.teardownSteps()) {
      const results = await Promise.allSettled(step.map((args) => ip(...args)));
      for (const r of results) if (r.status === 'rejected' && !GONE_RE.test(String(r.reason))) errors.push(r.reason as Error);
    }
    if (errors.length > 0) throw new AggregateError(errors, `NetLab ${this.id}: destroy failed: ${errors.map((e) => e.message).join('; ')}`);
    this.forget();
  }

  /** destroy() for the process 'exit' hook, which must be synchronous. Never throws. */
  destroySync(): void {
    for (const step of this.teardownSteps()) for (const args of step) spawnSync('ip', args, { stdio: 'ignore', timeout: 5000 });
    this.forget();
  }

  // -------------------------------------------------------------------------------------------

  private async build(): Promise<void> {
    const { cluster, control } = this.nets();
    const br = this.bridgeName;
    // Routes first: from now on nothing for these subnets leaves through the default route.
    await ip('route', 'add', 'unreachable', `${cluster}.0/24`, 'proto', ROUTE_PROTO);
    await ip('route', 'add', 'unreachable', `${control}.0/24`, 'proto', ROUTE_PROTO);
    await ip('link', 'add', 'name', br, 'type', 'bridge', 'stp_state', '0');
    await ip('link', 'set', 'dev', br, 'addrgenmode', 'none');
    await ip('link', 'set', 'dev', br, 'up');
    await Promise.all(
      Array.from({ length: this.size }, async (_, i) => {
        const ns = this.nsName(i);
        const c = this.clusterLink(i);
        const k = this.controlLink(i);
        await ip('netns', 'add', ns);
        await ip('-n', ns, 'link', 'set', 'dev', 'lo', 'up');
        // Cluster link: bridge port <-> "cluster" in the namespace.
        await ip('link', 'add', 'name', c, 'type', 'veth', 'peer', 'name', CLUSTER_IFNAME, 'netns', ns);
        await ip('link', 'set', 'dev', c, 'addrgenmode', 'none');
        await ip('link', 'set', 'dev', c, 'master', br, 'up');
        await ip('-n', ns, 'link', 'set', 'dev', CLUSTER_IFNAME, 'addrgenmode', 'none');
        await ip('-n', ns, 'addr', 'add', `${this.clusterIp(i)}/24`, 'dev', CLUSTER_IFNAME);
        await ip('-n', ns, 'link', 'set', 'dev', CLUSTER_IFNAME, 'up');
        // Control link: point-to-point /30 between the root namespace and the node.
        await ip('link', 'add', 'name', k, 'type', 'veth', 'peer', 'name', CONTROL_IFNAME, 'netns', ns);
        await ip('link', 'set', 'dev', k, 'addrgenmode', 'none');
        await ip('addr', 'add', `${this.controlPeerIp(i)}/30`, 'dev', k);
        await ip('link', 'set', 'dev', k, 'up');
        await ip('-n', ns, 'link', 'set', 'dev', CONTROL_IFNAME, 'addrgenmode', 'none');
        await ip('-n', ns, 'addr', 'add', `${this.controlIp(i)}/30`, 'dev', CONTROL_IFNAME);
        await ip('-n', ns, 'link', 'set', 'dev', CONTROL_IFNAME, 'up');
      }),
    );
  }

  /** `ip` argument lists, in steps; the commands of one step may run in parallel. */
  private teardownSteps(): string[][][] {
    const nodes = Array.from({ length: this.size }, (_, i) => i);
    // Deleting the root end of a veth deletes the pair, even if processes keep the namespace alive.
    const links = nodes.flatMap((i) => [['link', 'del', 'dev', this.clusterLink(i)], ['link', 'del', 'dev', this.controlLink(i)]]);
    const routes = [this.clusterNet, this.controlNet]
      .filter((net): net is string => net !== null)
      .map((net) => ['route', 'del', 'unreachable', `${net}.0/24`, 'proto', ROUTE_PROTO]);
    return [links, [['link', 'del', 'dev', this.bridgeName], ...routes], nodes.map((i) => ['netns', 'del', this.nsName(i)])];
  }

  private forget(): void {
    for (const net of [this.clusterNet, this.controlNet]) if (net !== null) releaseClaim(net, this.id);
    removeFile(join(STATE_DIR, `${this.id}.json`));
    this.isolated.clear();
    this.blocked.clear(); // the qdiscs went with the namespaces' links
    registry.delete(this);
  }

  private nets(i?: number): { cluster: string; control: string } {
    if (i !== undefined) this.checkIndex(i);
    if (this.clusterNet === null || this.controlNet === null) throw new Error(`NetLab ${this.id}: not created`);
    return { cluster: this.clusterNet, control: this.controlNet };
  }

  private checkIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.size) throw new RangeError(`NetLab ${this.id}: no node ${i} (size ${this.size})`);
  }
}

/** Labs created by this process and not destroyed yet. */
export function liveNetLabs(): NetLab[] {
  return [...registry];
}

/**
 * Removes every lab (namespaces cnl-*, links cnl*, our unreachable routes, state and claim files)
 * whose owner process is no longer running, or that has no state file at all. Labs of running
 * processes, this one included, are left alone. Never touches anything without our prefix.
 */
export async function cleanupStaleNetLabs(): Promise<void> {
  const live = liveLabIds();
  const [netnsOut, linkOut, routeOut] = await Promise.all([
    ip('netns', 'list').catch(() => ''),
    ip('-o', 'link', 'show').catch(() => ''),
    ip('-4', 'route', 'show', 'proto', ROUTE_PROTO).catch(() => ''),
  ]);
  const staleNs = netnsOut
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => isStale(NETNS_RE.exec(name)?.[1], live));
  const staleLinks = linkOut
    .split('\n')
    .map((line) => (/^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? ''))
    .filter((name) => isStale(LINK_RE.exec(name)?.[1], live));
  const claimed = liveClaims();
  const staleRoutes = routeOut
    .split('\n')
    .map((line) => /^unreachable (10\.\d+\.\d+)\.0\/24/.exec(line)?.[1])
    .filter((net): net is string => net !== undefined && !claimed.has(net));
  const quiet = (args: string[]): Promise<unknown> => ip(...args).catch(() => undefined);
  // Veths first (they go with their pair), then bridges; then namespaces and routes.
  const notBridge = staleLinks.filter((name) => !name.endsWith('br'));
  await Promise.all(notBridge.map((name) => quiet(['link', 'del', 'dev', name])));
  await Promise.all(staleLinks.filter((name) => name.endsWith('br')).map((name) => quiet(['link', 'del', 'dev', name])));
  await Promise.all([
    ...staleNs.map((name) => quiet(['netns', 'del', name])),
    ...staleRoutes.map((net) => quiet(['route', 'del', 'unreachable', `${net}.0/24`, 'proto', ROUTE_PROTO])),
  ]);
  // State and claim files of dead owners go last, so a crash in between leaves them to retry.
  for (const file of listStateDir(true)) {
    const pid = file.endsWith('.tmp') ? Number(file.split('.').at(-3)) : Number(readJson(join(STATE_DIR, file))?.pid);
    if (!isAlive(pid)) removeFile(join(STATE_DIR, file));
  }
}

function isStale(id: string | undefined, live: Set<string>): boolean {
  return id !== undefined && !live.has(id);
}

// ---------------------------------------------------------------------------------------------
// Ownership: <STATE_DIR>/<id>.json and <STATE_DIR>/net-10.A.B, each holding {"pid", "id"}; created
// with O_EXCL so two processes never get the same lab id or subnet.

function ownerRecord(id: string): string {
  return JSON.stringify({ pid: process.pid, id });
}

function claimLabId(): string {
  mkdirSync(STATE_DIR, { recursive: true });
  for (let attempt = 0; attempt < 20; attempt++) {
    const id = randomBytes(3).toString('hex');
    if (createExclusive(join(STATE_DIR, `${id}.json`), ownerRecord(id))) return id;
  }
  throw new Error('NetLab: could not pick a lab id');
}

/** Picks and claims a random 10.A.B.0/24 (A in 100..250) that overlaps nothing in `used`; adds it to `used`. */
function claimSubnet(id: string, used: Array<[number, number]>): string {
  for (let attempt = 0; attempt < 200; attempt++) {
    const net = `10.${randomInt(100, 251)}.${randomInt(0, 256)}`;
    const range = cidrRange(`${net}.0/24`);
    if (used.some(([lo, hi]) => lo <= range[1] && range[0] <= hi)) continue;
    const path = join(STATE_DIR, `net-${net}`);
    let claimed = createExclusive(path, ownerRecord(id));
    if (!claimed && !isAlive(Number(readJson(path)?.pid))) {
      removeFile(path); // its owner is gone
      claimed = createExclusive(path, ownerRecord(id));
    }
    if (!claimed) continue;
    used.push(range);
    return net;
  }
  throw new Error('NetLab: found no free /24 in 10.100.0.0-10.250.255.255');
}

function releaseClaim(net: string, id: string): void {
  const path = join(STATE_DIR, `net-${net}`);
  if (readJson(path)?.id === id) removeFile(path);
}

function liveLabIds(): Set<string> {
  const ids = new Set<string>();
  for (const file of listStateDir()) {
    if (!file.endsWith('.json')) continue;
    const rec = readJson(join(STATE_DIR, file));
    if (rec && typeof rec.id === 'string' && isAlive(Number(rec.pid))) ids.add(rec.id);
  }
  return ids;
}

function liveClaims(): Set<string> {
  const nets = new Set<string>();
  for (const file of listStateDir()) {
    if (file.startsWith('net-') && isAlive(Number(readJson(join(STATE_DIR, file))?.pid))) nets.add(file.slice('net-'.length));
  }
  return nets;
}

/** Writes the file completely, then links it into place only if nothing is there yet. */
function createExclusive(path: string, content: string): boolean {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx');
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path); // unlike rename, a hard link fails with EEXIST instead of replacing
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    removeFile(tmp);
  }
}

function readJson(path: string): { pid?: unknown; id?: unknown } | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as { pid?: unknown; id?: unknown };
  } catch {
    return null;
  }
}

function listStateDir(withTemporary = false): string[] {
  try {
    return readdirSync(STATE_DIR).filter((f) => withTemporary || !f.endsWith('.tmp'));
  } catch {
    return [];
  }
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

// ---------------------------------------------------------------------------------------------
// IPv4 ranges in use in the root namespace: its addresses and routes (all tables; not default).

const ROUTE_TYPES = new Set(['unicast', 'local', 'broadcast', 'multicast', 'unreachable', 'blackhole', 'prohibit', 'throw', 'nat', 'anycast']);

async function usedIpv4Ranges(): Promise<Array<[number, number]>> {
  const [addrs, routes] = await Promise.all([ip('-o', '-4', 'addr', 'show'), ip('-4', 'route', 'show', 'table', 'all')]);
  const prefixes: string[] = [];
  for (const line of addrs.split('\n')) {
    const m = /\binet (\d+\.\d+\.\d+\.\d+(?:\/\d+)?)/.exec(line);
    if (m?.[1]) prefixes.push(m[1]);
  }
  for (const line of routes.split('\n')) {
    const tokens = line.trim().split(/\s+/);
    const dst = ROUTE_TYPES.has(tokens[0] ?? '') ? tokens[1] : tokens[0];
    if (dst && /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dst) && !dst.endsWith('/0')) prefixes.push(dst);
  }
  return prefixes.map(cidrRange);
}

function cidrRange(cidr: string): [number, number] {
  const [addr = '', lenText] = cidr.split('/');
  const len = lenText === undefined ? 32 : Number(lenText);
  const value = addr.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const size = 2 ** (32 - len);
  const lo = Math.floor(value / size) * size;
  return [lo, lo + size - 1];
}

// ---------------------------------------------------------------------------------------------

function ip(...args: string[]): Promise<string> {
  return new Promise((resolveRun, rejectRun) => {
    execFile('ip', args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) rejectRun(new Error(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolveRun(stdout);
    });
  });
}

function tc(...args: string[]): Promise<string> {
  return new Promise((resolveRun, rejectRun) => {
    execFile('tc', args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) rejectRun(new Error(`tc ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolveRun(stdout);
    });
  });
}

let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lab of registry) lab.destroySync();
  });
}
