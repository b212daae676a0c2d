// The JS half of sdfs's own FUSE binding (src/fuse/native/sdfuse.cc, libfuse3's low-level
// API). The native side keeps the kernel's node ids and turns each request into a path;
// here each one is answered by the path-based operations of ops.ts, and the answer handed
// back with the request's id. Reads and writes of a handle with a real descriptor never
// come here: the native threads serve them.
import type { CachedBlocks, FuseStat, PathOps, StatFs } from './types.js';
import { log } from '../log.js';
import { UTIME_NOW, UTIME_OMIT, nativeAddon, timespecOfMs, type Timespec } from '../syscalls.js';
import { EIO, ENODATA, ENOENT, errnoOf } from './errno.js';

interface Binding {
  mount(mountpoint: string, options: string, entryTimeout: number, attrTimeout: number, maxThreads: number, debug: boolean, dispatch: Dispatch, shortTimeout: number, writeback: boolean, readOnly: boolean, inodeBudget: number): number;
  close(session: number): void;
  invalidate(session: number, folder: boolean, mountPath: string, nameOrRealPath: string): void;
  invalidations(session: number): [number, number, number, number, number, number];
  replyErr(session: number, id: number, errno: number): void;
  replyEntry(session: number, id: number, st: Float64Array, realDir?: string | null): void;
  replyAttr(session: number, id: number, st: Float64Array): void;
  /** backing: the id of another device's file's cached blocks (see backing()). */
  replyOpen(session: number, id: number, fh: number, fd: number, st: Float64Array | null, backing?: number): void;
  replyCreate(session: number, id: number, st: Float64Array, fh: number, fd: number): void;
  /** A read's or a write's byte count, or lseek's offset (negative: an errno). */
  replyCount(session: number, id: number, n: number): void;
  replyBuffer(session: number, id: number, data: Buffer): void;
  /** types: each name's DT_* (0: unknown); attrs: each one's stat as pack() writes it, one after another (mode 0: none). */
  replyNames(session: number, id: number, names: string[], realDir: string | null, types: Uint8Array, attrs: Float64Array | null): void;
  replyStatfs(session: number, id: number, values: number[]): void;
  /** Cached blocks the FUSE threads read themselves: the cache's data file (duplicated), the file's size, the block span; an id, or -errno. */
  backing(fd: number, size: number, span: number): number;
  /** A block verified in the data file (true), or about to be freed (false: returns once no read of it is left). */
  markBacking(id: number, index: number, ready: boolean): void;
  /** An absent block is on its way into the data file (true: reads of it wait for it on the FUSE thread), or will not come after all (false). */
  expectBacking(id: number, index: number, coming: boolean): void;
  /** Done with a backing: every block goes to JS again. */
  unbacking(id: number): void;
}

type Dispatch = (op: number, session: number, id: number, path: string | null, fh: number, a: number, b: unknown, c: unknown, uid: number, gid: number, umask: number, pid: number) => void;

/** Request kinds, as numbered in sdfuse.cc (enum Op). */
const Op = {
  LOOKUP: 1, GETATTR: 2, SETATTR: 3, READLINK: 4, MKNOD: 5, MKDIR: 6, UNLINK: 7, RMDIR: 8,
  SYMLINK: 9, RENAME: 10, LINK: 11, OPEN: 12, READ: 13, WRITE: 14, RELEASE: 15, FSYNC: 16, READDIR: 17,
  STATFS: 18, SETXATTR: 19, GETXATTR: 20, LISTXATTR: 21, REMOVEXATTR: 22, ACCESS: 23, CREATE: 24,
  LSEEK: 25, CREATED: 26, CLOSED: 27,
} as const;

/** libfuse's FUSE_SET_ATTR_* bits. */
const SET = { MODE: 1, UID: 2, GID: 4, SIZE: 8, ATIME: 16, MTIME: 32, ATIME_NOW: 128, MTIME_NOW: 256 } as const;
const ENOSYS = -38;
const ENXIO = -6;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const SEEK_HOLE = 4;

const loadBinding = () => nativeAddon<Binding>();

/**
 * A stat for the native side: [ino high 32 bits, ino low 32 bits, mode, nlink, uid, gid,
 * rdev, size, blksize, blocks, atime s, ns, mtime s, ns, ctime s, ns, device,
 * short-lived] — every value exact in a double. The device (0 when unknown) lets the hard
 * links of one real file share one kernel inode; short-lived ones get the short timeouts.
 */
const STAT_FIELDS = 18;
const packed = new Float64Array(STAT_FIELDS);
const NS = 1_000_000_000n;

function pack(st: FuseStat, out = packed, at = 0): Float64Array {
  const exact = st.exact;
  const ino = exact ? exact.ino : st.ino;
  out[at] = typeof ino === 'bigint' ? Number(ino >> 32n) : Math.floor(ino / 2 ** 32);
  out[at + 1] = typeof ino === 'bigint' ? Number(ino & 0xffffffffn) : ino % 2 ** 32;
  out[at + 2] = st.mode;
  out[at + 3] = st.nlink;
  out[at + 4] = st.uid;
  out[at + 5] = st.gid;
  out[at + 6] = st.rdev ?? 0;
  out[at + 7] = st.size;
  out[at + 8] = st.blksize ?? 4096;
  out[at + 9] = st.blocks ?? Math.ceil(st.size / 512);
  if (exact) {
    putNs(out, at + 10, exact.atimeNs);
    putNs(out, at + 12, exact.mtimeNs);
    putNs(out, at + 14, exact.ctimeNs);
  } else {
    putMs(out, at + 10, st.atime);
    putMs(out, at + 12, st.mtime);
    putMs(out, at + 14, st.ctime);
  }
  out[at + 16] = exact ? Number(exact.dev) : 0;
  out[at + 17] = st.shortLived ? 1 : 0;
  return out;
}

/** A listing's attributes, one packed stat after another; a name without any is all zeros (mode 0). */
function packAll(attrs: ReadonlyArray<FuseStat | undefined>): Float64Array {
  const out = new Float64Array(attrs.length * STAT_FIELDS);
  attrs.forEach((st, i) => st && pack(st, out, i * STAT_FIELDS));
  return out;
}

function putNs(out: Float64Array, at: number, ns: bigint): void {
  const s = ns >= 0n ? ns / NS : (ns - NS + 1n) / NS; // floor, also before 1970
  out[at] = Number(s);
  out[at + 1] = Number(ns - s * NS);
}

function putMs(out: Float64Array, at: number, t: Date | number): void {
  const { s, ns } = timespecOfMs(msOf(t));
  out[at] = s;
  out[at + 1] = ns;
}

function msOf(t: Date | number): number {
  return typeof t === 'number' ? t : t.getTime();
}

export interface NativeMountOptions {
  /** Seconds the kernel keeps names and attributes sdfs invalidates exactly (local files). */
  entryTimeout: number;
  attrTimeout: number;
  /** Seconds for the rest (virtual folders, other devices' trees). */
  shortTimeout: number;
  /** The kernel's writeback cache: writes gather in the page cache and come in big requests. */
  writeback: boolean;
  /** Every change answers EROFS: the binding makes no file itself. */
  readOnly: boolean;
  /** Kernel inodes kept before the least recently looked-up are forgotten (0: no limit). */
  inodeBudget: number;
  debug: boolean;
  /** Mount options for the kernel (fsname, default_permissions, ...). */
  options: string[];
}

/** A mounted session of the native binding. */
export class NativeSession {
  private ended = false;
  private readonly endWaiters: Array<() => void> = [];
  /** Open handles whose cached blocks the FUSE threads read: handle -> backing. */
  private readonly backings = new Map<number, { id: number; blocks: CachedBlocks }>();

  private constructor(
    private readonly b: Binding,
    readonly mountpoint: string,
    private readonly ops: PathOps,
    private session = -1,
  ) {}

  static mount(mountpoint: string, ops: PathOps, options: NativeMountOptions): NativeSession {
    const b = loadBinding();
    const s = new NativeSession(b, mountpoint, ops);
    s.session = b.mount(mountpoint, options.options.join(','), options.entryTimeout, options.attrTimeout, 16, options.debug, s.dispatch, options.shortTimeout, options.writeback, options.readOnly, options.inodeBudget);
    return s;
  }

  /** Drops a cached name (and everything cached below it). */
  invalidateName(parentPath: string, name: string): void {
    this.b.invalidate(this.session, false, parentPath, name);
  }

  /** A folder changed on disk: drops exactly its names and files that changed, and its own attributes and listing. */
  invalidateFolder(mountPath: string, realPath: string): void {
    this.b.invalidate(this.session, true, mountPath, realPath);
  }

  /**
   * Invalidations queued and not yet sent, sent, and refused by the kernel; the kernel
   * inodes held now, those offered to the kernel to forget (the inode budget), and whether
   * the kernel cannot be asked (before Linux 6.16: the budget is not kept).
   */
  invalidations(): { pending: number; sent: number; refused: number; inodes: number; pruneAsked: number; pruneUnsupported: boolean } {
    const [pending, sent, refused, inodes, pruneAsked, unsupported] = this.b.invalidations(this.session);
    return { pending, sent, refused, inodes, pruneAsked, pruneUnsupported: unsupported === 1 };
  }

  /** Whether the kernel ended the connection (unmounted, from here or outside). */
  get closed(): boolean {
    return this.ended;
  }

  /** Resolves when the connection ended, or after `ms`; says whether it ended. */
  async whenEnded(ms: number): Promise<boolean> {
    if (this.ended) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(this.ended), ms);
      this.endWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Frees the session after the kernel mount is gone; a connection still open (files held after a lazy unmount) no longer keeps the process alive. */
  close(): void {
    this.b.close(this.session);
  }

  private readonly dispatch: Dispatch = (op, sid, id, p, fh, a, b, c, uid, gid) => {
    const bind = this.b;
    /** Answers with an errno: 0 for done, negative for failed. */
    const err = (e: number) => bind.replyErr(sid, id, e);
    const ops = this.ops;
    try {
      if (op === Op.CLOSED) return this.onEnded();
      if (p === null && fh < 0) return err(ENOENT);
      const at = p ?? '';
      /** Answers with an entry; a plain local folder's real path goes with it (names below it are then looked up natively). */
      const entry = (where: string, st: FuseStat) => bind.replyEntry(sid, id, pack(st), (st.mode & S_IFMT) === S_IFDIR && !st.shortLived ? (ops.realDirOf(where) ?? null) : null);
      /** Answers a name-making request with the attributes of what it made. */
      const entryOf = (where: string) => (e: number) => {
        if (e < 0) return err(e);
        ops.getattr(where, (e2, st) => (e2 < 0 || !st ? err(e2 || EIO) : entry(where, st)));
      };
      switch (op) {
        case Op.LOOKUP:
          return ops.getattr(at, (e, st) => (e < 0 || !st ? err(e || EIO) : entry(at, st)));
        case Op.GETATTR:
          return this.attrOf(at, fh, (e, st) => (e < 0 || !st ? err(e || EIO) : bind.replyAttr(sid, id, pack(st))));
        case Op.SETATTR:
          return this.setattr(at, fh, c as number[], (e) => {
            if (e < 0) return err(e);
            this.attrOf(at, fh, (e2, st) => (e2 < 0 || !st ? err(e2 || EIO) : bind.replyAttr(sid, id, pack(st))));
          });
        case Op.READLINK:
          return ops.readlink(at, (e, target) => (e < 0 || target === undefined ? err(e || EIO) : bind.replyBuffer(sid, id, Buffer.from(target))));
        case Op.MKNOD:
          return ops.mknod(at, a, b as number, entryOf(at), { uid, gid });
        case Op.MKDIR:
          return ops.mkdir(at, a, entryOf(at), { uid, gid });
        case Op.UNLINK:
          return ops.unlink(at, err);
        case Op.RMDIR:
          return ops.rmdir(at, err);
        case Op.SYMLINK:
          return ops.symlink(c as string, at, entryOf(at), { uid, gid });
        case Op.RENAME:
          if (c === null) return err(ENOENT);
          return ops.rename(at, c as string, err, a);
        case Op.LINK:
          if (c === null) return err(ENOENT);
          return ops.link(at, c as string, entryOf(c as string));
        case Op.OPEN:
          return ops.open(at, a, (e, handle) => {
            if (e < 0 || handle === undefined) return err(e || EIO);
            const direct = ops.directFd(handle);
            if (direct >= 0) return bind.replyOpen(sid, id, handle, direct, null);
            this.attrOf(at, handle, (e2, st) => {
              const attrs = e2 < 0 || !st ? null : pack(st);
              ops.cachedBlocks(handle).then(
                (blocks) => bind.replyOpen(sid, id, handle, -1, attrs, blocks ? this.back(handle, blocks) : undefined),
                () => bind.replyOpen(sid, id, handle, -1, attrs),
              );
            });
          });
        case Op.CREATE:
          return ops.create(at, a, (e, handle) => this.answerCreate(sid, id, at, e, handle), { uid, gid });
        case Op.READ: {
          const buf = c as Buffer;
          return ops.read(at, fh, buf, a, b as number, (n) => bind.replyCount(sid, id, n));
        }
        case Op.WRITE: {
          const buf = c as Buffer;
          return ops.write(at, fh, buf, buf.length, b as number, (n) => bind.replyCount(sid, id, n));
        }
        case Op.CREATED:
          // A notice: the binding made this file on disk itself; nothing to answer.
          return ops.created(at, fh, a, b as number);
        case Op.LSEEK:
          // A file without a real descriptor here (another device's): all data, no holes.
          return this.attrOf(at, fh, (e, st) => {
            if (e < 0 || !st) return err(e || EIO);
            if (a >= st.size) return err(ENXIO);
            bind.replyCount(sid, id, b === SEEK_HOLE ? st.size : a);
          });
        case Op.RELEASE:
          this.unback(fh);
          if (c === true) ops.markWritten(fh);
          return ops.release(at, fh, err);
        case Op.FSYNC:
          if (c === true) ops.markWritten(fh);
          return ops.fsync(at, a !== 0, fh, err);
        case Op.READDIR:
          return ops.readdir(at, (e, l) => (e < 0 || !l ? err(e || EIO) : bind.replyNames(sid, id, l.names, ops.realDirOf(at) ?? null, l.types, l.attrs ? packAll(l.attrs) : null)));
        case Op.STATFS:
          return ops.statfs(at, (e, s?: StatFs) => (e < 0 || !s ? err(e || EIO) : bind.replyStatfs(sid, id, [s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail, s.namemax])));
        case Op.SETXATTR:
          return ops.setxattr(at, c as string, b as Buffer, 0, a, err);
        case Op.GETXATTR:
          return ops.getxattr(at, c as string, 0, (e, value) => (e < 0 ? err(e) : value ? bind.replyBuffer(sid, id, value) : err(ENODATA)));
        case Op.LISTXATTR:
          return ops.listxattr(at, (e, list) => (e < 0 || !list ? err(e || EIO) : bind.replyBuffer(sid, id, Buffer.from(list.map((n) => `${n}\0`).join('')))));
        case Op.REMOVEXATTR:
          return ops.removexattr(at, c as string, err);
        case Op.ACCESS:
          return ops.access(at, a, err);
        default:
          return err(ENOSYS);
      }
    } catch (e) {
      log.warn({ op: 'fuse', request: op, path: p, err: String(e), uid, gid }, 'a FUSE request failed');
      err(errnoOf(e));
    }
  };

  /** Answers a create JS made: the new file's attributes and its handle. */
  private answerCreate(sid: number, id: number, p: string, e: number, handle: number | undefined): void {
    const bind = this.b;
    if (e < 0 || handle === undefined) return bind.replyErr(sid, id, e || EIO);
    this.attrOf(p, handle, (e2, st) => {
      if (e2 < 0 || !st) {
        // Made but not statable: release the handle and say why.
        this.ops.release(p, handle, () => undefined);
        return bind.replyErr(sid, id, e2 || EIO);
      }
      bind.replyCreate(sid, id, pack(st), handle, this.ops.directFd(handle));
    });
  }

  /**
   * Lets the FUSE threads read a handle's verified cached blocks themselves (another
   * device's file): the backing's id for the open reply, or undefined when it cannot.
   */
  private back(handle: number, blocks: CachedBlocks): number | undefined {
    const id = this.b.backing(blocks.fd, blocks.size, blocks.span);
    if (id < 0) {
      log.debug({ op: 'backing', errno: id });
      blocks.close();
      return undefined;
    }
    this.backings.set(handle, { id, blocks });
    blocks.watch((index, ready) => this.b.markBacking(id, index, ready));
    blocks.expect?.((index, coming) => this.b.expectBacking(id, index, coming));
    return id;
  }

  /** A handle is released: its cached blocks are JS's again, and the cache may close the file. */
  private unback(handle: number): void {
    const backing = this.backings.get(handle);
    if (!backing) return;
    this.backings.delete(handle);
    backing.blocks.close();
    this.b.unbacking(backing.id);
  }

  private attrOf(p: string, fh: number, cb: (err: number, st?: FuseStat) => void): void {
    if (fh >= 0) this.ops.fgetattr(p, fh, cb);
    else this.ops.getattr(p, cb);
  }

  /**
   * setattr in the steps the path operations know: mode, owner, size, times. A time the
   * kernel leaves out (UTIME_OMIT) keeps its value; UTIME_NOW is the time now.
   */
  private setattr(p: string, fh: number, values: number[], cb: (err: number) => void): void {
    const [valid, mode, uid, gid, size, atimeS, atimeNs, mtimeS, mtimeNs, written] = values as [number, number, number, number, number, number, number, number, number, number];
    const ops = this.ops;
    if (written && fh >= 0) ops.markWritten(fh);
    const steps: Array<(next: (err: number) => void) => void> = [];
    if (valid & SET.MODE) steps.push((next) => ops.chmod(p, mode & 0o7777, next));
    if (valid & (SET.UID | SET.GID)) steps.push((next) => ops.chown(p, uid, gid, next));
    if (valid & SET.SIZE) steps.push((next) => (fh >= 0 ? ops.ftruncate(p, fh, size, next) : ops.truncate(p, size, next)));
    if (valid & (SET.ATIME | SET.MTIME)) {
      // Exact times: what the caller gave to the nanosecond, UTIME_NOW, or UTIME_OMIT for the one left out.
      const time = (set: number, now: number, s: number, ns: number): Timespec => (valid & now ? { s: 0, ns: UTIME_NOW } : valid & set ? { s, ns } : { s: 0, ns: UTIME_OMIT });
      const atime = time(SET.ATIME, SET.ATIME_NOW, atimeS, atimeNs);
      const mtime = time(SET.MTIME, SET.MTIME_NOW, mtimeS, mtimeNs);
      steps.push((next) =>
        this.attrOf(p, fh, (e, st) => {
          if (e < 0 || !st) return next(e || EIO);
          const ms = (t: Timespec, old: Date | number) => (t.ns === UTIME_NOW ? Date.now() : t.ns === UTIME_OMIT ? msOf(old) : t.s * 1000 + t.ns / 1e6);
          const approx: [number, number] = [ms(atime, st.atime), ms(mtime, st.mtime)];
          ops.utimensNs(p, atime, mtime, approx, next);
        }),
      );
    }
    const run = (i: number): void => {
      if (i === steps.length) return cb(0);
      steps[i]!((e) => (e < 0 ? cb(e) : run(i + 1)));
    };
    run(0);
  }

  private onEnded(): void {
    this.ended = true;
    for (const wake of this.endWaiters.splice(0)) wake();
  }
}
