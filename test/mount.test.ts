// The mounted tree: layout, attributes, reads, xattrs, lifecycle (clean unmount on
// SIGINT and SIGTERM, stale mounts cleaned, busy and non-empty mount points refused).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { promisify } from 'node:util';
import { getAttributeSync, listAttributesSync } from '@napi-rs/xattr';
import t from 'tap';
import { isMounted } from '../src/fuse/mount.js';
import { runSd, sdJson, tempDir, waitFor } from './helpers.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';

const run = promisify(execFile);

const big = Buffer.alloc(3 * 1024 * 1024);
for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 12)) & 0xff;

t.test('the tree shows devices, locations and real files with their attributes', async (t) => {
  const { library, root } = await libraryWithLocation(t, { 'a.txt': 'hello', 'sub/b.bin': big, 'sub/deep/c.txt': 'c' });
  fs.symlinkSync('a.txt', path.join(root, 'link'));
  fs.linkSync(path.join(root, 'a.txt'), path.join(root, 'hard.txt'));
  await runSd(['index'], { library });
  const m = await startMount(t, library);
  t.same(fs.readdirSync(m.mountpoint).sort(), ['.content', '.guardian', '.search', '.tags', 'box']);
  t.same(fs.readdirSync(path.join(m.mountpoint, 'box')), ['data']);
  const data = path.join(m.mountpoint, 'box', 'data');
  t.same(fs.readdirSync(data).sort(), ['a.txt', 'hard.txt', 'link', 'sub']);
  // `ls -a` lists . and .. first, once, in every kind of folder, as on a local file system.
  for (const folder of [m.mountpoint, path.join(m.mountpoint, 'box'), data, path.join(data, 'sub'), path.join(m.mountpoint, '.tags')]) {
    const names = (await run('ls', ['-a1U', folder])).stdout.split('\n').filter(Boolean);
    t.same(names.slice(0, 2), ['.', '..'], `ls -a ${path.relative(m.mountpoint, folder) || '/'} starts with . and ..`);
    t.equal(names.filter((n) => n === '.' || n === '..').length, 2, 'once each');
  }
  for (const name of ['a.txt', 'sub', 'sub/b.bin', 'link']) {
    const real = fs.lstatSync(path.join(root, name));
    const seen = fs.lstatSync(path.join(data, name));
    t.equal(seen.size, real.size, `${name}: size`);
    t.equal(seen.mode, real.mode, `${name}: mode`);
    t.equal(seen.ino, real.ino, `${name}: inode number is the real one`);
    t.equal(seen.uid, real.uid, `${name}: uid`);
    t.equal(Math.floor(seen.mtimeMs), Math.floor(real.mtimeMs), `${name}: mtime`);
  }
  t.equal(fs.lstatSync(path.join(data, 'a.txt')).nlink, 2, 'hard links are counted');
  t.equal(fs.readlinkSync(path.join(data, 'link')), 'a.txt', 'symlinks read as links');
  t.ok(fs.readFileSync(path.join(data, 'sub', 'b.bin')).equals(big), 'a 3 MiB file reads byte-identical');
  const fd = fs.openSync(path.join(data, 'sub', 'b.bin'), 'r');
  const slice = Buffer.alloc(1000);
  fs.readSync(fd, slice, 0, 1000, 2_000_000);
  fs.closeSync(fd);
  t.ok(slice.equals(big.subarray(2_000_000, 2_001_000)), 'reads at an offset');
  const st = fs.statfsSync(data);
  const real = fs.statfsSync(root);
  t.equal(st.blocks, real.blocks, 'statfs reports the real file system');
});

t.test('xattrs name the content and the SdPath; .content opens any copy', async (t) => {
  const { library } = await libraryWithLocation(t, { 'x/one.txt': 'same bytes', 'y/two.txt': 'same bytes' });
  const m = await startMount(t, library);
  const file = path.join(m.mountpoint, 'box', 'data', 'x', 'one.txt');
  const names = listAttributesSync(file);
  t.ok(names.includes('user.sd.content_id') && names.includes('user.sd.sdpath'), 'listxattr shows sdfs attributes');
  const id = String(getAttributeSync(file, 'user.sd.content_id'));
  t.match(id, /^[0-9a-f]{16}$/);
  t.equal(String(getAttributeSync(file, 'user.sd.sdpath')), 'sd://box/data/x/one.txt');
  // Two files on one device in a content-mode location: no copy verified by its own full hash.
  t.equal(String(getAttributeSync(file, 'user.sd.copies')), '0', 'user.sd.copies: devices holding a counting (verified) copy');
  t.equal(String(getAttributeSync(file, 'user.sd.policy')), '2', 'user.sd.policy: the copies its policy wants (default 2)');
  t.equal(String(getAttributeSync(file, 'user.sd.at_risk')), 'one copy, not verified', 'user.sd.at_risk: why it is at risk');
  const atRisk = path.join(m.mountpoint, '.guardian', 'at-risk');
  t.same(fs.readdirSync(atRisk).sort(), ['one.txt', 'two.txt'], '/.guardian/at-risk lists the files at risk');
  t.equal(fs.readlinkSync(path.join(atRisk, 'one.txt')), '../../box/data/x/one.txt', 'as relative links into the tree');
  t.equal(fs.readFileSync(path.join(atRisk, 'one.txt'), 'utf8'), 'same bytes', 'which open the file');
  await runSd(['guardian', 'policy', 'set', '--copies', '1'], { library });
  // (content mode: still not verified, so still at risk; with a deep index it would not be)
  t.equal(String(getAttributeSync(file, 'user.sd.policy')), '1', 'a policy set with sd guardian shows at once');
  const stat = await sdJson<{ contentId: string }>(t, ['stat', 'sd://box/data/x/one.txt'], { library });
  t.equal(id, stat.contentId, 'the xattr equals the library content id');
  t.equal(fs.readFileSync(path.join(m.mountpoint, '.content', id), 'utf8'), 'same bytes', '/.content/<id> opens a copy');
  t.ok(fs.readdirSync(path.join(m.mountpoint, '.content')).includes(id), '/.content lists local content');
  t.throws(() => fs.writeFileSync(path.join(m.mountpoint, '.content', id), 'x'), { code: /^(EROFS|EACCES)$/ }, '.content is read-only');
  t.throws(() => fs.readFileSync(path.join(m.mountpoint, '.content', '0000000000000000')), { code: 'ENOENT' });
});

t.test('changes made on disk show through the mount within a second', async (t) => {
  const { library, root } = await libraryWithLocation(t, { 'a.txt': 'one' });
  const m = await startMount(t, library);
  const data = path.join(m.mountpoint, 'box', 'data');
  t.equal(fs.readFileSync(path.join(data, 'a.txt'), 'utf8'), 'one');
  fs.writeFileSync(path.join(root, 'a.txt'), 'changed!');
  fs.writeFileSync(path.join(root, 'new.txt'), 'new');
  const started = Date.now();
  t.ok(await waitFor(() => fs.readdirSync(data).includes('new.txt'), 1500), 'a new file is listed');
  t.ok(await waitFor(() => fs.readFileSync(path.join(data, 'a.txt'), 'utf8') === 'changed!', 1500), 'new content is read, not stale cache');
  t.ok(Date.now() - started <= 1500, `seen in ${Date.now() - started} ms`);
  t.ok(await waitFor(async () => (await runSd(['stat', 'sd://box/data/new.txt'], { library })).code === 0, 2000), 'and indexed by the watcher');
});

t.test('with names and attributes cached for a minute, outside changes still show within a second', async (t) => {
  const { library, root } = await libraryWithLocation(t, { 'keep.txt': 'k', 'grow.txt': 'one', 'gone.txt': 'g', 'sub/old.txt': 'o' });
  const m = await startMount(t, library, ['--attr-timeout', '60']);
  const data = path.join(m.mountpoint, 'box', 'data');
  // Look everything up once so the kernel holds it.
  t.same(fs.readdirSync(data).sort(), ['gone.txt', 'grow.txt', 'keep.txt', 'sub']);
  t.equal(fs.statSync(path.join(data, 'grow.txt')).size, 3);
  t.ok(fs.existsSync(path.join(data, 'gone.txt')));
  t.ok(fs.existsSync(path.join(data, 'sub', 'old.txt')));
  fs.writeFileSync(path.join(root, 'grow.txt'), 'one two three');
  fs.rmSync(path.join(root, 'gone.txt'));
  fs.renameSync(path.join(root, 'sub', 'old.txt'), path.join(root, 'sub', 'new.txt'));
  const started = Date.now();
  t.ok(await waitFor(() => fs.statSync(path.join(data, 'grow.txt')).size === 13, 1000), 'the new size, not the cached one');
  t.ok(await waitFor(() => !fs.existsSync(path.join(data, 'gone.txt')), 1000), 'a file removed outside is gone');
  t.ok(await waitFor(() => !fs.existsSync(path.join(data, 'sub', 'old.txt')) && fs.existsSync(path.join(data, 'sub', 'new.txt')), 1000), 'a rename outside shows');
  t.equal(fs.readFileSync(path.join(data, 'grow.txt'), 'utf8'), 'one two three', 'and reads whole');
  t.ok(Date.now() - started <= 1000, `seen in ${Date.now() - started} ms`);
});

t.test('a change the watcher does not see (an ignored folder) is read fresh on the next open after a second', async (t) => {
  const { library, root } = await libraryWithLocation(t, { 'node_modules/x.txt': 'aaaa' });
  const m = await startMount(t, library, ['--attr-timeout', '60']);
  const file = path.join(m.mountpoint, 'box', 'data', 'node_modules', 'x.txt');
  t.equal(fs.readFileSync(file, 'utf8'), 'aaaa');
  fs.writeFileSync(path.join(root, 'node_modules', 'x.txt'), 'bbbb'); // same size, new mtime
  const started = Date.now();
  t.ok(await waitFor(() => fs.readFileSync(file, 'utf8') === 'bbbb', 2500), `new content read after ${Date.now() - started} ms, not the kept page cache`);
});

t.test('changes through the mount show at once with long timeouts', async (t) => {
  const { library } = await libraryWithLocation(t, { 'a.txt': 'a' });
  const m = await startMount(t, library, ['--attr-timeout', '60']);
  const data = path.join(m.mountpoint, 'box', 'data');
  t.same(fs.readdirSync(data), ['a.txt']);
  fs.writeFileSync(path.join(data, 'b.txt'), 'bb');
  t.same(fs.readdirSync(data).sort(), ['a.txt', 'b.txt'], 'a created file is listed');
  t.equal(fs.statSync(path.join(data, 'b.txt')).size, 2);
  fs.appendFileSync(path.join(data, 'b.txt'), 'ccc');
  t.equal(fs.statSync(path.join(data, 'b.txt')).size, 5, 'a write through the mount updates the size');
  fs.renameSync(path.join(data, 'b.txt'), path.join(data, 'c.txt'));
  t.same(fs.readdirSync(data).sort(), ['a.txt', 'c.txt'], 'a rename is listed');
  t.notOk(fs.existsSync(path.join(data, 'b.txt')));
  fs.unlinkSync(path.join(data, 'a.txt'));
  // a.txt was the last copy of its content: the guardian keeps it in .sd-trash (test/last-copy.test.ts).
  t.same(fs.readdirSync(data).filter((n) => n !== '.sd-trash'), ['c.txt'], 'a removed file is gone');
  t.throws(() => fs.statSync(path.join(data, 'a.txt')), { code: 'ENOENT' });
});

t.test('ACL and security xattrs are unsupported (ls -l stops asking); user.sd.* still answer', async (t) => {
  const { library } = await libraryWithLocation(t, { 'f.txt': 'f' });
  const m = await startMount(t, library);
  const file = path.join(m.mountpoint, 'box', 'data', 'f.txt');
  for (const name of ['system.posix_acl_access', 'security.selinux']) {
    const r = await run('getfattr', ['-n', name, file]).then(() => ({ stderr: '' }), (err: { stderr: string }) => err);
    t.match(r.stderr, /Operation not supported/, `${name}: not supported`);
  }
  const out = await run('getfattr', ['-n', 'user.sd.sdpath', '--only-values', file]);
  t.equal(out.stdout, 'sd://box/data/f.txt', 'getfattr reads user.sd.sdpath');
  const all = await run('getfattr', ['-d', file]);
  t.match(all.stdout, /user\.sd\.content_id="[0-9a-f]{16}"/, 'getfattr -d lists user.sd.content_id');
});

t.test('SIGINT and SIGTERM unmount cleanly; a stale mount is cleaned at the next start', async (t) => {
  const { library } = await libraryWithLocation(t, { 'a.txt': 'a' });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const m = await startMount(t, library);
    t.equal(await m.stop(signal), 0, `${signal}: exit 0`);
    t.notOk(isMounted(m.mountpoint), `${signal}: nothing left mounted`);
  }
  const killed = await startMount(t, library);
  await killed.stop('SIGKILL');
  t.throws(() => fs.readdirSync(killed.mountpoint), { code: 'ENOTCONN' }, 'kill -9 leaves a stale mount');
  const again = await startMount(t, library, [], killed.mountpoint);
  t.same(fs.readdirSync(again.mountpoint).sort(), ['.content', '.guardian', '.search', '.tags', 'box'], 'the next start cleans it and mounts');
});

t.test('a busy or non-empty mount point is refused with a clear error', async (t) => {
  const { library } = await libraryWithLocation(t, { 'a.txt': 'a' });
  const m = await startMount(t, library);
  const busy = await runSd(['mount', m.mountpoint], { library });
  t.equal(busy.code, 1);
  t.match(busy.stderr, /already mounted/);
  const full = tempDir(t);
  fs.writeFileSync(path.join(full, 'something'), 'x');
  const nonEmpty = await runSd(['mount', full], { library });
  t.equal(nonEmpty.code, 1);
  t.match(nonEmpty.stderr, /not empty/);
  const umount = await runSd(['umount', m.mountpoint], { library });
  t.equal(umount.code, 0, 'sd umount unmounts');
  t.notOk(isMounted(m.mountpoint));
  t.ok(await waitFor(() => m.process.exitCode !== null, 3000), 'and the mount process exits on its own');
});

t.test('a mount point inside a location is refused', async (t) => {
  const { library, root } = await libraryWithLocation(t, { 'a.txt': 'a' });
  const r = await runSd(['mount', path.join(root, 'mnt')], { library });
  t.equal(r.code, 1);
  t.match(r.stderr, /inside the location 'data'/);
  t.notOk(fs.existsSync(path.join(root, 'mnt')), 'nothing was created in the location');
});

t.test('an outside change right after a change through the mount still reaches the index', async (t) => {
  const { library, root } = await libraryWithLocation(t, {});
  const m = await startMount(t, library);
  fs.writeFileSync(path.join(m.mountpoint, 'box', 'data', 'through-mount.txt'), 'a');
  fs.writeFileSync(path.join(root, 'outside.txt'), 'b');
  const started = Date.now();
  t.ok(await waitFor(async () => (await runSd(['stat', 'sd://box/data/outside.txt'], { library })).code === 0, 4000), `indexed after ${Date.now() - started} ms`);
});

t.test('2,000 files created in one folder through the mount are all indexed and listed', async (t) => {
  const { library, root } = await libraryWithLocation(t, {});
  const m = await startMount(t, library);
  const dir = path.join(m.mountpoint, 'box', 'data', 'many');
  fs.mkdirSync(dir);
  const block = Buffer.alloc(4096, 120);
  const started = performance.now();
  for (let i = 0; i < 2000; i++) {
    const fd = fs.openSync(path.join(dir, `f${i}`), 'w');
    fs.writeSync(fd, block);
    fs.closeSync(fd);
  }
  const seconds = (performance.now() - started) / 1000;
  t.comment(`2,000 × 4 KiB create+write+close through the mount: ${(2000 / seconds).toFixed(0)} files/s`);
  t.equal(fs.readdirSync(dir).length, 2000, 'all are listed through the mount');
  t.equal(fs.readdirSync(path.join(root, 'many')).length, 2000, 'all are on disk');
  const rows = await sdJson<Array<{ name: string; size: number; contentId?: string | null }>>(t, ['ls', 'sd://box/data/many'], { library });
  t.equal(rows.length, 2000, 'all are indexed');
  t.ok(rows.every((r) => r.size === 4096), 'with their size');
  t.ok(rows.every((r) => typeof r.contentId === 'string'), 'and their content id');
  // The folder was changed through the mount a moment ago; a change from outside still shows.
  fs.writeFileSync(path.join(root, 'many', 'outside.txt'), 'x');
  const seen = performance.now();
  t.ok(await waitFor(() => fs.readdirSync(dir).includes('outside.txt'), 3000), `an outside file in the same folder shows (${Math.round(performance.now() - seen)} ms)`);
});

t.test('in a deep location a file written through the mount gets its full hash soon after', async (t) => {
  const { library, root } = await libraryWithLocation(t, {}, 'box', 'data', 'deep');
  const m = await startMount(t, library);
  const sizes = [5000, 300_000, 3 * 1024 * 1024 + 17];
  for (const [i, size] of sizes.entries()) {
    const bytes = Buffer.alloc(size);
    for (let j = 0; j < size; j += 4096) bytes[j] = (i * 31 + j / 4096) & 0xff;
    fs.writeFileSync(path.join(m.mountpoint, 'box', 'data', `f${i}.bin`), bytes);
  }
  for (const i of sizes.keys()) {
    const expected = new Blake3Hasher().update(fs.readFileSync(path.join(root, `f${i}.bin`))).digest('hex');
    let got: string | null | undefined;
    const ok = await waitFor(async () => {
      const r = await runSd(['--json', 'stat', `sd://box/data/f${i}.bin`], { library });
      got = r.code === 0 ? (JSON.parse(r.stdout) as { fullHash: string | null }).fullHash : undefined;
      return got === expected;
    }, 5000, 200);
    t.ok(ok, `f${i}.bin (${sizes[i]} bytes): full BLAKE3 recorded and equal to b3sum (${got ?? 'none'})`);
  }
});
