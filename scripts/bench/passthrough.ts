// C FUSE passthroughs built and mounted in the bench's own run, as references for sdfs's
// mount: a minimal multithreaded passthrough of ours on libfuse2's high-level API
// (passthrough/passthrough2.c: by path, no descriptor held per inode), and libfuse3's own
// low-level example passthrough_ll.c (node ids, one O_PATH descriptor per inode), compiled
// from the installed libfuse3-dev docs (never copied into the repo). Build outputs go into
// the bench's temp dir. A missing compiler, header or example skips that reference with a
// note saying what to install; nothing is installed here.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { forceUnmount, isMounted } from '../../src/fuse/mount.js';
import { type Report, commandExists, timeCommand } from './common.js';

export interface Passthrough {
  /** How figures name it (short: a figure's name column is 26 characters). */
  name: string;
  /** Library version and the options it runs with, for the notes. */
  describe: string;
  binary: string;
  /** The command line that mounts `source` at `mountpoint` in the foreground, with extra -o options. */
  argv(source: string, mountpoint: string, options: readonly string[]): string[];
  /**
   * Descriptors its process may hold, when it holds one per inode the kernel knows
   * (passthrough_ll): the soft RLIMIT_NOFILE is raised to the hard one, which caps the
   * entries one mount can see. Undefined when the count does not grow with the tree.
   */
  fdLimit?: number;
}

export interface Passthroughs {
  /** Ours, on libfuse2's high-level API. */
  fuse2?: Passthrough;
  /** libfuse3's low-level example. */
  ll?: Passthrough;
}

/**
 * What sdfs mounts with, as far as it changes what the kernel sends: 128 KiB writes (libfuse2
 * sends 4 KiB ones without big_writes), real inode numbers, the kernel's permission checks.
 */
const SDFS_LIKE_OPTIONS = ['use_ino', 'big_writes', 'default_permissions'];
const LIBFUSE3_EXAMPLES = '/usr/share/doc/libfuse3-dev/examples';
// The C source stays in the repo (tsc leaves it there): from build/scripts/bench/ back to scripts/bench/.
const FUSE2_SOURCE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'scripts', 'bench', 'passthrough', 'passthrough2.c');

/** Builds the references that can be built here into `dir`; notes the ones that cannot and why. */
export async function buildPassthroughs(dir: string, report: Report): Promise<Passthroughs> {
  if (!(await commandExists('gcc')) || !(await commandExists('pkg-config'))) {
    report.note('gcc or pkg-config is not installed (apt-get install gcc pkg-config): no C passthrough references');
    return {};
  }
  fs.mkdirSync(dir, { recursive: true });
  return { fuse2: await buildFuse2(dir, report), ll: await buildLowLevel(dir, report) };
}

async function buildFuse2(dir: string, report: Report): Promise<Passthrough | undefined> {
  const version = await pkgVersion('fuse');
  if (!version) {
    report.note('libfuse2 headers are not installed (apt-get install libfuse-dev): no libfuse2 passthrough reference');
    return undefined;
  }
  const binary = await compile(FUSE2_SOURCE, path.join(dir, 'passthrough2'), 'fuse', report);
  if (!binary) return undefined;
  return {
    name: 'libfuse2 pt',
    describe: `scripts/bench/passthrough/passthrough2.c, libfuse ${version} high-level, multithreaded, -o ${SDFS_LIKE_OPTIONS.join(',')}, 1 s timeouts`,
    binary,
    argv: (src, mnt, options) => [binary, src, mnt, '-f', '-o', [...SDFS_LIKE_OPTIONS, ...options].join(',')],
  };
}

async function buildLowLevel(dir: string, report: Report): Promise<Passthrough | undefined> {
  const version = await pkgVersion('fuse3');
  const example = findExample('passthrough_ll.c');
  const helpers = findExample('passthrough_helpers.h');
  if (!version || !example || !helpers) {
    const missing = !version ? "libfuse3's headers (pkg-config fuse3) are" : `libfuse3's passthrough_ll.c example (in ${LIBFUSE3_EXAMPLES}) is`;
    report.note(`${missing} not installed (apt-get install libfuse3-dev): no passthrough_ll reference`);
    return undefined;
  }
  // The example includes its helper header by a relative name: both go next to each other.
  const src = path.join(dir, 'passthrough_ll.c');
  fs.writeFileSync(src, readMaybeGzipped(example));
  fs.writeFileSync(path.join(dir, 'passthrough_helpers.h'), readMaybeGzipped(helpers));
  const binary = await compile(src, path.join(dir, 'passthrough_ll'), 'fuse3', report);
  if (!binary) return undefined;
  const fdLimit = await hardFdLimit();
  return {
    name: 'passthrough_ll',
    describe: `libfuse ${version} low-level example, multithreaded, cache=auto, 1 s timeouts, ${fdLimit} descriptors`,
    binary,
    // One O_PATH descriptor per inode the kernel holds: the soft limit goes up to the hard one.
    argv: (src, mnt, options) => ['sh', '-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', binary, '-f', '-o', ['source=' + src, ...options].join(','), mnt],
    fdLimit,
  };
}

async function pkgVersion(pkg: string): Promise<string | undefined> {
  try {
    return (await timeCommand('pkg-config', ['--modversion', pkg], { captureStdout: true })).stdout.trim();
  } catch {
    return undefined;
  }
}

/** gcc -O2 against the pkg-config package given; undefined (and a note) when it fails. */
async function compile(source: string, binary: string, pkg: string, report: Report): Promise<string | undefined> {
  try {
    const flags = (await timeCommand('pkg-config', [pkg, '--cflags', '--libs'], { captureStdout: true })).stdout.trim().split(/\s+/);
    await timeCommand('gcc', ['-O2', '-Wall', source, ...flags, '-o', binary]);
    return binary;
  } catch (err) {
    report.note(`${path.basename(source)} did not build, reference skipped: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    return undefined;
  }
}

/** Debian may ship the examples gzipped. */
function findExample(name: string): string | undefined {
  return [name, `${name}.gz`].map((n) => path.join(LIBFUSE3_EXAMPLES, n)).find((f) => fs.existsSync(f));
}

function readMaybeGzipped(file: string): Buffer {
  const data = fs.readFileSync(file);
  return file.endsWith('.gz') ? zlib.gunzipSync(data) : data;
}

async function hardFdLimit(): Promise<number> {
  const out = (await timeCommand('sh', ['-c', 'ulimit -Hn'], { captureStdout: true })).stdout.trim();
  return out === 'unlimited' ? Infinity : Number(out);
}

/**
 * Mounts the passthrough over `source` at a fresh `mountpoint`, runs fn on the mount point,
 * and unmounts and ends the process whatever happens. A fresh process each time: what one
 * part looked up (and passthrough_ll holds descriptors for) does not count against the next.
 */
export async function withPassthrough<T>(pt: Passthrough, source: string, mountpoint: string, options: readonly string[], fn: (mnt: string) => Promise<T>): Promise<T> {
  fs.mkdirSync(mountpoint, { recursive: true });
  const [cmd, ...args] = pt.argv(source, mountpoint, options);
  const child = spawn(cmd!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.on('error', (err) => (stderr += String(err)));
  try {
    await waitForMount(child, mountpoint, () => stderr);
    return await fn(mountpoint);
  } finally {
    await unmount(child, mountpoint);
  }
}

async function waitForMount(child: ChildProcess, mountpoint: string, stderr: () => string): Promise<void> {
  const until = Date.now() + 10_000;
  while (!isMounted(mountpoint)) {
    if (Date.now() > until || child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${child.spawnfile} did not mount at ${mountpoint}: ${stderr().trim().slice(0, 500)}`);
    }
    await sleep(20);
  }
}

/**
 * fusermount -u ends the daemon's session loop, so the process exits by itself; SIGTERM and
 * then SIGKILL if it does not, and a lazy unmount if the mount outlived its process.
 */
async function unmount(child: ChildProcess, mountpoint: string): Promise<void> {
  for (const fusermount of ['fusermount3', 'fusermount']) {
    if (!isMounted(mountpoint)) break;
    await timeCommand(fusermount, ['-u', mountpoint]).catch(() => undefined);
  }
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    if (await exited(child, 5_000)) break;
    child.kill(signal);
  }
  await exited(child, 5_000);
  if (isMounted(mountpoint)) await forceUnmount(mountpoint);
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
