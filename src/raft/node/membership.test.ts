// Membership through the cluster's own HTTP endpoints: a fresh member tells a founding start from
// a join, is admitted by whichever member it asks (the request travels to the leader), and is
// made a voter once caught up; a removed member learns of its removal from its peers although
// nobody sends it anything any more; the leader hands over before removing itself.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { RAFT_JOIN_PATH, RAFT_REMOVE_PATH, chooseStartMode, requestMembershipChange } from './membership.ts';
import { MemberSet, until } from '../../../test/support/raft-members.ts';

const set = new MemberSet();
after(() => set.stopAll());

test('a member joins through any member, becomes a voter, and a removed member learns it was removed', async () => {
  const { members, peers, root } = await set.cluster(['a', 'b', 'c'], 'conclave-membership-');
  const [dPort] = await set.allocatePorts(1);
  const dUrl = `http://127.0.0.1:${dPort}`;
  const leader = await until('a leader', () => [...members.values()].find((m) => m.node.isLeader()));
  await leader.node.propose({ type: 'put', key: 'before', value: '1' });

  // The founders' own start is a bootstrap; a member they do not list joins.
  assert.deepEqual(await chooseStartMode(null, ['a', 'b', 'c'], [peers.b!, peers.c!]), { type: 'bootstrap' });
  assert.deepEqual(await chooseStartMode(null, ['a', 'b', 'c'], [`http://127.0.0.1:${dPort}`]), { type: 'bootstrap' }, 'nobody answers: found the cluster');
  const mode = await chooseStartMode(null, ['a', 'b', 'c', 'd'], Object.values(peers));
  assert.equal(mode.type, 'join');

  const d = await set.start('d', dPort, `${root}/d`, { ...peers, d: dUrl }, { join: true });
  const follower = [...members.values()].find((m) => m !== leader)!;
  const followerUrl = peers[follower.node.id]!;
  const conf = await requestMembershipChange(null, [followerUrl], RAFT_JOIN_PATH, { id: 'd', url: dUrl }, performance.now() + 10_000);
  assert.ok(conf.learners.includes('d') || conf.voters.includes('d'), 'admitted through a follower');
  await until('d a voter', () => leader.node.status().conf.voters.includes('d'));
  assert.equal(d.node.state.get('before')?.value, '1', 'caught up');

  // Asking again is harmless.
  const again = await requestMembershipChange(null, [followerUrl], RAFT_JOIN_PATH, { id: 'd', url: dUrl }, performance.now() + 10_000);
  assert.ok(again.voters.includes('d'));

  // A malformed request is refused with the problem named.
  const bad = await request(`${followerUrl}${RAFT_JOIN_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'x y', url: 'ftp://z' }) });
  assert.equal(bad.statusCode, 400);
  assert.match(await bad.body.text(), /body must be/);

  // Remove a follower other than the one we ask through; it learns of it from its peers.
  const victim = [...members.values()].find((m) => m !== leader && m !== follower)!;
  let told: Error | null = null;
  victim.node.once('removed', (err: Error) => (told = err));
  const afterRemoval = await requestMembershipChange(null, [dUrl], RAFT_REMOVE_PATH, { id: victim.node.id }, performance.now() + 10_000);
  assert.ok(!afterRemoval.voters.includes(victim.node.id));
  await until('the removed member to learn it', () => told, 15_000);
  assert.match(String(told), /was removed from the cluster/);

  // The leader is removed too: it hands leadership over first, and the request follows.
  const leaderId = leader.node.id;
  const withoutLeader = await requestMembershipChange(null, [peers[leaderId]!], RAFT_REMOVE_PATH, { id: leaderId }, performance.now() + 15_000);
  assert.deepEqual([...withoutLeader.voters].sort(), ['d', follower.node.id].sort());
  const r = await until('a write on the new leader', async () => {
    const l = [d, follower].find((m) => m.node.isLeader());
    return l ? l.node.propose({ type: 'put', key: 'after', value: '1' }) : null;
  });
  assert.equal(r.type, 'put');
});
