// The start-up diff, its heavy half off the main thread. A worker walks a location and
// compares each folder on disk with the index, read-only on a connection of its own, and
// names the folders that differ (a name added or gone, or a child's kind, size, mtime,
// inode or mode changed). The watcher then re-diffs just those, as it does any folder
// an event names (syncDirectories): the writes stay on the main thread, in line with the
// mount's own, and the mount serves meanwhile. At a million entries the walk and compare
// took 5 s of the main thread before the mount could come up; an unchanged tree now
// costs the main thread nothing.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import path from 'node:path';
import { openReader } from '../db/database.js';
import type { Entry, EntryFields } from '../entries.js';
import type { Location } from '../locations.js';
import { IgnoreRules } from './ignore.js';
import { listedFields, readListing } from './scanner.js';

export interface ChangedFolders {
  /** Folders (relative to the location root) whose listing differs from the index. */
  dirs: string[];
  /** Folders and entries compared. */
  folders: number;
  entries: number;
  /** Files of a content-mode location still without a content id (a run stopped before its content phase ended). */
  unidentified: boolean;
  /** The root could not be read (its errno code or message): nothing was compared. */
  rootUnreadable?: string;
  seconds: number;
}

interface DiffData {
  sdfsStartupDiff: true;
  dbPath: string;
  location: Location;
  /** [0] set to 1 by the main thread: stop at the next folder. */
  stop: Int32Array;
}

/**
 * The worker's young generation, small: the walk makes a string and a stat per name, all
 * garbage a moment later, and with V8's default the worker's heap took 75 MB at a million
 * names before collecting (the mount's peak at start).
 */
const YOUNG_GENERATION_MB = 4;

/** Folders whose listing differs from the index, found by a worker thread; rejects if it fails. */
export function findChangedFolders(dbPath: string, location: Location, signal?: AbortSignal): Promise<ChangedFolders> {
  const stop = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  const data: DiffData = { sdfsStartupDiff: true, dbPath, location, stop };
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
    const onAbort = () => Atomics.store(stop, 0, 1);
    signal?.addEventListener('abort', onAbort, { once: true });
    let result: ChangedFolders | undefined;
    worker.on('message', (m: ChangedFolders) => (result = m));
    worker.on('error', reject);
    worker.on('exit', (code) => {
      signal?.removeEventListener('abort', onAbort);
      if (result) resolve(result);
      else reject(new Error(signal?.aborted ? 'the start-up diff was stopped' : `the start-up diff's thread ended (${code}) without a result`));
    });
  });
}

/** A child as the index holds it: what a folder's listing on disk is compared with. */
type IndexedChild = Pick<Entry, 'id' | 'name' | 'kind' | 'size' | 'mtime' | 'inode' | 'mode'>;

/** The worker: a depth-first walk from the root, one folder listing and its index rows at a time. */
function runDiff({ dbPath, location, stop }: DiffData): ChangedFolders {
  const started = performance.now();
  const result: ChangedFolders = { dirs: [], folders: 0, entries: 0, unidentified: false, seconds: 0 };
  if (location.rootEntryId === null) return result;
  const db = openReader(dbPath);
  try {
    const children = db.prepare('SELECT id, name, kind, size, mtime, inode, mode FROM entries WHERE parent_id = ?');
    const pending: Array<{ id: number; rel: string; rules: IgnoreRules }> = [{ id: location.rootEntryId, rel: '', rules: IgnoreRules.forLocation(location) }];
    for (let folder = pending.pop(); folder && Atomics.load(stop, 0) === 0; folder = pending.pop()) {
      const abs = folder.rel === '' ? location.rootPath : path.join(location.rootPath, folder.rel);
      const { listing, rules } = readListing(abs, folder.rel, folder.rules);
      if (listing.failed) {
        // Gone since its parent was listed, or unreadable: the parent's diff, or the
        // watcher's next look, settles it (an unreadable folder keeps what was known).
        if (folder.rel === '') result.rootUnreadable = listing.errorCode ?? listing.errorText;
        continue;
      }
      result.folders++;
      // The names the index can hold (a name that is not valid UTF-8 is never indexed).
      const onDisk = new Map<string, EntryFields>();
      for (let i = 0; i < listing.names.length; i++) {
        const f = listedFields(listing, i);
        if (f) onDisk.set(f.name, f);
      }
      let differs = false;
      let matched = 0;
      for (const row of children.iterate(folder.id) as Iterable<IndexedChild>) {
        const f = onDisk.get(row.name);
        if (!f) {
          differs = true;
          continue;
        }
        matched++;
        if (f.kind !== row.kind || f.size !== row.size || f.mtime !== row.mtime || f.inode !== row.inode || f.mode !== row.mode) differs = true;
        // A folder's own diff may differ too (its mtime changed with its listing): each is compared.
        if (f.kind === 'dir' && row.kind === 'dir') pending.push({ id: row.id, rel: folder.rel === '' ? f.name : `${folder.rel}/${f.name}`, rules });
      }
      // Names on disk the index lacks.
      if (matched < onDisk.size) differs = true;
      result.entries += listing.names.length;
      if (differs) result.dirs.push(folder.rel);
    }
    // A scan of the location's entries: here rather than on the main thread.
    if (location.indexMode !== 'shallow') {
      result.unidentified = db.prepare(`SELECT EXISTS (SELECT 1 FROM entries WHERE location_id = ? AND kind = 'file' AND size > 0 AND content_id IS NULL)`).pluck().get(location.id) === 1;
    }
  } finally {
    db.close();
  }
  result.seconds = Math.round(performance.now() - started) / 1000;
  return result;
}

if (!isMainThread && (workerData as Partial<DiffData> | null)?.sdfsStartupDiff === true) {
  parentPort!.postMessage(runDiff(workerData as DiffData));
}
