// Mounting and unmounting: checks the mount point (stale mounts left by a crash are
// cleaned, busy or non-empty ones refused), mounts with the options that make the
// layer fast (kernel page cache kept while files are unchanged, attribute and entry
// timeouts, big writes, real inode numbers) and unmounts cleanly.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import Fuse, { type Ops } from 'fuse-native';
import { SdError, systemCode } from '../errors.js';
import { log } from '../log.js';
import { KernelInvalidator, devFuseFds } from './invalidate.js';
import { NativeSession, type NativeOps } from './lowlevel.js';

const run = promisify(execFile);

export interface MountOptions {
  /** Seconds the kernel trusts attributes and names of local files (exactly invalidated with the native binding). */
  attrTimeout: number;
  entryTimeout: number;
  /** Seconds for what cannot be invalidated exactly (virtual folders, other devices' trees). */
  shortTimeout: number;
  /** Seconds after which an open re-checks size and mtime before keeping the page cache. */
  openRecheck: number;
  debug?: boolean;
}

// fuse-native's own native binding (the same loaded instance its index.js uses).
const require = createRequire(import.meta.url);
const binding = require('node-gyp-build')(path.dirname(require.resolve('fuse-native/package.json'))) as {
  fuse_native_unmount(mnt: string, thread: Buffer): void;
};

/** fuse-native with the options sdfs needs, and an unmount that also works after an outside one. */
class SdFuse extends Fuse {
  declare _thread: Buffer;

  protected override _fuseOptions(): string {
    const base = super._fuseOptions();
    const extra = ['use_ino', 'big_writes', 'max_write=131072', 'max_read=131072', 'fsname=sdfs', 'subtype=sdfs', 'default_permissions'];
    return base ? `${base},${extra.join(',')}` : `-o${extra.join(',')}`;
  }

  // fuse-native skips releasing its FUSE thread when fusermount fails, which it does when
  // the tree was unmounted from outside; the thread then keeps the process alive.
  _close(cb: (err: Error | null) => void): void {
    const releaseThread = () => {
      try {
        binding.fuse_native_unmount(this.mnt, this._thread);
      } catch (err) {
        return cb(err as Error);
      }
      cb(null);
    };
    if (!isMounted(this.mnt)) return releaseThread();
    Fuse.unmount(this.mnt, (err) => (err && isMounted(this.mnt) ? cb(err) : releaseThread()));
  }
}

/** Whether the mount table lists this path (as a fuse mount or anything else). */
export function isMounted(mountpoint: string): boolean {
  const table = fs.readFileSync('/proc/mounts', 'utf8');
  return table.split('\n').some((line) => line.split(' ')[1] === mountpoint.replace(/ /g, '\\040'));
}

/** Unmounts a FUSE mount: fusermount (v2 or v3), then a lazy umount as the last resort. */
export async function forceUnmount(mountpoint: string): Promise<void> {
  for (const [cmd, args] of [
    ['fusermount', ['-uz', mountpoint]],
    ['fusermount3', ['-uz', mountpoint]],
    ['umount', ['-l', mountpoint]],
  ] as const) {
    try {
      await run(cmd, [...args]);
      if (!isMounted(mountpoint)) return;
    } catch (err) {
      log.debug({ op: 'unmount', cmd, err: String(err) }, 'unmount attempt failed');
    }
  }
  if (isMounted(mountpoint)) throw new SdError('IO', `could not unmount ${mountpoint}; close programs using it and run 'fusermount -uz ${mountpoint}'`);
}

/** Makes the mount point ready: creates it, cleans a stale mount, refuses a busy or non-empty one. */
export async function prepareMountpoint(mountpoint: string): Promise<void> {
  try {
    fs.statSync(mountpoint);
  } catch (err) {
    const code = systemCode(err);
    if (code === 'ENOTCONN') {
      log.info({ op: 'mount', mountpoint }, 'cleaning a stale mount left by a crash');
      await forceUnmount(mountpoint);
    } else if (code === 'ENOENT') {
      fs.mkdirSync(mountpoint, { recursive: true });
    } else {
      throw new SdError('PERMISSION', `mount point ${mountpoint} is not usable: ${code ?? String(err)}`);
    }
  }
  if (isMounted(mountpoint)) {
    throw new SdError('EXISTS', `${mountpoint} is already mounted (another 'sd mount'?); stop it or run 'sd umount ${mountpoint}'`);
  }
  if (!fs.statSync(mountpoint).isDirectory()) throw new SdError('NOT_A_DIRECTORY', `mount point ${mountpoint} is not a directory`);
  if (fs.readdirSync(mountpoint).length > 0) {
    throw new SdError('EXISTS', `mount point ${mountpoint} is not empty; choose an empty folder`);
  }
}

/** A folder of a local location that changed on disk: its path in the mount and on disk. */
export interface ChangedFolder {
  mountPath: string;
  realPath: string;
}

export interface Mounted {
  mountpoint: string;
  /** Whether the kernel can be told about outside changes (else they show after the timeouts). */
  readonly invalidates: boolean;
  /** Makes the kernel forget its cached names and attributes under these folders of the mount root. */
  invalidate(rootChildren: Iterable<string>): void;
  /**
   * Folders that changed on disk: the kernel forgets exactly the names and files in them
   * that changed (native binding); fuse-native can only drop the whole first folder.
   */
  invalidateFolders(folders: Iterable<ChangedFolder>): void;
  /** Resolves when the invalidations asked for so far reached the kernel. */
  invalidated(): Promise<void>;
  unmount(): Promise<void>;
}

/**
 * Which binding serves the mount: sdfs's own on libfuse3 (the default), or fuse-native on
 * libfuse2 with SD_FUSE=fuse-native (kept while the two are compared).
 */
export function fuseBinding(): 'native' | 'fuse-native' {
  return process.env.SD_FUSE === 'fuse-native' ? 'fuse-native' : 'native';
}

export async function mountFuse(mountpoint: string, ops: NativeOps, options: MountOptions): Promise<Mounted> {
  if (!fs.existsSync('/dev/fuse')) throw new SdError('IO', '/dev/fuse is missing; load the fuse module (modprobe fuse) or run where FUSE is available');
  await prepareMountpoint(mountpoint);
  return fuseBinding() === 'native' ? mountNative(mountpoint, ops, options) : mountFuseNative(mountpoint, ops, options);
}

/**
 * The mount options the kernel gets: permissions are checked by the kernel against the
 * attributes sdfs reports, as the caller; run as root, every user may use the tree
 * (allow_other), each with their own rights, and device nodes and setuid files work as on
 * the disk below (dev, suid: only root may ask for them).
 */
const KERNEL_OPTIONS = ['fsname=sdfs', 'subtype=sdfs', 'default_permissions', ...(process.getuid?.() === 0 ? ['allow_other', 'dev', 'suid'] : [])];

async function mountNative(mountpoint: string, ops: NativeOps, options: MountOptions): Promise<Mounted> {
  let session: NativeSession;
  try {
    session = NativeSession.mount(mountpoint, ops, { entryTimeout: options.entryTimeout, attrTimeout: options.attrTimeout, shortTimeout: options.shortTimeout, debug: options.debug ?? false, options: KERNEL_OPTIONS });
  } catch (err) {
    if (err instanceof SdError) throw err;
    throw new SdError('IO', `could not mount ${mountpoint}: ${(err as Error).message}; is fuse3 installed (npm run setup)?`);
  }
  const invalidator: Invalidator = {
    invalidate: (names) => {
      for (const name of names) session.invalidateName('/', name);
    },
    invalidateFolders: (folders) => {
      for (const f of folders) session.invalidateFolder(f.mountPath, f.realPath);
    },
    settled: async () => {
      while (!session.closed && session.invalidations().pending > 0) await new Promise((r) => setTimeout(r, 5));
    },
    close: async () => undefined,
  };
  return mounted(mountpoint, invalidator, async () => {
    // A plain unmount first; a lazy one when files are still open (the process is ending).
    if (isMounted(mountpoint)) await run('fusermount3', ['-u', mountpoint]).catch(() => undefined);
    if (isMounted(mountpoint)) await forceUnmount(mountpoint);
    await session.whenEnded(2000);
    session.close();
  });
}

async function mountFuseNative(mountpoint: string, ops: Ops, options: MountOptions): Promise<Mounted> {
  const fdsBefore = devFuseFds();
  const fuse = new SdFuse(mountpoint, ops, {
    timeout: false, // no timer per operation: ours answer at once, remote reads carry their own deadline
    autoCache: true, // keep the page cache across opens while mtime and size are unchanged
    attrTimeout: options.attrTimeout,
    entryTimeout: options.entryTimeout,
    acAttrTimeout: options.openRecheck,
    debug: options.debug ?? false,
  });
  await new Promise<void>((resolve, reject) => {
    fuse.mount((err) => (err ? reject(new SdError('IO', `could not mount ${mountpoint}: ${err.message}; is libfuse2 installed (npm run setup)?`)) : resolve()));
  });
  const kernel = KernelInvalidator.afterMount(fdsBefore);
  const invalidator: Invalidator | undefined = kernel && {
    invalidate: (names) => kernel.invalidate(names),
    // Only the root's node id is known: the device folder of each changed folder is dropped whole.
    invalidateFolders: (folders) => kernel.invalidate([...folders].map((f) => f.mountPath.split('/')[1]!).filter(Boolean)),
    settled: () => kernel.settled(),
    close: () => kernel.close(),
  };
  return mounted(mountpoint, invalidator, async () => {
    await new Promise<void>((resolve) => {
      fuse.unmount((err) => {
        if (err) log.warn({ op: 'unmount', err: String(err) }, 'unmount failed; trying harder');
        resolve();
      });
    });
    if (isMounted(mountpoint)) await forceUnmount(mountpoint);
  });
}

/** How a binding tells the kernel to forget what it cached. */
interface Invalidator {
  invalidate(rootChildren: Iterable<string>): void;
  invalidateFolders(folders: Iterable<ChangedFolder>): void;
  settled(): Promise<void>;
  close(): Promise<void>;
}

/** The mounted tree: invalidations go through `invalidator`, `unmount` ends the binding's session. */
function mounted(mountpoint: string, invalidator: Invalidator | undefined, unmount: () => Promise<void>): Mounted {
  // A name that is never cached: the kernel answers ENOENT when it takes notifications, and
  // anything else is logged as a warning.
  invalidator?.invalidate(['.sd-invalidation-probe']);
  log.info({ op: 'mount', mountpoint, binding: fuseBinding(), invalidation: invalidator !== undefined }, 'mounted');
  let unmounted = false;
  return {
    mountpoint,
    invalidates: invalidator !== undefined,
    invalidate(rootChildren) {
      invalidator?.invalidate(rootChildren);
    },
    invalidateFolders(folders) {
      invalidator?.invalidateFolders(folders);
    },
    async invalidated() {
      await invalidator?.settled();
    },
    async unmount() {
      if (unmounted) return;
      unmounted = true;
      await invalidator?.close();
      await unmount();
      log.info({ op: 'unmount', mountpoint }, 'unmounted');
    },
  };
}
