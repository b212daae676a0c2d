// Bad input from issue 3, each a clear one-line error or a counted warning, with
// nothing lost or half-written: missing and unreadable locations, permission-denied
// subtrees, awkward names, symlink loops, overlapping locations, a corrupt, a locked
// and a full library, and files vanishing while an index runs.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import type { IndexSummary } from '../src/vdfs/indexer/summary.js';
import { initLibrary, type Library } from '../src/vdfs/library.js';
import { addLocation, type Location } from '../src/vdfs/locations.js';
import { copyProgram, sd, sdForAnyUser, sdJson, type SdOptions } from './cli-process.js';
import { REPO_ROOT, tempDir, tempLibrary, writeTree } from './helpers.js';
import { assertClosureExact, throwsSdError } from './index-assertions.js';

const NOBODY = { uid: 65534, gid: 65534 };
const isRoot = process.getuid?.() === 0;

type Db = Database.Database;

/** Relative paths of every indexed entry of a location (root excluded), sorted. */
function indexedPaths(db: Db, locationName: string): string[] {
  const all = db.prepare('SELECT e.id, e.parent_id, e.name FROM entries e JOIN locations l ON l.id = e.location_id WHERE l.name = ?').all(locationName) as Array<{ id: number; parent_id: number | null; name: string }>;
  const byId = new Map(all.map((r) => [r.id, r]));
  const rel = (r: { parent_id: number | null; name: string }): string => {
    const parent = r.parent_id === null ? undefined : byId.get(r.parent_id);
    return !parent || parent.parent_id === null ? r.name : `${rel(parent)}/${r.name}`;
  };
  return all.filter((r) => r.parent_id !== null).map(rel).sort();
}

/** Asserts an exit code with exactly one line on stderr that says why. */
function oneLineError(t: Test, r: { code: number; stderr: string }, code: number, message: RegExp, what: string): void {
  t.equal(r.code, code, `${what}: exit ${code}`);
  t.match(r.stderr, /^sd: [^\n]+\n$/, `${what}: one line on stderr (${JSON.stringify(r.stderr.trim())})`);
  t.match(r.stderr, message, `${what}: the message says why`);
}

function openLibraryDb(lib: string, readonly = true): Db {
  return new Database(path.join(lib, 'library.db'), { readonly });
}

function integrityCheck(lib: string): unknown {
  const db = openLibraryDb(lib);
  try {
    return db.pragma('integrity_check', { simple: true });
  } finally {
    db.close();
  }
}

/**
 * A library and tree that user nobody can use (a world-writable parent for both), and an
 * `sd` nobody can run wherever the checkout sits.
 */
function nobodySetup(t: Test): { base: string; lib: string; o: SdOptions } {
  const base = tempDir(t, 'sd-nobody-');
  fs.chmodSync(base, 0o777);
  const lib = path.join(base, 'library');
  return { base, lib, o: { library: lib, ...NOBODY, bin: sdForAnyUser(t), cwd: base } };
}

/** Folders 0755 and files 0644 below root, whatever the umask. */
function openToAll(root: string): void {
  fs.chmodSync(root, 0o755);
  for (const d of fs.readdirSync(root, { withFileTypes: true })) {
    const p = path.join(root, d.name);
    if (d.isDirectory()) openToAll(p);
    else fs.chmodSync(p, 0o644);
  }
}

t.test('a missing location path is a one-line error; a location root gone later changes nothing', async (t) => {
  const base = tempDir(t);
  const library = tempLibrary(t);
  const root = writeTree(path.join(base, 'drive'), { 'a.txt': 'a', 'b/c.txt': 'c' });
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'drive' });
  indexLocation(library, location);
  const o = { library: library.dir };
  fs.renameSync(root, path.join(base, 'unplugged'));
  const [add, index] = await Promise.all([sd(['location', 'add', path.join(base, 'no-such-folder')], o), sd(['index', 'drive'], o)]);
  oneLineError(t, add, 1, /no-such-folder does not exist/, 'adding a folder that does not exist');
  oneLineError(t, index, 1, /root .*drive is missing \(an unplugged drive\?\); nothing was changed/, 'indexing a location whose folder is gone');
  t.same(indexedPaths(library.db, 'drive'), ['a.txt', 'b', 'b/c.txt'], 'the index of the missing location is kept whole');
  const file = path.join(base, 'a-file');
  fs.writeFileSync(file, 'x');
  oneLineError(t, await sd(['location', 'add', file], o), 1, /is not a directory/, 'adding a file as a location');
});

t.test('tests run sd as another user from a checkout in a private folder (mode 700, as /root is)', { skip: !isRoot && 'needs root to run the CLI as nobody' }, async (t) => {
  const home = tempDir(t, 'sd-home-');
  fs.chmodSync(home, 0o700);
  const checkout = path.join(home, 'sdfs');
  fs.mkdirSync(checkout);
  copyProgram(REPO_ROOT, checkout);
  const base = tempDir(t, 'sd-nobody-');
  fs.chmodSync(base, 0o777);
  const o = { library: path.join(base, 'library'), ...NOBODY, cwd: base };
  const direct = await sd(['init', '--name', 'private'], { ...o, bin: path.join(checkout, 'bin', 'sd') });
  t.not(direct.code, 0, 'the private checkout itself cannot be run as nobody');
  await sdJson(t, ['init', '--name', 'private'], { ...o, bin: sdForAnyUser(t, checkout) });
  t.ok(fs.existsSync(path.join(base, 'library', 'library.db')), 'the copy runs as nobody and makes the library');
});

t.test('an unreadable location and a permission-denied subtree (as user nobody)', { skip: !isRoot && 'needs root to run the CLI as nobody' }, async (t) => {
  const { base, lib, o } = nobodySetup(t);
  const tree = writeTree(path.join(base, 'tree'), {
    'open/a.txt': 'a',
    'open/b.txt': 'bb',
    'locked/hidden.txt': 'secret',
    'locked/deeper/more.txt': 'more',
    'unreadable.txt': 'no read for others',
    'top.txt': 'top',
  });
  openToAll(tree);
  const closed = writeTree(path.join(base, 'closed'), { 'x.txt': 'x' });
  fs.chmodSync(closed, 0o000);
  fs.chmodSync(path.join(tree, 'unreadable.txt'), 0o600);
  await sdJson(t, ['init', '--name', 'nobody-box'], o);

  oneLineError(t, await sd(['location', 'add', closed], o), 1, /closed is not readable: EACCES/, 'adding a folder nobody may read');

  // First indexed while readable, then locked: what was known stays, and the run says why.
  const first = await sdJson<{ index: IndexSummary }>(t, ['location', 'add', tree, '--name', 'tree'], o);
  t.equal(first.index.warnings, 1, 'one warning: a file nobody may read gets no content id');
  t.match(first.index.warningSamples, [{ path: path.join(tree, 'unreadable.txt'), reason: /not readable \(EACCES\)/ }], 'the warning names the file and EACCES');
  fs.chmodSync(path.join(tree, 'locked'), 0o000);
  fs.writeFileSync(path.join(tree, 'open/new.txt'), 'new');
  const [again] = await sdJson<IndexSummary[]>(t, ['index'], o);
  t.equal(again!.warnings, 2, 'the locked folder is a counted warning (and the unreadable file still is)');
  t.match(again!.warningSamples, [{ path: path.join(tree, 'locked'), reason: /not readable \(EACCES\).*left as they were/ }], 'naming the folder and EACCES');
  t.equal(again!.counts.new, 1, 'the rest of the tree is indexed around it');
  t.equal(again!.counts.deleted, 0, 'nothing under the locked folder is dropped');

  // A fresh library meeting the locked folder for the first time indexes around it.
  const lib2 = path.join(base, 'library2');
  await sdJson(t, ['init', '--name', 'nobody-box'], { ...o, library: lib2 });
  const fresh = await sdJson<{ index: IndexSummary }>(t, ['location', 'add', tree, '--name', 'tree'], { ...o, library: lib2 });
  t.equal(fresh.index.warnings, 2, 'a first index counts the locked folder and the unreadable file');
  const db = openLibraryDb(lib);
  const db2 = openLibraryDb(lib2);
  t.teardown(() => (db.close(), db2.close()));
  t.same(indexedPaths(db, 'tree'), ['locked', 'locked/deeper', 'locked/deeper/more.txt', 'locked/hidden.txt', 'open', 'open/a.txt', 'open/b.txt', 'open/new.txt', 'top.txt', 'unreadable.txt'], 'the first library keeps what it knew of the locked folder');
  t.same(indexedPaths(db2, 'tree'), ['locked', 'open', 'open/a.txt', 'open/b.txt', 'open/new.txt', 'top.txt', 'unreadable.txt'], 'the second has the locked folder itself, and everything else');
  t.equal(db2.prepare("SELECT content_id FROM entries WHERE name = 'unreadable.txt'").pluck().get(), null, 'the unreadable file is listed without a content id');
  assertClosureExact(t, db);
  assertClosureExact(t, db2);
});

t.test('names with newlines, 255 bytes or invalid UTF-8: odd ones indexed, invalid ones skipped with a warning', async (t) => {
  const base = fs.realpathSync(tempDir(t));
  const root = path.join(base, 'names');
  const long = 'L'.repeat(251) + '.txt';
  const longUnicode = 'é'.repeat(127) + 'x'; // 127 × 2 + 1 = 255 bytes
  writeTree(root, { 'line\nbreak.txt': 'newline', [long]: 'long', [longUnicode]: 'long unicode', 'dir\nwith newline/inside.txt': 'inside', 'plain.txt': 'plain' });
  const rootBuf = Buffer.from(root + '/');
  fs.writeFileSync(Buffer.concat([rootBuf, Buffer.from([0xff, 0x41])]), 'invalid file name');
  fs.mkdirSync(Buffer.concat([rootBuf, Buffer.from([0x62, 0xc3, 0x28])]));
  fs.writeFileSync(Buffer.concat([rootBuf, Buffer.from([0x62, 0xc3, 0x28, 0x2f]), Buffer.from('under-invalid.txt')]), 'below an invalid folder name');
  t.equal(Buffer.byteLength(long), 255, 'a 255-byte ASCII name');
  t.equal(Buffer.byteLength(longUnicode), 255, 'a 255-byte UTF-8 name');

  const library = tempLibrary(t, 'Names');
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'names' });
  const summary = indexLocation(library, location);
  t.equal(summary.warnings, 2, 'two warnings: the invalid file name and the invalid folder name');
  t.match(summary.warningSamples, [{ reason: /not valid UTF-8; skipped/ }, { reason: /not valid UTF-8; skipped/ }], 'each says why it was skipped');
  t.same(indexedPaths(library.db, 'names'), ['dir\nwith newline', 'dir\nwith newline/inside.txt', longUnicode, long, 'line\nbreak.txt', 'plain.txt'].sort(), 'every other name is indexed as it is');
  t.equal(library.db.prepare("SELECT count(*) FROM entries WHERE kind = 'file' AND content_id IS NOT NULL").pluck().get(), 5, 'and every valid file got its content id');
  const again = indexLocation(library, location);
  t.match(again.counts, { new: 0, modified: 0, deleted: 0, moved: 0 }, 'a second run changes nothing');
  t.equal(again.warnings, 2, 'and warns again');

  const o = { library: library.dir };
  const [ls, search, cat] = await Promise.all([
    sd(['ls', 'sd://names/names'], o),
    sdJson<{ results: Array<{ name: string; sdpath: string }> }>(t, ['search', 'break'], o),
    sd(['cat', 'sd://names/names/line%0Abreak.txt'], o),
  ]);
  t.equal(ls.code, 0, 'sd ls lists the folder');
  t.equal(ls.stdout.split('\n').filter(Boolean).length, 5, 'one line per entry: newlines in names are shown escaped');
  t.match(ls.stdout, /line\\x0abreak\.txt/, 'as \\x0a');
  t.same(search.results.map((s) => s.name), ['line\nbreak.txt'], 'search finds a name with a newline');
  t.equal(search.results[0]!.sdpath, 'sd://names/names/line%0Abreak.txt', 'its SdPath escapes the newline');
  t.same([cat.code, cat.stdout], [0, 'newline'], 'and sd cat reads it through that SdPath');
});

t.test('symlink loops are indexed as symlinks and never followed', async (t) => {
  const root = fs.realpathSync(writeTree(tempDir(t), { 'dir/file.txt': 'f', 'real/x.txt': 'x' }));
  fs.symlinkSync('b', path.join(root, 'a'));
  fs.symlinkSync('a', path.join(root, 'b'));
  fs.symlinkSync('..', path.join(root, 'dir', 'up'));
  fs.symlinkSync('.', path.join(root, 'dir', 'here'));
  fs.symlinkSync('self', path.join(root, 'self'));
  fs.symlinkSync('real', path.join(root, 'to-real'));
  fs.symlinkSync('/', path.join(root, 'to-root'));
  fs.symlinkSync('nowhere', path.join(root, 'dangling'));
  const lib = path.join(tempDir(t, 'sd-lib-'), 'lib');
  const { library } = initLibrary(lib, 'loops');
  library.close();
  const added = await sdJson<{ index: IndexSummary }>(t, ['location', 'add', root, '--name', 'loops'], { library: lib, timeoutMs: 20_000 });
  t.equal(added.index.warnings, 0, 'no warnings');
  const db = openLibraryDb(lib);
  t.teardown(() => db.close());
  t.same(indexedPaths(db, 'loops'), ['a', 'b', 'dangling', 'dir', 'dir/file.txt', 'dir/here', 'dir/up', 'real', 'real/x.txt', 'self', 'to-real', 'to-root'], 'each link is one entry; nothing below a link');
  t.same(db.prepare("SELECT name FROM entries WHERE kind = 'symlink' ORDER BY name").pluck().all(), ['a', 'b', 'dangling', 'here', 'self', 'to-real', 'to-root', 'up'], 'all of them as symlinks');
  t.equal(db.prepare("SELECT count(*) FROM entries WHERE kind = 'symlink' AND content_id IS NOT NULL").pluck().get(), 0, 'links get no content id');
  const cat = await sd(['cat', 'sd://loops/loops/to-real'], { library: lib });
  t.not(cat.code, 0, 'sd cat does not follow a link');
  t.match(cat.stderr, /^sd: .*symbolic link to real; sdfs does not follow links\n$/, 'and says so in one line');
});

t.test('the same folder twice, a folder inside a location and one around it: clear errors, exit 1', async (t) => {
  const base = fs.realpathSync(tempDir(t));
  writeTree(base, { 'outer/inner/deep/x.txt': 'x', 'outer/y.txt': 'y', 'other/z.txt': 'z' });
  fs.symlinkSync(path.join(base, 'outer'), path.join(base, 'alias'));
  const library = tempLibrary(t, 'overlap');
  addLocation(library.db, new EntryStore(library.db), library.device.id, { path: path.join(base, 'outer', 'inner'), name: 'inner' });
  const o = { library: library.dir };
  const [same, inside, around] = await Promise.all([
    sd(['location', 'add', path.join(base, 'outer', 'inner')], o),
    sd(['location', 'add', path.join(base, 'outer', 'inner', 'deep')], o),
    sd(['location', 'add', path.join(base, 'outer')], o),
  ]);
  oneLineError(t, same, 1, /is already the location 'inner'/, 'the same folder again');
  oneLineError(t, inside, 1, /is inside the location 'inner'/, 'a folder inside a location');
  oneLineError(t, around, 1, /contains the location 'inner'/, 'a folder around a location');
  const add = (input: { path: string; name?: string }) => () => addLocation(library.db, new EntryStore(library.db), library.device.id, input);
  throwsSdError(t, add({ path: path.join(base, 'alias', 'inner') }), 'EXISTS', /is already the location 'inner'/, 'the same folder through a symlink');
  throwsSdError(t, add({ path: path.join(base, 'other'), name: 'inner' }), 'EXISTS', /a location named 'inner' exists already/, 'a second location with the same name');
  throwsSdError(t, add({ path: path.join(base, 'alias') }), 'LOCATION_OVERLAP', /contains the location 'inner'/, 'a folder around a location, through a symlink');
  t.equal(library.db.prepare('SELECT count(*) FROM locations').pluck().get(), 1, 'no location was added');
});

t.test('a corrupt library: exit 1 with one line that says corrupt', async (t) => {
  const base = tempDir(t);
  const make = (name: string): string => {
    const dir = path.join(base, name);
    initLibrary(dir, 'corrupt').library.close();
    for (const suffix of ['-wal', '-shm']) fs.rmSync(path.join(dir, `library.db${suffix}`), { force: true });
    return dir;
  };
  const garbage = make('garbage');
  fs.writeFileSync(path.join(garbage, 'library.db'), Buffer.alloc(8192, 'this is no database '));
  const damaged = make('damaged');
  const fd = fs.openSync(path.join(damaged, 'library.db'), 'r+');
  fs.writeSync(fd, Buffer.alloc(3000, 0xde), 0, 3000, 100); // the schema page after the 100-byte header
  fs.closeSync(fd);
  const [g, d] = await Promise.all([sd(['location', 'ls'], { library: garbage }), sd(['--json', 'index'], { library: damaged })]);
  oneLineError(t, g, 1, /library .*garbage.* is corrupt/, 'a library file that is not a database');
  oneLineError(t, d, 1, /library .*damaged.* is corrupt/, 'a library whose schema page is damaged (sd --json index)');
  t.equal(d.stdout, '', 'with nothing on stdout');
  t.equal(fs.readFileSync(path.join(garbage, 'library.db')).toString('utf8', 0, 20), 'this is no database ', 'the corrupt file is left as it was');
});

t.test('a locked library: a write waits a few seconds, then exit 1 with one line that says locked', async (t) => {
  const root = writeTree(tempDir(t), { 'a.txt': 'a' });
  const lib = path.join(tempDir(t, 'sd-lib-'), 'lib');
  initLibrary(lib, 'locked').library.close();
  const holder = openLibraryDb(lib, false);
  t.teardown(() => holder.close());
  holder.exec('BEGIN EXCLUSIVE');
  try {
    const started = performance.now();
    const [add, ls] = await Promise.all([sd(['location', 'add', root], { library: lib, timeoutMs: 60_000 }), sd(['--json', 'location', 'ls'], { library: lib })]);
    const seconds = (performance.now() - started) / 1000;
    oneLineError(t, add, 1, /is locked by another process/, 'location add while another process holds the write lock');
    // At least the 5 s busy timeout; the upper bound is loose because a loaded machine starts node slowly.
    t.ok(seconds > 4.5 && seconds < 40, `it gave up after the 5 s busy timeout, not at once nor never (${seconds.toFixed(1)} s)`);
    t.same([ls.code, JSON.parse(ls.stdout)], [0, []], 'reading the library still works meanwhile (WAL)');
  } finally {
    holder.exec('ROLLBACK');
  }
  const added = await sd(['--json', 'location', 'add', root], { library: lib });
  t.equal(added.code, 0, 'once released, the same command succeeds');
  t.equal(integrityCheck(lib), 'ok', 'and the library is sound');
});

/** Whether this process may mount a tmpfs (root outside a locked-down container). */
function canMountTmpfs(): boolean {
  if (!isRoot) return false;
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    fs.rmdirSync(probe);
  }
}

t.test('a full disk: exit 1 saying disk full, the library still sound, and the next run finishes', { skip: !canMountTmpfs() && 'cannot mount a tmpfs here (needs root)' }, async (t) => {
  const mnt = tempDir(t, 'sd-full-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  t.teardown(() => {
    try {
      execFileSync('umount', [mnt]);
    } catch {
      execFileSync('umount', ['-l', mnt]);
    }
  });
  const treeBase = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'sd-full-tree-'));
  t.teardown(() => fs.rmSync(treeBase, { recursive: true, force: true }));
  const small = writeTree(path.join(treeBase, 'small'), { 'keep/me.txt': 'kept', 'too.txt': 'too' });
  const big = path.join(treeBase, 'big');
  const FILES = 4000;
  for (let d = 0; d < 40; d++) {
    fs.mkdirSync(path.join(big, `d${d}`), { recursive: true });
    for (let f = 0; f < FILES / 40; f++) fs.writeFileSync(path.join(big, `d${d}`, `${'long-name-'.repeat(18)}${f}.txt`), 'x');
  }
  const lib = path.join(mnt, 'library');
  const o = { library: lib, timeoutMs: 60_000 };
  const { library } = initLibrary(lib, 'full');
  indexLocation(library, addLocation(library.db, new EntryStore(library.db), library.device.id, { path: small, name: 'small' }));
  library.close();

  const full = await sd(['location', 'add', big, '--name', 'big'], o);
  oneLineError(t, full, 1, /disk full/, 'indexing more than fits');
  t.equal(integrityCheck(lib), 'ok', 'the library passes integrity_check');
  const db = openLibraryDb(lib);
  t.same(indexedPaths(db, 'small'), ['keep', 'keep/me.txt', 'too.txt'], 'what was indexed before is all there');
  const partial = indexedPaths(db, 'big').length;
  t.ok(partial < FILES + 40, `the big location is partly indexed (${partial} entries), in whole batches`);
  assertClosureExact(t, db);
  db.close();

  execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
  const [done] = await sdJson<IndexSummary[]>(t, ['index', 'big'], o);
  t.equal(done!.counts.new, FILES + 40 - partial, 'with space again the next run indexes the rest');
  const after = openLibraryDb(lib);
  t.equal(indexedPaths(after, 'big').length, FILES + 40, 'and the location is complete');
  after.close();
});

t.test('files vanishing or shrinking between the walk and hashing do not fail the run', async (t) => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`f${String(i).padStart(3, '0')}.txt`] = `file number ${i}`;
  const root = writeTree(tempDir(t), files);
  const library = tempLibrary(t);
  const store = new EntryStore(library.db);
  const location = addLocation(library.db, store, library.device.id, { path: root, name: 'flaky' });
  const byId = (): string[] => library.db.prepare("SELECT name FROM entries WHERE kind = 'file' ORDER BY id").pluck().all() as string[];
  const removed: string[] = [];
  let shrunk = '';
  const summary = runIndex(library, location, (phase, done) => {
    const names = byId();
    if (phase === 'aggregation') {
      // After the walk listed them, before any is hashed.
      for (const name of [names[0]!, names[100]!]) (fs.rmSync(path.join(root, name)), removed.push(name));
      shrunk = names[1]!;
      fs.truncateSync(path.join(root, shrunk), 2);
    } else if (phase === 'content' && done === 50) {
      // Mid-hashing: files not reached yet.
      for (const name of names.slice(-3)) (fs.rmSync(path.join(root, name)), removed.push(name));
    }
  });
  t.ok(summary, 'the run finishes without an error');
  t.equal(summary!.counts.new, 300, 'every listed file was recorded');
  t.equal(summary!.counts.identified, 300 - removed.length - 1, 'every file still there and unchanged got its content id');
  t.equal(summary!.warnings, 0, 'a vanished file is not even a warning');
  const next = indexLocation(library, location);
  t.equal(next.counts.deleted, removed.length, 'the next run removes the vanished files');
  t.equal(next.counts.modified, 1, 'and picks up the shrunk one');
  t.equal(store.resolve(location.rootEntryId!, [shrunk])!.size, 2, 'with its new size');
  t.equal(library.db.prepare("SELECT count(*) FROM entries WHERE kind = 'file' AND content_id IS NULL").pluck().get(), 0, 'now every file has its content id');
});

function runIndex(library: Library, location: Location, onPhase: (phase: string, done: number) => void): IndexSummary | undefined {
  return indexLocation(library, location, { onProgress: (p) => onPhase(p.phase, p.done) });
}
