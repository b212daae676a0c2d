// Another device's tree in the mount: attributes and listings from the replicated index
// (no network) with the changes made here and not yet applied there laid over it; bytes
// through the replication's block client (async: the FUSE loop is multithreaded, so a slow
// peer holds only its own read). Changes (new files, mkdir, rm, mv) become jobs that the
// device runs when it is online (vdfs/remote-changes); a new file's bytes are staged here.
import fs from 'node:fs';
import type { CachedBlocks, FuseStat, Listing } from './types.js';
import { log } from '../log.js';
import type { Entry } from '../vdfs/entries.js';
import { whenLibraryFree } from '../vdfs/db/when-free.js';
import type { Device } from '../vdfs/device.js';
import type { Location } from '../vdfs/locations.js';
import type { Namespace } from '../vdfs/namespace.js';
import type { PendingChange } from '../vdfs/pending.js';
import type { FileAttrs, PendingRecovery, RemoteChanges } from '../vdfs/remote-changes.js';
import { EIO, EISDIR, ENOENT, ENOTDIR, EROFS, errnoOf } from './errno.js';
import { fromEntry, fromStats, virtualDir } from './stat.js';
import { DT_DIR, DT_REG, DT_UNKNOWN, typeOfKind } from './listing.js';
import type { Node } from './tree.js';

const EEXIST = -17;
const NO_CHANGES = { added: new Map<string, never>(), removed: new Set<string>() };
const ENOTEMPTY = -39;

/** An open file of another device: reads by offset, from cache or peers. */
export interface RemoteReader {
  readInto(buf: Buffer, offset: number, length: number): Promise<number>;
  /** Its blocks in the disk cache (the binding reads verified ones itself); undefined without a cache. */
  cachedBlocks?(): Promise<CachedBlocks | undefined>;
  /** The handle is released: background fetches stop. */
  close?(): void;
}

/** What the mount needs from replication: open a peer's file for reading. */
export interface RemoteFiles {
  openRemote(device: Device, location: Location, rel: readonly string[], entry: Entry): RemoteReader;
}

export type RemoteNode = Extract<Node, { kind: 'remote' }>;

/** What a path of a peer's tree shows: a mirrored entry, a pending new file or folder, or nothing. */
type View =
  | { kind: 'entry'; entry: Entry }
  | { kind: 'file'; change: PendingChange }
  | { kind: 'dir'; change: PendingChange }
  | { kind: 'none' };

/** Whether the view shows a folder (a mirrored one or one made here). */
function isFolder(v: View): boolean {
  return v.kind === 'dir' || (v.kind === 'entry' && v.entry.kind === 'dir');
}

/** A handle on a pending file's staged bytes: released, it (re)queues the file's copy job (which replaces the device's file or keeps both, as the pending row says). */
export interface StagedHandle {
  fd: number;
  changeId: number;
  device: Device;
}

/** Handle numbers of remote files, far above real file descriptors. */
const FIRST_REMOTE_HANDLE = 1 << 30;

export class RemoteTree {
  private readonly open = new Map<number, RemoteReader>();
  /** Files of a device opened to change in place; `staged` once their bytes are fetched. */
  private readonly deferred = new Map<number, { node: RemoteNode; entry: Entry; staged?: Promise<StagedHandle> }>();
  private nextHandle = FIRST_REMOTE_HANDLE;
  /** Released new files whose copy job waits for the library (held by another process), by change id. */
  private readonly releasing = new Map<number, symbol>();
  /** Pending files with handles open for writing in this process (how many), by change id: the start-up recovery leaves them to their release. */
  private readonly writing = new Map<number, number>();

  constructor(
    private readonly ns: Namespace,
    private readonly files: RemoteFiles | undefined,
    /** Undefined: the mount is read-only and so are other devices' trees. */
    private readonly changes: RemoteChanges | undefined,
  ) {}

  /** Whether changes to other devices' trees are taken (not on a read-only mount). */
  get writable(): boolean {
    return this.changes !== undefined;
  }

  private view(node: RemoteNode): View {
    const overlaid = this.changes ? this.changes.pending.resolve(node.device.id, node.location.name, node.rel) : { kind: 'mirror' as const, path: node.rel.join('/') };
    if (overlaid.kind === 'gone') return { kind: 'none' };
    if (overlaid.kind === 'file') return { kind: 'file', change: overlaid.change };
    if (overlaid.kind === 'dir') return { kind: 'dir', change: overlaid.change };
    // Through a pending rename the entry is at its old path, unless the device applied the
    // rename already (its log got here before the pending row went): then at the new one.
    const entry = this.ns.entry(node.location, overlaid.path === '' ? [] : overlaid.path.split('/')) ?? (overlaid.path !== node.rel.join('/') ? this.ns.entry(node.location, node.rel) : undefined);
    return entry ? { kind: 'entry', entry } : { kind: 'none' };
  }

  /** The mirrored entry at a node, when nothing pending covers it (what tags and xattrs use). */
  entryOf(node: RemoteNode): Entry | undefined {
    const v = this.view(node);
    return v.kind === 'entry' ? v.entry : undefined;
  }

  getattr(node: RemoteNode): FuseStat | number {
    const v = this.view(node);
    switch (v.kind) {
      case 'entry':
        return fromEntry(v.entry, this.writable);
      case 'file':
        return fromStats(fs.statSync(this.changes!.stagedPath(v.change)));
      case 'dir':
        return { ...virtualDir(`pending:${v.change.id}`, v.change.createdAt, true), mode: 0o040000 | (v.change.mode & 0o7777 || 0o755) };
      case 'none':
        return ENOENT;
    }
  }

  /**
   * The names shown in a folder: its index entries (with their attributes, from the same
   * query), less those a pending change took away, plus those one made here (typed).
   */
  readdir(node: RemoteNode): Listing | number {
    const v = this.view(node);
    if (v.kind === 'none') return ENOENT;
    if (!isFolder(v)) return ENOTDIR;
    // A new folder the device made already (its pending row goes a moment later) may hold more.
    const listed = v.kind === 'entry' ? v.entry : this.ns.entry(node.location, node.rel);
    const children = listed?.kind === 'dir' ? this.ns.children(listed) : [];
    const { added, removed } = this.changes?.pending.childChanges(node.device.id, node.location.name, node.rel.join('/')) ?? NO_CHANGES;
    const shown = added.size === 0 && removed.size === 0 ? children : children.filter((e) => !removed.has(e.name) && !added.has(e.name));
    const count = shown.length + added.size;
    const names = new Array<string>(count);
    const types = new Uint8Array(count);
    const attrs = new Array<FuseStat | undefined>(count);
    // Below a folder shown from the index a name looks up to that very entry; below a new
    // folder (made here, pending) it does not until the pending row goes: left unknown.
    const known = v.kind === 'entry';
    shown.forEach((e, i) => {
      names[i] = e.name;
      if (!known) return;
      types[i] = typeOfKind(e.kind);
      attrs[i] = fromEntry(e, this.writable); // what getattr answers for that name
    });
    let i = shown.length;
    for (const [name, kind] of added) {
      names[i] = name;
      // A new file is staged here, a new folder is one; what a rename brought may be either.
      types[i++] = kind === 'file' ? DT_REG : kind === 'dir' ? DT_DIR : DT_UNKNOWN;
    }
    return { names, types, attrs };
  }

  /** Opens for reading (remote bytes, or a pending file's staged ones) or, for writing, a staged file. */
  openFile(node: RemoteNode, flags: number, done: (err: number, fd?: number, staged?: StagedHandle) => void): void {
    const writing = (flags & 3) !== fs.constants.O_RDONLY || (flags & fs.constants.O_TRUNC) !== 0;
    const v = this.view(node);
    if (v.kind === 'none') return done(ENOENT);
    if (v.kind === 'dir' || isFolder(v)) return done(EISDIR); // (the kind test narrows v for what follows)
    if (writing && !this.changes) return done(EROFS);
    try {
      if (v.kind === 'file') {
        const fd = fs.openSync(this.changes!.stagedPath(v.change), flags & ~(fs.constants.O_CREAT | fs.constants.O_EXCL));
        return done(0, fd, writing ? this.reopened(v.change, node, fd) : undefined);
      }
      const entry = v.entry;
      if (!writing) {
        if (!this.files || entry.kind !== 'file') return done(EIO);
        const handle = this.nextHandle++;
        this.open.set(handle, this.files.openRemote(node.device, node.location, node.rel, entry));
        return done(0, handle);
      }
      if (entry.kind !== 'file') return done(EIO);
      // Writing a file of the device: a new version is staged here and copied over it there.
      if (flags & fs.constants.O_TRUNC || entry.size === 0) return done(0, ...this.stage(node, entry.mode, true));
      // Changed in place (append, patch): its bytes are fetched at the first read or write
      // through the handle, not now; touch opens a file for writing and only sets its times.
      const handle = this.nextHandle++;
      this.deferred.set(handle, { node, entry });
      return done(0, handle);
    } catch (err) {
      done(errnoOf(err));
    }
  }

  /** A new file in the device's tree (create): staged here, delivered when released. */
  create(node: RemoteNode, mode: number): [number, StagedHandle] | number {
    if (!this.changes) return EROFS;
    const parent = this.parentView(node);
    if (typeof parent === 'number') return parent;
    const v = this.view(node);
    if (isFolder(v)) return EISDIR;
    if (v.kind === 'file') {
      const fd = fs.openSync(this.changes.stagedPath(v.change), fs.constants.O_RDWR | fs.constants.O_TRUNC);
      return [fd, this.reopened(v.change, node, fd)];
    }
    return this.stage(node, mode, v.kind === 'entry');
  }

  /** A new file staged, its handle open for writing (`overwrite`: the name showed a file of the device; `fetching`: its bytes are fetched into it first). */
  private stage(node: RemoteNode, mode: number, overwrite: boolean, fetching = false): [number, StagedHandle] {
    const { change, fd } = this.changes!.newFile(node.device, node.location.name, node.rel.join('/'), (mode & 0o7777) || 0o644, { overwrite, fetching });
    return [fd, this.opened(change.id, node, fd)];
  }

  private opened(changeId: number, node: RemoteNode, fd: number): StagedHandle {
    this.writing.set(changeId, (this.writing.get(changeId) ?? 0) + 1);
    return { fd, changeId, device: node.device };
  }

  private closed(changeId: number): void {
    const open = (this.writing.get(changeId) ?? 1) - 1;
    if (open > 0) this.writing.set(changeId, open);
    else this.writing.delete(changeId);
  }

  /** Whether a handle is a device's file opened to change in place (see openFile). */
  isDeferred(handle: number): boolean {
    return this.deferred.has(handle);
  }

  /** The staged copy behind a deferred handle, fetched at the first call. */
  stagedOf(handle: number): Promise<StagedHandle> {
    const d = this.deferred.get(handle);
    if (!d) return Promise.reject(Object.assign(new Error('not an open file of another device'), { errno: -9 }));
    d.staged ??= this.fetchInto(d.node, d.entry);
    return d.staged;
  }

  /** A deferred handle is released: the staged copy when its bytes were fetched (to send), else nothing changed. */
  dropDeferred(handle: number): Promise<StagedHandle> | undefined {
    const d = this.deferred.get(handle);
    this.deferred.delete(handle);
    return d?.staged;
  }

  private async fetchInto(node: RemoteNode, entry: Entry): Promise<StagedHandle> {
    if (!this.files) throw Object.assign(new Error('replication is not running'), { errno: EIO });
    const reader = this.files.openRemote(node.device, node.location, node.rel, entry);
    const [fd, staged] = this.stage(node, entry.mode, true, true);
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let offset = 0; offset < entry.size; ) {
        const n = await reader.readInto(buf, offset, Math.min(buf.length, entry.size - offset));
        if (n <= 0) throw Object.assign(new Error('short read'), { errno: EIO });
        fs.writeSync(fd, buf, 0, n, offset);
        offset += n;
      }
      // Whole now: what is written from here on is the user's, to send even if the mount stops first.
      this.changes!.pending.fetched(staged.changeId);
      return staged;
    } catch (err) {
      this.closed(staged.changeId);
      fs.closeSync(fd);
      const change = this.changes!.pending.get(staged.changeId);
      if (change) this.changes!.withdraw(change);
      throw err;
    }
  }

  /**
   * A staged file's handle was released: its copy job is committed or queued again. Another
   * process holding the library past the busy timeout is waited out: the writer never sees
   * a release fail, and the file stayed pending for good, never sent. A release of the same
   * file after it was opened again takes over.
   */
  released(staged: StagedHandle): void {
    const changes = this.changes;
    if (!changes) return;
    const turn = Symbol('release');
    this.releasing.set(staged.changeId, turn);
    this.closed(staged.changeId);
    const taken = () => {
      const change = changes.pending.get(staged.changeId);
      if (change) changes.written(staged.device, change);
    };
    whenLibraryFree({ op: 'release', device: staged.device.slug, change: staged.changeId }, taken, () => this.releasing.get(staged.changeId) !== turn || !this.ns.db.open)
      .catch((err: unknown) => log.warn({ op: 'release', device: staged.device.slug, err: String(err) }, 'could not queue the new file for its device'))
      .finally(() => {
        if (this.releasing.get(staged.changeId) === turn) this.releasing.delete(staged.changeId);
      });
  }

  /** A pending file opened for writing again: its job waits for this handle's release (a release still waiting gives way). */
  private reopened(change: PendingChange, node: RemoteNode, fd: number): StagedHandle {
    try {
      this.changes!.reopened(change);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    this.releasing.delete(change.id);
    return this.opened(change.id, node, fd);
  }

  /**
   * At the mount's start: the new files a stopped process left pending are sent (or taken
   * back when nothing is left to send), as if their handles had been released; see
   * RemoteChanges.recover. Files opened here since are left to their own release. Another
   * process holding the library is waited out. Resolves with what was done (undefined on a
   * read-only mount, or when the mount stopped first).
   */
  async recoverPending(): Promise<PendingRecovery | undefined> {
    const changes = this.changes;
    if (!changes) return undefined;
    let done: PendingRecovery | undefined;
    const recover = () => {
      done = changes.recover((id) => this.writing.has(id) || this.releasing.has(id));
    };
    if (!(await whenLibraryFree({ op: 'recover-pending' }, recover, () => !this.ns.db.open))) return undefined;
    return done;
  }

  /** chmod: a pending file's mode travels with its bytes; anything else is a job the device runs. */
  chmod(node: RemoteNode, mode: number): number {
    return this.setAttrs(node, { mode: mode & 0o7777 });
  }

  /** utimens, likewise (cp -p, rsync -t, touch). */
  utimens(node: RemoteNode, atimeMs: number, mtimeMs: number): number {
    return this.setAttrs(node, { atimeMs, mtimeMs });
  }

  private setAttrs(node: RemoteNode, attrs: FileAttrs): number {
    if (!this.changes) return EROFS;
    const v = this.view(node);
    if (v.kind === 'none') return ENOENT;
    if (v.kind === 'file') {
      this.changes.stagedAttrs(node.device, v.change, attrs);
      return 0;
    }
    if (v.kind === 'dir' && attrs.mode !== undefined) this.changes.pending.setMode(v.change.id, attrs.mode);
    this.changes.attrs(node.device, node.location.name, node.rel.join('/'), attrs);
    return 0;
  }

  truncate(node: RemoteNode, size: number): number {
    const v = this.view(node);
    if (v.kind === 'none') return ENOENT;
    if (!this.changes) return EROFS;
    if (v.kind === 'dir' || isFolder(v)) return EISDIR; // (the kind test narrows v for what follows)
    if (v.kind === 'file') {
      fs.truncateSync(this.changes.stagedPath(v.change), size);
      return 0;
    }
    // Truncating a file of the device to nothing: an empty new version replaces it.
    if (size !== 0) return EROFS;
    const [fd, staged] = this.stage(node, v.entry.mode, true);
    fs.closeSync(fd);
    this.released(staged);
    return 0;
  }

  mkdir(node: RemoteNode, mode: number): number {
    if (!this.changes) return EROFS;
    const parent = this.parentView(node);
    if (typeof parent === 'number') return parent;
    if (this.view(node).kind !== 'none') return EEXIST;
    this.changes.mkdir(node.device, node.location.name, node.rel.join('/'), (mode & 0o7777) || 0o755);
    return 0;
  }

  unlink(node: RemoteNode): number {
    if (!this.changes) return EROFS;
    const v = this.view(node);
    if (v.kind === 'none') return ENOENT;
    if (isFolder(v)) return EISDIR;
    return this.removeShown(node, v);
  }

  rmdir(node: RemoteNode): number {
    if (!this.changes) return EROFS;
    const v = this.view(node);
    if (v.kind === 'none') return ENOENT;
    if (!isFolder(v)) return ENOTDIR;
    const listing = this.readdir(node);
    if (typeof listing === 'number') return listing;
    if (listing.names.length > 0) return ENOTEMPTY;
    return this.removeShown(node, v);
  }

  /** Removes what the name shows: a pending new file or folder is taken back if not sent yet; else the device deletes it. */
  private removeShown(node: RemoteNode, v: Exclude<View, { kind: 'none' }>): number {
    const rel = node.rel.join('/');
    if (v.kind !== 'entry' && this.changes!.withdraw(v.change)) {
      // Taken back; if the device has something at that name, that goes too.
      if (this.view(node).kind === 'none') return 0;
    }
    this.changes!.remove(node.device, node.location.name, rel);
    return 0;
  }

  /** rename inside one location of the device; anything else answers EXDEV (tools copy, then delete). */
  rename(from: RemoteNode, to: RemoteNode): number {
    if (!this.changes) return EROFS;
    if (from.device.id !== to.device.id || from.location.id !== to.location.id) return -18; // EXDEV
    const v = this.view(from);
    if (v.kind === 'none') return ENOENT;
    const parent = this.parentView(to);
    if (typeof parent === 'number') return parent;
    const fromRel = from.rel.join('/');
    const toRel = to.rel.join('/');
    if (toRel === fromRel) return 0;
    if (toRel.startsWith(`${fromRel}/`)) return -22; // EINVAL: a folder into itself
    const target = this.view(to);
    if (isFolder(target)) {
      const inside = this.readdir(to);
      if (typeof inside !== 'number' && inside.names.length > 0) return ENOTEMPTY;
    }
    // A file still being written and never sent: it just gets its new name (its copy job takes it).
    if (v.kind === 'file' && v.change.jobId === null && target.kind === 'none') {
      this.changes.pending.rename(v.change.id, toRel);
      return 0;
    }
    this.changes.move(from.device, from.location.name, fromRel, toRel);
    return 0;
  }

  /** The folder a new name goes in must be shown as a folder. */
  private parentView(node: RemoteNode): number | undefined {
    if (node.rel.length === 0) return -1; // EPERM: a location root is not created, renamed or removed here
    const parent = this.view({ ...node, rel: node.rel.slice(0, -1) });
    if (parent.kind === 'none') return ENOENT;
    if (!isFolder(parent)) return ENOTDIR;
    return undefined;
  }

  has(handle: number): boolean {
    return this.open.has(handle);
  }

  read(handle: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void {
    const reader = this.open.get(handle);
    if (!reader) return cb(-9); // EBADF
    reader.readInto(buf, pos, len).then(cb, (err: unknown) => {
      log.warn({ op: 'read', remote: true, pos, len, err: String(err) }, 'remote read failed');
      cb(errnoOf(err) || EIO);
    });
  }

  /** An open remote file's blocks in the disk cache, for the binding to read without JS. */
  async cachedBlocks(handle: number): Promise<CachedBlocks | undefined> {
    return this.open.get(handle)?.cachedBlocks?.();
  }

  release(handle: number): void {
    this.open.get(handle)?.close?.();
    this.open.delete(handle);
  }
}
