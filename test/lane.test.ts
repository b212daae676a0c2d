// The direct lane: TCP + TLS 1.3 between paired devices for file blocks, keyed by a
// credential the listener offered one paired device. Only that device gets in (once, while
// the offer stands and the device is paired), a dial answered by anyone else fails, and
// bad offers are refused.
import crypto from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import c from 'compact-encoding';
import hypercoreCrypto from 'hypercore-crypto';
import t, { type Test } from 'tap';
import { DirectLane, type LaneStream } from '../src/replication/lane.js';
import { laneOffer, type LaneOffer } from '../src/replication/messages.js';
import type { Peer } from '../src/vdfs/peers.js';
import { waitFor } from './helpers.js';

interface Device {
  peer: Peer;
  lane: DirectLane;
  lanes: Array<{ peer: Peer; stream: LaneStream }>;
}

function peerOf(name: string, publicKey: Buffer): Peer {
  return { id: `${name}-id`, name, slug: name, publicKey: publicKey.toString('hex'), logKey: null, pairedAt: 0, revokedAt: null, onlineAt: null, lastSeen: null, rttMs: null, faults: 0, lastFaultAt: null, lastFault: null, introducedBy: null, revokedBy: null };
}

/** A device with its own swarm key, letting in the devices `paired()` names. */
function device(t: Test, name: string, paired: () => Peer[]): Device {
  const keyPair = hypercoreCrypto.keyPair();
  const lanes: Device['lanes'] = [];
  const lane = new DirectLane((key) => paired().find((p) => p.publicKey === key), (peer, stream) => lanes.push({ peer, stream }));
  t.teardown(() => lane.close());
  return { peer: peerOf(name, keyPair.publicKey), lane, lanes };
}

/** Alpha listening and pairing with beta; mallory is paired with nobody. */
async function trio(t: Test): Promise<{ a: Device; b: Device; mallory: Device; paired: Set<string> }> {
  const devices: Record<string, Device> = {};
  const paired = new Set(['alpha', 'beta']);
  const a = (devices.a = device(t, 'alpha', () => (paired.has('beta') ? [devices.b!.peer] : [])));
  const b = (devices.b = device(t, 'beta', () => [devices.a!.peer]));
  const mallory = device(t, 'mallory', () => [devices.a!.peer]);
  t.ok(await a.lane.listen(0), 'alpha listens');
  return { a, b, mallory, paired };
}

t.test('two paired devices open a lane and talk over it, forward secret', async (t) => {
  const { a, b } = await trio(t);
  const offer = a.lane.offer(b.peer)!;
  t.ok(offer.port > 0 && offer.hosts.at(-1) === '127.0.0.1', `offer: port ${offer.port}, hosts ${offer.hosts.join(', ')}`);
  t.ok(await b.lane.connect(a.peer, offer), 'beta dials it with the offered credential');
  t.ok(await waitFor(() => a.lanes.length === 1, 5000), 'alpha has the lane');
  t.equal(a.lanes[0]!.peer.slug, 'beta', 'knowing who it is');
  t.equal(b.lanes[0]!.peer.slug, 'alpha');

  const tlsSocket = b.lanes[0]!.stream.socket as TLSSocket;
  t.equal(tlsSocket.getProtocol(), 'TLSv1.3');
  t.equal(tlsSocket.getCipher().name, 'TLS_AES_128_GCM_SHA256');
  t.match(tlsSocket.getEphemeralKeyInfo(), { type: 'ECDH', name: 'X25519' }, 'an ephemeral key exchange: a leaked credential does not open recorded traffic');

  // Messages come out whole however TCP cuts them: a block reply is 1 MiB.
  const big = crypto.randomBytes(3 * 1024 * 1024 + 5);
  const got: Buffer[] = [];
  a.lanes[0]!.stream.on('data', (m: Buffer) => got.push(m));
  b.lanes[0]!.stream.write(Buffer.from('hello'));
  b.lanes[0]!.stream.write(big);
  t.ok(await waitFor(() => got.length === 2, 5000), 'two messages arrived');
  t.equal(got[0]!.toString(), 'hello', 'bytes flow, encrypted');
  t.ok(got[1]!.equals(big), 'a 3 MiB message arrives whole');
});

t.test('blocks both ways, many in flight: each arrives intact through the reused buffers of either side', async (t) => {
  const { a, b } = await trio(t);
  t.ok(await b.lane.connect(a.peer, a.lane.offer(b.peer)!), 'beta dials (its reads come through one reused buffer)');
  t.ok(await waitFor(() => a.lanes.length === 1, 5000));
  const MiB = 1024 * 1024;
  const COUNT = 40;
  /** Message i: 1 MiB of bytes that say which it is, framed in a buffer from alloc as protomux does. */
  const send = (stream: LaneStream, i: number): void => {
    const message = stream.alloc(MiB);
    message.fill(i);
    message.writeUInt32BE(i, 0);
    stream.write(message);
  };
  for (const [from, to] of [[b.lanes[0]!.stream, a.lanes[0]!.stream], [a.lanes[0]!.stream, b.lanes[0]!.stream]] as const) {
    const intact: boolean[] = [];
    to.on('data', (m: Buffer) => {
      const i = m.readUInt32BE(0);
      intact.push(m.length === MiB && m.subarray(4).every((byte) => byte === (i & 0xff)) && i === intact.length);
      // Done with it: its buffer may take a later message.
      (to as LaneStream).release(m);
    });
    for (let i = 0; i < COUNT; i++) send(from, i);
    t.ok(await waitFor(() => intact.length === COUNT, 10_000), `${intact.length} of ${COUNT} arrived`);
    t.ok(intact.every(Boolean), 'each whole, in order, its own bytes');
    to.removeAllListeners('data');
  }
  // Small messages, several to a read: those beta keeps must not change with its later reads.
  const kept: Buffer[] = [];
  b.lanes[0]!.stream.on('data', (m: Buffer) => kept.push(m));
  const small = Array.from({ length: 300 }, (_, i) => Buffer.alloc(100, i & 0xff));
  for (const m of small) a.lanes[0]!.stream.write(m);
  t.ok(await waitFor(() => kept.length === small.length, 10_000), `${kept.length} of ${small.length} small messages`);
  t.ok(kept.every((m, i) => m.equals(small[i]!)), 'each still its own bytes after all were read');
});

t.test('an unpaired device is refused; so is a wrong credential; a dial answered by another device fails', async (t) => {
  const { a, b, mallory } = await trio(t);
  const offer = a.lane.offer(b.peer)!;
  const made: LaneOffer = { ...offer, identity: crypto.randomBytes(16), secret: crypto.randomBytes(32) };
  t.notOk(await mallory.lane.connect(a.peer, made), 'mallory, with a credential of its own making, is not let in');
  // The identity goes in the clear: mallory may have seen beta's, but not the key.
  t.notOk(await mallory.lane.connect(a.peer, { ...offer, secret: crypto.randomBytes(32) }), "beta's identity with a wrong key is refused");
  t.notOk(await waitFor(() => a.lanes.length > 0, 500), 'alpha adopted nothing');
  t.equal(mallory.lanes.length, 0);

  // Beta holds alpha's offer, but the address answers with mallory's listener, or beta's own.
  t.ok(await mallory.lane.listen(0));
  t.notOk(await b.lane.connect(a.peer, { ...offer, port: mallory.lane.offer(b.peer)!.port }), 'a listener without the key is not taken for alpha');
  t.ok(await b.lane.listen(0));
  t.notOk(await b.lane.connect(a.peer, { ...offer, port: b.lane.offer(a.peer)!.port }), "beta's own listener does not take alpha's credential");
  t.equal(b.lanes.length, 0);
  t.equal(mallory.lanes.length, 0);

  // The credential is still good at alpha's: none of the above used it up.
  t.ok(await b.lane.connect(a.peer, offer), 'beta then dials alpha');
});

t.test('a credential lets its device in once, while offered and while the device is paired', async (t) => {
  const { a, b, paired } = await trio(t);
  const first = a.lane.offer(b.peer)!;
  t.ok(await b.lane.connect(a.peer, first));
  t.notOk(await b.lane.connect(a.peer, first), 'used once, it opens no second lane');

  const withdrawn = a.lane.offer(b.peer)!;
  a.lane.withdraw(withdrawn);
  t.notOk(await b.lane.connect(a.peer, withdrawn), 'withdrawn (its swarm connection closed), it opens nothing');

  const revoked = a.lane.offer(b.peer)!;
  paired.delete('beta');
  t.notOk(await b.lane.connect(a.peer, revoked), 'a device revoked since the offer is refused');
  t.equal(a.lanes.length, 1, 'alpha kept only the first lane');
});

t.test('lane offers are bounded', async (t) => {
  const identity = crypto.randomBytes(16);
  const secret = crypto.randomBytes(32);
  const decode = (v: LaneOffer) => c.decode(laneOffer, c.encode(laneOffer, v));
  t.same(decode({ port: 4000, hosts: ['10.0.0.2', '127.0.0.1'], identity, secret }), { port: 4000, hosts: ['10.0.0.2', '127.0.0.1'], identity, secret });
  t.throws(() => decode({ port: 0, hosts: [], identity, secret }), /port 0 out of range/);
  t.throws(() => decode({ port: 70000, hosts: [], identity, secret }), /out of range/);
  t.throws(() => decode({ port: 1, hosts: Array.from({ length: 17 }, () => 'h'), identity, secret }), /at most 16/);
  t.throws(() => decode({ port: 1, hosts: [], identity, secret: secret.subarray(0, 31) }), /Incorrect buffer size/);
  const valid = c.encode(laneOffer, { port: 1, hosts: [], identity, secret });
  t.throws(() => c.decode(laneOffer, valid.subarray(0, valid.byteLength - 1)), /Out of bounds/, 'a cut key is refused');
  t.throws(() => c.decode(laneOffer, Buffer.concat([valid, Buffer.from([1])])), /unexpected bytes/);
});
