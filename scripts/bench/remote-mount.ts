// A peer's file read with `cat` through the mount, end to end: two `sd mount` processes
// paired on a local testnet (set up with the test suite's helpers), the owner's file in
// its page cache. References in the same run: `cat` of the file on disk, and `cat` through
// sshfs over loopback when sshfs and sshd are installed (`apt-get install sshfs
// openssh-server`; the bench runs its own sshd on a free port).
// Figures: first read, against sshfs; a re-read from the block cache; 4 KiB random reads of
// a file never read (p95; sshfs's in the same run).
// Run: node build/scripts/bench/remote-mount.js [lane|swarm] [--mib 512] [--json] [--profile DIR] [--node-flags '...']
// (swarm: SD_LANE=off, blocks over the Hyperswarm connection only; --profile: both mounts
// run with --cpu-prof into DIR/owner and DIR/reader; the first read's time window is printed
// in the profiles' clock, microseconds of CLOCK_MONOTONIC)
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { pairedMounts } from '../../test/remote-helpers.js';
import { Report, commandExists, cpuSecondsOf, makeTempDir, mb, numberArg, parseArgs, timeCommand } from './common.js';

const MiB = 1024 * 1024;
const args = parseArgs(process.argv.slice(2), ['profile', 'node-flags']);
const report = new Report('remote-mount', args.json);
const size = numberArg(args, 'mib', 512) * MiB;
const lane = args.positional[0] !== 'swarm';
/** A second file, read only at random offsets (cold for each reader). */
const RANDOM_FILE_BYTES = 64 * MiB;
const RANDOM_READS = 200;

/** The helpers want a tap Test: here only its teardowns (run at the end) and checks (thrown). */
const teardowns: Array<() => unknown> = [];
const t = {
  teardown: (fn: () => unknown) => void teardowns.push(fn),
  equal: (a: unknown, b: unknown, what: string) => {
    if (a !== b) throw new Error(`${what}: ${String(a)} != ${String(b)}`);
  },
  ok: () => undefined,
  comment: () => undefined,
} as unknown as Test;

function writeFile(file: string): void {
  const fd = fs.openSync(file, 'w');
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < size / MiB; i++) {
    block.fill(i & 0xff);
    block.writeUInt32LE(i, 0);
    fs.writeSync(fd, block);
  }
  fs.closeSync(fd);
}

async function catSeconds(file: string): Promise<number> {
  return (await timeCommand('cat', [file])).seconds;
}

/** CPU seconds all cores spent busy so far (everything but idle and iowait), from /proc/stat. */
function machineBusySeconds(): number {
  const [, user, nice, system, , , irq, softirq, steal] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / 100;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Latencies (ms) of `count` reads of 4 KiB, one after another, at random 4 KiB-aligned offsets of a file never read before. */
async function randomReadsMs(file: string, fileSize: number, count: number): Promise<number[]> {
  const handle = await fs.promises.open(file, 'r');
  const buf = Buffer.alloc(4096);
  const ms: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const offset = Math.floor(Math.random() * (fileSize / 4096)) * 4096;
      const started = performance.now();
      await handle.read(buf, 0, buf.length, offset);
      ms.push(performance.now() - started);
    }
  } finally {
    await handle.close();
  }
  return ms;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface SshfsFigures {
  catSeconds: number;
  randomMs: number[];
}

/** Through sshfs over loopback (its own sshd): `cat` of `dir/name`, then random reads of `dir/randomName`; undefined when not installed. */
async function sshfsFigures(dir: string, name: string, randomName: string): Promise<SshfsFigures | undefined> {
  if (!(await commandExists('sshfs')) || !fs.existsSync('/usr/sbin/sshd')) {
    report.note('sshfs reference skipped: sshfs or sshd not installed (apt-get install sshfs openssh-server)');
    return undefined;
  }
  const work = makeTempDir('sd-bench-sshfs-');
  const port = await freePort();
  await timeCommand('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(work, 'host')]);
  await timeCommand('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(work, 'id')]);
  fs.copyFileSync(path.join(work, 'id.pub'), path.join(work, 'authorized_keys'));
  fs.writeFileSync(path.join(work, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${work}/host`, `AuthorizedKeysFile ${work}/authorized_keys`,
    'PasswordAuthentication no', 'PermitRootLogin prohibit-password', 'StrictModes no', 'Subsystem sftp internal-sftp', `PidFile ${work}/sshd.pid`,
  ].join('\n') + '\n');
  fs.mkdirSync('/run/sshd', { recursive: true });
  await timeCommand('/usr/sbin/sshd', ['-f', path.join(work, 'sshd_config')]);
  const mnt = path.join(work, 'mnt');
  fs.mkdirSync(mnt);
  try {
    await timeCommand('sshfs', ['-p', String(port), '-o', `IdentityFile=${work}/id,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null`, `root@127.0.0.1:${dir}`, mnt]);
    try {
      const seconds = await catSeconds(path.join(mnt, name));
      return { catSeconds: seconds, randomMs: await randomReadsMs(path.join(mnt, randomName), RANDOM_FILE_BYTES, RANDOM_READS) };
    } finally {
      await timeCommand('fusermount', ['-u', mnt]).catch(() => timeCommand('umount', ['-l', mnt]));
    }
  } finally {
    const pid = Number(fs.readFileSync(path.join(work, 'sshd.pid'), 'utf8'));
    if (pid > 0) process.kill(pid);
  }
}

async function main(): Promise<void> {
  report.noteMachine('start');
  report.progress(`pairing two devices and mounting both${lane ? '' : ' (SD_LANE=off)'}`);
  // Info logs (a few lines, none per block): they say which side dialled the direct lane.
  const env = lane ? { SD_LOG: 'info' } : { SD_LANE: 'off', SD_LOG: 'info' };
  const profile = args.words.get('profile');
  const nodeFlags = args.words.get('node-flags')?.split(' ') ?? [];
  const profiled = (side: string) => [...nodeFlags, ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profile, side)}`] : [])];
  const { a, b } = await pairedMounts(
    t,
    { name: 'alpha', location: 'media', files: (root) => {
      fs.writeFileSync(path.join(root, 'hi.txt'), 'hi\n');
      writeFile(path.join(root, 'big.bin'));
      fs.writeFileSync(path.join(root, 'random.bin'), Buffer.alloc(RANDOM_FILE_BYTES, 7));
    }, env, nodeArgs: profiled('owner') },
    { name: 'beta', location: 'notes', files: { 'n.txt': 'n\n' }, env, nodeArgs: profiled('reader') },
    { file: 'hi.txt', text: 'hi\n' },
  );
  const onDisk = path.join(a.root, 'big.bin');
  const remote = path.join(b.mount.mountpoint, 'alpha/media/big.bin');
  await catSeconds(onDisk); // into the page cache: both reads below serve it from memory
  const local = await catSeconds(onDisk);
  const ssh = await sshfsFigures(a.root, 'big.bin', 'random.bin');
  const sshfs = ssh?.catSeconds;
  const firstFrom = process.hrtime.bigint() / 1000n;
  const cpuBefore = { owner: cpuSecondsOf(a.mount.process.pid!), reader: cpuSecondsOf(b.mount.process.pid!), machine: machineBusySeconds() };
  const first = await catSeconds(remote);
  const cpu = { owner: cpuSecondsOf(a.mount.process.pid!) - cpuBefore.owner, reader: cpuSecondsOf(b.mount.process.pid!) - cpuBefore.reader, machine: machineBusySeconds() - cpuBefore.machine };
  // Its time window in CLOCK_MONOTONIC microseconds: the clock of --cpu-prof, and of perf record -k CLOCK_MONOTONIC.
  report.note(`first read's window: ${firstFrom} ${process.hrtime.bigint() / 1000n}`);
  // Where the first read's CPU went: each mount (all its threads), and the machine's busy core-seconds
  // (the rest is cat, the kernel's FUSE and TCP work outside the two processes, and anything else running).
  // A device reads over the lane it dialled, through one reused buffer (see ReadRelay); else over the owner's.
  if (lane) report.note(`the reader ${b.mount.stderr().includes('direct lane open') ? 'read over a direct lane it dialled' : 'dialled no direct lane (read over the owner\'s)'}`);
  report.note(`first read: ${first.toFixed(2)} s; CPU s: owner ${cpu.owner.toFixed(2)}, reader ${cpu.reader.toFixed(2)}, machine ${cpu.machine.toFixed(2)} of ${(os.cpus().length * first).toFixed(2)}`);
  await timeCommand('dd', [`if=${remote}`, 'iflag=nocache', 'count=0']);
  const cached = await catSeconds(remote);
  const random = await randomReadsMs(path.join(b.mount.mountpoint, 'alpha/media/random.bin'), RANDOM_FILE_BYTES, RANDOM_READS);

  const rate = (seconds: number) => mb(size) / seconds;
  report.figure({ name: 'local cat (reference)', value: rate(local), unit: 'MB/s', note: `${size / MiB} MiB from the page cache` });
  if (sshfs !== undefined) report.figure({ name: 'sshfs cat (reference)', value: rate(sshfs), unit: 'MB/s', note: 'sshfs over loopback, first read' });
  report.figure({
    name: 'remote cat through /sd',
    value: rate(first),
    unit: 'MB/s',
    note: `first read, ${lane ? 'direct lane' : 'swarm only'}; ${(local / first).toFixed(2)}x local${sshfs !== undefined ? `, ${(sshfs / first).toFixed(2)}x sshfs` : ''}`,
    aim: { op: '>=', value: 250 },
  });
  if (sshfs !== undefined) report.figure({ name: 'remote cat / sshfs', value: sshfs / first, unit: 'x', note: 'first read, speed against sshfs in this run', aim: { op: '>=', value: 1 } });
  report.figure({ name: 'again, from block cache', value: rate(cached), unit: 'MB/s', note: 'page cache dropped; blocks checked once per process, read by the FUSE threads', aim: { op: '>=', value: 1000 } });
  report.figure({
    name: '4 KiB random reads p95',
    value: percentile(random, 95),
    unit: 'ms',
    note: `${RANDOM_READS} reads, one at a time, of a ${RANDOM_FILE_BYTES / MiB} MiB file never read; p50 ${percentile(random, 50).toFixed(2)} ms${ssh ? `; sshfs p95 ${percentile(ssh.randomMs, 95).toFixed(2)} ms, p50 ${percentile(ssh.randomMs, 50).toFixed(2)} ms` : ''}`,
    aim: { op: '<=', value: 5 },
  });
  report.noteMachine('end');
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`remote-mount bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const fn of teardowns.reverse()) await fn();
    report.finish();
  });
