// The POSIX suite against a local location through a real mount; plus what only a
// local location promises: every change reaches the index at once, read-only mounts
// answer EROFS.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { runSd, sdJson, tempDir } from './helpers.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';
import { posixSuite, type SuiteTarget } from './posix-suite.js';

let target: SuiteTarget | undefined;

t.before(async () => {
  const { library } = await libraryWithLocation(t, {});
  const other = path.join(tempDir(t, 'sd-other-'), 'other');
  fs.mkdirSync(other);
  await runSd(['location', 'add', other], { library });
  const m = await startMount(t, library);
  target = { dir: path.join(m.mountpoint, 'box', 'data'), otherLocation: path.join(m.mountpoint, 'box', 'other') };
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
