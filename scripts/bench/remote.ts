// Remote file bytes: a block server in a child process (a real library with an indexed
// location) and the client here, over a real Hyperswarm connection on a local testnet
// (UDX + Noise), or with `tcp` over the direct lane as the mount opens it (src/replication/lane.ts:
// TCP + TLS 1.3, keyed by an offer the server process prints). Figures: sequential read of a 1 GiB file
// in 128 KiB reads (what FUSE asks) against a local read of the same file, time to first
// byte, p50/p95 of 4 KiB reads at random offsets (cold cache), and a re-read from the cache.
// Run: node build/scripts/bench/remote.js [swarm|tcp] [--json] [--mib 1024] [--random 200] [--keep]
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import NoiseSecretStream from '@hyperswarm/secret-stream';
import c from 'compact-encoding';
import Protomux from 'protomux';
import { BlockCache } from '../../src/replication/block-cache.js';
import { BlockChannel } from '../../src/replication/block-channel.js';
import { BlockClient, type RemoteFileRef } from '../../src/replication/block-client.js';
import { BlockServer, LibraryServedFiles } from '../../src/replication/block-server.js';
import { DirectLane } from '../../src/replication/lane.js';
import { laneOffer, type LaneOffer } from '../../src/replication/messages.js';
import { RemoteFile } from '../../src/replication/remote-file.js';
import { EntryStore } from '../../src/vdfs/entries.js';
import { indexLocation } from '../../src/vdfs/indexer/indexer.js';
import { initLibrary, openLibrary } from '../../src/vdfs/library.js';
import { addLocation } from '../../src/vdfs/locations.js';
import type { Peer } from '../../src/vdfs/peers.js';
import { Report, cpuSecondsOf, flushToDisk, makeTempDir, mb, numberArg, parseArgs, seededRandom, writeRandomFile } from './common.js';

const MiB = 1024 * 1024;
const FUSE_READ = 128 * 1024;
const AIM_MBPS = 300;
const AIM_TTFB_MS = 50;

const args = parseArgs();
const require = createRequire(import.meta.url);

/** The few calls of hyperswarm and hyperdht/testnet the bench makes (no types shipped). */
interface Swarm {
  join(topic: Buffer, opts: { server: boolean; client: boolean }): { flushed(): Promise<void> };
  on(event: 'connection', listener: (conn: NoiseSecretStream) => void): void;
  destroy(): Promise<void>;
}
type Dht = object;
type SwarmCtor = new (opts: { dht: Dht }) => Swarm;
type DhtCtor = new (opts: { ephemeral: boolean; bootstrap: Array<{ host: string; port: number }>; host: string }) => Dht;
interface Testnet {
  bootstrap: Array<{ host: string; port: number }>;
  createNode(): Dht;
  destroy(): Promise<void>;
}
const Hyperswarm = require('hyperswarm') as SwarmCtor;
const HyperDht = require('hyperdht') as DhtCtor;
const createTestnet = require('hyperdht/testnet') as (size: number, opts: { host: string }) => Promise<Testnet>;

/** How the client reaches the server process: a port, or a bootstrap + topic on the local DHT. */
type Endpoint = { kind: 'tcp'; offer: LaneOffer } | { kind: 'swarm'; bootstrapPort: number; topic: string };

/** The device at the other end, as each side's DirectLane knows it. */
const BENCH_PEER: Peer = { id: 'bench-id', name: 'bench', slug: 'bench', publicKey: '00'.repeat(32), logKey: null, pairedAt: 0, revokedAt: null, onlineAt: null, lastSeen: null, rttMs: null, faults: 0, lastFaultAt: null, lastFault: null, introducedBy: null, revokedBy: null };

/** The server process: serves the library's locations on a loopback port, or on a swarm topic. */
async function serve(libraryDir: string, bootstrapPort?: string, topic?: string): Promise<void> {
  const library = openLibrary(libraryDir);
  const server = new BlockServer(new LibraryServedFiles(library));
  const attach = (stream: Duplex): void => {
    stream.on('error', () => undefined);
    new BlockChannel(stream, { server, name: 'bench-client' });
    serveTransportProbe(stream);
  };
  process.stdin.on('end', () => process.exit(0)).resume();
  if (bootstrapPort && topic) {
    // A DHT node bound to 127.0.0.1 like the testnet's own (testnet.createNode()): with only
    // `bootstrap`, the client's connection opens but the server never sees it.
    const dht = new HyperDht({ ephemeral: true, bootstrap: [{ host: '127.0.0.1', port: Number(bootstrapPort) }], host: '127.0.0.1' });
    const swarm = new Hyperswarm({ dht });
    swarm.on('connection', attach);
    await swarm.join(Buffer.from(topic, 'hex'), { server: true, client: false }).flushed();
    process.stdout.write('ready\n');
    return;
  }
  const lane = new DirectLane(() => BENCH_PEER, (_peer, stream) => attach(stream));
  if (!(await lane.listen(0))) throw new Error('the direct lane cannot listen');
  process.stdout.write(`${Buffer.from(c.encode(laneOffer, lane.offer(BENCH_PEER)!)).toString('hex')}\n`);
}

const PROBE_PROTOCOL = 'sdfs/bench-transport';

/** The transport alone: on request, n messages of 1 MiB, no file, no hash (the ceiling). */
function serveTransportProbe(stream: Duplex): void {
  const payload = Buffer.alloc(MiB, 0x5a);
  const channel = Protomux.from(stream).createChannel({ protocol: PROBE_PROTOCOL })!;
  const data = channel.addMessage({ encoding: c.buffer });
  channel.addMessage({
    encoding: c.uint,
    onmessage(n: number) {
      for (let i = 0; i < n; i++) data.send(payload);
    },
  });
  channel.open();
}

/**
 * The client end of the transport probe, opened with the block channel; measure(n) is the
 * MB/s of n 1 MiB messages from the server on that connection (the transport's ceiling).
 * Both ends open it when the connection comes up: opened later, it did not pair on a swarm
 * connection (not looked into further).
 */
function openTransportProbe(stream: Duplex): { measure(n: number): Promise<number> } {
  const channel = Protomux.from(stream).createChannel({ protocol: PROBE_PROTOCOL })!;
  let onData = (): void => undefined;
  channel.addMessage({ encoding: c.buffer, onmessage: () => onData() });
  const ask = channel.addMessage({ encoding: c.uint });
  channel.open();
  return {
    async measure(n: number): Promise<number> {
      // Asked one message at a time with 8 outstanding, as the read-ahead asks for blocks.
      let got = 0;
      let asked = 0;
      const finished = new Promise<void>((resolve) => (onData = () => {
        if (++got === n) resolve();
        else if (asked < n) {
          asked++;
          ask.send(1);
        }
      }));
      const started = performance.now();
      for (; asked < Math.min(8, n); asked++) ask.send(1);
      await finished;
      return mb(n * MiB) / ((performance.now() - started) / 1000);
    },
  };
}

function startServer(libraryDir: string, swarmAt?: { bootstrapPort: number; topic: string }): Promise<{ endpoint: Endpoint; pid: number; stop(): void }> {
  const script = fileURLToPath(import.meta.url);
  const extra = swarmAt ? [String(swarmAt.bootstrapPort), swarmAt.topic] : [];
  // The server runs with this process's node flags (--cpu-prof profiles both sides).
  const child = spawn(process.execPath, [...process.execArgv, script, 'serve', libraryDir, ...extra], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`the server exited with ${code}`)));
    child.stdout.setEncoding('utf8').once('data', (line: string) => {
      const endpoint: Endpoint = swarmAt ? { kind: 'swarm', ...swarmAt } : { kind: 'tcp', offer: c.decode(laneOffer, Buffer.from(line.trim(), 'hex')) };
      resolve({ endpoint, pid: child.pid!, stop: () => child.stdin.end() });
    });
  });
}

async function connect(endpoint: Endpoint, testnet?: Testnet): Promise<{ channel: BlockChannel; probe: ReturnType<typeof openTransportProbe>; ms: number; close(): Promise<void> }> {
  const started = performance.now();
  let stream: Duplex;
  let close = async (): Promise<void> => void stream.destroy();
  if (endpoint.kind === 'tcp') {
    let adopted: Duplex | undefined;
    const lane = new DirectLane(() => undefined, (_peer, s) => (adopted = s));
    if (!(await lane.connect(BENCH_PEER, endpoint.offer)) || !adopted) throw new Error('the direct lane did not open');
    stream = adopted;
  } else {
    const swarm = new Hyperswarm({ dht: testnet!.createNode() });
    const connected = new Promise<NoiseSecretStream>((resolve) => swarm.on('connection', resolve));
    swarm.join(Buffer.from(endpoint.topic, 'hex'), { server: false, client: true });
    stream = await connected;
    close = () => swarm.destroy();
  }
  stream.on('error', () => undefined);
  const channel = new BlockChannel(stream, { name: 'bench-server' });
  const probe = openTransportProbe(stream);
  if (!(await channel.waitOpened())) throw new Error('the block channel did not open');
  return { channel, probe, ms: performance.now() - started, close };
}

async function localRead(file: string): Promise<number> {
  const handle = await fs.promises.open(file, 'r');
  const buf = Buffer.allocUnsafe(FUSE_READ);
  const started = performance.now();
  let pos = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buf, 0, FUSE_READ, pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
  }
  await handle.close();
  return (performance.now() - started) / 1000;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

async function bench(): Promise<void> {
  const size = numberArg(args, 'mib', 1024) * MiB;
  const randomReads = numberArg(args, 'random', 200);
  const report = new Report('remote', args.json);
  report.noteMachine('start');
  const tmp = makeTempDir('sdfs-bench-remote-', args.keep);

  report.progress(`writing a ${size / MiB} MiB file and indexing it`);
  const root = path.join(tmp, 'media');
  fs.mkdirSync(root);
  const file = path.join(root, 'movie.mkv');
  writeRandomFile(file, size, crypto.randomBytes(64 * MiB), seededRandom(5));
  const { library } = initLibrary(path.join(tmp, 'server-library'), 'bench-server');
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'media' });
  indexLocation(library, location);
  library.close();
  await flushToDisk();

  const overSwarm = args.positional[0] !== 'tcp';
  const testnet = overSwarm ? await createTestnet(3, { host: '127.0.0.1' }) : undefined;
  const swarmAt = testnet ? { bootstrapPort: testnet.bootstrap[0]!.port, topic: crypto.randomBytes(32).toString('hex') } : undefined;
  const transport = overSwarm ? 'Hyperswarm (UDX + Noise) on a local testnet' : 'the direct lane (TCP + TLS 1.3) over loopback';
  report.note(`transport: ${transport}`);
  const server = await startServer(path.join(tmp, 'server-library'), swarmAt);
  try {
    const st = fs.statSync(file);
    const { channel, probe, ms: connectMs, close } = await connect(server.endpoint, testnet);
    report.figure({ name: 'connect', value: connectMs, unit: 'ms', note: overSwarm ? 'DHT lookup, hole punch, Noise, block channel open' : 'TCP, TLS, block channel open' });
    const cache = await BlockCache.open(path.join(tmp, 'client-cache'), { maxBytes: size + 64 * MiB });
    const ref: RemoteFileRef = {
      size: st.size, mtime: st.mtimeMs, cacheKey: `bench/media/movie.mkv/${st.size}/${st.mtimeMs}`,
      sources: () => [{ kind: 'peer', channel, target: { kind: 'path', location: 'media', path: 'movie.mkv' } }],
    };

    const ceiling = await probe.measure(Math.min(512, size / MiB));
    report.figure({ name: 'transport ceiling', value: ceiling, unit: 'MB/s', note: 'the same connection, 1 MiB protomux messages, 8 in flight, no file or hash' });

    const localSeconds = await localRead(file);
    report.figure({ name: 'local read (reference)', value: mb(size) / localSeconds, unit: 'MB/s', note: `${size / MiB} MiB in ${FUSE_READ / 1024} KiB reads, page cache` });

    // Cold: nothing cached. Sequential in FUSE-sized reads.
    const client = new BlockClient({ cache });
    const remote = new RemoteFile(client, ref);
    const started = performance.now();
    let firstByteMs = 0;
    // Into one buffer, as the mount's FUSE reads are.
    const readBuf = Buffer.allocUnsafe(FUSE_READ);
    const cpuBefore = { reader: process.cpuUsage(), server: cpuSecondsOf(server.pid) };
    for (let offset = 0; offset < size; offset += FUSE_READ) {
      const n = await remote.readInto(readBuf, offset, FUSE_READ);
      if (offset === 0) firstByteMs = performance.now() - started;
      if (n === 0) throw new Error(`short read at ${offset}`);
    }
    const seqSeconds = (performance.now() - started) / 1000;
    const readerCpu = process.cpuUsage(cpuBefore.reader);
    report.note(`sequential read CPU s: reader ${((readerCpu.user + readerCpu.system) / 1e6).toFixed(2)}, server ${(cpuSecondsOf(server.pid) - cpuBefore.server).toFixed(2)}`);
    if (process.execArgv.some((a) => a.startsWith('--cpu-prof'))) {
      const endUs = process.hrtime.bigint() / 1000n;
      report.note(`sequential read in the profiles: ${endUs - BigInt(Math.round(seqSeconds * 1e6))} ${endUs}`);
    }
    const seqMbps = mb(size) / seqSeconds;
    report.figure({ name: 'remote sequential read', value: seqMbps, unit: 'MB/s', note: `${(seqMbps / (mb(size) / localSeconds)).toFixed(2)}x local, ${(seqMbps / ceiling).toFixed(2)}x transport; ${client.stats.blocksFetched} blocks, ${client.stats.hashMismatches} bad`, aim: { op: '>=', value: AIM_MBPS } });
    report.figure({ name: 'time to first byte', value: firstByteMs, unit: 'ms', note: 'first 128 KiB of a cold file on an open connection', aim: { op: '<=', value: AIM_TTFB_MS } });
    await cache.flush();

    // Warm: the same file again, from the disk cache (each block verified).
    const warmClient = new BlockClient({ cache });
    const warm = new RemoteFile(warmClient, ref);
    const warmStarted = performance.now();
    for (let offset = 0; offset < size; offset += FUSE_READ) await warm.readInto(readBuf, offset, FUSE_READ);
    const warmMbps = mb(size) / ((performance.now() - warmStarted) / 1000);
    report.figure({ name: 'cached re-read', value: warmMbps, unit: 'MB/s', note: `${warmClient.stats.cacheHits} verified cache hits, ${warmClient.stats.blocksFetched} fetched` });

    // A restart: the cache index is rebuilt from the block files on disk.
    const rebuildStarted = performance.now();
    const reopened = await BlockCache.open(cache.dir, { maxBytes: cache.maxBytes });
    report.figure({ name: 'cache index rebuild', value: performance.now() - rebuildStarted, unit: 'ms', note: `${reopened.stats.blocks} blocks, ${(reopened.stats.bytes / 2 ** 30).toFixed(2)} GiB, at start` });

    // Random 4 KiB reads, cold: a new client without the cache, offsets spread over the file.
    const coldClient = new BlockClient();
    const random = seededRandom(11);
    const latencies: number[] = [];
    for (let i = 0; i < randomReads; i++) {
      const r = new RemoteFile(coldClient, ref);
      const offset = Math.floor(random() * (size - 4096));
      const t0 = performance.now();
      await r.read(offset, 4096);
      latencies.push(performance.now() - t0);
      // The block behind the short read: fetched before the next seek, as a player would wait.
      await r.read(offset, 1);
    }
    latencies.sort((a, b) => a - b);
    report.figure({ name: '4 KiB random read p50', value: percentile(latencies, 50), unit: 'ms', note: `${randomReads} reads, cold: 4 KiB asked alone, its 1 MiB block fetched behind it` });
    report.figure({ name: '4 KiB random read p95', value: percentile(latencies, 95), unit: 'ms' });
    await close();
  } finally {
    server.stop();
    await testnet?.destroy();
  }
  report.noteMachine('end');
  report.finish();
}

if (args.positional[0] === 'serve') await serve(args.positional[1]!, args.positional[2], args.positional[3]);
else await bench();
