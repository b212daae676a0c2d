// The Data Guardian's speed, in two parts. scrub: `sd guardian scrub` (the real CLI, a
// journaled job) over a set of files against `b3sum --num-threads 1` hashing the same files
// in the same run, page cache warm for both; then `sd guardian status` and `at-risk` over
// that library. scale: a library of --entries files over three devices (this one and two
// paired peers' mirrors), written row by row as the indexer and the mirror would leave it;
// the copy summary built from nothing over it; `sd guardian status` and `at-risk` (wall time
// and peak RSS of the CLI); and how soon a peer's change, applied as a block of its log,
// shows in a content's copy count and what a status costs right after it.
// Run: node build/scripts/bench/guardian.js [--json] [--only scrub|scale] [--files 200] [--mib 2048] [--entries 1000000] [--library DIR] [--keep]
// (--library DIR: the scale part reuses a library it built before with --keep, or builds one there.)
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Hypercore from 'hypercore';
import { CopySummary } from '../../src/guardian/copy-summary.js';
import { Guardian } from '../../src/guardian/guardian.js';
import { GuardianSettings } from '../../src/guardian/settings.js';
import { encodeLogBlock, type LogOp } from '../../src/replication/log-messages.js';
import { Mirror } from '../../src/replication/mirror.js';
import { addPeerDevice, type Device } from '../../src/vdfs/device.js';
import { EntryStore } from '../../src/vdfs/entries.js';
import { DATABASE_FILE, initLibrary, openLibrary } from '../../src/vdfs/library.js';
import { addLocation, setLocationRoot, upsertMirroredLocation } from '../../src/vdfs/locations.js';
import { TagStore } from '../../src/vdfs/tags.js';
import {
  Report, bestOf, commandExists, formatCount, formatNumber, gib, hasGnuTime, makeTempDir, mb, numberArg, parseArgs, seededRandom, timeCommand, timeCommandWithPeakRss, writeRandomFile,
} from './common.js';

const AIM_SCRUB_VS_B3SUM = 0.8;
const AIM_QUERY_SECONDS = 1;
const AIM_QUERY_PEAK_MB = 300;
const AIM_COPY_COUNT_SECONDS = 1;
const MiB = 1024 * 1024;
const SD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'sd.cjs');

const args = parseArgs(undefined, ['only', 'library']);
const only = args.words.get('only');
if (only !== undefined && only !== 'scrub' && only !== 'scale') {
  process.stderr.write(`--only takes scrub or scale (got '${only}')\n`);
  process.exit(2);
}
const report = new Report('guardian', args.json);
const tmp = makeTempDir('sdfs-bench-guardian-', args.keep);
const sdIn = (library: string) => (...a: string[]) => timeCommand(process.execPath, [SD, '--library', library, ...a], { captureStdout: true });

// ---------------------------------------------------------------- scrub, and status at a few files

async function scrubPart(): Promise<void> {
  const fileCount = numberArg(args, 'files', 200);
  const totalBytes = numberArg(args, 'mib', 2048) * MiB;
  const data = path.join(tmp, 'data');
  const sd = sdIn(path.join(tmp, 'library'));

  report.progress(`writing ${fileCount} files (${gib(totalBytes)}) under ${data}`);
  const pool = crypto.randomBytes(64 * MiB);
  const random = seededRandom(11);
  const files: string[] = [];
  for (let i = 0; i < fileCount; i++) {
    const file = path.join(data, `d${i % 10}`, `f${i}.bin`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeRandomFile(file, Math.floor(totalBytes / fileCount), pool, random);
    files.push(file);
  }
  for (const a of [['init', '--name', 'bench'], ['location', 'add', data, '--name', 'data']]) await sd(...a);

  report.progress('sd guardian scrub, warm cache');
  await sd('guardian', 'scrub'); // warms the page cache and records the first checks
  // The whole command (start-up, plan, job, checks), and the job alone (its own clock: what a
  // scheduled scrub in the running mount costs), best of 3 each.
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const r = await sd('--json', 'guardian', 'scrub');
    runs.push({ seconds: r.seconds, job: (JSON.parse(r.stdout) as { seconds: number }).seconds });
  }
  const scrub = Math.min(...runs.map((r) => r.seconds));
  const job = Math.min(...runs.map((r) => r.job));
  report.figure({ name: 'scrub', value: mb(totalBytes) / scrub, unit: 'MB/s', note: `${fileCount} files, ${gib(totalBytes)} in ${scrub.toFixed(2)} s (the whole CLI: start, plan, job, checks), best of 3` });
  report.figure({ name: 'scrub job', value: mb(totalBytes) / job, unit: 'MB/s', note: `the job alone (its own clock): ${job.toFixed(2)} s, best of 3` });
  if (await commandExists('b3sum')) {
    const rel = files.map((f) => path.relative(data, f));
    const ref = await bestOf(3, () => timeCommand('b3sum', ['--num-threads', '1', ...rel], { cwd: data }));
    const against = `b3sum --num-threads 1 over the same files: ${ref.seconds.toFixed(2)} s, ${formatNumber(mb(totalBytes) / ref.seconds)} MB/s`;
    report.figure({ name: 'scrub vs b3sum', value: ref.seconds / scrub, unit: '× b3sum speed', note: `the whole command; ${against}`, aim: { op: '>=', value: AIM_SCRUB_VS_B3SUM } });
    report.figure({ name: 'scrub job vs b3sum', value: ref.seconds / job, unit: '× b3sum speed', note: `the job alone; ${against}`, aim: { op: '>=', value: AIM_SCRUB_VS_B3SUM } });
  } else {
    report.note('b3sum is not installed (apt-get install b3sum): the reference is skipped');
  }

  for (const what of ['status', 'at-risk'] as const) {
    const r = await bestOf(3, () => sd('--json', 'guardian', what));
    report.figure({ name: `guardian ${what}`, value: r.seconds, unit: 's', note: `${fileCount} files, one device, the whole command (start-up included), best of 3`, aim: { op: '<=', value: AIM_QUERY_SECONDS } });
  }
}

// ---------------------------------------------------------------- status, at-risk and copy counts at 1,000,000 files

/** The library's devices: this one first; the phone's copies do not count (untrusted). */
const DEVICES = [
  { name: 'alpha', location: 'photos', verified: 0.8 },
  { name: 'beta', location: 'backup', verified: 0.6 },
  { name: 'gamma', location: 'camera', verified: 0.3 },
] as const;
/** Which devices hold a content (bit i: DEVICES[i]) and how often: one, two or three of them. */
const HOLDERS: ReadonlyArray<readonly [mask: number, weight: number]> = [[0b001, 0.3], [0b010, 0.08], [0b100, 0.07], [0b011, 0.25], [0b101, 0.1], [0b110, 0.05], [0b111, 0.15]];
/** A device holding a content has a second file of it this often (a duplicate). */
const DUPLICATES = 0.03;
/** Of the files with no current check, this many have a stale one, and this many a corrupt one. */
const STALE_CHECKS = 0.02;
const CORRUPT_CHECKS = 0.001;
const FILES_PER_FOLDER = 100;
/** Folders under each location root ('2015' …), each holding folders of FILES_PER_FOLDER files. */
const YEARS = 12;
const TAG_POLICY = 'important';
const TAG_EVERY = 250;

interface ScaleLibrary {
  dir: string;
  files: number;
  folders: number;
  contents: number;
  filesByDevice: number[];
}

async function scalePart(): Promise<void> {
  const wanted = numberArg(args, 'entries', 1_000_000);
  const dir = args.words.get('library') ?? path.join(tmp, 'scale-library');
  let lib: ScaleLibrary;
  if (fs.existsSync(path.join(dir, DATABASE_FILE))) {
    lib = describeLibrary(dir);
    report.note(`reusing the library at ${dir}`);
  } else {
    report.progress(`building a library of ${formatCount(wanted)} files over ${DEVICES.length} devices in ${dir}`);
    const started = performance.now();
    lib = buildLibrary(dir, wanted);
    report.note(`library built in ${((performance.now() - started) / 1000).toFixed(1)} s, ${formatNumber(mb(fs.statSync(path.join(dir, DATABASE_FILE)).size))} MB`);
  }
  report.note(
    `scale library: ${formatCount(lib.files)} files (${lib.filesByDevice.map((n, i) => `${DEVICES[i]!.name} ${formatCount(n)}`).join(', ')}) in ${formatCount(lib.folders)} folders, ` +
      `${formatCount(lib.contents)} contents on 1 to 3 devices; policies: library 2, a folder 3, tag:${TAG_POLICY} 3, a peer's folder 1; ${DEVICES[2].name} untrusted; names not in the search index (the guardian does not read it)`,
  );

  summaryFigure(dir, lib);
  const gnuTime = await hasGnuTime();
  if (!gnuTime) report.note(`GNU time is not installed (apt-get install time): no peak RSS figures`);
  for (const what of ['status', 'at-risk'] as const) {
    report.progress(`sd --json guardian ${what} at ${formatCount(lib.files)} files`);
    let peak = 0;
    const r = await bestOf(3, async () => {
      const run = await timeCommandWithPeakRss(process.execPath, [SD, '--library', dir, '--json', 'guardian', what], { captureStdout: true });
      peak = Math.max(peak, run.peakRssBytes ?? 0);
      return run;
    });
    const note = `${formatCount(lib.files)} files over ${DEVICES.length} devices, the whole command (start-up included)`;
    report.figure({ name: `guardian ${what} ${scaleLabel(lib.files)}`, value: r.seconds, unit: 's', note: `${note}, best of 3; ${summaryOf(what, r.stdout)}`, aim: { op: '<=', value: AIM_QUERY_SECONDS } });
    if (gnuTime) report.figure({ name: `guardian ${what} ${scaleLabel(lib.files)} peak`, value: mb(peak), unit: 'MB', note: `${note}: peak RSS (GNU time %M), highest of 3`, aim: { op: '<=', value: AIM_QUERY_PEAK_MB } });
  }
  copyCountFigures(dir, lib);
}

/**
 * The copy summary built from nothing: what the first query after the upgrade to it (or
 * after a bulk change such as a new location's first index) does, in chunks as the running
 * mount does it. Every content is marked dirty first, as the migration does.
 */
function summaryFigure(dir: string, lib: ScaleLibrary): void {
  const library = openLibrary(dir);
  try {
    const db = library.db;
    db.exec(`DELETE FROM guardian_location_copies; DELETE FROM guardian_contents; DELETE FROM guardian_signatures; DELETE FROM guardian_location_signatures;
             INSERT OR IGNORE INTO guardian_dirty SELECT content_id FROM entries WHERE kind = 'file' AND content_id IS NOT NULL`);
    const summary = new CopySummary(db);
    const contents = summary.pending();
    report.progress(`copy summary of ${formatCount(contents)} contents from nothing`);
    const started = performance.now();
    summary.flushInChunks(20_000);
    const seconds = (performance.now() - started) / 1000;
    report.figure({ name: `copy summary from nothing ${scaleLabel(lib.files)}`, value: seconds, unit: 's', note: `${formatCount(contents)} contents in chunks of 20,000 (${((seconds / contents) * 1e6).toFixed(0)} µs a content): once after the upgrade, or after a bulk change` });
  } finally {
    library.close();
  }
}

/** 1M, 20k: a figure's name says the size it was measured at. */
function scaleLabel(files: number): string {
  return files >= 1e6 ? `${Math.round(files / 1e5) / 10}M` : `${Math.round(files / 1e3)}k`;
}

/** One line on what a command answered, to read beside its time. */
function summaryOf(what: 'status' | 'at-risk', stdout: string): string {
  if (what === 'at-risk') {
    const r = JSON.parse(stdout) as { total: number; items: unknown[] };
    return `${formatCount(r.total)} contents at risk, ${r.items.length} listed`;
  }
  const s = JSON.parse(stdout) as { byCopies: Array<{ copies: number; files: number }>; atRisk: { files: number } };
  return `files by counting copies ${s.byCopies.map((b) => `${b.copies}: ${formatCount(b.files)}`).join(', ')}; ${formatCount(s.atRisk.files)} at risk`;
}

/**
 * How soon a copy count follows a peer's change: the peer's log block adding a verified
 * copy of a content held only here is applied by the mirror (Mirror.applyBatch, as the
 * running mount does), then Guardian.count answers (user.sd.copies); then the block
 * removing that copy, likewise. One content's count is read from its files, so this is the
 * apply and one count.
 */
function copyCountFigures(dir: string, lib: ScaleLibrary): void {
  const library = openLibrary(dir);
  try {
    const db = library.db;
    const guardian = new Guardian(db, library.device.id);
    const peer = db.prepare('SELECT id FROM devices WHERE slug = ?').pluck().get(DEVICES[1].name) as string;
    // The mirror reads no log here: it is given the blocks; the core is never touched.
    const mirror = new Mirror(db, peer, {} as unknown as Hypercore);
    const folder = db.prepare("SELECT remote_id AS remoteId, location_id AS locationId FROM entries WHERE device_id = ? AND kind = 'dir' AND parent_id IS NOT NULL ORDER BY id DESC LIMIT 1").get(peer) as { remoteId: number; locationId: number };
    const remoteLocation = db.prepare('SELECT remote_id FROM locations WHERE id = ?').pluck().get(folder.locationId) as number;
    let remoteId = (db.prepare('SELECT max(remote_id) FROM entries WHERE device_id = ?').pluck().get(peer) as number) + 1;
    // Contents held only here, with one counting copy: a copy on the peer makes two.
    const samples = (db
      .prepare(`SELECT ci.id, ci.size, ci.full_hash AS fullHash FROM content_identities ci
                WHERE ci.full_hash IS NOT NULL AND ci.id IN (SELECT content_id FROM entries WHERE device_id = ? AND kind = 'file' LIMIT 400)`)
      .all(library.device.id) as Array<{ id: string; size: number; fullHash: string }>)
      .filter((c) => {
        const n = guardian.count(c.id);
        return n.devices === 1 && n.counting === 1;
      })
      .slice(0, 5);
    if (samples.length === 0) throw new Error('no content held only on this device with one counting copy: the library is not one this bench built');
    const apply = (ops: LogOp[]) => mirror.applyBatch(mirror.applied, [encodeLogBlock({ lastSeq: 0, ops })]);
    const latencies: number[] = [];
    for (const c of samples) {
      const id = remoteId++;
      const mtime = Date.now();
      const changes: Array<{ ops: LogOp[]; counting: number }> = [
        { ops: [{ op: 'entry', id, locationId: remoteLocation, parentId: folder.remoteId, name: `copy-${c.id}.jpg`, kind: 'file', size: c.size, mtime, mode: 0o100644, contentId: c.id }, { op: 'check', id, fullHash: c.fullHash, size: c.size, mtime, corrupt: false }], counting: 2 },
        { ops: [{ op: 'tombstone', id }], counting: 1 },
      ];
      for (const change of changes) {
        const started = performance.now();
        apply(change.ops);
        const counting = guardian.count(c.id).counting;
        latencies.push((performance.now() - started) / 1000);
        if (counting !== change.counting) throw new Error(`content ${c.id}: ${counting} counting copies after the peer's change, not ${change.counting}`);
      }
    }
    // What a status costs right after a peer's change: the few contents it touched are brought up to date first.
    apply([{ op: 'entry', id: remoteId, locationId: remoteLocation, parentId: folder.remoteId, name: `status-${remoteId}.jpg`, kind: 'file', size: samples[0]!.size, mtime: Date.now(), mode: 0o100644, contentId: samples[0]!.id }]);
    const statusStarted = performance.now();
    guardian.status();
    const statusAfter = (performance.now() - statusStarted) / 1000;
    apply([{ op: 'tombstone', id: remoteId++ }]);
    report.figure({ name: `status after a change ${scaleLabel(lib.files)}`, value: statusAfter, unit: 's', note: `Guardian.status in process right after a peer's log block added a copy (the summary brought up to date for it first)` });
    const count = bestOfSync(5, () => guardian.count(samples[0]!.id));
    const entry = new EntryStore(db).withContent(samples[0]!.id)[0]!;
    const state = bestOfSync(5, () => guardian.fileState(entry));
    report.figure({
      name: 'copy count after change',
      value: Math.max(...latencies),
      unit: 's',
      note: `${formatCount(lib.files)} files: a peer's log block (add or remove a verified copy) applied by the mirror, then Guardian.count; worst of ${latencies.length}. count alone ${(count * 1000).toFixed(1)} ms, fileState (user.sd.copies of a file) ${(state * 1000).toFixed(1)} ms`,
      aim: { op: '<=', value: AIM_COPY_COUNT_SECONDS },
    });
    const files = bestOfSync(3, () => guardian.atRiskFiles(1000));
    report.figure({ name: `atRiskFiles(1000) ${scaleLabel(lib.files)}`, value: files, unit: 's', note: `what /sd/.guardian/at-risk lists (in process, library open), best of 3` });
  } finally {
    library.close();
  }
}

function bestOfSync(runs: number, fn: () => unknown): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    fn();
    best = Math.min(best, (performance.now() - started) / 1000);
  }
  return best;
}

/** The counts of a library built before (--library DIR). */
function describeLibrary(dir: string): ScaleLibrary {
  const library = openLibrary(dir);
  try {
    const db = library.db;
    const byDevice = new Map(db.prepare("SELECT device_id AS d, count(*) AS n FROM entries WHERE kind = 'file' GROUP BY device_id").raw().all() as Array<[string, number]>);
    const ids = DEVICES.map((d) => db.prepare('SELECT id FROM devices WHERE slug = ?').pluck().get(d.name) as string);
    const filesByDevice = ids.map((id) => byDevice.get(id) ?? 0);
    return {
      dir,
      files: filesByDevice.reduce((a, b) => a + b, 0),
      folders: db.prepare("SELECT count(*) FROM entries WHERE kind = 'dir'").pluck().get() as number,
      contents: db.prepare('SELECT count(*) FROM content_identities').pluck().get() as number,
      filesByDevice,
    };
  } finally {
    library.close();
  }
}

/**
 * Writes a library of about `files` files: this device's location and two peers' mirrored
 * ones (their own ids in remote_id), folders by year then of FILES_PER_FOLDER files each,
 * closure rows, content identities shared by 1 to 3 devices, copy checks (current, stale,
 * corrupt), tags, policies and trust. Bulk rows go through prepared statements in one
 * transaction; the few others through the library's own functions.
 */
function buildLibrary(dir: string, files: number): ScaleLibrary {
  const random = seededRandom(7);
  const hex = (n: number) => Array.from({ length: n / 8 }, () => Math.floor(random() * 2 ** 32).toString(16).padStart(8, '0')).join('');
  // Contents first: who holds each, so that counts of 1, 2 and 3 copies mix as in life.
  const contentIds: string[] = [];
  const sizes: number[] = [];
  const holdings: number[][] = DEVICES.map(() => []);
  let placed = 0;
  while (placed < files) {
    const k = contentIds.length;
    contentIds.push(hex(16));
    sizes.push(Math.floor(2 ** (10 + random() * 15))); // 1 KiB to 32 MiB, log-uniform
    let r = random();
    const mask = HOLDERS.find(([, w]) => (r -= w) < 0)?.[0] ?? 0b111;
    for (let d = 0; d < DEVICES.length; d++) {
      if (!(mask & (1 << d))) continue;
      const copies = random() < DUPLICATES ? 2 : 1;
      for (let i = 0; i < copies; i++) holdings[d]!.push(k);
      placed += copies;
    }
  }
  const fullHash = (k: number) => contentIds[k]!.repeat(4);
  const checked = new Uint8Array(contentIds.length);

  const locationRoot = path.join(path.dirname(dir), DEVICES[0].location);
  fs.mkdirSync(locationRoot, { recursive: true });
  const { library } = initLibrary(dir, DEVICES[0].name);
  const db = library.db;
  db.pragma('cache_size = -1000000');
  const store = new EntryStore(db);
  const now = Date.now();
  const devices: Device[] = [library.device];
  let folders = 0;
  db.transaction(() => {
    for (const d of DEVICES.slice(1)) {
      const device = addPeerDevice(db, { id: crypto.randomUUID(), name: d.name, publicKey: hex(64) });
      db.prepare('UPDATE devices SET log_key = ?, paired_at = ?, last_seen = ? WHERE id = ?').run(hex(64), now, now, device.id);
      db.prepare('INSERT INTO device_logs (device_id, log_key, applied_length) SELECT id, log_key, 0 FROM devices WHERE id = ?').run(device.id);
      devices.push(device);
    }
    const insertEntry = db.prepare(`INSERT INTO entries (id, device_id, location_id, parent_id, name, kind, size, mtime, inode, mode, content_id, aggregate_size, remote_id)
                                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const closures = new Map<number, ReturnType<typeof db.prepare>>();
    const closure = (chain: readonly number[], id: number) => {
      let stmt = closures.get(chain.length);
      if (!stmt) closures.set(chain.length, (stmt = db.prepare(`INSERT INTO entry_closure (ancestor, descendant, depth) VALUES ${Array.from({ length: chain.length + 1 }, () => '(?, ?, ?)').join(', ')}`)));
      stmt.run([id, id, 0, ...chain.flatMap((a, i) => [a, id, chain.length - i])]);
    };
    const insertCheck = db.prepare('INSERT INTO copy_checks (entry_id, full_hash, size, mtime, checked_at, corrupt) VALUES (?, ?, ?, ?, ?, ?)');
    const setAggregate = db.prepare('UPDATE entries SET aggregate_size = ? WHERE id = ?');
    let nextId = ((db.prepare('SELECT max(id) FROM entries').pluck().get() as number | null) ?? 0) + 1;

    DEVICES.forEach((d, index) => {
      const device = devices[index]!;
      const local = index === 0;
      let locationId: number;
      let rootId: number;
      if (local) {
        const location = addLocation(db, store, device.id, { path: locationRoot, name: d.location, mode: 'deep' });
        locationId = location.id;
        rootId = location.rootEntryId!;
        nextId = Math.max(nextId, rootId + 1);
      } else {
        locationId = upsertMirroredLocation(db, device.id, 1, { name: d.location, rootPath: `/home/${d.name}/${d.location}`, indexMode: 'deep' }).id;
        rootId = store.insertMirrored(device.id, locationId, [], { name: '', kind: 'dir', size: 0, mtime: now, mode: 0o40755 }, null, 1);
        setLocationRoot(db, locationId, rootId);
        nextId = Math.max(nextId, rootId + 1);
      }
      // Mirrored rows keep the peer's own id (its log names them by it); here, the local id's offset.
      const remoteOf = (id: number) => (local ? null : id - rootId + 1);
      const add = (chain: readonly number[], name: string, kind: 'file' | 'dir', size: number, mtime: number, contentId: string | null) => {
        const id = nextId++;
        insertEntry.run(id, device.id, locationId, chain[chain.length - 1]!, name, kind, size, mtime, local ? id : 0, kind === 'dir' ? 0o40755 : 0o100644, contentId, 0, remoteOf(id));
        closure(chain, id);
        return id;
      };
      const held = holdings[index]!;
      const leafCount = Math.ceil(held.length / FILES_PER_FOLDER);
      const years = Array.from({ length: Math.min(YEARS, leafCount) }, (_, y) => add([rootId], String(2015 + y), 'dir', 0, now, null));
      const leaves = Array.from({ length: leafCount }, (_, f) => add([rootId, years[f % years.length]!], `m${Math.floor(f / years.length)}`, 'dir', 0, now, null));
      folders += 1 + years.length + leaves.length;
      const leafBytes = new Array<number>(leafCount).fill(0);
      held.forEach((k, i) => {
        const leaf = Math.floor(i / FILES_PER_FOLDER);
        const size = sizes[k]!;
        const mtime = 1.6e12 + Math.floor(random() * 1e11);
        const id = add([rootId, years[leaf % years.length]!, leaves[leaf]!], `IMG_${i}.jpg`, 'file', size, mtime, contentIds[k]!);
        leafBytes[leaf]! += size;
        const r = random();
        if (r < d.verified) insertCheck.run(id, fullHash(k), size, mtime, now, 0);
        else if (r < d.verified + STALE_CHECKS) insertCheck.run(id, fullHash(k), size, mtime - 1000, now, 0);
        else if (r < d.verified + STALE_CHECKS + CORRUPT_CHECKS) insertCheck.run(id, fullHash(k), size, mtime, now, 1);
        else return;
        checked[k] = 1;
      });
      const yearBytes = years.map(() => 0);
      leaves.forEach((id, f) => {
        setAggregate.run(leafBytes[f]!, id);
        yearBytes[f % years.length]! += leafBytes[f]!;
      });
      years.forEach((id, y) => setAggregate.run(yearBytes[y]!, id));
      setAggregate.run(yearBytes.reduce((a, b) => a + b, 0), rootId);
    });

    const insertContent = db.prepare('INSERT INTO content_identities (id, size, sampled_hash, full_hash, first_seen) VALUES (?, ?, ?, ?, ?)');
    contentIds.forEach((id, k) => insertContent.run(id, sizes[k]!, hex(64), checked[k] ? fullHash(k) : null, now));

    // Shared settings, as a user would make them: a tag policy (and a tag without one), folder policies, an untrusted phone.
    const tags = new TagStore(db, library.device.id);
    const tagged = db.prepare(`SELECT * FROM entries WHERE kind = 'file' AND id % ${TAG_EVERY} = 0`).all() as Array<Record<string, unknown>>;
    for (const row of tagged) {
      const entry = store.get(row.id as number)!;
      tags.add(entry, (row.id as number) % (TAG_EVERY * 2) === 0 ? [TAG_POLICY] : ['raw']);
    }
    const settings = new GuardianSettings(db, library.device.id);
    settings.setPolicy({ kind: 'library' }, 2);
    settings.setPolicy({ kind: 'path', deviceId: devices[0]!.id, location: DEVICES[0].location, path: '2020' }, 3);
    settings.setPolicy({ kind: 'path', deviceId: devices[1]!.id, location: DEVICES[1].location, path: '2016' }, 1);
    settings.setPolicy({ kind: 'tag', tag: TAG_POLICY }, 3);
    settings.setTrust(devices[2]!.id, false);
  })();
  library.close();
  return { dir, files: placed, folders, contents: contentIds.length, filesByDevice: holdings.map((h) => h.length) };
}

// ---------------------------------------------------------------- run

report.noteMachine('start');
if (only !== 'scale') await scrubPart();
if (only !== 'scrub') await scalePart();
report.noteMachine('end');
report.finish();
