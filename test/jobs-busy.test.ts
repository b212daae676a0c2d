// A job held up by another process that holds the library past the busy timeout (a long
// `sd` command, `sd watch`, a mount) waits for the library and goes on: before, its next
// checkpoint or step record failed the whole job with half its work done. `sd` says on
// stderr that the job waits; Ctrl-C still pauses it meanwhile.
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { config } from '../src/config.js';
import { fullHashOfFile } from '../src/vdfs/content/identity.js';
import type { JobProgress } from '../src/vdfs/jobs/job-store.js';
import { sd, spawnSd } from './cli-process.js';
import { tempDir, waitFor, writeTree } from './helpers.js';
import { writerOf } from './library-writer.js';

const MiB = 1024 * 1024;
/** Past the busy timeout: every write the job tries meanwhile gives up at least once. */
const HOLD_MS = config.dbBusyTimeoutMs + 1500;
const FILES = 8;
const WAITING = /job \d+ waits for the library/;

function query<T>(lib: string, sql: string, ...args: unknown[]): T[] {
  const db = new Database(path.join(lib, 'library.db'), { readonly: true });
  try {
    return db.prepare(sql).all(...args) as T[];
  } finally {
    db.close();
  }
}

function newestJob(lib: string): { id: number; status: string; progress: JobProgress } | undefined {
  const row = query<{ id: number; status: string; progress: string }>(lib, 'SELECT id, status, progress FROM jobs ORDER BY id DESC LIMIT 1')[0];
  return row && { ...row, progress: JSON.parse(row.progress) as JobProgress };
}

function trail(lib: string, jobId: number): string[] {
  return query<{ status: string }>(lib, 'SELECT status FROM audit_log WHERE job_id = ? ORDER BY id', jobId).map((r) => r.status);
}

/** A library with location `a` holding album/ (FILES random files of 2 MiB) and an empty location `b`. */
async function albumLibrary(t: Test): Promise<{ lib: string; a: string; b: string }> {
  const base = tempDir(t, 'sd-jobs-busy-');
  const lib = path.join(base, 'library');
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < FILES; i++) files[`album/track-${i}.flac`] = crypto.randomBytes(2 * MiB + i);
  const a = writeTree(path.join(base, 'a'), files);
  const b = path.join(base, 'b');
  fs.mkdirSync(b);
  for (const args of [['init', '--name', 'box'], ['location', 'add', a, '--name', 'a'], ['location', 'add', b, '--name', 'b']]) {
    const r = await sd(args, { library: lib });
    if (r.code !== 0) throw new Error(`sd ${args.join(' ')} failed: ${r.stderr}`);
  }
  return { lib, a, b };
}

/** Starts `sd ARGS`; killed when the test ends, however it ends. */
function started(t: Test, args: string[], lib: string): { child: ChildProcess; stderr: () => string; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawnSd(args, { library: lib });
  t.teardown(() => void child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin!.end();
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, stderr: () => stderr, done };
}

/** Takes the library's write lock from another process once the job has finished a file; asserts the job is still under way then. */
async function holdMidway(t: Test, lib: string, mode: 'hold' | 'hold-until-stopped') {
  t.ok(await waitFor(() => (newestJob(lib)?.progress.filesDone ?? 0) >= 1, 30_000, 20), 'the job finished a first file');
  const writer = await writerOf(t, lib, mode, HOLD_MS);
  const job = newestJob(lib)!;
  t.ok(job.status === 'running' && job.progress.filesDone < FILES, `another process holds the library while the job is under way (${job.progress.filesDone}/${FILES} files)`);
  return { writer, job };
}

function sameFiles(t: Test, from: string, to: string): void {
  const names = fs.existsSync(to) ? fs.readdirSync(to).sort() : [];
  t.equal(names.length, FILES, `all ${FILES} files are there, none twice`);
  const differ = names.filter((n) => fullHashOfFile(path.join(to, n)) !== fullHashOfFile(path.join(from, n)));
  t.same(differ, [], 'each with the full BLAKE3 of its source');
}

t.test('sd cp of many files waits for another process holding the library past the busy timeout, then completes (the job failed half done)', async (t) => {
  const { lib, a, b } = await albumLibrary(t);
  const cp = started(t, ['cp', '--bwlimit', '4M', 'sd://box/a/album', 'sd://box/b/'], lib);
  const { writer, job } = await holdMidway(t, lib, 'hold');
  const r = await cp.done;
  t.equal(r.code, 0, r.code === 0 ? 'sd cp exits 0' : `sd cp failed: ${r.stderr.trim()}`);
  t.match(r.stdout, new RegExp(`Copied ${FILES} files`), 'and says it copied them all');
  t.equal(r.stderr.split('\n').filter((l) => WAITING.test(l)).length, 1, 'it said once on stderr that the job waits for the library');
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
  sameFiles(t, path.join(a, 'album'), path.join(b, 'album'));
  const after = newestJob(lib)!;
  t.equal(after.id, job.id, 'one job');
  t.match(after, { status: 'completed', progress: { filesDone: FILES, runs: 1, current: null } }, 'completed in one run');
  t.same(query(lib, 'SELECT seq FROM job_items WHERE job_id = ? AND status IS NOT ?', job.id, 'done'), [], 'every step recorded done');
  t.same(trail(lib, job.id), ['Previewed', 'Committed', 'Running', 'Completed'], 'the audit trail: no failure, no second run');
  const indexed = query<{ name: string; content_id: string | null }>(
    lib,
    `SELECT e.name, e.content_id FROM entries e JOIN entries p ON p.id = e.parent_id JOIN locations l ON l.id = e.location_id
     WHERE l.name = 'b' AND p.name = 'album' ORDER BY e.name`,
  );
  t.equal(indexed.length, FILES, 'every copy is indexed');
  t.ok(indexed.every((e) => e.content_id !== null), 'with its content id');
});

t.test('sd guardian scrub waits for another process holding the library past the busy timeout, then completes', async (t) => {
  const base = tempDir(t, 'sd-scrub-busy-');
  const lib = path.join(base, 'library');
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < FILES; i++) files[`photos/p-${i}.raw`] = crypto.randomBytes(2 * MiB + i);
  const root = writeTree(path.join(base, 'data'), files);
  for (const args of [['init', '--name', 'box'], ['location', 'add', root, '--name', 'data']]) t.equal((await sd(args, { library: lib })).code, 0, `sd ${args.join(' ')}`);
  const scrub = started(t, ['guardian', 'scrub', '--rate', '4'], lib);
  const { writer, job } = await holdMidway(t, lib, 'hold');
  const r = await scrub.done;
  t.equal(r.code, 0, r.code === 0 ? 'sd guardian scrub exits 0' : `it failed: ${r.stderr.trim()}`);
  t.match(r.stdout, new RegExp(`Scrubbed ${FILES} files .* ${FILES} verified, 0 corrupt`), 'every file read and verified');
  t.match(r.stderr, WAITING, 'it said on stderr that the job waits for the library');
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
  t.match(newestJob(lib), { id: job.id, status: 'completed', progress: { filesDone: FILES, verified: FILES, runs: 1 } }, 'the job completed in one run');
  t.same(trail(lib, job.id), ['Previewed', 'Committed', 'Running', 'Completed'], 'the audit trail: no failure, no second run');
  t.same(query(lib, 'SELECT count(*) AS n, sum(corrupt) AS corrupt FROM copy_checks'), [{ n: FILES, corrupt: 0 }], 'each file has its check recorded');
});

t.test('Ctrl-C pauses a job waiting for the library; sd jobs resume waits for the library too, then completes it', async (t) => {
  const { lib, a, b } = await albumLibrary(t);
  const cp = started(t, ['cp', '--bwlimit', '4M', 'sd://box/a/album', 'sd://box/b/'], lib);
  const { writer, job } = await holdMidway(t, lib, 'hold-until-stopped');
  const waiting = await waitFor(() => WAITING.test(cp.stderr()), config.dbBusyTimeoutMs + 10_000, 50);
  t.ok(waiting, 'sd cp says the job waits for the library');
  if (!waiting) return;
  const asked = Date.now();
  cp.child.kill('SIGINT');
  const r = await cp.done;
  const took = Date.now() - asked;
  t.ok(took < 3 * config.dbBusyTimeoutMs, `it stops without waiting for the library to be free (${took} ms)`);
  t.equal(r.code, 1, 'exit 1: the job did not complete');
  t.match(r.stderr, new RegExp(`sd jobs resume ${job.id}`), 'the message says how to continue it');
  t.equal(r.stderr.split('\n').filter((l) => WAITING.test(l)).length, 1, 'it said once that the job waits, not again as it stopped');
  const stopped = newestJob(lib)!;
  t.not(stopped.status, 'failed', `the job is not failed (${stopped.status})`);
  t.notOk(trail(lib, job.id).includes('Failed'), 'nor audited as failed');

  // Resumed while the library is still held: it waits to take the job (it said the library was locked).
  const resume = started(t, ['jobs', 'resume', String(job.id)], lib);
  t.ok(await waitFor(() => WAITING.test(resume.stderr()), config.dbBusyTimeoutMs + 10_000, 50), 'sd jobs resume says the job waits for the library');
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
  const resumed = await resume.done;
  t.equal(resumed.code, 0, resumed.code === 0 ? 'once it is free, sd jobs resume completes the job' : `resume failed: ${resumed.stderr.trim()}`);
  sameFiles(t, path.join(a, 'album'), path.join(b, 'album'));
  t.match(newestJob(lib), { status: 'completed', progress: { filesDone: FILES } }, 'completed, every file counted once');
  const statuses = trail(lib, job.id);
  t.notOk(statuses.includes('Failed'), `no failure in the audit trail (${statuses.join(', ')})`);
  t.equal(statuses.at(-1), 'Completed', 'which ends Completed');
});
