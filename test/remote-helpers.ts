// Paired devices for tests of another device's tree: a local DHT testnet, pairing with the
// real CLI (`sd pair` / `sd pair join`), and waiting until one mount reads a file of the
// other — the sign that they are connected and the index has arrived.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import createTestnet from 'hyperdht/testnet.js';
import type { Test } from 'tap';
import { forceUnmount, isMounted } from '../src/fuse/mount.js';
import { SD_MAIN, cleanEnv, runSd, waitFor } from './helpers.js';
import { libraryWithLocation, startMount, type MountedDevice } from './mount-helpers.js';

const MiB = 1024 * 1024;

/** A DHT testnet on loopback for this test; returns its first bootstrap node as HOST:PORT. */
export async function testnetAddress(t: Test): Promise<string> {
  const testnet = await createTestnet(3, { host: '127.0.0.1' });
  t.teardown(() => testnet.destroy());
  const first = testnet.bootstrap[0]!;
  return `${first.host}:${first.port}`;
}

/** Pairs two libraries as a user would: `sd pair --json` on one, `sd pair join WORDS` on the other. */
export async function pair(t: Test, shower: string, joiner: string, bootstrap: string): Promise<void> {
  const env = { ...cleanEnv(), SD_BOOTSTRAP: bootstrap };
  const child = spawn(process.execPath, [SD_MAIN, '--library', shower, '--json', 'pair'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (!(await waitFor(() => out.includes('\n'), 20_000))) throw new Error('sd pair printed no words');
  const { words } = JSON.parse(out.split('\n')[0]!) as { words: string[] };
  // A loaded machine (the suite runs two files at once) can take long to find the topic.
  const joined = await runSd(['pair', 'join', ...words], { library: joiner, env: { SD_BOOTSTRAP: bootstrap, SD_PAIR_JOIN_TIMEOUT_MS: '60000' }, timeoutMs: 90_000 });
  if (joined.code !== 0) throw new Error(`sd pair join failed: ${joined.stderr}`);
  t.equal(await exited, 0, 'sd pair ends once paired');
}

/**
 * Waits until `file` (a path in a peer's tree of `mount`) reads as `expected`: the devices
 * are connected and the peer's index is in. A loaded machine stalls the first handshake,
 * hence the long default. Read async: a sync read would stop this process from draining the
 * mount's stderr pipe, and a mount logging much (SD_LOG=debug) would block on it, mid-read.
 */
export async function waitForPeerFile(mount: MountedDevice, file: string, expected: string, timeoutMs = 60_000): Promise<void> {
  const connected = await waitFor(async () => {
    try {
      return (await fs.promises.readFile(path.join(mount.mountpoint, file), 'utf8')) === expected;
    } catch {
      return false;
    }
  }, timeoutMs, 250);
  if (!connected) throw new Error(`${file} did not show in the mount: ${mount.stderr().slice(-2000)}`);
}

export interface DeviceSpec {
  name: string;
  location: string;
  /** The location's files, or a function that makes them in its root (big or special files). */
  files: Parameters<typeof libraryWithLocation>[1];
  /** Environment of its `sd mount` (SD_LOG=warn to read its warnings). */
  env?: NodeJS.ProcessEnv;
  /** More `sd mount` options (e.g. --read-only). */
  args?: string[];
  /** Flags for node itself (benches profile with --cpu-prof, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
  /** The location's index mode (default content). */
  mode?: 'shallow' | 'content' | 'deep';
}

export interface PairedDevice {
  library: string;
  root: string;
  mount: MountedDevice;
}

/**
 * Two devices, each with one location, paired on a fresh testnet and both mounted; resolves
 * once the second reads `probe` (a file of the first, with its text) through its mount.
 */
export async function pairedMounts(t: Test, first: DeviceSpec, second: DeviceSpec, probe: { file: string; text: string }): Promise<{ a: PairedDevice; b: PairedDevice; bootstrap: string }> {
  const a = await libraryWithLocation(t, first.files, first.name, first.location, first.mode);
  const b = await libraryWithLocation(t, second.files, second.name, second.location, second.mode);
  const bootstrap = await testnetAddress(t);
  await pair(t, a.library, b.library, bootstrap);
  const mountA = await startMount(t, a.library, ['--bootstrap', bootstrap, ...(first.args ?? [])], undefined, first.env, { nodeArgs: first.nodeArgs });
  const mountB = await startMount(t, b.library, ['--bootstrap', bootstrap, ...(second.args ?? [])], undefined, second.env, { nodeArgs: second.nodeArgs });
  await waitForPeerFile(mountB, path.join(first.name, first.location, probe.file), probe.text);
  return { a: { ...a, mount: mountA }, b: { ...b, mount: mountB }, bootstrap };
}


/** A file of random bytes on its owner's disk, and the sha256 of those bytes. */
export interface Source {
  file: string;
  size: number;
  sha256: string;
}

/** Writes `size` random bytes a MiB at a time (never the whole file in memory). */
export function writeRandomFile(file: string, size: number): Source {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < size; ) {
      const chunk = crypto.randomBytes(Math.min(MiB, size - done));
      hash.update(chunk);
      fs.writeSync(fd, chunk);
      done += chunk.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { file, size, sha256: hash.digest('hex') };
}

export async function sha256Of(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  await pipeline(fs.createReadStream(file, { highWaterMark: MiB }), hash);
  return hash.digest('hex');
}

/** Bytes [offset, offset+length) of a file, fewer at its end (sync: never a file of a mount this process reads while the mount logs to it). */
export function bytesAt(file: string, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const fd = fs.openSync(file, 'r');
  try {
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, buf, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return buf.subarray(0, done);
  } finally {
    fs.closeSync(fd);
  }
}

/** Kills a mount process the hard way (a stopped one too) and cleans the stale mount it leaves. */
export async function killMount(mount: MountedDevice): Promise<void> {
  const gone = mount.process.exitCode !== null || mount.process.signalCode !== null;
  const exited = gone ? Promise.resolve() : new Promise((resolve) => mount.process.once('exit', resolve));
  mount.process.kill('SIGKILL');
  await exited;
  if (isMounted(mount.mountpoint)) await forceUnmount(mount.mountpoint);
}

/** Reads the mount answered with an error (it logs each at warn). */
export const failedReads = (mount: MountedDevice) => mount.stderr().split('\n').filter((l) => l.includes('"msg":"remote read failed"')).length;

/** A read still pending after this has hung (far past any deadline the mount keeps). */
const HANG_MS = 30_000;

export interface ReadResult {
  /** Bytes read, each found equal to the source, before the end or the error. */
  done: number;
  /** sha256 of all the bytes read (the whole file when there was no error). */
  sha256: string;
  error?: NodeJS.ErrnoException;
  /** Where a read returned bytes other than the source's. */
  wrongAt?: number;
  /** A read was still pending after HANG_MS. */
  hung?: boolean;
  /** When the read ended (performance.now()). */
  endedAt: number;
  /** The longest single read call (ms), and where it started. */
  slowestMs: number;
  slowestAt: number;
  /** Read calls that took over half a second: where, and how long. */
  stalls: Array<{ at: number; ms: number }>;
}

/**
 * Reads a file of the reader's mount from the start, 1 MiB per call (async: the mount may
 * write to a stderr pipe this process reads), each call's bytes checked against the source;
 * `before` runs before each call with the bytes read so far.
 */
export async function readThrough(file: string, source: Source, before: (done: number) => void | Promise<void> = () => undefined): Promise<ReadResult> {
  const hash = crypto.createHash('sha256');
  const buf = Buffer.alloc(MiB);
  let done = 0;
  let slowestMs = 0;
  let slowestAt = 0;
  const stalls: ReadResult['stalls'] = [];
  const result = (more: Partial<ReadResult>): ReadResult => ({ done, sha256: hash.digest('hex'), endedAt: performance.now(), slowestMs, slowestAt, stalls, ...more });
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (err) {
    return result({ error: err as NodeJS.ErrnoException });
  }
  let hung = false;
  try {
    while (done < source.size) {
      await before(done);
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const read = await Promise.race([
        handle.read(buf, 0, MiB, done),
        new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), HANG_MS))),
      ]).finally(() => clearTimeout(timer));
      if (read === 'hung') {
        hung = true;
        return result({ hung: true });
      }
      const ms = performance.now() - started;
      if (ms > slowestMs) [slowestMs, slowestAt] = [ms, done];
      if (ms > 500) stalls.push({ at: done, ms: Math.round(ms) });
      if (read.bytesRead === 0) break;
      const got = buf.subarray(0, read.bytesRead);
      if (!got.equals(bytesAt(source.file, done, read.bytesRead))) return result({ wrongAt: done });
      hash.update(got);
      done += read.bytesRead;
    }
    return result({});
  } catch (err) {
    return result({ error: err as NodeJS.ErrnoException });
  } finally {
    // A hung read's handle is left to the unmount (its close would wait behind the read).
    if (!hung) await handle.close().catch(() => undefined);
  }
}

/** A job as `sd --json jobs` lists it (the fields the remote tests look at). */
export interface JobRow {
  id: number;
  kind: string;
  status: string;
  device: string | null;
  summary: string;
  error: string | null;
}

export async function jobsOf(library: string): Promise<JobRow[]> {
  const r = await runSd(['--json', 'jobs'], { library });
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as JobRow[];
}

/** A file's text, or undefined when it cannot be read (not there yet). */
export function readOr(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
