// Executes one namespace operation of the mount on a local location, synchronously:
// the disk first (its errno is the answer), then the index and one audit row in one
// short transaction — a handful of SQL statements, no rescan, on the FUSE thread.
import fs from 'node:fs';
import path from 'node:path';
import { config } from '../../config.js';
import { SdError } from '../../errors.js';
import { GuardedTrash, LastCopyGuard, type GuardedTrashInput } from '../../guardian/last-copy.js';
import { log } from '../../log.js';
import { AuditLog, type Actor } from '../audit.js';
import { GroupCommit } from '../db/group-commit.js';
import type { Library } from '../library.js';
import type { Location } from '../locations.js';
import { entrySdPath } from '../sdpath.js';
import { DeferredFullHash } from './deferred-full-hash.js';
import { tryFs } from './errno.js';
import type { FsOp, FsOpResult, Owner } from './fs-op.js';
import { RENAME_EXCHANGE, lutimesNsSync, mknodSync, renameSync2 } from '../../syscalls.js';
import { IndexUpdater, baseName, parentRel, splitRel } from './index-update.js';
import { moveToTrash, trashPathOf, trashStamp } from './trash.js';
import { exists, lstatOrUndefined } from '../fs-stat.js';

const { O_CREAT, O_EXCL, O_WRONLY, S_IFMT } = fs.constants;
const S_ISGID = 0o2000;

/**
 * Gives a new name to who made it through the mount (sdfs runs as root): their uid, and
 * their gid unless the folder is setgid (the file system gave it the folder's group).
 */
function giveTo(file: string, owner: Owner | undefined, fd?: number): void {
  if (!owner) return;
  const gid = fs.statSync(path.dirname(file)).mode & S_ISGID ? -1 : owner.gid;
  if (fd !== undefined) fs.fchownSync(fd, owner.uid, gid);
  else fs.lchownSync(file, owner.uid, gid);
}

/** Whether a path names the file of an exact (bigint) stat. */
function sameInode(p: string, exact: fs.BigIntStats): boolean {
  try {
    const st = fs.lstatSync(p, { bigint: true });
    return st.ino === exact.ino && st.dev === exact.dev;
  } catch {
    return false;
  }
}

function typeOfMode(mode: number): string {
  const type = mode & S_IFMT;
  const { S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK, S_IFREG } = fs.constants;
  return type === S_IFIFO ? 'fifo' : type === S_IFSOCK ? 'socket' : type === S_IFCHR ? 'char device' : type === S_IFBLK ? 'block device' : type === S_IFREG ? 'file' : 'unknown';
}

export class FsOpApplier {
  private readonly index: IndexUpdater;
  private readonly audit: AuditLog;
  private readonly tx: GroupCommit;
  /** Index updates that failed after the disk change succeeded (the watcher repairs them). */
  indexFailures = 0;
  /** Full hashes of files written in deep locations, computed after the write's FUSE call. */
  readonly fullHashes: DeferredFullHash;
  /** The guardian's check and its trash table, made at the first unlink (not needed before). */
  private lastCopy: { guard: LastCopyGuard; trash: GuardedTrash } | undefined;

  /** groupCommitMs: changes share a commit per this many ms (the mount); 0 commits each alone. */
  constructor(
    private readonly library: Library,
    groupCommitMs = 0,
  ) {
    this.index = new IndexUpdater(library);
    this.audit = new AuditLog(library.db);
    this.tx = new GroupCommit(library.db, groupCommitMs);
    this.fullHashes = new DeferredFullHash(this.index.contents);
  }

  apply(location: Location, op: FsOp, actor: Actor = 'fuse'): FsOpResult {
    const touched = 'path' in op ? op.path : op.to;
    if (touched === '.gitignore' || touched.endsWith('/.gitignore')) this.index.forgetIgnoreRules();
    const abs = (rel: string) => (rel === '' ? location.rootPath : path.join(location.rootPath, rel));
    const sd = (rel: string) => entrySdPath(this.library.device, location, splitRel(rel));
    switch (op.op) {
      case 'create': {
        const rel = checkRel(op.path);
        const file = abs(rel);
        const flags = (op.flags ?? O_WRONLY) | O_CREAT;
        const existed = (flags & O_EXCL) === 0 && exists(file);
        const fd = tryFs(`create ${sd(rel)}`, () => fs.openSync(file, flags, op.mode));
        let st: fs.Stats;
        try {
          if (!existed) giveTo(file, op.owner, fd);
          st = fs.fstatSync(fd);
          // Exactly the asked mode: the kernel applied the caller's umask; ours must not apply twice.
          if (!existed && (st.mode & 0o7777) !== (op.mode & 0o7777)) {
            fs.fchmodSync(fd, op.mode & 0o7777);
            st = fs.fstatSync(fd);
          }
        } catch (err) {
          fs.closeSync(fd);
          throw err;
        }
        if (op.flags === undefined) fs.closeSync(fd);
        this.record(location, actor, 'create', sd(rel), { mode: op.mode & 0o7777 }, () => this.placeNew(location, rel, st));
        return op.flags === undefined ? {} : { fd };
      }
      case 'created': {
        const rel = checkRel(op.path);
        const st = tryFs(`create ${sd(rel)}`, () => fs.lstatSync(abs(rel)));
        this.record(location, actor, 'create', sd(rel), { mode: op.mode & 0o7777 }, () => this.placeNew(location, rel, st));
        return {};
      }
      case 'mkdir': {
        const rel = checkRel(op.path);
        const dir = abs(rel);
        tryFs(`create folder ${sd(rel)}`, () => fs.mkdirSync(dir, { mode: op.mode }));
        giveTo(dir, op.owner);
        let st = fs.lstatSync(dir);
        // Exactly the asked mode, and the setgid bit a setgid folder passes on (as the file system set it).
        const mode = (op.mode & 0o7777) | (st.mode & S_ISGID);
        if ((st.mode & 0o7777) !== mode) {
          fs.chmodSync(dir, mode);
          st = fs.lstatSync(dir);
        }
        this.record(location, actor, 'mkdir', sd(rel), { mode: op.mode & 0o7777 }, () => this.placeNew(location, rel, st));
        return {};
      }
      case 'mknod': {
        const rel = checkRel(op.path);
        const node = abs(rel);
        tryFs(`create ${sd(rel)}`, () => mknodSync(node, op.mode, op.dev));
        giveTo(node, op.owner);
        let st = fs.lstatSync(node);
        if ((st.mode & 0o7777) !== (op.mode & 0o7777)) {
          fs.chmodSync(node, op.mode & 0o7777);
          st = fs.lstatSync(node);
        }
        // The index holds files, folders and links: a fifo, socket or device is on disk only.
        this.record(location, actor, 'mknod', sd(rel), { mode: op.mode & 0o7777, type: typeOfMode(op.mode) }, () => {
          if (st.isFile()) this.placeNew(location, rel, st);
        });
        return {};
      }
      case 'unlink': {
        const rel = checkRel(op.path, 'busy');
        // The last copy of a content, or one its policy counts on, goes to the trash instead.
        const kept = this.keepIfGuarded(location, rel, sd(rel));
        if (!kept) tryFs(`delete ${sd(rel)}`, () => fs.unlinkSync(abs(rel)));
        this.record(location, actor, 'unlink', sd(rel), kept && { trash: kept.trashPath, guarded: kept.why }, () => {
          if (kept) this.lastCopy?.trash.add(kept);
          this.index.removeAt(location, rel);
          this.index.touchDir(location, parentRel(rel));
        });
        return {};
      }
      case 'rmdir': {
        const rel = checkRel(op.path, 'busy');
        tryFs(`remove folder ${sd(rel)}`, () => fs.rmdirSync(abs(rel)));
        this.record(location, actor, 'rmdir', sd(rel), undefined, () => {
          this.index.removeAt(location, rel);
          this.index.touchDir(location, parentRel(rel));
        });
        return {};
      }
      case 'rename': {
        const from = checkRel(op.from, 'busy');
        const to = checkRel(op.to, 'busy');
        if (op.toLocationId !== undefined && op.toLocationId !== location.id) {
          throw new SdError('CROSS_DEVICE', `rename ${sd(from)} into another location: EXDEV (copy it, then delete the original)`);
        }
        const fromSt = tryFs(`rename ${sd(from)}`, () => fs.lstatSync(abs(from)));
        const toSt = lstatOrUndefined(abs(to));
        if (op.flags) {
          // RENAME_NOREPLACE moves as a plain rename; RENAME_EXCHANGE keeps both names and swaps them.
          const flags = op.flags;
          tryFs(`rename ${sd(from)} to ${sd(to)}`, () => renameSync2(abs(from), abs(to), flags));
          const exchange = (flags & RENAME_EXCHANGE) !== 0;
          this.record(location, actor, 'rename', sd(from), { to: sd(to), exchange }, () => (exchange && toSt ? this.exchangeInIndex(location, from, to) : this.renameInIndex(location, from, to)));
          return {};
        }
        // Two names of one file: rename(2) leaves both in place.
        const sameFile = toSt !== undefined && toSt.ino === fromSt.ino && toSt.dev === fromSt.dev;
        // A file renamed over another deletes it: a guarded one goes to the trash first, as an unlink's would.
        const kept = toSt?.isFile() && !fromSt.isDirectory() && !sameFile ? this.keepIfGuarded(location, to, sd(to)) : undefined;
        try {
          tryFs(`rename ${sd(from)} to ${sd(to)}`, () => fs.renameSync(abs(from), abs(to)));
        } catch (err) {
          if (kept) fs.renameSync(kept.trashPath, abs(to));
          throw err;
        }
        this.record(location, actor, 'rename', sd(from), kept ? { to: sd(to), trash: kept.trashPath, guarded: kept.why } : { to: sd(to) }, () => {
          if (kept) {
            this.lastCopy?.trash.add(kept);
            this.index.removeAt(location, to);
          }
          if (!sameFile) this.renameInIndex(location, from, to);
        });
        return {};
      }
      case 'symlink': {
        const rel = checkRel(op.path);
        tryFs(`create link ${sd(rel)}`, () => fs.symlinkSync(op.target, abs(rel)));
        giveTo(abs(rel), op.owner);
        const st = fs.lstatSync(abs(rel));
        this.record(location, actor, 'symlink', sd(rel), { target: op.target }, () => this.placeNew(location, rel, st));
        return {};
      }
      case 'link': {
        const from = checkRel(op.from, 'busy');
        const to = checkRel(op.to);
        if (op.toLocationId !== undefined && op.toLocationId !== location.id) {
          throw new SdError('CROSS_DEVICE', `link ${sd(from)} into another location: EXDEV (hard links stay inside one location)`);
        }
        tryFs(`link ${sd(from)} as ${sd(to)}`, () => fs.linkSync(abs(from), abs(to)));
        const st = fs.lstatSync(abs(to));
        this.record(location, actor, 'link', sd(to), { from: sd(from) }, () => {
          const source = this.index.entryAt(location, from);
          this.index.place(location, to, st, source && source.inode === st.ino ? source.contentId : undefined);
          this.index.touchDir(location, parentRel(to));
        });
        return {};
      }
      case 'chmod': {
        const rel = checkRel(op.path, 'root');
        const st = tryFs(`chmod ${sd(rel)}`, () => fs.lstatSync(abs(rel)));
        if (st.isSymbolicLink()) throw new SdError('NOT_SUPPORTED', `chmod ${sd(rel)}: a symbolic link has no mode of its own here (EOPNOTSUPP)`);
        tryFs(`chmod ${sd(rel)}`, () => fs.chmodSync(abs(rel), op.mode & 0o7777));
        this.record(location, actor, 'chmod', sd(rel), { mode: op.mode & 0o7777 }, () => this.restat(location, rel, 'keep'));
        return {};
      }
      case 'chown': {
        const rel = checkRel(op.path, 'root');
        tryFs(`chown ${sd(rel)}`, () => fs.lchownSync(abs(rel), op.uid, op.gid));
        this.record(location, actor, 'chown', sd(rel), { uid: op.uid, gid: op.gid }, () => this.restat(location, rel, 'keep'));
        return {};
      }
      case 'truncate': {
        const rel = checkRel(op.path);
        tryFs(`truncate ${sd(rel)}`, () => fs.truncateSync(abs(rel), op.size));
        this.record(location, actor, 'truncate', sd(rel), { size: op.size }, () => this.restat(location, rel, 'rehash'));
        return {};
      }
      case 'utimens': {
        const rel = checkRel(op.path, 'root');
        const ns = op.ns;
        tryFs(`set times of ${sd(rel)}`, () => (ns ? lutimesNsSync(abs(rel), ns.atime, ns.mtime) : fs.lutimesSync(abs(rel), op.atimeMs / 1000, op.mtimeMs / 1000)));
        this.record(location, actor, 'utimens', sd(rel), { mtimeMs: op.mtimeMs }, () => this.restat(location, rel, 'keep'));
        return {};
      }
      case 'written': {
        const rel = checkRel(op.path);
        let contentId: string | null = null;
        let st: fs.Stats | undefined;
        this.record(location, actor, 'written', sd(rel), () => ({ contentId }), () => {
          contentId = this.restat(location, rel, 'rehash', (seen) => (st = seen));
        });
        // Deep locations keep a full BLAKE3 of every file: hashed later, not in this FUSE call.
        if (location.indexMode === 'deep' && contentId !== null && st?.isFile()) this.fullHashes.add(abs(rel), contentId, st);
        return {};
      }
    }
  }

  /**
   * Moves a file whose unlink the guardian stands against into the location's trash, and
   * says where; undefined when the file may go (it has enough copies, no content id, or
   * was written within config.guardMinAgeMs: a working file, not yet one to guard).
   * A few indexed queries: the entry, the files holding its content, and its policy when
   * counting copies would drop.
   */
  private keepIfGuarded(location: Location, rel: string, what: string): (GuardedTrashInput & { why: string }) | undefined {
    const entry = this.index.entryAt(location, rel);
    if (!entry || entry.kind !== 'file' || !entry.contentId || Date.now() - entry.mtime < config.guardMinAgeMs) return undefined;
    this.lastCopy ??= { guard: new LastCopyGuard(this.library.db, this.library.device), trash: new GuardedTrash(this.library.db) };
    const guarded = this.lastCopy.guard.check([entry.id])[0];
    if (!guarded) return undefined;
    const trashPath = moveToTrash(path.join(location.rootPath, rel), trashPathOf(location.rootPath, rel, trashStamp()), what);
    const size = lstatOrUndefined(trashPath)?.size ?? entry.size;
    return { locationId: location.id, trashPath, contentId: entry.contentId, size, trashedAt: Date.now(), why: guarded.why };
  }

  /** Records a name that just appeared, and the new time of its folder. */
  private placeNew(location: Location, rel: string, st: fs.Stats): void {
    const dirRel = parentRel(rel);
    const parent = this.index.entryAt(location, dirRel);
    if (!parent) return;
    this.index.place(location, rel, st, undefined, parent);
    this.index.touchDir(location, dirRel, parent);
  }

  /** Re-stats an indexed path and records it: 'keep' its content id (the bytes did not change) or 'rehash'. */
  private restat(location: Location, rel: string, content: 'keep' | 'rehash', seen?: (st: fs.Stats) => void): string | null {
    if (rel === '') {
      this.index.touchDir(location, '');
      return null;
    }
    const entry = this.index.entryAt(location, rel);
    const st = lstatOrUndefined(path.join(location.rootPath, rel));
    if (!st) return null;
    seen?.(st);
    if (!entry) {
      this.index.place(location, rel, st);
      return null;
    }
    const contentId = content === 'keep' && entry.kind === 'file' && st.isFile() && entry.size === st.size ? entry.contentId : this.index.identify(location, rel, st);
    this.index.refresh(location, entry, st, rel, contentId);
    if (st.isFile() && st.nlink > 1) {
      // Other names of the same file (hard links) changed with it. Past 2^53 a JS number
      // rounds the inode and the index's match may name other files too: each is then
      // checked on disk against the exact (bigint) inode and device.
      const exact = Number.isSafeInteger(st.ino) ? undefined : fs.lstatSync(path.join(location.rootPath, rel), { bigint: true });
      for (const other of this.index.store.byInode(location.id, st.ino)) {
        if (other.id === entry.id || other.kind !== 'file') continue;
        if (exact && !sameInode(path.join(location.rootPath, this.index.store.relativePath(other.id)), exact)) continue;
        this.index.refresh(location, other, st, rel, contentId);
      }
    }
    return contentId;
  }

  /** Two names swapped on disk (RENAME_EXCHANGE): the index swaps their entries through a third name. */
  private exchangeInIndex(location: Location, from: string, to: string): void {
    const a = this.index.entryAt(location, from);
    const b = this.index.entryAt(location, to);
    const aParent = this.index.entryAt(location, parentRel(to));
    const bParent = this.index.entryAt(location, parentRel(from));
    if (!a || !b || !aParent || !bParent) {
      // Not both indexed: re-read the two names from disk.
      for (const rel of [from, to]) {
        this.index.removeAt(location, rel);
        this.index.indexSubtree(location, rel);
      }
      return;
    }
    const parking = `.sd-exchange-${process.pid}-${Date.now()}`;
    this.index.move(b, aParent, parking);
    this.index.move(a, aParent, baseName(to));
    const parked = this.index.store.get(b.id);
    if (parked) this.index.move(parked, bParent, baseName(from));
    for (const rel of [from, to]) {
      const moved = this.index.entryAt(location, rel);
      const st = lstatOrUndefined(path.join(location.rootPath, rel));
      if (moved && st) this.index.refresh(location, moved, st, rel, moved.contentId);
    }
    this.index.touchDir(location, parentRel(from));
    if (parentRel(to) !== parentRel(from)) this.index.touchDir(location, parentRel(to));
  }

  private renameInIndex(location: Location, from: string, to: string): void {
    const entry = this.index.entryAt(location, from);
    const toDir = parentRel(to);
    const newParent = this.index.entryAt(location, toDir);
    const st = lstatOrUndefined(path.join(location.rootPath, to));
    if (!st) return;
    if (st.isDirectory() || baseName(from) === '.gitignore' || baseName(to) === '.gitignore') this.index.forgetIgnoreRules();
    const visible = newParent?.kind === 'dir' && !this.index.ignores(location, toDir, baseName(to), st.isDirectory());
    if (entry && visible) {
      this.index.move(entry, newParent, baseName(to));
      const moved = this.index.store.get(entry.id);
      if (moved) this.index.refresh(location, moved, st, to, moved.contentId);
    } else {
      if (entry) this.index.remove(entry);
      else this.index.removeAt(location, to);
      // Came in from an ignored or unindexed name: record it (a folder with what is inside).
      if (visible) this.index.indexSubtree(location, to);
    }
    this.index.touchDir(location, parentRel(from));
    if (toDir !== parentRel(from)) this.index.touchDir(location, toDir);
  }

  /**
   * The index changes and the audit row, atomically (a savepoint of the group's transaction
   * when commits are grouped); a failure here is logged, not thrown (the disk changed).
   */
  private record(location: Location, actor: Actor, action: string, target: string, details: unknown, changes: () => void): void {
    try {
      this.tx.run(() => {
        changes();
        this.audit.append({ actor, action, status: 'Completed', target, details: typeof details === 'function' ? (details as () => unknown)() : details });
      });
    } catch (err) {
      this.indexFailures++;
      log.warn({ op: action, location: location.name, target, err: err instanceof Error ? err.message : String(err) }, 'index update after a file system change failed; the watcher will repair it');
    }
  }
}

/**
 * Checks a location-relative path: '/'-separated names, no '.', '..' or empty parts.
 * The root ('') is refused unless the op may act on it ('root'); 'busy' answers EBUSY for it.
 */
function checkRel(rel: string, root: 'no' | 'root' | 'busy' = 'no'): string {
  if (rel === '') {
    if (root === 'root') return rel;
    if (root === 'busy') throw new SdError('BUSY', 'the location root cannot be removed or renamed here (EBUSY)');
    throw new SdError('EXISTS', 'the location root exists already (EEXIST)');
  }
  for (const part of rel.split('/')) {
    if (part === '' || part === '.' || part === '..' || part.includes('\0')) {
      throw new SdError('INVALID', `'${rel}' is not a path inside a location (EINVAL)`);
    }
  }
  return rel;
}

