// The POSIX suite against a local location through a real mount; plus what only a
// local location promises: every change reaches the index at once, read-only mounts
// answer EROFS.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { runSd, sdJson, tempDir } from './helpers.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';
import { ROOT, callAs, valueOf, type PyStat } from './posix-as.js';
import { posixSuite, type SuiteTarget } from './posix-suite.js';

let target: SuiteTarget | undefined;

t.before(async () => {
  const { library, root } = await libraryWithLocation(t, {});
  const other = path.join(tempDir(t, 'sd-other-'), 'other');
  fs.mkdirSync(other);
  await runSd(['location', 'add', other], { library });
  const m = await startMount(t, library);
  // Other users (the suite's calls through setpriv) reach the mount: the temporary folder
  // holding the mount point is 0700, and the location's root shows through the mount as it is on disk.
  fs.chmodSync(path.dirname(m.mountpoint), 0o755);
  fs.chmodSync(root, 0o755);
  target = { dir: path.join(m.mountpoint, 'box', 'data'), otherLocation: path.join(m.mountpoint, 'box', 'other'), library, real: root };
});

posixSuite(t, () => target!);

t.test('a change through the mount is in the library at once', async (t) => {
  const { library } = await libraryWithLocation(t, {});
  const m = await startMount(t, library);
  const data = path.join(m.mountpoint, 'box', 'data');
  fs.mkdirSync(path.join(data, 'docs'));
  fs.writeFileSync(path.join(data, 'docs', 'a.txt'), 'some words');
  const a = await sdJson<{ size: number; contentId: string | null; kind: string }>(t, ['stat', 'sd://box/data/docs/a.txt'], { library });
  t.equal(a.size, 10);
  t.match(a.contentId, /^[0-9a-f]{16}$/, 'written data is identified on close');
  fs.renameSync(path.join(data, 'docs', 'a.txt'), path.join(data, 'b.txt'));
  t.equal((await runSd(['stat', 'sd://box/data/docs/a.txt'], { library })).code, 1, 'the old path is gone');
  const b = await sdJson<{ contentId: string }>(t, ['stat', 'sd://box/data/b.txt'], { library });
  t.equal(b.contentId, a.contentId, 'the moved entry keeps its content id');
  fs.rmSync(path.join(data, 'docs'), { recursive: true });
  t.equal((await runSd(['stat', 'sd://box/data/docs'], { library })).code, 1, 'a removed folder is gone');
});

t.test('a read-only mount answers EROFS', async (t) => {
  const { library } = await libraryWithLocation(t, { 'a.txt': 'a' });
  const m = await startMount(t, library, ['--read-only']);
  const data = path.join(m.mountpoint, 'box', 'data');
  t.equal(fs.readFileSync(path.join(data, 'a.txt'), 'utf8'), 'a');
  t.throws(() => fs.writeFileSync(path.join(data, 'b.txt'), 'b'), { code: 'EROFS' });
  t.throws(() => fs.mkdirSync(path.join(data, 'd')), { code: 'EROFS' });
  t.throws(() => fs.unlinkSync(path.join(data, 'a.txt')), { code: 'EROFS' });
  t.throws(() => fs.mkdirSync(path.join(m.mountpoint, 'newdevice')), { code: /^(EROFS|EACCES)$/ }, 'the virtual root takes no new folders');
});

t.test('inode numbers over 2^63 reach programs exact, and the index keeps such files apart', { skip: process.getuid?.() !== 0 && 'needs root: mounts an overlay file system' }, async (t) => {
  // An overlay whose lower layer is another file system than its upper one (xino=on) puts
  // the layer's number in the top bits: its files have inode numbers over 2^63.
  if (!fs.existsSync('/dev/shm')) return void t.plan(0, 'no /dev/shm for a second file system');
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-ovl-'));
  const lower = fs.mkdtempSync('/dev/shm/sd-lower-');
  const merged = path.join(base, 'merged');
  const unmount = () => {
    try {
      execFileSync('umount', ['-l', merged], { stdio: 'ignore' });
    } catch {
      // not mounted
    }
  };
  // Teardowns run last-registered first: this one, registered before the sd mount's, runs after it.
  t.teardown(() => {
    unmount();
    for (const dir of [base, lower]) fs.rmSync(dir, { recursive: true, force: true });
  });
  for (const dir of ['upper', 'work', 'merged']) fs.mkdirSync(path.join(base, dir));
  const data = path.join(lower, 'data');
  fs.mkdirSync(path.join(data, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(data, 'a.txt'), 'alpha');
  fs.writeFileSync(path.join(data, 'b.txt'), 'bravo!');
  fs.writeFileSync(path.join(data, 'sub', 'c.txt'), 'charlie');
  if (fs.statSync(lower).dev === fs.statSync(base).dev) return void t.plan(0, `${os.tmpdir()} and /dev/shm are one file system`);
  try {
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${path.join(base, 'upper')},workdir=${path.join(base, 'work')},xino=on`, merged], { stdio: 'pipe' });
  } catch (err) {
    return void t.plan(0, `no overlay mount here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
  }
  const root = path.join(merged, 'data');
  const names = ['a.txt', 'b.txt', 'sub', 'sub/c.txt'];
  // Node's bigint stat gives st_ino as a signed 64-bit number: read it back as the unsigned one it is.
  const inoOf = (p: string) => BigInt.asUintN(64, fs.lstatSync(p, { bigint: true }).ino);
  const realIno = (name: string) => inoOf(path.join(root, name));
  if (!names.every((name) => realIno(name) > 2n ** 63n)) return void t.plan(0, 'the overlay gives no inode numbers over 2^63 here');

  const library = path.join(tempDir(t, 'sd-ovl-lib-'), 'library');
  for (const args of [['init', '--name', 'box'], ['location', 'add', root]]) {
    const r = await runSd(args, { library });
    t.equal(r.code, 0, `sd ${args.join(' ')}${r.code ? `: ${r.stderr.trim()}` : ''}`);
  }
  const m = await startMount(t, library);
  const dir = path.join(m.mountpoint, 'box', 'data');
  fs.writeFileSync(path.join(dir, 'new.txt'), 'made through the mount'); // in the upper layer: a small number
  for (const name of [...names, 'new.txt']) {
    const real = realIno(name);
    t.equal(inoOf(path.join(dir, name)), real, `${name}: st_ino through the mount is the real ${real}`);
    t.equal(BigInt(valueOf<PyStat>(callAs(ROOT, { op: 'lstat', path: path.join(dir, name) }), 'lstat').ino), real, 'for another program too');
  }
  const listed = valueOf<Array<[string, string]>>(callAs(ROOT, { op: 'scandir', path: dir }), 'scandir');
  t.same(listed.map(([name, ino]) => [name, BigInt(ino)]), ['a.txt', 'b.txt', 'new.txt', 'sub'].map((name) => [name, realIno(name)]), "readdir's d_ino is exact too");

  // The index compares inode numbers to find the other names of a hard link: 64-bit ones must
  // stay apart (as doubles, those of the overlay's lower files here would be one number).
  const statOf = async (name: string) => {
    const { size, mtime, contentId } = await sdJson<{ size: number; mtime: string; contentId: string | null }>(t, ['stat', `sd://box/data/${name}`], { library });
    return { size, mtime, contentId };
  };
  const others = ['b.txt', 'sub/c.txt'];
  const before = await Promise.all(others.map(statOf));
  t.match(before, [{ size: 6, contentId: /^[0-9a-f]{16}$/ }, { size: 7, contentId: /^[0-9a-f]{16}$/ }], 'b.txt and sub/c.txt are indexed');
  fs.linkSync(path.join(dir, 'a.txt'), path.join(dir, 'a-link'));
  t.equal(fs.statSync(path.join(dir, 'a.txt')).nlink, 2, 'a.txt has a second name');
  fs.writeFileSync(path.join(dir, 'a.txt'), 'alpha, rewritten');
  const [a, link] = [await statOf('a.txt'), await statOf('a-link')];
  t.equal(a.size, 16, 'the written file has its new size in the index');
  t.equal(link.contentId, a.contentId, 'its other name has its new content');
  t.same(others.map((name) => fs.readFileSync(path.join(dir, name), 'utf8')), ['bravo!', 'charlie'], 'the other files are unchanged on disk');
  // Their inode numbers differ from a.txt's only past the 53 bits of a double.
  t.same(await Promise.all(others.map(statOf)), before, 'and in the index');
});
