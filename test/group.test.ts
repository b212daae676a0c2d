// The group: pairing a device with one member brings it into the whole group (members
// introduce each other, also to members offline at the time), and a revocation spreads the
// same way without a revoked device ever coming back. Real `sd` processes, real mounts, a
// local DHT testnet; the trust rules of a membership message checked on a real library.
import hypercoreCrypto from 'hypercore-crypto';
import t from 'tap';
import { applyMembership, membershipOf } from '../src/replication/group.js';
import type { GroupMembership } from '../src/replication/messages.js';
import { listPeers, peerByKey, revokePeer, savePairedPeer, type Peer } from '../src/vdfs/peers.js';
import { runSd, tempLibrary, waitFor } from './helpers.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';
import { pair, testnetAddress, waitForPeerFile } from './remote-helpers.js';

interface DeviceJson {
  name: string;
  revoked: boolean;
  introduced_by: string | null;
  revoked_by: string | null;
  online: boolean;
}

async function devicesOf(library: string): Promise<DeviceJson[]> {
  const r = await runSd(['--json', 'devices'], { library });
  if (r.code !== 0) throw new Error(`sd devices failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as DeviceJson[];
}

/** Polls `sd devices` on `library` until `check` holds for the device named `name`. */
async function untilDevice(library: string, name: string, check: (d: DeviceJson) => boolean, timeoutMs = 30_000): Promise<DeviceJson | undefined> {
  let last: DeviceJson | undefined;
  const ok = await waitFor(async () => {
    last = (await devicesOf(library)).find((d) => d.name === name);
    return last !== undefined && check(last);
  }, timeoutMs, 250);
  return ok ? last : undefined;
}

t.test('a device paired with one member joins the group, also with members offline then; a revocation spreads and a revoked device is not introduced again', async (t) => {
  const [a, b, c] = await Promise.all([
    libraryWithLocation(t, { 'a.txt': 'from alpha' }, 'alpha'),
    libraryWithLocation(t, { 'b.txt': 'from beta' }, 'beta'),
    libraryWithLocation(t, { 'c.txt': 'from carol' }, 'carol'),
  ]);
  const bootstrap = await testnetAddress(t);
  const mountArgs = ['--bootstrap', bootstrap];

  await pair(t, b.library, a.library, bootstrap);
  let mountB = await startMount(t, b.library, mountArgs);
  // Alpha is offline (no mount) while Carol pairs with Beta and comes up.
  await pair(t, b.library, c.library, bootstrap);
  const mountC = await startMount(t, c.library, mountArgs);
  const alphaAtCarol = await untilDevice(c.library, 'alpha', (d) => d.introduced_by === 'beta');
  t.ok(alphaAtCarol, 'Carol is paired with Alpha, introduced by Beta, while Alpha is offline');

  const mountA = await startMount(t, a.library, mountArgs, undefined, { SD_LOG: 'info' });
  await waitForPeerFile(mountA, 'carol/data/c.txt', 'from carol');
  t.pass("Alpha reads Carol's tree once it comes up");
  await waitForPeerFile(mountC, 'alpha/data/a.txt', 'from alpha');
  t.pass("Carol reads Alpha's tree");
  t.match((await devicesOf(a.library)).find((d) => d.name === 'carol'), { introduced_by: 'beta', revoked: false }, 'Alpha lists Carol as introduced by Beta');

  // Beta is offline when Alpha revokes Carol; it still lists Carol as a member when it returns.
  t.equal(await mountB.stop(), 0, "Beta's mount stops");
  const revoke = await runSd(['devices', 'revoke', 'carol'], { library: a.library });
  t.equal(revoke.code, 0, `sd devices revoke exits 0 ${revoke.stderr}`);
  mountB = await startMount(t, b.library, mountArgs);
  t.ok(await untilDevice(b.library, 'carol', (d) => d.revoked && d.revoked_by === 'alpha'), "Beta takes up Alpha's revocation of Carol when it reconnects");
  t.ok(await waitFor(() => mountA.stderr().includes("an introduction of 'carol', revoked here"), 10_000), "Alpha refused Beta's introduction of Carol");
  t.match((await devicesOf(a.library)).find((d) => d.name === 'carol'), { revoked: true, revoked_by: null }, 'Carol stays revoked on Alpha');
  const carolSees = await untilDevice(c.library, 'alpha', (d) => !d.online, 15_000);
  t.ok(carolSees, 'Carol is cut off from Alpha');
  t.ok(await untilDevice(c.library, 'beta', (d) => !d.online, 15_000), 'and from Beta');
});

/** A device of a test's group: its library's peers row as another device would hold it. */
function deviceOf(name: string) {
  const keys = hypercoreCrypto.keyPair();
  const logKey = hypercoreCrypto.keyPair().publicKey;
  return { keys, info: { id: `${name}-id`, name, publicKey: keys.publicKey.toString('hex'), logKey: logKey.toString('hex') } };
}

t.test('a membership is taken up only from a paired device, signed by it, and never brings back a revoked device', async (t) => {
  const here = tempLibrary(t, 'here');
  const self = { id: here.device.id, publicKey: '11'.repeat(32) };
  const beta = deviceOf('beta');
  const carol = deviceOf('carol');
  const dave = deviceOf('dave');
  const betaPeer: Peer = savePairedPeer(here.db, beta.info);

  // What Beta would send: Beta's library pairs Carol and Dave, revokes Dave, and signs it.
  const betaLib = tempLibrary(t, 'beta');
  savePairedPeer(betaLib.db, carol.info);
  revokePeer(betaLib.db, savePairedPeer(betaLib.db, dave.info));
  const fromBeta = membershipOf(betaLib.db, beta.keys);
  t.equal(fromBeta.members.length, 1);
  t.equal(fromBeta.revoked.length, 1);

  const forged: GroupMembership = membershipOf(betaLib.db, carol.keys); // signed by Carol, sent as if by Beta
  const refused = applyMembership(here.db, betaPeer, forged, self);
  t.same(refused.added, [], 'records not signed by the sender are refused');
  t.equal(refused.refused.length, 2);
  t.equal(peerByKey(here.db, carol.info.publicKey), undefined, 'Carol is not let in');

  const stranger = { ...betaPeer, publicKey: dave.info.publicKey, name: 'dave' };
  t.same(applyMembership(here.db, stranger, membershipOf(betaLib.db, dave.keys), self).added, [], 'a device not paired here introduces no one');

  const taken = applyMembership(here.db, betaPeer, fromBeta, self);
  t.same(taken.added.map((p) => p.name), ['carol'], "Beta's introduction of Carol is taken up");
  t.equal(peerByKey(here.db, carol.info.publicKey)?.introducedBy, beta.info.id, 'Carol is recorded as introduced by Beta');
  t.match(peerByKey(here.db, dave.info.publicKey), { revokedBy: beta.info.id, pairedAt: null }, "Dave, never paired here, is recorded as revoked by Beta's word");

  // Here Carol is revoked; Beta, not knowing, introduces her again.
  revokePeer(here.db, peerByKey(here.db, carol.info.publicKey)!);
  const again = applyMembership(here.db, betaPeer, fromBeta, self);
  t.same(again.added, [], 'a revoked device is not introduced again');
  t.match(again.refused, [/introduction of 'carol', revoked here/]);
  t.equal(peerByKey(here.db, carol.info.publicKey)?.revokedAt !== null, true, 'Carol stays revoked');

  revokePeer(here.db, betaPeer);
  savePairedPeer(betaLib.db, deviceOf('erin').info);
  const afterRevoke = applyMembership(here.db, betaPeer, membershipOf(betaLib.db, beta.keys), self);
  t.same(afterRevoke.added, [], 'nothing is taken up from a device revoked here');
  t.match(afterRevoke.refused, [/not a paired device here/]);
  t.equal(listPeers(here.db).filter((p) => p.revokedAt === null).length, 0, 'no member is left here');
});
