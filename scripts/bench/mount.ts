// The mount against the native file system in the same run: sequential read of a 1 GiB
// file (first read through the mount, then with the page cache kept), sequential write
// of 1 GiB (dd conv=fsync), `ls -lR` of 100,000 entries (first and second pass), and
// 10,000 × 4 KiB create+write+close. rclone mount of the same folder when installed.
// Run: node build/scripts/bench/mount.js [--json] [--gib 1] [--files 90000] [--folders 10000] [--small 10000] [--keep]
//      [--only read,write,ls,small]   (the parts to run; all by default)
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { forceUnmount, isMounted } from '../../src/fuse/mount.js';
import { Report, commandExists, formatCount, generateTree, makeTempDir, numberArg, parseArgs, seededRandom, timeCommand, writeRandomFile } from './common.js';

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
const files = numberArg(args, 'files', 90_000);
const folders = numberArg(args, 'folders', 10_000);
const small = numberArg(args, 'small', 10_000);
const report = new Report('mount', args.json);
const tmp = makeTempDir('sdfs-bench-mount-', args.keep);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const main = path.join(repo, 'build', 'src', 'cli', 'main.js');
const library = path.join(tmp, 'library');
const env: NodeJS.ProcessEnv = { ...process.env, SD_LIBRARY: library };
delete env.NODE_OPTIONS;

async function sd(argv: string[]): Promise<void> {
  await timeCommand(process.execPath, [main, '--library', library, ...argv]);
}

const mounts: Array<{ child: ChildProcess; mountpoint: string }> = [];

async function mountAt(mountpoint: string, extra: string[] = []): Promise<void> {
  fs.mkdirSync(mountpoint, { recursive: true });
  const child = spawn(process.execPath, [main, 'mount', mountpoint, ...extra], { env, stdio: ['ignore', 'pipe', 'inherit'] });
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
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r).once('error', r));
    if (isMounted(mountpoint)) await forceUnmount(mountpoint);
  }
}

/** Drops the page cache of one file (as seen through the path given). */
async function dropCache(file: string): Promise<void> {
  await timeCommand('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

const sh = (script: string) => timeCommand('sh', ['-c', script]);

try {
  // --- data and library
  const data = path.join(tmp, 'data');
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
  await sd(['init', '--name', 'bench']);
  await sd(['location', 'add', data, '--name', 'data', '--mode', 'shallow']);
  const mnt = path.join(tmp, 'mnt');
  await mountAt(mnt);
  const viaMount = (rel: string) => path.join(mnt, 'bench', 'data', rel);

  // --- sequential read
  if (wants('read')) {
    report.progress('sequential read');
    await timeCommand('cat', [bigFile]);
    const nativeRead = await timeCommand('cat', [bigFile]);
    await dropCache(viaMount('big/one.bin'));
    const firstRead = await timeCommand('cat', [viaMount('big/one.bin')]);
    const secondRead = await timeCommand('cat', [viaMount('big/one.bin')]);
    const mbps = (s: number) => (gib * 2 ** 30) / 1e6 / s;
    report.figure({ name: 'read 1st vs native', value: nativeRead.seconds / firstRead.seconds, unit: '× native', note: `${firstRead.seconds.toFixed(2)} s (${mbps(firstRead.seconds).toFixed(0)} MB/s) vs cat ${nativeRead.seconds.toFixed(2)} s, source in page cache`, aim: { op: '>=', value: 0.3 } });
    report.figure({ name: 'read 2nd vs native', value: nativeRead.seconds / secondRead.seconds, unit: '× native', note: `${secondRead.seconds.toFixed(2)} s, page cache kept across opens`, aim: { op: '>=', value: 0.9 } });
    if (await commandExists('rclone')) {
      const rmnt = path.join(tmp, 'rclone');
      fs.mkdirSync(rmnt);
      const rclone = spawn('rclone', ['mount', data, rmnt, '--read-only'], { stdio: 'ignore' });
      for (let i = 0; i < 100 && !isMounted(rmnt); i++) await new Promise((r) => setTimeout(r, 100));
      const r = await timeCommand('cat', [path.join(rmnt, 'big', 'one.bin')]);
      rclone.kill('SIGINT');
      await new Promise((res) => rclone.once('exit', res));
      if (isMounted(rmnt)) await forceUnmount(rmnt);
      report.figure({ name: 'read 1st vs rclone mount', value: r.seconds / firstRead.seconds, unit: '× rclone', note: `rclone ${r.seconds.toFixed(2)} s`, aim: { op: '>=', value: 4 } });
    } else {
      report.note('rclone is not installed: no rclone mount reference');
  }

  }

  // --- sequential write
  if (wants('write')) {
    report.progress('sequential write');
    const count = String(gib * 1024);
    const nativeWrite = await timeCommand('dd', ['if=/dev/zero', `of=${path.join(bigDir, 'w-native.bin')}`, 'bs=1M', `count=${count}`, 'conv=fsync', 'status=none']);
    const mountWrite = await timeCommand('dd', ['if=/dev/zero', `of=${viaMount('big/w-mount.bin')}`, 'bs=1M', `count=${count}`, 'conv=fsync', 'status=none']);
    report.figure({ name: 'write vs native', value: nativeWrite.seconds / mountWrite.seconds, unit: '× native', note: `dd bs=1M conv=fsync: ${mountWrite.seconds.toFixed(2)} s vs ${nativeWrite.seconds.toFixed(2)} s`, aim: { op: '>=', value: 0.5 } });
    fs.rmSync(path.join(bigDir, 'w-native.bin'));
    fs.rmSync(path.join(bigDir, 'w-mount.bin'));
  }

  // --- ls -lR
  if (wants('ls')) {
    report.progress('ls -lR');
    const treeNative = path.join(data, 'tree');
    await sh(`ls -lR ${treeNative} > /dev/null`);
    const lsNative = await sh(`ls -lR ${treeNative} > /dev/null`);
    const lsFirst = await sh(`ls -lR ${viaMount('tree')} > /dev/null`);
    const lsSecond = await sh(`ls -lR ${viaMount('tree')} > /dev/null`);
    const entries = formatCount(files + folders);
    report.figure({ name: 'ls -lR 1st vs native', value: lsFirst.seconds / lsNative.seconds, unit: '× native time', note: `${entries} entries: ${lsFirst.seconds.toFixed(2)} s vs ${lsNative.seconds.toFixed(2)} s` });
    report.figure({ name: 'ls -lR 2nd vs native', value: lsSecond.seconds / lsNative.seconds, unit: '× native time', note: `${lsSecond.seconds.toFixed(2)} s, attr/entry timeout 1 s (default)`, aim: { op: '<=', value: 2 } });
    await unmountAll();
    await mountAt(mnt, ['--attr-timeout', '60']);
    await sh(`ls -lR ${viaMount('tree')} > /dev/null`);
    const lsCached = await sh(`ls -lR ${viaMount('tree')} > /dev/null`);
    report.figure({ name: 'ls -lR 2nd, 60 s timeouts', value: lsCached.seconds / lsNative.seconds, unit: '× native time', note: `${lsCached.seconds.toFixed(2)} s with --attr-timeout 60 (outside changes invalidated)`, aim: { op: '<=', value: 2 } });
    // One file changed outside: the kernel is told to drop the device's cached names.
    fs.writeFileSync(path.join(treeNative, 'changed-outside.txt'), 'x');
    for (let i = 0; i < 50 && !fs.existsSync(viaMount('tree/changed-outside.txt')); i++) await new Promise((r) => setTimeout(r, 100));
    const lsAfterChange = await sh(`ls -lR ${viaMount('tree')} > /dev/null`);
    report.figure({ name: 'ls -lR 60 s, after a change', value: lsAfterChange.seconds / lsNative.seconds, unit: '× native time', note: `${lsAfterChange.seconds.toFixed(2)} s: one outside change, every name is looked up again` });
  }

  // --- small files
  if (wants('small')) {
    report.progress(`${formatCount(small)} × 4 KiB create+write+close`);
    const writer = `const fs=require('fs'),p=require('path');const d=process.argv[1],n=+process.argv[2],b=Buffer.alloc(4096,120);const t=performance.now();for(let i=0;i<n;i++){const fd=fs.openSync(p.join(d,'s'+i),'w');fs.writeSync(fd,b);fs.closeSync(fd)}console.log((performance.now()-t)/1000)`;
    const run = async (dir: string) => Number((await timeCommand(process.execPath, ['-e', writer, dir, String(small)], { captureStdout: true })).stdout.trim());
    fs.mkdirSync(path.join(data, 'small', 'native'));
    fs.mkdirSync(viaMount('small/mount'));
    const smallNative = await run(path.join(data, 'small', 'native'));
    const smallMount = await run(viaMount('small/mount'));
    report.figure({ name: 'small files via mount', value: small / smallMount, unit: 'files/s', note: `native ${formatCount(small / smallNative)} files/s; ratio ${(smallNative / smallMount).toFixed(2)}× native` });
  }
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
