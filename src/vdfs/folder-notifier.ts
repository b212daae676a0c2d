// Tells the watcher which folders of a location changed: one non-recursive fs.watch
// (inotify) per indexed folder, no reads or stats on the event path, watches kept in step
// with the index after each diff, and a periodic re-diff where the kernel refuses watches.
import fs from 'node:fs';
import path from 'node:path';
import { config } from '../config.js';
import { systemCode } from '../errors.js';
import { log } from '../log.js';
import type { Library } from './library.js';
import type { Location } from './locations.js';
import { statOrUndefined } from './fs-stat.js';

/** A live watch on one folder; `onEvent` gets the changed name (null when the kernel gave none). */
export interface FolderWatch {
  close(): void;
}
export type WatchFolder = (abs: string, onEvent: (name: string | null) => void, onError: (err: unknown) => void) => FolderWatch;

export interface FolderNotifierOptions {
  /**
   * A folder (relative to the location root) whose entries changed; 'all' when the root
   * came back. `name`: the one entry of the folder an event says changed; without it,
   * any of them may have (no name given, the folder's own event, a poll, a new watch).
   */
  onChange(location: Location, dirRel: string | 'all', name?: string): void;
  /** How a folder is watched (fs.watch; tests pass one that runs out of watches). */
  watchFolder?: WatchFolder;
  /** How often folders that could not be watched are re-diffed (config.watchPollMs). */
  pollMs?: number;
  /** Something the user should know and can fix (the inotify limit reached); said once. */
  onWarning?(message: string): void;
  /** Absolute folders never watched, nor anything below them (the library's own folder). */
  exclude?: readonly string[];
}

/**
 * How long one turn of the event loop may spend starting watches before it gives the
 * thread back: 10,000 fs.watch calls took 0.7–1.3 s of one thread on a loaded 2-core machine.
 */
const SLICE_MS = 10;
/** Folder rows read from the index per turn when a whole location is watched. */
const ROWS_PER_TURN = 500;

const defaultWatchFolder: WatchFolder = (abs, onEvent, onError) => {
  const w = fs.watch(abs, { persistent: true }, (_event, name) => onEvent(name === null ? null : String(name)));
  w.on('error', onError);
  return w;
};

interface Watched {
  watch: FolderWatch;
  /** The folder's inode when watched: inotify follows an inode, not a name. */
  inode: number;
  /** False once dropped: its events (until the pump closes it) no longer count. */
  live: boolean;
}

interface DirRow {
  id: number;
  parent_id: number;
  name: string;
  inode: number;
}

/** The watches of one location, by folder path relative to its root ('' is the root). */
class LocationWatches {
  readonly watched = new Map<string, Watched>();
  /** Folders waiting for a watch (inode from the index), true when they are re-diffed once watched. */
  readonly queued = new Map<string, { inode: number; rediff: boolean }>();
  /** Folders the kernel would not watch (inotify limits): re-diffed every pollMs instead. */
  readonly polled = new Set<string>();
  /** Child names per folder that are watched, queued or polled, for dropping a subtree. */
  readonly children = new Map<string, Set<string>>();
  /** The root's parent folder, watched for the root going and coming back. */
  guard: FolderWatch | undefined;
  /** Folders never watched (relative paths of the excluded folders inside this location). */
  readonly excludedRels: string[];

  constructor(
    readonly location: Location,
    /** Closes a dropped watch later, a slice at a time (10,000 closes took 0.4–0.9 s). */
    private readonly retire: (w: Watched) => void,
    exclude: readonly string[],
  ) {
    this.excludedRels = exclude
      .map((x) => path.relative(location.rootPath, x))
      .filter((rel) => !rel.startsWith('..') && !path.isAbsolute(rel))
      .map((rel) => rel.split(path.sep).join('/'));
  }

  has(rel: string): boolean {
    return this.watched.has(rel) || this.queued.has(rel) || this.polled.has(rel);
  }

  link(rel: string): void {
    if (rel === '') return;
    const parent = parentRel(rel);
    let names = this.children.get(parent);
    if (!names) this.children.set(parent, (names = new Set()));
    names.add(baseName(rel));
  }

  /** Forgets a folder and everything below it, closing their watches. */
  drop(rel: string): void {
    for (const name of this.children.get(rel) ?? []) this.drop(rel === '' ? name : `${rel}/${name}`);
    this.children.delete(rel);
    const w = this.watched.get(rel);
    if (w) this.retire(w);
    this.watched.delete(rel);
    this.queued.delete(rel);
    this.polled.delete(rel);
    if (rel !== '') this.children.get(parentRel(rel))?.delete(baseName(rel));
  }
}

export class FolderNotifier {
  private readonly byLocation = new Map<number, LocationWatches>();
  private readonly watchFolder: WatchFolder;
  private readonly pollMs: number;
  /** Locations with folders waiting for a watch, served SLICE_MS at a time. */
  private readonly work = new Set<LocationWatches>();
  /** Dropped watches still to close. */
  private retired: FolderWatch[] = [];
  private pump: NodeJS.Immediate | undefined;
  private idle: Array<() => void> = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private warnedLimit = false;
  private closed = false;
  private readonly dirsBelow;
  private readonly dirsAfter;
  private readonly dirChildren;

  constructor(library: Library, private readonly options: FolderNotifierOptions) {
    this.watchFolder = options.watchFolder ?? defaultWatchFolder;
    this.pollMs = options.pollMs ?? config.watchPollMs;
    // Folders only: a folder's watch reports its files' creates, writes, renames and deletes.
    this.dirsBelow = library.db.prepare(`SELECT e.id, e.parent_id, e.name, e.inode FROM entry_closure c JOIN entries e ON e.id = c.descendant
                                         WHERE c.ancestor = ? AND c.depth > 0 AND e.kind = 'dir'`);
    // By rowid, a page at a time: one query over a whole location's folders took 0.1–0.3 s.
    this.dirsAfter = library.db.prepare(`SELECT id, parent_id, name, inode FROM entries
                                         WHERE id > ? AND location_id = ? AND kind = 'dir' ORDER BY id LIMIT ?`);
    this.dirChildren = library.db.prepare(`SELECT id, parent_id, name, inode FROM entries WHERE parent_id = ? AND kind = 'dir'`);
  }

  /** Folders of a location that are watched now (for tests and logs). */
  watchedCount(location: Location): number {
    return this.byLocation.get(location.id)?.watched.size ?? 0;
  }

  /**
   * Starts watching a location: the root's parent (for the root going and coming back),
   * the root and every folder the index has. Resolves once all are watched; the thread
   * is given back between slices. Nothing is re-diffed: the caller diffs it in full next
   * and then calls reconcile(location, 'all').
   */
  async watchLocation(location: Location): Promise<void> {
    const lw = new LocationWatches(location, (w) => {
      w.live = false;
      this.retired.push(w.watch);
      this.pump ??= setImmediate(() => this.runPump());
    }, this.options.exclude ?? []);
    this.byLocation.set(location.id, lw);
    this.guardRoot(lw);
    await this.watchIndexed(location);
  }

  /** Watches the root and every folder the index has that is not watched yet (before a full diff). */
  async watchIndexed(location: Location): Promise<void> {
    const lw = this.byLocation.get(location.id);
    if (!lw || this.closed || location.rootEntryId === null) return;
    this.want(lw, '', NaN, false);
    this.schedulePump(lw);
    // Page by page, a turn each, while the pump starts the watches of the pages before.
    const rels = new Map<number, string>([[location.rootEntryId, '']]);
    let orphans: DirRow[] = [];
    for (let after = 0; !this.closed; ) {
      const page = this.dirsAfter.all(after, location.id, ROWS_PER_TURN) as DirRow[];
      for (const row of page) {
        const parent = rels.get(row.parent_id);
        if (parent === undefined) {
          if (row.id !== location.rootEntryId) orphans.push(row);
          continue;
        }
        const rel = join(parent, row.name);
        rels.set(row.id, rel);
        this.want(lw, rel, row.inode, false);
      }
      this.schedulePump(lw);
      if (page.length < ROWS_PER_TURN) break;
      after = page.at(-1)!.id;
      await new Promise((resolve) => setImmediate(resolve));
    }
    // A folder moved under a newer one comes before its parent in rowid order.
    while (orphans.length > 0 && !this.closed) {
      const left: DirRow[] = [];
      for (const row of orphans) {
        const parent = rels.get(row.parent_id);
        if (parent === undefined) left.push(row);
        else {
          const rel = join(parent, row.name);
          rels.set(row.id, rel);
          this.want(lw, rel, row.inode, false);
        }
      }
      if (left.length === orphans.length) break;
      orphans = left;
    }
    this.schedulePump(lw);
    await this.whenIdle();
  }

  /**
   * After a diff of these folders: watches the folders the index now has below them
   * that are not watched yet (re-diffed once watched, so nothing written between the
   * diff and the watch is missed) and drops the watches of folders the index lost.
   * 'all' compares the whole tree.
   */
  reconcile(location: Location, dirs: Iterable<string> | 'all', entryOf: (rel: string) => { id: number; kind: string } | undefined): void {
    const lw = this.byLocation.get(location.id);
    if (!lw || this.closed || location.rootEntryId === null) return;
    if (dirs === 'all') {
      const seen = new Set<string>(['']);
      if (!lw.has('')) this.want(lw, '', NaN, true);
      for (const [rel, inode] of this.treeOf(location, location.rootEntryId)) {
        seen.add(rel);
        this.keepOrWant(lw, rel, inode);
      }
      for (const rel of [...lw.watched.keys(), ...lw.queued.keys(), ...lw.polled]) if (!seen.has(rel)) lw.drop(rel);
      this.schedulePump(lw);
      return;
    }
    for (const dirRel of dirs) {
      const entry = entryOf(dirRel);
      if (!entry || entry.kind !== 'dir') {
        if (dirRel !== '') lw.drop(dirRel);
        continue;
      }
      if (dirRel !== '' && !lw.has(dirRel)) {
        this.queueTree(lw, entry.id, true, dirRel);
        continue;
      }
      const now = new Map<string, DirRow>();
      for (const row of this.dirChildren.all(entry.id) as DirRow[]) now.set(row.name, row);
      for (const name of [...(lw.children.get(dirRel) ?? [])]) if (!now.has(name)) lw.drop(join(dirRel, name));
      for (const row of now.values()) {
        const rel = join(dirRel, row.name);
        if (!lw.has(rel)) this.queueTree(lw, row.id, true, rel, row.inode);
        else this.keepOrWant(lw, rel, row.inode);
      }
    }
    this.schedulePump(lw);
  }

  /** Resolves when no folder waits for a watch. */
  whenIdle(): Promise<void> {
    if (this.work.size === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  close(): void {
    this.closed = true;
    if (this.pump) clearImmediate(this.pump);
    clearInterval(this.pollTimer);
    for (const lw of this.byLocation.values()) {
      lw.guard?.close();
      lw.drop('');
    }
    for (const w of this.retired.splice(0)) w.close();
    this.byLocation.clear();
    this.work.clear();
    for (const resolve of this.idle.splice(0)) resolve();
  }

  /** A folder watched under another inode than the index has now was replaced: watch the new one. */
  private keepOrWant(lw: LocationWatches, rel: string, inode: number): void {
    const w = lw.watched.get(rel);
    if (w && w.inode !== inode) {
      lw.drop(rel);
      this.want(lw, rel, inode, true);
    } else if (!lw.has(rel)) {
      this.want(lw, rel, inode, true);
    }
  }

  /** Queues a folder and every folder the index has below it. */
  private queueTree(lw: LocationWatches, dirId: number, rediff: boolean, rel: string, inode = NaN): void {
    this.want(lw, rel, inode, rediff);
    const rows = new Map<number, DirRow>();
    for (const row of this.dirsBelow.all(dirId) as DirRow[]) rows.set(row.id, row);
    for (const [below, belowInode] of pathsOf(rows, dirId, rel)) this.want(lw, below, belowInode, rediff);
    this.schedulePump(lw);
  }

  /** Every folder below the root in the index, with its inode. */
  private treeOf(location: Location, rootEntryId: number): Map<string, number> {
    const rows = new Map<number, DirRow>();
    for (let after = 0; ; ) {
      const page = this.dirsAfter.all(after, location.id, ROWS_PER_TURN) as DirRow[];
      for (const row of page) rows.set(row.id, row);
      if (page.length < ROWS_PER_TURN) break;
      after = page.at(-1)!.id;
    }
    return pathsOf(rows, rootEntryId);
  }

  private want(lw: LocationWatches, rel: string, inode: number, rediff: boolean): void {
    if (lw.watched.has(rel) || this.excluded(lw, rel)) return;
    lw.polled.delete(rel);
    lw.queued.set(rel, { inode, rediff: rediff || (lw.queued.get(rel)?.rediff ?? false) });
    lw.link(rel);
  }

  private schedulePump(lw: LocationWatches): void {
    if (lw.queued.size === 0 || this.closed) return;
    this.work.add(lw);
    this.pump ??= setImmediate(() => this.runPump());
  }

  /** A library inside a location would otherwise re-index its own database writes, forever. */
  private excluded(lw: LocationWatches, rel: string): boolean {
    return lw.excludedRels.length > 0 && lw.excludedRels.some((x) => rel === x || x === '' || rel.startsWith(x + '/'));
  }

  /** Starts watches for up to SLICE_MS, then gives the thread back (FUSE calls wait otherwise). */
  private runPump(): void {
    this.pump = undefined;
    const until = performance.now() + SLICE_MS;
    let out = false;
    let closedHere = 0;
    while (this.retired.length > 0 && !out) {
      this.retired.pop()!.close();
      if (++closedHere % 16 === 0 && performance.now() > until) out = true;
    }
    for (const lw of this.work) {
      if (out) break;
      let n = 0;
      for (const [rel, { inode, rediff }] of lw.queued) {
        // The clock is read every 16 watches: each costs ~70 µs.
        if (++n % 16 === 0 && performance.now() > until) {
          out = true;
          break;
        }
        lw.queued.delete(rel);
        if (this.startWatch(lw, rel, inode) && rediff) this.options.onChange(lw.location, rel);
      }
      if (lw.queued.size === 0) this.work.delete(lw);
      if (out) break;
    }
    if ((this.work.size > 0 || this.retired.length > 0) && !this.closed) this.pump = setImmediate(() => this.runPump());
    if (this.work.size === 0) for (const resolve of this.idle.splice(0)) resolve();
  }

  /** Watches one folder; false when it is gone or refused (then polled, or left to its parent's diff). */
  private startWatch(lw: LocationWatches, rel: string, inode: number): boolean {
    const { location } = lw;
    const abs = rel === '' ? location.rootPath : path.join(location.rootPath, rel);
    const record: Watched = { watch: { close() {} }, inode: Number.isNaN(inode) ? inodeOf(abs) : inode, live: true };
    // libuv names an event on the watched folder itself (deleted, moved, its attributes) by
    // the folder's own base name, as if a child of that name: such a name is not trusted.
    const ownName = path.basename(abs);
    try {
      record.watch = this.watchFolder(
        abs,
        (name) => record.live && !this.closed && this.options.onChange(location, rel, name === null || name === ownName ? undefined : name),
        (err) => {
          // A folder deleted under its watch can end it with an error: its parent's diff settles it.
          log.debug({ op: 'watch', location: location.name, rel, err: String(err) }, 'folder watch ended');
          if (!record.live) return;
          record.live = false;
          record.watch.close();
          if (lw.watched.get(rel) === record) lw.watched.delete(rel);
          if (!this.closed) this.options.onChange(location, rel === '' ? '' : parentRel(rel));
        },
      );
    } catch (err) {
      const code = systemCode(err);
      if (code === 'ENOSPC' || code === 'EMFILE' || code === 'ENFILE') {
        this.poll(lw, rel, code);
        return false;
      }
      // Gone or unreadable since the diff: the next diff of its parent settles it.
      lw.drop(rel);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') log.warn({ op: 'watch', location: location.name, rel, err: String(err) }, 'folder not watched');
      return false;
    }
    lw.watched.set(rel, record);
    lw.link(rel);
    return true;
  }

  /** The kernel refused a watch: the folder is re-diffed every pollMs, and the user told which limit to raise. */
  private poll(lw: LocationWatches, rel: string, code: string): void {
    lw.polled.add(rel);
    lw.link(rel);
    if (!this.warnedLimit) {
      this.warnedLimit = true;
      const limit = code === 'ENOSPC' ? 'fs.inotify.max_user_watches' : 'fs.inotify.max_user_instances';
      const message =
        `the kernel refused more folder watches (${code}: ${limit} = ${readLimit(limit) ?? '?'} reached); folders past the limit are re-checked every ${this.pollMs / 1000} s instead. ` +
        `Raise it with 'sysctl -w ${limit}=524288' (and a line in /etc/sysctl.d/ to keep it)` +
        (code === 'ENOSPC' ? '' : ', or raise the open-file limit (ulimit -n)');
      log.warn({ op: 'watch', location: lw.location.name, code, limit, value: readLimit(limit), pollMs: this.pollMs }, message);
      this.options.onWarning?.(message);
    }
    if (!this.pollTimer) {
      // Not unref'd: like a watch, polling keeps a watching process alive.
      this.pollTimer = setInterval(() => this.pollNow(), this.pollMs);
    }
  }

  /** Re-diffs the polled folders and tries once more to watch them (watches may have been freed). */
  private pollNow(): void {
    if (this.closed) return;
    let any = false;
    for (const lw of this.byLocation.values()) {
      for (const rel of [...lw.polled]) {
        any = true;
        this.options.onChange(lw.location, rel);
        this.want(lw, rel, NaN, false);
      }
      this.schedulePump(lw);
    }
    if (!any) {
      clearInterval(this.pollTimer);
      this.pollTimer = undefined;
    }
  }

  /**
   * Watches the root's parent for the root's own name: a root that goes (an unplugged
   * drive) is reported, and one that comes back or is replaced is diffed in full (the
   * diff checks it is the same tree). Without a parent to watch, the root is polled.
   */
  private guardRoot(lw: LocationWatches): void {
    const { location } = lw;
    const rootName = path.basename(location.rootPath);
    const onParentEvent = (name: string | null) => {
      if (this.closed || (name !== null && name !== rootName)) return;
      const st = statOrUndefined(location.rootPath);
      const root = lw.watched.get('');
      if (!st?.isDirectory()) {
        // Gone: stop following the old folder wherever it went; the diff reports the missing root.
        if (root || lw.has('')) {
          lw.drop('');
          this.options.onChange(location, '');
        }
        return;
      }
      if (root && root.inode === st.ino) return;
      lw.drop('');
      this.options.onChange(location, 'all');
    };
    try {
      lw.guard = this.watchFolder(path.dirname(location.rootPath), onParentEvent, (err) => {
        log.debug({ op: 'watch', location: location.name, err: String(err) }, "watch of the root's parent ended");
      });
    } catch (err) {
      log.debug({ op: 'watch', location: location.name, err: String(err) }, "the root's parent cannot be watched; the root is checked every pollMs");
      const timer = setInterval(() => onParentEvent(null), this.pollMs);
      lw.guard = { close: () => clearInterval(timer) };
    }
  }
}

/** Paths (relative to the folder `topId` at `topRel`) of folder rows below it, with their inodes. */
function pathsOf(rows: Map<number, DirRow>, topId: number, topRel = ''): Map<string, number> {
  const rels = new Map<number, string>([[topId, topRel]]);
  const relOf = (row: DirRow): string | undefined => {
    // Iterative: a deep tree must not overflow the stack.
    const chain: DirRow[] = [];
    let current: DirRow | undefined = row;
    let base: string | undefined;
    while (current) {
      base = rels.get(current.id);
      if (base !== undefined) break;
      chain.push(current);
      const parentRelKnown = rels.get(current.parent_id);
      if (parentRelKnown !== undefined) {
        base = parentRelKnown;
        break;
      }
      current = rows.get(current.parent_id);
    }
    if (base === undefined) return undefined;
    for (let i = chain.length - 1; i >= 0; i--) {
      base = join(base, chain[i]!.name);
      rels.set(chain[i]!.id, base);
    }
    return base;
  };
  const out = new Map<string, number>();
  for (const row of rows.values()) {
    if (row.id === topId) continue;
    const rel = relOf(row);
    if (rel !== undefined) out.set(rel, row.inode);
  }
  return out;
}

function readLimit(name: string): number | undefined {
  try {
    return Number(fs.readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim());
  } catch {
    return undefined;
  }
}

function inodeOf(abs: string): number {
  return statOrUndefined(abs)?.ino ?? NaN;
}

function join(dirRel: string, name: string): string {
  return dirRel === '' ? name : `${dirRel}/${name}`;
}

function parentRel(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash < 0 ? '' : rel.slice(0, slash);
}

function baseName(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}
