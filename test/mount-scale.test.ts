// The mount at scale, in small: it serves before its start-up work is done, and the
// kernel inodes it holds stay within --inode-budget however much of the tree is walked.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { runSd, waitFor } from './helpers.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';

const run = promisify(execFile);
const FOLDERS = 40;
const PER = 100;

/** The last 'kernel inodes held' line the mount logged (debug level, every SD_INODE_STATS_MS). */
function lastInodes(stderr: string): { held: number; pruneAsked: number; pruneUnsupported: boolean } | undefined {
  const lines = stderr.split('\n').filter((l) => l.includes('"op":"inodes"'));
  return lines.length ? (JSON.parse(lines.at(-1)!) as { held: number; pruneAsked: number; pruneUnsupported: boolean }) : undefined;
}

/** Every file path below dir, through the mount, from a child process (ls -R) so this process never blocks on the mount. */
async function walk(dir: string): Promise<string[]> {
  const { stdout } = await run('find', [dir, '-type', 'f'], { maxBuffer: 64 * 1024 * 1024 });
  return stdout.split('\n').filter(Boolean).map((p) => path.relative(dir, p)).sort();
}

t.test('past --inode-budget the kernel is asked to forget the files looked up longest ago: the count stays bounded and every walk is complete', async (t) => {
  const files: Record<string, string> = {};
  for (let d = 0; d < FOLDERS; d++) for (let f = 0; f < PER; f++) files[`d${String(d).padStart(2, '0')}/f${f}.txt`] = `${d}/${f}\n`;
  const { library } = await libraryWithLocation(t, files, 'box', 'data', 'shallow');
  const budget = 400;
  const mounted = await startMount(t, library, ['--inode-budget', String(budget)], undefined, { SD_LOG: 'debug', SD_INODE_STATS_MS: '200' });
  const tree = path.join(mounted.mountpoint, 'box', 'data');
  const expected = Object.keys(files).sort();
  for (const pass of [1, 2]) t.same(await walk(tree), expected, `walk ${pass}: all ${expected.length} files, each with its name`);
  // Only what the mount logged after the walks counts.
  const after = mounted.stderr().length;
  const logged = () => lastInodes(mounted.stderr().slice(after));
  t.ok(await waitFor(() => logged() !== undefined, 5000, 50), 'the mount logs the kernel inodes it holds');
  const inodes = logged();
  if (inodes?.pruneUnsupported) {
    t.comment('this kernel has no FUSE_NOTIFY_PRUNE (Linux < 6.16): the budget cannot be kept');
    t.ok(inodes.held > budget, 'the mount says so and keeps serving');
    return;
  }
  // The kernel's FORGETs come a moment after the mount asks.
  let last = inodes;
  const settled = await waitFor(() => {
    last = logged();
    return last !== undefined && last.held <= budget;
  }, 10_000, 100);
  t.ok(settled, `the mount holds ${last?.held} kernel inodes once the walks end (budget ${budget}; ${FOLDERS * PER + FOLDERS} files and folders walked twice)`);
  t.ok((last?.pruneAsked ?? 0) >= FOLDERS * PER - budget, `it asked the kernel to forget ${last?.pruneAsked}`);
  // A forgotten file is looked up again: its bytes and attributes are right.
  const one = path.join(tree, 'd00', 'f7.txt');
  t.equal((await run('cat', [one])).stdout, '0/7\n', 'a file forgotten early reads right when looked up again');
  t.equal((await run('stat', ['-c', '%s', one])).stdout.trim(), '4', 'with its size');
});

t.test('sd mount says what its start-up work found once the mount serves; a change made while unmounted shows after', async (t) => {
  const { library, root } = await libraryWithLocation(t, { 'a/one.txt': 'one' }, 'box', 'data', 'shallow');
  fs.writeFileSync(path.join(root, 'a', 'offline.txt'), 'made while nothing watched');
  const mounted = await startMount(t, library, [], undefined, {}, { upToDate: false });
  t.ok(await waitFor(() => mounted.stdout().includes('up to date with the disk'), 30_000, 50), 'sd mount says when it is up to date with the disk');
  const out = mounted.stdout();
  t.ok(out.indexOf('Mounted at') < out.indexOf('up to date'), 'after it says it is mounted');
  t.match(out, /data: compared with the disk, 2 folders and 3 entries in [\d.]+ s; 2 changed folders re-read/, 'naming what it compared and what it re-read (the folder, and its parent whose mtime moved)');
  const stat = await runSd(['--json', 'stat', 'sd://box/data/a/offline.txt'], { library });
  t.equal(stat.code, 0, `the file made while nothing watched is in the index (${stat.stderr.trim()})`);
  t.ok(fs.readdirSync(path.join(mounted.mountpoint, 'box', 'data', 'a')).includes('offline.txt'), 'and listed through the mount');
});
