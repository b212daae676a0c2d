// A POSIX behaviour suite that runs against any mounted tree: a folder inside a mount
// (a local location now, a remote device's tree later). Every call with its error
// cases; the errno a program sees is the contract.
import fs from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';

export interface SuiteTarget {
  /** A writable, empty folder inside the mount. */
  dir: string;
  /** Another location of the same mount (for EXDEV), if there is one. */
  otherLocation?: string;
}

const errno = (t: Test, fn: () => unknown, code: string, what: string) => t.throws(fn, { code }, `${what} answers ${code}`);

export function posixSuite(t: Test, target: () => SuiteTarget): void {
  t.test('create, write, read back, and open flags', async (t) => {
    const { dir } = target();
    const f = path.join(dir, 'file.txt');
    fs.writeFileSync(f, 'hello world');
    t.equal(fs.readFileSync(f, 'utf8'), 'hello world');
    errno(t, () => fs.openSync(f, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY), 'EEXIST', 'O_CREAT|O_EXCL on an existing file');
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
    errno(t, () => fs.openSync(path.join(dir, 'missing'), 'r'), 'ENOENT', 'opening a missing file');
    errno(t, () => fs.openSync(path.join(dir, 'missing', 'x'), 'w'), 'ENOENT', 'creating in a missing folder');
    errno(t, () => fs.writeFileSync(path.join(dir, 'x'.repeat(256)), ''), 'ENAMETOOLONG', 'a 256-byte name');
    fs.writeFileSync(path.join(dir, 'y'.repeat(255)), 'ok');
    t.equal(fs.readFileSync(path.join(dir, 'y'.repeat(255)), 'utf8'), 'ok', 'a 255-byte name works');
  });

  t.test('truncate, ftruncate, sparse files and files over 4 GiB', async (t) => {
    const { dir } = target();
    const f = path.join(dir, 'trunc.bin');
    fs.writeFileSync(f, 'abcdefgh');
    fs.truncateSync(f, 3);
    t.equal(fs.readFileSync(f, 'utf8'), 'abc', 'truncate shrinks');
    fs.truncateSync(f, 6);
    t.same([...fs.readFileSync(f)], [97, 98, 99, 0, 0, 0], 'truncate grows with zeros');
    const fd = fs.openSync(f, 'r+');
    fs.ftruncateSync(fd, 1);
    fs.closeSync(fd);
    t.equal(fs.readFileSync(f, 'utf8'), 'a', 'ftruncate');
    const sparse = path.join(dir, 'sparse.bin');
    const sfd = fs.openSync(sparse, 'w');
    fs.writeSync(sfd, Buffer.from('end'), 0, 3, 10 * 1024 * 1024);
    fs.closeSync(sfd);
    const st = fs.statSync(sparse);
    t.equal(st.size, 10 * 1024 * 1024 + 3, 'a write past the end makes a hole');
    t.ok(st.blocks * 512 < 1024 * 1024, 'the hole takes no space');
    const hole = Buffer.alloc(4096, 1);
    const rfd = fs.openSync(sparse, 'r');
    fs.readSync(rfd, hole, 0, 4096, 5 * 1024 * 1024);
    fs.closeSync(rfd);
    t.ok(hole.every((b) => b === 0), 'the hole reads as zeros');
    const huge = path.join(dir, 'huge.bin');
    const hfd = fs.openSync(huge, 'w');
    const at = 5 * 1024 ** 3;
    fs.writeSync(hfd, Buffer.from('far'), 0, 3, at);
    fs.closeSync(hfd);
    t.equal(fs.statSync(huge).size, at + 3, 'a file over 4 GiB has its size');
    const far = Buffer.alloc(3);
    const hr = fs.openSync(huge, 'r');
    fs.readSync(hr, far, 0, 3, at);
    fs.closeSync(hr);
    t.equal(far.toString(), 'far', 'and reads beyond 4 GiB');
    fs.unlinkSync(huge);
  });

  t.test('folders: mkdir, rmdir, readdir of a big folder', async (t) => {
    const { dir } = target();
    const d = path.join(dir, 'folder');
    fs.mkdirSync(d);
    errno(t, () => fs.mkdirSync(d), 'EEXIST', 'mkdir of an existing folder');
    fs.writeFileSync(path.join(d, 'inside'), 'x');
    errno(t, () => fs.rmdirSync(d), 'ENOTEMPTY', 'rmdir of a non-empty folder');
    errno(t, () => fs.rmdirSync(path.join(d, 'inside')), 'ENOTDIR', 'rmdir of a file');
    errno(t, () => fs.unlinkSync(d), 'EISDIR', 'unlink of a folder');
    errno(t, () => fs.mkdirSync(path.join(d, 'inside', 'sub')), 'ENOTDIR', 'mkdir under a file');
    errno(t, () => fs.readdirSync(path.join(d, 'inside')), 'ENOTDIR', 'readdir of a file');
    fs.unlinkSync(path.join(d, 'inside'));
    fs.rmdirSync(d);
    t.notOk(fs.existsSync(d), 'rmdir removes it');
    const big = path.join(dir, 'big');
    fs.mkdirSync(big);
    for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(big, `f${i}`), '');
    t.equal(fs.readdirSync(big).length, 3000, 'readdir lists all 3000 entries');
  });

  t.test('rename: files, overwrite, folders, errors', async (t) => {
    const { dir, otherLocation } = target();
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
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
    errno(t, () => fs.renameSync(path.join(dir, 'd2'), path.join(dir, 'd3')), 'ENOTEMPTY', 'rename onto a non-empty folder');
    errno(t, () => fs.renameSync(path.join(dir, 'nope'), path.join(dir, 'x')), 'ENOENT', 'rename of a missing file');
    errno(t, () => fs.renameSync(b, path.join(dir, 'd3')), 'EISDIR', 'rename of a file onto a folder');
    if (otherLocation) errno(t, () => fs.renameSync(b, path.join(otherLocation, 'b')), 'EXDEV', 'rename across locations');
  });

  t.test('links, modes, owners, times, access, statfs, xattrs', async (t) => {
    const { dir } = target();
    const f = path.join(dir, 'meta.txt');
    fs.writeFileSync(f, 'm');
    fs.symlinkSync('meta.txt', path.join(dir, 'sym'));
    t.equal(fs.readlinkSync(path.join(dir, 'sym')), 'meta.txt');
    t.ok(fs.lstatSync(path.join(dir, 'sym')).isSymbolicLink());
    t.equal(fs.readFileSync(path.join(dir, 'sym'), 'utf8'), 'm', 'a symlink resolves inside the mount');
    errno(t, () => fs.symlinkSync('x', path.join(dir, 'sym')), 'EEXIST', 'symlink over an existing name');
    fs.linkSync(f, path.join(dir, 'hard'));
    t.equal(fs.statSync(f).nlink, 2, 'link raises the link count');
    t.equal(fs.statSync(path.join(dir, 'hard')).ino, fs.statSync(f).ino, 'a hard link shares the inode');
    fs.chmodSync(f, 0o600);
    t.equal(fs.statSync(f).mode & 0o777, 0o600, 'chmod');
    if (process.getuid?.() === 0) {
      fs.chownSync(f, 1234, 5678);
      const st = fs.statSync(f);
      t.same([st.uid, st.gid], [1234, 5678], 'chown');
    }
    const when = new Date('2024-02-03T04:05:06Z');
    fs.utimesSync(f, when, when);
    t.equal(fs.statSync(f).mtime.getTime(), when.getTime(), 'utimens sets mtime');
    fs.accessSync(f, fs.constants.R_OK | fs.constants.W_OK);
    errno(t, () => fs.accessSync(path.join(dir, 'missing')), 'ENOENT', 'access of a missing file');
    t.ok(fs.statfsSync(dir).bavail > 0, 'statfs reports free space');
  });

  t.test('concurrent readers and writers', async (t) => {
    const { dir } = target();
    const files = Array.from({ length: 8 }, (_, i) => path.join(dir, `c${i}.bin`));
    const data = files.map((_, i) => Buffer.alloc(512 * 1024 + i, i + 1));
    await Promise.all(files.map((f, i) => fs.promises.writeFile(f, data[i]!)));
    const back = await Promise.all(files.flatMap((f) => [fs.promises.readFile(f), fs.promises.readFile(f)]));
    t.ok(back.every((b, i) => b.equals(data[Math.floor(i / 2)]!)), '16 parallel reads of 8 files written in parallel');
  });
}
