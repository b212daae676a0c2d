// The indexer against real folders and real library files: what it counts as new,
// modified, moved and deleted, folder sizes, ignore rules, the three index modes, an
// unchanged tree costing no writes, and a run killed with SIGKILL leaving a library the
// next run finishes into the same result as a fresh index.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { blake3 } from '@napi-rs/blake-hash';
import t, { type Test } from 'tap';
import { contentHashOfFile } from '../src/vdfs/content/identity.js';
import { EntryStore, type Entry } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import type { IndexSummary } from '../src/vdfs/indexer/summary.js';
import { initLibrary } from '../src/vdfs/library.js';
import { addLocation, requireLocation } from '../src/vdfs/locations.js';
import { findDuplicates } from '../src/vdfs/dupes.js';
import { sdJson, spawnSd } from './cli-process.js';
import { tempDir, tempLibrary, waitFor, writeTree } from './helpers.js';
import { assertAggregatesExact, assertClosureExact } from './index-assertions.js';

type Db = Database.Database;

/** Every entry of the library's locations keyed by "location/relative/path" (roots as "location"). */
function entriesByPath(db: Db): Map<string, Entry & { fullHash: string | null }> {
  const all = db.prepare(`SELECT e.*, l.name AS location, ci.full_hash FROM entries e JOIN locations l ON l.id = e.location_id
                          LEFT JOIN content_identities ci ON ci.id = e.content_id`).all() as Array<Record<string, unknown>>;
  const byId = new Map(all.map((r) => [r.id as number, r]));
  const pathOf = (r: Record<string, unknown>): string => (r.parent_id === null ? (r.location as string) : `${pathOf(byId.get(r.parent_id as number)!)}/${r.name as string}`);
  const out = new Map<string, Entry & { fullHash: string | null }>();
  for (const r of all) {
    out.set(pathOf(r), {
      id: r.id as number, deviceId: r.device_id as string, locationId: r.location_id as number, parentId: r.parent_id as number | null,
      name: r.name as string, kind: r.kind as Entry['kind'], size: r.size as number, mtime: r.mtime as number, inode: r.inode as number,
      mode: r.mode as number, contentId: r.content_id as string | null, aggregateSize: r.aggregate_size as number, fullHash: r.full_hash as string | null,
    });
  }
  return out;
}

function indexedPaths(db: Db): string[] {
  return [...entriesByPath(db).keys()].sort();
}

/** A temporary folder on a RAM disk when there is one: big trees are quick to make and remove. */
function fastTempDir(t: Test, prefix: string): string {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const EPOCH = new Date('2024-03-01T12:00:00Z');

t.test('new, modified (size or mtime), moved (same inode) and deleted entries are counted, content ids follow the bytes', async (t) => {
  const library = tempLibrary(t);
  const root = fs.realpathSync(writeTree(tempDir(t), {
    'docs/a.txt': 'alpha',
    'docs/b.txt': 'bravo!',
    'docs/c.txt': 'charlie',
    'media/x.bin': Buffer.alloc(1000, 7),
    'old/one.txt': 'one',
    'old/two.txt': 'two2',
    'keep.txt': 'keep',
  }));
  const store = new EntryStore(library.db);
  const location = addLocation(library.db, store, library.device.id, { path: root, name: 'data' });
  const at = (rel: string) => store.resolve(location.rootEntryId!, rel.split('/'))!;
  const first = indexLocation(library, location);
  t.match(first.counts, { scanned: 10, new: 10, modified: 0, moved: 0, deleted: 0, identified: 7 }, 'first index: 3 folders and 7 files are new, 7 content ids');
  t.equal(at('docs/a.txt').contentId, contentHashOfFile(path.join(root, 'docs/a.txt'))!.contentId, 'a file gets its content id');
  const before = { a: at('docs/a.txt'), b: at('docs/b.txt'), c: at('docs/c.txt'), x: at('media/x.bin'), keep: at('keep.txt') };

  // New files first: a file created after a delete may get the freed inode (see the test below).
  fs.writeFileSync(path.join(root, 'new.txt'), 'brand new');
  fs.appendFileSync(path.join(root, 'docs/a.txt'), ' and more'); // size changes
  fs.writeFileSync(path.join(root, 'docs/b.txt'), 'BRAVO!'); // same size, new bytes, new mtime
  fs.utimesSync(path.join(root, 'docs/b.txt'), EPOCH, new Date(EPOCH.getTime() + 5000));
  fs.utimesSync(path.join(root, 'docs/c.txt'), EPOCH, EPOCH); // mtime only, same bytes
  fs.renameSync(path.join(root, 'media/x.bin'), path.join(root, 'docs/x.bin'));
  fs.rmSync(path.join(root, 'old'), { recursive: true });

  const second = indexLocation(library, location);
  const c = second.counts;
  t.match(c, { new: 1, modified: 3, moved: 1, deleted: 3, identified: 4 }, 'second index: 1 new, 3 modified, 1 moved, 3 deleted (a folder with 2 files), 4 content ids');
  t.equal(c.new + c.modified + c.unchanged, c.scanned, 'every entry seen is new, modified or unchanged');
  t.equal(c.scanned, 8, 'eight entries seen on disk');

  const a = at('docs/a.txt');
  t.equal(a.id, before.a.id, 'a modified file keeps its entry');
  t.equal(a.size, 14, 'its new size is recorded');
  t.not(a.contentId, before.a.contentId, 'a size change gives a new content id');
  t.equal(a.contentId, contentHashOfFile(path.join(root, 'docs/a.txt'))!.contentId, 'the new content id is that of the new bytes');
  t.not(at('docs/b.txt').contentId, before.b.contentId, 'same size with a new mtime is re-hashed: new bytes, new content id');
  t.equal(at('docs/c.txt').mtime, EPOCH.getTime(), 'an mtime-only change is recorded');
  t.equal(at('docs/c.txt').contentId, before.c.contentId, 'an mtime-only change is re-hashed to the same content id');
  const x = at('docs/x.bin');
  t.equal(x.id, before.x.id, 'a moved file keeps its entry id (found by inode)');
  t.equal(x.contentId, before.x.contentId, 'and its content id');
  t.equal(store.resolve(location.rootEntryId!, ['media', 'x.bin']), undefined, 'nothing is left at the old path');
  t.equal(store.resolve(location.rootEntryId!, ['old']), undefined, 'the deleted folder is gone');
  t.equal(library.db.prepare("SELECT count(*) FROM entries WHERE name IN ('one.txt', 'two.txt')").pluck().get(), 0, 'and the files that were in it');
  t.equal(at('keep.txt').id, before.keep.id, 'an untouched file keeps its entry');

  t.equal(at('docs').aggregateSize, 14 + 6 + 7 + 1000, 'docs holds a, b, c and the moved x');
  t.equal(at('media').aggregateSize, 0, 'media is empty after the move');
  t.equal(store.get(location.rootEntryId!)!.aggregateSize, 14 + 6 + 7 + 1000 + 4 + 9, 'the root holds every file');
  assertAggregatesExact(t, library.db);
  assertClosureExact(t, library.db);
});

t.test('a new file that reuses the inode of a deleted one is new, not a move of it', async (t) => {
  const library = tempLibrary(t);
  const root = fs.realpathSync(writeTree(tempDir(t), { 'old/report.txt': 'the old report', 'keep.txt': 'keep' }));
  const store = new EntryStore(library.db);
  const location = addLocation(library.db, store, library.device.id, { path: root, name: 'reuse' });
  indexLocation(library, location);
  const old = store.resolve(location.rootEntryId!, ['old', 'report.txt'])!;
  fs.rmSync(path.join(root, 'old/report.txt'));
  fs.writeFileSync(path.join(root, 'unrelated.bin'), 'something else entirely, written later');
  const reused = fs.statSync(path.join(root, 'unrelated.bin')).ino === old.inode;
  if (!reused) {
    t.pass('this file system did not hand out the freed inode again; nothing to check');
    return;
  }
  const summary = indexLocation(library, location);
  t.match(summary.counts, { new: 1, deleted: 1, moved: 0 }, 'counted as one new file and one deleted');
  t.not(store.resolve(location.rootEntryId!, ['unrelated.bin'])!.id, old.id, 'the new file does not take the deleted file\'s entry');
  assertClosureExact(t, library.db);
});

t.test('folder sizes follow files growing, shrinking, moving across folders and going away', async (t) => {
  const library = tempLibrary(t);
  const root = fs.realpathSync(writeTree(tempDir(t), {
    'a/b/c/deep.bin': Buffer.alloc(4000),
    'a/b/mid.bin': Buffer.alloc(300),
    'a/top.bin': Buffer.alloc(20),
    'z/other.bin': Buffer.alloc(1),
  }));
  const store = new EntryStore(library.db);
  const location = addLocation(library.db, store, library.device.id, { path: root, name: 'sizes', mode: 'shallow' });
  const size = (rel: string) => (rel === '' ? store.get(location.rootEntryId!)! : store.resolve(location.rootEntryId!, rel.split('/'))!).aggregateSize;
  indexLocation(library, location);
  t.same([size(''), size('a'), size('a/b'), size('a/b/c'), size('z')], [4321, 4320, 4300, 4000, 1], 'sizes after the first index');

  fs.truncateSync(path.join(root, 'a/b/c/deep.bin'), 10);
  fs.writeFileSync(path.join(root, 'a/b/mid.bin'), Buffer.alloc(700));
  fs.renameSync(path.join(root, 'a/top.bin'), path.join(root, 'z/top.bin'));
  indexLocation(library, location);
  t.same([size(''), size('a'), size('a/b'), size('a/b/c'), size('z')], [731, 710, 710, 10, 21], 'sizes after shrink, growth and a move across folders');

  fs.renameSync(path.join(root, 'a/b'), path.join(root, 'z/b'));
  indexLocation(library, location);
  t.same([size(''), size('a'), size('z'), size('z/b')], [731, 0, 731, 710], 'sizes after moving a whole folder');

  fs.rmSync(path.join(root, 'z/b'), { recursive: true });
  indexLocation(library, location);
  t.same([size(''), size('a'), size('z')], [21, 0, 21], 'sizes after deleting a folder');
  assertAggregatesExact(t, library.db);
  assertClosureExact(t, library.db);
});

t.test('re-indexing an unchanged tree writes nothing', async (t) => {
  const tree: Record<string, string> = {};
  for (let d = 0; d < 12; d++) for (let f = 0; f < 25; f++) tree[`d${d}/sub${f % 3}/f${f}.txt`] = `file ${d} ${f}`;
  tree['empty.txt'] = '';
  const root = writeTree(tempDir(t), tree);
  const library = tempLibrary(t);
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'same' });
  t.equal(indexLocation(library, location).counts.identified, 300, 'the first index identifies every non-empty file');

  // The same tree again through the library API, counted by the connection that indexes.
  const changes = () => library.db.prepare('SELECT total_changes()').pluck().get() as number;
  const beforeChanges = changes();
  const again = indexLocation(library, requireLocation(library.db, library.device.id, 'same'));
  t.equal(changes(), beforeChanges, 'total_changes() of the indexing connection is unchanged');
  t.match(again.counts, { new: 0, modified: 0, moved: 0, deleted: 0, identified: 0 }, 'the API run reports no change');

  // And through `sd index` in its own process, watched from this connection; once its first
  // run has read the contents' bytes (extraction: the API index above does not).
  const [first] = await sdJson<IndexSummary[]>(t, ['index'], { library: library.dir });
  t.equal(first!.counts.extracted, 300, 'the first sd index reads every content the API index identified');
  const version = () => library.db.pragma('data_version', { simple: true }) as number;
  const walSize = () => fs.statSync(`${library.dbPath}-wal`).size;
  const dataVersion = version();
  const wal = walSize();
  const stamp = library.db.prepare('SELECT last_indexed_at FROM locations').pluck().get();
  const [summary] = await sdJson<IndexSummary[]>(t, ['index'], { library: library.dir });
  t.match(summary!.counts, { new: 0, modified: 0, moved: 0, deleted: 0, identified: 0, fullHashed: 0 }, 'sd index reports no change');
  t.equal(summary!.counts.unchanged, summary!.counts.scanned, 'every entry is unchanged');
  t.equal(summary!.counts.scanned, 12 + 36 + 300 + 1, 'and every entry was looked at');
  t.equal(version(), dataVersion, 'no transaction was committed (PRAGMA data_version seen from a second connection is unchanged)');
  t.equal(walSize(), wal, 'the write-ahead log did not grow');
  t.equal(library.db.prepare('SELECT last_indexed_at FROM locations').pluck().get(), stamp, 'not even the index time stamp was written');

  fs.writeFileSync(path.join(root, 'd3/sub1/f1.txt'), 'changed!!');
  const [changed] = await sdJson<IndexSummary[]>(t, ['index'], { library: library.dir });
  t.match(changed!.counts, { modified: 1, identified: 1 }, 'one changed file is one modification');
  t.not(version(), dataVersion, 'and that run did commit (the check above can see commits)');
});

const IGNORE_TREE: Record<string, string> = {
  '.git/config': '[core]',
  '.git/objects/ab/cdef': 'blob',
  'node_modules/pkg/index.js': 'module.exports = 1',
  'src/node_modules/inner/x.js': 'nested node_modules too',
  '.gitignore': '*.log\n!keep.log\nbuild/\n',
  'app.js': 'code',
  'debug.log': 'ignored by *.log',
  'keep.log': 'kept by !keep.log',
  'src/app.log': 'ignored below the root too',
  'build/out.js': 'ignored by build/',
  'sub/.gitignore': 'secret.txt\n',
  'sub/secret.txt': 'ignored by the nested .gitignore',
  'sub/deeper/secret.txt': 'and below it',
  'sub/public.txt': 'kept',
  'secret.txt': 'kept: the nested rule holds only in sub/',
  '.hidden/inside.txt': 'a hidden folder',
  '.dotfile': 'a hidden file',
  'notes.tmp': 'ignored by --ignore',
  'drafts/x.tmp': 'ignored by --ignore',
  'drafts/x.md': 'kept',
};

t.test('ignore rules: .git, node_modules, .gitignore patterns (nested too), --ignore, and --no-hidden', async (t) => {
  const root = fs.realpathSync(writeTree(tempDir(t), IGNORE_TREE));
  const lib = path.join(tempDir(t, 'sd-lib-'), 'lib');
  initLibrary(lib, 'ignorer').library.close();
  const added = await sdJson<{ index: IndexSummary }>(t, ['location', 'add', root, '--name', 'proj', '--ignore', '*.tmp'], { library: lib });
  const db = new Database(path.join(lib, 'library.db'), { readonly: true });
  t.teardown(() => db.close());
  t.same(indexedPaths(db), [
    'proj', 'proj/.dotfile', 'proj/.gitignore', 'proj/.hidden', 'proj/.hidden/inside.txt', 'proj/app.js', 'proj/drafts', 'proj/drafts/x.md',
    'proj/keep.log', 'proj/secret.txt', 'proj/src', 'proj/sub', 'proj/sub/.gitignore', 'proj/sub/deeper', 'proj/sub/public.txt',
  ], 'exactly the files no rule skips are indexed');
  t.ok(added.index.counts.ignored >= 9, `the summary counts ignored names (${added.index.counts.ignored})`);

  const library = tempLibrary(t);
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'proj', includeHidden: false });
  indexLocation(library, location);
  t.same(indexedPaths(library.db), [
    'proj', 'proj/app.js', 'proj/drafts', 'proj/drafts/x.md', 'proj/drafts/x.tmp', 'proj/keep.log', 'proj/notes.tmp', 'proj/secret.txt',
    'proj/src', 'proj/sub', 'proj/sub/deeper', 'proj/sub/public.txt',
  ], 'without hidden files no dot name is indexed, while the .gitignore files still apply');

  // The rules hold on re-index too: ignored files appearing later change nothing.
  fs.writeFileSync(path.join(root, 'late.log'), 'ignored');
  fs.writeFileSync(path.join(root, 'node_modules/pkg/more.js'), 'ignored');
  fs.writeFileSync(path.join(root, 'sub/deeper/secret.txt'), 'still ignored');
  const [again] = await sdJson<IndexSummary[]>(t, ['index'], { library: lib });
  t.equal(again!.counts.new, 0, 'ignored files appearing later are not indexed either');
});

t.test('sd location add --no-hidden is remembered by the location', async (t) => {
  const root = writeTree(tempDir(t), { '.dot/x': 'x', 'plain.txt': 'p' });
  const lib = path.join(tempDir(t, 'sd-lib-'), 'lib');
  initLibrary(lib, 'hider').library.close();
  const added = await sdJson<{ location: { includeHidden: boolean }; index: IndexSummary }>(t, ['location', 'add', root, '--no-hidden'], { library: lib });
  t.equal(added.location.includeHidden, false, 'the location skips hidden names');
  t.equal(added.index.counts.new, 1, 'only plain.txt is indexed');
});

t.test('shallow mode records names, sizes and times but no content ids', async (t) => {
  const root = writeTree(tempDir(t), { 'a.txt': 'aaa', 'b/c.bin': Buffer.alloc(200_000, 1), 'same.txt': 'aaa' });
  const library = tempLibrary(t);
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'quick', mode: 'shallow' });
  const summary = indexLocation(library, location);
  t.equal(summary.counts.new, 4, 'every entry is indexed');
  t.equal(summary.counts.identified, 0, 'no content ids in the summary');
  t.equal(library.db.prepare('SELECT count(*) FROM entries WHERE content_id IS NOT NULL').pluck().get(), 0, 'no entry has a content id');
  t.equal(library.db.prepare('SELECT count(*) FROM content_identities').pluck().get(), 0, 'no content identity is stored');
  t.equal(entriesByPath(library.db).get('quick/b/c.bin')?.size, 200_000, 'sizes are recorded');
  t.same(findDuplicates(library.db), [], 'and no duplicates can be seen without content ids');
});

t.test('deep mode stores the full BLAKE3 of every file, equal to hashing the whole file', async (t) => {
  const big = Buffer.alloc(5 * 1024 * 1024 + 123);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  const root = writeTree(tempDir(t), { 'small.txt': 'hello deep', 'mid.bin': Buffer.alloc(150_000, 9), 'dir/big.bin': big, 'empty': '' });
  const library = tempLibrary(t);
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'deep', mode: 'deep' });
  t.equal(indexLocation(library, location).counts.fullHashed, 3, 'three non-empty files are fully hashed');
  const entries = entriesByPath(library.db);
  for (const rel of ['small.txt', 'mid.bin', 'dir/big.bin']) {
    const e = entries.get(`deep/${rel}`)!;
    t.equal(e.fullHash, blake3(fs.readFileSync(path.join(root, rel))).toString('hex'), `${rel}: full_hash is the BLAKE3 of the whole file`);
    t.equal(e.contentId, contentHashOfFile(path.join(root, rel))!.contentId, `${rel}: and its content id is the sampled one`);
  }
  t.equal(entries.get('deep/empty')!.contentId, null, 'an empty file has neither');
  const stat = await sdJson<{ fullHash: string; contentId: string }>(t, ['stat', path.join(root, 'dir/big.bin')], { library: library.dir });
  t.equal(stat.fullHash, blake3(big).toString('hex'), 'sd stat shows the full hash');
});

/**
 * PRAGMA integrity_check on a new connection, as the next `sd` command would open it.
 * (A connection that ran the FTS5 part of integrity_check before another process wrote
 * a lot after a crash recovery can report a stale "fts5: corruption found" that a new
 * connection does not see; the file itself is fine.)
 */
function integrityCheck(lib: string): unknown {
  const db = new Database(path.join(lib, 'library.db'), { readonly: true });
  try {
    return db.pragma('integrity_check', { simple: true });
  } finally {
    db.close();
  }
}

/** Comparable rows of a whole index: path, kind, size, mtime, inode, content id, folder size. */
function indexFingerprint(db: Db): string[] {
  return [...entriesByPath(db)].map(([p, e]) => [p, e.kind, e.size, e.mtime, e.inode, e.contentId, e.aggregateSize].join('|')).sort();
}

t.test('a killed index run leaves a consistent library and the next run finishes it into a fresh index', async (t) => {
  const DIRS = 60;
  const FILES = 200;
  const root = fastTempDir(t, 'sd-kill-tree-');
  for (let d = 0; d < DIRS; d++) {
    fs.mkdirSync(path.join(root, `dir${d}`));
    for (let f = 0; f < FILES; f++) fs.writeFileSync(path.join(root, `dir${d}`, `file${f}.txt`), `content of ${d}/${f}\n`);
  }
  const total = DIRS + DIRS * FILES;
  const base = fastTempDir(t, 'sd-kill-lib-');
  const lib = path.join(base, 'killed');
  const fresh = path.join(base, 'fresh');
  for (const l of [lib, fresh]) {
    const { library } = initLibrary(l, 'killer');
    addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'big' });
    library.close();
  }
  const freshRun = sdJson<IndexSummary[]>(t, ['index'], { library: fresh, timeoutMs: 120_000 });

  const db = new Database(path.join(lib, 'library.db'));
  t.teardown(() => db.close());
  const count = (sql: string) => db.prepare(sql).pluck().get() as number;
  const killWhen = async (what: string, ready: () => boolean) => {
    const child = spawnSd(['index'], { library: lib });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal === 'SIGKILL' ? -9 : _code)));
    const caught = await waitFor(ready, 20_000, 5);
    child.kill('SIGKILL');
    t.ok(caught, `the run reached ${what} before the kill`);
    t.equal(await exited, -9, `the run was killed during ${what}`);
  };

  await killWhen('discovery', () => count('SELECT count(*) FROM entries') > 1);
  const afterFirstKill = count('SELECT count(*) FROM entries') - 1;
  t.ok(afterFirstKill < total, `killed mid-discovery: ${afterFirstKill} of ${total} entries written`);
  t.equal(integrityCheck(lib), 'ok', 'integrity_check passes after the kill');
  assertClosureExact(t, db);

  await killWhen('content identification', () => count('SELECT count(*) FROM entries WHERE content_id IS NOT NULL') > 0);
  const identified = count('SELECT count(*) FROM entries WHERE content_id IS NOT NULL');
  t.ok(identified < DIRS * FILES, `killed mid-content: ${identified} of ${DIRS * FILES} files identified`);
  t.equal(integrityCheck(lib), 'ok', 'integrity_check passes after the second kill');
  t.same(db.pragma('foreign_key_check'), [], 'no dangling foreign keys');
  assertClosureExact(t, db);
  assertAggregatesExact(t, db);

  const [resumed] = await sdJson<IndexSummary[]>(t, ['index'], { library: lib, timeoutMs: 120_000 });
  t.equal(resumed!.counts.new, 0, 'the next run finds every entry already there');
  t.equal(resumed!.counts.identified, DIRS * FILES - identified, 'and identifies only the files still missing a content id');
  t.equal(resumed!.counts.deleted, 0, 'and deletes nothing');
  const [freshSummary] = await freshRun;
  t.equal(freshSummary!.counts.new, total, 'the fresh index saw the whole tree');
  const fdb = new Database(path.join(fresh, 'library.db'), { readonly: true });
  t.teardown(() => fdb.close());
  const a = indexFingerprint(db);
  const b = indexFingerprint(fdb);
  t.equal(a.length, total + 1, 'the finished library holds every entry');
  t.same(a, b, 'the finished library equals a fresh index of the same tree, entry for entry');
  assertClosureExact(t, db);
  t.equal(integrityCheck(lib), 'ok', 'integrity_check passes at the end');
  t.equal(count(`SELECT count(*) FROM search WHERE search MATCH '"file1"*'`), DIRS * 111, 'the search index finds every name');
});
