// A location of a real library under the live watcher, for the watcher's tests.
import type { Test } from 'tap';
import { EntryStore, type Entry } from '../src/vdfs/entries.js';
import type { IndexSummary } from '../src/vdfs/indexer/summary.js';
import type { Library } from '../src/vdfs/library.js';
import type { Location } from '../src/vdfs/locations.js';
import { startWatcher, type Watcher, type WatcherOptions } from '../src/vdfs/watcher.js';

export interface WatchedLocation {
  library: Library;
  root: string;
  location: Location;
  watcher: Watcher;
  /** What each batch the watcher applied did, in order. */
  summaries: IndexSummary[];
  errors: unknown[];
  /** The entry at a path relative to the location root, if indexed. */
  at(rel: string): Entry | undefined;
}

/** A watcher once its start-up (watches, then the diff with the disk) is done. */
export async function watchReady(...args: Parameters<typeof startWatcher>): Promise<Watcher> {
  const watcher = await startWatcher(...args);
  await watcher.ready;
  return watcher;
}

/** Watches `location` (its folder at `root`) until its start-up is done, keeping what it applies and its errors; closed when the test ends. */
export async function watchLocation(t: Test, library: Library, root: string, location: Location, options: WatcherOptions = {}): Promise<WatchedLocation> {
  const summaries: IndexSummary[] = [];
  const errors: unknown[] = [];
  const watcher = await watchReady(library, [location], { ...options, onApplied: (s) => summaries.push(s), onError: (e) => errors.push(e) });
  t.teardown(() => watcher.close());
  const store = new EntryStore(library.db);
  const at = (rel: string) => store.resolve(location.rootEntryId!, rel.split('/'));
  return { library, root, location, watcher, summaries, errors, at };
}
