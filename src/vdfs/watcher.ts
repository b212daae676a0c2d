// The live watcher: chokidar events become the folders they touched, collected for a
// quiet moment (debounce) and handed to the indexer's own diff (`syncDirectories`).
// Only folders are watched: a folder's watch reports its files' changes too.
import fs from 'node:fs';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { config } from '../config.js';
import { SdError } from '../errors.js';
import { log } from '../log.js';
import { indexLocation, syncDirectories } from './indexer/indexer.js';
import { IgnoreRules, crossesIgnoredName } from './indexer/ignore.js';
import type { IndexSummary } from './indexer/summary.js';
import { EntryStore } from './entries.js';
import type { Library } from './library.js';
import type { Location } from './locations.js';

export interface WatcherOptions {
  /** Quiet period after the last event before a batch is applied (default config.watchDebounceMs). */
  debounceMs?: number;
  /** Called after every applied batch (and after each start-up index), changed or not. */
  onApplied?: (summary: IndexSummary) => void;
  /** Called for a batch that failed; the watcher keeps going. */
  onError?: (err: unknown) => void;
}

export interface Watcher {
  readonly locations: readonly Location[];
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
 * Watches the locations and keeps their index true. Before it returns, every location
 * is diffed in full, so changes made while nothing watched are applied too.
 */
export async function startWatcher(library: Library, locations: Location[], options: WatcherOptions = {}): Promise<Watcher> {
  const debounceMs = options.debounceMs ?? config.watchDebounceMs;
  const maxDelayMs = debounceMs * MAX_DELAY_PERIODS;
  const libraryDir = realOrResolved(library.dir);
  /** Folders to re-diff per location, or 'all' for a full index (its root came back). */
  const pending = new Map<Location, Set<string> | 'all'>();
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

  const apply = (location: Location, dirRels: Set<string> | 'all') => {
    try {
      checkRoot(library, location);
      const summary = dirRels === 'all' ? indexLocation(library, location) : syncDirectories(library, location, existingDirs(location, dirRels));
      log.debug({ op: 'watch', location: location.name, dirs: dirRels === 'all' ? 'all' : dirRels.size, ...summary.counts, seconds: summary.seconds }, 'applied');
      options.onApplied?.(summary);
    } catch (err) {
      // Another writer holding the library is transient: try again later.
      if (err instanceof SdError && err.code === 'LIBRARY_LOCKED' && !closed) queue(location, dirRels);
      report(err, location);
    }
  };

  /** Takes out of a batch the folders sdfs changed itself in the last SELF_QUIET_MS; they wait. */
  const holdSelfChanged = (location: Location, dirRels: Set<string> | 'all', now: number): Set<string> | 'all' => {
    const recent = selfChanged.get(location.id);
    if (dirRels === 'all' || !recent || closed) return dirRels;
    const ready = new Set<string>();
    let wait = Infinity;
    for (const rel of dirRels) {
      const at = recent.get(rel);
      if (at !== undefined && now - at < SELF_QUIET_MS) {
        wait = Math.min(wait, at + SELF_QUIET_MS - now);
        const held = pending.get(location);
        if (held === undefined) pending.set(location, new Set([rel]));
        else if (held !== 'all') held.add(rel);
      } else {
        recent.delete(rel);
        ready.add(rel);
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

  const flushNow = () => {
    clearTimeout(timer);
    timer = undefined;
    firstPendingAt = undefined;
    const batch = [...pending];
    pending.clear();
    const now = Date.now();
    for (const [location, dirRels] of batch) {
      const ready = holdSelfChanged(location, dirRels, now);
      if (ready === 'all' || ready.size > 0) apply(location, ready);
    }
  };

  const schedule = () => {
    const now = Date.now();
    firstPendingAt ??= now;
    clearTimeout(timer);
    timer = setTimeout(flushNow, Math.max(0, Math.min(debounceMs, firstPendingAt + maxDelayMs - now)));
  };

  const queue = (location: Location, dirRels: Iterable<string> | 'all') => {
    const set = pending.get(location);
    if (dirRels === 'all') pending.set(location, 'all');
    else if (set === undefined) pending.set(location, new Set(dirRels));
    else if (set !== 'all') for (const rel of dirRels) set.add(rel);
    schedule();
  };

  // chokidar's raw event names the watched folder whose entries changed: files are not
  // watched themselves, so this is how their creates, writes, renames and deletes arrive.
  const onRaw = (details: unknown) => {
    if (closed || !details || typeof details !== 'object' || !('watchedPath' in details) || typeof details.watchedPath !== 'string') return;
    const hit = locate(locations, details.watchedPath);
    if (hit) queue(hit[0], [hit[1]]);
  };

  const onEvent = (event: string, absPath: string) => {
    if (closed) return;
    const hit = locate(locations, absPath);
    if (!hit) return;
    const [location, rel] = hit;
    // A root that comes back (a drive plugged in again) may have changed anywhere below.
    if (rel === '' && event === 'addDir') return queue(location, 'all');
    const dirs = [parentRel(rel)];
    // A folder's own event also names the folder, so a new one is walked and a gone one settled.
    if (event === 'addDir' || event === 'unlinkDir') dirs.push(rel);
    queue(location, dirs);
  };

  const chokidar: FSWatcher = watch(locations.map((l) => l.rootPath), {
    ignoreInitial: true,
    followSymlinks: false, // links are shown as links, never followed (DESIGN: SdPath)
    ignorePermissionErrors: true, // the indexer warns about unreadable folders itself
    // The indexer re-diffs whole folders, so chokidar's rewriting of editor saves buys
    // nothing and its 100 ms hold on unlinks would only add latency.
    atomic: false,
    ignored: ignoredPaths(locations, libraryDir),
  });
  chokidar.on('all', onEvent);
  chokidar.on('raw', (_event, _name, details) => onRaw(details));
  chokidar.on('error', (err: unknown) => report(err));
  // chokidar never says 'ready' when it watches nothing (a device with no location yet,
  // only peers' trees): waiting would hang `sd mount` before it mounts.
  if (locations.length > 0) await new Promise<void>((resolve) => chokidar.once('ready', resolve));

  // The full diff runs once watching is live, so nothing changed in between is missed;
  // events it overlaps only cause a harmless second look at those folders.
  for (const location of locations) apply(location, 'all');

  return {
    locations,
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
      // chokidar 5's add() reopens a closed watcher, and its own unlink handling calls add()
      // when a stat finishes after close(): an fs.watch then outlives close() and keeps the
      // process alive (seen closing mid-rename of a large tree). A closed watcher adds nothing.
      chokidar.add = () => chokidar;
      await chokidar.close();
      clearTimeout(selfTimer);
      flushNow();
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

/** The location holding an absolute path and the path relative to its root ('' for the root). */
function locate(locations: readonly Location[], absPath: string): [Location, string] | undefined {
  for (const location of locations) {
    const root = location.rootPath;
    if (absPath === root) return [location, ''];
    if (absPath.startsWith(root.endsWith(path.sep) ? root : root + path.sep)) {
      return [location, path.relative(root, absPath).split(path.sep).join('/')];
    }
  }
  return undefined;
}

/**
 * chokidar's filter. Files: their folder's watch sees them, and one inotify watch per
 * file costs ~10 KB each and runs into fs.inotify.max_user_watches on big trees. What no
 * location indexes is not watched at all. Only rules that never change while watching
 * apply here; .gitignore files can, so the indexer alone applies those.
 */
function ignoredPaths(locations: readonly Location[], libraryDir: string): (absPath: string, stats?: fs.Stats) => boolean {
  const rules = new Map(locations.map((l) => [l, IgnoreRules.forLocation(l)]));
  return (absPath, stats) => {
    if (stats?.isFile()) return true;
    // A library inside a location would otherwise index its own database writes, forever.
    if (absPath === libraryDir || absPath.startsWith(libraryDir + path.sep)) return true;
    const hit = locate(locations, absPath);
    if (!hit || hit[1] === '') return false;
    const [location, rel] = hit;
    if (crossesIgnoredName(rel)) return true;
    // chokidar asks again with stats before it descends, so folder-only patterns still apply.
    return rules.get(location)!.ignores(parentRel(rel), rel.slice(rel.lastIndexOf('/') + 1), stats?.isDirectory() ?? false);
  };
}

function parentRel(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash < 0 ? '' : rel.slice(0, slash);
}

/**
 * Each folder, or its nearest ancestor that still exists: a folder gone by now is
 * settled by diffing where it was, even when chokidar's event for its parent got lost.
 */
function existingDirs(location: Location, dirRels: Iterable<string>): Set<string> {
  const found = new Set<string>();
  for (const rel of dirRels) {
    let current = rel;
    while (current !== '' && !fs.existsSync(path.join(location.rootPath, current))) current = parentRel(current);
    found.add(current);
  }
  return found;
}

function realOrResolved(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}
