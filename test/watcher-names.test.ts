// The watcher diffs only the entries its events name: one change in a folder of 2,000
// files looks at a handful of paths, not 2,000, and leaves the index exactly as a full
// index of the disk would (moves stay moves); whatever needs the whole folder gets it.
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { EntryStore, type Entry } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import type { Library } from '../src/vdfs/library.js';
import { addLocation, type Location } from '../src/vdfs/locations.js';
import { tempDir, tempLibrary, waitFor, writeTree } from './helpers.js';
import { watchLocation, type WatchedLocation } from './watcher-helpers.js';
import { assertAggregatesExact, assertClosureExact } from './index-assertions.js';

const FILES = 2000;
/** Names looked at for a handful of changes: the changed ones, never the folder's 2,000. */
const FEW = 20;

interface Setup extends WatchedLocation {
  /** Entries looked at on disk (counts.scanned) by the batches applied since the last call. */
  scannedSince(): number;
}

/** A location of two folders of FILES files each (and whatever `extra` adds), watched. */
async function bigFolders(t: Test, extra: Record<string, string> = {}): Promise<Setup> {
  const files: Record<string, string> = { ...extra };
  for (const dir of ['big', 'other']) for (let i = 0; i < FILES; i++) files[`${dir}/f${i}.txt`] = `${dir} ${i}`;
  const library = tempLibrary(t);
  const root = fs.realpathSync(writeTree(tempDir(t, 'sd-names-'), files));
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'data' });
  // Indexed before watching: the start-up diff then finds nothing and no batch but the tests' own runs.
  indexLocation(library, location);
  // A debounce long enough that the changes each test makes at once land in one batch.
  const watched = await watchLocation(t, library, root, location, { debounceMs: 300 });
  let seen = watched.summaries.length;
  return {
    ...watched,
    scannedSince() {
      const n = watched.summaries.slice(seen).reduce((sum, s) => sum + s.counts.scanned, 0);
      seen = watched.summaries.length;
      return n;
    },
  };
}

/**
 * Every entry of the location by path: kind, size, mtime, inode, mode. A folder's own
 * mtime is left out: a write inside it changes it, and its entry takes it when its
 * parent is next diffed (the start-up diff), with or without names.
 */
function snapshot(library: Library, location: Location): string[] {
  const store = new EntryStore(library.db);
  const rows: string[] = [];
  const walk = (e: Entry, rel: string) => {
    for (const c of store.children(e.id)) {
      const sub = rel === '' ? c.name : `${rel}/${c.name}`;
      rows.push(`${sub} ${c.kind} ${c.size} ${c.kind === 'dir' ? '-' : c.mtime} ${c.inode} ${c.mode}`);
      if (c.kind === 'dir') walk(c, sub);
    }
  };
  walk(store.get(location.rootEntryId!)!, '');
  return rows.sort();
}

/** The index equals what a full index of the same disk into a fresh library holds. */
function assertEqualsFullIndex(t: Test, s: Setup): void {
  const fresh = tempLibrary(t, 'fresh-device');
  const location = addLocation(fresh.db, new EntryStore(fresh.db), fresh.device.id, { path: s.root, name: 'data' });
  indexLocation(fresh, location);
  t.same(snapshot(s.library, s.location), snapshot(fresh, location), 'the index equals a full index of the disk');
  t.same(s.errors, [], 'no watcher errors');
  assertClosureExact(t, s.library);
  assertAggregatesExact(t, s.library);
}

/** Waits until check() holds and the batches it took are applied. */
async function settles(t: Test, s: Setup, what: string, check: () => boolean): Promise<void> {
  t.ok(await waitFor(check, 5000, 10), what);
  await s.watcher.flush();
}

t.test(`one file created, appended to or deleted in a folder of ${FILES} files: a handful of paths looked at`, async (t) => {
  const s = await bigFolders(t);
  s.scannedSince();

  fs.writeFileSync(path.join(s.root, 'big/new.txt'), 'new');
  await settles(t, s, 'a created file is indexed', () => s.at('big/new.txt')?.contentId != null);
  const created = s.scannedSince();
  t.ok(created > 0 && created <= FEW, `a create looks at ${created} paths`);

  const before = s.at('big/f7.txt')!;
  fs.appendFileSync(path.join(s.root, 'big/f7.txt'), ' and more');
  await settles(t, s, 'an append is indexed', () => s.at('big/f7.txt')?.size === before.size + 9 && s.at('big/f7.txt')?.contentId != null);
  t.equal(s.at('big/f7.txt')!.id, before.id, 'an append keeps the entry');
  t.not(s.at('big/f7.txt')!.contentId, before.contentId, 'and gives it its new content');
  const appended = s.scannedSince();
  t.ok(appended > 0 && appended <= FEW, `an append looks at ${appended} paths`);

  fs.rmSync(path.join(s.root, 'big/f8.txt'));
  await settles(t, s, 'a delete is indexed', () => s.at('big/f8.txt') === undefined);
  const deleted = s.scannedSince();
  t.ok(deleted <= FEW, `a delete looks at ${deleted} paths`);
  t.equal(s.at('big')!.aggregateSize, fs.readdirSync(path.join(s.root, 'big')).reduce((n, f) => n + fs.statSync(path.join(s.root, 'big', f)).size, 0), 'the folder size follows');
  assertEqualsFullIndex(t, s);
});

t.test('a rename within a folder and a move between two big folders stay the same entries', async (t) => {
  const s = await bigFolders(t);
  const renamed = s.at('big/f1.txt')!;
  const moved = s.at('big/f2.txt')!;
  s.scannedSince();
  const from = s.summaries.length;
  const counts = () => s.summaries.slice(from).reduce((n, x) => ({ moved: n.moved + x.counts.moved, deleted: n.deleted + x.counts.deleted, new: n.new + x.counts.new }), { moved: 0, deleted: 0, new: 0 });

  fs.renameSync(path.join(s.root, 'big/f1.txt'), path.join(s.root, 'big/renamed.txt'));
  await settles(t, s, 'the rename is indexed', () => s.at('big/renamed.txt') !== undefined && s.at('big/f1.txt') === undefined);
  t.equal(s.at('big/renamed.txt')!.id, renamed.id, 'a rename keeps the entry');
  const scannedRename = s.scannedSince();
  t.ok(scannedRename <= FEW, `a rename looks at ${scannedRename} paths`);

  fs.renameSync(path.join(s.root, 'big/f2.txt'), path.join(s.root, 'other/moved.txt'));
  await settles(t, s, 'the move is indexed', () => s.at('other/moved.txt') !== undefined && s.at('big/f2.txt') === undefined);
  t.equal(s.at('other/moved.txt')!.id, moved.id, 'a move between folders keeps the entry');
  t.equal(s.at('other/moved.txt')!.contentId, moved.contentId, 'and its content id');
  const scannedMove = s.scannedSince();
  t.ok(scannedMove <= FEW, `a move looks at ${scannedMove} paths`);
  t.same(counts(), { moved: 2, deleted: 0, new: 0 }, 'counted as two moves, nothing new or deleted');
  assertEqualsFullIndex(t, s);
});

t.test('a file replaced by a folder of its name is diffed through the whole folder', async (t) => {
  const s = await bigFolders(t);
  const file = s.at('big/f3.txt')!;
  s.scannedSince();
  fs.rmSync(path.join(s.root, 'big/f3.txt'));
  writeTree(s.root, { 'big/f3.txt/inside/deep.txt': 'deep', 'big/f3.txt/top.txt': 'top' });
  await settles(t, s, 'the folder and what it holds are indexed', () => s.at('big/f3.txt/inside/deep.txt') !== undefined && s.at('big/f3.txt/top.txt') !== undefined);
  t.equal(s.at('big/f3.txt')!.kind, 'dir', 'the name is a folder now');
  t.not(s.at('big/f3.txt')!.id, file.id, 'a new entry, not the file\'s');
  t.ok(s.scannedSince() >= FILES, 'the folder was read whole');
  assertEqualsFullIndex(t, s);
});

t.test('ignored names are skipped as in a listing, and a changed .gitignore re-reads the folder', async (t) => {
  const s = await bigFolders(t, { 'big/.gitignore': '*.tmp\n', 'big/keep.log': 'log' });
  s.scannedSince();
  const ignoredBefore = s.summaries.reduce((n, x) => n + x.counts.ignored, 0);
  fs.writeFileSync(path.join(s.root, 'big/scratch.tmp'), 'ignored');
  fs.writeFileSync(path.join(s.root, 'big/seen.txt'), 'seen');
  await settles(t, s, 'the file beside it is indexed', () => s.at('big/seen.txt') !== undefined);
  t.equal(s.at('big/scratch.tmp'), undefined, 'the name .gitignore skips is not indexed');
  t.ok(s.summaries.reduce((n, x) => n + x.counts.ignored, 0) > ignoredBefore, 'and counted as ignored');
  const named = s.scannedSince();
  t.ok(named <= FEW, `${named} paths looked at`);

  fs.appendFileSync(path.join(s.root, 'big/.gitignore'), '*.log\n');
  await settles(t, s, 'a new rule drops what it now skips', () => s.at('big/keep.log') === undefined);
  t.ok(s.scannedSince() >= FILES, 'a changed .gitignore re-reads the whole folder');
  assertEqualsFullIndex(t, s);
});

t.test('a burst past the named limit reads the folder whole, and every change lands', async (t) => {
  const s = await bigFolders(t);
  s.scannedSince();
  for (let i = 0; i < 100; i++) fs.writeFileSync(path.join(s.root, `big/burst${i}.txt`), `burst ${i}`);
  await settles(t, s, '100 new files are indexed', () => [...Array(100).keys()].every((i) => s.at(`big/burst${i}.txt`) !== undefined));
  t.ok(s.scannedSince() >= FILES, 'the folder was read whole');
  assertEqualsFullIndex(t, s);
});

t.test('a mix of changes in one batch: only the changed names are looked at, and the index equals the disk', async (t) => {
  const s = await bigFolders(t, { 'small/a.txt': 'a', 'small/b.txt': 'b' });
  const ids = { rename: s.at('big/f10.txt')!.id, move: s.at('other/f11.txt')!.id, append: s.at('big/f12.txt')!.id, back: s.at('small/a.txt')!.id };
  s.scannedSince();
  const applied = s.summaries.length;
  fs.writeFileSync(path.join(s.root, 'big/created.txt'), 'created');
  fs.appendFileSync(path.join(s.root, 'big/f12.txt'), ' appended');
  fs.rmSync(path.join(s.root, 'other/f13.txt'));
  fs.renameSync(path.join(s.root, 'big/f10.txt'), path.join(s.root, 'big/f10-renamed.txt'));
  fs.renameSync(path.join(s.root, 'other/f11.txt'), path.join(s.root, 'big/f11-moved.txt'));
  fs.renameSync(path.join(s.root, 'small/a.txt'), path.join(s.root, 'other/from-small.txt'));
  fs.writeFileSync(path.join(s.root, 'other/f14.txt'), 'rewritten, then deleted');
  fs.rmSync(path.join(s.root, 'other/f14.txt'));
  await settles(t, s, 'every change is indexed', () => s.at('big/created.txt') !== undefined && s.at('other/from-small.txt') !== undefined && s.at('other/f14.txt') === undefined && s.at('other/f13.txt') === undefined);
  t.equal(s.at('big/f10-renamed.txt')?.id, ids.rename, 'the rename keeps its entry');
  t.equal(s.at('big/f11-moved.txt')?.id, ids.move, 'the move from other keeps its entry');
  t.equal(s.at('other/from-small.txt')?.id, ids.back, 'the move from small keeps its entry');
  t.equal(s.at('big/f12.txt')?.id, ids.append, 'the append keeps its entry');
  const scanned = s.scannedSince();
  t.ok(scanned <= FEW, `${s.summaries.length - applied} batch(es) looked at ${scanned} paths`);
  assertEqualsFullIndex(t, s);
});

t.test('a flood of events in one batch (where inotify may drop some unseen) diffs every folder it names whole', async (t) => {
  const extra: Record<string, string> = {};
  for (let d = 0; d < 100; d++) extra[`spread/d${d}/keep.txt`] = 'keep';
  const s = await bigFolders(t, extra);
  s.scannedSince();
  // 42 files in each of 100 folders: under the limit per folder, over 4,096 events in all.
  // Written while this thread is busy, so their events are all read into one batch.
  fs.writeFileSync(path.join(s.root, 'big/among-the-flood.txt'), 'one');
  for (let d = 0; d < 100; d++) for (let i = 0; i < 42; i++) fs.writeFileSync(path.join(s.root, `spread/d${d}/f${i}.txt`), `${d} ${i}`);
  await settles(t, s, 'every file is indexed', () => s.at('spread/d99/f41.txt') !== undefined && s.at('big/among-the-flood.txt') !== undefined);
  const scanned = s.scannedSince();
  t.ok(scanned >= FILES + 100 * 43, `every folder was read whole (${scanned} entries looked at)`);
  assertEqualsFullIndex(t, s);
});
