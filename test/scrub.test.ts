// sd guardian scrub: every file read whole and its full BLAKE3 checked against its last
// check. A byte flipped on disk with size and mtime kept is bit rot: reported, marked
// corrupt (its copy stops counting), never confused with an edit. A journaled job: killed
// with SIGKILL it resumes at the file it was on, nothing read twice that was finished.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { sd, spawnSd } from './cli-process.js';
import { tempDir, waitFor, writeTree } from './helpers.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';

const MB = 1_000_000;

async function library(t: Test, files: Record<string, string | Buffer>): Promise<{ lib: string; root: string }> {
  const base = tempDir(t, 'sd-scrub-');
  const lib = path.join(base, 'library');
  const root = writeTree(path.join(base, 'data'), files);
  for (const args of [['init', '--name', 'box'], ['location', 'add', root, '--name', 'data']]) {
    const r = await sd(args, { library: lib });
    if (r.code !== 0) throw new Error(r.stderr);
  }
  return { lib, root };
}

/** Flips one byte in the middle of a file and puts its mtime back: what a failing disk does. */
function rot(file: string): void {
  const st = fs.statSync(file);
  // touch -r keeps the time to the nanosecond (a Date or a float of seconds would round it).
  const ref = `${file}.time`;
  fs.writeFileSync(ref, '');
  execFileSync('touch', ['-r', file, ref]);
  const fd = fs.openSync(file, 'r+');
  const at = Math.floor(st.size / 2) + 12_345;
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0] = b[0]! ^ 0x5a;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);
  execFileSync('touch', ['-r', ref, file]);
  fs.rmSync(ref);
}

function query<T>(lib: string, sql: string): T[] {
  const db = new Database(path.join(lib, 'library.db'), { readonly: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

function checks(lib: string): Array<{ name: string; corrupt: number }> {
  return query(lib, 'SELECT e.name, k.corrupt FROM copy_checks k JOIN entries e ON e.id = k.entry_id ORDER BY e.name');
}

t.test('scrub verifies every file, finds a flipped byte, and tells rot from an edit', async (t) => {
  const { lib, root } = await library(t, { 'photo.raw': crypto.randomBytes(3 * MB), 'notes.txt': 'notes\n', 'sub/doc.pdf': crypto.randomBytes(400_000) });
  const first = await sd(['--json', 'guardian', 'scrub'], { library: lib });
  t.equal(first.code, 0, `a clean scrub exits 0 ${first.stderr}`);
  t.match(JSON.parse(first.stdout), { status: 'completed', progress: { filesDone: 3, verified: 3 }, corruptFiles: [] }, 'three files read and verified');
  t.same(checks(lib), [{ name: 'doc.pdf', corrupt: 0 }, { name: 'notes.txt', corrupt: 0 }, { name: 'photo.raw', corrupt: 0 }], 'each has a check now');
  const status = JSON.parse((await sd(['--json', 'guardian', 'status'], { library: lib })).stdout) as { locations: Array<{ verified: number }> };
  t.equal(status.locations[0]?.verified, 3, 'sd guardian status counts them verified');

  rot(path.join(root, 'photo.raw'));
  const second = await sd(['guardian', 'scrub'], { library: lib });
  t.equal(second.code, 1, 'a scrub that finds rot exits 1');
  t.match(second.stdout, /2 verified, 1 corrupt/, 'says how many');
  t.match(second.stdout, /Corrupt.*\n  sd:\/\/box\/data\/photo\.raw/, 'and names the file');
  t.same(checks(lib).find((c) => c.name === 'photo.raw')?.corrupt, 1, 'its check is marked corrupt');
  const audited = query<{ target: string; details: string }>(lib, "SELECT target, details FROM audit_log WHERE action = 'scrub' AND status = 'Failed'");
  t.same(audited.map((a) => [path.basename(a.target), (JSON.parse(a.details) as { bitRot?: boolean }).bitRot]), [['photo.raw', true]], 'and audited: one row for the rotten file');
  const risk = JSON.parse((await sd(['--json', 'guardian', 'at-risk'], { library: lib })).stdout) as { items: Array<{ paths: string[]; counting: number }> };
  t.match(risk.items.find((i) => i.paths.includes('sd://box/data/photo.raw')), { counting: 0 }, 'a corrupt copy does not count');

  // An edit changes the mtime: a new version, checked afresh, not rot.
  fs.appendFileSync(path.join(root, 'sub/doc.pdf'), 'an edit');
  await sd(['index'], { library: lib });
  const third = await sd(['--json', 'guardian', 'scrub'], { library: lib });
  t.equal(JSON.parse(third.stdout).progress.corrupt ?? 0, 1, 'after an edit only the rotten file is corrupt');
  t.same(checks(lib).find((c) => c.name === 'doc.pdf')?.corrupt, 0, 'the edited file is checked afresh');
});

t.test('kill -9 mid-scrub: sd jobs resume goes on from the file it was on, and --rate holds the pace', async (t) => {
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 4; i++) files[`f${i}.bin`] = crypto.randomBytes(6 * MB);
  const { lib } = await library(t, files);
  const started = Date.now();
  const child = spawnSd(['--json', 'guardian', 'scrub', '--rate', '8'], { library: lib });
  child.stdout!.resume();
  child.stderr!.resume();
  const exited = new Promise((r) => child.on('close', r));
  const job = () => {
    const db = new Database(path.join(lib, 'library.db'), { readonly: true });
    try {
      return db.prepare('SELECT id, progress FROM jobs ORDER BY id DESC LIMIT 1').get() as { id: number; progress: string } | undefined;
    } finally {
      db.close();
    }
  };
  t.ok(await waitFor(() => (JSON.parse(job()?.progress ?? '{}') as { filesDone?: number }).filesDone === 2, 30_000, 50), 'two files done');
  const elapsed = (Date.now() - started) / 1000;
  t.ok(elapsed >= 1.2, `at --rate 8 (MB/s) 12 MB took ${elapsed.toFixed(1)} s`);
  child.kill('SIGKILL');
  await exited;
  const id = job()!.id;
  const r = await sd(['--json', 'jobs', 'resume', String(id)], { library: lib, timeoutMs: 60_000 });
  t.equal(r.code, 0, `sd jobs resume completes the scrub ${r.stderr}`);
  const outcome = JSON.parse(r.stdout) as { status: string; progress: { filesDone: number; verified: number; runs: number } };
  t.match(outcome, { status: 'completed', progress: { filesDone: 4, verified: 4, runs: 2 } }, 'four files, each verified once over two runs');
  t.equal(checks(lib).length, 4, 'every file has its check');
});

t.test('a running mount scrubs on the schedule sd guardian schedule sets, once per interval', async (t) => {
  const { library } = await libraryWithLocation(t, { 'a.bin': crypto.randomBytes(2 * MB), 'b.txt': 'b\n' });
  const none = await sd(['guardian', 'schedule'], { library });
  t.match(none.stdout, /No scheduled scrub/, 'no schedule at first');
  const set = await sd(['guardian', 'schedule', '--every', '7d', '--rate', '50'], { library });
  t.equal(set.code, 0, `schedule set ${set.stderr}`);
  t.match(set.stdout, /Scrub every 7d at 48 MiB\/s while sd mount runs\nLast scrub: never/, 'and shown');
  const bad = await sd(['guardian', 'schedule', '--every', 'weekly'], { library });
  t.equal(bad.code, 2, 'a duration it cannot read is a usage error');
  t.match(bad.stderr, /--every takes a duration such as 90m, 24h or 7d \(got 'weekly'\)/);

  await startMount(t, library, [], undefined, { SD_SCRUB_CHECK_MS: '300' });
  const scrubs = async () => (JSON.parse((await sd(['--json', 'jobs'], { library })).stdout) as Array<{ kind: string; status: string }>).filter((j) => j.kind === 'scrub');
  t.ok(await waitFor(async () => (await scrubs()).some((j) => j.status === 'completed'), 30_000, 300), 'the mount ran a scrub');
  const status = JSON.parse((await sd(['--json', 'guardian', 'status'], { library })).stdout) as { locations: Array<{ verified: number }> };
  t.equal(status.locations[0]?.verified, 2, 'which checked both files');
  await new Promise((r) => setTimeout(r, 1500));
  t.equal((await scrubs()).length, 1, 'and no other within the interval');
  const off = await sd(['guardian', 'schedule', '--off'], { library });
  t.match(off.stdout, /No scheduled scrub.*\nLast scrub: \d{4}-/, '--off clears it; the last scrub is shown');
});

t.test('repair restores a corrupt file from a verified copy on this device; never an edit, never without a source', async (t) => {
  const photo = crypto.randomBytes(2 * MB);
  const { lib, root } = await library(t, { 'photo.raw': photo, 'lonely.bin': crypto.randomBytes(300_000) });
  const backup = writeTree(path.join(path.dirname(root), 'backup'), { 'photo.raw': photo });
  t.equal((await sd(['location', 'add', backup, '--name', 'backup'], { library: lib })).code, 0, 'a second location holds a copy');
  t.equal((await sd(['guardian', 'scrub'], { library: lib })).code, 0, 'all verified');
  rot(path.join(root, 'photo.raw'));
  rot(path.join(root, 'lonely.bin'));
  t.equal((await sd(['guardian', 'scrub'], { library: lib })).code, 1, 'the scrub finds both rotten');
  const mtimeBefore = fs.statSync(path.join(root, 'photo.raw')).mtimeMs;

  const preview = await sd(['guardian', 'repair', '--preview', 'sd://box/data/photo.raw'], { library: lib });
  t.equal(preview.code, 0, 'repair --preview');
  t.match(preview.stdout, new RegExp(`${path.join(root, 'photo.raw')} from ${path.join(backup, 'photo.raw')}`), 'names the copy it would restore from');
  t.match(preview.stdout, /nothing was changed/, 'and changes nothing');

  const repaired = await sd(['guardian', 'repair', 'sd://box/data/photo.raw'], { library: lib });
  t.equal(repaired.code, 0, `repair exits 0 ${repaired.stderr}`);
  t.match(repaired.stdout, /Repaired 1 file .*checked by full BLAKE3/, 'says what it did');
  t.ok(fs.readFileSync(path.join(root, 'photo.raw')).equals(photo), 'the file has its bytes back');
  t.equal(Math.floor(fs.statSync(path.join(root, 'photo.raw')).mtimeMs), Math.floor(mtimeBefore), 'and its mtime');
  t.same(checks(lib).filter((c) => c.name === 'photo.raw').map((c) => c.corrupt), [0, 0], 'both copies are verified again');

  const alone = await sd(['guardian', 'repair'], { library: lib });
  t.equal(alone.code, 1, 'a corrupt file with no verified copy anywhere here is not repaired');
  t.match(alone.stderr, /no copy of .*lonely\.bin is on this device or a paired one/, 'saying so');

  fs.appendFileSync(path.join(root, 'lonely.bin'), 'edited');
  await sd(['index'], { library: lib });
  const edited = await sd(['guardian', 'repair', 'sd://box/data/lonely.bin'], { library: lib });
  t.equal(edited.code, 1, 'an edit since is never repaired');
  t.match(edited.stderr, /changed since its last check \(an edit/, 'saying why');
  t.equal((await sd(['guardian', 'scrub'], { library: lib })).code, 0, 'a scrub after finds nothing corrupt');
});
