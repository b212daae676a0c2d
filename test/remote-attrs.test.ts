// Times and modes set on files written into a peer's tree are kept: whatever order a
// program uses (write a temp name, set times by path or on the open handle, chmod, rename
// into place), the peer's disk, its index and both devices' views end with the times and
// mode set last. Each device is its own `sd mount` process on a local DHT testnet.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type * as Tap from 'tap';
import { runSd, waitFor } from './helpers.js';
import { pairedMounts } from './remote-helpers.js';

const run = promisify(execFile);

const Y2001 = new Date('2001-01-01T00:00:00Z');

/** Alpha (location media) and beta (location notes), paired and mounted. */
async function devices(t: Tap.Test) {
  const { a, b } = await pairedMounts(
    t,
    { name: 'alpha', location: 'media', files: { 'hi.txt': 'hello from alpha\n', 'keep.txt': 'kept\n' } },
    { name: 'beta', location: 'notes', files: { 'note.txt': 'beta note\n' } },
    { file: 'hi.txt', text: 'hello from alpha\n' },
  );
  return { alpha: a, beta: b, peerTree: path.join(b.mount.mountpoint, 'alpha/media') };
}

/** Seconds of an mtime (what rsync and `ls` compare). */
function mtimeS(file: string): number | undefined {
  try {
    return Math.floor(fs.statSync(file).mtimeMs / 1000);
  } catch {
    return undefined;
  }
}

function modeOf(file: string): number | undefined {
  try {
    return fs.statSync(file).mode & 0o7777;
  } catch {
    return undefined;
  }
}

/** What `sd stat` says of a file in alpha's index: its mtime (seconds) and mode. */
async function indexed(library: string, sdPath: string): Promise<{ mtime: number; mode: number } | undefined> {
  const r = await runSd(['--json', 'stat', sdPath], { library });
  if (r.code !== 0) return undefined;
  const d = JSON.parse(r.stdout) as { mtime: string; mode: string };
  return { mtime: Math.floor(Date.parse(d.mtime) / 1000), mode: parseInt(d.mode, 8) & 0o7777 };
}

/** A source tree with old times and assorted modes, as a backup would meet it. */
function sourceTree(root: string): Record<string, { mtime: Date; mode: number }> {
  const files: Record<string, { data: string; mtime: Date; mode: number }> = {
    'a.txt': { data: 'a\n', mtime: new Date('2003-03-03T03:03:03Z'), mode: 0o640 },
    'run.sh': { data: '#!/bin/sh\necho hi\n', mtime: new Date('2010-10-10T10:10:10Z'), mode: 0o755 },
    'sub/b.bin': { data: 'b'.repeat(200_000), mtime: new Date('2015-05-05T05:05:05Z'), mode: 0o600 },
    'sub/deeper/c.txt': { data: 'c\n', mtime: Y2001, mode: 0o644 },
  };
  for (const [rel, f] of Object.entries(files)) {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, f.data);
    fs.chmodSync(file, f.mode);
    fs.utimesSync(file, f.mtime, f.mtime);
  }
  for (const dir of ['sub/deeper', 'sub', '.']) fs.utimesSync(path.join(root, dir), new Date('2020-02-02T02:02:02Z'), new Date('2020-02-02T02:02:02Z'));
  return Object.fromEntries(Object.entries(files).map(([rel, f]) => [rel, { mtime: f.mtime, mode: f.mode }]));
}

t.test('rsync -a into a peer tree keeps times and modes there; a second rsync sends nothing', async (t) => {
  const { alpha, beta, peerTree } = await devices(t);
  const src = path.join(path.dirname(alpha.root), 'backup-src');
  const want = sourceTree(src);
  const dst = path.join(peerTree, 'dir');

  await run('rsync', ['-a', `${src}/`, `${dst}/`]);
  const settled = () =>
    Object.entries(want).every(([rel, w]) => {
      const onAlpha = path.join(alpha.root, 'dir', rel);
      return mtimeS(onAlpha) === w.mtime.getTime() / 1000 && modeOf(onAlpha) === w.mode;
    });
  t.ok(await waitFor(settled, 60_000, 200), "every file has the source's mtime and mode on alpha's disk");
  for (const [rel, w] of Object.entries(want)) {
    const onAlpha = path.join(alpha.root, 'dir', rel);
    t.equal(mtimeS(onAlpha), w.mtime.getTime() / 1000, `${rel}: mtime on alpha's disk`);
    t.equal(modeOf(onAlpha), w.mode, `${rel}: mode on alpha's disk`);
  }
  t.same(fs.readdirSync(path.join(alpha.root, 'dir')).sort(), ['a.txt', 'run.sh', 'sub'], 'no temporary names left behind');
  // Beta's view and alpha's own mount and index end the same once the log has travelled.
  const agree = async () => {
    for (const [rel, w] of Object.entries(want)) {
      const s = w.mtime.getTime() / 1000;
      if (mtimeS(path.join(dst, rel)) !== s || modeOf(path.join(dst, rel)) !== w.mode) return false;
      if (mtimeS(path.join(alpha.mount.mountpoint, 'alpha/media/dir', rel)) !== s) return false;
      const ix = await indexed(alpha.library, `sd://alpha/media/dir/${rel}`);
      if (ix?.mtime !== s || ix.mode !== w.mode) return false;
    }
    return true;
  };
  t.ok(await waitFor(agree, 30_000, 250), "beta's view, alpha's mount and alpha's index show the same times and modes");

  const again = await run('rsync', ['-a', '--itemize-changes', `${src}/`, `${dst}/`]);
  t.equal(again.stdout.trim(), '', 'the second rsync -a finds nothing to send');
  t.ok(await waitFor(settled, 1000), 'and the files on alpha are as they were');
});

t.test('cp -p, touch -d, chmod and appends on files of a peer tree reach its disk', async (t) => {
  const { alpha, beta, peerTree } = await devices(t);
  const onAlpha = (rel: string) => path.join(alpha.root, rel);

  // cp -p: a new file with the source's times and mode.
  const src = path.join(path.dirname(alpha.root), 'old.txt');
  fs.writeFileSync(src, 'an old file\n');
  fs.chmodSync(src, 0o604);
  fs.utimesSync(src, Y2001, Y2001);
  await run('cp', ['-p', src, path.join(peerTree, 'old.txt')]);
  t.ok(await waitFor(() => fs.existsSync(onAlpha('old.txt')) && mtimeS(onAlpha('old.txt')) === Y2001.getTime() / 1000 && modeOf(onAlpha('old.txt')) === 0o604, 30_000, 200), "cp -p: alpha's copy has the source's mtime and mode");

  // touch -d on a file alpha had already: its bytes stay, its time changes there.
  await run('touch', ['-d', '2001-01-01 00:00:00Z', path.join(peerTree, 'hi.txt')]);
  t.ok(await waitFor(() => mtimeS(onAlpha('hi.txt')) === Y2001.getTime() / 1000, 30_000, 200), "touch -d: the time is set on alpha's disk");
  t.equal(fs.readFileSync(onAlpha('hi.txt'), 'utf8'), 'hello from alpha\n', 'and its bytes are unchanged');
  t.ok(await waitFor(() => mtimeS(path.join(peerTree, 'hi.txt')) === Y2001.getTime() / 1000, 15_000, 200), "beta's view shows the new time");
  const jobs = JSON.parse((await runSd(['--json', 'jobs'], { library: beta.library })).stdout) as Array<{ kind: string; summary: string }>;
  t.notOk(
    jobs.some((j) => j.kind === 'copy' && j.summary.includes('hi.txt')),
    'touch opened the file for writing and wrote nothing: no bytes were fetched or sent back, only its times',
  );

  // Appending to a file alpha has: its bytes are fetched at the first write, then sent back whole.
  fs.appendFileSync(path.join(peerTree, 'keep.txt'), 'more\n');
  t.ok(await waitFor(() => fs.readFileSync(onAlpha('keep.txt'), 'utf8') === 'kept\nmore\n', 30_000, 200), "appended: alpha's file has its old bytes and the new ones");

  // chmod of a file alpha had already.
  fs.chmodSync(path.join(peerTree, 'keep.txt'), 0o600);
  t.ok(await waitFor(() => modeOf(onAlpha('keep.txt')) === 0o600, 30_000, 200), "chmod: the mode is set on alpha's disk");
  t.ok(await waitFor(() => modeOf(path.join(peerTree, 'keep.txt')) === 0o600, 15_000, 200), "beta's view shows the new mode");

  // Times set on the open handle (futimens) before close, then renamed into place.
  const tmp = path.join(peerTree, '.handle.tmp');
  const fd = fs.openSync(tmp, 'w', 0o640);
  fs.writeSync(fd, 'set on the handle\n');
  fs.futimesSync(fd, Y2001, Y2001);
  fs.closeSync(fd);
  fs.renameSync(tmp, path.join(peerTree, 'handle.txt'));
  t.ok(await waitFor(() => mtimeS(onAlpha('handle.txt')) === Y2001.getTime() / 1000 && modeOf(onAlpha('handle.txt')) === 0o640, 30_000, 200), "futimens then rename: alpha's file has the time and mode");
  t.notOk(fs.existsSync(onAlpha('.handle.tmp')), 'the temporary name is gone there');
});
