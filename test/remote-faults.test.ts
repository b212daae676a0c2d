// Faults on the remote read path through real mounts on a local DHT testnet (issue 14,
// point 4): a device that stops answering for a while (SIGSTOP, shorter and longer than the
// read timeout), one killed while blocks are in transfer (another copy carries the read, or
// EIO when it held the only one), and a reader killed -9 with blocks half cached. Each read
// ends with the right bytes or EIO within the timeout — never a hang, never a wrong byte —
// and the block cache stays consistent across the reader's kill.
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import t, { type Test } from 'tap';
import { config } from '../src/config.js';
import { BlockCache } from '../src/replication/block-cache.js';
import { contentHashOfFile } from '../src/vdfs/content/identity.js';
import { runSd, waitFor } from './helpers.js';
import { libraryWithLocation, startMount, type MountedDevice } from './mount-helpers.js';
import { INDEX_HEADER_BYTES, INDEX_MAGIC, cacheNameOf as nameOfKey, indexRecords } from './cache-index.js';
import { bytesAt, failedReads, killMount, pair, pairedMounts, readThrough, waitForPeerFile, writeRandomFile, type PairedDevice, type ReadResult, type Source } from './remote-helpers.js';

const MiB = 1024 * 1024;
/** The reader's read timeout (SD_REMOTE_READ_TIMEOUT_MS), shorter than the default to keep the test short. */
const READ_TIMEOUT_MS = 3000;
/** What "within the timeout" allows beyond it: the kernel's retries, a loaded machine. */
const MARGIN_MS = 2000;
const ENV = { SD_REMOTE_READ_TIMEOUT_MS: String(READ_TIMEOUT_MS) };
/**
 * The reader's options. Prefetch off: its fetches stay a few blocks ahead of its reads, so
 * each fault lands on blocks in transfer (prefetching, a whole file may be in before it).
 */
const READER_ARGS = ['--read-only', '--prefetch', 'off'];
/** Small files of alpha, each read once by a restarted reader to see it is connected. */
const PROBES = 4;
let nextProbe = 0;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Stops a mount process (SIGSTOP); the returned function resumes it, also at teardown if the test did not. */
function pause(t: Test, mount: MountedDevice): () => void {
  let paused = true;
  const resume = () => {
    if (!paused) return;
    paused = false;
    if (mount.process.exitCode === null && mount.process.signalCode === null) mount.process.kill('SIGCONT');
  };
  t.teardown(resume);
  mount.process.kill('SIGSTOP');
  return resume;
}

/** The mount's log lines (JSON) whose op is `op`. */
function logLines(mount: MountedDevice, op: string): Array<Record<string, unknown>> {
  return mount.stderr().split('\n').filter((l) => l.includes(`"op":"${op}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
}

interface CacheCheck {
  /** Index files by their name (hash of the file key). */
  files: Map<string, { records: number; indexes: number[]; bad: string[] }>;
  bad: string[];
}

/**
 * Checks every index file of a block cache (the format of block-cache.ts): a header (magic
 * "sdfsbc01", u32 LE span), then per block 40 bytes (BLAKE3, u32 LE length, reserved).
 * Each record that claims a block (a nonzero hash or length) must have a length of 1 to span
 * bytes and those bytes, at index × span of the data file beside it, must have that BLAKE3.
 */
function checkCache(dir: string): CacheCheck {
  const check: CacheCheck = { files: new Map(), bad: [] };
  if (!fs.existsSync(dir)) return check;
  for (const entry of fs.readdirSync(dir).filter((n) => n.endsWith('.index'))) {
    const name = entry.slice(0, -'.index'.length);
    const raw = fs.readFileSync(path.join(dir, entry));
    const file = { records: 0, indexes: [] as number[], bad: [] as string[] };
    check.files.set(name, file);
    // Created but its header not written yet (killed right then): it claims nothing.
    if (raw.length < INDEX_HEADER_BYTES) continue;
    if (raw.subarray(0, 8).toString('latin1') !== INDEX_MAGIC) {
      file.bad.push(`${entry}: no magic`);
      continue;
    }
    const span = raw.readUInt32LE(8);
    if (span !== config.blockSize) file.bad.push(`${entry}: span ${span}, not ${config.blockSize}`);
    let fd: number | undefined;
    try {
      fd = fs.openSync(path.join(dir, `${name}.data`), 'r');
    } catch {
      // No data file: any record claiming a block is wrong (checked below).
    }
    try {
      for (const { index, hash, length } of indexRecords(raw)) {
        file.records++;
        file.indexes.push(index);
        if (length === 0 || length > span) {
          file.bad.push(`${entry} block ${index}: length ${length}`);
          continue;
        }
        if (fd === undefined) {
          file.bad.push(`${entry} block ${index}: no data file`);
          continue;
        }
        const data = Buffer.alloc(length);
        const read = fs.readSync(fd, data, 0, length, index * span);
        if (read !== length) file.bad.push(`${entry} block ${index}: ${read} of ${length} bytes in the data file`);
        else if (!blake3(data).equals(hash)) file.bad.push(`${entry} block ${index}: bytes do not match the recorded BLAKE3`);
      }
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    check.bad.push(...file.bad);
  }
  return check;
}

/** The name a remote file's blocks have in the cache: a hash of its key (content id and size). */
function cacheNameOf(source: Source): string {
  const contentId = contentHashOfFile(source.file)?.contentId;
  if (!contentId) throw new Error(`no content id for ${source.file}`);
  return nameOfKey(`content/${contentId}/${source.size}`);
}

interface World {
  alpha: PairedDevice;
  /** The reader; replaced when the reader's kill test starts it again. */
  beta: PairedDevice;
  gamma: { library: string; root: string; mount: MountedDevice };
  bootstrap: string;
  /** Device ids (the reader's logs name peers by them). */
  ids: { alpha: string; gamma: string };
  files: Record<'warm' | 'shared' | 'pauseShort' | 'pauseLong' | 'pauseDead' | 'half' | 'cut', Source>;
}

let world: World | undefined;
const w = (): World => {
  if (!world) throw new Error('the devices did not come up');
  return world;
};
const root = t;
/** A path of alpha's tree in the reader's mount. */
const atReader = (name: string) => path.join(w().beta.mount.mountpoint, 'alpha', 'media', name);

/** Every mount's log is written to SD_TEST_LOG_DIR at the end, when set (to study a failure). */
const dumps: MountedDevice[] = [];
t.teardown(() => {
  const dir = process.env.SD_TEST_LOG_DIR;
  if (dir) dumps.forEach((m, i) => fs.writeFileSync(path.join(dir, `mount-${i}-${m.process.pid}.log`), m.stderr()));
});

t.before(async () => {
  const started = Date.now();
  const sizes = { warm: 2 * MiB + 99, shared: 24 * MiB + 101, pauseShort: 24 * MiB + 202, pauseLong: 24 * MiB + 303, pauseDead: 16 * MiB + 404, half: 40 * MiB + 505, cut: 24 * MiB + 606 };
  const files: Partial<World['files']> = {};
  // alpha owns every file; beta reads them and logs at debug (its read failures, its
  // connection closing with requests pending); gamma holds a copy of shared.bin.
  const { a, b, bootstrap } = await pairedMounts(t,
    {
      name: 'alpha',
      location: 'media',
      files: (root) => {
        fs.writeFileSync(path.join(root, 'hi.txt'), 'hello from alpha\n');
        // Read once each, to tell a restarted reader is connected: a file it read before is
        // in its cache and proves nothing.
        for (let i = 0; i < PROBES; i++) fs.writeFileSync(path.join(root, `probe-${i}.txt`), `probe ${i}\n`);
        for (const [key, size] of Object.entries(sizes)) files[key as keyof World['files']] = writeRandomFile(path.join(root, `${key}.bin`), size);
      },
      env: { ...ENV, SD_LOG: 'info' },
    },
    { name: 'beta', location: 'notes', files: { 'note.txt': 'beta\n' }, env: { ...ENV, SD_LOG: 'debug' }, args: READER_ARGS },
    { file: 'hi.txt', text: 'hello from alpha\n' });
  const gamma = await libraryWithLocation(t, (root) => {
    fs.copyFileSync(files.shared!.file, path.join(root, 'shared.bin'));
    fs.writeFileSync(path.join(root, 'hi.txt'), 'hello from gamma\n');
  }, 'gamma', 'copies');
  await pair(t, gamma.library, b.library, bootstrap);
  // gamma logs every block it serves (debug), which shows it served the copy before its kill.
  const gammaMount = await startMount(t, gamma.library, ['--bootstrap', bootstrap], undefined, { ...ENV, SD_LOG: 'debug' });
  dumps.push(a.mount, b.mount, gammaMount);
  await waitForPeerFile(b.mount, 'gamma/copies/hi.txt', 'hello from gamma\n');
  // beta must know gamma holds shared.bin's content (its mirror has the content id) for gamma to be a source.
  const contentId = contentHashOfFile(files.shared!.file)!.contentId;
  const knowsCopy = async () => {
    const r = await runSd(['--json', 'ls', 'sd://gamma/copies/shared.bin'], { library: b.library });
    return r.code === 0 && r.stdout.includes(contentId);
  };
  if (!(await waitFor(knowsCopy, 60_000, 250))) throw new Error("beta's mirror of gamma lacks the copy's content id");
  const devices = JSON.parse((await runSd(['--json', 'devices'], { library: b.library })).stdout) as Array<{ name: string; id: string }>;
  const idOf = (name: string) => devices.find((d) => d.name === name)?.id ?? '';
  world = { alpha: a, beta: b, gamma: { ...gamma, mount: gammaMount }, bootstrap, ids: { alpha: idOf('alpha'), gamma: idOf('gamma') }, files: files as World['files'] };
  t.comment(`three devices paired and mounted: ${Date.now() - started} ms`);
});

/** Bytes [offset, offset+length) of a file of the reader's mount, by one async read call. */
async function readAt(file: string, offset: number, length: number): Promise<Buffer> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** The reader's block fetches that failed at `peer` (a device id) after `since` (ms since the epoch). */
function fetchesFailedAt(mount: MountedDevice, peer: string, since: number): Array<Record<string, unknown>> {
  return logLines(mount, 'block-fetch-failed').filter((l) => l.source === peer && Number(l.time) >= since);
}

t.test("the device serving the bytes is killed while blocks are in transfer: the owner's copy carries the read", { timeout: 90_000 }, async (t) => {
  const { alpha, gamma, beta, files, ids } = w();
  const source = files.shared;
  // The reader asks the copy it measured cheapest. alpha's first full blocks are measured
  // while it is stopped for a second (a read across a block boundary fetches whole blocks),
  // so gamma, unmeasured or fast, serves shared.bin from then on; alpha only vouches for
  // the hashes of what gamma sends.
  const warm = files.warm;
  const resume = pause(t, alpha.mount);
  const warming = readAt(atReader('warm.bin'), config.blockSize - 4096, 8192);
  await sleep(1000);
  resume();
  t.ok((await warming).equals(bytesAt(warm.file, config.blockSize - 4096, 8192)), 'the read across the block boundary, stalled by the stop, is right');

  const servedByGamma = () => logLines(gamma.mount, 'block-serve').filter((l) => String(l.path).endsWith('shared.bin') && l.length === config.blockSize).length;
  const failedBefore = failedReads(beta.mount);
  let killing: Promise<void> | undefined;
  let stoppedAt = 0;
  let servedBeforeKill = 0;
  const result = await readThrough(atReader('shared.bin'), source, async (done) => {
    if (killing || done < 4 * MiB) return;
    // Stopped while the reader pulls blocks (read-ahead keeps asking for the next ones),
    // then killed: its connections close on the requests it had not answered.
    gamma.mount.process.kill('SIGSTOP');
    stoppedAt = Date.now();
    servedBeforeKill = servedByGamma();
    await sleep(300);
    killing = killMount(gamma.mount);
  });
  await killing;
  const cut = fetchesFailedAt(beta.mount, ids.gamma, stoppedAt);
  t.ok(killing, 'gamma was stopped, then killed, 4 MiB into the read');
  t.ok(servedBeforeKill >= 4, `gamma served the file's blocks until then (${servedBeforeKill})`);
  t.ok(cut.length >= 1, `requests to gamma were cut and failed over (${cut.length}: ${[...new Set(cut.map((l) => String(l.err).replace(/^SdError: /, '')))].join('; ')})`);
  t.notOk(result.hung, 'no read hung');
  t.notOk(result.error, `the read did not fail${result.error ? `: ${result.error.code} after ${result.done} bytes` : ''}`);
  t.equal(result.wrongAt, undefined, 'every byte read equals the source');
  t.equal(result.done, source.size, 'the read went to the end');
  t.equal(result.sha256, source.sha256, 'and its sha256 is the source');
  t.equal(failedReads(beta.mount) - failedBefore, 0, 'no read through the mount failed');
  t.ok(result.slowestMs < READ_TIMEOUT_MS, `the longest read call (${Math.round(result.slowestMs)} ms at ${(result.slowestAt / MiB).toFixed(0)} MiB) was within the read timeout`);
  if (!t.passing()) t.comment(beta.mount.stderr().slice(-4000));
});

t.test('the owner paused for less than the read timeout mid-read: the read completes with the right bytes', { timeout: 60_000 }, async (t) => {
  const { alpha, beta, files } = w();
  const source = files.pauseShort;
  const stopMs = READ_TIMEOUT_MS / 2;
  const failedBefore = failedReads(beta.mount);
  let resumed: Promise<void> | undefined;
  const result = await readThrough(atReader('pauseShort.bin'), source, (done) => {
    if (resumed || done < 4 * MiB) return;
    const resume = pause(t, alpha.mount);
    resumed = sleep(stopMs).then(resume);
  });
  await resumed;
  t.ok(resumed, `alpha was stopped for ${stopMs} ms, 4 MiB into the read`);
  t.notOk(result.hung, 'no read hung');
  t.notOk(result.error, `the read did not fail${result.error ? `: ${result.error.code} after ${result.done} bytes` : ''}`);
  t.equal(result.wrongAt, undefined, 'every byte read equals the source');
  t.equal(result.sha256, source.sha256, 'the sha256 of the bytes read is the source');
  t.equal(failedReads(beta.mount) - failedBefore, 0, 'no read through the mount failed');
  t.ok(result.slowestMs >= stopMs / 3, `the reader did wait for alpha (longest read call ${Math.round(result.slowestMs)} ms at ${(result.slowestAt / MiB).toFixed(0)} MiB)`);
  t.ok(result.slowestMs < READ_TIMEOUT_MS, 'and less than the read timeout');
  if (!t.passing()) t.comment(beta.mount.stderr().slice(-4000));
});

/** What the reader logged about its connection to alpha (at info) since `since` (ms since the epoch). */
function alphaConnection(mount: MountedDevice, since: number): string[] {
  return logLines(mount, 'swarm').filter((l) => l.device === 'alpha' && Number(l.time) >= since).map((l) => String(l.msg));
}

/**
 * Reads a file while its owner is stopped for `stopMs` (longer than the read timeout), 4 MiB
 * in: the read must fail with EIO within the timeout (plus margin) of the stop, and once
 * the owner runs again, a new read within `recoverMs` must return the right bytes. The
 * reader keeps its connection through the stop, or drops it for want of pings (`connection`).
 */
async function pausedPastTimeout(t: Test, name: keyof World['files'], stopMs: number, recoverMs: number, connection: 'kept' | 'dropped'): Promise<void> {
  const { alpha, beta, files } = w();
  const source = files[name];
  let stoppedAt = 0;
  let stoppedAtEpoch = 0;
  let resumed: Promise<void> | undefined;
  const result = await readThrough(atReader(`${name}.bin`), source, (done) => {
    if (resumed || done < 4 * MiB) return;
    const resume = pause(t, alpha.mount);
    stoppedAt = performance.now();
    stoppedAtEpoch = Date.now();
    resumed = sleep(stopMs).then(resume);
  });
  const failedAfterMs = Math.round(result.endedAt - stoppedAt);
  t.ok(resumed, `alpha was stopped for ${stopMs} ms, 4 MiB into the read`);
  t.notOk(result.hung, 'no read hung');
  t.equal(result.wrongAt, undefined, 'the bytes read before the error were right');
  t.equal(result.error?.code, 'EIO', `the read failed with EIO after ${(result.done / MiB).toFixed(1)} MiB`);
  t.ok(result.endedAt - stoppedAt < READ_TIMEOUT_MS + MARGIN_MS, `within the read timeout (${READ_TIMEOUT_MS} ms) + ${MARGIN_MS} ms of the stop: ${failedAfterMs} ms`);
  await resumed;
  const resumedAt = performance.now();
  // A failure at once is right while beta has not seen alpha back (it dropped the
  // connection, or holds the failed block for a moment); a right read must come in time.
  let again: ReadResult | undefined;
  let tries = 0;
  const back = await waitFor(async () => {
    tries++;
    again = await readThrough(atReader(`${name}.bin`), source);
    return !again.error && !again.hung && again.wrongAt === undefined;
  }, recoverMs, 500);
  t.ok(back, `after SIGCONT a new read returns the whole file (${tries} tries, ${Math.round(performance.now() - resumedAt)} ms)`);
  t.equal(again?.wrongAt, undefined, 'no read after SIGCONT returned a wrong byte');
  t.notOk(again?.hung, 'nor hung');
  t.equal(again?.sha256, source.sha256, 'the sha256 of the bytes read is the source');
  const logged = alphaConnection(beta.mount, stoppedAtEpoch);
  if (connection === 'kept') t.same(logged, [], 'the reader kept its connection to alpha throughout');
  else t.ok(logged.includes('no answer to pings: dropping the connection'), `the reader dropped its connection to alpha, and dialled again (${logged.join('; ')})`);
  if (!t.passing()) t.comment(beta.mount.stderr().slice(-4000));
}

t.test('the owner paused for longer than the read timeout: EIO in time, then the right bytes once it runs again', { timeout: 90_000 }, async (t) => {
  // Short enough that neither side's pings go unanswered for peerDeadMs (they are sent
  // every peerPingIntervalMs): the connection stays, and alpha's late replies to the
  // requests beta gave up on arrive on it (and are dropped).
  await pausedPastTimeout(t, 'pauseLong', READ_TIMEOUT_MS + 1500, 15_000, 'kept');
});

t.test('the owner paused past the ping limit: EIO in time, the connection dropped and dialled again, then the right bytes', { timeout: 120_000 }, async (t) => {
  await pausedPastTimeout(t, 'pauseDead', config.peerDeadMs + 3000, 60_000, 'dropped');
});

t.test("the reader killed -9 with blocks half cached: its cache stays consistent, and the restarted mount reads the right bytes", { timeout: 240_000 }, async (t) => {
  const { bootstrap, files } = w();
  const source = files.half;
  const cacheDir = BlockCache.dirOf(w().beta.library);
  const name = cacheNameOf(source);
  const blocks = Math.ceil(source.size / config.blockSize);
  // Two kills, at different points of the file: each while read-ahead blocks are being
  // fetched and written to the cache.
  for (const killAt of [8 * MiB, 24 * MiB]) {
    const beta = w().beta;
    let killing: Promise<void> | undefined;
    // Killed a moment after the next read call went in, so the kill lands with it in flight.
    const result = await readThrough(atReader('half.bin'), source, (done) => {
      if (!killing && done >= killAt) killing = sleep(2).then(() => killMount(beta.mount));
    });
    const killedInRead = killing !== undefined;
    // (A read that ended first leaves it running: the mount is started again all the same.)
    await (killing ?? killMount(beta.mount));
    t.ok(killedInRead, `beta was killed ${killAt / MiB} MiB into the read${killedInRead ? '' : ` (the read ended first, at ${(result.done / MiB).toFixed(1)} MiB: ${result.error?.code})`}`);
    t.notOk(result.hung, 'the read in flight did not hang');
    t.equal(result.wrongAt, undefined, 'the bytes read before the kill were right');
    t.ok(result.error, `the read in flight failed (${result.error?.code}) rather than returned bytes`);
    const check = checkCache(cacheDir);
    const cached = check.files.get(name)?.records ?? 0;
    t.ok(cached > 0 && cached < blocks, `the file is partly cached: ${cached} of ${blocks} blocks`);
    t.same(check.bad, [], 'every cached block matches its index record');
    // Again on the same library (its cache as the kill left it); it must connect to alpha anew.
    // Started on the file's tap, not this test's: the mount stays for the tests after this one.
    const mount = await startMount(root, beta.library, ['--bootstrap', bootstrap, ...READER_ARGS], undefined, { ...ENV, SD_LOG: 'debug' });
    dumps.push(mount);
    world = { ...w(), beta: { ...beta, mount } };
    const probe = nextProbe++;
    await waitForPeerFile(mount, `alpha/media/probe-${probe}.txt`, `probe ${probe}\n`);
    t.pass('the restarted mount reads a file of alpha it never read');
  }
  const beta = w().beta;
  const result = await readThrough(atReader('half.bin'), source);
  t.notOk(result.error ?? result.hung, `the read after the restarts ends well${result.error ? `: ${result.error.code}` : ''}`);
  t.equal(result.wrongAt, undefined, 'every byte read equals the source');
  t.equal(result.sha256, source.sha256, 'the sha256 of the bytes read is the source');
  t.same(logLines(beta.mount, 'cache-corrupt'), [], 'the restarted mount found no corrupt block in its cache');
  t.comment(`block fetches that failed on the way (a restarted reader's first dials): ${logLines(beta.mount, 'block-fetch-failed').length}`);
  // Writes of the last blocks may still be landing: every snapshot must be consistent, and
  // soon one holds them all.
  let check = checkCache(cacheDir);
  const bad = new Set(check.bad);
  await waitFor(() => {
    check = checkCache(cacheDir);
    check.bad.forEach((b) => bad.add(b));
    return check.files.get(name)?.records === blocks;
  }, 5000, 100);
  t.same([...bad], [], 'every cached block matches its index record after the full read');
  const have = new Set(check.files.get(name)?.indexes ?? []);
  const missing = Array.from({ length: blocks }, (_, i) => i).filter((i) => !have.has(i));
  t.same(missing, [], `and every block of the file is cached (${have.size} of ${blocks})`);
  if (!t.passing()) t.comment(beta.mount.stderr().slice(-4000));
});

// Last: alpha does not come back.
t.test('the only owner killed while blocks are in transfer: EIO within the timeout, never a wrong byte', { timeout: 60_000 }, async (t) => {
  const { alpha, beta, files, ids } = w();
  const source = files.cut;
  let killing: Promise<void> | undefined;
  let stoppedAt = 0;
  let stoppedAtEpoch = 0;
  const result = await readThrough(atReader('cut.bin'), source, async (done) => {
    if (killing || done < 6 * MiB) return;
    // As above: stopped with the reader's requests on their way, then killed.
    alpha.mount.process.kill('SIGSTOP');
    stoppedAt = performance.now();
    stoppedAtEpoch = Date.now();
    await sleep(300);
    killing = killMount(alpha.mount);
  });
  await killing;
  const ms = Math.round(result.endedAt - stoppedAt);
  const cut = fetchesFailedAt(beta.mount, ids.alpha, stoppedAtEpoch);
  t.ok(killing, 'alpha was stopped, then killed, 6 MiB into the read');
  t.ok(cut.length >= 1, `requests to alpha were cut (${cut.length}: ${[...new Set(cut.map((l) => String(l.err).replace(/^SdError: /, '')))].join('; ')})`);
  t.notOk(result.hung, 'no read hung');
  t.equal(result.wrongAt, undefined, 'the bytes read before the error were right');
  t.ok(result.done >= 6 * MiB, `all ${(result.done / MiB).toFixed(1)} MiB of them`);
  t.equal(result.error?.code, 'EIO', 'the read failed with EIO');
  t.ok(ms < READ_TIMEOUT_MS + MARGIN_MS, `within the read timeout (${READ_TIMEOUT_MS} ms) + ${MARGIN_MS} ms of alpha's stop: ${ms} ms`);
  if (!t.passing()) t.comment(beta.mount.stderr().slice(-4000));
});
