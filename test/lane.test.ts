// The direct lane: TCP + Noise between paired devices for file blocks. Only the expected
// device's key completes a dial, only paired keys are let in, and bad offers are refused.
import c from 'compact-encoding';
import hypercoreCrypto from 'hypercore-crypto';
import t, { type Test } from 'tap';
import { DirectLane, type LaneStream } from '../src/replication/lane.js';
import { laneOffer } from '../src/replication/messages.js';
import type { Peer } from '../src/vdfs/peers.js';
import { waitFor } from './helpers.js';

interface Device {
  peer: Peer;
  lane: DirectLane;
  lanes: Array<{ peer: Peer; stream: LaneStream }>;
}

function peerOf(name: string, publicKey: Buffer): Peer {
  return { id: `${name}-id`, name, slug: name, publicKey: publicKey.toString('hex'), logKey: null, pairedAt: 0, revokedAt: null, onlineAt: null, lastSeen: null, rttMs: null, faults: 0, lastFaultAt: null, lastFault: null };
}

/** A device with its own key pair, letting in the devices `paired()` names. */
function device(t: Test, name: string, paired: () => Peer[]): Device {
  const keyPair = hypercoreCrypto.keyPair();
  const lanes: Device['lanes'] = [];
  const lane = new DirectLane(keyPair, (key) => paired().find((p) => p.publicKey === key), (peer, stream) => lanes.push({ peer, stream }));
  t.teardown(() => lane.close());
  return { peer: peerOf(name, keyPair.publicKey), lane, lanes };
}

t.test('two paired devices open a lane and talk over it', async (t) => {
  const devices: Record<string, Device> = {};
  const a = (devices.a = device(t, 'alpha', () => [devices.b!.peer]));
  const b = (devices.b = device(t, 'beta', () => [devices.a!.peer]));
  t.ok(await a.lane.listen(0), 'alpha listens');
  const offer = a.lane.offer()!;
  t.ok(offer.port > 0 && offer.hosts.at(-1) === '127.0.0.1', `offer: port ${offer.port}, hosts ${offer.hosts.join(', ')}`);
  t.ok(await b.lane.connect(a.peer, offer), 'beta dials it');
  t.ok(await waitFor(() => a.lanes.length === 1, 5000), 'alpha has the lane');
  t.equal(a.lanes[0]!.peer.slug, 'beta', 'knowing who it is');
  t.equal(b.lanes[0]!.peer.slug, 'alpha');
  const got = new Promise<string>((resolve) => a.lanes[0]!.stream.once('data', (d: Buffer) => resolve(d.toString())));
  b.lanes[0]!.stream.write('hello');
  t.equal(await got, 'hello', 'bytes flow, encrypted');
});

t.test('an unpaired device is refused; a dial answered by another key fails', async (t) => {
  const devices: Record<string, Device> = {};
  const a = (devices.a = device(t, 'alpha', () => [devices.b!.peer]));
  const b = (devices.b = device(t, 'beta', () => [devices.a!.peer]));
  const mallory = device(t, 'mallory', () => [devices.a!.peer]);
  t.ok(await a.lane.listen(0));
  t.notOk(await mallory.lane.connect(a.peer, a.lane.offer()!) && (await waitFor(() => a.lanes.length > 0, 1000)), 'mallory is not let in');
  t.equal(a.lanes.length, 0, 'alpha adopted nothing');

  // Beta expects alpha but the address answers with mallory's key.
  t.ok(await mallory.lane.listen(0));
  t.notOk(await b.lane.connect(a.peer, mallory.lane.offer()!), 'a listener with another key is not taken for alpha');
  t.equal(b.lanes.length, 0);
});

t.test('lane offers are bounded', async (t) => {
  const decode = (v: { port: number; hosts: string[] }) => c.decode(laneOffer, c.encode(laneOffer, v));
  t.same(decode({ port: 4000, hosts: ['10.0.0.2', '127.0.0.1'] }), { port: 4000, hosts: ['10.0.0.2', '127.0.0.1'] });
  t.throws(() => decode({ port: 0, hosts: [] }), /port 0 out of range/);
  t.throws(() => decode({ port: 70000, hosts: [] }), /out of range/);
  t.throws(() => decode({ port: 1, hosts: Array.from({ length: 17 }, () => 'h') }), /at most 16/);
  t.throws(() => c.decode(laneOffer, Buffer.concat([c.encode(laneOffer, { port: 1, hosts: [] }), Buffer.from([1])])), /unexpected bytes/);
});
