// The FUSE operations of the mount. Reads go straight to real file descriptors; every
// namespace change goes through the ActionManager (the `writer`); data written through
// a handle lands in the real file and is re-identified on release/fsync. Virtual folders
// (root, devices, .content) are read-only. Everything here is synchronous and small:
// these callbacks run on the one JS thread.
import fs from 'node:fs';
import path from 'node:path';
import { getAttributeSync, listAttributesSync, removeAttributeSync, setAttributeSync } from '@napi-rs/xattr';
import { log } from '../log.js';
import type { FsOp, FsOpResult } from '../vdfs/actions/fs-op.js';
import type { Entry } from '../vdfs/entries.js';
import type { Location } from '../vdfs/locations.js';
import type { Namespace } from '../vdfs/namespace.js';
import { EACCES, EBADF, EINVAL, EIO, EISDIR, ENODATA, ENOENT, ENOTSUP, EPERM, EROFS, EXDEV, errnoOf } from './errno.js';
import { fromStats, readOnly, virtualDir, virtualLink } from './stat.js';
import { RemoteTree, type RemoteFiles, type RemoteNode, type StagedHandle } from './remote.js';
import type { RemoteChanges } from '../vdfs/remote-changes.js';
import { Tree, type Node } from './tree.js';
import type { Caller, FuseStat, Listing, PathOps, StatFs } from './types.js';
import { listingOfDirents, withDots } from './listing.js';
import type { Timespec } from '../syscalls.js';
import type { Owner } from '../vdfs/actions/fs-op.js';
import { Guardian } from '../guardian/guardian.js';
import { runSearch } from '../vdfs/search/run.js';

/** Executes namespace changes on a local location (the ActionManager). */
export interface FsWriter {
  /** Returns the open descriptor of a `create` given `flags`. */
  applyFsOp(location: Location, op: FsOp, actor: string): FsOpResult | void;
}

const SD_XATTRS = ['user.sd.content_id', 'user.sd.sdpath', 'user.sd.copies', 'user.sd.policy', 'user.sd.at_risk', 'user.sd.tags'] as const;
/** The one attribute of sdfs that can be set: `setfattr -n user.sd.tags -v "tax,2025"` tags the file. */
const TAGS_XATTR = 'user.sd.tags';
/** `user.sd.meta.<key>`: the entry's shared metadata key (sd meta), readable and settable on any device's file. */
const META_XATTR_PREFIX = 'user.sd.meta.';
const W_OK = fs.constants.W_OK;
/** Attributes are read exact: 64-bit inode numbers, times to the nanosecond. */
const BIGINT = { bigint: true } as const;
/** Running as root: what a caller makes is given to them (else everything is the mount user's, as with any FUSE file system). */
const AS_ROOT = process.getuid?.() === 0;

function ownerOf(caller: Caller | undefined): Owner | undefined {
  return caller && AS_ROOT && (caller.uid !== 0 || caller.gid !== 0) ? { uid: caller.uid, gid: caller.gid } : undefined;
}

interface Handle {
  /** The real descriptor; -1 until a deferred file of another device is fetched (see realFd). */
  fd: number;
  location?: Location;
  rel: string;
  written: boolean;
  /** A pending file in another device's tree: released, its copy job is queued. */
  staged?: StagedHandle;
}

export class MountOps {
  private readonly tree: Tree;
  private readonly guardian: Guardian;
  private readonly remote: RemoteTree;
  private readonly handles = new Map<number, Handle>();
  private readonly startedAt = Date.now();

  constructor(
    private readonly ns: Namespace,
    private readonly localDeviceId: string,
    private readonly writer: FsWriter,
    private readonly statfsPath: string,
    remoteFiles?: RemoteFiles,
    /** Changes to other devices' trees (absent on a read-only mount: EROFS there too). */
    remoteChanges?: RemoteChanges,
  ) {
    this.guardian = new Guardian(ns.db, localDeviceId);
    this.tree = new Tree(ns, localDeviceId, this.guardian, (query, limit) => runSearch(ns.db, query, limit, { atRisk: () => this.guardian.atRiskContentIds() }).hits.map((h) => h.entry.id));
    this.remote = new RemoteTree(ns, remoteFiles, remoteChanges);
  }

  /** The node when it is in another device's tree (changes there are the RemoteTree's). */
  private remoteNode(p: string): RemoteNode | undefined {
    const node = this.node(p);
    return node?.kind === 'remote' ? node : undefined;
  }

  /** Runs a change on another device's tree when p is in one; returns whether it was. */
  private onRemote(p: string, change: (node: RemoteNode) => number, cb: (err: number) => void): boolean {
    const node = this.remoteNode(p);
    if (!node) return false;
    runRemote(node, change, cb);
    return true;
  }

  /** The operations the binding calls; with SD_LOG=debug every call is logged with its result and time. */
  handlers(): PathOps {
    const bound: Record<string, unknown> = {
      directFd: (fd: number) => this.directFd(fd),
      cachedBlocks: (fd: number) => this.remote.cachedBlocks(fd),
      markWritten: (fd: number) => this.markWritten(fd),
      realDirOf: (p: string) => this.realDirOf(p),
    };
    const debug = log.isLevelEnabled('debug');
    for (const name of OP_NAMES) {
      const fn = (this as unknown as Record<string, (...args: unknown[]) => void>)[name]!.bind(this);
      bound[name] = debug ? traced(name, fn) : fn;
    }
    return bound as unknown as PathOps;
  }

  /** The real descriptor behind a handle when its reads and writes can go straight to it (the native binding's fast path), else -1. */
  directFd(fd: number): number {
    const handle = this.handles.get(fd);
    return handle && handle.fd >= 0 && !this.remote.isDeferred(fd) ? handle.fd : -1;
  }

  /** Data was written to a handle's descriptor without passing through write(): the index is told at fsync or release. */
  markWritten(fd: number): void {
    const handle = this.handles.get(fd);
    if (handle) handle.written = true;
  }

  /** A folder of a local location: its real path (readdirplus reads its names' attributes there). */
  realDirOf(p: string): string | undefined {
    const node = this.node(p);
    return node?.kind === 'local' ? node.real : undefined;
  }

  /** New files in other devices' trees that a stopped process left pending: sent now (see RemoteTree.recoverPending). */
  recoverPending(): ReturnType<RemoteTree['recoverPending']> {
    return this.remote.recoverPending();
  }

  /** Open handles, for a clean shutdown. */
  closeAll(): void {
    for (const [fd, handle] of this.handles) {
      if (handle.fd >= 0) this.releaseHandle(fd);
      else this.handles.delete(fd);
    }
  }

  private node(p: string): Node | undefined {
    return this.tree.resolve(p);
  }

  private local(p: string): Extract<Node, { kind: 'local' }> | number {
    const node = this.node(p);
    if (!node) {
      // A new name: writable only inside a location; the virtual folders take none.
      const parent = this.node(path.posix.dirname(p));
      return parent && parent.kind !== 'local' ? EROFS : ENOENT;
    }
    if (node.kind === 'local') return node;
    return EROFS; // root, device folders, .content, .tags and other devices' trees are not writable here
  }

  /** Runs one namespace change; a location root takes only attribute changes (rootAllowed). */
  private apply(p: string, make: (rel: string) => FsOp, cb: (err: number) => void, rootAllowed = false): void {
    const node = this.local(p);
    if (typeof node === 'number') return cb(node);
    if (node.rel.length === 0 && !rootAllowed) return cb(EPERM); // a location root is not created, renamed or removed here
    try {
      this.writer.applyFsOp(node.location, make(node.rel.join('/')), 'fuse');
      cb(0);
    } catch (err) {
      cb(errnoOf(err));
    }
  }

  // --- attributes and listings -------------------------------------------------

  getattr(p: string, cb: (err: number, st?: FuseStat) => void): void {
    const node = this.node(p);
    if (!node) return cb(ENOENT);
    try {
      switch (node.kind) {
        case 'local':
          return cb(0, fromStats(fs.lstatSync(node.real, BIGINT)));
        case 'content':
          return cb(0, readOnly(fromStats(fs.statSync(node.real, BIGINT))));
        case 'remote': {
          const st = this.remote.getattr(node);
          return typeof st === 'number' ? cb(st) : cb(0, st);
        }
        case 'link':
          return cb(0, virtualLink(p, node.target, this.startedAt));
        default:
          return cb(0, virtualDir(p, this.startedAt));
      }
    } catch (err) {
      return cb(errnoOf(err));
    }
  }

  fgetattr(p: string, fd: number, cb: (err: number, st?: FuseStat) => void): void {
    const handle = this.handles.get(fd);
    if (!handle || handle.fd < 0) return this.getattr(p, cb);
    try {
      const node = this.node(p);
      const st = fromStats(fs.fstatSync(handle.fd, BIGINT));
      cb(0, node?.kind === 'content' ? readOnly(st) : st);
    } catch (err) {
      cb(errnoOf(err));
    }
  }

  /** Every listing starts with . and .. (`ls -a`): libfuse2 passes on only the names given. */
  readdir(p: string, cb: (err: number, listing?: Listing) => void): void {
    const listing = this.listing(p);
    return typeof listing === 'number' ? cb(listing) : cb(0, withDots(listing));
  }

  private listing(p: string): Listing | number {
    const node = this.node(p);
    if (!node) return ENOENT;
    try {
      if (node.kind === 'local') return listingOfDirents(fs.readdirSync(node.real, { withFileTypes: true }));
      if (node.kind === 'remote') return this.remote.readdir(node);
      if (node.kind === 'content') return -20; // ENOTDIR
      return this.tree.virtualChildren(node);
    } catch (err) {
      return errnoOf(err);
    }
  }

  readlink(p: string, cb: (err: number, target?: string) => void): void {
    const tagged = this.node(p);
    if (tagged?.kind === 'link') return cb(0, tagged.target);
    if (tagged?.kind === 'remote') {
      const entry = this.remote.entryOf(tagged);
      if (entry?.kind !== 'symlink') return cb(entry ? -22 : ENOENT); // EINVAL: not a link
      const target = this.ns.linkTarget(entry);
      // A link mirrored from a log written before targets were logged: listed, not readable.
      return target === undefined ? cb(EIO) : cb(0, target);
    }
    const node = this.local(p);
    if (typeof node === 'number') return cb(node === EROFS ? -22 : node);
    try {
      cb(0, fs.readlinkSync(node.real));
    } catch (err) {
      cb(errnoOf(err));
    }
  }

  access(p: string, mode: number, cb: (err: number) => void): void {
    const node = this.node(p);
    if (!node) return cb(ENOENT);
    try {
      if (node.kind === 'local') fs.accessSync(node.real, mode);
      else if (node.kind === 'content') {
        if (mode & W_OK) return cb(EROFS);
        fs.accessSync(node.real, mode);
      } else if (mode & W_OK && !(node.kind === 'remote' && this.remote.writable)) return cb(EROFS);
      cb(0);
    } catch (err) {
      cb(errnoOf(err));
    }
  }

  statfs(p: string, cb: (err: number, st?: StatFs) => void): void {
    const node = this.node(p);
    const target = node?.kind === 'local' ? node.location.rootPath : node?.kind === 'content' ? node.real : this.statfsPath;
    try {
      const s = fs.statfsSync(target);
      cb(0, { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, fsid: 0, flag: 0, namemax: 255 });
    } catch (err) {
      cb(errnoOf(err));
    }
  }

  // --- file handles ------------------------------------------------------------

  open(p: string, flags: number, cb: (err: number, fd?: number) => void): void {
    const node = this.node(p);
    if (!node) return cb(ENOENT);
    const writing = (flags & 3) !== fs.constants.O_RDONLY || (flags & fs.constants.O_TRUNC) !== 0;
    try {
      if (node.kind === 'content') {
        if (writing) return cb(EROFS);
        const fd = fs.openSync(node.real, flags);
        this.handles.set(fd, { fd, rel: '', written: false });
        return cb(0, fd);
      }
      if (node.kind === 'remote') {
        return this.remote.openFile(node, flags, (err, fd, staged) => {
          if (err < 0) return cb(err);
          if (!this.remote.has(fd!)) this.handles.set(fd!, { fd: this.remote.isDeferred(fd!) ? -1 : fd!, rel: '', written: false, staged });
          cb(0, fd);
        });
      }
      if (node.kind !== 'local') return cb(EISDIR);
      const fd = fs.openSync(node.real, flags & ~(fs.constants.O_CREAT | fs.constants.O_EXCL));
      // O_TRUNC changed the file already: it must be re-identified on release.
      this.handles.set(fd, { fd, location: node.location, rel: node.rel.join('/'), written: (flags & fs.constants.O_TRUNC) !== 0 });
      cb(0, fd);
    } catch (err) {
      cb(errnoOf(err));
    }
  }

  create(p: string, mode: number, cb: (err: number, fd?: number) => void, caller?: Caller): void {
    const remote = this.remoteNode(p);
    if (remote) {
      try {
        const made = this.remote.create(remote, mode);
        if (typeof made === 'number') return cb(made);
        this.handles.set(made[0], { fd: made[0], rel: '', written: true, staged: made[1] });
        return cb(0, made[0]);
      } catch (err) {
        return cb(errnoOf(err));
      }
    }
    const node = this.local(p);
    if (typeof node === 'number') return cb(node);
    try {
      const rel = node.rel.join('/');
      // The descriptor the create opened is the handle: no close and open again per new file.
      const created = this.writer.applyFsOp(node.location, { op: 'create', path: rel, mode, flags: fs.constants.O_RDWR, owner: ownerOf(caller) }, 'fuse');
      const fd = created?.fd ?? fs.openSync(node.real, fs.constants.O_RDWR);
      this.handles.set(fd, { fd, location: node.location, rel, written: false });
      cb(0, fd);
    } catch (err) {
      cb(errnoOf(err));
    }
  }

  /** A file the binding made itself in a local folder (its fast path for create): recorded, and its handle kept. */
  created(p: string, fd: number, mode: number, existed: number): void {
    const node = this.local(p);
    if (typeof node === 'number') {
      log.warn({ op: 'create', path: p }, 'a file made by the binding is not in a local folder; it is not indexed until the watcher sees it');
      this.handles.set(fd, { fd, rel: '', written: false });
      return;
    }
    const rel = node.rel.join('/');
    this.handles.set(fd, { fd, location: node.location, rel, written: existed === 2 });
    if (existed) return;
    try {
      this.writer.applyFsOp(node.location, { op: 'created', path: rel, mode }, 'fuse');
    } catch (err) {
      log.warn({ op: 'create', path: p, err: String(err) }, 'could not record a new file; the watcher will');
    }
  }

  read(_p: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void {
    if (this.remote.has(fd)) return this.remote.read(fd, buf, len, pos, cb);
    this.realFd(fd, cb, (real) => cb(fs.readSync(real, buf, 0, len, pos)));
  }

  write(_p: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void {
    this.realFd(fd, cb, (real, handle) => {
      const n = fs.writeSync(real, buf, 0, len, pos);
      handle.written = true;
      cb(n);
    });
  }

  ftruncate(_p: string, fd: number, size: number, cb: (err: number) => void): void {
    this.realFd(fd, cb, (real, handle) => {
      fs.ftruncateSync(real, size);
      handle.written = true;
      cb(0);
    });
  }

  /**
   * Runs `use` with a handle's real descriptor, once a file of another device opened to
   * change in place has been fetched (its first read or write waits for that); errors
   * answer with their errno.
   */
  private realFd(fd: number, cb: (err: number) => void, use: (real: number, handle: Handle) => void): void {
    const handle = this.handles.get(fd);
    if (!handle) return cb(EBADF);
    const run = () => {
      try {
        use(handle.fd, handle);
      } catch (err) {
        cb(errnoOf(err));
      }
    };
    if (handle.fd >= 0) return run();
    this.remote.stagedOf(fd).then(
      (staged) => {
        handle.fd = staged.fd;
        handle.staged = staged;
        run();
      },
      (err: unknown) => {
        log.warn({ op: 'open', remote: true, err: String(err) }, 'cannot fetch the file to change it');
        cb(errnoOf(err) || EIO);
      },
    );
  }

  flush(_p: string, _fd: number, cb: (err: number) => void): void {
    cb(0);
  }

  fsync(_p: string, datasync: boolean, fd: number, cb: (err: number) => void): void {
    if (this.remote.has(fd) || this.handles.get(fd)?.fd === -1) return cb(0); // nothing written through it: nothing to sync
    this.realFd(fd, cb, (real) => {
      if (datasync) fs.fdatasyncSync(real);
      else fs.fsyncSync(real);
      this.settle(fd);
      cb(0);
    });
  }

  release(_p: string, fd: number, cb: (err: number) => void): void {
    if (this.remote.has(fd)) {
      this.remote.release(fd);
      return cb(0);
    }
    if (!this.remote.isDeferred(fd)) return cb(this.releaseHandle(fd));
    // A file of another device opened to change in place: sent when its bytes were fetched (once they are).
    const fetched = this.remote.dropDeferred(fd);
    if (!fetched) {
      this.handles.delete(fd);
      return cb(0);
    }
    fetched.then(
      () => cb(this.releaseHandle(fd)),
      () => {
        this.handles.delete(fd); // the fetch failed, and the writes with it: nothing to send
        cb(0);
      },
    );
  }

  private releaseHandle(fd: number): number {
    try {
      this.settle(fd);
    } catch (err) {
      log.warn({ op: 'release', err: String(err) }, 'could not update the index after a write');
    }
    const handle = this.handles.get(fd);
    const staged = handle?.staged;
    this.handles.delete(fd);
    try {
      fs.closeSync(handle?.fd ?? fd);
    } catch (err) {
      return errnoOf(err);
    }
    if (staged) this.remote.released(staged);
    return 0;
  }

  /** Tells the index about data written through a handle. */
  private settle(fd: number): void {
    const handle = this.handles.get(fd);
    if (!handle?.written || !handle.location) return;
    handle.written = false;
    this.writer.applyFsOp(handle.location, { op: 'written', path: handle.rel }, 'fuse');
  }

  // --- namespace changes (all through the ActionManager) -----------------------

  truncate(p: string, size: number, cb: (err: number) => void): void {
    if (this.onRemote(p, (n) => this.remote.truncate(n, size), cb)) return;
    this.apply(p, (rel) => ({ op: 'truncate', path: rel, size }), cb);
  }

  mkdir(p: string, mode: number, cb: (err: number) => void, caller?: Caller): void {
    if (this.onRemote(p, (n) => this.remote.mkdir(n, mode), cb)) return;
    this.apply(p, (rel) => ({ op: 'mkdir', path: rel, mode, owner: ownerOf(caller) }), cb);
  }

  /** A fifo, socket or device node (as root); another device's tree takes none (its log carries files, folders and links). */
  mknod(p: string, mode: number, dev: number, cb: (err: number) => void, caller?: Caller): void {
    if (this.remoteNode(p)) return cb(this.remote.writable ? EPERM : EROFS);
    this.apply(p, (rel) => ({ op: 'mknod', path: rel, mode, dev, owner: ownerOf(caller) }), cb);
  }

  rmdir(p: string, cb: (err: number) => void): void {
    if (this.onRemote(p, (n) => this.remote.rmdir(n), cb)) return;
    this.apply(p, (rel) => ({ op: 'rmdir', path: rel }), cb);
  }

  unlink(p: string, cb: (err: number) => void): void {
    if (this.onRemote(p, (n) => this.remote.unlink(n), cb)) return;
    this.apply(p, (rel) => ({ op: 'unlink', path: rel }), cb);
  }

  symlink(target: string, p: string, cb: (err: number) => void, caller?: Caller): void {
    this.apply(p, (rel) => ({ op: 'symlink', path: rel, target, owner: ownerOf(caller) }), cb);
  }

  chmod(p: string, mode: number, cb: (err: number) => void): void {
    if (this.onRemote(p, (n) => this.remote.chmod(n, mode), cb)) return;
    this.apply(p, (rel) => ({ op: 'chmod', path: rel, mode }), cb, true);
  }

  chown(p: string, uid: number, gid: number, cb: (err: number) => void): void {
    this.apply(p, (rel) => ({ op: 'chown', path: rel, uid, gid }), cb, true);
  }

  utimens(p: string, atime: number, mtime: number, cb: (err: number) => void): void {
    if (this.onRemote(p, (n) => this.remote.utimens(n, atime, mtime), cb)) return;
    this.apply(p, (rel) => ({ op: 'utimens', path: rel, atimeMs: atime, mtimeMs: mtime }), cb, true);
  }

  /**
   * utimensat to the nanosecond, with UTIME_NOW and UTIME_OMIT; `approxMs` are the same
   * times in ms (for another device's tree, whose log keeps ms).
   */
  utimensNs(p: string, atime: Timespec, mtime: Timespec, approxMs: [number, number], cb: (err: number) => void): void {
    if (this.onRemote(p, (n) => this.remote.utimens(n, approxMs[0], approxMs[1]), cb)) return;
    this.apply(p, (rel) => ({ op: 'utimens', path: rel, atimeMs: approxMs[0], mtimeMs: approxMs[1], ns: { atime, mtime } }), cb, true);
  }

  /** flags: RENAME_NOREPLACE or RENAME_EXCHANGE (local trees only; another device's answers EINVAL). */
  rename(src: string, dest: string, cb: (err: number) => void, flags = 0): void {
    const from = this.remoteNode(src);
    const to = this.remoteNode(dest);
    if (flags && (from || to)) return cb(this.remote.writable ? EINVAL : EROFS);
    if (from && to) return runRemote(from, (n) => this.remote.rename(n, to), cb);
    if (from || to) return cb(from && !this.node(dest) && !this.node(path.posix.dirname(dest)) ? ENOENT : EXDEV); // across devices: tools copy, then delete
    this.twoPaths(src, dest, (from, to) => ({ op: 'rename', from, to, flags: flags || undefined }), cb);
  }

  link(src: string, dest: string, cb: (err: number) => void): void {
    this.twoPaths(src, dest, (from, to) => ({ op: 'link', from, to }), cb);
  }

  /** rename and link stay inside one location of this device; elsewhere they answer EXDEV. */
  private twoPaths(src: string, dest: string, make: (from: string, to: string) => FsOp, cb: (err: number) => void): void {
    const a = this.local(src);
    if (typeof a === 'number') return cb(a);
    const b = this.local(dest);
    if (typeof b === 'number') return cb(b === ENOENT ? ENOENT : EXDEV);
    if (a.location.id !== b.location.id) return cb(EXDEV);
    if (a.rel.length === 0 || b.rel.length === 0) return cb(EPERM);
    try {
      this.writer.applyFsOp(a.location, make(a.rel.join('/'), b.rel.join('/')), 'fuse');
      cb(0);
    } catch (err) {
      cb(errnoOf(err));
    }
  }

  // --- extended attributes -------------------------------------------------------

  getxattr(p: string, name: string, _position: number, cb: (err: number, value?: Buffer | null) => void): void {
    // `ls -l` asks every file for system.posix_acl_access and security.selinux, which the
    // kernel never caches. Only user.* attributes exist here; "not supported" (rather than
    // "no such attribute") lets ls, cp and getfattr remember that for the whole mount and
    // stop asking (coreutils caches it per st_dev), so one request is made, not two per file.
    if (!name.startsWith('user.')) return cb(ENOTSUP);
    const node = this.node(p);
    if (!node) return cb(ENOENT);
    try {
      const own = this.sdXattr(node, name);
      if (own !== undefined) return own === null ? cb(ENODATA) : cb(0, Buffer.from(own));
      if (node.kind !== 'local' && node.kind !== 'content') return cb(ENODATA);
      const value = getAttributeSync(node.real, name);
      return value === null ? cb(ENODATA) : cb(0, value);
    } catch (err) {
      cb(errnoOf(err));
    }
  }

  listxattr(p: string, cb: (err: number, list?: string[]) => void): void {
    const node = this.node(p);
    if (!node) return cb(ENOENT);
    try {
      const own: string[] = SD_XATTRS.filter((n) => this.sdXattr(node, n) != null);
      const entry = node.kind === 'local' || node.kind === 'remote' ? this.ns.entry(node.location, node.rel) : undefined;
      if (entry) own.push(...Object.keys(this.ns.metaOf(entry)).map((k) => META_XATTR_PREFIX + k));
      const real = node.kind === 'local' && !isSymlink(node.real) ? listAttributesSync(node.real).filter((n) => n.startsWith('user.') && !n.startsWith('user.sd.')) : [];
      cb(0, [...own, ...real]);
    } catch (err) {
      cb(errnoOf(err));
    }
  }

  setxattr(p: string, name: string, value: Buffer, _position: number, _flags: number, cb: (err: number) => void): void {
    if (!name.startsWith('user.')) return cb(ENOTSUP); // no ACLs or security labels through the mount (see getxattr)
    if (name === TAGS_XATTR) return this.setTags(p, value.toString('utf8'), cb);
    if (name.startsWith(META_XATTR_PREFIX)) return this.onEntry(p, cb, (entry) => this.ns.setMeta(entry, name.slice(META_XATTR_PREFIX.length), value.toString('utf8')));
    const node = this.local(p);
    if (typeof node === 'number') return cb(node);
    if (name.startsWith('user.sd.')) return cb(EACCES); // sdfs's own attributes are derived, not set
    try {
      setAttributeSync(node.real, name, value);
      cb(0);
    } catch (err) {
      cb(errnoOf(err));
    }
  }

  removexattr(p: string, name: string, cb: (err: number) => void): void {
    if (!name.startsWith('user.')) return cb(ENOTSUP);
    if (name === TAGS_XATTR) return this.setTags(p, '', cb);
    if (name.startsWith(META_XATTR_PREFIX)) {
      const key = name.slice(META_XATTR_PREFIX.length);
      return this.onEntry(p, cb, (entry) => {
        if (this.ns.metaOf(entry)[key] === undefined) throw Object.assign(new Error(`no ${name}`), { errno: ENODATA });
        this.ns.setMeta(entry, key, null);
      });
    }
    const node = this.local(p);
    if (typeof node === 'number') return cb(node);
    if (name.startsWith('user.sd.')) return cb(EACCES);
    try {
      removeAttributeSync(node.real, name);
      cb(0);
    } catch (err) {
      cb(errnoOf(err));
    }
  }

  /** Makes an entry's tags exactly the comma list given (any device's entry: tags are shared). */
  private setTags(p: string, list: string, cb: (err: number) => void): void {
    this.onEntry(p, cb, (entry) => this.ns.setTags(entry, list));
  }

  /** Changes shared data (tags, metadata) of the indexed entry at p, any device's. */
  private onEntry(p: string, cb: (err: number) => void, change: (entry: Entry) => void): void {
    const node = this.node(p);
    if (!node) return cb(ENOENT);
    if (node.kind !== 'local' && node.kind !== 'remote') return cb(EPERM);
    const entry = this.ns.entry(node.location, node.rel);
    if (!entry) return cb(ENOENT);
    try {
      change(entry);
      cb(0);
    } catch (err) {
      cb(errnoOf(err));
    }
  }

  /** sdfs's own attributes: a string, null when the entry has none, undefined when not ours. */
  private sdXattr(node: Node, name: string): string | null | undefined {
    if (!name.startsWith('user.sd.')) return undefined;
    if (node.kind === 'content') {
      if (name === 'user.sd.content_id') return node.contentId;
      if (name === 'user.sd.sdpath') return `sd://content/${node.contentId}`;
      if (name === 'user.sd.copies') return String(this.guardian.count(node.contentId).counting);
      return null;
    }
    if (node.kind !== 'local' && node.kind !== 'remote') return null;
    const entry = this.ns.entry(node.location, node.rel);
    if (name === 'user.sd.sdpath') return this.ns.sdPath(node.device, node.location, node.rel);
    if (name === 'user.sd.content_id') return entry?.contentId ?? null;
    // The guardian's view: devices holding a copy that counts, the copies the file's policy wants, and why it is at risk.
    if (name === 'user.sd.copies' || name === 'user.sd.policy' || name === 'user.sd.at_risk') {
      if (entry?.kind !== 'file' || !entry.contentId) return null;
      const state = this.guardian.fileState(entry);
      if (name === 'user.sd.copies') return String(state.copies);
      if (name === 'user.sd.policy') return String(state.wanted);
      return state.risk?.reason ?? null;
    }
    if (name.startsWith(META_XATTR_PREFIX)) return (entry && this.ns.metaOf(entry)[name.slice(META_XATTR_PREFIX.length)]) ?? null;
    if (name === TAGS_XATTR) {
      const tags = entry ? this.ns.tagsOf(entry) : [];
      return tags.length > 0 ? tags.join(',') : null;
    }
    return null;
  }
}

/** Answers a change in another device's tree with its errno (0 when done). */
function runRemote(node: RemoteNode, change: (node: RemoteNode) => number, cb: (err: number) => void): void {
  try {
    cb(change(node));
  } catch (err) {
    cb(errnoOf(err));
  }
}

/** Wraps an operation so its call, result (errno or count) and duration are logged. */
function traced(op: string, fn: (...args: unknown[]) => void): (...args: unknown[]) => void {
  return (...args: unknown[]) => {
    const started = performance.now();
    // The callback is the last function given (a caller or flags may follow it).
    let at = args.length - 1;
    while (at > 0 && typeof args[at] !== 'function') at--;
    const cb = args[at] as (...r: unknown[]) => void;
    args[at] = (...result: unknown[]) => {
      log.debug({ op, path: args[0], result: result[0], ms: Math.round((performance.now() - started) * 1000) / 1000 }, 'fuse');
      cb(...result);
    };
    fn(...args);
  };
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

const OP_NAMES = [
  'getattr', 'fgetattr', 'readdir', 'readlink', 'access', 'statfs', 'open', 'create', 'read', 'write', 'ftruncate',
  'flush', 'fsync', 'release', 'truncate', 'mkdir', 'mknod', 'rmdir', 'unlink', 'symlink', 'chmod', 'chown', 'utimens', 'utimensNs',
  'rename', 'link', 'getxattr', 'listxattr', 'setxattr', 'removexattr', 'created',
] as const satisfies ReadonlyArray<keyof PathOps>;
