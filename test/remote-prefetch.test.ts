// Another device's files read through the mount with the disk cache behind them: a file
// read sequentially is fetched into the cache in the background (sd mount --prefetch), a
// seek moves that fetch, and the blocks in the cache are read by the FUSE threads
// themselves — also while the cache evicts them under the readers. Two `sd mount`
// processes on a local testnet; beta is started again with other options between tests.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { getAttributeSync } from '@napi-rs/xattr';
import t from 'tap';
import { BlockCache } from '../src/replication/block-cache.js';
import { cacheNameOf, indexRecords } from './cache-index.js';
import { startMount } from './mount-helpers.js';
import { bytesAt, pairedMounts, sha256Of, waitForPeerFile, writeRandomFile, type PairedDevice, type Source } from './remote-helpers.js';
import { waitFor } from './helpers.js';

const MiB = 1024 * 1024;
const run = promisify(execFile);

interface World {
  beta: PairedDevice;
  bootstrap: string;
  /** 48 MiB and a bit: 49 blocks. */
  film: Source;
  /** 96 MiB: bigger than the small cache of the eviction test. */
  long: Source;
  /** 16 MiB, read only with --prefetch off. */
  clip: Source;
  /** 64 MiB, played at a steady pace. */
  movie: Source;
}
let world: World | undefined;
const the = (): World => {
  if (!world) throw new Error('the devices did not come up');
  return world;
};

t.before(async () => {
  const made: Partial<Record<'film' | 'long' | 'clip' | 'movie', Source>> = {};
  const { b, bootstrap } = await pairedMounts(t,
    {
      name: 'alpha',
      location: 'media',
      files: (root) => {
        fs.writeFileSync(path.join(root, 'hi.txt'), 'hello from alpha\n');
        for (let i = 1; i <= 5; i++) fs.writeFileSync(path.join(root, `probe-${i}.txt`), `probe ${i}\n`);
        made.film = writeRandomFile(path.join(root, 'film.bin'), 48 * MiB + 4321);
        made.long = writeRandomFile(path.join(root, 'long.bin'), 96 * MiB);
        made.clip = writeRandomFile(path.join(root, 'clip.bin'), 16 * MiB);
        made.movie = writeRandomFile(path.join(root, 'movie.bin'), 64 * MiB);
      },
    },
    { name: 'beta', location: 'notes', files: { 'n.txt': 'n\n' }, env: { SD_LOG: 'warn' }, args: ['--read-only', '--prefetch', 'seek'] },
    { file: 'hi.txt', text: 'hello from alpha\n' });
  world = { beta: b, bootstrap, film: made.film!, long: made.long!, clip: made.clip!, movie: made.movie! };
});

let restarts = 0;
/**
 * beta again, on its library and mount point, with these options; resolves once it reads a
 * file of alpha it never read before (one in its cache would read before alpha is back).
 */
async function restartBeta(args: string[]): Promise<void> {
  const w = the();
  await w.beta.mount.stop();
  const mount = await startMount(t, w.beta.library, ['--bootstrap', w.bootstrap, '--read-only', ...args], w.beta.mount.mountpoint, { SD_LOG: 'warn' });
  w.beta = { ...w.beta, mount };
  restarts++;
  await waitForPeerFile(mount, `alpha/media/probe-${restarts}.txt`, `probe ${restarts}\n`);
}

const onBeta = (name: string) => path.join(the().beta.mount.mountpoint, 'alpha/media', name);

/** The blocks of a file in beta's disk cache, as its index file lists them. */
function cachedBlocks(name: string, source: Source): number[] {
  const key = `content/${String(getAttributeSync(onBeta(name), 'user.sd.content_id'))}/${source.size}`;
  try {
    return indexRecords(fs.readFileSync(path.join(BlockCache.dirOf(the().beta.library), `${cacheNameOf(key)}.index`))).map((r) => r.index);
  } catch {
    return [];
  }
}

/** Reads `count` × 256 KiB from offset on, one after another, through an open handle (a sequential reader). */
async function readRun(handle: fs.promises.FileHandle, offset: number, count: number): Promise<void> {
  const buf = Buffer.alloc(256 * 1024);
  for (let i = 0; i < count; i++) await handle.read(buf, 0, buf.length, offset + i * buf.length);
}

/**
 * Plays a file as a media player does (ffmpeg -re): 256 KiB reads at a steady 16 MB/s from
 * `from`, each read's bytes checked; resolves to the longest wait for a read after the
 * first second, and where it was.
 */
async function play(handle: fs.promises.FileHandle, source: Source, from: number, bytes: number): Promise<{ slowestMs: number; at: number; wrong: number }> {
  const rate = 16e6;
  const buf = Buffer.alloc(256 * 1024);
  const started = performance.now();
  let slowestMs = 0;
  let at = -1;
  let wrong = 0;
  for (let done = 0; done < bytes; done += buf.length) {
    const due = started + (done / rate) * 1000;
    const now = performance.now();
    if (due > now) await new Promise((r) => setTimeout(r, due - now));
    const asked = performance.now();
    const { bytesRead } = await handle.read(buf, 0, buf.length, from + done);
    const ms = performance.now() - asked;
    if (asked - started > 1000 && ms > slowestMs) [slowestMs, at] = [ms, from + done];
    if (!buf.subarray(0, bytesRead).equals(bytesAt(source.file, from + done, buf.length))) wrong++;
  }
  return { slowestMs, at, wrong };
}

t.test('a file played at a steady pace from another device never waits after its first second, nor after a seek', async (t) => {
  const { movie } = the();
  const handle = await fs.promises.open(onBeta('movie.bin'), 'r');
  try {
    const start = await play(handle, movie, 0, 24 * MiB);
    t.equal(start.wrong, 0, 'every byte played is the owner\'s');
    t.ok(start.slowestMs < 250, `from the start: the longest wait after the first second was ${start.slowestMs.toFixed(1)} ms (at ${(start.at / MiB).toFixed(2)} MiB)`);
    // A seek past what was fetched so far, then playing on from there.
    const seek = await play(handle, movie, 44 * MiB, 16 * MiB);
    t.equal(seek.wrong, 0, 'and after the seek');
    t.ok(seek.slowestMs < 250, `after a seek to 44 MiB: the longest wait after its first second was ${seek.slowestMs.toFixed(1)} ms`);
  } finally {
    await handle.close();
  }
});

t.test('--prefetch seek: a reader that seeks has the file fetched from the seek point to the end, and nothing before it', async (t) => {
  const { film } = the();
  const handle = await fs.promises.open(onBeta('film.bin'), 'r');
  try {
    await readRun(handle, 20 * MiB, 4);
    const last = Math.ceil(film.size / MiB) - 1;
    const fetched = await waitFor(() => cachedBlocks('film.bin', film).includes(last), 30_000, 100);
    t.ok(fetched, 'the last block came in the background while the file stayed open');
    const blocks = cachedBlocks('film.bin', film);
    t.same(blocks, Array.from({ length: last - 19 }, (_, i) => 20 + i), 'blocks 20 to the end are in the cache, none before the seek point');
  } finally {
    await handle.close();
  }
  t.equal(await sha256Of(onBeta('film.bin')), film.sha256, 'the whole file then reads right');
});

t.test('--prefetch whole: a short sequential read has the whole file fetched, the part after it first', async (t) => {
  await restartBeta(['--prefetch', 'whole']);
  const { long } = the();
  const handle = await fs.promises.open(onBeta('long.bin'), 'r');
  const blocks = Math.ceil(long.size / MiB);
  try {
    await readRun(handle, 60 * MiB, 4);
    // Seen while it runs: when the end is in, the start may not be yet; the end always comes first.
    let endFirst = true;
    const whole = await waitFor(() => {
      const have = new Set(cachedBlocks('long.bin', long));
      if (have.has(0) && !have.has(blocks - 1)) endFirst = false;
      return have.size === blocks;
    }, 60_000, 50);
    t.ok(whole, `all ${blocks} blocks came in the background while the file stayed open`);
    t.ok(endFirst, 'the blocks after the read point came before those at the start');
  } finally {
    await handle.close();
  }
  t.equal(await sha256Of(onBeta('long.bin')), long.sha256, 'the whole file reads right (from the cache)');
});

t.test('--prefetch off: only a few blocks ahead of the reader are fetched', async (t) => {
  await restartBeta(['--prefetch', 'off']);
  const { clip } = the();
  t.equal(cachedBlocks('clip.bin', clip).length, 0, 'nothing of the file is cached yet');
  const handle = await fs.promises.open(onBeta('clip.bin'), 'r');
  try {
    await readRun(handle, 0, 4);
    await new Promise((r) => setTimeout(r, 2000));
    const got = cachedBlocks('clip.bin', clip).length;
    t.ok(got > 0 && got <= 10, `the first block and its read-ahead only: ${got} of 16 blocks`);
  } finally {
    await handle.close();
  }
});

t.test('readers served from the cache by the FUSE threads get the right bytes while the cache evicts under them', async (t) => {
  await restartBeta(['--prefetch', 'whole', '--cache-max', '24M']);
  const { long } = the();
  const logged = the().beta.mount.stderr().length;
  const sum = async () => (await run('sha256sum', [onBeta('long.bin')], { maxBuffer: MiB })).stdout.split(' ')[0];
  // Two readers at once, then one more: 96 MiB through a 24 MiB cache, blocks evicted as they are read.
  const sums = await Promise.all([sum(), sum()]);
  t.same(sums, [long.sha256, long.sha256], 'both concurrent readers got the owner\'s bytes');
  t.equal(await sum(), long.sha256, 'and a third reader after them');
  const cached = cachedBlocks('long.bin', long).length;
  t.ok(cached <= 24, `the cache stayed within its limit (${cached} blocks of the file in it)`);
  t.notMatch(the().beta.mount.stderr().slice(logged), /cache-corrupt|remote read failed/, 'no corrupt block, no failed read');
});
