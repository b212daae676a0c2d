// Reads of another device's files through the mount, end to end (real mounts on a local
// DHT testnet): a 200 MiB file byte-identical, random seeks, a tampered cache block
// refetched, the POSIX suite read-only on the peer's tree, and an owner killed mid-read —
// EIO in time when it held the only copy, the read carried on by a third device when not.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { getAttributeSync } from '@napi-rs/xattr';
import t from 'tap';
import { config } from '../src/config.js';
import { BlockCache } from '../src/replication/block-cache.js';
import { libraryWithLocation, startMount, type MountedDevice } from './mount-helpers.js';
import { bytesAt, failedReads, killMount, pair, pairedMounts, readThrough, sha256Of, waitForPeerFile, writeRandomFile, type PairedDevice, type Source } from './remote-helpers.js';
import { posixSuite, writeReadOnlyFixture } from './posix-suite.js';
import { waitFor } from './helpers.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** Makes the kernel forget the pages it cached of a file (posix_fadvise DONTNEED). */
async function dropPageCache(file: string): Promise<void> {
  await run('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

interface Devices {
  alpha: PairedDevice;
  beta: PairedDevice;
  gamma: { library: string; root: string };
  bootstrap: string;
  big: Source;
  /** On alpha, with a copy on gamma. */
  film: Source;
  /** On gamma only. */
  solo: Source;
}

/** The file's own test: mounts started inside a subtest outlive it (torn down at the end). */
const root = t;
const BIG_BYTES = 200 * MiB + 12345;
const FILM_BYTES = 48 * MiB + 777;
let devices: Devices | undefined;
const world = (): Devices => {
  if (!devices) throw new Error('the devices did not come up');
  return devices;
};
/** A path in beta's mount. */
const onBeta = (...parts: string[]) => path.join(world().beta.mount.mountpoint, ...parts);

t.before(async () => {
  const started = Date.now();
  const made: Partial<Record<'big' | 'film' | 'solo', Source>> = {};
  const { a, b, bootstrap } = await pairedMounts(t,
    {
      name: 'alpha',
      location: 'media',
      files: (root) => {
        fs.writeFileSync(path.join(root, 'hi.txt'), 'hello from alpha\n');
        made.big = writeRandomFile(path.join(root, 'big.bin'), BIG_BYTES);
        made.film = writeRandomFile(path.join(root, 'film.bin'), FILM_BYTES);
        fs.mkdirSync(path.join(root, 'suite'));
        writeReadOnlyFixture(path.join(root, 'suite'));
      },
    },
    // beta logs its warnings: the test reads them (a corrupt cache block, failed reads). It
    // mounts --read-only: the POSIX suite's read-only mode expects EROFS for changes in the
    // peer's tree (on a writable mount they are jobs the peer runs: test/remote-writes).
    { name: 'beta', location: 'notes', files: { 'note.txt': 'beta note\n' }, env: { SD_LOG: 'warn' }, args: ['--read-only'] },
    { file: 'hi.txt', text: 'hello from alpha\n' });
  // gamma holds the same bytes as alpha's film.bin (so the same content id) and one file of its own.
  const gamma = await libraryWithLocation(t, (root) => {
    fs.copyFileSync(made.film!.file, path.join(root, 'film.bin'));
    made.solo = writeRandomFile(path.join(root, 'solo.bin'), FILM_BYTES);
  }, 'gamma', 'copies');
  await pair(t, gamma.library, b.library, bootstrap);
  // The whole of alpha's index is in once its biggest folder is listed in full.
  const suiteBig = path.join(b.mount.mountpoint, 'alpha/media/suite/big');
  if (!(await waitFor(() => fs.existsSync(suiteBig) && fs.readdirSync(suiteBig).length === 3000, 30_000, 250))) throw new Error("alpha's index did not arrive in full");
  devices = { alpha: a, beta: b, gamma, bootstrap, big: made.big!, film: made.film!, solo: made.solo! };
  t.comment(`three devices, two paired and mounted: ${Date.now() - started} ms`);
});

/** The key beta's block cache files a remote file's blocks under: its content id and size. */
function cacheKeyOf(remote: string, source: Source): string {
  return `content/${String(getAttributeSync(remote, 'user.sd.content_id'))}/${source.size}`;
}

t.test('a 200 MiB remote file reads byte-identical through the mount', async (t) => {
  const { big } = world();
  const started = performance.now();
  const sha = await sha256Of(onBeta('alpha/media/big.bin'));
  const ms = performance.now() - started;
  t.equal(sha, big.sha256, 'the sha256 of the bytes read through beta equals the source');
  t.comment(`200 MiB read through the mount: ${Math.round(ms)} ms, ${Math.round((big.size / MiB / ms) * 1000)} MiB/s`);
});

t.test('a block damaged in the disk cache while the mount was down is rejected and fetched again', async (t) => {
  const { big, beta, bootstrap } = world();
  const remote = onBeta('alpha/media/big.bin');
  const index = 17;
  const cacheKey = cacheKeyOf(remote, big);
  // Blocks are checked once per process (when written, or first read back): the damage is
  // done with beta down, as a bad disk or a crash would leave it, and caught after a start.
  await beta.mount.stop();
  // The cache's own index, rebuilt from its folder, says where the block's bytes are.
  const cache = await BlockCache.open(BlockCache.dirOf(beta.library));
  const where = cache.locate(cacheKey, index);
  if (!where) throw new Error(`block ${index} of ${cacheKey} is not in beta's cache after a full read`);
  const blockFile = where.file;
  const at = where.offset + 4321;
  const fd = fs.openSync(blockFile, 'r+');
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, at);
  byte[0] = byte[0]! ^ 0xff;
  fs.writeSync(fd, byte, 0, 1, at);
  fs.closeSync(fd);
  const mount = await startMount(root, beta.library, ['--bootstrap', bootstrap, '--read-only'], beta.mount.mountpoint, { SD_LOG: 'warn' });
  devices!.beta = { ...beta, mount };
  await waitForPeerFile(mount, 'alpha/media/hi.txt', 'hello from alpha\n');

  const offset = index * config.blockSize + 1000;
  // Until beta has its connection to alpha again, the damaged block's fetch fails (EIO): read again.
  let bytes = Buffer.alloc(0);
  const read = async () => {
    const handle = await fs.promises.open(remote, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      bytes = buf.subarray(0, (await handle.read(buf, 0, buf.length, offset)).bytesRead);
      return true;
    } catch {
      return false;
    } finally {
      await handle.close();
    }
  };
  t.ok(await waitFor(read, 30_000, 200), 'the damaged block is read once alpha is back');
  t.ok(bytes.equals(bytesAt(big.file, offset, 64 * 1024)), 'the bytes read are still right (fetched again from alpha)');
  const corruptLine = () => mount.stderr().split('\n').find((line) => line.includes('"op":"cache-corrupt"'));
  t.ok(await waitFor(() => corruptLine() !== undefined, 5000, 50), 'beta warns of the corrupt block (if not: was the page cache dropped?)');
  t.match(JSON.parse(corruptLine() ?? '{}'), { level: 40, file: blockFile, corrupt: 1 }, 'naming its file, counted once');
  t.ok(await waitFor(() => {
    try {
      return bytesAt(blockFile, where.offset, config.blockSize).equals(bytesAt(big.file, index * config.blockSize, config.blockSize));
    } catch {
      return false;
    }
  }, 5000, 50), 'the cache holds the good block again');
});

t.test('random seeks in a 200 MiB remote file read the bytes of the source', async (t) => {
  const { big, beta } = world();
  const remote = onBeta('alpha/media/big.bin');
  t.equal(fs.statSync(remote).size, big.size);
  // Cold again after the full read: the kernel's pages of the file dropped, its blocks gone from beta's disk cache.
  await dropPageCache(remote);
  const cache = await BlockCache.open(BlockCache.dirOf(beta.library));
  const key = cacheKeyOf(remote, big);
  // Emptied under the running mount: each block it had reads short, so it is a miss and fetched again.
  let cached: string | undefined;
  for (let i = 0; !cached && i * config.blockSize < big.size; i++) cached = cache.locate(key, i)?.file;
  if (cached) fs.truncateSync(cached, 0);
  const fd = fs.openSync(remote, 'r');
  const started = performance.now();
  let wrong = 0;
  try {
    for (let i = 0; i < 50; i++) {
      // Lengths from one byte to 2 MiB (many cross a block boundary); the first and last seeks hit the file's ends.
      const length = 1 + Math.floor(Math.random() ** 2 * 2 * MiB);
      const offset = i === 0 ? 0 : i === 49 ? big.size - length : Math.floor(Math.random() * (big.size - length));
      const buf = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const n = fs.readSync(fd, buf, got, length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      if (got !== length || !buf.equals(bytesAt(big.file, offset, length))) {
        wrong++;
        t.fail(`${length} bytes at ${offset} differ from the source (read ${got})`);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  t.equal(wrong, 0, '50 reads at random offsets, of random lengths, equal the source');
  t.comment(`50 random reads: ${Math.round(performance.now() - started)} ms`);
});

t.test("the POSIX suite, read-only, on a peer's tree", async (t) => {
  posixSuite(t, () => ({ dir: onBeta('alpha/media/suite'), readOnly: true }));
});

t.test("refused changes leave the peer's tree as it was, and the mount answering", async (t) => {
  const { alpha, beta } = world();
  const suite = path.join(alpha.root, 'suite');
  t.same(fs.readdirSync(suite).sort(), fs.readdirSync(onBeta('alpha/media/suite')).sort(), "alpha's folder and beta's view of it list the same names");
  t.notOk(fs.existsSync(path.join(suite, 'new.txt')) || fs.existsSync(path.join(suite, 'a')), 'nothing was created on alpha');
  t.equal(fs.readFileSync(path.join(suite, 'file.txt'), 'utf8'), 'hello world', 'nothing was changed on alpha');
  t.equal(beta.mount.process.exitCode, null, "beta's mount process is still running");
  t.equal(fs.readFileSync(onBeta('alpha/media/hi.txt'), 'utf8'), 'hello from alpha\n', 'and reads');
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** gamma's mount: started by the first kill test (for the whole file), killed by the second. */
let gammaMount: MountedDevice | undefined;

t.test('the owner killed mid-read: a third device with the same content carries the read on', async (t) => {
  const { alpha, gamma, film, bootstrap } = world();
  const gammaListed = () => fs.existsSync(onBeta('gamma/copies/film.bin'));
  const starting = startMount(root, gamma.library, ['--bootstrap', bootstrap]).then((m) => (gammaMount = m));
  const failedBefore = failedReads(world().beta.mount);
  let killing: Promise<void> | undefined;
  let killedAfter = 0;
  // alpha alone serves the first MiBs, slowly, while gamma comes up; once beta lists gamma's
  // copy, alpha is killed with the next read on its way, and the rest is read at full speed.
  const result = await readThrough(onBeta('alpha/media/film.bin'), film, async (done) => {
    if (killing) return;
    if (done < 4 * MiB || !gammaListed()) {
      if (done < 16 * MiB) return sleep(200);
      await waitFor(gammaListed, 90_000, 100);
    }
    killedAfter = done;
    killing = killMount(alpha.mount);
  });
  await starting;
  await killing;
  await sleep(200); // beta's last log lines
  t.ok(gammaListed(), "beta lists gamma's copy");
  t.ok(killing, `alpha was killed ${killedAfter / MiB} MiB into the read`);
  t.notOk(result.error, `the read did not fail${result.error ? `: ${result.error.code} after ${result.done} bytes` : ''}`);
  t.equal(result.wrongAt, undefined, 'every byte read equals the source');
  t.equal(result.done, film.size, 'the read went to the end');
  t.equal(failedReads(world().beta.mount) - failedBefore, 0, 'no read through the mount failed (not even one the kernel retried)');
  t.ok(result.slowestMs < config.remoteReadTimeoutMs, `the longest wait was within the read timeout: ${Math.round(result.slowestMs)} ms`);
  t.comment(`reads over 0.5 s: ${JSON.stringify(result.stalls)}`);
  if (!t.passing()) t.comment(world().beta.mount.stderr().slice(-4000));
});

t.test('the only owner killed mid-read: the read ends with EIO within the timeout', async (t) => {
  const { solo } = world();
  if (!gammaMount) throw new Error('gamma is not mounted');
  const gamma = gammaMount;
  let killedAt = 0;
  let killing: Promise<void> | undefined;
  const result = await readThrough(onBeta('gamma/copies/solo.bin'), solo, async (done) => {
    if (killing || done < 8 * MiB) return;
    killedAt = performance.now();
    killing = killMount(gamma);
  });
  await killing;
  t.ok(killing, 'gamma was killed 8 MiB into the read');
  t.equal(result.error?.code, 'EIO', `the read failed with EIO after ${result.done / MiB} MiB`);
  t.equal(result.wrongAt, undefined, 'the bytes read before were right');
  t.ok(result.done >= 8 * MiB, 'all of them');
  const ms = Math.round(result.endedAt - killedAt);
  // The read in flight when the peer died waits out the timeout; the kernel's retries of it fail at once.
  t.ok(ms < config.remoteReadTimeoutMs + 1500, `EIO came within the read timeout (${config.remoteReadTimeoutMs} ms) of the kill: ${ms} ms`);
  if (!t.passing()) t.comment(world().beta.mount.stderr().slice(-4000));
});
