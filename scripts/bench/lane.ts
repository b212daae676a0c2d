// The direct lane's transport alone, in two processes over loopback as between two `sd
// mount`s: the owner (a child process) sends 1 MiB protomux messages, the reader (this
// process) asks for them with 8 in flight as the block client does. Per transport: MB/s,
// the ratio to plain TCP in the same round, CPU seconds per GiB on each side (2 cores, both
// busy: CPU per byte matters as much as speed), and the time to open a connection.
// Transports: plain TCP (reference, framed), Noise (secret-stream, what the lane used),
// TLS 1.3 with a pre-shared key (AES-128-GCM, ChaCha20-Poly1305), and the lane as shipped
// (src/replication/lane.ts: TLS 1.3, AES-128-GCM).
// Run: node build/scripts/bench/lane.js [--json] [--mib 1024] [--rounds 3] [--in-flight 8] [--only tcp,tls-aes-128-gcm]
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import NoiseSecretStream from '@hyperswarm/secret-stream';
import c from 'compact-encoding';
import hypercoreCrypto from 'hypercore-crypto';
import Protomux from 'protomux';
import { FramedStream } from '../../src/replication/frames.js';
import { DirectLane } from '../../src/replication/lane.js';
import { laneOffer } from '../../src/replication/messages.js';
import type { Peer } from '../../src/vdfs/peers.js';
import { Report, mb, numberArg, parseArgs } from './common.js';

const MiB = 1024 * 1024;
const PROBE_PROTOCOL = 'sdfs/bench-lane';

const args = parseArgs(process.argv.slice(2), ['only']);
/** Messages asked ahead: the block client reads ahead 8 blocks (config.readAheadBlocks). */
const IN_FLIGHT = numberArg(args, 'in-flight', 8);

type Transport = 'tcp' | 'secret-stream' | 'tls-aes-128-gcm' | 'tls-chacha20' | 'lane';
const TRANSPORTS: readonly Transport[] = ['tcp', 'secret-stream', 'tls-aes-128-gcm', 'tls-chacha20', 'lane'];
const TLS_SUITES: Partial<Record<Transport, string>> = {
  'tls-aes-128-gcm': 'TLS_AES_128_GCM_SHA256',
  'tls-chacha20': 'TLS_CHACHA20_POLY1305_SHA256',
};
const DESCRIPTIONS: Record<Transport, string> = {
  tcp: 'plain TCP, 4-byte length frames',
  'secret-stream': 'TCP + @hyperswarm/secret-stream (Noise XX, XChaCha20-Poly1305)',
  'tls-aes-128-gcm': 'TCP + node:tls TLS 1.3 PSK (ECDHE), AES-128-GCM, 4-byte length frames',
  'tls-chacha20': 'TCP + node:tls TLS 1.3 PSK (ECDHE), ChaCha20-Poly1305, 4-byte length frames',
  lane: 'the direct lane as shipped (DirectLane: offer, dial, handshake, frames)',
};

/** What the owner tells the reader on stdout: where each transport listens, and the credentials. */
interface Endpoints {
  ports: Record<Exclude<Transport, 'lane'>, number>;
  psk: string;
  pskIdentity: string;
  /** Offers of the owner's DirectLane (laneOffer, hex): one per connection, each is used up. */
  laneOffers: string[];
}

/** The device at the other end, as each side's DirectLane knows it. */
const BENCH_PEER: Peer = { id: 'bench-id', name: 'bench', slug: 'bench', publicKey: '00'.repeat(32), logKey: null, pairedAt: 0, revokedAt: null, onlineAt: null, lastSeen: null, rttMs: null, faults: 0, lastFaultAt: null, lastFault: null, introducedBy: null, revokedBy: null };

// ---------------------------------------------------------------- the probe protocol

/**
 * On one connection: the reader asks for n messages (ask), the owner sends them (data);
 * mark starts the owner's CPU count or asks for it, cpu answers (microseconds since the start).
 */
function probeChannel(stream: Duplex, handlers: { onData?(): void; onAsk?(n: number): void; onMark?(kind: number): void; onCpu?(us: number): void; onOpen?(): void }) {
  const channel = Protomux.from(stream).createChannel({ protocol: PROBE_PROTOCOL, onopen: () => handlers.onOpen?.() })!;
  const data = channel.addMessage({ encoding: c.buffer, onmessage: () => handlers.onData?.() });
  const ask = channel.addMessage({ encoding: c.uint, onmessage: (n: number) => handlers.onAsk?.(n) });
  const mark = channel.addMessage({ encoding: c.uint, onmessage: (kind: number) => handlers.onMark?.(kind) });
  const cpu = channel.addMessage({ encoding: c.uint, onmessage: (us: number) => handlers.onCpu?.(us) });
  channel.open();
  return { data, ask, mark, cpu };
}

const MARK_START = 0;
const MARK_REPORT = 1;

function cpuMicros(since?: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return u.user + u.system;
}

// ---------------------------------------------------------------- the owner (child process)

function serveProbe(stream: Duplex): void {
  stream.on('error', () => undefined);
  const payload = Buffer.alloc(MiB, 0x5a);
  let marked = process.cpuUsage();
  const probe = probeChannel(stream, {
    onAsk: (n) => {
      for (let i = 0; i < n; i++) probe.data.send(payload);
    },
    onMark: (kind) => {
      if (kind === MARK_START) marked = process.cpuUsage();
      probe.cpu.send(kind === MARK_START ? 0 : cpuMicros(marked));
    },
  });
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

async function serve(offers: number): Promise<void> {
  const lane = new DirectLane(() => BENCH_PEER, (_peer, stream) => serveProbe(stream));
  await lane.listen(0);
  const laneOffers = Array.from({ length: offers }, () => Buffer.from(c.encode(laneOffer, lane.offer(BENCH_PEER)!)).toString('hex'));
  const psk = crypto.randomBytes(32);
  const pskIdentity = crypto.randomBytes(16).toString('hex');
  const keyPair = hypercoreCrypto.keyPair();
  const ports = {} as Endpoints['ports'];
  ports.tcp = await listen(net.createServer((socket) => serveProbe(new FramedStream(socket))));
  ports['secret-stream'] = await listen(net.createServer((socket) => serveProbe(new NoiseSecretStream(false, socket, { keyPair }))));
  for (const [transport, suite] of Object.entries(TLS_SUITES) as Array<['tls-aes-128-gcm' | 'tls-chacha20', string]>) {
    const server = tls.createServer(
      { minVersion: 'TLSv1.3', ciphers: suite, pskCallback: (_socket, identity) => (identity === pskIdentity ? psk : null) },
      (socket) => serveProbe(new FramedStream(socket)),
    );
    server.on('tlsClientError', () => undefined);
    ports[transport] = await listen(server);
  }
  process.stdin.on('end', () => process.exit(0)).resume();
  process.stdout.write(JSON.stringify({ ports, psk: psk.toString('hex'), pskIdentity, laneOffers } satisfies Endpoints) + '\n');
}

// ---------------------------------------------------------------- the reader (this process)

async function connect(transport: Transport, endpoints: Endpoints): Promise<Duplex> {
  if (transport === 'lane') {
    let adopted!: Duplex;
    const lane = new DirectLane(() => undefined, (_peer, stream) => (adopted = stream));
    const offer = c.decode(laneOffer, Buffer.from(endpoints.laneOffers.shift()!, 'hex'));
    if (!(await lane.connect(BENCH_PEER, offer))) throw new Error('the lane did not open');
    return adopted;
  }
  const port = endpoints.ports[transport];
  if (transport === 'tcp') {
    const socket = net.connect(port, '127.0.0.1');
    return new Promise((resolve, reject) => socket.once('connect', () => resolve(new FramedStream(socket))).once('error', reject));
  }
  if (transport === 'secret-stream') {
    const stream = new NoiseSecretStream(true, net.connect(port, '127.0.0.1'), { keyPair: hypercoreCrypto.keyPair() });
    return stream.opened.then((ok) => {
      if (!ok) throw new Error('the Noise handshake failed');
      return stream;
    });
  }
  const socket = tls.connect({
    port,
    host: '127.0.0.1',
    minVersion: 'TLSv1.3',
    ciphers: TLS_SUITES[transport],
    pskCallback: () => ({ psk: Buffer.from(endpoints.psk, 'hex'), identity: endpoints.pskIdentity }),
    checkServerIdentity: () => undefined,
  });
  return new Promise((resolve, reject) => socket.once('secureConnect', () => resolve(new FramedStream(socket))).once('error', reject));
}

interface Run {
  mbps: number;
  readerCpuSecondsPerGiB: number;
  ownerCpuSecondsPerGiB: number;
  openMs: number;
}

async function measure(transport: Transport, endpoints: Endpoints, messages: number): Promise<Run> {
  const started = performance.now();
  const stream = await connect(transport, endpoints);
  stream.on('error', () => undefined);
  let onData = (): void => undefined;
  let onCpu = (_us: number): void => undefined;
  let opened!: () => void;
  const open = new Promise<void>((resolve) => (opened = resolve));
  const probe = probeChannel(stream, { onOpen: () => opened(), onData: () => onData(), onCpu: (us) => onCpu(us) });
  await open;
  const openMs = performance.now() - started;
  const ownerCpu = (kind: number): Promise<number> => new Promise((resolve) => {
    onCpu = resolve;
    probe.mark.send(kind);
  });
  await ownerCpu(MARK_START);
  const readerMark = process.cpuUsage();
  const t0 = performance.now();
  let got = 0;
  let asked = 0;
  const finished = new Promise<void>((resolve) => (onData = () => {
    if (++got === messages) resolve();
    else if (asked < messages) {
      asked++;
      probe.ask.send(1);
    }
  }));
  for (; asked < Math.min(IN_FLIGHT, messages); asked++) probe.ask.send(1);
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  const readerUs = cpuMicros(readerMark);
  const ownerUs = await ownerCpu(MARK_REPORT);
  stream.destroy();
  const gibs = (messages * MiB) / 2 ** 30;
  return { mbps: mb(messages * MiB) / seconds, readerCpuSecondsPerGiB: readerUs / 1e6 / gibs, ownerCpuSecondsPerGiB: ownerUs / 1e6 / gibs, openMs };
}

function startOwner(connections: number): Promise<{ endpoints: Endpoints; stop(): void }> {
  // The owner runs with this process's node flags (--cpu-prof profiles both sides).
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), 'serve', String(connections)], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`the owner process exited with ${code}`)));
    child.stdout.setEncoding('utf8').once('data', (line: string) => resolve({ endpoints: JSON.parse(line) as Endpoints, stop: () => child.stdin.end() }));
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function range(values: number[], digits = 0): string {
  return `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
}

async function bench(): Promise<void> {
  const messages = numberArg(args, 'mib', 1024);
  const rounds = numberArg(args, 'rounds', 3);
  const report = new Report('lane', args.json);
  report.noteMachine('start');
  report.note(`${messages} MiB as 1 MiB protomux messages, ${IN_FLIGHT} asked ahead, owner in a child process, loopback; ${rounds} rounds, transports interleaved; figures are medians, ranges over rounds`);
  const owner = await startOwner(rounds);
  const only = args.words.get('only')?.split(',');
  // Plain TCP is always measured: it is the reference of the ratios.
  const transports = TRANSPORTS.filter((t) => t === 'tcp' || !only || only.includes(t));
  const runs = new Map<Transport, Run[]>(transports.map((t) => [t, []]));
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const transport of transports) {
        report.progress(`round ${round}: ${transport}`);
        runs.get(transport)!.push(await measure(transport, owner.endpoints, messages));
      }
    }
  } finally {
    owner.stop();
  }
  const tcp = runs.get('tcp')!;
  for (const transport of transports) {
    const r = runs.get(transport)!;
    const mbps = r.map((x) => x.mbps);
    const ratios = r.map((x, i) => x.mbps / tcp[i]!.mbps);
    report.figure({ name: `${transport} throughput`, value: median(mbps), unit: 'MB/s', note: `${range(mbps)}; ${DESCRIPTIONS[transport]}` });
    if (transport !== 'tcp') report.figure({ name: `${transport} ×tcp`, value: median(ratios), unit: '×', note: `${range(ratios, 2)}, plain TCP in the same round` });
    const reader = r.map((x) => x.readerCpuSecondsPerGiB);
    const ownerCpu = r.map((x) => x.ownerCpuSecondsPerGiB);
    report.figure({ name: `${transport} reader CPU`, value: median(reader), unit: 's/GiB', note: range(reader, 2) });
    report.figure({ name: `${transport} owner CPU`, value: median(ownerCpu), unit: 's/GiB', note: range(ownerCpu, 2) });
    const openMs = r.map((x) => x.openMs);
    report.figure({ name: `${transport} open`, value: median(openMs), unit: 'ms', note: `${range(openMs, 1)}; connect, handshake, channel open` });
  }
  report.noteMachine('end');
  report.finish();
}

if (args.positional[0] === 'serve') await serve(Number(args.positional[1]));
else await bench();
