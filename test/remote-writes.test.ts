// Changes made in another device's tree through the mount: a new file is staged here and
// copied in by the device, mkdir/rm/mv are actions the device runs; while the device is
// offline they wait in `sd jobs` and the mount shows them; a rename across devices is EXDEV.
// Each device is its own `sd mount` process and library, on a local DHT testnet.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type * as Tap from 'tap';
import { runSd, waitFor } from './helpers.js';
import { startMount } from './mount-helpers.js';
import { jobsOf, pairedMounts as pairTwo, readOr } from './remote-helpers.js';
import { callAs, valueOf } from './posix-as.js';

/** d_type values (dirent.h). */
const DT_UNKNOWN = 0;
const DT_DIR = 4;
const DT_REG = 8;
const SELF = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

/** Alpha (location media) and beta (location notes), paired and mounted. */
async function pairedMounts(t: Tap.Test) {
  const { a, b, bootstrap } = await pairTwo(
    t,
    { name: 'alpha', location: 'media', files: { 'hi.txt': 'hello from alpha\n' } },
    { name: 'beta', location: 'notes', files: { 'note.txt': 'beta note\n' } },
    { file: 'hi.txt', text: 'hello from alpha\n' },
  );
  return { alpha: a, beta: b, bootstrap, mountA: a.mount, mountB: b.mount };
}

t.test('new files, folders, removals and renames in a peer tree are applied by the peer', async (t) => {
  const { alpha, mountA, mountB } = await pairedMounts(t);
  const peerTree = path.join(mountB.mountpoint, 'alpha/media');
  const onAlpha = (rel: string) => path.join(alpha.root, rel);

  // A new file: shown at once (from the staged bytes), then present on alpha's disk.
  const data = crypto.randomBytes(3 * 1024 * 1024 + 7);
  fs.writeFileSync(path.join(peerTree, 'from-beta.bin'), data);
  t.ok(fs.readFileSync(path.join(peerTree, 'from-beta.bin')).equals(data), 'the new file reads back at once through the mount');
  t.ok(fs.readdirSync(peerTree).includes('from-beta.bin'), 'and is listed');
  t.ok(await waitFor(() => fs.existsSync(onAlpha('from-beta.bin')) && fs.readFileSync(onAlpha('from-beta.bin')).equals(data), 30_000), "alpha applied the copy: the bytes are in alpha's folder");
  t.ok(await waitFor(async () => (await jobsOf(mountB.library)).some((j) => j.kind === 'copy' && j.device === 'alpha' && j.status === 'completed'), 15_000), "beta's job is completed");
  t.ok(fs.readFileSync(path.join(peerTree, 'from-beta.bin')).equals(data), 'read through the mount once delivered (now from alpha)');
  t.ok(fs.readFileSync(path.join(mountA.mountpoint, 'alpha/media/from-beta.bin')).equals(data), "and in alpha's own mount");

  // A folder tree copied in with cp -r (mkdir, then files inside the pending folder).
  const src = path.join(path.dirname(alpha.root), 'tree-src');
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(src, 'a.txt'), 'a\n');
  fs.writeFileSync(path.join(src, 'sub/b.txt'), 'b\n');
  fs.cpSync(src, path.join(peerTree, 'tree'), { recursive: true });
  t.same(fs.readdirSync(path.join(peerTree, 'tree')).sort(), ['a.txt', 'sub'], 'the pending folder lists what was copied into it');
  t.ok(await waitFor(() => readOr(onAlpha('tree/sub/b.txt')) === 'b\n' && readOr(onAlpha('tree/a.txt')) === 'a\n', 30_000), 'alpha made the folders and copied the files');

  // rm: alpha moves the file to its trash (nothing is lost on a remote delete).
  fs.unlinkSync(path.join(peerTree, 'hi.txt'));
  t.notOk(fs.readdirSync(peerTree).includes('hi.txt'), 'gone from the listing at once');
  t.ok(await waitFor(() => !fs.existsSync(onAlpha('hi.txt')), 30_000), "gone from alpha's folder");
  const trash = path.join(alpha.root, '.sd-trash');
  t.ok(fs.existsSync(trash) && JSON.stringify(fs.readdirSync(trash, { recursive: true })).includes('hi.txt'), "kept in alpha's .sd-trash");

  // mv inside the peer's location; across devices it is EXDEV.
  fs.renameSync(path.join(peerTree, 'tree/a.txt'), path.join(peerTree, 'tree/renamed.txt'));
  t.ok(fs.existsSync(path.join(peerTree, 'tree/renamed.txt')), 'the new name shows at once');
  t.ok(await waitFor(() => readOr(onAlpha('tree/renamed.txt')) === 'a\n' && !fs.existsSync(onAlpha('tree/a.txt')), 30_000), 'alpha renamed it');
  t.throws(() => fs.renameSync(path.join(peerTree, 'from-beta.bin'), path.join(mountB.mountpoint, 'beta/notes/x.bin')), { code: 'EXDEV' }, 'rename to another device is EXDEV');
  t.throws(() => fs.renameSync(path.join(mountB.mountpoint, 'beta/notes/note.txt'), path.join(peerTree, 'note.txt')), { code: 'EXDEV' }, 'and from this device to a peer too');

  // rmdir of a folder that is not empty is refused; rm -r works.
  t.throws(() => fs.rmdirSync(path.join(peerTree, 'tree')), { code: 'ENOTEMPTY' });
  fs.rmSync(path.join(peerTree, 'tree'), { recursive: true });
  t.ok(await waitFor(() => !fs.existsSync(onAlpha('tree')), 30_000), 'rm -r reaches alpha');
  const jobs = await jobsOf(mountB.library);
  t.same(jobs.filter((j) => j.device === 'alpha' && j.status !== 'completed'), [], 'every change was applied');
});

t.test('changes to an offline device wait in sd jobs, show in the mount, and are applied when it returns', async (t) => {
  const { alpha, bootstrap, mountA, mountB } = await pairedMounts(t);
  const peerTree = path.join(mountB.mountpoint, 'alpha/media');
  t.equal(await mountA.stop(), 0, 'alpha stops');

  const data = crypto.randomBytes(1024 * 1024 + 3);
  fs.writeFileSync(path.join(peerTree, 'queued.bin'), data);
  fs.mkdirSync(path.join(peerTree, 'later'));
  fs.renameSync(path.join(peerTree, 'hi.txt'), path.join(peerTree, 'renamed.txt'));
  t.ok(fs.readFileSync(path.join(peerTree, 'queued.bin')).equals(data), 'the pending file reads back while alpha is offline');
  t.ok(fs.statSync(path.join(peerTree, 'later')).isDirectory(), 'the pending folder shows');
  await new Promise((r) => setTimeout(r, 2500));
  // Past the kernel's caches: the pending rename answers from the mount's own view.
  t.equal(readOr(path.join(peerTree, 'renamed.txt')), 'hello from alpha\n', 'the renamed file reads at its new name while alpha is offline');
  t.same(fs.readdirSync(peerTree).sort(), ['later', 'queued.bin', 'renamed.txt'], 'the listing shows the new name, not the old');
  // With their types (d_type), so ls -R and find need not stat them; a renamed name's may be left unknown, never wrong.
  const types = new Map(valueOf<Array<[string, string, number]>>(callAs(SELF, { op: 'getdents', path: peerTree }), 'getdents').map(([name, , type]) => [name, type]));
  t.same([types.get('later'), types.get('queued.bin')], [DT_DIR, DT_REG], 'the pending folder and file are listed with their types');
  t.ok([DT_UNKNOWN, DT_REG].includes(types.get('renamed.txt')!), `the renamed file's type is unknown or a file's (${types.get('renamed.txt')})`);
  const waiting = (await jobsOf(mountB.library)).filter((j) => j.device === 'alpha');
  t.same(waiting.map((j) => [j.kind, j.status]).sort(), [['copy', 'queued'], ['mkdir', 'queued'], ['move', 'queued']], 'sd jobs lists all three, queued');
  t.notOk(fs.existsSync(path.join(alpha.root, 'queued.bin')), 'nothing reached alpha yet');

  const again = await startMount(t, alpha.library, ['--bootstrap', bootstrap]);
  t.ok(await waitFor(() => fs.existsSync(path.join(alpha.root, 'queued.bin')) && fs.readFileSync(path.join(alpha.root, 'queued.bin')).equals(data), 60_000), 'delivered once alpha is back');
  t.ok(await waitFor(() => fs.statSync(path.join(alpha.root, 'later'), { throwIfNoEntry: false })?.isDirectory() === true, 30_000), 'the folder too');
  t.ok(await waitFor(() => readOr(path.join(alpha.root, 'renamed.txt')) === 'hello from alpha\n' && !fs.existsSync(path.join(alpha.root, 'hi.txt')), 30_000), 'and the rename');
  t.ok(await waitFor(async () => (await jobsOf(mountB.library)).filter((j) => j.device === 'alpha').every((j) => j.status === 'completed'), 20_000), 'every job completed');
  await again.stop();
});
