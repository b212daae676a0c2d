// A POSIX behaviour suite that runs against any mounted tree: a folder inside a mount
// (a local location, or another device's tree read-only). Every call with its error
// cases; the errno a program sees is the contract. Run as root, it also calls as other
// users (setpriv): what each makes is theirs, and the kernel checks each one's rights.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { getAttributeSync, listAttributesSync, setAttributeSync } from '@napi-rs/xattr';
import type { Test } from 'tap';
import { runSd, sdJson } from './helpers.js';
import { ROOT, callAs, outcome, outcomes, runAs, valueOf, type Op, type PyStat, type User } from './posix-as.js';

export interface SuiteTarget {
  /** A writable, empty folder inside the mount; or, when readOnly, one holding the fixture. */
  dir: string;
  /** Another location of the same mount (for EXDEV), if there is one. */
  otherLocation?: string;
  /**
   * The tree takes no changes (another device's tree): the suite reads what
   * writeReadOnlyFixture made in the folder behind `dir` and checks that every change
   * answers EROFS — or the errno a read-only file system gives first (ENOENT, EEXIST, ...).
   */
  readOnly?: boolean;
  /** The library of the mount, when the suite may ask `sd stat` what the index holds. */
  library?: string;
  /** The real folder behind `dir` on disk, when the suite may compare with it. */
  real?: string;
}

const MiB = 1024 * 1024;
const HUGE_AT = 5 * 1024 ** 3;
const WHEN = new Date('2024-02-03T04:05:06Z');
const concurrentData = (i: number) => Buffer.alloc(512 * 1024 + i, i + 1);

/**
 * What the read-only suite expects to find, made in a real folder (the owner's location,
 * before it is indexed): the state the writable suite leaves after its writes.
 */
export function writeReadOnlyFixture(root: string): void {
  const put = (rel: string, data: string | Buffer) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
  };
  put('file.txt', 'hello world');
  put('y'.repeat(255), 'ok');
  put('trunc.bin', 'abcdefgh');
  for (const [name, at, text] of [['sparse.bin', 10 * MiB, 'end'], ['huge.bin', HUGE_AT, 'far']] as const) {
    const fd = fs.openSync(path.join(root, name), 'w');
    fs.writeSync(fd, Buffer.from(text), 0, 3, at);
    fs.closeSync(fd);
  }
  put('folder/inside', 'x');
  for (let i = 0; i < 3000; i++) put(`big/f${i}`, '');
  put('b', 'second');
  put('d2/f', 'f');
  put('d3/g', 'g');
  put('meta.txt', 'm');
  fs.symlinkSync('meta.txt', path.join(root, 'sym'));
  fs.linkSync(path.join(root, 'meta.txt'), path.join(root, 'hard'));
  fs.chmodSync(path.join(root, 'meta.txt'), 0o600);
  fs.utimesSync(path.join(root, 'meta.txt'), WHEN, WHEN);
  for (let i = 0; i < 8; i++) put(`c${i}.bin`, concurrentData(i));
}

const errno = (t: Test, fn: () => unknown, code: string, what: string) => t.throws(fn, { code }, `${what} answers ${code}`);
/** xattr calls fail with the system's message, not a code. */
const READ_ONLY_MESSAGE = /Read-only file system/;

export function posixSuite(t: Test, target: () => SuiteTarget): void {
  t.test('create, write, read back, and open flags', async (t) => {
    const { dir, readOnly } = target();
    const f = path.join(dir, 'file.txt');
    if (readOnly) errno(t, () => fs.writeFileSync(path.join(dir, 'new.txt'), 'x'), 'EROFS', 'creating a file');
    else fs.writeFileSync(f, 'hello world');
    t.equal(fs.readFileSync(f, 'utf8'), 'hello world');
    errno(t, () => fs.openSync(f, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY), 'EEXIST', 'O_CREAT|O_EXCL on an existing file');
    if (readOnly) {
      errno(t, () => fs.appendFileSync(f, '!'), 'EROFS', 'O_APPEND');
      errno(t, () => fs.openSync(f, fs.constants.O_WRONLY | fs.constants.O_TRUNC), 'EROFS', 'O_TRUNC');
      errno(t, () => fs.openSync(f, 'r+'), 'EROFS', 'O_RDWR');
      const fd = fs.openSync(f, fs.constants.O_RDONLY);
      const back = Buffer.alloc(5);
      t.equal(fs.readSync(fd, back, 0, 5, 6), 5);
      t.equal(back.toString(), 'world', 'a read at an offset');
      t.equal(fs.readSync(fd, back, 0, 5, 11), 0, 'a read at the end gets no bytes');
      t.equal(fs.readSync(fd, back, 0, 5, 1000), 0, 'nor one past it');
      fs.closeSync(fd);
      errno(t, () => fs.openSync(f, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY), 'ENOTDIR', 'O_DIRECTORY on a file');
    } else {
      fs.appendFileSync(f, '!'); // O_APPEND
      t.equal(fs.readFileSync(f, 'utf8'), 'hello world!', 'O_APPEND appends');
      const fd = fs.openSync(f, fs.constants.O_WRONLY | fs.constants.O_TRUNC);
      fs.writeSync(fd, 'new');
      fs.closeSync(fd);
      t.equal(fs.readFileSync(f, 'utf8'), 'new', 'O_TRUNC empties first');
      const rw = fs.openSync(f, 'r+');
      fs.writeSync(rw, 'N', 0, 'utf8');
      const back = Buffer.alloc(3);
      fs.readSync(rw, back, 0, 3, 0);
      fs.fsyncSync(rw);
      fs.closeSync(rw);
      t.equal(back.toString(), 'New', 'read after write on one handle');
    }
    errno(t, () => fs.openSync(path.join(dir, 'missing'), 'r'), 'ENOENT', 'opening a missing file');
    errno(t, () => fs.openSync(path.join(dir, 'missing', 'x'), 'w'), 'ENOENT', 'creating in a missing folder');
    errno(t, () => fs.openSync(path.join(f, 'x'), 'r'), 'ENOTDIR', 'opening below a file');
    if (!readOnly) {
      errno(t, () => fs.writeFileSync(path.join(dir, 'x'.repeat(256)), ''), 'ENAMETOOLONG', 'a 256-byte name');
      fs.writeFileSync(path.join(dir, 'y'.repeat(255)), 'ok');
    }
    t.equal(fs.readFileSync(path.join(dir, 'y'.repeat(255)), 'utf8'), 'ok', 'a 255-byte name works');
  });

  t.test('truncate, ftruncate, sparse files and files over 4 GiB', async (t) => {
    const { dir, readOnly } = target();
    const f = path.join(dir, 'trunc.bin');
    if (readOnly) {
      errno(t, () => fs.truncateSync(f, 3), 'EROFS', 'truncate');
      t.equal(fs.readFileSync(f, 'utf8'), 'abcdefgh', 'and the file is unchanged');
    } else {
      fs.writeFileSync(f, 'abcdefgh');
      fs.truncateSync(f, 3);
      t.equal(fs.readFileSync(f, 'utf8'), 'abc', 'truncate shrinks');
      fs.truncateSync(f, 6);
      t.same([...fs.readFileSync(f)], [97, 98, 99, 0, 0, 0], 'truncate grows with zeros');
      const fd = fs.openSync(f, 'r+');
      fs.ftruncateSync(fd, 1);
      fs.closeSync(fd);
      t.equal(fs.readFileSync(f, 'utf8'), 'a', 'ftruncate');
    }
    const sparse = path.join(dir, 'sparse.bin');
    if (!readOnly) {
      const sfd = fs.openSync(sparse, 'w');
      fs.writeSync(sfd, Buffer.from('end'), 0, 3, 10 * MiB);
      fs.closeSync(sfd);
    }
    const st = fs.statSync(sparse);
    t.equal(st.size, 10 * MiB + 3, 'a write past the end makes a hole');
    // A peer's tree knows sizes, not where the holes are.
    if (!readOnly) t.ok(st.blocks * 512 < MiB, 'the hole takes no space');
    const hole = Buffer.alloc(4096, 1);
    const rfd = fs.openSync(sparse, 'r');
    fs.readSync(rfd, hole, 0, 4096, 5 * MiB);
    const end = Buffer.alloc(3);
    fs.readSync(rfd, end, 0, 3, 10 * MiB);
    fs.closeSync(rfd);
    t.ok(hole.every((b) => b === 0), 'the hole reads as zeros');
    t.equal(end.toString(), 'end', 'and the bytes after it are there');
    const huge = path.join(dir, 'huge.bin');
    if (!readOnly) {
      const hfd = fs.openSync(huge, 'w');
      fs.writeSync(hfd, Buffer.from('far'), 0, 3, HUGE_AT);
      fs.closeSync(hfd);
    }
    t.equal(fs.statSync(huge).size, HUGE_AT + 3, 'a file over 4 GiB has its size');
    const far = Buffer.alloc(3);
    const hr = fs.openSync(huge, 'r');
    fs.readSync(hr, far, 0, 3, HUGE_AT);
    fs.closeSync(hr);
    t.equal(far.toString(), 'far', 'and reads beyond 4 GiB');
    if (readOnly) errno(t, () => fs.unlinkSync(huge), 'EROFS', 'unlink');
    else fs.unlinkSync(huge);
  });

  t.test('folders: mkdir, rmdir, readdir of a big folder', async (t) => {
    const { dir, readOnly } = target();
    const d = path.join(dir, 'folder');
    if (readOnly) errno(t, () => fs.mkdirSync(path.join(dir, 'new-folder')), 'EROFS', 'mkdir');
    else fs.mkdirSync(d);
    errno(t, () => fs.mkdirSync(d), 'EEXIST', 'mkdir of an existing folder');
    if (!readOnly) fs.writeFileSync(path.join(d, 'inside'), 'x');
    errno(t, () => fs.rmdirSync(d), readOnly ? 'EROFS' : 'ENOTEMPTY', 'rmdir of a non-empty folder');
    errno(t, () => fs.rmdirSync(path.join(d, 'inside')), 'ENOTDIR', 'rmdir of a file');
    errno(t, () => fs.unlinkSync(d), 'EISDIR', 'unlink of a folder');
    errno(t, () => fs.mkdirSync(path.join(d, 'inside', 'sub')), 'ENOTDIR', 'mkdir under a file');
    errno(t, () => fs.readdirSync(path.join(d, 'inside')), 'ENOTDIR', 'readdir of a file');
    errno(t, () => fs.readFileSync(d), 'EISDIR', 'reading a folder');
    t.ok(fs.statSync(d).isDirectory(), 'stat of a folder');
    if (readOnly) {
      errno(t, () => fs.unlinkSync(path.join(d, 'inside')), 'EROFS', 'unlink of a file');
      t.same(fs.readdirSync(d), ['inside'], 'the folder keeps its file');
    } else {
      fs.unlinkSync(path.join(d, 'inside'));
      fs.rmdirSync(d);
      t.notOk(fs.existsSync(d), 'rmdir removes it');
    }
    const big = path.join(dir, 'big');
    if (!readOnly) {
      fs.mkdirSync(big);
      for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(big, `f${i}`), '');
    }
    t.equal(fs.readdirSync(big).length, 3000, 'readdir lists all 3000 entries');
    const all = execFileSync('ls', ['-a1U', big], { encoding: 'utf8' }).split('\n').filter(Boolean);
    t.same([all.length, all.slice(0, 2)], [3002, ['.', '..']], 'ls -a lists . and .. besides them');
  });

  t.test('rename: files, overwrite, folders, errors', async (t) => {
    const { dir, otherLocation, readOnly } = target();
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    if (readOnly) {
      errno(t, () => fs.renameSync(b, a), 'EROFS', 'rename of a file');
      errno(t, () => fs.renameSync(path.join(dir, 'd2'), path.join(dir, 'd4')), 'EROFS', 'rename of a folder');
      t.equal(fs.readFileSync(b, 'utf8'), 'second', 'the file stays');
      t.equal(fs.readFileSync(path.join(dir, 'd2', 'f'), 'utf8'), 'f', 'and the folder');
    } else {
      fs.writeFileSync(a, 'A');
      const ino = fs.statSync(a).ino;
      fs.renameSync(a, b);
      t.notOk(fs.existsSync(a));
      t.equal(fs.readFileSync(b, 'utf8'), 'A');
      t.equal(fs.statSync(b).ino, ino, 'the inode number stays');
      fs.writeFileSync(a, 'second');
      fs.renameSync(a, b);
      t.equal(fs.readFileSync(b, 'utf8'), 'second', 'rename overwrites a file');
      fs.mkdirSync(path.join(dir, 'd1'));
      fs.writeFileSync(path.join(dir, 'd1', 'f'), 'f');
      fs.renameSync(path.join(dir, 'd1'), path.join(dir, 'd2'));
      t.equal(fs.readFileSync(path.join(dir, 'd2', 'f'), 'utf8'), 'f', 'a folder moves with its contents');
      fs.mkdirSync(path.join(dir, 'd3'));
      fs.writeFileSync(path.join(dir, 'd3', 'g'), 'g');
    }
    errno(t, () => fs.renameSync(path.join(dir, 'd2'), path.join(dir, 'd3')), readOnly ? 'EROFS' : 'ENOTEMPTY', 'rename onto a non-empty folder');
    errno(t, () => fs.renameSync(path.join(dir, 'nope'), path.join(dir, 'x')), 'ENOENT', 'rename of a missing file');
    errno(t, () => fs.renameSync(b, path.join(dir, 'd3')), 'EISDIR', 'rename of a file onto a folder');
    if (otherLocation) errno(t, () => fs.renameSync(b, path.join(otherLocation, 'b')), readOnly ? 'EROFS' : 'EXDEV', 'rename across locations');
  });

  t.test('links, modes, owners, times, access, statfs, xattrs', async (t) => {
    const { dir, readOnly } = target();
    const f = path.join(dir, 'meta.txt');
    const sym = path.join(dir, 'sym');
    const hard = path.join(dir, 'hard');
    if (readOnly) {
      errno(t, () => fs.symlinkSync('meta.txt', path.join(dir, 'sym2')), 'EROFS', 'symlink');
      errno(t, () => fs.linkSync(f, path.join(dir, 'hard2')), 'EROFS', 'link');
    } else {
      fs.writeFileSync(f, 'm');
      fs.symlinkSync('meta.txt', sym);
      fs.linkSync(f, hard);
    }
    t.ok(fs.lstatSync(sym).isSymbolicLink(), 'a symlink is one');
    // A peer's log carries its link targets; hard links are separate entries there (yet).
    const unreplicated = readOnly ? { todo: "a peer's hard links are separate entries in its log" } : {};
    t.equal(readlinkOrCode(sym), 'meta.txt', 'readlink');
    t.equal(readOrCode(sym), 'm', 'a symlink resolves inside the mount');
    errno(t, () => fs.symlinkSync('x', sym), 'EEXIST', 'symlink over an existing name');
    t.equal(fs.statSync(f).nlink, 2, 'link raises the link count', unreplicated);
    t.equal(fs.statSync(hard).ino, fs.statSync(f).ino, 'a hard link shares the inode', unreplicated);
    if (readOnly) {
      errno(t, () => fs.chmodSync(f, 0o644), 'EROFS', 'chmod');
      t.equal(fs.statSync(f).mode & 0o777, 0o400, "the owner's mode without write bits");
    } else {
      fs.chmodSync(f, 0o600);
      t.equal(fs.statSync(f).mode & 0o777, 0o600, 'chmod');
    }
    if (process.getuid?.() === 0) {
      if (readOnly) errno(t, () => fs.chownSync(f, 1234, 5678), 'EROFS', 'chown');
      else {
        fs.chownSync(f, 1234, 5678);
        const st = fs.statSync(f);
        t.same([st.uid, st.gid], [1234, 5678], 'chown');
      }
    }
    if (readOnly) errno(t, () => fs.utimesSync(f, new Date(), new Date()), 'EROFS', 'utimens');
    else {
      // An access time other than the mtime, as cp -p and rsync -a set them.
      fs.utimesSync(f, new Date(WHEN.getTime() + 86_400_000), WHEN);
      t.equal(fs.statSync(f).atime.getTime(), WHEN.getTime() + 86_400_000, 'utimens sets atime');
    }
    t.equal(fs.statSync(f).mtime.getTime(), WHEN.getTime(), 'utimens sets mtime');
    fs.accessSync(f, fs.constants.R_OK);
    if (readOnly) {
      // The kernel answers access() itself from the mode bits (default_permissions), which
      // lets root write anywhere: only a read-only mount would make it say EROFS.
      const asRoot = process.getuid?.() === 0 ? { todo: 'as root, access(W_OK) passes on a read-only tree' } : {};
      t.match(accessCode(f, fs.constants.W_OK), /^(EROFS|EACCES)$/, 'access for writing is refused', asRoot);
    } else fs.accessSync(f, fs.constants.W_OK);
    errno(t, () => fs.accessSync(path.join(dir, 'missing')), 'ENOENT', 'access of a missing file');
    t.ok(fs.statfsSync(dir).bavail > 0, 'statfs reports free space');
    t.match(String(getAttributeSync(f, 'user.sd.sdpath')), /^sd:\/\/.+\/meta\.txt$/, "the file's sdpath");
    t.match(String(getAttributeSync(f, 'user.sd.content_id')), /^[0-9a-f]{16}$/, 'and content id');
    t.ok(listAttributesSync(f).includes('user.sd.sdpath'), 'listed');
    t.equal(getAttributeSync(f, 'user.no-such-attribute'), null, 'a missing attribute reads as none');
    if (readOnly) t.throws(() => setAttributeSync(f, 'user.suite', 'v'), READ_ONLY_MESSAGE, 'setting an attribute answers EROFS');
    else {
      setAttributeSync(f, 'user.suite', 'v');
      t.equal(String(getAttributeSync(f, 'user.suite')), 'v', "a file's own attribute");
    }
  });

  t.test('concurrent readers and writers', async (t) => {
    const { dir, readOnly } = target();
    const files = Array.from({ length: 8 }, (_, i) => path.join(dir, `c${i}.bin`));
    const data = files.map((_, i) => concurrentData(i));
    if (!readOnly) await Promise.all(files.map((f, i) => fs.promises.writeFile(f, data[i]!)));
    const back = await Promise.all(files.flatMap((f) => [fs.promises.readFile(f), fs.promises.readFile(f)]));
    t.ok(back.every((b, i) => b.equals(data[Math.floor(i / 2)]!)), `16 parallel reads of 8 files${readOnly ? '' : ' written in parallel'}`);
  });

  t.test('what each caller makes is theirs: owner, group and exactly the mode asked', { skip: NOT_ROOT }, async (t) => {
    const { dir, readOnly, real } = target();
    if (!reachable(t, dir, readOnly)) return;
    if (readOnly) {
      for (const user of CALLERS) {
        const made = runAs(user, [
          { op: 'create', path: path.join(dir, `new-${user.uid}`), mode: 0o644 },
          { op: 'mkdir', path: path.join(dir, `dir-${user.uid}`), mode: 0o755 },
          { op: 'symlink', path: path.join(dir, `link-${user.uid}`), target: 'file.txt' },
          { op: 'mkfifo', path: path.join(dir, `fifo-${user.uid}`), mode: 0o644 },
        ]);
        // Root is refused by the tree; another user may meet the folder's mode (no write bits) first.
        for (const [i, what] of ['a file', 'a folder', 'a symlink', 'a fifo'].entries()) {
          t.match(outcome(made[i]!), user.uid === 0 ? /^EROFS$/ : /^(EROFS|EACCES)$/, `uid ${user.uid} making ${what} is refused`);
        }
      }
      return;
    }
    const base = path.join(dir, 'callers');
    fs.mkdirSync(base);
    fs.chmodSync(base, 0o1777);
    for (const user of CALLERS) {
      for (const mask of [0o022, 0o077]) {
        const at = (kind: string) => path.join(base, `${kind}-${user.uid}-${mask.toString(8)}`);
        const made = runAs(user, [
          { op: 'umask', mask },
          { op: 'create', path: at('file'), mode: 0o666 },
          { op: 'create', path: at('odd'), mode: 0o751 },
          { op: 'mkdir', path: at('dir'), mode: 0o777 },
          { op: 'symlink', path: at('link'), target: `file-${user.uid}-${mask.toString(8)}` },
          { op: 'mkfifo', path: at('fifo'), mode: 0o666 },
          { op: 'socket', path: at('sock') },
        ]);
        const who = `uid ${user.uid}, umask 0${mask.toString(8)}`;
        t.same(outcomes(made), Array(7).fill('ok'), `${who}: a file, a folder, a symlink, a fifo and a socket are made`);
        // A socket's mode is 0777 less the umask (the kernel's bind); a symlink's is always 0777.
        for (const [kind, mode, isKind] of [
          ['file', 0o666 & ~mask, 'isFile'],
          ['odd', 0o751 & ~mask, 'isFile'],
          ['dir', 0o777 & ~mask, 'isDirectory'],
          ['fifo', 0o666 & ~mask, 'isFIFO'],
          ['sock', 0o777 & ~mask, 'isSocket'],
          ['link', 0o777, 'isSymbolicLink'],
        ] as const) {
          const want = { [isKind]: true, uid: user.uid, gid: user.gid, mode };
          t.same(kindOwnerMode(fs.lstatSync(at(kind)), isKind), want, `${who}: ${kind} is theirs, mode 0${want.mode.toString(8)}`);
          if (real) t.same(kindOwnerMode(fs.lstatSync(path.join(real, 'callers', path.basename(at(kind)))), isKind), want, `${who}: and so on disk`);
        }
        t.equal(fs.readlinkSync(at('link')), `file-${user.uid}-${mask.toString(8)}`, `${who}: the symlink's target`);
      }
    }
    // A setgid folder of a group no caller is in: what is made in it gets that group, folders also the setgid bit.
    const sg = path.join(base, 'setgid');
    fs.mkdirSync(sg);
    fs.chownSync(sg, A.uid, OTHER_GID);
    fs.chmodSync(sg, 0o2777);
    t.same([fs.statSync(sg).mode & 0o7777, fs.statSync(sg).gid], [0o2777, OTHER_GID], 'a setgid folder of another group');
    for (const user of [ROOT, B]) {
      const file = path.join(sg, `file-${user.uid}`);
      const sub = path.join(sg, `dir-${user.uid}`);
      const made = runAs(user, [{ op: 'umask', mask: 0o022 }, { op: 'create', path: file, mode: 0o666 }, { op: 'mkdir', path: sub, mode: 0o777 }, { op: 'mkdir', path: path.join(sub, 'deeper'), mode: 0o750 }]);
      t.same(outcomes(made), ['ok', 'ok', 'ok', 'ok'], `uid ${user.uid} makes a file and folders in it`);
      const f = fs.statSync(file);
      t.same([f.uid, f.gid, f.mode & 0o7777], [user.uid, OTHER_GID, 0o644], `uid ${user.uid}: a new file gets the folder's group`);
      const d = fs.statSync(sub);
      t.same([d.uid, d.gid, d.mode & 0o7777], [user.uid, OTHER_GID, 0o2755], `uid ${user.uid}: a new folder gets the group and the setgid bit`);
      const deeper = fs.statSync(path.join(sub, 'deeper'));
      t.same([deeper.gid, deeper.mode & 0o7777], [OTHER_GID, 0o2750], `uid ${user.uid}: and passes both on`);
    }
  });

  t.test('permissions are checked as the caller', { skip: NOT_ROOT }, async (t) => {
    const { dir, readOnly } = target();
    if (!reachable(t, dir, readOnly)) return;
    if (readOnly) {
      // meta.txt is 0600 on its owner's disk: here 0400, the mount user's.
      const f = path.join(dir, 'meta.txt');
      t.same(outcomes(runAs(B, [{ op: 'open', path: f, how: 'r' }, { op: 'chmod', path: f, mode: 0o644 }, { op: 'chown', path: f, uid: B.uid, gid: B.gid }])), ['EACCES', 'EPERM', 'EPERM'],
        "another user cannot read a 0400 file of the mount user, chmod nor chown it");
      t.equal(valueOf<string>(callAs(ROOT, { op: 'read', path: f }), 'root reads it'), 'm', 'root can read it');
      return;
    }
    const base = path.join(dir, 'perms');
    fs.mkdirSync(base);
    fs.chmodSync(base, 0o1777);
    t.equal(fs.statSync(base).mode & 0o7777, 0o1777, 'a sticky folder everyone may write in');
    const secret = path.join(base, 'secret');
    const shared = path.join(base, 'shared');
    t.same(outcomes(runAs(A, [{ op: 'umask', mask: 0 }, { op: 'create', path: secret, mode: 0o600, data: 'a' }, { op: 'create', path: shared, mode: 0o666, data: 's' }])), ['ok', 'ok', 'ok'],
      `uid ${A.uid} makes a 0600 and a 0666 file`);
    const asB = runAs(B, [
      { op: 'open', path: secret, how: 'r' },
      { op: 'open', path: secret, how: 'w' },
      { op: 'chmod', path: secret, mode: 0o644 },
      { op: 'chown', path: secret, uid: B.uid, gid: -1 },
      { op: 'unlink', path: shared },
      { op: 'rename', path: shared, to: path.join(base, 'taken') },
      { op: 'utime', path: shared, atime: '1000000000', mtime: '1000000000' },
      { op: 'utime', path: shared },
      { op: 'read', path: shared },
      { op: 'create', path: path.join(base, 'mine'), mode: 0o644 },
      { op: 'unlink', path: path.join(base, 'mine') },
    ]);
    t.same(outcomes(asB), ['EACCES', 'EACCES', 'EPERM', 'EPERM', 'EPERM', 'EPERM', 'EPERM', 'ok', 'ok', 'ok', 'ok'],
      `uid ${B.uid}: cannot read or write A's 0600 file (EACCES), chmod or chown it, unlink or rename A's file in the sticky folder, set its times (EPERM); may touch a file it can write (UTIME_NOW), read it, and make and remove its own`);
    const s = fs.statSync(secret);
    t.same([s.uid, s.gid, s.mode & 0o7777, fs.existsSync(shared)], [A.uid, A.gid, 0o600, true], 'the refused changes changed nothing');
    const asA = runAs(A, [
      { op: 'chown', path: secret, uid: B.uid, gid: -1 },
      { op: 'chown', path: secret, uid: -1, gid: B.gid },
      { op: 'chown', path: secret, uid: -1, gid: A.gid },
      { op: 'chmod', path: secret, mode: 0o640 },
      { op: 'rename', path: shared, to: path.join(base, 'shared2') },
      { op: 'unlink', path: path.join(base, 'shared2') },
    ]);
    t.same(outcomes(asA), ['EPERM', 'EPERM', 'ok', 'ok', 'ok', 'ok'],
      `uid ${A.uid}: cannot give its file away nor to a group it is not in (EPERM); may chgrp to its own group, chmod, rename and unlink its own file`);
    t.equal(fs.statSync(secret).mode & 0o7777, 0o640, "the owner's chmod shows");
    t.same(outcomes(runAs(ROOT, [{ op: 'chown', path: secret, uid: B.uid, gid: B.gid }])), ['ok'], 'root can chown');
    const now = fs.statSync(secret);
    t.same([now.uid, now.gid], [B.uid, B.gid], 'to another user');
    t.equal(outcome(callAs(B, { op: 'read', path: secret })), 'ok', `the new owner, uid ${B.uid}, may read it now`);
    t.equal(outcome(callAs(A, { op: 'read', path: secret })), 'EACCES', `and uid ${A.uid} no longer`);
  });

  t.test('fifos, sockets and device nodes', async (t) => {
    const { dir, readOnly, real } = target();
    if (readOnly) {
      const ops: Op[] = [{ op: 'mkfifo', path: path.join(dir, 'new-fifo'), mode: 0o644 }, { op: 'socket', path: path.join(dir, 'new-sock') }];
      if (IS_ROOT) ops.push({ op: 'mknod', path: path.join(dir, 'new-null'), mode: S_IFCHR | 0o666, major: 1, minor: 3 });
      t.same(outcomes(runAs(SELF, ops)), ops.map(() => 'EROFS'), `mkfifo, a socket's bind${IS_ROOT ? ', mknod' : ''} answer EROFS`);
      return;
    }
    const base = path.join(dir, 'kinds');
    fs.mkdirSync(base);
    fs.chmodSync(base, 0o1777);
    const at = (name: string) => path.join(base, name);
    const made = runAs(SELF, [
      { op: 'umask', mask: 0o022 },
      { op: 'mkfifo', path: at('pipe'), mode: 0o640 },
      { op: 'fifo', path: at('pipe'), data: 'through the fifo' },
      { op: 'socket', path: at('sock'), talk: true },
    ]);
    t.same(outcomes(made), ['ok', 'ok', 'ok', 'ok'], 'mkfifo, a fifo written and read, a socket bound and talked to');
    t.equal(made[2]!.ok && made[2]!.value, 'through the fifo', 'a reader gets what a writer wrote through the fifo');
    t.equal(made[3]!.ok && made[3]!.value, 'PING', 'a client connects to the socket bound in the mount');
    t.ok(fs.lstatSync(at('pipe')).isFIFO(), 'a fifo is one');
    t.equal(fs.lstatSync(at('pipe')).mode & 0o7777, 0o640, 'with its mode');
    t.ok(fs.lstatSync(at('sock')).isSocket(), 'a socket is one');
    const kinds = ['pipe', 'sock'];
    if (IS_ROOT) {
      const nodes = runAs(ROOT, [
        { op: 'umask', mask: 0 },
        { op: 'mknod', path: at('null'), mode: S_IFCHR | 0o666, major: 1, minor: 3 },
        { op: 'device', path: at('null'), data: 'into the void' },
        { op: 'mknod', path: at('loop'), mode: S_IFBLK | 0o660, major: 7, minor: 0 },
      ]);
      t.same(outcomes(nodes), ['ok', 'ok', 'ok', 'ok'], 'as root, mknod makes a char and a block device; the char device opens');
      t.same(nodes[2]!.ok && nodes[2]!.value, [13, 0], 'it works as /dev/null: a write takes every byte, a read gives EOF');
      const cs = fs.lstatSync(at('null'));
      t.same([cs.isCharacterDevice(), cs.rdev, cs.mode & 0o7777], [true, makedev(1, 3), 0o666], 'stat shows the char device 1,3');
      const bs = fs.lstatSync(at('loop'));
      t.same([bs.isBlockDevice(), bs.rdev, bs.mode & 0o7777], [true, makedev(7, 0), 0o660], 'stat shows the block device 7,0');
      if (real) t.same(fs.lstatSync(path.join(real, 'kinds', 'null')).rdev, makedev(1, 3), 'the node is on disk');
      t.same(outcomes(runAs(A, [{ op: 'mknod', path: at('nope'), mode: S_IFCHR | 0o666, major: 1, minor: 3 }, { op: 'mkfifo', path: at('their-pipe'), mode: 0o600 }])), ['EPERM', 'ok'],
        `uid ${A.uid} may make a fifo but no device node (EPERM)`);
      kinds.push('null', 'loop', 'their-pipe');
    } else t.comment('device nodes: only root makes them');
    for (const name of kinds) {
      fs.unlinkSync(at(name));
      t.equal(lstatCode(at(name)), 'ENOENT', `unlink removes ${name}`);
      if (real) t.equal(lstatCode(path.join(real, 'kinds', name)), 'ENOENT', 'on disk too');
    }
    t.same(fs.readdirSync(base), [], 'the folder is empty');
  });

  t.test('hard links: one inode, its link count and ctime right through every name at once', async (t) => {
    const { dir, readOnly } = target();
    if (readOnly) return void t.plan(0, "a peer's tree takes no links (the links test checks EROFS)");
    const base = path.join(dir, 'links');
    fs.mkdirSync(path.join(base, 'sub'), { recursive: true });
    const one = path.join(base, 'one');
    const two = path.join(base, 'two');
    const three = path.join(base, 'sub', 'three');
    fs.writeFileSync(one, 'shared');
    const first = fs.statSync(one, BIG); // the kernel now holds nlink 1 for it
    t.equal(first.nlink, 1n, 'a new file has one name');
    fs.linkSync(one, two);
    const [s1, s2] = [fs.statSync(one, BIG), fs.statSync(two, BIG)];
    t.same([s1.nlink, s2.nlink], [2n, 2n], 'after link both names show nlink 2 at once');
    t.same([s1.ino, s2.ino], [first.ino, first.ino], 'and the same inode number');
    fs.linkSync(two, three);
    t.same([one, two, three].map((p) => fs.statSync(p, BIG).nlink), [3n, 3n, 3n], 'a third name in another folder: 3 through every name');
    const before = fs.statSync(two, BIG).ctimeNs;
    await sleep(20);
    fs.chmodSync(one, 0o640);
    const after = fs.statSync(two, BIG);
    t.equal(after.mode & 0o7777n, 0o640n, 'a chmod through one name shows through another at once');
    t.ok(after.ctimeNs > before, `with a new ctime (${before} → ${after.ctimeNs})`);
    t.equal(fs.statSync(three, BIG).ctimeNs, after.ctimeNs, 'the same ctime through the third');
    fs.appendFileSync(three, '+');
    t.equal(fs.readFileSync(one, 'utf8'), 'shared+', 'bytes written through one name read through another');
    t.equal(fs.statSync(two).size, 7, 'and the size shows');
    fs.unlinkSync(one);
    t.same([two, three].map((p) => fs.statSync(p, BIG).nlink), [2n, 2n], 'unlink of one name drops the others to 2 at once');
    fs.unlinkSync(three);
    t.equal(fs.statSync(two, BIG).nlink, 1n, 'and to 1');
    t.equal(fs.readFileSync(two, 'utf8'), 'shared+', 'the last name keeps the bytes');
  });

  t.test('ctime and mtime follow every change', async (t) => {
    const { dir, readOnly } = target();
    if (readOnly) {
      const f = path.join(dir, 'file.txt');
      const before = fs.statSync(f, BIG);
      await sleep(20);
      fs.readFileSync(f);
      const after = fs.statSync(f, BIG);
      t.same([after.mtimeNs, after.ctimeNs], [before.mtimeNs, before.ctimeNs], 'reading changes neither mtime nor ctime');
      return;
    }
    const base = path.join(dir, 'ctimes');
    fs.mkdirSync(base);
    let f = path.join(base, 'f');
    fs.writeFileSync(f, 'x');
    const owner = IS_ROOT ? [1234, 5678] : [fs.statSync(f).uid, fs.statSync(f).gid];
    const changes: Array<[string, () => void]> = [
      ['chmod', () => fs.chmodSync(f, 0o600)],
      ['chown', () => fs.chownSync(f, owner[0]!, owner[1]!)],
      ['link', () => fs.linkSync(f, path.join(base, 'f-link'))],
      ['rename', () => {
        fs.renameSync(f, path.join(base, 'g'));
        f = path.join(base, 'g');
      }],
      ['truncate', () => fs.truncateSync(f, 0)],
    ];
    for (const [what, change] of changes) {
      const before = fs.statSync(f, BIG).ctimeNs;
      await sleep(20);
      change();
      const after = fs.statSync(f, BIG).ctimeNs;
      t.ok(after > before, `${what} changes ctime (${before} → ${after})`);
    }
    const before = fs.statSync(f, BIG);
    await sleep(20);
    fs.appendFileSync(f, 'more');
    const written = fs.statSync(f, BIG);
    t.ok(written.mtimeNs > before.mtimeNs, `a write changes mtime (${before.mtimeNs} → ${written.mtimeNs})`);
    t.ok(written.ctimeNs > before.ctimeNs, `and ctime (${before.ctimeNs} → ${written.ctimeNs})`);
    await sleep(20);
    t.equal(fs.readFileSync(f, 'utf8'), 'more');
    const read = fs.statSync(f, BIG);
    t.same([read.mtimeNs, read.ctimeNs], [written.mtimeNs, written.ctimeNs], 'reading changes neither mtime nor ctime');
  });

  t.test('rename with RENAME_NOREPLACE and RENAME_EXCHANGE', async (t) => {
    const { dir, readOnly, library } = target();
    if (readOnly) {
      const b = path.join(dir, 'b');
      t.same(outcomes(runAs(SELF, [
        { op: 'renameat2', path: b, to: path.join(dir, 'b-new'), flags: RENAME_NOREPLACE },
        { op: 'renameat2', path: b, to: path.join(dir, 'file.txt'), flags: RENAME_EXCHANGE },
        { op: 'renameat2', path: path.join(dir, 'd2'), to: path.join(dir, 'd3'), flags: RENAME_EXCHANGE },
      ])), ['EROFS', 'EROFS', 'EROFS'], 'RENAME_NOREPLACE and RENAME_EXCHANGE answer EROFS');
      t.same([fs.readFileSync(b, 'utf8'), fs.readFileSync(path.join(dir, 'file.txt'), 'utf8')], ['second', 'hello world'], 'and change nothing');
      return;
    }
    const base = path.join(dir, 'exchange');
    fs.mkdirSync(base);
    const at = (...p: string[]) => path.join(base, ...p);
    fs.writeFileSync(at('x'), 'xx');
    fs.writeFileSync(at('y'), 'yyyy');
    const [xIno, yIno] = [fs.statSync(at('x')).ino, fs.statSync(at('y')).ino];
    t.equal(outcome(callAs(SELF, { op: 'renameat2', path: at('x'), to: at('y'), flags: RENAME_NOREPLACE })), 'EEXIST', 'RENAME_NOREPLACE onto an existing name: EEXIST');
    t.same([fs.readFileSync(at('x'), 'utf8'), fs.readFileSync(at('y'), 'utf8')], ['xx', 'yyyy'], 'and both stay');
    t.equal(outcome(callAs(SELF, { op: 'renameat2', path: at('x'), to: at('z'), flags: RENAME_NOREPLACE })), 'ok', 'RENAME_NOREPLACE to a free name works');
    t.same([lstatCode(at('x')), fs.readFileSync(at('z'), 'utf8'), fs.statSync(at('z')).ino], ['ENOENT', 'xx', xIno], 'the file moved');
    t.equal(outcome(callAs(SELF, { op: 'renameat2', path: at('z'), to: at('y'), flags: RENAME_EXCHANGE })), 'ok', 'RENAME_EXCHANGE of two files');
    t.same([fs.readFileSync(at('z'), 'utf8'), fs.readFileSync(at('y'), 'utf8')], ['yyyy', 'xx'], 'swaps their contents');
    t.same([fs.statSync(at('z')).ino, fs.statSync(at('y')).ino], [yIno, xIno], 'and their inodes');
    t.same([fs.statSync(at('z')).size, fs.statSync(at('y')).size], [4, 2], 'and their sizes');
    t.equal(outcome(callAs(SELF, { op: 'renameat2', path: at('z'), to: at('missing'), flags: RENAME_EXCHANGE })), 'ENOENT', 'RENAME_EXCHANGE with a missing name: ENOENT');
    t.equal(outcome(callAs(SELF, { op: 'renameat2', path: at('z'), to: at('y'), flags: RENAME_NOREPLACE | RENAME_EXCHANGE })), 'EINVAL', 'both flags at once: EINVAL');
    fs.mkdirSync(at('d1'));
    fs.mkdirSync(at('d2'));
    fs.writeFileSync(at('d1', 'a'), 'A');
    fs.writeFileSync(at('d2', 'b'), 'B');
    fs.writeFileSync(at('d2', 'c'), 'C');
    t.equal(outcome(callAs(SELF, { op: 'renameat2', path: at('d1'), to: at('d2'), flags: RENAME_EXCHANGE })), 'ok', 'RENAME_EXCHANGE of two folders');
    t.same([fs.readdirSync(at('d1')).sort(), fs.readdirSync(at('d2'))], [['b', 'c'], ['a']], 'swaps what they hold');
    t.same([fs.readFileSync(at('d1', 'c'), 'utf8'), fs.readFileSync(at('d2', 'a'), 'utf8')], ['C', 'A'], 'readable by the new paths');
    if (library) {
      const sdDir = String(getAttributeSync(base, 'user.sd.sdpath'));
      const size = async (name: string) => (await sdJson<{ size: number }>(t, ['stat', `${sdDir}/${name}`], { library })).size;
      t.same([await size('y'), await size('z')], [2, 4], 'sd stat shows the swapped sizes');
      const exists = async (name: string) => (await runSd(['stat', `${sdDir}/${name}`], { library })).code === 0;
      t.same([await exists('d1/b'), await exists('d1/c'), await exists('d1/a'), await exists('d2/a'), await exists('d2/b')], [true, true, false, true, false], "and the index holds the folders' swapped contents");
      t.equal(await exists('x'), false, 'and no longer the name moved away with RENAME_NOREPLACE');
    }
    t.equal(outcome(callAs(SELF, { op: 'renameat2', path: at('y'), to: at('d1'), flags: RENAME_EXCHANGE })), 'ok', 'a file and a folder swap too');
    t.same([fs.statSync(at('y')).isDirectory(), fs.readFileSync(at('d1'), 'utf8'), fs.readdirSync(at('y')).sort()], [true, 'xx', ['b', 'c']], 'each under the other name');
    if (library) {
      const sdDir = String(getAttributeSync(base, 'user.sd.sdpath'));
      const kind = async (name: string) => (await sdJson<{ kind: string }>(t, ['stat', `${sdDir}/${name}`], { library })).kind;
      t.same([await kind('y'), await kind('d1'), await kind('y/b')], ['dir', 'file', 'file'], 'and so in the index');
    }
  });

  t.test('fallocate, copy_file_range, SEEK_DATA and SEEK_HOLE', async (t) => {
    const { dir, readOnly, library } = target();
    if (readOnly) {
      t.same(outcomes(runAs(SELF, [{ op: 'fallocate', path: path.join(dir, 'trunc.bin'), offset: 0, length: MiB }, { op: 'copy', path: path.join(dir, 'file.txt'), to: path.join(dir, 'copy.txt') }])),
        ['EROFS', 'EROFS'], 'fallocate and a copy into the tree answer EROFS (at open)');
      // Any Linux file answers SEEK_DATA and SEEK_HOLE (one that knows no holes: all data, the hole at the end).
      const sparse = path.join(dir, 'sparse.bin');
      const seeks = runAs(SELF, [{ op: 'seek', path: sparse, offset: 10 * MiB, whence: 'data' }, { op: 'seek', path: sparse, offset: 10 * MiB, whence: 'hole' }, { op: 'seek', path: sparse, offset: 10 * MiB + 3, whence: 'data' }]);
      t.same(seeks.map((r) => (r.ok ? r.value : r.code)), [10 * MiB, 10 * MiB + 3, 'ENXIO'], "SEEK_DATA finds the data at 10 MiB of a peer's file, SEEK_HOLE the end after it");
      return;
    }
    const base = path.join(dir, 'space');
    fs.mkdirSync(base);
    const at = (name: string) => path.join(base, name);
    fs.writeFileSync(at('alloc.bin'), 'abc');
    t.equal(outcome(callAs(SELF, { op: 'fallocate', path: at('alloc.bin'), offset: 0, length: MiB })), 'ok', 'posix_fallocate');
    const alloc = fs.statSync(at('alloc.bin'));
    t.same([alloc.size, alloc.blocks * 512 >= MiB], [MiB, true], 'grows the file to 1 MiB, its blocks allocated');
    const bytes = fs.readFileSync(at('alloc.bin'));
    t.same([bytes.subarray(0, 3).toString(), bytes.subarray(3).every((b) => b === 0)], ['abc', true], 'the old bytes stay, the new read as zeros');
    // util-linux's fallocate calls fallocate(2) itself: no fallback that writes zeros.
    execFileSync('fallocate', ['-l', '1M', at('util.bin')]);
    const util = fs.statSync(at('util.bin'));
    t.same([util.size, util.blocks * 512 >= MiB], [MiB, true], 'fallocate -l 1M makes a 1 MiB file, allocated');
    execFileSync('fallocate', ['-n', '-l', '2M', at('util.bin')]);
    const kept = fs.statSync(at('util.bin'));
    t.same([kept.size, kept.blocks * 512 >= 2 * MiB], [MiB, true], 'fallocate --keep-size allocates without growing');
    execFileSync('fallocate', ['-p', '-o', '0', '-l', '512K', at('util.bin')]);
    const punched = fs.statSync(at('util.bin'));
    t.same([punched.size, punched.blocks * 512 <= 2 * MiB - 512 * 1024], [MiB, true], 'fallocate --punch-hole frees blocks, the size kept');
    if (library) {
      const sd = String(getAttributeSync(at('alloc.bin'), 'user.sd.sdpath'));
      t.equal((await sdJson<{ size: number }>(t, ['stat', sd], { library })).size, MiB, "sd stat shows the allocated file's size");
    }

    const data = crypto.randomBytes(300 * 1024 + 17);
    fs.writeFileSync(at('src.bin'), data);
    t.equal(valueOf(callAs(SELF, { op: 'copy', path: at('src.bin'), to: at('copy.bin') }), 'copy_file_range'), data.length, 'copy_file_range copies every byte');
    t.ok(fs.readFileSync(at('copy.bin')).equals(data), 'exactly');
    t.equal(valueOf(callAs(SELF, { op: 'copy', path: at('src.bin'), to: at('part.bin'), length: 1000, from: 5000, at: 10 }), 'copy_file_range'), 1000, 'a part at offsets');
    t.ok(fs.readFileSync(at('part.bin')).equals(Buffer.concat([Buffer.alloc(10), data.subarray(5000, 6000)])), 'lands where asked');
    if (library) {
      const idOf = async (name: string) => (await sdJson<{ contentId: string | null }>(t, ['stat', String(getAttributeSync(at(name), 'user.sd.sdpath'))], { library })).contentId;
      const [src, copy] = [await idOf('src.bin'), await idOf('copy.bin')];
      t.match(src, /^[0-9a-f]{16}$/, 'the source is identified');
      t.equal(copy, src, "after close, sd stat gives the copy the source's content id");
    }

    const sparse = at('holes.bin');
    const fd = fs.openSync(sparse, 'w');
    fs.writeSync(fd, 'head', 0);
    fs.writeSync(fd, 'tail', 4 * MiB);
    fs.closeSync(fd);
    const seek = (offset: number, whence: 'data' | 'hole') => callAs(SELF, { op: 'seek', path: sparse, offset, whence });
    const hole = seek(0, 'hole');
    const firstHole = hole.ok ? (hole.value as number) : -1;
    t.ok(firstHole >= 4 && firstHole < 4 * MiB, `SEEK_HOLE from 0 finds the hole after the first bytes (${hole.ok ? firstHole : hole.code})`);
    t.equal(valueOf(seek(0, 'data'), 'SEEK_DATA'), 0, 'SEEK_DATA from 0 is 0');
    t.equal(valueOf(seek(Math.max(firstHole, 4), 'data'), 'SEEK_DATA'), 4 * MiB, 'SEEK_DATA from the hole finds the data at 4 MiB');
    t.equal(valueOf(seek(4 * MiB, 'hole'), 'SEEK_HOLE'), 4 * MiB + 4, 'SEEK_HOLE after it is the end');
    t.equal(outcome(seek(4 * MiB + 4, 'data')), 'ENXIO', 'SEEK_DATA at the end: ENXIO');
  });

  t.test('utimensat: to the nanosecond, UTIME_NOW and UTIME_OMIT', async (t) => {
    const { dir, readOnly, real } = target();
    if (readOnly) {
      const f = path.join(dir, 'file.txt');
      t.same(outcomes(runAs(SELF, [{ op: 'utime', path: f, atime: '1234567890123456789', mtime: '1234567890123456789' }, { op: 'utime', path: f }])), ['EROFS', 'EROFS'], 'exact times and UTIME_NOW answer EROFS');
      return;
    }
    const f = path.join(dir, 'times.txt');
    fs.writeFileSync(f, 't');
    t.equal(outcome(callAs(SELF, { op: 'utime', path: f, atime: '1234567890123456789', mtime: '1234567890987654321' })), 'ok', 'utimensat with ns times');
    const exact = fs.statSync(f, BIG);
    t.same([exact.atimeNs, exact.mtimeNs], [1234567890123456789n, 1234567890987654321n], 'atime and mtime exact to the nanosecond');
    if (real) {
      const disk = fs.statSync(path.join(real, 'times.txt'), BIG);
      t.same([disk.atimeNs, disk.mtimeNs], [1234567890123456789n, 1234567890987654321n], 'on disk too');
    }
    const nowNs = () => BigInt(Date.now()) * 1_000_000n;
    const near = (ns: bigint, from: bigint, to: bigint) => ns >= from - 1_000_000_000n && ns <= to + 1_000_000_000n;
    let from = nowNs();
    execFileSync('touch', [f]);
    let to = nowNs();
    const touched = fs.statSync(f, BIG);
    t.ok(near(touched.atimeNs, from, to) && near(touched.mtimeNs, from, to), `touch (UTIME_NOW) sets atime and mtime to now (${touched.atimeNs}, ${touched.mtimeNs})`);
    execFileSync('touch', ['-m', '-d', '@1000000000.5', f]);
    const m = fs.statSync(f, BIG);
    t.same([m.mtimeNs, m.atimeNs], [1000000000500000000n, touched.atimeNs], 'touch -m sets mtime; atime is kept (UTIME_OMIT)');
    await sleep(20);
    from = nowNs();
    execFileSync('touch', ['-a', f]);
    to = nowNs();
    const a = fs.statSync(f, BIG);
    t.ok(near(a.atimeNs, from, to) && a.atimeNs > touched.atimeNs, `touch -a sets atime to now (${a.atimeNs})`);
    t.equal(a.mtimeNs, 1000000000500000000n, 'and keeps mtime');
    execFileSync('touch', ['-a', '-d', '@1100000000.25', f]);
    const a2 = fs.statSync(f, BIG);
    t.same([a2.atimeNs, a2.mtimeNs], [1100000000250000000n, 1000000000500000000n], 'touch -a -d sets atime exactly, mtime kept');
  });

  t.test('inode numbers are the real files\' own, exact', async (t) => {
    const { dir, readOnly, real } = target();
    const names = readOnly ? ['file.txt', 'b', 'meta.txt', 'sym', 'd2', 'big'] : ['i0', 'i1', 'i2', 'i3', 'folder', 'link'];
    const base = readOnly ? dir : path.join(dir, 'inodes');
    if (!readOnly) {
      fs.mkdirSync(path.join(base, 'folder'), { recursive: true });
      for (const name of names.slice(0, 4)) fs.writeFileSync(path.join(base, name), name);
      fs.symlinkSync('i0', path.join(base, 'link'));
    }
    const inos = names.map((name) => fs.lstatSync(path.join(base, name), BIG).ino);
    t.equal(new Set(inos).size, names.length, 'each name has its own inode number');
    t.same(names.map((name) => fs.lstatSync(path.join(base, name), BIG).ino), inos, 'stable from one stat to the next');
    const seen = runAs(SELF, names.map((name): Op => ({ op: 'lstat', path: path.join(base, name) })));
    t.same(seen.map((r) => (r.ok ? BigInt((r.value as PyStat).ino) : r.code)), inos, 'another program sees the same numbers');
    if (readOnly) {
      const listed = valueOf<Array<[string, string]>>(callAs(SELF, { op: 'scandir', path: base }), 'scandir');
      const byName = new Map(listed);
      t.same(names.map((name) => byName.get(name)), inos.map(String), "readdir's d_ino is each file's inode number");
    }
    if (!readOnly && real) {
      t.same(names.map((name) => fs.lstatSync(path.join(real, 'inodes', name), BIG).ino), inos, "each is the real file's inode number on disk");
      // readdir's d_ino (ls -i, find) is the number stat gives.
      const listed = valueOf<Array<[string, string]>>(callAs(SELF, { op: 'scandir', path: base }), 'scandir');
      t.same(listed.map(([name, ino]) => [name, BigInt(ino)]), names.map((name, i) => [name, inos[i]]).sort((x, y) => String(x[0]).localeCompare(String(y[0]))), "readdir's d_ino is each file's inode number");
    }
  });

  t.test("readdir gives each name's type, so ls -R and find stat none", async (t) => {
    const { dir, readOnly } = target();
    const base = readOnly ? dir : path.join(dir, 'types');
    const big = path.join(base, 'big');
    if (!readOnly) {
      fs.mkdirSync(big, { recursive: true });
      for (let i = 0; i < 600; i++) fs.writeFileSync(path.join(big, `f${i}`), '');
      fs.writeFileSync(path.join(base, 'file'), 'x');
      fs.symlinkSync('file', path.join(base, 'link'));
      execFileSync('mkfifo', [path.join(base, 'fifo')]);
    }
    // d_type is the file type's bits of st_mode (S_IFMT >> 12).
    const typeOf = (p: string) => fs.lstatSync(p).mode >> 12;
    const listed = valueOf<Array<[string, string, number]>>(callAs(SELF, { op: 'getdents', path: base }), 'getdents');
    const kinds = new Set(listed.map(([name]) => typeOf(path.join(base, name))));
    t.ok(kinds.size >= 3, `the folder holds files, folders and links (${listed.length} names)`);
    t.same(listed.map(([name, , type]) => [name, type]), listed.map(([name]) => [name, typeOf(path.join(base, name))]), "each name's d_type is the type lstat gives");
    // Past the first answer of a listing (several getdents calls).
    const many = valueOf<Array<[string, string, number]>>(callAs(SELF, { op: 'getdents', path: big }), 'getdents');
    t.equal(many.filter(([, , type]) => type === fs.constants.S_IFREG >> 12).length, readOnly ? 3000 : 600, 'every name of a big folder is a regular file by its d_type');
  });
}

const IS_ROOT = process.getuid?.() === 0;
const NOT_ROOT = IS_ROOT ? false : 'needs root: calls as other users through setpriv';
/** The test process itself. */
const SELF: User = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
/** Two other users, with no supplementary groups (setpriv --clear-groups); and a group neither is in. */
const A: User = { uid: 1000, gid: 1000 };
const B: User = { uid: 65534, gid: 65534 };
const OTHER_GID = 4242;
const CALLERS = [ROOT, A, B];
const BIG = { bigint: true } as const;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** dev_t as stat gives it (glibc's encoding for small numbers). */
const makedev = (major: number, minor: number) => (major << 8) | minor;

/** A stat's kind (as asked), owner and permission bits, to compare at once. */
function kindOwnerMode(st: fs.Stats, isKind: 'isFile' | 'isDirectory' | 'isFIFO' | 'isSocket' | 'isSymbolicLink'): Record<string, unknown> {
  return { [isKind]: st[isKind](), uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
}

/**
 * Whether other users reach the folder. A writable target must let them (the test fails
 * when not); a read-only one whose path is private skips the checks as other users.
 */
function reachable(t: Test, dir: string, readOnly: boolean | undefined): boolean {
  const reach = [A, B].map((user) => outcome(callAs(user, { op: 'stat', path: dir })));
  if (reach.every((r) => r === 'ok')) return true;
  if (readOnly) t.plan(0, `other users cannot reach ${dir} (${reach.join(', ')}): its path is private`);
  else t.fail(`uids ${A.uid} and ${B.uid} reach ${dir}: ${reach.join(', ')} (make the folders on the path 0755)`);
  return false;
}

function lstatCode(p: string): string {
  try {
    fs.lstatSync(p);
    return 'exists';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

function accessCode(p: string, mode: number): string {
  try {
    fs.accessSync(p, mode);
    return 'granted';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

function readlinkOrCode(p: string): string {
  try {
    return fs.readlinkSync(p);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

function readOrCode(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}
