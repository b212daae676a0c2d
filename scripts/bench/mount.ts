// The mount against the native file system and against C FUSE passthroughs built in the
// same run (issue 13): sequential read of a 1 GiB file (first read through the mount, then
// with the page cache kept), sequential write of 1 GiB (dd conv=fsync), `ls -lR` of 22,000
// entries (first and second pass), and 10,000 × 4 KiB create+write+close. The references
// (passthrough.ts): a minimal multithreaded passthrough of ours on libfuse2's high-level API,
// and libfuse3's low-level example passthrough_ll, each mounted over the same data folder.
// rclone mount of the same folder when installed.
// Each figure is the best of --runs runs, except an ls -lR first pass and the 60 s-timeout ones;
// the writes and the small files of the targets take turns, run by run.
// Run: node build/scripts/bench/mount.js [--json] [--gib 1] [--files 20000] [--folders 2000] [--small 10000] [--runs 3] [--keep]
//      [--only read,write,ls,small]   (the parts to run; all by default)
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { forceUnmount, isMounted } from '../../src/fuse/mount.js';
import { Report, bestOf, commandExists, flushToDisk, formatCount, generateTree, makeTempDir, numberArg, parseArgs, seededRandom, timeCommand, writeRandomFile, SD_BIN, SD_MAIN, sdEnv } from './common.js';
import { type Passthrough, buildPassthroughs, withPassthrough } from './passthrough.js';

const args = parseArgs(process.argv.slice(2), ['only']);
const PARTS = ['read', 'write', 'ls', 'small'] as const;
const only = new Set((args.words.get('only') ?? PARTS.join(',')).split(','));
for (const part of only) {
  if (!(PARTS as readonly string[]).includes(part)) {
    process.stderr.write(`--only takes a comma-separated list of ${PARTS.join(', ')}\n`);
    process.exit(2);
  }
}
const wants = (part: (typeof PARTS)[number]) => only.has(part);
const gib = numberArg(args, 'gib', 1);
const files = numberArg(args, 'files', 20_000);
const folders = numberArg(args, 'folders', 2_000);
const small = numberArg(args, 'small', 10_000);
/** Runs are repeated and the best kept: a read through FUSE, or a write to this VM's disk, varies 2–3× from run to run. */
const runs = numberArg(args, 'runs', 3);
const report = new Report('mount', args.json);
const tmp = makeTempDir('sdfs-bench-mount-', args.keep);
const main = SD_MAIN;
const library = path.join(tmp, 'library');
const env: NodeJS.ProcessEnv = sdEnv({ SD_LIBRARY: library });
/** The folder sdfs indexes (as a shallow location) and every passthrough mirrors. */
const data = path.join(tmp, 'data');
/** Descriptors passthrough_ll needs beyond one per entry (open files, folders being listed). */
const FD_HEADROOM = 2_000;

async function sd(argv: string[]): Promise<void> {
  await timeCommand(process.execPath, [main, '--library', library, ...argv]);
}

const mounts: Array<{ child: ChildProcess; mountpoint: string }> = [];

async function mountAt(mountpoint: string, extra: string[] = []): Promise<void> {
  fs.mkdirSync(mountpoint, { recursive: true });
  const child = spawn(SD_BIN, ['mount', mountpoint, ...extra], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  mounts.push({ child, mountpoint });
  const until = Date.now() + 60_000;
  while (!out.includes('Mounted at')) {
    if (Date.now() > until || child.exitCode !== null) throw new Error(`sd mount did not start at ${mountpoint}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function unmountAll(): Promise<void> {
  for (const { child, mountpoint } of mounts.splice(0)) {
    // A mount that failed has exited already: waiting for its exit would wait forever.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r).once('error', r));
    }
    if (isMounted(mountpoint)) await forceUnmount(mountpoint);
  }
}

/** Drops the page cache of one file (as seen through the path given). */
async function dropCache(file: string): Promise<void> {
  await timeCommand('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

const sh = (script: string) => timeCommand('sh', ['-c', script]);
const seconds = (s: number) => `${s.toFixed(2)} s`;

interface Reads {
  first: number;
  second: number;
}

/** `cat` of a file after dropping its page cache through the same path, then `cat` again. */
async function twoReads(file: string): Promise<Reads> {
  await dropCache(file);
  const first = (await timeCommand('cat', [file])).seconds;
  const second = (await timeCommand('cat', [file])).seconds;
  return { first, second };
}

/** The best first and the best second read of `runs` pairs. */
async function bestReads(file: string): Promise<Reads> {
  const best = { first: Infinity, second: Infinity };
  for (let i = 0; i < runs; i++) {
    const r = await twoReads(file);
    best.first = Math.min(best.first, r.first);
    best.second = Math.min(best.second, r.second);
  }
  return best;
}

/** `ls -lR` of a folder: the first pass looks every name up; the best of `runs` more finds them cached for the timeouts. */
async function listings(dir: string): Promise<Reads> {
  const ls = () => sh(`ls -lR ${dir} > /dev/null`);
  const first = (await ls()).seconds;
  const second = (await bestOf(runs, ls)).seconds;
  return { first, second };
}

/**
 * Best seconds of each target over `runs` rounds, the targets taking turns: a slow spell of
 * this VM's disk (seconds long) then slows one round of every target, not all of one's runs.
 */
async function bestInTurns(targets: ReadonlyArray<() => Promise<number>>): Promise<number[]> {
  const best = targets.map(() => Infinity);
  for (let round = 0; round < runs; round++) {
    for (const [i, target] of targets.entries()) best[i] = Math.min(best[i]!, await target());
  }
  return best;
}

/**
 * Seconds of a dd of zeros into big/NAME below root, flushed with fsync before dd exits.
 * The file is removed after through the same root: a removal on disk would leave the
 * mount's cached name behind for its entry timeout, and the next dd would open a ghost.
 */
async function ddWrite(root: string, name: string): Promise<number> {
  const file = path.join(root, 'big', name);
  // Other files' dirty pages (and the discards of removed ones) would be written by this dd's fsync: ext4 commits them with its journal.
  await flushToDisk();
  try {
    return (await timeCommand('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${gib * 1024}`, 'conv=fsync', 'status=none'])).seconds;
  } finally {
    fs.rmSync(file, { force: true });
  }
}

let smallRuns = 0;

/** Seconds for `small` × 4 KiB create+write+close into a new folder below root/small, timed inside the writing process. */
async function smallFiles(root: string): Promise<number> {
  await flushToDisk();
  const dir = path.join(root, 'small', `run${smallRuns++}`);
  fs.mkdirSync(dir);
  const writer = `const fs=require('fs'),p=require('path');const d=process.argv[1],n=+process.argv[2],b=Buffer.alloc(4096,120);const t=performance.now();for(let i=0;i<n;i++){const fd=fs.openSync(p.join(d,'s'+i),'w');fs.writeSync(fd,b);fs.closeSync(fd)}console.log((performance.now()-t)/1000)`;
  return Number((await timeCommand(process.execPath, ['-e', writer, dir, String(small)], { captureStdout: true })).stdout.trim());
}

try {
  report.noteMachine('start');
  report.progress('building the C passthroughs');
  const built = await buildPassthroughs(path.join(tmp, 'passthrough-build'), report);
  const references = [built.fuse2, built.ll].filter((pt): pt is Passthrough => pt !== undefined);
  for (const pt of references) report.note(`reference ${pt.name}: ${pt.describe}`);
  if (references.length) report.note(`'× passthrough' is its seconds over sdfs's (higher is better, as '× native'); '× passthrough time' is sdfs's over its (lower is better, as '× native time')`);

  // --- data and library
  const bigDir = path.join(data, 'big');
  fs.mkdirSync(bigDir, { recursive: true });
  const bigFile = path.join(bigDir, 'one.bin');
  if (wants('read')) {
    report.progress(`writing a ${gib} GiB file`);
    writeRandomFile(bigFile, gib * 2 ** 30, randomPool(), seededRandom(7));
  }
  if (wants('ls')) {
    report.progress(`writing a tree of ${formatCount(files + folders)} entries`);
    generateTree(path.join(data, 'tree'), { files, folders, fanout: 10, minBytes: 0, maxBytes: 64 });
  }
  fs.mkdirSync(path.join(data, 'small'));
  // The generated data goes to disk now, not in the background during the timed parts.
  await flushToDisk();
  await sd(['init', '--name', 'bench']);
  await sd(['location', 'add', data, '--name', 'data', '--mode', 'shallow']);
  const mnt = path.join(tmp, 'mnt');
  await mountAt(mnt);
  const viaMount = (rel: string) => path.join(mnt, 'bench', 'data', rel);
  /** The passthrough mounted over the data folder (a fresh process each time) for the length of fn. */
  const viaReference = <T>(pt: Passthrough, fn: (root: string) => Promise<T>, options: string[] = []) =>
    withPassthrough(pt, data, path.join(tmp, `mnt-${path.basename(pt.binary)}`), options, fn);
  /** Whether passthrough_ll's descriptors (one per inode the kernel holds) cover `entries`; notes a skip. */
  const fits = (pt: Passthrough, entries: number, what: string) => {
    if (pt.fdLimit === undefined || entries + FD_HEADROOM <= pt.fdLimit) return true;
    report.note(`${pt.name} skipped for ${what}: it holds a descriptor per inode, and ${formatCount(entries)} entries need more than its ${formatCount(pt.fdLimit)} (hard RLIMIT_NOFILE); up to ${formatCount(pt.fdLimit - FD_HEADROOM)} fit`);
    return false;
  };

  // --- sequential read
  if (wants('read')) {
    report.progress('sequential read');
    const mbps = (s: number) => `${((gib * 2 ** 30) / 1e6 / s).toFixed(0)} MB/s`;
    await timeCommand('cat', [bigFile]);
    const nativeRead = await bestOf(runs, () => timeCommand('cat', [bigFile]));
    const sdfsReads = await bestReads(viaMount('big/one.bin'));
    report.figure({ name: 'read 1st vs native', value: nativeRead.seconds / sdfsReads.first, unit: '× native', note: `${seconds(sdfsReads.first)} (${mbps(sdfsReads.first)}) vs cat ${seconds(nativeRead.seconds)}, source in page cache, best of ${runs}`, aim: { op: '>=', value: 0.3 } });
    report.figure({ name: 'read 2nd vs native', value: nativeRead.seconds / sdfsReads.second, unit: '× native', note: `${seconds(sdfsReads.second)}, page cache kept across opens`, aim: { op: '>=', value: 0.9 } });
    for (const pt of references) {
      const r = await viaReference(pt, (root) => bestReads(path.join(root, 'big', 'one.bin')));
      report.figure({ name: `read 1st vs ${pt.name}`, value: r.first / sdfsReads.first, unit: '× passthrough', note: `sdfs ${seconds(sdfsReads.first)} vs ${seconds(r.first)} (${mbps(r.first)})` });
      // Neither passthrough sets keep_cache: each open drops the page cache, so its second read goes through it again.
      report.figure({ name: `read 2nd vs ${pt.name}`, value: r.second / sdfsReads.second, unit: '× passthrough', note: `sdfs ${seconds(sdfsReads.second)} vs ${seconds(r.second)}; the passthrough drops the page cache at open` });
    }
    if (await commandExists('rclone')) {
      const rmnt = path.join(tmp, 'rclone');
      fs.mkdirSync(rmnt);
      const rclone = spawn('rclone', ['mount', data, rmnt, '--read-only'], { stdio: 'ignore' });
      for (let i = 0; i < 100 && !isMounted(rmnt); i++) await new Promise((r) => setTimeout(r, 100));
      const r = await timeCommand('cat', [path.join(rmnt, 'big', 'one.bin')]);
      rclone.kill('SIGINT');
      await new Promise((res) => rclone.once('exit', res));
      if (isMounted(rmnt)) await forceUnmount(rmnt);
      report.figure({ name: 'read 1st vs rclone mount', value: r.seconds / sdfsReads.first, unit: '× rclone', note: `rclone ${seconds(r.seconds)}`, aim: { op: '>=', value: 4 } });
    } else {
      report.note('rclone is not installed: no rclone mount reference');
    }
  }

  // --- sequential write
  if (wants('write')) {
    report.progress('sequential write');
    // passthrough_ll with the kernel's writeback cache (what libfuse3 makes possible); ours as sdfs mounts, without.
    const refOptions = (pt: Passthrough) => (pt === built.ll ? ['writeback'] : []);
    const [nativeWrite, mountWrite, ...refWrites] = await bestInTurns([
      () => ddWrite(data, 'w-native.bin'),
      () => ddWrite(viaMount(''), 'w-mount.bin'),
      ...references.map((pt) => () => viaReference(pt, (root) => ddWrite(root, `w-${path.basename(pt.binary)}.bin`), refOptions(pt))),
    ]);
    report.figure({ name: 'write vs native', value: nativeWrite! / mountWrite!, unit: '× native', note: `dd bs=1M conv=fsync: ${seconds(mountWrite!)} vs ${seconds(nativeWrite!)}, best of ${runs}`, aim: { op: '>=', value: 0.7 } });
    for (const [i, pt] of references.entries()) {
      const wb = refOptions(pt).length > 0;
      report.figure({ name: `write vs ${pt.name}${wb ? ' wb' : ''}`, value: refWrites[i]! / mountWrite!, unit: '× passthrough', note: `sdfs ${seconds(mountWrite!)} vs ${seconds(refWrites[i]!)}${wb ? ', -o writeback' : ''}` });
    }
  }

  // --- ls -lR
  if (wants('ls')) {
    report.progress('ls -lR');
    const treeNative = path.join(data, 'tree');
    await sh(`ls -lR ${treeNative} > /dev/null`);
    const lsNative = await sh(`ls -lR ${treeNative} > /dev/null`);
    const ls = await listings(viaMount('tree'));
    const entries = files + folders;
    report.figure({ name: 'ls -lR 1st vs native', value: ls.first / lsNative.seconds, unit: '× native time', note: `${formatCount(entries)} entries: ${seconds(ls.first)} vs ${seconds(lsNative.seconds)}` });
    report.figure({ name: 'ls -lR 2nd vs native', value: ls.second / lsNative.seconds, unit: '× native time', note: `${seconds(ls.second)} (best of ${runs}), sd mount's default timeouts`, aim: { op: '<=', value: 2 } });
    for (const pt of references) {
      if (!fits(pt, entries, 'ls -lR')) continue;
      const r = await viaReference(pt, (root) => listings(path.join(root, 'tree')));
      // Lower is better here: the ratio is sdfs's time over the passthrough's, as the native one.
      report.figure({ name: `ls -lR 1st vs ${pt.name}`, value: ls.first / r.first, unit: '× passthrough time', note: `sdfs ${seconds(ls.first)} vs ${seconds(r.first)}` });
      report.figure({ name: `ls -lR 2nd vs ${pt.name}`, value: ls.second / r.second, unit: '× passthrough time', note: `sdfs ${seconds(ls.second)} vs ${seconds(r.second)}; sdfs's default timeouts, the passthrough's 1 s` });
    }
    await unmountAll();
    await mountAt(mnt, ['--attr-timeout', '60']);
    await sh(`ls -lR ${viaMount('tree')} > /dev/null`);
    const lsCached = await sh(`ls -lR ${viaMount('tree')} > /dev/null`);
    report.figure({ name: 'ls -lR 2nd, 60 s timeouts', value: lsCached.seconds / lsNative.seconds, unit: '× native time', note: `${seconds(lsCached.seconds)} with --attr-timeout 60 (outside changes invalidated)`, aim: { op: '<=', value: 2 } });
    // One file changed outside: the kernel is told to drop the device's cached names.
    fs.writeFileSync(path.join(treeNative, 'changed-outside.txt'), 'x');
    for (let i = 0; i < 50 && !fs.existsSync(viaMount('tree/changed-outside.txt')); i++) await new Promise((r) => setTimeout(r, 100));
    const lsAfterChange = await sh(`ls -lR ${viaMount('tree')} > /dev/null`);
    report.figure({ name: 'ls -lR 60 s, after a change', value: lsAfterChange.seconds / lsNative.seconds, unit: '× native time', note: `${seconds(lsAfterChange.seconds)}: one outside change, every name is looked up again` });
  }

  // --- small files (the last part: sdfs is unmounted half way)
  if (wants('small')) {
    report.progress(`${formatCount(small)} × 4 KiB create+write+close`);
    const smallMount = (await bestInTurns([() => smallFiles(viaMount(''))]))[0]!;
    // The references write into the folder sdfs watches: its watcher would re-diff their
    // growing folders while they are timed, on the same two cores. sdfs goes first, then away.
    await unmountAll();
    // passthrough_ll with and without the kernel's writeback cache. A fresh mount for each
    // run: passthrough_ll keeps a descriptor for every file it created.
    const variants = references
      .filter((pt) => fits(pt, small, 'small files'))
      .flatMap((pt) => (pt === built.ll ? [[], ['writeback']] : [[]]).map((options) => ({ pt, options })));
    const [smallNative, ...smallRefs] = await bestInTurns([
      () => smallFiles(data),
      ...variants.map(({ pt, options }) => () => viaReference(pt, smallFiles, options)),
    ]);
    const rate = (s: number) => `${formatCount(small / s)} files/s`;
    report.figure({ name: 'small files via mount', value: small / smallMount, unit: 'files/s', note: `native ${rate(smallNative!)}; ratio ${(smallNative! / smallMount).toFixed(2)}× native; best of ${runs}` });
    for (const [i, { pt, options }] of variants.entries()) {
      const wb = options.length > 0;
      report.figure({ name: `small vs ${pt.name}${wb ? ' wb' : ''}`, value: smallRefs[i]! / smallMount, unit: '× passthrough', note: `sdfs ${rate(smallMount)} vs ${rate(smallRefs[i]!)}${wb ? ', -o writeback' : ''}` });
    }
  }
  report.noteMachine('end');
} finally {
  await unmountAll();
  report.finish();
}

function randomPool(): Buffer {
  const pool = Buffer.alloc(64 << 20);
  const fd = fs.openSync('/dev/urandom', 'r');
  fs.readSync(fd, pool, 0, pool.length, null);
  fs.closeSync(fd);
  return pool;
}
