// Indexes a location: walks and diffs the tree (discovery and processing fused per
// folder, in batched transactions), settles deletes and directory sizes (aggregation),
// gives files their content ids (content), and stamps the location (finalize).
// `syncDirectories` is the same processing for just the folders the watcher names.
import fs from 'node:fs';
import path from 'node:path';
import { config } from '../../config.js';
import { SdError, fromSqliteError, systemCode } from '../../errors.js';
import { log } from '../../log.js';
import { EntryStore, type Entry } from '../entries.js';
import type { Library } from '../library.js';
import { markIndexed, type Location } from '../locations.js';
import { IgnoreRules } from './ignore.js';
import { countUnidentified, identifyContent } from './identify.js';
import { Scanner, type InodeSet } from './scanner.js';
import { WarningList, emptyCounts, type IndexProgress, type IndexSummary } from './summary.js';
import { WriteBatch } from './write-batch.js';

export interface IndexOptions {
  onProgress?: (p: IndexProgress) => void;
}

const PROGRESS_EVERY = 500;
/**
 * WAL pages between automatic checkpoints while indexing (the default is 1,000: 4 MB).
 * Each checkpoint copies the WAL into the database and fsyncs both; an index commits
 * thousands of small transactions, and checkpointing every 4 MB of them cost a fifth of
 * its time. One checkpoint at the end copies each page once.
 */
const INDEX_CHECKPOINT_PAGES = 16384;

export function indexLocation(library: Library, location: Location, options: IndexOptions = {}): IndexSummary {
  const started = performance.now();
  const { db } = library;
  const store = new EntryStore(db);
  const counts = emptyCounts();
  const warnings = new WarningList();
  const rootStat = statLocationRoot(location);
  const batch = new WriteBatch(db, config.indexBatchSize);
  const report = options.onProgress;
  const checkpointPages = db.pragma('wal_autocheckpoint', { simple: true }) as number;
  if (checkpointPages > 0 && checkpointPages < INDEX_CHECKPOINT_PAGES) db.pragma(`wal_autocheckpoint = ${INDEX_CHECKPOINT_PAGES}`);
  try {
    const root = requireRootEntry(store, location);
    if (root.mtime !== rootStat.mtimeMs || root.inode !== rootStat.ino || root.mode !== rootStat.mode) {
      batch.write(() => store.update(root.id, { kind: 'dir', size: 0, mtime: rootStat.mtimeMs, inode: rootStat.ino, mode: rootStat.mode }, null));
    }
    const scanner = new Scanner({
      location,
      store,
      batch,
      counts,
      warnings,
      inodes: indexedInodes(library, location),
      onEntry: report && (() => counts.scanned % PROGRESS_EVERY === 0 && report({ phase: 'processing', done: counts.scanned })),
      parallelWalk: true,
    });
    scanner.scanTree(root, '', IgnoreRules.forLocation(location));
    report?.({ phase: 'aggregation', done: counts.scanned });
    scanner.finish();
    batch.commit();

    if (location.indexMode !== 'shallow') {
      const total = report ? countUnidentified(db, location.id) : 0;
      let done = 0;
      identifyContent(db, store, location, counts, warnings, report && (() => ++done % 50 === 0 && report({ phase: 'content', done, total })));
    }
    report?.({ phase: 'finalize', done: counts.scanned });
    // An unchanged tree writes nothing, not even the time stamp.
    if (batch.writes > 0 || counts.identified > 0) {
      markIndexed(db, location.id, Date.now());
      db.pragma('wal_checkpoint(PASSIVE)');
    }
  } catch (err) {
    batch.rollback();
    throw fromSqliteError(err, library.dbPath);
  } finally {
    restoreCheckpointPages(db, checkpointPages);
  }
  const summary: IndexSummary = {
    location: location.name,
    mode: location.indexMode,
    seconds: round((performance.now() - started) / 1000),
    counts,
    warnings: warnings.count,
    warningSamples: warnings.samples,
    errors: 0,
  };
  log.info({ op: 'index', ...summary }, 'indexed');
  return summary;
}

/**
 * Gives content ids to the files of a location still without one (a run stopped before
 * its content phase ended), when a diff found nothing new to do it for them.
 */
export function identifyLeft(library: Library, location: Location): number {
  if (location.indexMode === 'shallow') return 0;
  const counts = emptyCounts();
  const warnings = new WarningList();
  try {
    identifyContent(library.db, new EntryStore(library.db), location, counts, warnings);
  } catch (err) {
    throw fromSqliteError(err, library.dbPath);
  }
  return counts.identified;
}

/**
 * Re-diffs the named folders (paths relative to the location root) and whatever is new
 * below them; then identifies new content. Folders unknown to the index are handled
 * through their nearest indexed ancestor. A folder in `names` changed only at those
 * names (its watch said so): just they are compared, unless one of them needs the whole
 * folder (Scanner.scanNames says which do).
 */
export function syncDirectories(library: Library, location: Location, dirRels: Iterable<string>, names?: ReadonlyMap<string, ReadonlySet<string>>): IndexSummary {
  const started = performance.now();
  const { db } = library;
  const store = new EntryStore(db);
  const counts = emptyCounts();
  const warnings = new WarningList();
  const batch = new WriteBatch(db, config.indexBatchSize);
  try {
    const root = requireRootEntry(store, location);
    /** By folder id: names undefined means the whole folder. */
    const targets = new Map<number, { entry: Entry; rel: string; names: Set<string> | undefined }>();
    for (const rel of dirRels) {
      const found = nearestIndexedDir(store, root, rel);
      if (!found || !fs.existsSync(path.join(location.rootPath, found.rel))) continue;
      // Names hold for the folder they were seen in; an ancestor standing in for it goes whole.
      const named = found.rel === rel ? names?.get(rel) : undefined;
      const target = targets.get(found.entry.id);
      if (!target) targets.set(found.entry.id, { ...found, names: named && new Set(named) });
      else if (target.names && named) for (const name of named) target.names.add(name);
      else target.names = undefined;
    }
    // A watcher batch touches a few folders: ask the index about an inode when one comes up
    // instead of loading every inode of the location (100k at 100k entries) per batch.
    const scanner = new Scanner({ location, store, batch, counts, warnings, inodes: indexedInodeLookup(library, location) });
    const ordered = [...targets.values()].sort((a, b) => a.rel.localeCompare(b.rel));
    for (const { entry, rel, names: changed } of ordered) {
      // An earlier folder of this pass may have moved this one; take it as it is now.
      const current = store.get(entry.id);
      if (current?.kind !== 'dir') continue;
      const currentRel = store.relativePath(current.id);
      const rules = IgnoreRules.forDirectory(location, rel);
      if (changed && currentRel === rel && scanner.scanNames(current, rel, changed, rules)) continue;
      scanner.scanShallow(current, currentRel, rules);
    }
    scanner.finish();
    batch.commit();
    if (location.indexMode !== 'shallow' && counts.new + counts.modified > 0) {
      identifyContent(db, store, location, counts, warnings);
    }
  } catch (err) {
    batch.rollback();
    throw fromSqliteError(err, library.dbPath);
  }
  return {
    location: location.name,
    mode: location.indexMode,
    seconds: round((performance.now() - started) / 1000),
    counts,
    warnings: warnings.count,
    warningSamples: warnings.samples,
    errors: 0,
  };
}

function nearestIndexedDir(store: EntryStore, root: Entry, rel: string): { entry: Entry; rel: string } | undefined {
  const parts = rel === '' ? [] : rel.split('/');
  let current = root;
  let depth = 0;
  for (; depth < parts.length; depth++) {
    const next = store.child(current.id, parts[depth]!);
    if (!next || next.kind !== 'dir') break;
    current = next;
  }
  return { entry: current, rel: parts.slice(0, depth).join('/') };
}

function statLocationRoot(location: Location): fs.Stats {
  try {
    const st = fs.statSync(location.rootPath);
    if (!st.isDirectory()) throw new SdError('NOT_A_DIRECTORY', `location '${location.name}' root ${location.rootPath} is no longer a directory; nothing was changed`);
    return st;
  } catch (err) {
    if (err instanceof SdError) throw err;
    const code = systemCode(err);
    if (code === 'ENOENT') {
      throw new SdError('NOT_FOUND', `location '${location.name}' root ${location.rootPath} is missing (an unplugged drive?); nothing was changed`);
    }
    throw new SdError('PERMISSION', `location '${location.name}' root ${location.rootPath} is not readable (${code ?? String(err)}); nothing was changed`);
  }
}

function requireRootEntry(store: EntryStore, location: Location): Entry {
  const root = location.rootEntryId === null ? undefined : store.get(location.rootEntryId);
  if (!root) throw new SdError('LIBRARY_CORRUPT', `location '${location.name}' has no root entry; remove and add it again`);
  return root;
}

function indexedInodeLookup(library: Library, location: Location): InodeSet {
  const known = library.db.prepare('SELECT 1 FROM entries WHERE inode = ? AND location_id = ? LIMIT 1').pluck();
  const added = new Set<number>();
  return {
    has: (inode) => added.has(inode) || known.get(inode, location.id) !== undefined,
    add: (inode) => void added.add(inode),
  };
}

function indexedInodes(library: Library, location: Location): Set<number> {
  // One array from SQLite is much faster than a row-by-row iterator over a million rows.
  return new Set(library.db.prepare('SELECT inode FROM entries WHERE location_id = ?').pluck().all(location.id) as number[]);
}

function restoreCheckpointPages(db: Library['db'], pages: number): void {
  try {
    db.pragma(`wal_autocheckpoint = ${pages}`);
  } catch {
    // The connection is failing anyway (the error being thrown says why); nothing to restore.
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
