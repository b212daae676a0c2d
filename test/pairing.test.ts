// Pairing and the device swarm on a local testnet: every device its own library and
// `sd` process; pairing with the words, refusals (wrong, reused, expired words, malformed
// messages), the firewall (unpaired and revoked devices), presence and reconnection.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import createTestnet from 'hyperdht/testnet.js';
import Hyperswarm, { type SwarmConnection } from 'hyperswarm';
import c from 'compact-encoding';
import Protomux from 'protomux';
import t from 'tap';
import type { Test } from 'tap';
import { PAIR_PROTOCOL } from '../src/replication/messages.js';
import { deviceKeys } from '../src/replication/identity.js';
import { localDeviceOf, newPairingWords, pairKey, pairOverConnection, pairTopic, parsePairingWords } from '../src/replication/pairing.js';
import { DeviceSwarm, destroySwarm, type DeviceConnection } from '../src/replication/swarm.js';
import { openLibrary } from '../src/vdfs/library.js';
import type { Peer } from '../src/vdfs/peers.js';
import { SD_MAIN, cleanEnv, runSd, sdJson, tempDir, tempLibrary, waitFor } from './helpers.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';

const testnet = await createTestnet(3, { host: '127.0.0.1' });
t.teardown(() => testnet.destroy());
const BOOTSTRAP = testnet.bootstrap.map((b) => `${b.host}:${b.port}`).join(',');

interface DeviceJson {
  name: string;
  id: string;
  slug: string;
  online: boolean;
  last_seen: string | null;
  rtt_ms: number | null;
  paired_at: string | null;
  revoked: boolean;
}

async function newDevice(t: Test, name: string): Promise<string> {
  const library = path.join(tempDir(t, 'sd-pair-'), 'library');
  const r = await runSd(['init', '--name', name], { library });
  if (r.code !== 0) throw new Error(`sd init failed: ${r.stderr}`);
  return library;
}

interface Waiting {
  words: string[];
  expires: string;
  child: ChildProcess;
  lines(): string[];
  stderr(): string;
  exited: Promise<number | null>;
}

/** Starts `sd --json pair` and returns once its first line (the words) is out. */
async function startPair(t: Test, library: string, env: NodeJS.ProcessEnv = {}): Promise<Waiting> {
  const child = spawn(process.execPath, [SD_MAIN, '--json', 'pair', '--bootstrap', BOOTSTRAP], {
    env: { ...cleanEnv(), SD_LIBRARY: library, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const lines = () => stdout.split('\n').filter(Boolean);
  if (!(await waitFor(() => lines().length > 0 || child.exitCode !== null, 20_000))) throw new Error('sd pair printed nothing');
  const first = JSON.parse(lines()[0] ?? 'null') as { words: string[]; expires: string } | null;
  if (!first) throw new Error(`sd pair failed: ${stderr}`);
  return { ...first, child, lines, stderr: () => stderr, exited };
}

function join(library: string, words: string[], env: NodeJS.ProcessEnv = {}) {
  return runSd(['pair', 'join', ...words, '--bootstrap', BOOTSTRAP], { library, env: { SD_PAIR_JOIN_TIMEOUT_MS: '4000', ...env }, timeoutMs: 90_000 });
}

async function pairDevices(t: Test, host: string, guest: string): Promise<void> {
  const waiting = await startPair(t, host);
  const r = await join(guest, waiting.words, { SD_PAIR_JOIN_TIMEOUT_MS: '60000' });
  t.equal(r.code, 0, `sd pair join exits 0${r.code ? `: ${r.stderr}` : ''}`);
  if (r.code !== 0) waiting.child.kill('SIGINT');
  t.equal(await waiting.exited, 0, 'sd pair exits 0 once a device joined');
}

const devicesOf = (t: Test, library: string) => sdJson<DeviceJson[]>(t, ['devices'], { library });

/** The first device `sd devices` lists, without asserting (for polling). */
async function firstDevice(library: string): Promise<DeviceJson | undefined> {
  const r = await runSd(['--json', 'devices'], { library });
  return r.code === 0 ? (JSON.parse(r.stdout) as DeviceJson[])[0] : undefined;
}

t.test('sd testnet prints its bootstrap address at once and exits 0 on SIGTERM', async (t) => {
  const child = spawn(process.execPath, [SD_MAIN, 'testnet'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')));
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.ok(await waitFor(() => /^127\.0\.0\.1:\d+\n/.test(stdout), 15_000), `prints 127.0.0.1:PORT (got ${JSON.stringify(stdout)})`);
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exits 0');
});

t.test('two devices pair and each lists the other', async (t) => {
  const [a, b] = await Promise.all([newDevice(t, 'Alpha'), newDevice(t, 'Beta')]);
  const waiting = await startPair(t, a);
  t.equal(waiting.words.length, 12, 'twelve words');
  t.ok(Date.parse(waiting.expires) > Date.now() + 4 * 60_000, 'valid for about 5 minutes');
  const r = await join(b, waiting.words, { SD_PAIR_JOIN_TIMEOUT_MS: '60000' });
  t.equal(r.code, 0, `join exits 0: ${r.stderr}`);
  t.match(r.stdout, /Paired with 'Alpha'/);
  t.equal(await waiting.exited, 0);
  const last = JSON.parse(waiting.lines().at(-1)!) as { paired: { name: string; slug: string } };
  t.match(last.paired, { name: 'Beta', slug: 'beta' }, 'the last line names the device that joined');
  const [seenByA, seenByB] = await Promise.all([devicesOf(t, a), devicesOf(t, b)]);
  t.match(seenByA, [{ name: 'Beta', slug: 'beta', online: false, revoked: false }]);
  t.match(seenByB, [{ name: 'Alpha', slug: 'alpha', online: false, revoked: false }]);
  t.ok(seenByA[0]!.paired_at, 'paired_at recorded');
  const libA = openLibrary(a);
  const libB = openLibrary(b);
  t.teardown(() => (libA.close(), libB.close()));
  t.equal(seenByA[0]!.id, libB.device.id, "A stores B's device id");
  t.equal(seenByB[0]!.id, libA.device.id, "B stores A's device id");
  const keyOfB = libA.db.prepare('SELECT public_key, log_key FROM devices WHERE id = ?').get(libB.device.id) as { public_key: string; log_key: string };
  t.equal(keyOfB.public_key, deviceKeys(b).swarm.publicKey.toString('hex'), "A stores B's swarm key");
  t.equal(keyOfB.log_key, deviceKeys(b).log.publicKey.toString('hex'), "A stores B's log key");
});

t.test('three devices: A pairs B, then C', async (t) => {
  const [a, b, c3] = await Promise.all([newDevice(t, 'Alpha'), newDevice(t, 'Beta'), newDevice(t, 'Beta')]);
  await pairDevices(t, a, b);
  await pairDevices(t, a, c3);
  const seenByA = await devicesOf(t, a);
  t.same(seenByA.map((d) => d.slug).sort(), ['beta', 'beta-2'], 'a second device with the same name gets a suffixed slug');
  t.match(await devicesOf(t, b), [{ name: 'Alpha' }]);
  t.match(await devicesOf(t, c3), [{ name: 'Alpha' }]);
});

t.test('wrong, reused, mistyped and expired words are refused with a clear message', async (t) => {
  const [a, b, c3] = await Promise.all([newDevice(t, 'Alpha'), newDevice(t, 'Beta'), newDevice(t, 'Gamma')]);

  const typo = await join(b, ['abandon', 'abandon', 'abandon', 'abandon', 'abandon', 'abandon', 'abandon', 'abandon', 'abandon', 'abandon', 'abandon', 'abandonn']);
  t.equal(typo.code, 2, 'a word not in the list is a usage error');
  t.match(typo.stderr, /not a pairing word: abandonn/);
  const badChecksum = await join(b, Array(12).fill('zoo'));
  t.equal(badChecksum.code, 2);
  t.match(badChecksum.stderr, /checksum/);

  const waiting = await startPair(t, a);
  const wrong = newPairingWords().words; // a valid checksum, another secret
  const refused = await join(b, wrong);
  t.equal(refused.code, 1, 'words nobody waits for: exit 1');
  t.match(refused.stderr, /no device is waiting for these words \(they expire after 5 minutes and work once\)/);
  t.same(await devicesOf(t, b), [], 'nothing stored on the joining device');
  t.same(await devicesOf(t, a), [], 'nothing stored on the waiting device');

  t.equal((await join(b, waiting.words, { SD_PAIR_JOIN_TIMEOUT_MS: '60000' })).code, 0, 'the right words pair');
  t.equal(await waiting.exited, 0);
  const again = await join(c3, waiting.words);
  t.equal(again.code, 1, 'the same words a second time are refused');
  t.match(again.stderr, /no device is waiting for these words/);
  t.same(await devicesOf(t, c3), []);

  const short = await startPair(t, a, { SD_PAIR_TTL_MS: '1500' });
  t.equal(await short.exited, 1, 'sd pair ends with exit 1 when its words expire');
  t.match(short.stderr(), /pairing words expired at .* and no device joined; run 'sd pair' again/);
  const late = await join(c3, short.words);
  t.equal(late.code, 1, 'expired words are refused');
  t.match(late.stderr, /no device is waiting for these words/);
  t.same((await devicesOf(t, a)).map((d) => d.name), ['Beta'], 'only the one real pairing stored');
});

/** A connection from this test process to whoever waits on the words' topic. */
async function connectToTopic(t: Test, words: string[]): Promise<SwarmConnection> {
  const swarm = new Hyperswarm({ dht: testnet.createNode() });
  t.teardown(() => destroySwarm(swarm));
  // Hyperswarm dials the topic's peer again after a close: every connection gets a handler.
  swarm.on('connection', (conn) => conn.on('error', () => {}));
  const conn = new Promise<SwarmConnection>((resolve) => swarm.once('connection', (conn) => resolve(conn)));
  const discovery = swarm.join(pairTopic(parsePairingWords(words)), { server: false, client: true });
  const relook = setInterval(() => void discovery.refresh().catch(() => {}), 2000);
  const connected = await Promise.race([conn, new Promise<undefined>((r) => setTimeout(r, 20_000))]);
  clearInterval(relook);
  if (!connected) throw new Error('no connection to the waiting device');
  return connected;
}

const closed = (conn: SwarmConnection) => new Promise<boolean>((resolve) => {
  if (conn.destroyed) return resolve(true);
  const timer = setTimeout(() => resolve(false), 10_000);
  conn.once('close', () => (clearTimeout(timer), resolve(true)));
});

t.test('malformed, oversized or unproven pairing messages close that connection; the device keeps waiting', async (t) => {
  const [a, b] = await Promise.all([newDevice(t, 'Alpha'), newDevice(t, 'Beta')]);
  const waiting = await startPair(t, a);

  for (const [what, bytes] of [['garbage', Buffer.from('not a nonce')], ['an oversized message', Buffer.alloc(1024 * 1024, 7)]] as const) {
    const conn = await connectToTopic(t, waiting.words);
    const channel = Protomux.from(conn).createChannel({ protocol: PAIR_PROTOCOL })!;
    const raw = channel.addMessage({ encoding: c.raw });
    channel.open();
    raw.send(bytes);
    t.ok(await closed(conn), `${what} on the pair channel closes the connection`);
  }

  // Knows the topic but not the key: the proof fails on both sides.
  const mallory = tempLibrary(t, 'Mallory');
  const conn = await connectToTopic(t, waiting.words);
  const attempt = pairOverConnection(conn, pairKey(Buffer.alloc(16, 1)), localDeviceOf(mallory), { accept() {}, store: () => 'stored' });
  await t.rejects(attempt, /does not know these pairing words/, 'a wrong proof is refused');
  t.ok(await closed(conn));

  t.equal(waiting.child.exitCode, null, 'sd pair is still waiting');
  t.same(await devicesOf(t, a), [], 'nothing stored');
  t.equal((await join(b, waiting.words, { SD_PAIR_JOIN_TIMEOUT_MS: '60000' })).code, 0, 'the real device still pairs');
  t.equal(await waiting.exited, 0);
  const last = JSON.parse(waiting.lines().at(-1)!) as { paired: { name: string }; refused: number };
  t.equal(last.paired.name, 'Beta');
  t.ok(last.refused >= 3, `the bad connections were counted (${last.refused}; the test's swarms also dial again)`);
});

/** Device B's side of the swarm, in this process, on the test's DHT. */
function swarmOf(t: Test, library: string) {
  const lib = openLibrary(library);
  const swarm = new DeviceSwarm(lib, { dht: testnet.createNode() });
  const connections: DeviceConnection[] = [];
  const disconnects: Peer[] = [];
  swarm.on('connection', (d: DeviceConnection) => connections.push(d));
  swarm.on('disconnect', (p: Peer) => disconnects.push(p));
  swarm.start();
  t.teardown(async () => {
    await swarm.stop();
    lib.close();
  });
  return { swarm, connections, disconnects };
}

t.test('a running node lets in paired devices only, shows them online, reconnects, and drops a revoked one', async (t) => {
  const { library: a } = await libraryWithLocation(t, { 'x.txt': 'x' }, 'Alpha');
  const [b, c3] = await Promise.all([newDevice(t, 'Beta'), newDevice(t, 'Carol')]);
  await pairDevices(t, a, b);
  let mount = await startMount(t, a, ['--bootstrap', BOOTSTRAP]);

  // Carol is not paired: her own swarm (allowing anyone) dials Alpha's key.
  const carol = new Hyperswarm({ dht: testnet.createNode(), keyPair: deviceKeys(c3).swarm });
  t.teardown(() => destroySwarm(carol));
  let carolConnected = 0;
  carol.on('connection', (conn) => {
    carolConnected++;
    conn.on('error', () => {});
  });
  const alphaKey = deviceKeys(a).swarm.publicKey;
  carol.joinPeer(alphaKey);

  const beta = swarmOf(t, b);
  t.ok(await waitFor(() => beta.connections.length > 0, 45_000), 'the paired device connects');
  t.equal(beta.connections[0]?.peer.name, 'Alpha');
  t.ok(await waitFor(async () => {
    const d = await firstDevice(a);
    return d?.online === true && d.rtt_ms !== null;
  }, 10_000, 200), 'sd devices shows it online with a round-trip time');
  const seen = (await devicesOf(t, a))[0]!;
  t.ok(seen.rtt_ms! >= 0 && seen.rtt_ms! < 5000, `rtt ${seen.rtt_ms} ms`);
  t.ok(Date.now() - Date.parse(seen.last_seen!) < 10_000, 'last seen just now');
  t.equal(carolConnected, 0, 'the unpaired device was refused');
  t.same((await devicesOf(t, a)).map((d) => d.name), ['Beta'], 'and is not recorded');

  // The node goes away and comes back: the paired device reconnects on its own.
  t.equal(await mount.stop(), 0);
  t.ok(await waitFor(() => beta.disconnects.length > 0, 10_000), 'the device notices the node left');
  t.equal((await firstDevice(a))?.online, false, 'offline once the node stopped');
  mount = await startMount(t, a, ['--bootstrap', BOOTSTRAP]);
  t.ok(await waitFor(() => beta.connections.length > 1 && beta.swarm.online(beta.connections.at(-1)!.peer.id), 45_000), 'reconnects after the node restarts');

  const alphaId = beta.connections[0]!.peer.id;
  const revoke = await runSd(['devices', 'revoke', 'Beta'], { library: a });
  t.equal(revoke.code, 0, revoke.stderr);
  t.ok(await waitFor(() => !beta.swarm.online(alphaId), 10_000), 'the running node drops the revoked device');
  const after = beta.connections.length;
  await new Promise((r) => setTimeout(r, 4000));
  t.equal(beta.connections.length, after, 'and refuses it from then on');
  t.notOk(beta.swarm.online(alphaId));
  t.match(await devicesOf(t, a), [{ name: 'Beta', revoked: true, online: false }]);
  t.equal(carolConnected, 0, 'the unpaired device never got through');

  // Revoked for good: pairing again with the same device key is refused.
  const waiting = await startPair(t, a);
  const again = await join(b, waiting.words, { SD_PAIR_JOIN_TIMEOUT_MS: '60000' });
  t.equal(again.code, 1);
  t.match(again.stderr, /refused to pair: device 'Beta' was revoked here and cannot pair again/);
  waiting.child.kill('SIGINT');
  t.equal(await waiting.exited, 1, 'sd pair cancelled by Ctrl-C exits 1');
  t.match(await devicesOf(t, a), [{ name: 'Beta', revoked: true }]);
  await mount.stop();
});
