// Jobs survive their process: a copy killed with SIGKILL halfway through a large file
// (or through many files) is resumed — not restarted — by `sd jobs resume` or by the
// JobManager at start, and the result verifies against its source. Pause, cancel and
// Ctrl-C work across processes.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { ActionManager } from '../src/vdfs/actions/action-manager.js';
import { AuditLog } from '../src/vdfs/audit.js';
import { contentHashOfFile, fullHashOfFile } from '../src/vdfs/content/identity.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import { JobManager } from '../src/vdfs/jobs/job-manager.js';
import type { JobProgress } from '../src/vdfs/jobs/job-store.js';
import type { Library } from '../src/vdfs/library.js';
import { addLocation, type Location } from '../src/vdfs/locations.js';
import { assertIndexExact } from './actions-helpers.js';
import { sd, spawnSd } from './cli-process.js';
import { tempDir, tempLibrary, waitFor } from './helpers.js';

const MiB = 1024 * 1024;

interface World {
  library: Library;
  a: Location;
  b: Location;
  rootA: string;
  rootB: string;
}

function world(t: Test): World {
  const library = tempLibrary(t, 'box');
  const store = new EntryStore(library.db);
  const rootA = fs.realpathSync(tempDir(t, 'sd-jobs-a-'));
  const rootB = fs.realpathSync(tempDir(t, 'sd-jobs-b-'));
  const a = addLocation(library.db, store, library.device.id, { path: rootA, name: 'a' });
  const b = addLocation(library.db, store, library.device.id, { path: rootB, name: 'b' });
  return { library, a, b, rootA, rootB };
}

/** A file of random bytes (no two chunks alike, nothing sparse). */
function randomFile(file: string, bytes: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const block = crypto.randomBytes(4 * MiB);
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0, n = 0; done < bytes; n++) {
      block.writeUInt32LE(n, 0);
      const len = Math.min(block.length, bytes - done);
      fs.writeSync(fd, block, 0, len);
      done += len;
    }
  } finally {
    fs.closeSync(fd);
  }
}

interface JobRow {
  id: number;
  status: string;
  progress: JobProgress;
}

/** Reads the newest job through a connection of its own, as another process would. */
function newestJob(library: Library): JobRow | undefined {
  const db = new Database(library.dbPath, { readonly: true });
  try {
    const row = db.prepare('SELECT id, status, progress FROM jobs ORDER BY id DESC LIMIT 1').get() as { id: number; status: string; progress: string } | undefined;
    return row && { id: row.id, status: row.status, progress: JSON.parse(row.progress) as JobProgress };
  } finally {
    db.close();
  }
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout!.resume();
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

function stagingLeft(root: string): string[] {
  const dir = path.join(root, '.sd-staging');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

/**
 * `sd cp` of a random file of `size` bytes from location a to b (at most `bwlimit`/s),
 * killed with SIGKILL once its checkpoint is past `killAt` bytes.
 */
async function copyKilledMidway(t: Test, w: World, size: number, bwlimit: string, killAt: number) {
  const src = path.join(w.rootA, 'video.bin');
  randomFile(src, size);
  indexLocation(w.library, w.a);
  const child = spawnSd(['cp', '--bwlimit', bwlimit, 'sd://box/a/video.bin', 'sd://box/b/'], { library: w.library.dir });
  const done = exited(child);
  const checkpointed = await waitFor(() => (newestJob(w.library)?.progress.current?.bytes ?? 0) >= killAt, 30_000, 50);
  t.ok(checkpointed, `the copy checkpoints its progress while it runs (past ${killAt / MiB} MiB)`);
  child.kill('SIGKILL');
  return { src, killed: await done };
}

t.test('kill -9 in the middle of a large file: sd jobs resume continues from the checkpoint and the copy verifies', async (t) => {
  const w = world(t);
  const size = 300 * MiB;
  const { src, killed } = await copyKilledMidway(t, w, size, '60M', 40 * MiB);
  t.equal(killed.signal, 'SIGKILL', 'the copying process is killed with SIGKILL');
  const atKill = newestJob(w.library)!;
  t.equal(atKill.status, 'running', 'the job row still says running');
  t.ok(atKill.progress.current!.bytes > 0 && atKill.progress.current!.bytes < size, `it was halfway (${Math.round(atKill.progress.current!.bytes / MiB)} MiB of ${size / MiB})`);
  t.notOk(fs.existsSync(path.join(w.rootB, 'video.bin')), 'nothing is in place yet');

  const listed = JSON.parse((await sd(['--json', 'jobs'], { library: w.library.dir })).stdout) as Array<{ id: number; status: string }>;
  t.equal(listed[0]?.status, 'interrupted', "sd jobs shows it as interrupted (its process is gone)");

  const r = await sd(['--json', 'jobs', 'resume', String(atKill.id)], { library: w.library.dir, timeoutMs: 120_000 });
  t.equal(r.code, 0, `sd jobs resume exits 0 ${r.stderr}`);
  const outcome = JSON.parse(r.stdout) as { status: string; resumedAtBytes: number; progress: JobProgress };
  t.equal(outcome.status, 'completed', 'the resumed job completes');
  t.ok(outcome.resumedAtBytes >= atKill.progress.current!.bytes, `it resumed at ${Math.round(outcome.resumedAtBytes / MiB)} MiB, not at 0`);
  t.equal(outcome.progress.copiedBytes, size - outcome.resumedAtBytes, 'only the rest was copied in the second run');
  t.equal(outcome.progress.runs, 2, 'two runs');
  t.equal(outcome.progress.verified, 1, 'the resumed file was checked by its full BLAKE3');

  const dst = path.join(w.rootB, 'video.bin');
  t.equal(fs.statSync(dst).size, size, 'the copy has the full size');
  t.equal(contentHashOfFile(dst)?.contentId, contentHashOfFile(src)?.contentId, 'the same content id as the source');
  t.equal(fullHashOfFile(dst), fullHashOfFile(src), 'and the same full BLAKE3');
  t.same(stagingLeft(w.rootB), [], 'no partial file left behind');
  const trail = new AuditLog(w.library.db).trail(atKill.id).map((a) => a.status);
  t.same(trail, ['Previewed', 'Committed', 'Running', 'Running', 'Completed'], 'the audit trail shows both runs');
  t.equal(new EntryStore(w.library.db).resolve(w.b.rootEntryId!, ['video.bin'])?.contentId, contentHashOfFile(src)?.contentId, 'the copy is indexed with its content id');
  assertIndexExact(t, w.library, [w.a, w.b]);
});

t.test('a resumed copy is checked against its source in full: bytes damaged in the kept part never land', async (t) => {
  const w = world(t);
  const { src } = await copyKilledMidway(t, w, 120 * MiB, '40M', 20 * MiB);
  const atKill = newestJob(w.library)!;
  // One byte flipped where the content id does not sample (1 MiB in): a bad disk, a crash mid-write.
  const part = path.join(w.rootB, '.sd-staging', stagingLeft(w.rootB)[0]!);
  const fd = fs.openSync(part, 'r+');
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, MiB + 12_345);
  byte[0] = byte[0]! ^ 0xff;
  fs.writeSync(fd, byte, 0, 1, MiB + 12_345);
  fs.closeSync(fd);

  const bad = await sd(['jobs', 'resume', String(atKill.id)], { library: w.library.dir, timeoutMs: 120_000 });
  t.equal(bad.code, 1, 'the resume fails');
  t.match(bad.stderr, /does not match its source \(full BLAKE3\).*resume the job to copy it again/, 'saying the copy did not match its source in full');
  t.notOk(fs.existsSync(path.join(w.rootB, 'video.bin')), 'the damaged copy is not put in place');
  t.same(stagingLeft(w.rootB), [], 'and its part file is discarded');

  const again = await sd(['jobs', 'resume', String(atKill.id)], { library: w.library.dir, timeoutMs: 120_000 });
  t.equal(again.code, 0, `resumed again, it copies the file anew: ${again.stderr}`);
  t.match(again.stdout, /verified \(size \+ content id\) — job/, 'from the start (nothing kept), checked as a fresh copy is');
  t.equal(fullHashOfFile(path.join(w.rootB, 'video.bin')), fullHashOfFile(src), 'the copy in place has the full BLAKE3 of its source');
});

t.test('kill -9 in the middle of many files: the JobManager resumes it at start and nothing is copied twice', async (t) => {
  const w = world(t);
  const files = 24;
  for (let i = 0; i < files; i++) randomFile(path.join(w.rootA, 'album', `track-${String(i).padStart(2, '0')}.flac`), 2 * MiB + i);
  indexLocation(w.library, w.a);
  const child = spawnSd(['cp', '--bwlimit', '12M', '--verify', 'sd://box/a/album', 'sd://box/b/'], { library: w.library.dir });
  const done = exited(child);
  t.ok(await waitFor(() => (newestJob(w.library)?.progress.filesDone ?? 0) >= 6, 30_000, 50), 'a few files are done');
  child.kill('SIGKILL');
  await done;
  const atKill = newestJob(w.library)!;
  t.ok(atKill.progress.filesDone < files, `the job was interrupted at ${atKill.progress.filesDone}/${files} files`);

  const jobs = new JobManager(w.library);
  const started = jobs.resumeInterrupted();
  t.same(started, [atKill.id], 'resumeInterrupted (what the mount calls at start) picks it up');
  const outcome = await jobs.settled(atKill.id)!;
  t.equal(outcome.status, 'completed', 'and completes it');
  t.equal(outcome.progress.verified, files, 'every file verified by full BLAKE3 (in either run)');
  const names = fs.readdirSync(path.join(w.rootB, 'album')).sort();
  t.equal(names.length, files, 'every file once: nothing copied twice, no "(1)" copies');
  for (const name of names) {
    const same = fullHashOfFile(path.join(w.rootB, 'album', name)) === fullHashOfFile(path.join(w.rootA, 'album', name));
    if (!same) t.fail(`${name} differs from its source`);
  }
  t.pass('every copy has the full BLAKE3 of its source');
  const total = Array.from({ length: files }, (_, i) => 2 * MiB + i).reduce((x, y) => x + y, 0);
  t.equal(outcome.progress.copiedBytes, total, 'every byte was copied once: neither the finished files nor the half-copied one started over');
  t.match(new AuditLog(w.library.db).trail(atKill.id).at(-2), { status: 'Running', actor: 'job' }, 'the resumed run is audited as the job runner');
  assertIndexExact(t, w.library, [w.a, w.b]);
});

t.test('pause and cancel from another process; Ctrl-C pauses', async (t) => {
  const w = world(t);
  randomFile(path.join(w.rootA, 'big.bin'), 64 * MiB);
  indexLocation(w.library, w.a);
  const lib = { library: w.library.dir };

  const child = spawnSd(['cp', '--bwlimit', '8M', 'sd://box/a/big.bin', 'sd://box/b/'], lib);
  const done = exited(child);
  if (!(await waitFor(() => newestJob(w.library)?.status === 'running', 30_000, 50))) {
    child.kill('SIGKILL');
    t.fail(`the copy does not run: ${JSON.stringify(newestJob(w.library))} ${(await done).stderr}`);
    return;
  }
  t.pass('the copy runs');
  const id = newestJob(w.library)!.id;
  const paused = await sd(['--json', 'jobs', 'pause', String(id)], lib);
  t.equal(paused.code, 0, `sd jobs pause exits 0 ${paused.stderr}`);
  t.match(JSON.parse(paused.stdout), { status: 'paused' }, 'the job is paused');
  const cp = await done;
  t.equal(cp.code, 1, 'the copying command ends with exit 1');
  t.match(cp.stderr, new RegExp(`job ${id} is paused .*'sd jobs resume ${id}'`), 'saying how to continue');
  t.equal(stagingLeft(w.rootB).length, 1, 'the partial file stays for the resume');

  const cancelled = await sd(['--json', 'jobs', 'cancel', String(id)], lib);
  t.equal(cancelled.code, 0, 'sd jobs cancel exits 0');
  t.match(JSON.parse(cancelled.stdout), { status: 'cancelled' }, 'the job is cancelled');
  t.same(stagingLeft(w.rootB), [], 'its partial file is removed');
  t.notOk(fs.existsSync(path.join(w.rootB, 'big.bin')), 'nothing landed');
  t.same(new AuditLog(w.library.db).trail(id).map((a) => a.status), ['Previewed', 'Committed', 'Running', 'Paused', 'Cancelled'], 'audited');

  const again = spawnSd(['cp', '--bwlimit', '8M', 'sd://box/a/big.bin', 'sd://box/b/'], lib);
  const againDone = exited(again);
  t.ok(await waitFor(() => newestJob(w.library)?.id !== id && newestJob(w.library)?.status === 'running', 20_000, 50), 'a second copy runs');
  const second = newestJob(w.library)!.id;
  const c2 = await sd(['jobs', 'cancel', String(second)], lib);
  t.equal(c2.code, 0, 'cancelling a running job exits 0');
  const r2 = await againDone;
  t.match(r2.stderr, /cancelled/, 'the copying command says it was cancelled');
  t.equal(newestJob(w.library)!.status, 'cancelled', 'and so does the job');

  const third = spawnSd(['cp', '--bwlimit', '8M', 'sd://box/a/big.bin', 'sd://box/b/'], lib);
  const thirdDone = exited(third);
  t.ok(await waitFor(() => newestJob(w.library)?.id !== second && newestJob(w.library)?.status === 'running', 20_000, 50), 'a third copy runs');
  third.kill('SIGINT');
  const r3 = await thirdDone;
  t.equal(r3.code, 1, 'Ctrl-C ends the command with exit 1');
  t.equal(newestJob(w.library)!.status, 'paused', 'having paused the job at a checkpoint');
  const resumed = await sd(['--json', 'jobs', 'resume', String(newestJob(w.library)!.id)], lib);
  t.equal(resumed.code, 0, 'which resumes to the end');
  t.equal(fullHashOfFile(path.join(w.rootB, 'big.bin')), fullHashOfFile(path.join(w.rootA, 'big.bin')), 'with a verified copy');
});

t.test('stop() (the mount shutting down) leaves running jobs queued; resumeInterrupted continues them', async (t) => {
  const w = world(t);
  randomFile(path.join(w.rootA, 'f.bin'), 24 * MiB);
  indexLocation(w.library, w.a);
  const actions = new ActionManager(w.library);
  const id = actions.commit({ kind: 'copy', input: { sources: ['sd://box/a/f.bin'], target: 'sd://box/b/', bwlimit: 8 * MiB } });
  const running = actions.jobs.run(id);
  await waitFor(() => (actions.jobs.get(id).progress.current?.bytes ?? 0) > 0, 10_000, 20);
  await actions.jobs.stop();
  const stopped = await running;
  t.equal(stopped.status, 'queued', 'stopped at a checkpoint, queued again');
  t.same(new AuditLog(w.library.db).trail(id).at(-1)?.details, { reason: 'shutdown', filesDone: 0, bytesDone: 0, atBytes: stopped.progress.current!.bytes }, 'audited as paused for shutdown');
  const jobs = new JobManager(w.library);
  t.same(jobs.resumeInterrupted({ bwlimit: 0 }), [id], 'the next start resumes it');
  const outcome = await jobs.settled(id)!;
  t.equal(outcome.status, 'completed', 'to the end');
  t.ok(outcome.progress.resumedAtBytes > 0, 'from where it stopped');
  t.equal(fullHashOfFile(path.join(w.rootB, 'f.bin')), fullHashOfFile(path.join(w.rootA, 'f.bin')), 'and the copy verifies');
});

t.test('a source that changes while it is copied, or between runs, is copied again whole', async (t) => {
  const w = world(t);
  const src = path.join(w.rootA, 'live.bin');
  randomFile(src, 16 * MiB);
  indexLocation(w.library, w.a);
  const actions = new ActionManager(w.library);
  let id = actions.commit({ kind: 'copy', input: { sources: ['sd://box/a/live.bin'], target: 'sd://box/b/', bwlimit: 16 * MiB } });
  let run = actions.jobs.run(id, { bwlimit: 4 * MiB });
  await waitFor(() => (actions.jobs.get(id).progress.current?.bytes ?? 0) > 0, 10_000, 20);
  const fd = fs.openSync(src, 'r+');
  fs.writeSync(fd, Buffer.from('changed while copying'), 0, 21, 0);
  fs.closeSync(fd);
  let outcome = await run;
  t.equal(outcome.status, 'completed', 'the copy completes');
  t.equal(fullHashOfFile(path.join(w.rootB, 'live.bin')), fullHashOfFile(src), 'with the bytes the source has now');

  fs.rmSync(path.join(w.rootB, 'live.bin'));
  indexLocation(w.library, w.b);
  id = actions.commit({ kind: 'copy', input: { sources: ['sd://box/a/live.bin'], target: 'sd://box/b/' } });
  run = actions.jobs.run(id, { bwlimit: 4 * MiB });
  await waitFor(() => (actions.jobs.get(id).progress.current?.bytes ?? 0) > 0, 10_000, 20);
  await actions.jobs.stop();
  t.equal((await run).status, 'queued', 'stopped halfway');
  const fd2 = fs.openSync(src, 'r+');
  fs.writeSync(fd2, Buffer.from('changed between runs'), 0, 20, 0);
  fs.closeSync(fd2);
  outcome = await actions.jobs.run(id);
  t.equal(outcome.status, 'completed', 'the resumed copy completes');
  t.equal(outcome.progress.resumedAtBytes, 0, 'starting over, since the source changed');
  t.equal(fullHashOfFile(path.join(w.rootB, 'live.bin')), fullHashOfFile(src), 'with the bytes the source has now');
  indexLocation(w.library, w.a);
  assertIndexExact(t, w.library, [w.a, w.b]);
});

t.test('after a reboot, steps finished since the last durable point are checked again and redone when damaged', async (t) => {
  const w = world(t);
  for (let i = 0; i < 4; i++) randomFile(path.join(w.rootA, 'set', `part-${i}.bin`), 2 * MiB);
  indexLocation(w.library, w.a);
  const actions = new ActionManager(w.library);
  const id = actions.commit({ kind: 'copy', input: { sources: ['sd://box/a/set'], target: 'sd://box/b/' } });
  const run = actions.jobs.run(id, { bwlimit: 4 * MiB });
  t.ok(await waitFor(() => actions.jobs.get(id).progress.filesDone >= 2, 20_000, 20), 'two files are done');
  await actions.jobs.stop();
  t.equal((await run).status, 'queued', 'then the process stops');
  // As if the machine lost power: another boot, and a finished copy lost its bytes.
  const job = actions.jobs.get(id);
  w.library.db.prepare('UPDATE jobs SET progress = ? WHERE id = ?').run(JSON.stringify({ ...job.progress, durableSeq: 0, durableBoot: 'an-earlier-boot' }), id);
  fs.truncateSync(path.join(w.rootB, 'set', 'part-0.bin'), 0);
  const outcome = await actions.jobs.run(id);
  t.equal(outcome.status, 'completed', 'the resumed job completes');
  for (let i = 0; i < 4; i++) {
    t.equal(fullHashOfFile(path.join(w.rootB, 'set', `part-${i}.bin`)), fullHashOfFile(path.join(w.rootA, 'set', `part-${i}.bin`)), `part-${i}.bin verifies`);
  }
  t.equal(outcome.progress.filesDone, 4, 'four files, none counted twice');
  assertIndexExact(t, w.library, [w.a, w.b]);
});
