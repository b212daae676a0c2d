// Mounting and unmounting: checks the mount point (stale mounts left by a crash are
// cleaned, busy or non-empty ones refused), mounts sdfs's own binding (lowlevel.ts) with
// the options that make the layer fast and POSIX for every caller, tells the kernel what
// changed, and unmounts cleanly.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { SdError, systemCode } from '../errors.js';
import { log } from '../log.js';
import { config } from '../config.js';
import { NativeSession } from './lowlevel.js';
import type { PathOps } from './types.js';

const run = promisify(execFile);

export interface MountOptions {
  /** Seconds the kernel trusts attributes and names of local files (exactly invalidated with the native binding). */
  attrTimeout: number;
  entryTimeout: number;
  /** Seconds for what cannot be invalidated exactly (virtual folders, other devices' trees). */
  shortTimeout: number;
  /** Every change answers EROFS. */
  readOnly?: boolean;
  /** Kernel inodes kept before the least recently looked-up are forgotten (default config.mountInodeBudget; 0: no limit). */
  inodeBudget?: number;
  debug?: boolean;
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
  /** Makes the kernel forget its cached names and attributes under these folders of the mount root. */
  invalidate(rootChildren: Iterable<string>): void;
  /** Folders that changed on disk: the kernel forgets exactly the names and files in them that changed. */
  invalidateFolders(folders: Iterable<ChangedFolder>): void;
  /** Resolves when the invalidations asked for so far reached the kernel. */
  invalidated(): Promise<void>;
  /** The kernel inodes the mount holds now and those offered to the kernel to forget so far (the inode budget). */
  inodes(): { held: number; pruneAsked: number; pruneUnsupported: boolean };
  unmount(): Promise<void>;
}

/**
 * The mount options the kernel gets: permissions are checked by the kernel against the
 * attributes sdfs reports, as the caller; run as root, every user may use the tree
 * (allow_other), each with their own rights, and device nodes and setuid files work as on
 * the disk below (dev, suid: only root may ask for them).
 */
const KERNEL_OPTIONS = ['fsname=sdfs', 'subtype=sdfs', 'default_permissions', ...(process.getuid?.() === 0 ? ['allow_other', 'dev', 'suid'] : [])];

export async function mountFuse(mountpoint: string, ops: PathOps, options: MountOptions): Promise<Mounted> {
  if (!fs.existsSync('/dev/fuse')) throw new SdError('IO', '/dev/fuse is missing; load the fuse module (modprobe fuse) or run where FUSE is available');
  await prepareMountpoint(mountpoint);
  let session: NativeSession;
  try {
    // SD_FUSE_WRITEBACK=1: the kernel's writeback cache, only for trees nothing else writes
    // (the kernel then trusts its own size and mtime of a file it holds over the disk's).
    session = NativeSession.mount(mountpoint, ops, { entryTimeout: options.entryTimeout, attrTimeout: options.attrTimeout, shortTimeout: options.shortTimeout, writeback: process.env.SD_FUSE_WRITEBACK === '1', readOnly: options.readOnly ?? false, inodeBudget: options.inodeBudget ?? config.mountInodeBudget, debug: options.debug ?? false, options: KERNEL_OPTIONS });
  } catch (err) {
    if (err instanceof SdError) throw err;
    throw new SdError('IO', `could not mount ${mountpoint}: ${(err as Error).message}; is fuse3 installed (npm run setup)?`);
  }
  log.info({ op: 'mount', mountpoint }, 'mounted');
  let unmounted = false;
  return {
    mountpoint,
    invalidate(rootChildren) {
      for (const name of rootChildren) session.invalidateName('/', name);
    },
    invalidateFolders(folders) {
      for (const f of folders) session.invalidateFolder(f.mountPath, f.realPath);
    },
    async invalidated() {
      while (!session.closed && session.invalidations().pending > 0) await new Promise((r) => setTimeout(r, 5));
    },
    inodes() {
      const { inodes, pruneAsked, pruneUnsupported } = session.invalidations();
      return { held: inodes, pruneAsked, pruneUnsupported };
    },
    async unmount() {
      if (unmounted) return;
      unmounted = true;
      // A plain unmount first; a lazy one when files are still open (the process is ending).
      if (isMounted(mountpoint)) await run('fusermount3', ['-u', mountpoint]).catch(() => undefined);
      if (isMounted(mountpoint)) await forceUnmount(mountpoint);
      await session.whenEnded(2000);
      session.close();
      log.info({ op: 'unmount', mountpoint }, 'unmounted');
    },
  };
}
