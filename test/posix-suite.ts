// A POSIX behaviour suite that runs against any mounted tree: a folder inside a mount
// (a local location, or another device's tree read-only). Every call with its error
// cases; the errno a program sees is the contract.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { getAttributeSync, listAttributesSync, setAttributeSync } from '@napi-rs/xattr';
import type { Test } from 'tap';

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
