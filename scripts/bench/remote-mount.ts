// A peer's file read with `cat` through the mount, end to end: two `sd mount` processes
// paired on a local testnet (set up with the test suite's helpers), the owner's file in
// its page cache. References in the same run: `cat` of the file on disk, and `cat` through
// sshfs over loopback when sshfs and sshd are installed (`apt-get install sshfs
// openssh-server`; the bench runs its own sshd on a free port).
// Run: node build/scripts/bench/remote-mount.js [lane|swarm] [--mib 512] [--json]
// (swarm: SD_LANE=off, blocks over the Hyperswarm connection only)
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Test } from 'tap';
import { pairedMounts } from '../../test/remote-helpers.js';
import { Report, commandExists, makeTempDir, mb, numberArg, parseArgs, timeCommand } from './common.js';

const MiB = 1024 * 1024;
const args = parseArgs();
const report = new Report('remote-mount', args.json);
const size = numberArg(args, 'mib', 512) * MiB;
const lane = args.positional[0] !== 'swarm';

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

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** `cat` of `dir/name` through sshfs over loopback (its own sshd); undefined when not installed. */
async function sshfsSeconds(dir: string, name: string): Promise<number | undefined> {
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
      return await catSeconds(path.join(mnt, name));
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
  const env = lane ? {} : { SD_LANE: 'off' };
  const { a, b } = await pairedMounts(
    t,
    { name: 'alpha', location: 'media', files: (root) => {
      fs.writeFileSync(path.join(root, 'hi.txt'), 'hi\n');
      writeFile(path.join(root, 'big.bin'));
    }, env },
    { name: 'beta', location: 'notes', files: { 'n.txt': 'n\n' }, env },
    { file: 'hi.txt', text: 'hi\n' },
  );
  const onDisk = path.join(a.root, 'big.bin');
  const remote = path.join(b.mount.mountpoint, 'alpha/media/big.bin');
  await catSeconds(onDisk); // into the page cache: both reads below serve it from memory
  const local = await catSeconds(onDisk);
  const sshfs = await sshfsSeconds(a.root, 'big.bin');
  const first = await catSeconds(remote);
  await timeCommand('dd', [`if=${remote}`, 'iflag=nocache', 'count=0']);
  const cached = await catSeconds(remote);

  const rate = (seconds: number) => mb(size) / seconds;
  report.figure({ name: 'local cat (reference)', value: rate(local), unit: 'MB/s', note: `${size / MiB} MiB from the page cache` });
  if (sshfs !== undefined) report.figure({ name: 'sshfs cat (reference)', value: rate(sshfs), unit: 'MB/s', note: 'sshfs over loopback, first read' });
  report.figure({
    name: 'remote cat through /sd',
    value: rate(first),
    unit: 'MB/s',
    note: `first read, ${lane ? 'direct lane' : 'swarm only'}; ${(local / first).toFixed(2)}x local${sshfs !== undefined ? `, ${(sshfs / first).toFixed(2)}x sshfs` : ''}`,
    aim: { op: '>=', value: 300 },
  });
  report.figure({ name: 'again, from block cache', value: rate(cached), unit: 'MB/s', note: 'page cache dropped; blocks verified on every hit' });
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
