// Actions against real folders and a real library: a preview writes nothing; a commit
// becomes a job whose copy is verified and audited Previewed → Committed → Running →
// Completed; --on-conflict modes; rm to the trash and for good; mv in a location, across
// locations and across file systems; mkdir. After every change the index is exactly
// what a fresh index run would make (closure, folder sizes, content ids).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { ActionManager } from '../src/vdfs/actions/action-manager.js';
import type { Action } from '../src/vdfs/actions/types.js';
import { AuditLog } from '../src/vdfs/audit.js';
import { contentHashOfFile, fullHashOfFile } from '../src/vdfs/content/identity.js';
import { EntryStore, type Entry } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import type { Library } from '../src/vdfs/library.js';
import { addLocation, type Location } from '../src/vdfs/locations.js';
import { sd } from './cli-process.js';
import { assertIndexExact, throwsCode } from './actions-helpers.js';
import { tempDir, tempLibrary, writeTree } from './helpers.js';

interface World {
  library: Library;
  actions: ActionManager;
  a: Location;
  b: Location;
  rootA: string;
  rootB: string;
  at(location: Location, rel: string): Entry | undefined;
  sdp(location: Location, rel: string): string;
}

function world(t: Test, filesA: Record<string, string | Buffer>, filesB: Record<string, string | Buffer> = {}): World {
  const library = tempLibrary(t, 'box');
  const store = new EntryStore(library.db);
  const rootA = fs.realpathSync(writeTree(tempDir(t, 'sd-act-a-'), filesA));
  const rootB = fs.realpathSync(writeTree(tempDir(t, 'sd-act-b-'), filesB));
  const a = addLocation(library.db, store, library.device.id, { path: rootA, name: 'a' });
  const b = addLocation(library.db, store, library.device.id, { path: rootB, name: 'b' });
  indexLocation(library, a);
  indexLocation(library, b);
  return {
    library,
    actions: new ActionManager(library),
    a,
    b,
    rootA,
    rootB,
    at: (l, rel) => store.resolve(l.rootEntryId!, rel === '' ? [] : rel.split('/')),
    sdp: (l, rel) => `sd://box/${l.name}/${rel}`,
  };
}

function listTree(root: string): string[] {
  return (fs.readdirSync(root, { recursive: true }) as string[]).sort().map((rel) => {
    const st = fs.lstatSync(path.join(root, rel));
    return `${rel} ${st.isDirectory() ? 'dir' : st.size} ${st.mtimeMs}`;
  });
}

function count(library: Library, table: string): number {
  return library.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
}

const random = (n: number) => crypto.randomBytes(n);

t.test('a preview writes nothing: not the library, not the target folder', async (t) => {
  const w = world(t, { 'docs/a.txt': 'alpha', 'docs/big.bin': random(300_000), 'x.txt': 'x' }, { 'x.txt': 'other x', 'keep.txt': 'alpha' });
  const other = new Database(w.library.dbPath, { readonly: true });
  t.teardown(() => other.close());
  const version = () => other.pragma('data_version', { simple: true });
  const before = { v: version(), tree: listTree(w.rootB), dirMtime: fs.statSync(w.rootB).mtimeMs, audit: count(w.library, 'audit_log'), jobs: count(w.library, 'jobs') };

  const copy: Action = { kind: 'copy', input: { sources: [w.sdp(w.a, 'docs'), w.sdp(w.a, 'x.txt')], target: w.sdp(w.b, '') } };
  const p = w.actions.preview(copy);
  t.equal(p.files, 3, 'three files');
  t.equal(p.dirs, 1, 'one folder');
  t.equal(p.bytes, 5 + 300_000 + 1, 'their bytes');
  t.ok(p.freeBytes !== null && p.freeBytes > 0 && p.fits, 'free space on the target, and it fits');
  t.equal(p.conflictCount, 1, 'x.txt is a conflict');
  t.match(p.conflicts[0], { path: path.join(w.rootB, 'x.txt'), identical: false, resolution: 'abort' });
  t.equal(p.dedup.files, 1, 'the target location holds docs/a.txt already (as keep.txt)');
  t.same(p.permissionProblems, [], 'no permission problems');
  t.ok(p.estimatedSeconds >= 0 && p.throughputBytesPerSec > 0, 'an estimated time');
  t.notOk(p.ok, 'it would not start under --on-conflict abort');
  t.match(p.problems[0], { code: 'EXISTS' });

  w.actions.preview({ kind: 'move', input: { sources: [w.sdp(w.a, 'docs')], target: w.sdp(w.b, '') } });
  w.actions.preview({ kind: 'delete', input: { targets: [w.sdp(w.b, 'x.txt')] } });
  w.actions.preview({ kind: 'mkdir', input: { target: w.sdp(w.b, 'new/deeper'), parents: true } });

  const cli = await sd(['--json', 'cp', '--preview', w.sdp(w.a, 'docs'), w.sdp(w.b, '')], { library: w.library.dir });
  t.equal(cli.code, 0, 'sd cp --preview exits 0');
  t.match(JSON.parse(cli.stdout), { preview: { action: 'copy', files: 2, ok: true } }, 'and prints the preview as JSON');

  t.equal(version(), before.v, 'the database did not change (data_version)');
  t.same(listTree(w.rootB), before.tree, 'the target folder did not change');
  t.equal(fs.statSync(w.rootB).mtimeMs, before.dirMtime, 'not even its time');
  t.equal(count(w.library, 'audit_log'), before.audit, 'no audit row');
  t.equal(count(w.library, 'jobs'), before.jobs, 'no job');
});

t.test('commit makes a job; the copy is verified, indexed at once and audited Previewed → Committed → Running → Completed', async (t) => {
  const big = random(20 * 1024 * 1024 + 123);
  const w = world(t, { 'photos/2024/big.bin': big, 'photos/2024/small.txt': 'small', 'photos/empty': '', 'photos/2025/c.txt': 'c' });
  fs.symlinkSync('2024/small.txt', path.join(w.rootA, 'photos/link'));
  indexLocation(w.library, w.a);
  const id = w.actions.commit({ kind: 'copy', input: { sources: [w.sdp(w.a, 'photos')], target: w.sdp(w.b, ''), verify: true } }, 'cli');
  t.equal(w.actions.jobs.get(id).status, 'queued', 'commit leaves a queued job (the journal)');
  t.same(new AuditLog(w.library.db).trail(id).map((r) => r.status), ['Previewed', 'Committed'], 'audited Previewed and Committed');
  t.notOk(fs.existsSync(path.join(w.rootB, 'photos')), 'nothing copied yet');

  const outcome = await w.actions.jobs.run(id);
  t.equal(outcome.status, 'completed', 'the job completes');
  t.equal(outcome.progress.verified, 4, 'four files verified by full BLAKE3');
  t.ok(fs.readFileSync(path.join(w.rootB, 'photos/2024/big.bin')).equals(big), 'the big file is byte-identical');
  t.equal(fs.readlinkSync(path.join(w.rootB, 'photos/link')), '2024/small.txt', 'the link is a link');
  const mtimes = ['rootB', 'rootA'].map((r) => fs.statSync(path.join(r === 'rootA' ? w.rootA : w.rootB, 'photos/2024/big.bin')).mtimeMs);
  t.ok(Math.abs(mtimes[0]! - mtimes[1]!) < 0.01, `the modification time is kept (${mtimes.join(' vs ')})`);
  const copied = w.at(w.b, 'photos/2024/big.bin');
  t.equal(copied?.contentId, w.at(w.a, 'photos/2024/big.bin')?.contentId, 'the copy is indexed at once with the content id of its source');
  t.equal(copied?.contentId, contentHashOfFile(path.join(w.rootB, 'photos/2024/big.bin'))?.contentId, 'which is its own content id');
  const trail = new AuditLog(w.library.db).trail(id);
  t.same(trail.map((r) => r.status), ['Previewed', 'Committed', 'Running', 'Completed'], 'audited to Completed');
  t.match(trail[3], { actor: 'cli', action: 'copy', target: 'sd://box/b', details: { files: 5, verified: /full BLAKE3/ } }, 'who, what, and how');
  t.notOk(fs.existsSync(path.join(w.rootB, '.sd-staging')), 'no staging folder left behind');
  assertIndexExact(t, w.library, [w.a, w.b]);
});

t.test('--on-conflict abort, skip, rename, overwrite; an identical file is skipped in every mode', async (t) => {
  const w = world(t, { 'x.txt': 'new x', 'same.txt': 'same' }, { 'x.txt': 'old x!', 'same.txt': 'same' });
  const copy = (onConflict: 'abort' | 'skip' | 'rename' | 'overwrite', src = 'x.txt') =>
    ({ kind: 'copy', input: { sources: [w.sdp(w.a, src)], target: w.sdp(w.b, ''), onConflict } }) satisfies Action;

  throwsCode(t, () => w.actions.commit(copy('abort')), 'EXISTS', /exists already/, 'abort: commit refuses');
  t.equal(count(w.library, 'jobs'), 0, 'and makes no job');

  let o = await w.actions.execute(copy('skip'));
  t.match(o, { status: 'completed', progress: { skipped: 1 } }, 'skip: completes, skipping it');
  t.equal(fs.readFileSync(path.join(w.rootB, 'x.txt'), 'utf8'), 'old x!', 'the target is untouched');

  o = await w.actions.execute(copy('rename'));
  t.match(o, { status: 'completed', progress: { renamed: 1 } }, 'rename: completes');
  t.equal(fs.readFileSync(path.join(w.rootB, 'x (1).txt'), 'utf8'), 'new x', 'as "x (1).txt"');
  o = await w.actions.execute(copy('rename'));
  t.equal(fs.readFileSync(path.join(w.rootB, 'x (1).txt'), 'utf8'), 'new x', 'a second rename copy finds "x (1).txt" identical');
  t.equal(o.progress.identical, 1, 'and skips it');

  o = await w.actions.execute(copy('overwrite'));
  t.equal(o.status, 'completed', 'overwrite: completes');
  t.equal(fs.readFileSync(path.join(w.rootB, 'x.txt'), 'utf8'), 'new x', 'the target is replaced');
  t.equal(w.at(w.b, 'x.txt')?.size, 5, 'and indexed');

  for (const mode of ['abort', 'skip', 'rename', 'overwrite'] as const) {
    o = await w.actions.execute(copy(mode, 'same.txt'));
    t.match(o, { status: 'completed', progress: { identical: 1, renamed: 0 } }, `${mode}: same content is skipped as identical`);
  }
  t.same(fs.readdirSync(w.rootB).sort(), ['same.txt', 'x (1).txt', 'x.txt'], 'no extra files');
  assertIndexExact(t, w.library, [w.a, w.b]);
});

// Sole copies all: forced past the last-copy guard (test/last-copy.test.ts pins the guard).
t.test('rm moves to the location trash; --permanent deletes; roots and paths outside locations are refused', async (t) => {
  const w = world(t, { 'docs/a.txt': 'alpha', 'docs/sub/b.txt': 'beta', 'c.txt': 'gamma', 'gone.txt': 'bye' });
  const o = await w.actions.execute({ kind: 'delete', input: { targets: [w.sdp(w.a, 'docs/sub'), path.join(w.rootA, 'c.txt')], force: true } });
  t.equal(o.status, 'completed', 'the delete job completes');
  t.notOk(fs.existsSync(path.join(w.rootA, 'docs/sub')), 'the folder left its place');
  const stamps = fs.readdirSync(path.join(w.rootA, '.sd-trash'));
  t.equal(stamps.length, 1, 'one trash folder for the job');
  t.equal(fs.readFileSync(path.join(w.rootA, '.sd-trash', stamps[0]!, 'docs/sub/b.txt'), 'utf8'), 'beta', 'it is in the trash under its path');
  t.equal(fs.readFileSync(path.join(w.rootA, '.sd-trash', stamps[0]!, 'c.txt'), 'utf8'), 'gamma', 'and so is the file');
  t.equal(w.at(w.a, 'docs/sub'), undefined, 'the index forgot them at once');
  t.equal(w.at(w.a, '.sd-trash'), undefined, 'the trash is not indexed');

  const p = await w.actions.execute({ kind: 'delete', input: { targets: [w.sdp(w.a, 'gone.txt')], permanent: true, force: true } });
  t.equal(p.status, 'completed', '--permanent completes');
  t.notOk(fs.existsSync(path.join(w.rootA, 'gone.txt')), 'the file is gone');
  t.equal(stamps.length, fs.readdirSync(path.join(w.rootA, '.sd-trash')).length, 'and not in the trash');

  t.throws(() => w.actions.commit({ kind: 'delete', input: { targets: [w.sdp(w.a, '')] } }), /root of location/, 'a location root is refused');
  const outside = writeTree(tempDir(t), { 'o.txt': 'o' });
  t.throws(() => w.actions.commit({ kind: 'delete', input: { targets: [path.join(outside, 'o.txt')] } }), /--permanent/, 'outside a location: only --permanent');
  assertIndexExact(t, w.library, [w.a, w.b]);
});

t.test('mv within a location keeps the entry; across locations it changes location; mkdir -p', async (t) => {
  const w = world(t, { 'inbox/report.pdf': 'r'.repeat(100), 'inbox/project/notes.md': 'notes', 'inbox/project/src/main.c': 'int main;' });
  const report = w.at(w.a, 'inbox/report.pdf')!;
  let o = await w.actions.execute({ kind: 'mkdir', input: { target: w.sdp(w.a, 'archive/2025'), parents: true } });
  t.equal(o.status, 'completed', 'mkdir -p completes');
  t.ok(w.at(w.a, 'archive/2025'), 'the folders are indexed');
  t.throws(() => w.actions.commit({ kind: 'mkdir', input: { target: w.sdp(w.a, 'archive/2025') } }), /exists already/, 'mkdir of an existing folder is refused without -p');
  t.throws(() => w.actions.commit({ kind: 'mkdir', input: { target: w.sdp(w.a, 'no/such/parent') } }), /-p/, 'and of a missing parent');

  o = await w.actions.execute({ kind: 'move', input: { sources: [w.sdp(w.a, 'inbox/report.pdf')], target: w.sdp(w.a, 'archive/2025') } });
  t.equal(o.status, 'completed', 'the move completes');
  t.equal(o.progress.copiedBytes, 0, 'as a rename: no bytes copied');
  const moved = w.at(w.a, 'archive/2025/report.pdf');
  t.equal(moved?.id, report.id, 'the same entry moved');
  t.equal(moved?.contentId, report.contentId, 'with its content id');
  assertIndexExact(t, w.library, [w.a, w.b], ' (after a move in a location)');

  const project = w.at(w.a, 'inbox/project')!;
  o = await w.actions.execute({ kind: 'move', input: { sources: [w.sdp(w.a, 'inbox/project')], target: w.sdp(w.b, 'work') } });
  t.equal(o.status, 'completed', 'a folder moves to another location');
  t.notOk(fs.existsSync(path.join(w.rootA, 'inbox/project')), 'it left its place');
  t.equal(fs.readFileSync(path.join(w.rootB, 'work/src/main.c'), 'utf8'), 'int main;', 'under its new name');
  t.equal(w.at(w.a, 'inbox/project'), undefined, 'location a forgot it');
  t.equal(w.at(w.b, 'work/src/main.c')?.locationId, w.b.id, 'location b has it');
  t.equal(w.at(w.b, 'work')?.aggregateSize, 14, 'with its size');
  t.not(project.id, w.at(w.b, 'work')?.id, 'as a new entry of that location');
  assertIndexExact(t, w.library, [w.a, w.b], ' (after a move across locations)');
});

t.test('mv across file systems copies, verifies and deletes the source; a folder merges', async (t) => {
  if (!fs.existsSync('/dev/shm') || fs.statSync('/dev/shm').dev === fs.statSync(os.tmpdir()).dev) {
    t.comment('skipped: needs /dev/shm on another file system than the temp folder');
    return;
  }
  const library = tempLibrary(t, 'box');
  const store = new EntryStore(library.db);
  const shm = fs.mkdtempSync('/dev/shm/sd-act-');
  t.teardown(() => fs.rmSync(shm, { recursive: true, force: true }));
  const data = random(3 * 1024 * 1024);
  writeTree(shm, { 'music/a.flac': data, 'music/b/c.txt': 'c', 'music/link-target': 'l' });
  fs.symlinkSync('link-target', path.join(shm, 'music/ln'));
  const disk = fs.realpathSync(writeTree(tempDir(t), { 'music/old.txt': 'old' }));
  const fast = addLocation(library.db, store, library.device.id, { path: shm, name: 'fast' });
  const slow = addLocation(library.db, store, library.device.id, { path: disk, name: 'slow' });
  indexLocation(library, fast);
  indexLocation(library, slow);
  const actions = new ActionManager(library);
  const p = actions.preview({ kind: 'move', input: { sources: ['sd://box/fast/music'], target: 'sd://box/slow/' } });
  t.equal(p.sameFileSystem, false, 'the preview says: another file system');
  t.equal(p.bytesToCopy, data.length + 2, 'bytes to copy');
  const o = await actions.execute({ kind: 'move', input: { sources: ['sd://box/fast/music'], target: 'sd://box/slow/' } });
  t.equal(o.status, 'completed', 'the move completes');
  t.notOk(fs.existsSync(path.join(shm, 'music')), 'the source folder is gone');
  t.ok(fs.readFileSync(path.join(disk, 'music/a.flac')).equals(data), 'the file arrived whole');
  t.equal(fs.readlinkSync(path.join(disk, 'music/ln')), 'link-target', 'the link too');
  t.equal(fs.readFileSync(path.join(disk, 'music/old.txt'), 'utf8'), 'old', 'into the existing folder (merged)');
  t.equal(fullHashOfFile(path.join(disk, 'music/a.flac')), new Blake3Hasher().update(data).digest('hex'), 'its full BLAKE3 is that of the source bytes');
  t.equal(store.resolve(slow.rootEntryId!, ['music', 'a.flac'])?.contentId, contentHashOfFile(path.join(disk, 'music/a.flac'))?.contentId, 'indexed with its content id');
  t.equal(store.resolve(fast.rootEntryId!, ['music']), undefined, 'the old location forgot it');
  assertIndexExact(t, library, [fast, slow]);
});

t.test('the CLI: cp, mv, rm, mkdir, jobs with --json and exit codes', async (t) => {
  const w = world(t, { 'a.txt': 'alpha', 'dir/b.txt': 'beta' });
  const lib = { library: w.library.dir };
  let r = await sd(['--json', 'cp', w.sdp(w.a, 'a.txt'), path.join(w.rootB, 'copy.txt')], lib);
  t.equal(r.code, 0, `sd cp exits 0 ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { job: number; status: string };
  t.match(out, { status: 'completed' }, 'and says the job completed');
  t.equal(fs.readFileSync(path.join(w.rootB, 'copy.txt'), 'utf8'), 'alpha', 'the copy is there');

  r = await sd(['cp', w.sdp(w.a, 'a.txt'), path.join(w.rootB, 'copy.txt')], lib);
  t.equal(r.code, 0, 'copying identical content again is fine');
  fs.writeFileSync(path.join(w.rootA, 'a.txt'), 'changed');
  indexLocation(w.library, w.a);
  r = await sd(['cp', w.sdp(w.a, 'a.txt'), path.join(w.rootB, 'copy.txt')], lib);
  t.equal(r.code, 1, 'a conflict under the default abort exits 1');
  t.match(r.stderr, /^sd: copy not started: .*copy\.txt exists already; choose --on-conflict overwrite\|rename\|skip\n$/, 'with one line saying what to do');
  r = await sd(['cp', '--on-conflict', 'sideways', 'x', 'y'], lib);
  t.equal(r.code, 2, 'a bad --on-conflict is a usage error');
  r = await sd(['cp', w.sdp(w.a, 'nope.txt'), w.sdp(w.b, '')], lib);
  t.equal(r.code, 1, 'a missing source exits 1');
  t.match(r.stderr, /does not exist/, 'saying so');

  r = await sd(['mkdir', '-p', w.sdp(w.b, 'x/y')], lib);
  t.equal(r.code, 0, 'sd mkdir -p exits 0');
  t.ok(fs.statSync(path.join(w.rootB, 'x/y')).isDirectory(), 'and makes the folders');
  r = await sd(['mv', w.sdp(w.a, 'dir'), w.sdp(w.b, 'x/y')], lib);
  t.equal(r.code, 0, 'sd mv exits 0');
  t.ok(fs.existsSync(path.join(w.rootB, 'x/y/dir/b.txt')), 'and moves');
  r = await sd(['rm', '--force', w.sdp(w.b, 'x')], lib);
  t.equal(r.code, 0, 'sd rm exits 0');
  t.notOk(fs.existsSync(path.join(w.rootB, 'x')), 'and removes');

  const jobs = JSON.parse((await sd(['--json', 'jobs'], lib)).stdout) as Array<{ id: number; status: string; kind: string }>;
  t.same(jobs.map((j) => `${j.kind} ${j.status}`), ['delete completed', 'move completed', 'mkdir completed', 'copy completed', 'copy completed'], 'sd jobs lists them, newest first');
  const shown = JSON.parse((await sd(['--json', 'jobs', 'show', String(jobs[1]!.id)], lib)).stdout) as { audit: Array<{ status: string; actor: string }> };
  t.same(shown.audit.map((a) => `${a.status} ${a.actor}`), ['Previewed cli', 'Committed cli', 'Running cli', 'Completed cli'], 'sd jobs show prints the audit trail');
  r = await sd(['jobs', 'resume', String(jobs[1]!.id)], lib);
  t.equal(r.code, 1, 'resuming a completed job exits 1');
  t.match(r.stderr, /completed already/, 'saying why');
  w.library.db.pragma('wal_checkpoint');
  assertIndexExact(t, w.library, [w.a, w.b]);
});
