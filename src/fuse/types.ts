// The shapes the mount's path operations (ops.ts) answer with, and the operations the
// native binding's JS half (lowlevel.ts) calls: errors are negative errnos, answers go
// to the callback.
import type { Timespec } from '../syscalls.js';

export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  rdev?: number;
  blksize?: number;
  blocks?: number;
  atime: Date | number;
  mtime: Date | number;
  ctime: Date | number;
  /**
   * A real file's exact inode number, device and times (ns since the epoch), for sdfs's own
   * binding; dev 0 when the attributes are a view of the file (not one of its names).
   */
  exact?: { ino: bigint; dev: bigint; atimeNs: bigint; mtimeNs: bigint; ctimeNs: bigint };
  /** sdfs cannot say exactly when these attributes change (virtual folders, other devices' trees): the kernel keeps them only briefly. */
  shortLived?: boolean;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/**
 * A folder's names as readdir answers them, each with what the kernel can be told of it
 * without a lookup: its type (d_type: `ls -R`, `find` stat only names of unknown type) and,
 * where sdfs has them at hand, its attributes (readdirplus gives them: `ls -l`, `du` look
 * up none; their inode number is d_ino). Never a guess: what sdfs is unsure of stays unknown.
 */
export interface Listing {
  names: string[];
  /** Each name's DT_* (listing.ts); 0 (DT_UNKNOWN) when not known. */
  types: Uint8Array;
  /** Each name's attributes, exactly as getattr gives them; undefined when not at hand. */
  attrs?: Array<FuseStat | undefined>;
}

/** Who asked: the uid and gid of the calling process. */
export interface Caller {
  uid: number;
  gid: number;
}

/**
 * Another device's file as far as its blocks are in the disk cache: the cache's data file
 * (block i at i × span), open while watched, and which blocks are verified there.
 */
export interface CachedBlocks {
  fd: number;
  size: number;
  span: number;
  /**
   * Calls mark(i, true) for each block verified from now on (fetched and checked, or read
   * back from the cache and checked), and mark(i, false) before a block's bytes are freed
   * (mark must not return before no read of it is left).
   */
  watch(mark: (index: number, ready: boolean) => void): void;
  /**
   * Calls coming(i, true) when an absent block starts on its way into the cache (a
   * background fetch: a read of it may wait for its mark rather than go to JS), and
   * coming(i, false) when it will not come after all (failed, or not cached).
   */
  expect?(coming: (index: number, coming: boolean) => void): void;
  /** Stops the marks and lets the cache close the file. */
  close(): void;
}

/** The path-based operations of the mount (MountOps.handlers()). */
export interface PathOps {
  statfs(path: string, cb: (err: number, st?: StatFs) => void): void;
  getattr(path: string, cb: (err: number, st?: FuseStat) => void): void;
  fgetattr(path: string, fd: number, cb: (err: number, st?: FuseStat) => void): void;
  access(path: string, mode: number, cb: (err: number) => void): void;
  open(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
  create(path: string, mode: number, cb: (err: number, fd?: number) => void, caller?: Caller): void;
  utimens(path: string, atime: number, mtime: number, cb: (err: number) => void): void;
  /** utimensat to the nanosecond (UTIME_NOW, UTIME_OMIT); approxMs: the same in ms, for trees that keep ms. */
  utimensNs(path: string, atime: Timespec, mtime: Timespec, approxMs: [number, number], cb: (err: number) => void): void;
  release(path: string, fd: number, cb: (err: number) => void): void;
  read(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
  write(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
  readdir(path: string, cb: (err: number, listing?: Listing) => void): void;
  setxattr(path: string, name: string, value: Buffer, position: number, flags: number, cb: (err: number) => void): void;
  getxattr(path: string, name: string, position: number, cb: (err: number, value?: Buffer | null) => void): void;
  listxattr(path: string, cb: (err: number, list?: string[]) => void): void;
  removexattr(path: string, name: string, cb: (err: number) => void): void;
  flush(path: string, fd: number, cb: (err: number) => void): void;
  fsync(path: string, datasync: boolean, fd: number, cb: (err: number) => void): void;
  truncate(path: string, size: number, cb: (err: number) => void): void;
  ftruncate(path: string, fd: number, size: number, cb: (err: number) => void): void;
  readlink(path: string, cb: (err: number, target?: string) => void): void;
  chown(path: string, uid: number, gid: number, cb: (err: number) => void): void;
  chmod(path: string, mode: number, cb: (err: number) => void): void;
  mknod(path: string, mode: number, dev: number, cb: (err: number) => void, caller?: Caller): void;
  unlink(path: string, cb: (err: number) => void): void;
  /** flags: RENAME_NOREPLACE, RENAME_EXCHANGE. */
  rename(src: string, dest: string, cb: (err: number) => void, flags?: number): void;
  link(src: string, dest: string, cb: (err: number) => void): void;
  symlink(target: string, path: string, cb: (err: number) => void, caller?: Caller): void;
  mkdir(path: string, mode: number, cb: (err: number) => void, caller?: Caller): void;
  rmdir(path: string, cb: (err: number) => void): void;
  /**
   * A file the binding made on disk itself in a local folder, opened as fd: recorded and
   * its handle kept as create() would. existed: 0 new, 1 opened as it was, 2 and truncated.
   */
  created(path: string, fd: number, mode: number, existed: number): void;
  /** The real descriptor behind a handle when reads and writes can go straight to it (natively), else -1. */
  directFd(fh: number): number;
  /** Another device's file: its blocks in the disk cache, for the binding to read verified ones itself; else undefined. */
  cachedBlocks(fh: number): Promise<CachedBlocks | undefined>;
  /** Data was written straight to the handle's descriptor (the index is told at fsync or release). */
  markWritten(fh: number): void;
  /** A local folder's real path (its listing's attributes are read there, natively), else undefined. */
  realDirOf(path: string): string | undefined;
}
