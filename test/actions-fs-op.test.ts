// ActionManager.applyFsOp, the mount's way to change a location: every kind of op
// changes the disk and leaves the index exactly as a fresh index run would make it
// (closure from parent_id, folder sizes, content ids), answers the right errno when it
// cannot, audits one row per op, and is fast (10,000 creates).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import t, { type Test } from 'tap';
import { SdError } from '../src/errors.js';
import { ActionManager } from '../src/vdfs/actions/action-manager.js';
import type { FsOp } from '../src/vdfs/actions/fs-op.js';
import { AuditLog } from '../src/vdfs/audit.js';
import { contentHashOfFile } from '../src/vdfs/content/identity.js';
import { EntryStore, type Entry } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import type { Library } from '../src/vdfs/library.js';
import { addLocation, type Location } from '../src/vdfs/locations.js';
import { assertIndexExact } from './actions-helpers.js';
import { tempDir, tempLibrary, writeTree } from './helpers.js';

const errnos = os.constants.errno as Record<string, number>;

interface Setup {
  library: Library;
  actions: ActionManager;
  location: Location;
  other: Location;
  root: string;
  apply(op: FsOp): void;
  at(rel: string): Entry | undefined;
}

function setup(t: Test, files: Record<string, string> = {}): Setup {
  const library = tempLibrary(t, 'box');
  const store = new EntryStore(library.db);
  const root = fs.realpathSync(writeTree(tempDir(t, 'sd-fsop-'), files));
  const location = addLocation(library.db, store, library.device.id, { path: root, name: 'data' });
  const other = addLocation(library.db, store, library.device.id, { path: fs.realpathSync(tempDir(t, 'sd-fsop-other-')), name: 'other' });
  indexLocation(library, location);
  indexLocation(library, other);
  const actions = new ActionManager(library);
  return {
    library,
    actions,
    location,
    other,
    root,
    apply: (op) => void actions.applyFsOp(location, op, 'fuse'),
    at: (rel) => store.resolve(location.rootEntryId!, rel === '' ? [] : rel.split('/')),
  };
}

/** The op fails with this errno (an SdError whose errno FUSE can return as is). */
function failsWith(t: Test, s: Setup, op: FsOp, errno: string, what: string): void {
  try {
    s.apply(op);
    t.fail(`${what}: answered success, not ${errno}`);
  } catch (err) {
    t.ok(err instanceof SdError && err.errno === -errnos[errno]!, `${what}: ${errno}${err instanceof SdError ? ` (${err.message})` : ` — got ${String(err)}`}`);
  }
}

t.test('every kind of op keeps the index exact, at once', async (t) => {
  const s = setup(t, { 'docs/a.txt': 'alpha', 'docs/sub/b.txt': 'beta', 'keep.txt': 'keep' });
  const exact = (what: string) => assertIndexExact(t, s.library, [s.location, s.other], ` after ${what}`);

  s.apply({ op: 'create', path: 'new.txt', mode: 0o640 });
  t.equal(fs.statSync(path.join(s.root, 'new.txt')).mode & 0o777, 0o640, 'create: the exact mode, whatever the umask');
  t.equal(s.at('new.txt')?.size, 0, 'create: indexed at once');
  exact('create');

  const { fd } = s.actions.applyFsOp(s.location, { op: 'create', path: 'open.txt', mode: 0o644, flags: fs.constants.O_RDWR }, 'fuse');
  t.ok(typeof fd === 'number', 'create with flags hands back an open descriptor');
  fs.writeSync(fd!, 'written through the handle');
  fs.closeSync(fd!);
  s.apply({ op: 'written', path: 'open.txt' });
  t.equal(s.at('open.txt')?.size, 26, 'written: the new size');
  t.equal(s.at('open.txt')?.contentId, contentHashOfFile(path.join(s.root, 'open.txt'))?.contentId, 'written: the new content id');
  t.equal(s.at('')?.aggregateSize, 5 + 4 + 4 + 26, 'written: the folder sizes');
  exact('written');

  s.apply({ op: 'mkdir', path: 'docs/new-dir', mode: 0o750 });
  t.equal(s.at('docs/new-dir')?.kind, 'dir', 'mkdir: indexed');
  exact('mkdir');

  s.apply({ op: 'symlink', path: 'docs/link', target: 'a.txt' });
  t.equal(s.at('docs/link')?.kind, 'symlink', 'symlink: indexed');
  exact('symlink');

  s.apply({ op: 'link', from: 'docs/a.txt', to: 'docs/hard.txt' });
  t.equal(s.at('docs/hard.txt')?.inode, s.at('docs/a.txt')?.inode, 'link: the same inode');
  t.equal(s.at('docs/hard.txt')?.contentId, s.at('docs/a.txt')?.contentId, 'link: the same content id');
  exact('link');

  s.apply({ op: 'chmod', path: 'docs/a.txt', mode: 0o600 });
  t.equal((s.at('docs/a.txt')!.mode & 0o777), 0o600, 'chmod: the mode');
  exact('chmod');

  s.apply({ op: 'chown', path: 'docs/a.txt', uid: -1, gid: -1 });
  exact('chown');

  s.apply({ op: 'truncate', path: 'docs/a.txt', size: 2 });
  t.equal(s.at('docs/a.txt')?.size, 2, 'truncate: the size');
  t.equal(s.at('docs/a.txt')?.contentId, contentHashOfFile(path.join(s.root, 'docs/a.txt'))?.contentId, 'truncate: the new content id');
  exact('truncate');

  const before = s.at('keep.txt')!;
  s.apply({ op: 'utimens', path: 'keep.txt', atimeMs: 1_600_000_000_000, mtimeMs: 1_600_000_000_000 });
  t.equal(s.at('keep.txt')?.mtime, 1_600_000_000_000, 'utimens: the time');
  t.equal(s.at('keep.txt')?.contentId, before.contentId, 'utimens: the content id stays');
  exact('utimens');

  const b = s.at('docs/sub/b.txt')!;
  s.apply({ op: 'rename', from: 'docs/sub/b.txt', to: 'b-moved.txt' });
  t.equal(s.at('b-moved.txt')?.id, b.id, 'rename of a file: the same entry');
  exact('rename of a file');

  const docs = s.at('docs')!;
  s.apply({ op: 'rename', from: 'docs', to: 'documents' });
  t.equal(s.at('documents')?.id, docs.id, 'rename of a folder: the same entry');
  t.ok(s.at('documents/sub'), 'with what is below it');
  exact('rename of a folder');

  s.apply({ op: 'rename', from: 'keep.txt', to: 'b-moved.txt' });
  t.equal(s.at('b-moved.txt')?.id, before.id, 'rename over a file: the moved entry replaces it');
  exact('rename over a file');

  s.apply({ op: 'mkdir', path: 'empty', mode: 0o755 });
  s.apply({ op: 'rename', from: 'documents/sub', to: 'empty' });
  t.ok(s.at('empty') && !s.at('documents/sub'), 'rename over an empty folder');
  exact('rename over an empty folder');

  s.apply({ op: 'rename', from: 'documents/a.txt', to: 'documents/.git' });
  t.equal(s.at('documents/.git'), undefined, 'rename to an ignored name leaves the index');
  s.apply({ op: 'rename', from: 'documents/.git', to: 'documents/back.txt' });
  t.ok(s.at('documents/back.txt'), 'and back into it');
  exact('renames through an ignored name');

  s.apply({ op: 'rename', from: 'documents/hard.txt', to: 'documents/back.txt' });
  t.ok(fs.existsSync(path.join(s.root, 'documents/hard.txt')), 'rename between two names of one file changes nothing on disk');
  exact('rename between hard links');

  s.apply({ op: 'unlink', path: 'documents/link' });
  t.equal(s.at('documents/link'), undefined, 'unlink: gone from the index');
  exact('unlink');

  s.apply({ op: 'rmdir', path: 'documents/new-dir' });
  t.equal(s.at('documents/new-dir'), undefined, 'rmdir: gone from the index');
  exact('rmdir');

  s.apply({ op: 'chmod', path: '', mode: 0o755 });
  s.apply({ op: 'utimens', path: '', atimeMs: 1_650_000_000_000, mtimeMs: 1_650_000_000_000 });
  exact('chmod and utimens of the location root');

  const trail = new AuditLog(s.library.db).list({ limit: 100 }).reverse();
  t.equal(trail.length, 22, 'one audit row per op');
  t.match(trail[0], { actor: 'fuse', action: 'create', status: 'Completed', target: 'sd://box/data/new.txt', details: { mode: 0o640 } }, 'who, what, where');
  t.match(trail.find((r) => r.action === 'rename'), { target: 'sd://box/data/docs/sub/b.txt', details: { to: 'sd://box/data/b-moved.txt' } }, 'a rename names both ends');
});

t.test('ops answer the right errno', async (t) => {
  const s = setup(t, { 'dir/file.txt': 'x', 'full/inside.txt': 'y', 'empty/.keep-out': '' });
  fs.rmSync(path.join(s.root, 'empty/.keep-out'));
  indexLocation(s.library, s.location);
  failsWith(t, s, { op: 'create', path: 'dir/file.txt', mode: 0o644, flags: fs.constants.O_RDWR | fs.constants.O_EXCL }, 'EEXIST', 'create O_EXCL of an existing file');
  failsWith(t, s, { op: 'mkdir', path: 'dir', mode: 0o755 }, 'EEXIST', 'mkdir of an existing folder');
  failsWith(t, s, { op: 'symlink', path: 'dir/file.txt', target: 'x' }, 'EEXIST', 'symlink over a file');
  failsWith(t, s, { op: 'unlink', path: 'nope.txt' }, 'ENOENT', 'unlink of nothing');
  failsWith(t, s, { op: 'create', path: 'no/such/dir.txt', mode: 0o644 }, 'ENOENT', 'create in a missing folder');
  failsWith(t, s, { op: 'rename', from: 'nope', to: 'x' }, 'ENOENT', 'rename of nothing');
  failsWith(t, s, { op: 'rmdir', path: 'full' }, 'ENOTEMPTY', 'rmdir of a full folder');
  failsWith(t, s, { op: 'rename', from: 'dir', to: 'full' }, 'ENOTEMPTY', 'rename over a full folder');
  failsWith(t, s, { op: 'unlink', path: 'dir' }, 'EISDIR', 'unlink of a folder');
  failsWith(t, s, { op: 'rename', from: 'dir/file.txt', to: 'empty' }, 'EISDIR', 'rename of a file over a folder');
  failsWith(t, s, { op: 'truncate', path: 'dir', size: 0 }, 'EISDIR', 'truncate of a folder');
  failsWith(t, s, { op: 'rmdir', path: 'dir/file.txt' }, 'ENOTDIR', 'rmdir of a file');
  failsWith(t, s, { op: 'mkdir', path: 'dir/file.txt/sub', mode: 0o755 }, 'ENOTDIR', 'mkdir under a file');
  failsWith(t, s, { op: 'rename', from: 'empty', to: 'dir/file.txt' }, 'ENOTDIR', 'rename of a folder over a file');
  failsWith(t, s, { op: 'rename', from: 'dir', to: 'dir/inside' }, 'EINVAL', 'rename of a folder into itself');
  failsWith(t, s, { op: 'link', from: 'dir', to: 'dir-link' }, 'EPERM', 'a hard link to a folder');
  failsWith(t, s, { op: 'rename', from: 'dir/file.txt', to: 'x.txt', toLocationId: s.other.id }, 'EXDEV', 'rename into another location');
  failsWith(t, s, { op: 'link', from: 'dir/file.txt', to: 'x.txt', toLocationId: s.other.id }, 'EXDEV', 'link into another location');
  failsWith(t, s, { op: 'create', path: `${'n'.repeat(256)}.txt`, mode: 0o644 }, 'ENAMETOOLONG', 'a name over 255 bytes');
  failsWith(t, s, { op: 'rmdir', path: '' }, 'EBUSY', 'rmdir of the location root');
  failsWith(t, s, { op: 'create', path: '../escape.txt', mode: 0o644 }, 'EINVAL', 'a path with ..');
  s.apply({ op: 'symlink', path: 'ln', target: '/etc/passwd' });
  failsWith(t, s, { op: 'chmod', path: 'ln', mode: 0o600 }, 'EOPNOTSUPP', 'chmod of a link (never followed out of the location)');

  if (process.getuid?.() === 0 && process.seteuid) {
    fs.chmodSync(s.root, 0o755);
    process.seteuid(65534);
    try {
      failsWith(t, s, { op: 'create', path: 'full/denied.txt', mode: 0o644 }, 'EACCES', 'create in a folder the caller cannot write');
      failsWith(t, s, { op: 'chown', path: 'dir/file.txt', uid: 0, gid: 0 }, 'EPERM', 'chown by a user who does not own it');
    } finally {
      process.seteuid(0);
    }
    indexLocation(s.library, s.location);
  } else {
    fs.chmodSync(path.join(s.root, 'full'), 0o555);
    failsWith(t, s, { op: 'create', path: 'full/denied.txt', mode: 0o644 }, 'EACCES', 'create in a folder the caller cannot write');
    fs.chmodSync(path.join(s.root, 'full'), 0o755);
  }
  t.equal(new AuditLog(s.library.db).list().length, 1, 'failed ops write no audit row (only the symlink that worked)');
  assertIndexExact(t, s.library, [s.location]);
});

t.test('a full disk answers ENOSPC', async (t) => {
  const dir = tempDir(t, 'sd-fsop-tiny-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,nr_inodes=6', 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    t.comment('skipped: cannot mount a small tmpfs here');
    return;
  }
  t.teardown(() => execFileSync('umount', ['-l', dir]));
  const library = tempLibrary(t, 'box');
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: dir, name: 'tiny' });
  const actions = new ActionManager(library);
  let got: unknown;
  try {
    for (let i = 0; i < 20; i++) actions.applyFsOp(location, { op: 'create', path: `f${i}`, mode: 0o644 });
  } catch (err) {
    got = err;
  }
  t.ok(got instanceof SdError && got.errno === -errnos.ENOSPC!, `running out of inodes: ENOSPC (${String(got)})`);
  const fill = Buffer.alloc(512 * 1024, 1);
  const p = actions.preview({ kind: 'copy', input: { sources: [writeTree(tempDir(t), { 'big.bin': fill }) + '/big.bin'], target: `sd://box/tiny/` } });
  t.notOk(p.fits, 'a copy bigger than the free space does not fit');
  t.match(p.problems, [{ code: 'DISK_FULL' }], 'and says so');
});

t.test('10,000 creates through applyFsOp', async (t) => {
  const s = setup(t);
  // The same creates done natively (open, fstat, close) on the same disk, for the ratio.
  const native = path.join(s.root, 'native');
  fs.mkdirSync(native);
  let started = performance.now();
  for (let i = 0; i < 10_000; i++) {
    const fd = fs.openSync(path.join(native, `file-${i}.txt`), 'w', 0o644);
    fs.fstatSync(fd);
    fs.closeSync(fd);
  }
  const nativeRate = Math.round(10_000 / ((performance.now() - started) / 1000));
  fs.rmSync(native, { recursive: true });
  s.apply({ op: 'mkdir', path: 'many', mode: 0o755 });
  started = performance.now();
  for (let i = 0; i < 10_000; i++) s.apply({ op: 'create', path: `many/file-${i}.txt`, mode: 0o644 });
  const seconds = (performance.now() - started) / 1000;
  const rate = Math.round(10_000 / seconds);
  t.comment(`10,000 creates in ${seconds.toFixed(2)} s: ${rate} creates/s with index and audit (native open+close: ${nativeRate}/s, ratio ${(rate / nativeRate).toFixed(2)})`);
  // Each op is its own SQLite transaction (index + audit); its commit, not the SQL, is most of the
  // cost. A floor only: the ratio swings with whatever else the machine's disk is doing.
  t.ok(rate > 100, `at least 100 creates/s (${rate})`);
  t.equal(s.library.db.prepare(`SELECT count(*) FROM entries WHERE parent_id = ?`).pluck().get(s.at('many')!.id), 10_000, 'all indexed');
  t.equal(new AuditLog(s.library.db).list({ action: 'create', limit: 20_000 }).length, 10_000, 'all audited');
  const started2 = performance.now();
  for (let i = 0; i < 2_000; i++) s.apply({ op: 'unlink', path: `many/file-${i}.txt` });
  t.comment(`2,000 unlinks: ${Math.round(2000 / ((performance.now() - started2) / 1000))}/s`);
  assertIndexExact(t, s.library, [s.location]);
});
