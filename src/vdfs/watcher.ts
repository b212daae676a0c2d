// The live watcher: the folder notifier names the folders whose entries changed, and the
// entry when an event gives it; they are collected for a quiet moment (debounce) and
// handed to the indexer's own diff (`syncDirectories`), once per batch: only the named
// entries of a folder when few are, else its whole listing. The event path reads nothing from disk.
import fs from 'node:fs';
import path from 'node:path';
import { config } from '../config.js';
import { SdError } from '../errors.js';
import { log } from '../log.js';
import { identifyLeft, indexLocation, syncDirectories } from './indexer/indexer.js';
import { findChangedFolders, type ChangedFolders } from './indexer/startup-diff.js';
import type { IndexSummary } from './indexer/summary.js';
import { EntryStore } from './entries.js';
import { FolderNotifier, type WatchFolder } from './folder-notifier.js';
import type { Library } from './library.js';
import type { Location } from './locations.js';

/** What a whole location's diff with the disk found: folders and entries compared, folders re-read. */
export interface LocationDiff {
  location: string;
  folders: number;
  entries: number;
  changedFolders: number;
  seconds: number;
}

export interface WatcherOptions {
  /** Quiet period after the last event before a batch is applied (default config.watchDebounceMs). */
  debounceMs?: number;
  /** Called after every applied batch (and after each start-up index), changed or not, with the folders it re-read ('all' for the location). */
  onApplied?: (summary: IndexSummary, change: { location: Location; dirs: ReadonlySet<string> | 'all' }) => void;
  /** A location's start-up diff (or one after its root came back) compared the disk with the index. */
  onDiffed?: (diff: LocationDiff) => void;
  /** Called for a batch that failed; the watcher keeps going. */
  onError?: (err: unknown) => void;
  /** How a folder is watched (default fs.watch); tests pass one that runs out of watches. */
  watchFolder?: WatchFolder;
  /** How often folders that could not be watched are re-diffed (default config.watchPollMs). */
  pollMs?: number;
  /** Something the user should know and can fix (the inotify watch limit reached). */
  onWarning?: (message: string) => void;
}

export interface Watcher {
  readonly locations: readonly Location[];
  /** Every location is watched and its start-up diff applied (startWatcher returns before). */
  readonly ready: Promise<void>;
  /** Applies the events collected so far now instead of after the debounce. */
  flush(): Promise<void>;
  /**
   * Says that sdfs itself just changed these folders and has indexed the change (the
   * mount's actions). Their events are re-diffed once they have been quiet for
   * `selfQuietMs`, not after every write: a bulk copy into a big folder is one re-diff.
   */
  changedBySelf(location: Location, dirRels: Iterable<string>): void;
  /** Stops watching; events already seen are applied first. */
  close(): Promise<void>;
}

/** How long folders changed through sdfs's own actions wait before their events are re-diffed. */
const SELF_QUIET_MS = 1000;

/** A stream of events never waits longer than this many debounce periods for a quiet moment. */
const MAX_DELAY_PERIODS = 5;

/**
 * Names of one folder a batch diffs one by one (an lstat and an indexed lookup each);
 * past this many the folder's whole listing is read instead (readdir and an lstat per entry).
 */
const NAMED_DIFF_MAX = 64;

/**
 * Events in one location's batch past which every folder of it is diffed whole. libuv
 * drops inotify's queue overflow without a word (its event has no watch), so lost
 * events cannot be told; a flood like this (the kernel queues 16,384 by default) is
 * where they get lost, and a whole listing still finds what a lost event named.
 */
const NAMED_BATCH_EVENTS_MAX = 4096;

/** Per folder of a batch (relative path), the names its events gave, or 'whole' when any entry may have changed. */
type FolderChanges = Map<string, Set<string> | 'whole'>;

/**
 * Watches the locations and keeps their index true. It returns at once: the watches and
 * the start-up diff of every location (so changes made while nothing watched are applied
 * too) run in the background, and `ready` resolves when they are done.
 */
export async function startWatcher(library: Library, locations: Location[], options: WatcherOptions = {}): Promise<Watcher> {
  const debounceMs = options.debounceMs ?? config.watchDebounceMs;
  const maxDelayMs = debounceMs * MAX_DELAY_PERIODS;
  const libraryDir = realOrResolved(library.dir);
  /** Folders to re-diff per location, or 'all' for a full index (its root came back). */
  const pending = new Map<Location, FolderChanges | 'all'>();
  let timer: NodeJS.Timeout | undefined;
  let firstPendingAt: number | undefined;
  let closed = false;
  /** Last time sdfs itself changed a folder, by location id and relative path. */
  const selfChanged = new Map<number, Map<string, number>>();
  let selfTimer: NodeJS.Timeout | undefined;

  const report = (err: unknown, location?: Location) => {
    log.warn({ op: 'watch', location: location?.name, err: err instanceof Error ? err.message : String(err) }, 'watch batch failed');
    options.onError?.(err);
  };

  const store = new EntryStore(library.db);
  const entryOf = (location: Location) => (rel: string) => (location.rootEntryId === null ? undefined : store.resolve(location.rootEntryId, rel === '' ? [] : rel.split('/')));

  const apply = (location: Location, changes: FolderChanges | 'all') => {
    try {
      checkRoot(library, location);
      const dirs = changes === 'all' ? 'all' : existingDirs(location, changes);
      const summary = dirs === 'all' ? indexLocation(library, location) : syncDirectories(library, location, dirs.keys(), namedOnly(dirs));
      // Folders the diff found get a watch (and one more look once watched); gone ones lose theirs.
      notifier.reconcile(location, dirs === 'all' ? 'all' : dirs.keys(), entryOf(location));
      log.debug({ op: 'watch', location: location.name, dirs: changes === 'all' ? 'all' : changes.size, ...summary.counts, seconds: summary.seconds }, 'applied');
      options.onApplied?.(summary, { location, dirs: changes === 'all' ? 'all' : new Set(changes.keys()) });
    } catch (err) {
      // Another writer holding the library is transient: try again later.
      if (err instanceof SdError && err.code === 'LIBRARY_LOCKED' && !closed) requeue(location, changes);
      report(err, location);
    }
  };

  /**
   * Takes out of a batch the folders sdfs changed itself in the last SELF_QUIET_MS; they
   * wait, and are then re-diffed whole (their events are many, and sdfs's own writes).
   */
  const holdSelfChanged = (location: Location, changes: FolderChanges | 'all', now: number): FolderChanges | 'all' => {
    const recent = selfChanged.get(location.id);
    if (changes === 'all' || !recent || closed) return changes;
    const ready: FolderChanges = new Map();
    let wait = Infinity;
    for (const [rel, names] of changes) {
      const at = recent.get(rel);
      if (at !== undefined && now - at < SELF_QUIET_MS) {
        wait = Math.min(wait, at + SELF_QUIET_MS - now);
        note(location, rel, undefined);
      } else {
        recent.delete(rel);
        ready.set(rel, names);
      }
    }
    if (wait !== Infinity && !selfTimer) {
      selfTimer = setTimeout(() => {
        selfTimer = undefined;
        flushNow();
      }, wait + 1);
    }
    return ready;
  };

  /**
   * Full diffs in progress (start-up, a root came back): a worker compares the location
   * with the index, and the folders it names are re-diffed here like any event's.
   */
  const fullDiffs = new Map<Location, Promise<void>>();
  const again = new Set<Location>();
  const stopping = new AbortController();
  const diffWhole = async (location: Location): Promise<void> => {
    let found: ChangedFolders;
    try {
      found = await findChangedFolders(library.dbPath, location, stopping.signal);
    } catch (err) {
      if (closed) return;
      // Correct, only slower and on this thread: the diff as sd index runs it.
      log.warn({ op: 'watch', location: location.name, err: String(err) }, 'the start-up diff could not run in its own thread; diffing here');
      return apply(location, 'all');
    }
    if (closed) return;
    // A missing or replaced root is refused and reported as before (checkRoot).
    if (found.rootUnreadable !== undefined || location.rootEntryId === null) return apply(location, 'all');
    log.info({ op: 'watch', location: location.name, folders: found.folders, entries: found.entries, changed: found.dirs.length, seconds: found.seconds }, 'compared with the disk');
    // The start-up diff knows folders, not names: each is diffed whole.
    if (found.dirs.length > 0) apply(location, new Map(found.dirs.map((rel) => [rel, 'whole'])));
    else if (found.unidentified) identifyLeft(library, location);
    options.onDiffed?.({ location: location.name, folders: found.folders, entries: found.entries, changedFolders: found.dirs.length, seconds: found.seconds });
  };
  const fullDiff = (location: Location, watched = false) => {
    if (closed) return;
    if (fullDiffs.has(location)) return void again.add(location);
    const run = (watched ? Promise.resolve() : notifier.watchIndexed(location))
      .then(() => diffWhole(location))
      .catch((err: unknown) => report(err, location))
      .finally(() => {
        fullDiffs.delete(location);
        if (again.delete(location)) fullDiff(location);
      });
    fullDiffs.set(location, run);
  };

  const flushNow = () => {
    clearTimeout(timer);
    timer = undefined;
    firstPendingAt = undefined;
    const batch = [...pending];
    pending.clear();
    eventCounts.clear();
    const now = Date.now();
    for (const [location, changes] of batch) {
      const ready = holdSelfChanged(location, changes, now);
      if (ready === 'all') fullDiff(location);
      else if (ready.size > 0) apply(location, ready);
    }
  };

  const schedule = () => {
    const now = Date.now();
    firstPendingAt ??= now;
    clearTimeout(timer);
    timer = setTimeout(flushNow, Math.max(0, Math.min(debounceMs, firstPendingAt + maxDelayMs - now)));
  };

  /** Events per location in the pending batch. */
  const eventCounts = new Map<Location, number>();

  /** Adds one change to the pending batch: a name of a folder, or (no name) the whole folder. */
  const note = (location: Location, rel: string, name: string | undefined) => {
    let changes = pending.get(location);
    if (changes === 'all') return;
    if (changes === undefined) pending.set(location, (changes = new Map()));
    const events = (eventCounts.get(location) ?? 0) + 1;
    eventCounts.set(location, events);
    if (events > NAMED_BATCH_EVENTS_MAX) name = undefined;
    if (events === NAMED_BATCH_EVENTS_MAX + 1) for (const folder of changes.keys()) changes.set(folder, 'whole');
    const names = changes.get(rel);
    if (names === 'whole') return;
    if (name === undefined) changes.set(rel, 'whole');
    else if (names === undefined) changes.set(rel, new Set([name]));
    else if (names.size < NAMED_DIFF_MAX || names.has(name)) names.add(name);
    else changes.set(rel, 'whole'); // a burst: one listing costs less than its names one by one
  };

  /** Puts a batch that could not be applied back into the pending one. */
  const requeue = (location: Location, changes: FolderChanges | 'all') => {
    if (changes === 'all') pending.set(location, 'all');
    else for (const [rel, names] of changes) for (const name of names === 'whole' ? [undefined] : names) note(location, rel, name);
    schedule();
  };

  // The notifier names a folder whose entries changed, and the entry when the event gave it
  // (files are not watched themselves: their folder's watch reports their creates, writes,
  // renames and deletes).
  const notifier = new FolderNotifier(library, {
    onChange: (location, dirRel, name) => {
      if (closed) return;
      if (dirRel === 'all') pending.set(location, 'all');
      else note(location, dirRel, name);
      schedule();
    },
    watchFolder: options.watchFolder,
    pollMs: options.pollMs,
    onWarning: options.onWarning,
    exclude: [libraryDir],
  });
  // Start-up, in the background: every location is watched from its index, then compared
  // with the disk, so changes made while nothing watched are applied too. The diff runs once
  // watching is live, so nothing changed in between is missed; events it overlaps only cause
  // a harmless second look at those folders.
  const startup = (async () => {
    const started = performance.now();
    for (const location of locations) if (!closed) await notifier.watchLocation(location);
    log.debug({ op: 'watch', folders: locations.reduce((n, l) => n + notifier.watchedCount(l), 0), ms: Math.round(performance.now() - started) }, 'watching');
    for (const location of locations) fullDiff(location, true);
    await Promise.all(fullDiffs.values());
  })();

  return {
    locations,
    ready: startup,
    async flush() {
      flushNow();
    },
    changedBySelf(location, dirRels) {
      let recent = selfChanged.get(location.id);
      if (!recent) selfChanged.set(location.id, (recent = new Map()));
      const now = Date.now();
      for (const rel of dirRels) recent.set(rel, now);
    },
    async close() {
      if (closed) return;
      closed = true;
      stopping.abort();
      notifier.close();
      clearTimeout(selfTimer);
      flushNow();
      await startup.catch(() => undefined);
      await Promise.all(fullDiffs.values());
    },
  };
}

/** Refuses to apply changes when the root is gone or replaced (an unplugged drive leaves an empty mount point). */
function checkRoot(library: Library, location: Location): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(location.rootPath);
  } catch {
    throw new SdError('NOT_FOUND', `location '${location.name}' root ${location.rootPath} is missing (an unplugged drive?); its index is kept as it was`);
  }
  const root = location.rootEntryId === null ? undefined : new EntryStore(library.db).get(location.rootEntryId);
  if (root && root.inode !== st.ino) {
    throw new SdError('NOT_FOUND', `location '${location.name}' root ${location.rootPath} is another folder than the one indexed (an unmounted drive?); its index is kept; run 'sd index ${location.name}' if this is right`);
  }
}

function parentRel(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash < 0 ? '' : rel.slice(0, slash);
}

/**
 * Each folder, or its nearest ancestor that still exists: a folder gone by now is
 * settled by diffing where it was (whole), even when the event for its parent got lost.
 */
function existingDirs(location: Location, changes: FolderChanges): FolderChanges {
  const found: FolderChanges = new Map();
  const add = (rel: string, names: Set<string> | 'whole') => {
    const now = found.get(rel);
    if (now === undefined) found.set(rel, names);
    else if (now !== 'whole' && names !== 'whole') for (const name of names) now.add(name);
    else found.set(rel, 'whole');
  };
  for (const [rel, names] of changes) {
    let current = rel;
    while (current !== '' && !fs.existsSync(path.join(location.rootPath, current))) current = parentRel(current);
    add(current, current === rel ? names : 'whole');
  }
  return found;
}

/** The folders of a batch known to have changed at their names only. */
function namedOnly(changes: FolderChanges): Map<string, Set<string>> {
  const named = new Map<string, Set<string>>();
  for (const [rel, names] of changes) if (names !== 'whole') named.set(rel, names);
  return named;
}

function realOrResolved(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}
