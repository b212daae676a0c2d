// The byte layer of remote files without a swarm: a block server and client on a local
// Noise pair, real files in a real indexed location, a real disk cache. Reads are byte-
// identical, bad blocks and vanished peers fail over, and nothing a peer sends crashes us.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Blake3Hasher, blake3 } from '@napi-rs/blake-hash';
import c from 'compact-encoding';
import hypercoreCrypto from 'hypercore-crypto';
import Protomux from 'protomux';
import t, { type Test } from 'tap';
import { config } from '../src/config.js';
import { SdError } from '../src/errors.js';
import { BlockCache } from '../src/replication/block-cache.js';
import { BlockChannel, type BlockRequestHandler } from '../src/replication/block-channel.js';
import { BlockClient, type BlockSource, type RemoteFileRef } from '../src/replication/block-client.js';
import { BLOCK_PROTOCOL, blockRequestEncoding, signedBlockMessage, type BlockRequest, type BlockTarget } from '../src/replication/block-messages.js';
import { BlockServer, LibraryServedFiles } from '../src/replication/block-server.js';
import { BlockService } from '../src/replication/blocks.js';
import { deviceKeys } from '../src/replication/identity.js';
import { RemoteFile } from '../src/replication/remote-file.js';
import { VouchStore, type RangeVouch } from '../src/replication/vouches.js';
import { contentHashOfFile, fullHashOfFile } from '../src/vdfs/content/identity.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import type { Library } from '../src/vdfs/library.js';
import { addLocation, type Location } from '../src/vdfs/locations.js';
import { noisePair, tempDir, tempLibrary } from './helpers.js';

const MiB = 1024 * 1024;
const BIG = 200 * MiB;

interface Device {
  library: Library;
  location: Location;
  root: string;
  server: BlockServer;
}

/** A device with one indexed location holding files, and a block server over it. */
function servingDevice(t: Test, files: Record<string, Buffer>, name = 'server'): Device {
  const library = tempLibrary(t, name);
  const root = tempDir(t, 'sd-blocks-loc-');
  for (const [rel, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
  }
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'media' });
  indexLocation(library, location);
  const server = new BlockServer(new LibraryServedFiles(library));
  t.teardown(() => server.close());
  return { library, location, root, server };
}

/** A block cache for this test, its open files closed when the test ends. */
async function openCache(t: Test, dir: string, options?: Parameters<typeof BlockCache.open>[1]): Promise<BlockCache> {
  const cache = await BlockCache.open(dir, options);
  t.teardown(() => cache.close());
  return cache;
}

/** A client-side channel to a server (any request handler) over a fresh connection. */
async function connect(t: Test, server: BlockRequestHandler, name = 'peer'): Promise<BlockChannel> {
  const [a, b] = noisePair(t);
  new BlockChannel(b, { server, name: `${name}-side` });
  const channel = new BlockChannel(a, { name });
  t.ok(await channel.waitOpened(), `channel to ${name} opens`);
  return channel;
}

function pathRef(dev: Device, rel: string, sources: () => BlockSource[]): RemoteFileRef {
  const st = fs.statSync(path.join(dev.root, rel));
  return { size: st.size, mtime: st.mtimeMs, cacheKey: `test/${rel}/${st.size}/${st.mtimeMs}`, sources };
}

function target(rel: string): BlockTarget {
  return { kind: 'path', location: 'media', path: rel };
}

function readLocal(file: string, offset: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    return buf.subarray(0, fs.readSync(fd, buf, 0, length, offset));
  } finally {
    fs.closeSync(fd);
  }
}

async function rejectsWithEio(t: Test, p: Promise<unknown>, message: string): Promise<void> {
  try {
    await p;
    t.fail(`${message}: it succeeded`);
  } catch (err) {
    t.ok(err instanceof SdError && err.code === 'IO' && err.errno === -5, `${message} (${String(err)})`);
  }
}

/** A peer that answers every request with the right hash (signed by its own key) but tampered bytes. */
class TamperingServer implements BlockRequestHandler {
  served = 0;
  private readonly keys = hypercoreCrypto.keyPair();
  constructor(private readonly file: string) {}
  handle(request: BlockRequest, channel: BlockChannel): void {
    const data = readLocal(this.file, request.offset, request.length);
    const hash = blake3(data);
    data[0] = data[0]! ^ 0xff;
    this.served++;
    const st = fs.statSync(this.file);
    const signature = hypercoreCrypto.sign(signedBlockMessage(request.target, st.size, st.mtimeMs, request.offset, data.length, hash), this.keys.secretKey);
    channel.sendReply({ id: request.id, data, hash, fileSize: st.size, fileMtime: st.mtimeMs, signer: this.keys.publicKey, signature });
  }
  detach(): void {}
}

/** A peer that answers like the real server, but only after a delay (a slow link). */
class SlowServer implements BlockRequestHandler {
  constructor(private readonly inner: BlockServer, private readonly delayMs: number) {}
  handle(request: BlockRequest, channel: BlockChannel): void {
    setTimeout(() => this.inner.handle(request, channel), this.delayMs);
  }
  detach(channel: BlockChannel): void {
    this.inner.detach(channel);
  }
}

/** A peer that takes requests and never answers. */
class SilentServer implements BlockRequestHandler {
  received = 0;
  handle(): void {
    this.received++;
  }
  detach(): void {}
}

const big = crypto.randomBytes(BIG);

t.test('a 200 MiB file reads byte-identical through client and server, sequentially and at random offsets', async (t) => {
  const dev = servingDevice(t, { 'movie.mkv': big });
  const channel = await connect(t, dev.server);
  const cache = await openCache(t, path.join(tempDir(t), 'blocks'), { maxBytes: 64 * MiB });
  const client = new BlockClient({ cache });
  const ref = pathRef(dev, 'movie.mkv', () => [{ kind: 'peer', channel, target: target('movie.mkv') }]);
  const file = new RemoteFile(client, ref);

  const started = performance.now();
  const hasher = new Blake3Hasher();
  const chunk = 128 * 1024; // what the kernel asks of a FUSE file system at a time
  for (let offset = 0; offset < BIG; offset += chunk) hasher.update(await file.read(offset, chunk));
  const seconds = (performance.now() - started) / 1000;
  t.equal(hasher.digest('hex'), blake3(big).toString('hex'), 'the bytes read equal the file');
  t.equal(client.stats.blocksFetched, 200, 'each 1 MiB block fetched once');
  t.equal(client.stats.hashMismatches, 0);
  t.comment(`sequential 200 MiB over a local Noise pair: ${(200 / seconds).toFixed(0)} MB/s`);
  t.ok(cache.stats.bytes <= 64 * MiB + 64 * 1024, `the cache stays under its limit (${cache.stats.bytes} bytes)`);

  const random = new RemoteFile(new BlockClient({ cache }), ref);
  const rand = crypto.createHash('sha256').update('seed').digest();
  for (let i = 0; i < 100; i++) {
    const offset = rand.readUInt32LE((i * 4) % 28) * (i + 1) % BIG;
    const length = [1, 4096, 131072, 3 * MiB][i % 4]!;
    const got = await random.read(offset, length);
    t.ok(got.equals(big.subarray(offset, Math.min(BIG, offset + length))), `read ${length} at ${offset}`, { diagnostic: false });
    rand.writeUInt32LE((rand.readUInt32LE(0) * 1103515245 + 12345) >>> 0, 0);
  }
  const tail = await random.read(BIG - 10, 100);
  t.equal(tail.length, 10, 'a read across the end returns the bytes up to it');
  t.equal((await random.read(BIG + 5, 100)).length, 0, 'a read past the end returns nothing');
  await cache.flush(); // the read-ahead's writes land before the folder goes
});

t.test('random access fetches only the bytes it reads; a sequential run fetches whole blocks', async (t) => {
  const data = big.subarray(0, 64 * MiB);
  const dev = servingDevice(t, { 'video.mp4': data });
  const channel = await connect(t, dev.server);
  const client = new BlockClient();
  const file = new RemoteFile(client, pathRef(dev, 'video.mp4', () => [{ kind: 'peer', channel, target: target('video.mp4') }]));
  const seeks = [40 * MiB + 17, 7 * MiB, 63 * MiB];
  for (const offset of seeks) {
    t.ok((await file.read(offset, 4096)).equals(data.subarray(offset, offset + 4096)), `4 KiB at ${offset}`);
  }
  t.equal(client.stats.rangeReads, 3, 'each seek answered by a short read of its own');
  for (const offset of seeks) {
    t.ok((await file.read(offset + 8192, 4096)).equals(data.subarray(offset + 8192, offset + 12288)), `the next 4 KiB after ${offset}`);
  }
  t.equal(client.stats.rangeReads, 6, 'small reads near a seek are short reads of their own too');
  t.equal(client.stats.blocksFetched, 0, 'no whole block for a random reader');
  t.equal(dev.server.stats.bytesServed, 6 * 4096, 'only the bytes read were served');
  // A stream: 128 KiB reads one after another (as the kernel reads for cat or a player).
  for (let offset = 20 * MiB; offset < 20 * MiB + 512 * 1024; offset += 128 * 1024) {
    t.ok((await file.read(offset, 128 * 1024)).equals(data.subarray(offset, offset + 128 * 1024)), `128 KiB at ${offset}`);
  }
  t.ok(client.stats.blocksFetched >= 1, `once sequential, blocks are fetched whole (${client.stats.blocksFetched}, read-ahead included)`);
});

t.test('a whole-file fetch checks the content id and returns the full hash', async (t) => {
  const data = big.subarray(0, 30 * MiB + 12345);
  const dev = servingDevice(t, { 'a.bin': data });
  const channel = await connect(t, dev.server);
  const real = path.join(dev.root, 'a.bin');
  const contentId = contentHashOfFile(real)!.contentId;
  const sources = (): BlockSource[] => [{ kind: 'peer', channel, target: { kind: 'content', contentId } }];
  const ref: RemoteFileRef = { size: data.length, mtime: 0, contentId, cacheKey: `content/${contentId}`, sources };
  const dest = path.join(tempDir(t), 'copy.bin');
  const result = await new RemoteFile(new BlockClient(), ref).fetchWhole(dest);
  t.equal(result.fullHash, fullHashOfFile(real), 'full BLAKE3 equals b3sum of the original');
  t.equal(result.contentId, contentId);
  t.ok(fs.readFileSync(dest).equals(data), 'the copy is identical');

  const wrong: RemoteFileRef = { ...ref, contentId: '0123456789abcdef', cacheKey: 'content/wrong' };
  const dest2 = path.join(tempDir(t), 'wrong.bin');
  await rejectsWithEio(t, new RemoteFile(new BlockClient(), wrong).fetchWhole(dest2), 'bytes of another content id are refused');
  t.notOk(fs.existsSync(dest2), 'and not left behind');
});

t.test('cache hits are verified; a corrupted block is detected, removed and fetched again', async (t) => {
  const data = big.subarray(0, 8 * MiB);
  const dev = servingDevice(t, { 'f.bin': data });
  const channel = await connect(t, dev.server);
  const dir = path.join(tempDir(t), 'blocks');
  const cache = await openCache(t, dir);
  const ref = pathRef(dev, 'f.bin', () => [{ kind: 'peer', channel, target: target('f.bin') }]);
  await new BlockClient({ cache }).read(ref, 0, 8 * MiB);
  await cache.flush();
  t.equal(cache.stats.blocks, 8, 'eight blocks cached');

  // A new process: the index is rebuilt from the directory.
  const reopened = await openCache(t, dir);
  t.equal(reopened.stats.blocks, 8, 'the cache survives a restart');
  const client = new BlockClient({ cache: reopened });
  t.ok((await client.read(ref, 3 * MiB, MiB)).equals(data.subarray(3 * MiB, 4 * MiB)), 'block 3 from the cache');
  t.equal(client.stats.cacheHits, 1);
  t.equal(client.stats.blocksFetched, 0, 'nothing fetched');

  const at = reopened.locate(ref.cacheKey, 5)!;
  const fd = fs.openSync(at.file, 'r+');
  fs.writeSync(fd, Buffer.from([0x55]), 0, 1, at.offset + 1000);
  fs.closeSync(fd);
  const again = new BlockClient({ cache: reopened });
  t.ok((await again.read(ref, 5 * MiB, MiB)).equals(data.subarray(5 * MiB, 6 * MiB)), 'block 5 still reads right');
  t.equal(reopened.stats.corrupt, 1, 'the corrupted block was detected');
  t.equal(again.stats.blocksFetched, 1, 'and fetched again from the peer');
  await reopened.flush();
  t.ok((await reopened.get(ref.cacheKey, 5))?.equals(data.subarray(5 * MiB, 6 * MiB)), 'the cache holds the good block again');
});

t.test('a block fetched into the cache only is read from there, as checked in this process, and not fetched twice', async (t) => {
  const data = big.subarray(0, 4 * MiB);
  const dev = servingDevice(t, { 'f.bin': data });
  const channel = await connect(t, dev.server);
  const cache = await openCache(t, path.join(tempDir(t), 'files'), { maxBytes: 2 * MiB });
  const ref = pathRef(dev, 'f.bin', () => [{ kind: 'peer', channel, target: target('f.bin') }]);
  const client = new BlockClient({ cache });
  await client.fetchToCache(ref, 2);
  t.ok(cache.isVerified(ref.cacheKey, 2), 'block 2 is cached, checked in this process');
  const buf = Buffer.alloc(5000);
  t.ok(await cache.readVerified(ref.cacheKey, 2, 1000, 5000, buf, 0), 'a range of it reads from the cache');
  t.ok(buf.equals(data.subarray(2 * MiB + 1000, 2 * MiB + 6000)), 'byte-identical');
  t.notOk(await cache.readVerified(ref.cacheKey, 1, 0, 10, buf, 0), 'a block not cached is not read from there');
  await client.fetchToCache(ref, 2);
  t.equal(client.stats.blocksFetched, 1, 'a block checked here is not fetched again');
  t.ok((await client.readBlock(ref, 2)).equals(data.subarray(2 * MiB, 3 * MiB)), 'and reads right as a whole block');

  // Two more blocks fill the cache (2 MiB): block 2, the least recently used, goes.
  await Promise.all([client.fetchToCache(ref, 0), client.fetchToCache(ref, 3)]);
  t.notOk(cache.has(ref.cacheKey, 2), 'block 2 was evicted');
  t.notOk(await cache.readVerified(ref.cacheKey, 2, 0, 10, buf, 0), 'so its hole is never read as its bytes');
  t.ok((await client.readBlock(ref, 2)).equals(data.subarray(2 * MiB, 3 * MiB)), 'a read of it fetches it again');

  const remote = new RemoteFile(client, ref);
  t.ok((await remote.read(3 * MiB - 10, 20)).equals(data.subarray(3 * MiB - 10, 3 * MiB + 10)), 'an open file reads across a cached and a fetched block');
});

t.test('a tampered block is rejected, counted, and the read continues from another copy', async (t) => {
  const data = big.subarray(0, 4 * MiB);
  const dev = servingDevice(t, { 'f.bin': data });
  const liar = new TamperingServer(path.join(dev.root, 'f.bin'));
  const bad = await connect(t, liar, 'liar');
  const good = await connect(t, dev.server, 'honest');
  const client = new BlockClient();
  const ref = pathRef(dev, 'f.bin', () => [
    { kind: 'peer', channel: bad, target: target('f.bin') },
    { kind: 'peer', channel: good, target: target('f.bin') },
  ]);
  t.ok((await client.read(ref, 0, 4 * MiB)).equals(data), 'the bytes are right');
  t.ok(client.stats.hashMismatches >= 1, `mismatches counted (${client.stats.hashMismatches})`);
  t.ok(client.stats.failovers >= 1, 'the read moved to the honest peer');
  t.ok(liar.served >= 1 && dev.server.stats.blocksServed >= 1);
  const before = liar.served;
  await client.read(ref, 0, 4 * MiB);
  t.equal(liar.served, before, 'the lying peer is avoided afterwards');

  const onlyLiar = pathRef(dev, 'f.bin', () => [{ kind: 'peer', channel: bad, target: target('f.bin') }]);
  await rejectsWithEio(t, new BlockClient().read({ ...onlyLiar, cacheKey: 'x' }, 0, 10), 'with only the liar the read fails with EIO');
});

t.test("bytes are taken only as the owner vouches: a device serving altered bytes with its own valid hashes is refused, counted faulty, and the read comes from another copy", async (t) => {
  const data = big.subarray(0, 6 * MiB);
  const altered = Buffer.from(data);
  for (const at of [100, 2 * MiB + 5, 5 * MiB + 77]) altered[at] = altered[at]! ^ 0x5a;
  const owner = servingDevice(t, { 'f.bin': data }, 'owner');
  // Real devices with their own libraries and keys: one holds altered bytes (and signs its
  // own, correct, hashes of them), one an exact copy.
  const liar = servingDevice(t, { 'f.bin': altered }, 'liar');
  const honest = servingDevice(t, { 'f.bin': data }, 'honest');
  // One mtime for the three (whole seconds: exact on every file system), as copies keep it.
  for (const dev of [owner, liar, honest]) fs.utimesSync(path.join(dev.root, 'f.bin'), 1_700_000_000, 1_700_000_000);
  const toOwner = await connect(t, owner.server, 'owner');
  const toLiar = await connect(t, liar.server, 'liar');
  const toHonest = await connect(t, honest.server, 'honest');
  const faults: string[] = [];
  const ownerKey = deviceKeys(owner.library.dir).log.publicKey;
  let ownerOnline = true;
  const ownerSource = (): BlockSource => ({ kind: 'peer', channel: toOwner, target: target('f.bin') });
  const ref = (sources: () => BlockSource[]): RemoteFileRef => ({
    ...pathRef(owner, 'f.bin', sources),
    owner: { key: ownerKey, source: () => (ownerOnline ? ownerSource() : undefined) },
  });

  const client = new BlockClient({ onFault: (peer) => faults.push(peer) });
  const viaLiar = ref(() => [{ kind: 'peer', channel: toLiar, target: target('f.bin') }, ownerSource()]);
  t.ok((await client.read(viaLiar, 0, 6 * MiB)).equals(data), "the owner's bytes, not the liar's");
  t.ok(client.stats.faults >= 3, `each altered block counted as a fault (${client.stats.faults})`);
  t.ok(faults.length >= 3 && faults.every((p) => p === 'liar'), `the liar is reported (${faults.join(', ')})`);
  t.ok(owner.server.stats.hashesServed >= 1, 'the owner was asked for its signed hashes, without the bytes');
  t.ok(client.stats.ownerChecks >= 1, 'blocks the liar had not altered were checked and taken');
  // Cold range reads (a seek into a block nobody has) are vouched the same way.
  const cold = new BlockClient();
  t.ok((await cold.readRange(viaLiar, 2 * MiB, 4096)).equals(data.subarray(2 * MiB, 2 * MiB + 4096)), 'a short read of an altered range comes from the owner');
  t.equal(cold.stats.faults, 1, 'and the liar is caught on it');

  const honestClient = new BlockClient();
  const viaHonest = ref(() => [{ kind: 'peer', channel: toHonest, target: target('f.bin') }, ownerSource()]);
  t.ok((await honestClient.read(viaHonest, 0, 6 * MiB)).equals(data), 'an exact copy on another device reads right');
  t.equal(honestClient.stats.faults, 0, 'and is never counted faulty');
  t.equal(honestClient.stats.ownerChecks, 6, 'each of its blocks vouched for by the owner');
  t.equal(honest.server.stats.blocksServed, 6, 'the bytes came from the copy, not the owner');

  ownerOnline = false;
  const offline = new BlockClient();
  t.ok((await offline.read(viaHonest, 0, MiB)).equals(data.subarray(0, MiB)), 'with the owner offline, a copy is still read');
  t.equal(offline.stats.unvouched, 1, 'on its own word, and counted so');
  t.ok((await honestClient.read(viaHonest, MiB, MiB)).equals(data.subarray(MiB, 2 * MiB)), 'a range the owner vouched for before needs no owner now');
  t.equal(honestClient.stats.unvouched, 0, 'and is vouched for all the same');
});

t.test("a copy fetched from the owner passes the owner's signed hashes along: with the owner away, its bytes are still checked, and altered ones refused", async (t) => {
  const data = big.subarray(0, 6 * MiB + 999);
  const altered = Buffer.from(data);
  altered[3 * MiB + 10] = altered[3 * MiB + 10]! ^ 0x5a;
  const owner = servingDevice(t, { 'f.bin': data }, 'owner');
  const keeper = servingDevice(t, { 'f.bin': data }, 'keeper');
  const liar = servingDevice(t, { 'f.bin': altered }, 'liar');
  const contentId = contentHashOfFile(path.join(owner.root, 'f.bin'))!.contentId;
  const toOwner = await connect(t, owner.server, 'owner');
  const toKeeper = await connect(t, keeper.server, 'keeper');
  const toLiar = await connect(t, liar.server, 'liar');
  const byContent = (channel: BlockChannel): BlockSource => ({ kind: 'peer', channel, target: { kind: 'content', contentId } });

  // The keeper's copy came from the owner (a repair does this): what the owner signed for each block is kept with it.
  const kept: RangeVouch[] = [];
  const fetchRef: RemoteFileRef = { size: data.length, mtime: 0, contentId, cacheKey: `content/${contentId}/${data.length}`, sources: () => [byContent(toOwner)], onVouches: (v) => kept.push(...v) };
  await new RemoteFile(new BlockClient(), fetchRef).fetchWhole(path.join(tempDir(t), 'copy.bin'));
  t.equal(kept.length, 7, "the owner's signature of each of the 7 blocks");
  new VouchStore(keeper.library.db).record(contentId, data.length, kept);
  // The liar has them too (it copied the rows) but serves altered bytes.
  new VouchStore(liar.library.db).record(contentId, data.length, kept);

  // A reader of the owner's file with the owner away: the copies by content id only.
  const ownerKey = deviceKeys(owner.library.dir).log.publicKey;
  const ref = (sources: () => BlockSource[]): RemoteFileRef => ({ ...pathRef(owner, 'f.bin', sources), contentId, cacheKey: `content/${contentId}/${data.length}`, owner: { key: ownerKey, source: () => undefined } });
  const reader = new BlockClient();
  t.ok((await reader.read(ref(() => [byContent(toKeeper)]), 0, data.length)).equals(data), "the keeper's copy reads right");
  t.equal(reader.stats.passedAlong, 7, "every block checked against the owner's signature the keeper passed along");
  t.equal(reader.stats.unvouched, 0, 'none taken on the sender\'s word alone');
  t.equal(owner.server.stats.hashesServed, 0, 'the owner was not asked');

  const faults: string[] = [];
  const wary = new BlockClient({ onFault: (peer) => faults.push(peer) });
  t.ok((await wary.read(ref(() => [byContent(toLiar), byContent(toKeeper)]), 0, data.length)).equals(data), "through the liar first, the owner's bytes still");
  t.same(faults, ['liar'], "the altered block is not what the owner signed (its hash passed along by the keeper): the liar is counted faulty");
  t.equal(wary.stats.unvouched, 0, 'and every block taken was checked');
});

t.test('a peer vanishing mid-read: the read continues from another copy, or fails with EIO at once', async (t) => {
  const data = big.subarray(0, 48 * MiB);
  const dev = servingDevice(t, { 'f.bin': data });
  const second = servingDevice(t, { 'f.bin': data }, 'second');
  fs.utimesSync(path.join(second.root, 'f.bin'), fs.statSync(path.join(dev.root, 'f.bin')).atime, fs.statSync(path.join(dev.root, 'f.bin')).mtime);
  const first = await connect(t, dev.server, 'first');
  const other = await connect(t, second.server, 'second');
  const ref = pathRef(dev, 'f.bin', () => [
    { kind: 'peer', channel: first, target: target('f.bin') },
    { kind: 'peer', channel: other, target: target('f.bin') },
  ]);
  ref.mtime = 0; // the two copies are the same bytes; only their size is checked
  const client = new BlockClient();
  const file = new RemoteFile(client, ref);
  const hasher = new Blake3Hasher();
  for (let offset = 0; offset < data.length; offset += MiB) {
    if (offset === 8 * MiB) first.destroy();
    hasher.update(await file.read(offset, MiB));
  }
  t.equal(hasher.digest('hex'), blake3(data).toString('hex'), 'all bytes right');
  t.ok(dev.server.stats.blocksServed > 0 && second.server.stats.blocksServed > 0, `both served (${dev.server.stats.blocksServed} + ${second.server.stats.blocksServed})`);

  // Only one copy, and it goes away while a block is asked for.
  const silent = new SilentServer();
  const doomed = await connect(t, silent, 'doomed');
  const alone: RemoteFileRef = { ...ref, cacheKey: 'alone', sources: () => [{ kind: 'peer', channel: doomed, target: target('f.bin') }] };
  const started = Date.now();
  const read = new BlockClient({ timeoutMs: 5000 }).read(alone, 0, 100);
  setTimeout(() => doomed.destroy(), 100);
  await rejectsWithEio(t, read, 'the read fails with EIO');
  t.ok(Date.now() - started < 2000, `as soon as the connection drops (${Date.now() - started} ms)`);
  await rejectsWithEio(t, new BlockClient().read(alone, 0, 100), 'a closed peer is no source: EIO at once');
});

t.test('bytes come from the cheapest copy: this device first, then the faster peer', async (t) => {
  const data = big.subarray(0, 16 * MiB);
  const dev = servingDevice(t, { 'f.bin': data });
  const second = servingDevice(t, { 'f.bin': data }, 'second');
  const slow = await connect(t, new SlowServer(dev.server, 150), 'slow');
  const fast = await connect(t, second.server, 'fast');
  const local = path.join(tempDir(t), 'local-copy.bin');
  fs.writeFileSync(local, data);
  const peers = (): BlockSource[] => [
    { kind: 'peer', channel: slow, target: target('f.bin') },
    { kind: 'peer', channel: fast, target: target('f.bin') },
  ];
  const base = { ...pathRef(dev, 'f.bin', peers), mtime: 0 };

  const withLocal = new BlockClient();
  const ref = { ...base, cacheKey: 'with-local', sources: () => [...peers(), { kind: 'local' as const, path: local }] };
  t.ok((await withLocal.read(ref, 0, 16 * MiB)).equals(data), 'right bytes');
  t.equal(withLocal.stats.localReads, 16, 'all from the local copy');
  t.equal(dev.server.stats.blocksServed + second.server.stats.blocksServed, 0, 'no peer asked');

  const client = new BlockClient();
  for (let i = 0; i < 16; i++) t.ok((await client.readBlock(base, i)).equals(data.subarray(i * MiB, (i + 1) * MiB)), `block ${i}`, { diagnostic: false });
  t.ok(second.server.stats.blocksServed >= 14, `the fast peer served most blocks (${second.server.stats.blocksServed} of 16; slow: ${dev.server.stats.blocksServed})`);
});

t.test('a peer that never answers: EIO after the timeout, never a hang', async (t) => {
  const dev = servingDevice(t, { 'f.bin': Buffer.alloc(1000, 1) });
  const silent = new SilentServer();
  const channel = await connect(t, silent, 'silent');
  const ref = pathRef(dev, 'f.bin', () => [{ kind: 'peer', channel, target: target('f.bin') }]);
  const started = Date.now();
  await rejectsWithEio(t, new BlockClient({ timeoutMs: 400 }).read(ref, 0, 10), 'EIO');
  const ms = Date.now() - started;
  t.ok(ms >= 390 && ms < 3000, `after the timeout, not long after (${ms} ms)`);
  t.equal(silent.received, 1);
  await rejectsWithEio(t, new BlockClient().read({ ...ref, sources: () => [] }, 0, 10), 'no source at all: EIO');
});

t.test('a peer gone silent without closing its connection: the next copy answers within the timeout', async (t) => {
  const dev = servingDevice(t, { 'f.bin': big.subarray(0, 3 * MiB) });
  const silent = new SilentServer();
  const mute = await connect(t, silent, 'mute');
  const honest = await connect(t, dev.server, 'honest');
  // Both unmeasured: the silent one, listed first, is asked first.
  const ref = pathRef(dev, 'f.bin', () => [
    { kind: 'peer', channel: mute, target: target('f.bin') },
    { kind: 'peer', channel: honest, target: target('f.bin') },
  ]);
  const client = new BlockClient({ timeoutMs: 1000 });
  const started = Date.now();
  t.ok((await client.readBlock(ref, 0)).equals(big.subarray(0, MiB)), 'the block reads right');
  const ms = Date.now() - started;
  t.equal(silent.received, 1, 'the silent peer was asked first');
  t.ok(ms >= 450 && ms < 1000, `after its share of the timeout, within the timeout (${ms} ms)`);
  t.equal(client.stats.failovers, 1);
});

t.test("an open file answers the kernel's retries of a block that just failed at once, and fetches it again later", async (t) => {
  const dev = servingDevice(t, { 'f.bin': Buffer.alloc(3 * MiB, 7) });
  const silent = new SilentServer();
  const channel = await connect(t, silent, 'silent');
  const file = new RemoteFile(new BlockClient({ timeoutMs: 300 }), pathRef(dev, 'f.bin', () => [{ kind: 'peer', channel, target: target('f.bin') }]));
  const timed = async () => {
    const started = Date.now();
    await rejectsWithEio(t, file.read(MiB + 10, 4096), 'EIO');
    return Date.now() - started;
  };
  t.ok((await timed()) >= 290, 'the first read waits for the timeout');
  const asked = silent.received;
  t.ok((await timed()) < 100, 'a retry right after fails at once');
  t.equal(silent.received, asked, 'without asking the peer again');
  await new Promise((r) => setTimeout(r, config.failedBlockHoldMs + 100));
  t.ok((await timed()) >= 290, 'a read after failedBlockHoldMs asks again');
  t.ok(silent.received > asked);
});

t.test('requests for anything outside a location, or not in its index, are refused', async (t) => {
  const outside = tempDir(t, 'sd-outside-');
  fs.writeFileSync(path.join(outside, 'secret.txt'), 'secret');
  const dev = servingDevice(t, { 'ok.txt': Buffer.from('fine'), 'sub/secret.txt': Buffer.from('inside'), '.git/config': Buffer.from('[core]') });
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(dev.root, 'link.txt'));
  indexLocation(dev.library, dev.location);
  const channel = await connect(t, dev.server);
  const ask = async (tg: BlockTarget, size = 6) => {
    const { response } = channel.request({ target: tg, offset: 0, length: 100, expectSize: size, expectMtime: 0, hashOnly: false });
    return response;
  };
  const ok = await ask(target('ok.txt'), 4);
  t.ok(ok.ok && ok.reply.data.toString() === 'fine', 'a file of the location is served');
  for (const p of ['../outside/secret.txt', '/etc/passwd', 'sub/../../etc/passwd', './ok.txt']) {
    const r = await ask(target(p));
    t.ok(!r.ok && r.error.code === 'REFUSED', `'${p}' refused (${r.ok ? 'served!' : r.error.code})`);
  }
  for (const p of ['link.txt', '.git/config', 'nope.txt']) {
    const r = await ask(target(p));
    t.ok(!r.ok && r.error.code === 'NOT_FOUND', `'${p}' is not an indexed file (${r.ok ? 'served!' : r.error.code})`);
  }
  const noLoc = await ask({ kind: 'path', location: 'etc', path: 'passwd' });
  t.ok(!noLoc.ok && noLoc.error.code === 'NOT_FOUND', 'an unknown location is not found');

  // The index says sub/secret.txt; the folder is then swapped for a link leading outside.
  fs.renameSync(path.join(dev.root, 'sub'), path.join(dev.root, 'sub-old'));
  fs.symlinkSync(outside, path.join(dev.root, 'sub'));
  const swapped = await ask(target('sub/secret.txt'));
  t.ok(!swapped.ok && swapped.error.code === 'REFUSED', `a path through a symlink out of the location is refused (${swapped.ok ? 'served!' : swapped.error.code})`);
  if (!swapped.ok) {
    t.notOk(swapped.error.message.includes(outside) || swapped.error.message.includes(dev.root), `the answer names no real path (${swapped.error.message})`);
  }
  t.ok(dev.server.stats.refused >= 5);
});

t.test('garbage and oversized messages close that connection; the node and other connections live on', async (t) => {
  const dev = servingDevice(t, { 'ok.txt': Buffer.from('fine') });
  const healthy = await connect(t, dev.server, 'healthy');
  const attacks: Array<[string, Buffer]> = [
    ['random bytes', crypto.randomBytes(200)],
    ['a path length of 2^40', Buffer.from([1, 0, 3, 0x6d, 0x65, 0x64, 0xfe, 0, 0, 0, 0, 1, 0, 0, 0])],
    ['a request for 1 GiB', encodeRequest({ id: 1, target: target('ok.txt'), offset: 0, length: 1024 * MiB, expectSize: 4, expectMtime: 0, hashOnly: false })],
    ['an empty message', Buffer.alloc(0)],
    ['a truncated request', encodeRequest({ id: 1, target: target('ok.txt'), offset: 0, length: 4, expectSize: 4, expectMtime: 0, hashOnly: false }).subarray(0, 9)],
  ];
  for (const [what, payload] of attacks) {
    const [a, b] = noisePair(t);
    new BlockChannel(b, { server: dev.server, name: 'victim-side' });
    const mux = new Protomux(a);
    const ch = mux.createChannel({ protocol: BLOCK_PROTOCOL })!;
    const raw = ch.addMessage({ encoding: c.raw });
    ch.open();
    const closed = new Promise<void>((resolve) => b.once('close', () => resolve()));
    raw.send(payload);
    const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 2000))]);
    t.equal(outcome, 'closed', `${what}: the connection is closed`);
  }
  // Noise itself: bytes that are no encrypted frame at all.
  const [a, b] = noisePair(t);
  new BlockChannel(b, { server: dev.server, name: 'victim-side' });
  await a.opened;
  const closed = new Promise<void>((resolve) => b.once('close', () => resolve()));
  a.rawStream.write(Buffer.concat([Buffer.from([0x40, 0, 0]), crypto.randomBytes(64)]));
  t.equal(await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 2000))]), 'closed', 'a forged frame closes the connection');

  const { response } = healthy.request({ target: target('ok.txt'), offset: 0, length: 4, expectSize: 4, expectMtime: 0, hashOnly: false });
  const r = await response;
  t.ok(r.ok && r.reply.data.toString() === 'fine', 'the other connection is still served');
});

function encodeRequest(req: BlockRequest): Buffer {
  // Encoded without the decoder's limits, as a hostile peer would.
  const state = { start: 0, end: 0, buffer: null as Uint8Array | null };
  blockRequestEncoding.preencode(state, req);
  state.buffer = Buffer.alloc(state.end);
  blockRequestEncoding.encode(state, req);
  return state.buffer as Buffer;
}

t.test('a full disk under the block cache costs the cache, never a read', async (t) => {
  const data = big.subarray(0, 4 * MiB);
  const dev = servingDevice(t, { 'f.bin': data });
  const channel = await connect(t, dev.server);
  const dir = path.join(tempDir(t), 'files');
  const cache = await openCache(t, dir);
  const ref = pathRef(dev, 'f.bin', () => [{ kind: 'peer', channel, target: target('f.bin') }]);
  // The file's data file is /dev/full: every write to it fails with ENOSPC.
  fs.symlinkSync('/dev/full', path.join(dir, `${blake3(ref.cacheKey).toString('hex').slice(0, 32)}.data`));
  const client = new BlockClient({ cache });
  t.ok((await client.read(ref, 0, 4 * MiB)).equals(data), 'the read is right');
  await cache.flush();
  t.equal(cache.stats.writes, 0, 'nothing was cached');
  t.equal(cache.stats.blocks, 0, 'and nothing is counted as cached');
  t.ok((await client.read(ref, MiB, MiB)).equals(data.subarray(MiB, 2 * MiB)), 'a second read is right too');
  t.equal(client.stats.cacheHits, 0, 'fetched again, not from a cache that could not keep it');
});

t.test('the cache evicts least recently used blocks to stay under its limit, also after a restart', async (t) => {
  const dir = path.join(tempDir(t), 'blocks');
  const blockBytes = 64 * 1024;
  const limit = 5 * (blockBytes + 32);
  const cache = await openCache(t, dir, { maxBytes: limit });
  const blocks = Array.from({ length: 10 }, () => crypto.randomBytes(blockBytes));
  for (let i = 0; i < 4; i++) await cache.put('k', i, blocks[i]!, blake3(blocks[i]!));
  t.ok(await cache.get('k', 0), 'block 0 used again');
  for (let i = 4; i < 8; i++) await cache.put('k', i, blocks[i]!, blake3(blocks[i]!));
  t.ok(cache.stats.bytes <= limit, `bytes ${cache.stats.bytes} <= ${limit}`);
  t.equal(cache.stats.blocks, 5);
  t.equal(cache.stats.evictions, 3);
  const kept = [...Array(10).keys()].filter((i) => cache.has('k', i));
  t.same(kept, [0, 4, 5, 6, 7], 'the most recently used stay (block 0 was read again, 1-3 were not)');
  const dataFiles = fs.readdirSync(dir).filter((n) => n.endsWith('.data'));
  t.equal(dataFiles.length, 1, "one sparse data file holds the key's blocks");
  const allocated = fs.statSync(path.join(dir, dataFiles[0]!)).blocks * 512;
  t.ok(allocated <= 6 * blockBytes, `evicted blocks are freed on disk, their holes punched (${allocated} bytes allocated for 5 blocks)`);

  const smaller = await openCache(t, dir, { maxBytes: 2 * (blockBytes + 32) });
  t.equal(smaller.stats.blocks, 2, 'a restart with a smaller limit evicts down to it');
  t.ok(smaller.has('k', 7) && smaller.has('k', 6), 'keeping the most recent');
});

t.test('a device serves its files on every connection and reads a peer\'s through its library cache', async (t) => {
  const data = big.subarray(0, 5 * MiB + 3);
  const owner = servingDevice(t, { 'clip.mp4': data }, 'owner');
  const reader = tempLibrary(t, 'reader');
  const ownerBlocks = await BlockService.open(owner.library);
  const readerBlocks = await BlockService.open(reader, { timeoutMs: 300 });
  t.teardown(async () => {
    await ownerBlocks.close();
    await readerBlocks.close();
  });
  const [a, b] = noisePair(t);
  ownerBlocks.attach(b, 'reader');
  const channel = readerBlocks.attach(a, 'owner');
  t.ok(await channel.waitOpened());
  const file = readerBlocks.openFile(pathRef(owner, 'clip.mp4', () => {
    const c = readerBlocks.channelTo('owner');
    return c ? [{ kind: 'peer', channel: c, target: target('clip.mp4') }] : [];
  }));
  const buf = Buffer.alloc(data.length);
  t.equal(await file.readInto(buf, 0, data.length), data.length);
  t.ok(buf.equals(data), 'identical');
  await readerBlocks.cache.flush();
  t.equal(readerBlocks.stats.cache.blocks, 6, 'the blocks are in the reader\'s cache');
  t.ok(fs.existsSync(BlockCache.dirOf(reader.dir)), 'under <library>/cache/files');
  t.equal(ownerBlocks.stats.server.blocksServed, 6);

  a.destroy();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(readerBlocks.channelTo('owner'), undefined, 'the peer is offline once its connection closes');
  const cachedOnly = readerBlocks.openFile(pathRef(owner, 'clip.mp4', () => []));
  t.ok((await cachedOnly.read(2 * MiB, 100)).equals(data.subarray(2 * MiB, 2 * MiB + 100)), 'cached bytes still read offline');

  // A peer that does not speak the block protocol: the request is never answered, EIO in time.
  const [c1, c2] = noisePair(t);
  void c2;
  const mute = readerBlocks.attach(c1, 'mute');
  const started = Date.now();
  const uncached = { ...pathRef(owner, 'clip.mp4', () => [{ kind: 'peer' as const, channel: mute, target: target('clip.mp4') }]), cacheKey: 'other' };
  await rejectsWithEio(t, readerBlocks.openFile(uncached).read(0, 10), 'EIO');
  t.ok(Date.now() - started < 3000, `soon after the timeout (${Date.now() - started} ms)`);
});
